// TLS material of the kubelet server: the self-signed serving certificate the kubelet makes
// when --tls-cert-file/--tls-private-key-file are not given, and the identity of a verified
// client certificate.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kubelet/server/auth.h"

typedef struct x509_st X509;

namespace berth::kubelet::server {

// Writes a self-signed serving certificate and its ECDSA P-256 key (PEM, key mode 0600) to
// `cert_path`/`key_path` unless both exist already (then they are kept, as the upstream
// kubelet keeps <cert-dir>/kubelet.crt). Subject CN "<host>@<unix time>", SANs: DNS `host`,
// DNS "localhost", IP 127.0.0.1 and every entry of `ips`; valid one year; serverAuth.
// Errors: Internal (OpenSSL), or the file error.
absl::Status EnsureSelfSignedCert(const std::string& cert_path, const std::string& key_path,
                                  const std::string& host, const std::vector<std::string>& ips);

// The user of a client certificate: CN is the user name, each O a group (apiserver's x509
// CommonNameUserConversion). nullopt when the certificate has no CN.
std::optional<UserInfo> UserFromCertificate(X509* cert);

}  // namespace berth::kubelet::server
