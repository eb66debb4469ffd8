// kubeconfig loading: the subset of the clientcmd v1 format a node agent needs.
// Supports current-context, clusters[].cluster.{server, certificate-authority,
// certificate-authority-data, insecure-skip-tls-verify, tls-server-name} and
// users[].user.{client-certificate, client-certificate-data, client-key, client-key-data,
// token, tokenFile}. Relative file paths are resolved against the kubeconfig's directory.
// All PEM material is returned in memory (decoded from base64 for the *-data fields), so
// no key material is written anywhere. Thread-safe (no shared state).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace berth::kubelet {

// The resolved credentials and endpoint of one kubeconfig context.
struct Kubeconfig {
  std::string context;          // name of the context that was selected
  std::string server;           // e.g. "https://127.0.0.1:6443"
  std::string tls_server_name;  // SNI / verification name override; empty = host of server
  std::string ca_pem;           // PEM bundle of trusted CAs; empty = system roots
  std::string ca_file;          // resolved certificate-authority path; "" if given as data
  bool insecure_skip_tls_verify = false;
  std::string client_cert_pem;  // PEM client certificate (chain); empty = none
  std::string client_key_pem;   // PEM private key matching client_cert_pem
  // Resolved client-certificate / client-key paths; "" when given as *-data or absent.
  std::string client_certificate_file;
  std::string client_key_file;
  std::string token;  // bearer token (from token or tokenFile); empty = none
};

// Parses kubeconfig YAML `text`; `base_dir` resolves relative file paths. Selects
// `context_override` when non-empty, else current-context. Errors: InvalidArgument
// (malformed YAML, missing context/cluster/user, bad base64), NotFound (referenced file).
absl::StatusOr<Kubeconfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                           const std::string& context_override = "");

// Reads and parses the kubeconfig at `path`. Errors: NotFound (file), others as above.
absl::StatusOr<Kubeconfig> LoadKubeconfig(const std::string& path,
                                          const std::string& context_override = "");

// Decodes standard base64 (whitespace ignored). InvalidArgument on bad input.
absl::StatusOr<std::string> Base64Decode(const std::string& in);

}  // namespace berth::kubelet
