// Node registration and status (the kubelet's nodestatus setters + registerWithAPIServer).
// NodeStatusManager creates the Node object (POST /api/v1/nodes; on 409 AlreadyExists it
// GETs the Node and merges our labels and status into it), then PATCHes
// /api/v1/nodes/<name>/status (strategic merge) every `update_period`, refreshing heartbeat
// times. It watches the Node's spec.podCIDR and reports when it appears or changes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kubelet/api_client.h"

namespace berth::kubelet {

// Facts about the machine reported in Node.status. Read with ReadMachineInfo(); tests build
// one by hand.
struct MachineInfo {
  std::string hostname;        // lower-cased, as kubelet's --hostname-override default
  int64_t cpu_count = 0;       // usable CPUs (affinity mask, capped by a cgroup quota)
  int64_t memory_kib = 0;      // MemTotal from /proc/meminfo
  int64_t root_fs_kib = 0;     // size of the filesystem holding root_dir (statvfs)
  std::string machine_id;      // /etc/machine-id
  std::string system_uuid;     // /sys/class/dmi/id/product_uuid (empty if unreadable)
  std::string boot_id;         // /proc/sys/kernel/random/boot_id
  std::string kernel_version;  // uname -r
  std::string os_image;        // PRETTY_NAME of /etc/os-release
  std::string architecture;    // GOARCH spelling: amd64, arm64, ...
};

// Reads MachineInfo from the running host; `root_dir` is the directory whose filesystem is
// reported as ephemeral-storage (kubelet's --root-dir). Missing optional files leave fields
// empty; errors only when memory or CPU cannot be determined.
absl::StatusOr<MachineInfo> ReadMachineInfo(const std::string& root_dir);

// Parsing helpers, exposed for tests: MemTotal (KiB) of a /proc/meminfo text; PRETTY_NAME of
// an os-release text ("Linux" when absent).
absl::StatusOr<int64_t> ParseMemTotalKib(const std::string& meminfo);
std::string ParseOsReleasePrettyName(const std::string& os_release);

// Formats `t` as RFC 3339 in UTC with seconds precision ("2024-05-01T10:00:00Z"), the
// metav1.Time wire format.
std::string FormatTime(std::chrono::system_clock::time_point t);
// As FormatTime with microseconds ("2024-05-01T10:00:00.123456Z"), the metav1.MicroTime format.
std::string FormatMicroTime(std::chrono::system_clock::time_point t);

struct NodeStatusOptions {
  std::string node_name;                      // required
  std::string node_ip;                        // InternalIP address; empty = none reported
  std::map<std::string, std::string> labels;  // extra labels (node.kubernetes.io/..., ...)
  // Taints of a newly registered Node (--register-with-taints: {"key","value","effect"}
  // objects); as the kubelet, not applied to a Node that already exists.
  Json taints = Json::array();
  int max_pods = 110;
  int kubelet_port = 10250;
  std::string runtime_version = "berth://0.1.0";
  std::string kubelet_version = "v1.36.3-berth";
  std::chrono::milliseconds update_period{10000};  // nodeStatusUpdateFrequency
  // nodeStatusReportFrequency: an unchanged status (heartbeat times aside) is written at most
  // this often; a changed one at the next update_period.
  std::chrono::milliseconds report_frequency{300000};
  // While the node is not ready, its readiness check runs this often and a change is
  // reported at once (the kubelet's fast node status update at start-up).
  std::chrono::milliseconds fast_update_period{500};
  std::chrono::milliseconds register_backoff_initial{200};
  std::chrono::milliseconds register_backoff_max{7000};  // kubelet caps at 7 s
};

// Parses --node-labels "k1=v1,k2=v2" (a value may be empty). InvalidArgument names the
// entry without '=' or with an empty key.
absl::StatusOr<std::map<std::string, std::string>> ParseNodeLabels(const std::string& flag);

// Parses --register-with-taints "key=value:Effect,key:Effect" into Node.spec.taints entries.
// Effect is NoSchedule, PreferNoSchedule or NoExecute; InvalidArgument otherwise.
absl::StatusOr<Json> ParseTaints(const std::string& flag);

// Builds the Node object berth registers: labels, capacity/allocatable, conditions,
// addresses, daemonEndpoints and nodeInfo. `now` stamps heartbeat and transition times.
// `not_ready` empty: condition Ready=True (KubeletReady); otherwise Ready=False with reason
// KubeletNotReady and `not_ready` as the message, as the kubelet reports a runtime or
// network that is not ready.
Json BuildNode(const NodeStatusOptions& opts, const MachineInfo& machine,
               std::chrono::system_clock::time_point now, const std::string& not_ready = "");

// Registers the Node and keeps its status current. Threading: Start() launches one thread;
// Stop() joins it. Getters are thread-safe. Callbacks run on the manager's thread.
class NodeStatusManager {
 public:
  // `client` must outlive the manager.
  NodeStatusManager(ApiClient* client, NodeStatusOptions options, MachineInfo machine);
  ~NodeStatusManager();

