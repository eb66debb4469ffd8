// TLS bootstrap of the node's client credentials, as the kubelet does it
// (pkg/kubelet/certificate/bootstrap, cmd/kubelet/app buildKubeletClientConfig):
//
//  - --kubeconfig holding a client certificate that is still valid: used as is.
//  - otherwise, with --bootstrap-kubeconfig (token credentials):
//    * without rotation (LoadClientCert): key <cert-dir>/kubelet-client.key.tmp (ECDSA P-256,
//      reused across attempts), CSR "node-csr-<digest>" for signer
//      kubernetes.io/kube-apiserver-client-kubelet (CN system:node:<node>, O system:nodes),
//      wait up to 1 h, store kubelet-client-<time>.pem + kubelet-client-current.pem, then
//      write --kubeconfig pointing at the current link. Blocks.
//    * with rotation (LoadClientConfig): --kubeconfig is written first (pointing at the
//      current link) and the client CertificateManager requests the certificate in the
//      background with the bootstrap credentials, later renewals with the current certificate.
// Thread-safety: no shared state; SetUpNodeCredentials' manager is thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kubelet/api_client.h"
#include "kubelet/certificate/manager.h"
#include "kubelet/kubeconfig.h"

namespace berth::kubelet::certificate {

// isClientConfigStillValid: the kubeconfig at `path` exists, loads, has a client certificate
// and none of its certificates has expired at `now`. `why` (optional) says why not.
bool KubeconfigStillValid(const std::string& path, absl::Time now, std::string* why = nullptr);

// The kubeconfig writeKubeconfigFromBootstrapping writes: cluster "default-cluster" with the
// bootstrap kubeconfig's server, insecure-skip-tls-verify and CA (its file path when it named
// a file, else the data), user "default-auth" with client-certificate and client-key =
// `pem_path`, context "default-context" (namespace default), current-context.
std::string BootstrappedKubeconfig(const Kubeconfig& bootstrap, const std::string& pem_path);
// Writes it to `path` (mode 0600, atomically). Errors: the file's.
absl::Status WriteBootstrappedKubeconfig(const Kubeconfig& bootstrap, const std::string& path,
                                         const std::string& pem_path);

// LoadClientCert (see above). Errors: the bootstrap kubeconfig's, the API's (with the CSR
// name), a denied or failed CSR, DeadlineExceeded after 1 h, Cancelled when `stop` is set.
// Nothing is written to `kubeconfig_path` unless the certificate is stored.
absl::Status LoadClientCert(const std::string& kubeconfig_path, const std::string& bootstrap_path,
                            const std::string& cert_dir, const std::string& node_name,
                            const std::atomic<bool>& stop);

struct NodeCredentialsOptions {
  std::string kubeconfig;            // --kubeconfig (written when bootstrapping)
  std::string bootstrap_kubeconfig;  // --bootstrap-kubeconfig; "" = none
  std::string cert_dir;              // --cert-dir
  std::string node_name;
  bool rotate = false;  // --rotate-certificates
};

// What the kubelet's API client is built from.
struct NodeCredentials {
  Kubeconfig config;             // server, CA, and static credentials without rotation
  ApiClientOptions api_options;  // with rotation: client_certificate from the manager
  std::unique_ptr<CertificateManager> client_manager;  // with rotation; not started
};

// Bootstraps (blocking without rotation) and loads the node's client configuration.
absl::StatusOr<NodeCredentials> SetUpNodeCredentials(const NodeCredentialsOptions& options,
                                                     const std::atomic<bool>& stop);

}  // namespace berth::kubelet::certificate
