// Node heartbeat Lease (coordination.k8s.io/v1, KEP-589), as kubelet's nodelease controller:
// Lease "<node>" in namespace "kube-node-lease", holderIdentity = node name,
// leaseDurationSeconds 40, spec.renewTime (MicroTime) renewed every renew_period (10 s). The
// Lease is created when missing, with an ownerReference to the Node (apiVersion v1, kind
// Node, name, uid) once the Node's uid is known, so that deleting the Node deletes the Lease.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "kubelet/api_client.h"

namespace berth::kubelet {

struct LeaseOptions {
  std::string node_name;  // required
  std::string lease_namespace = "kube-node-lease";
  int lease_duration_seconds = 40;
  std::chrono::milliseconds renew_period{10000};  // 0.25 x lease duration, as kubelet
  std::chrono::milliseconds retry_period{200};    // first retry after a failure (doubles to 7 s)
  // Returns the Node's uid, or empty when not yet known (e.g. NodeStatusManager::NodeUid).
  std::function<std::string()> node_uid;
};

// Owns one thread that renews the Lease. Start/Stop from any thread; Stop() joins.
class LeaseController {
 public:
  // `client` must outlive the controller.
  LeaseController(ApiClient* client, LeaseOptions options);
  ~LeaseController();

  // One renewal: GET the Lease (or use the cached copy), set renewTime (and the owner
  // reference when missing), PUT it; creates it on NotFound. Errors as ApiClient.
  absl::Status RenewOnce();

  void Start();
  void Stop();  // idempotent

  // Successful renewals so far; for tests.
  int Renewals() const { return renewals_.load(); }
  // Path of the Lease object.
  std::string LeasePath() const;

 private:
  void Run();
  Json NewLease(std::chrono::system_clock::time_point now, const std::string& uid) const;

  ApiClient* const client_;
  const LeaseOptions options_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> renewals_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Json> latest_;  // last Lease seen from the server; only touched by RenewOnce
};

}  // namespace berth::kubelet
