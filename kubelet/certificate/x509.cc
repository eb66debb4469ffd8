#include "kubelet/certificate/x509.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::kubelet::certificate {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::shared_ptr<X509> WrapX509(X509* x) { return std::shared_ptr<X509>(x, X509_free); }
std::shared_ptr<EVP_PKEY> WrapKey(EVP_PKEY* k) {
  return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
}

absl::StatusOr<std::string> BioString(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  if (n < 0) return absl::InternalError("BIO_get_mem_data");
  return std::string(data, static_cast<size_t>(n));
}

absl::Time AsnTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

std::string Utf8(const ASN1_STRING* s) {
  unsigned char* out = nullptr;
  int n = ASN1_STRING_to_UTF8(&out, s);
  if (n < 0) return std::string();
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return r;
}

std::string IpText(const ASN1_OCTET_STRING* ip) {
  char buf[INET6_ADDRSTRLEN] = {0};
  int len = ASN1_STRING_length(ip);
  const unsigned char* d = ASN1_STRING_get0_data(ip);
  if (len == 4) {
    inet_ntop(AF_INET, d, buf, sizeof(buf));
  } else if (len == 16) {
    inet_ntop(AF_INET6, d, buf, sizeof(buf));
  }
  return buf;
}

bool IsRsa(EVP_PKEY* key) { return key != nullptr && EVP_PKEY_base_id(key) == EVP_PKEY_RSA; }

}  // namespace

std::string Base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

std::string Base64UrlRaw(const std::string& data) {
  std::string s = Base64(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

absl::StatusOr<std::shared_ptr<const KeyPair>> ParseKeyPair(const std::string& cert_pem,
                                                            const std::string& key_pem) {
  auto kp = std::make_shared<KeyPair>();
  kp->cert_pem = cert_pem;
  kp->key_pem = key_pem;
  {
    BioPtr bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
    std::vector<std::shared_ptr<X509>> certs;
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      certs.push_back(WrapX509(x));
    }
    if (certs.empty()) return absl::InvalidArgumentError("no PEM certificate found");
    kp->leaf = certs.front();
    kp->intermediates.assign(certs.begin() + 1, certs.end());
  }
  ASSIGN_OR_RETURN(kp->key, ParsePrivateKeyPem(key_pem));
  if (X509_check_private_key(kp->leaf.get(), kp->key.get()) != 1) {
    return absl::InvalidArgumentError("the private key does not match the certificate");
  }
  X509* leaf = kp->leaf.get();
  kp->not_before = AsnTime(X509_get0_notBefore(leaf));
  kp->not_after = AsnTime(X509_get0_notAfter(leaf));
  X509_NAME* subject = X509_get_subject_name(leaf);
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    if (nid == NID_commonName) kp->common_name = Utf8(X509_NAME_ENTRY_get_data(e));
    if (nid == NID_organizationName) kp->organizations.push_back(Utf8(X509_NAME_ENTRY_get_data(e)));
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) kp->dns_names.push_back(Utf8(g->d.dNSName));
      if (g->type == GEN_IPADD) kp->ip_addresses.push_back(IpText(g->d.iPAddress));
    }
    GENERAL_NAMES_free(sans);
  }
  kp->client = std::make_shared<ClientCertificate>(ClientCertificate{kp->leaf, kp->key});
  return std::shared_ptr<const KeyPair>(std::move(kp));
}

absl::StatusOr<std::shared_ptr<const KeyPair>> LoadKeyPair(const std::string& cert_path,
                                                           const std::string& key_path) {
  ASSIGN_OR_RETURN(std::string cert, ReadFile(cert_path));
  std::string key = cert;
  if (key_path != cert_path) {
    ASSIGN_OR_RETURN(key, ReadFile(key_path));
  } else {
    // One file with both (the store's pairs): split it into its certificate and key blocks.
    std::string certs, keys;
    for (size_t pos = 0; (pos = cert.find("-----BEGIN ", pos)) != std::string::npos;) {
      size_t end_marker = cert.find("-----END ", pos);
      if (end_marker == std::string::npos) break;
      size_t end = cert.find("-----", end_marker + 9);
      if (end == std::string::npos) break;
      end += 5;
      if (end < cert.size() && cert[end] == '\n') ++end;
      std::string block = cert.substr(pos, end - pos);
      (absl::StartsWith(block, "-----BEGIN CERTIFICATE-----") ? certs : keys) += block;
      pos = end;
    }
    cert = certs;
    key = keys;
  }
  auto kp = ParseKeyPair(cert, key);
  if (!kp.ok()) {
    return Annotate(kp.status(),
                    cert_path == key_path ? cert_path : absl::StrCat(cert_path, " and ", key_path));
  }
  return kp;
}

