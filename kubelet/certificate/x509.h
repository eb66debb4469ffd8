// X.509 building blocks of the kubelet's certificates (OpenSSL): keys, certificate signing
// requests, the CSR object name upstream derives from them, and parsed certificate/key pairs.
// Upstream: k8s.io/client-go/util/{cert,keyutil}, pkg/kubelet/certificate/bootstrap
// (digestedName), client-go/util/certificate (usages).
// Thread-safety: no shared state; a KeyPair is immutable once built and may be shared.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kubelet/api_client.h"

namespace berth::kubelet::certificate {

// A certificate (chain, leaf first) with its private key, parsed once.
struct KeyPair {
  std::string cert_pem;  // the chain as PEM
  std::string key_pem;   // the private key as PEM
  std::shared_ptr<X509> leaf;
  std::vector<std::shared_ptr<X509>> intermediates;  // the rest of the chain
  std::shared_ptr<EVP_PKEY> key;
  absl::Time not_before;
  absl::Time not_after;
  std::string common_name;                 // subject CN
  std::vector<std::string> organizations;  // subject O
  std::vector<std::string> dns_names;      // SAN DNS entries
  std::vector<std::string> ip_addresses;   // SAN IP entries, textual
  // Leaf and key, as the API client presents them.
  std::shared_ptr<const ClientCertificate> client;
};

// Parses `cert_pem` (one or more certificates) and `key_pem` (PKCS#8, SEC1 or PKCS#1) and
// checks that the key matches the leaf. InvalidArgument otherwise.
absl::StatusOr<std::shared_ptr<const KeyPair>> ParseKeyPair(const std::string& cert_pem,
                                                            const std::string& key_pem);
// Parses a file holding both certificate(s) and key (the store's kubelet-client-*.pem) or,
// with two paths, each. Errors: the file's, or as ParseKeyPair.
absl::StatusOr<std::shared_ptr<const KeyPair>> LoadKeyPair(const std::string& cert_path,
                                                           const std::string& key_path);

// A new ECDSA P-256 private key as PEM ("EC PRIVATE KEY", as keyutil.MakeEllipticPrivateKeyPEM).
absl::StatusOr<std::string> GenerateEcPrivateKeyPem();
// Parses a PEM private key. InvalidArgument when there is none.
absl::StatusOr<std::shared_ptr<EVP_PKEY>> ParsePrivateKeyPem(const std::string& pem);
// keyutil.LoadOrGenerateKeyFile: the PEM key at `path` if it parses, else a new P-256 key
// written there (mode 0600). Errors: the file's.
absl::StatusOr<std::string> LoadOrGenerateKeyFile(const std::string& path);

// What a CSR asks for (x509.CertificateRequest's fields the kubelet sets).
struct CsrTemplate {
  std::string common_name;
  std::vector<std::string> organizations;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool operator==(const CsrTemplate&) const = default;
};

// The client template of a node: CN "system:node:<node>", O "system:nodes", no SANs.
CsrTemplate NodeClientTemplate(const std::string& node_name);

// A PKCS#10 request (PEM "CERTIFICATE REQUEST") for `t`, signed with `key` (SHA-256), as
// certutil.MakeCSR. InvalidArgument for an unparsable IP address, Internal for OpenSSL errors.
absl::StatusOr<std::string> MakeCsrPem(EVP_PKEY* key, const CsrTemplate& t);

// certificatesv1 key usages of the kubelet's client certificate: "digital signature",
// "client auth", plus "key encipherment" for RSA keys (DefaultKubeletClientGetUsages).
std::vector<std::string> ClientUsages(EVP_PKEY* key);
// The serving counterpart: "digital signature", ["key encipherment",] "server auth".
std::vector<std::string> ServingUsages(EVP_PKEY* key);

// The CSR object name of the bootstrap request, as upstream's digestedName:
// "node-csr-" + base64url-raw(SHA-512/256 over base64url-raw(DER SubjectPublicKeyInfo) "|"
// CN "|" each O "|" each usage "|"), every part base64url-raw encoded and '|'-terminated.
absl::StatusOr<std::string> DigestedName(EVP_PKEY* key, const CsrTemplate& t,
                                         const std::vector<std::string>& usages);

// The DER SubjectPublicKeyInfo of `key` (x509.MarshalPKIXPublicKey).
absl::StatusOr<std::string> PublicKeyDer(EVP_PKEY* key);

// Base64 without line breaks: standard (StdEncoding) and URL-safe without padding.
std::string Base64(const std::string& data);
std::string Base64UrlRaw(const std::string& data);

}  // namespace berth::kubelet::certificate
