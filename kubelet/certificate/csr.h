// CertificateSigningRequest objects (certificates.k8s.io/v1) through the API: create one and
// wait until it is approved and issued, as client-go util/certificate/csr does
// (RequestCertificate, WaitForCertificate). Thread-safety: no shared state.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kubelet/api_client.h"

namespace berth::kubelet::certificate {

inline constexpr char kKubeletClientSigner[] = "kubernetes.io/kube-apiserver-client-kubelet";
inline constexpr char kKubeletServingSigner[] = "kubernetes.io/kubelet-serving";

// The CertificateSigningRequest object: metadata.name `name`, or generateName "csr-" when it
// is empty; spec.request = base64 of `csr_pem`, spec.signerName, spec.usages.
Json CsrObject(const std::string& name, const std::string& csr_pem, const std::string& signer,
               const std::vector<std::string>& usages);

struct CsrRef {
  std::string name;
  std::string uid;
};

// Creates the CSR. When `name` is set and the object exists already (a restarted bootstrap),
// it is reused if compatible (same subject, signer and public key as `csr_pem`, and not
// holding an expired certificate), as upstream's ensureCompatible. Errors: the API's,
// prefixed "cannot create certificate signing request"; FailedPrecondition when an existing
// object is not compatible.
absl::StatusOr<CsrRef> RequestCertificate(ApiClient* client, const std::string& name,
                                          const std::string& csr_pem, const std::string& signer,
                                          const std::vector<std::string>& usages);

// Watches the CSR until it holds a certificate after an Approved condition, and returns the
// PEM certificate. Errors: PermissionDenied "certificate signing request <name> is denied,
// reason: ..., message: ..." (Denied), Aborted (Failed, deleted, or its UID changed),
// DeadlineExceeded after `timeout`, Cancelled when `stop` becomes true. Transient API errors
// are retried (1 s, doubling to 30 s). Logs once when waiting begins and once on approval.
absl::StatusOr<std::string> WaitForCertificate(ApiClient* client, const CsrRef& csr,
                                               absl::Duration timeout,
                                               const std::atomic<bool>& stop);

}  // namespace berth::kubelet::certificate