  // Called with the new spec.podCIDR (and spec.podCIDRs) whenever it first appears or changes.
  void SetPodCidrCallback(
      std::function<void(const std::string& cidr, const std::vector<std::string>& cidrs)> cb);

  // Sets the readiness check run before each status update: it returns "" when the node is
  // ready, else why not (the kubelet's "container runtime network not ready: ..."
  // message). Without a check the node is always Ready. Called on the manager's thread.
  void SetReadinessCheck(std::function<std::string()> check);

  // Sets Node.status.volumesInUse: `in_use` returns the sorted unique names to report at
  // each status write (upstream VolumesInUse setter); after a successful write `reported`
  // gets the volumesInUse of the Node the API server returned (upstream
  // MarkVolumesAsReportedInUse). Both run on the manager's thread. Call before Start().
  void SetVolumesInUse(std::function<std::vector<std::string>()> in_use,
                       std::function<void(const std::vector<std::string>&)> reported);
  // Asks for a status write as soon as possible instead of at the next update_period (e.g.
  // a volume became in use). Cheap; calls before the write are coalesced. Any thread.
  void RequestUpdate();
  // Sets the source of the pressure conditions reported True ("MemoryPressure",
  // "DiskPressure", "PIDPressure": the eviction manager's Conditions()); the others are
  // False. Called on the manager's thread before each status update; must be thread-safe.
  void SetPressureCheck(std::function<std::set<std::string>()> check);

  // Registers once, synchronously (one attempt). Errors as ApiClient.
  absl::Status RegisterOnce();
  // Sends one status PATCH. Errors as ApiClient.
  absl::Status UpdateStatusOnce();

  // Starts the thread: register (retrying with backoff until it succeeds, logging each
  // failure), then update status every update_period, and as soon as the readiness check
  // changes while the node is not ready (checked every fast_update_period).
  void Start();
  // Stops and joins the thread. Idempotent.
  void Stop();

  bool Registered() const { return registered_.load(); }
  // The Node's metadata.uid once registered (empty before).
  std::string NodeUid() const;
  // The Node's spec.podCIDR; empty until the controller-manager assigns one.
  std::string PodCidr() const;
  // Number of successful status updates; for tests.
  int StatusUpdates() const { return status_updates_.load(); }

 private:
  void Run();
  void Observe(const Json& node);  // records uid and podCIDR from a Node returned by the API
  // false when stopped; `wake_on_request`: RequestUpdate() ends the sleep early.
  bool SleepUnlessStopped(std::chrono::milliseconds d, bool wake_on_request = false);

  ApiClient* const client_;
  const NodeStatusOptions options_;
  const MachineInfo machine_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> registered_{false};
  std::atomic<int> status_updates_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string uid_;                     // guarded by mu_
  std::string pod_cidr_;                // guarded by mu_
  std::vector<std::string> pod_cidrs_;  // guarded by mu_
  std::function<void(const std::string&, const std::vector<std::string>&)> cidr_cb_;
  std::function<std::string()> readiness_check_;  // guarded by mu_
  std::function<std::vector<std::string>()> volumes_in_use_;
  std::function<void(const std::vector<std::string>&)> volumes_reported_;
  bool update_requested_ = false;                          // guarded by mu_
  std::function<std::set<std::string>()> pressure_check_;  // guarded by mu_
  // Pressure condition type -> (status, transition time); manager thread only.
  std::map<std::string, std::pair<bool, std::chrono::system_clock::time_point>> pressure_state_;
  std::chrono::system_clock::time_point ready_since_;  // transition time of our conditions
  std::string last_not_ready_ = "unknown";             // manager thread only; "" = was ready
  Json last_reported_ = Json();  // the last status written, heartbeats removed
  std::chrono::system_clock::time_point last_report_time_;
};

}  // namespace berth::kubelet
