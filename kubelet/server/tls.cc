#include "kubelet/server/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::kubelet::server {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

absl::Status AddExt(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return absl::InternalError(absl::StrCat("certificate extension ", value));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? absl::OkStatus() : absl::InternalError("X509_add_ext");
}

absl::StatusOr<std::string> Pem(const std::function<int(BIO*)>& write) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return absl::InternalError("PEM encoding failed");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n);
}

}  // namespace

absl::Status EnsureSelfSignedCert(const std::string& cert_path, const std::string& key_path,
                                  const std::string& host, const std::vector<std::string>& ips) {
  std::error_code ec;
  if (std::filesystem::exists(cert_path, ec) && std::filesystem::exists(key_path, ec)) {
    return absl::OkStatus();
  }
  // ECDSA P-256: each TLS handshake (one per exec/attach/port-forward from the API server)
  // signs with it, ~30x cheaper than RSA-2048.
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  if (!key) return absl::InternalError("generate ECDSA P-256 key");
  std::unique_ptr<X509, X509Free> cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string cn = absl::StrCat(host, "@", time(nullptr));
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::vector<std::string> sans = {absl::StrCat("DNS:", host), "DNS:localhost", "IP:127.0.0.1"};
  for (const auto& ip : ips) {
    if (!ip.empty() && ip != "127.0.0.1") sans.push_back(absl::StrCat("IP:", ip));
  }
  RETURN_IF_ERROR(AddExt(cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExt(cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment"));
  RETURN_IF_ERROR(AddExt(cert.get(), NID_ext_key_usage, "serverAuth"));
  RETURN_IF_ERROR(AddExt(cert.get(), NID_subject_alt_name, absl::StrJoin(sans, ",")));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return absl::InternalError("sign self-signed certificate");
  }
  ASSIGN_OR_RETURN(std::string cert_pem,
                   Pem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }));
  ASSIGN_OR_RETURN(std::string key_pem, Pem([&](BIO* b) {
                     return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr,
                                                     nullptr);
                   }));
  RETURN_IF_ERROR(MkdirAll(std::filesystem::path(cert_path).parent_path().string(), 0700));
  RETURN_IF_ERROR(MkdirAll(std::filesystem::path(key_path).parent_path().string(), 0700));
  RETURN_IF_ERROR(WriteFileAtomic(key_path, key_pem, 0600));
  return WriteFileAtomic(cert_path, cert_pem, 0644);
}

std::optional<UserInfo> UserFromCertificate(X509* cert) {
  if (cert == nullptr) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(cert);
  UserInfo user;
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (n < 0) continue;
    std::string value(reinterpret_cast<char*>(utf8), n);
    OPENSSL_free(utf8);
    if (nid == NID_commonName) {
      user.name = value;
    } else if (nid == NID_organizationName) {
      user.groups.push_back(value);
    }
  }
  if (user.name.empty()) return std::nullopt;
  return user;
}

}  // namespace berth::kubelet::server