absl::StatusOr<std::string> GenerateEcPrivateKeyPem() {
  std::shared_ptr<EVP_PKEY> key = WrapKey(EVP_EC_gen("P-256"));
  if (!key) return absl::InternalError("generate an ECDSA P-256 key");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey_traditional(bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                           nullptr) != 1) {
    return absl::InternalError("PEM-encode the private key");
  }
  return BioString(bio.get());
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> ParsePrivateKeyPem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return absl::InvalidArgumentError("no PEM private key found");
  return WrapKey(k);
}

absl::StatusOr<std::string> LoadOrGenerateKeyFile(const std::string& path) {
  if (absl::StatusOr<std::string> pem = ReadFile(path); pem.ok()) {
    if (ParsePrivateKeyPem(*pem).ok()) return *pem;
  } else if (!absl::IsNotFound(pem.status())) {
    return pem.status();
  }
  ASSIGN_OR_RETURN(std::string pem, GenerateEcPrivateKeyPem());
  RETURN_IF_ERROR(MkdirAll(std::filesystem::path(path).parent_path().string(), 0755));
  RETURN_IF_ERROR(WriteFileAtomic(path, pem, 0600));
  return pem;
}

CsrTemplate NodeClientTemplate(const std::string& node_name) {
  CsrTemplate t;
  t.common_name = "system:node:" + node_name;
  t.organizations = {"system:nodes"};
  return t;
}

absl::StatusOr<std::string> MakeCsrPem(EVP_PKEY* key, const CsrTemplate& t) {
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), X509_REQ_free);
  if (!req || X509_REQ_set_version(req.get(), 0) != 1) return absl::InternalError("X509_REQ_new");
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  // pkix.Name's order: O before CN.
  for (const std::string& o : t.organizations) {
    X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  if (!t.common_name.empty()) {
    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(t.common_name.c_str()), -1,
                               -1, 0);
  }
  std::vector<std::string> sans;
  for (const std::string& d : t.dns_names) sans.push_back("DNS:" + d);
  for (const std::string& ip : t.ip_addresses) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("\"", ip, "\" is not an IP address"));
    }
    sans.push_back("IP:" + ip);
  }
  if (!sans.empty()) {
    std::string value = absl::StrJoin(sans, ",");
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value.c_str());
    if (ext == nullptr) return absl::InternalError("subjectAltName " + value);
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, ext);
    int ok = X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (ok != 1) return absl::InternalError("X509_REQ_add_extensions");
  }
  if (X509_REQ_set_pubkey(req.get(), key) != 1 ||
      X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    return absl::InternalError("sign the certificate request");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return absl::InternalError("PEM-encode the certificate request");
  }
  return BioString(bio.get());
}

std::vector<std::string> ClientUsages(EVP_PKEY* key) {
  if (IsRsa(key)) return {"digital signature", "key encipherment", "client auth"};
  return {"digital signature", "client auth"};
}

std::vector<std::string> ServingUsages(EVP_PKEY* key) {
  if (IsRsa(key)) return {"digital signature", "key encipherment", "server auth"};
  return {"digital signature", "server auth"};
}

absl::StatusOr<std::string> PublicKeyDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return absl::InternalError("encode the public key");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::string> DigestedName(EVP_PKEY* key, const CsrTemplate& t,
                                         const std::vector<std::string>& usages) {
  ASSIGN_OR_RETURN(std::string pub, PublicKeyDer(key));
  std::string stream;
  auto write = [&](const std::string& part) { absl::StrAppend(&stream, Base64UrlRaw(part), "|"); };
  write(pub);
  write(t.common_name);
  for (const std::string& o : t.organizations) write(o);
  for (const std::string& u : usages) write(u);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(stream.data(), stream.size(), md, &len, EVP_sha512_256(), nullptr) != 1) {
    return absl::InternalError("SHA-512/256");
  }
  return absl::StrCat("node-csr-", Base64UrlRaw(std::string(reinterpret_cast<char*>(md), len)));
}

}  // namespace berth::kubelet::certificate
