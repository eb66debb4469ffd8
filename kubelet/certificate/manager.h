// The kubelet's certificate manager (client-go util/certificate Manager): keeps a certificate
// of one signer current, and renews it in the background at a random point in 70-90% of its
// lifetime (nextRotationDeadline + jitteryDuration), or at once when there is none, it has
// expired, or it no longer satisfies the template (a serving certificate whose node addresses
// changed). A renewal makes a new ECDSA P-256 key and a CSR (generateName "csr-"), waits up to
// 15 min for the signed certificate, stores it (CertStore) and makes it Current(). Failed
// renewals back off 2, 4, 8, 16, 32 s (10% jitter), then retry every 32 s.
//
// Thread-safety: Current() and NextRotationDeadline() may be called from any thread; Start()
// and Stop() from one owner thread. Stop() (also the destructor) interrupts a wait for a CSR.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kubelet/api_client.h"
#include "kubelet/certificate/store.h"
#include "kubelet/certificate/x509.h"

namespace berth::kubelet::certificate {

// NotBefore + (0.7 + 0.2 * rand01) * (NotAfter - NotBefore), rand01 in [0, 1): upstream's
// jitteryDuration (wait.Jitter(total, 0.2) - 0.3 * total).
absl::Time RotationDeadline(absl::Time not_before, absl::Time not_after, double rand01);

// certSatisfiesTemplate: same CN, and every DNS name, IP and O of `t` present in the
// certificate (extra ones are fine).
bool SatisfiesTemplate(const KeyPair& cert, const CsrTemplate& t);

// One entry of Node.status.addresses.
struct NodeAddress {
  std::string type;  // Hostname, InternalIP, ExternalIP, InternalDNS, ExternalDNS
  std::string address;
};

// The serving certificate template of the kubelet (newGetTemplateFn +
// addressesToHostnamesAndIPs): CN "system:node:<node>", O "system:nodes", DNS SANs = Hostname
// (unless it is an IP) and *DNS addresses, IP SANs = InternalIP/ExternalIP (and an IP
// Hostname), each sorted and deduplicated. nullopt without any IP (upstream requires one
// unless AllowDNSOnlyNodeCSR).
std::optional<CsrTemplate> ServingTemplate(const std::string& node_name,
                                           const std::vector<NodeAddress>& addresses);

struct ManagerOptions {
  std::string name = "client";  // in logs: "client" or "serving"
  std::string signer_name;
  bool serving = false;  // server usages instead of client usages
  // What to request; nullopt while there is nothing to ask for (a serving certificate before
  // the node has addresses). Called from the manager's thread.
  std::function<std::optional<CsrTemplate>()> get_template;
  std::unique_ptr<CertStore> store;
  // The API client a renewal uses, given the current pair (nullptr: none yet, i.e. the
  // bootstrap credentials). Called once per renewal.
  std::function<absl::StatusOr<std::shared_ptr<ApiClient>>(std::shared_ptr<const KeyPair>)>
      client_for;
  // A pair to start from when the store has none (a kubeconfig's inline certificate): it is
  // stored and renewed at once, as upstream's BootstrapCertificatePEM.
  std::string bootstrap_cert_pem, bootstrap_key_pem;
  std::function<absl::Time()> now = [] { return absl::Now(); };
  std::function<double()> rand01;  // default: a uniform [0, 1) generator
  absl::Duration wait_timeout = absl::Minutes(15);
  absl::Duration template_check_period = absl::Seconds(10);
};

class CertificateManager {
 public:
  // Loads the store's current pair (an expired or missing one means "renew at once").
  // Errors: a store error other than NotFound, an unusable bootstrap pair.
  static absl::StatusOr<std::unique_ptr<CertificateManager>> Create(ManagerOptions options);
  ~CertificateManager();

  // The pair in use; nullptr when there is none or it has expired.
  std::shared_ptr<const KeyPair> Current() const;
  // When the background loop will renew next (now when it must renew at once).
  absl::Time NextRotationDeadline();

  void Start();
  void Stop();

  // One renewal (key, CSR, wait, store). Errors: the template's absence (FailedPrecondition),
  // the API's, the CSR's (denied, failed, timed out), the store's.
  absl::Status Rotate();
  // Blocks until Current() is non-null, `stop` is set or `timeout` passes. True when there is
  // a certificate.
  bool WaitForCertificate(const std::atomic<bool>& stop, absl::Duration timeout);
  // Renewals done since Create (for tests and logs).
  int rotations() const;

 private:
  explicit CertificateManager(ManagerOptions options);
  void Run();
  // Sleeps until `until` or Stop(); false when stopped.
  bool SleepUntil(absl::Time until);

  ManagerOptions opts_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeyPair> cert_ ABSL_GUARDED_BY(mu_);
  bool force_rotation_ ABSL_GUARDED_BY(mu_) = false;
  int rotations_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The serving certificate manager (NewKubeletServerCertificateManager): signer
// kubernetes.io/kubelet-serving, store "kubelet-server" in `cert_dir` (kubelet-server-current.pem),
// template from `addresses()`, CSRs through `client` (not owned; must outlive the manager).
absl::StatusOr<std::unique_ptr<CertificateManager>> NewServingCertificateManager(
    ApiClient* client, const std::string& node_name, const std::string& cert_dir,
    std::function<std::vector<NodeAddress>()> addresses);

}  // namespace berth::kubelet::certificate
