// Node-pressure eviction: the kubelet eviction manager's thresholds, signals, node conditions
// and pod ranking (upstream pkg/kubelet/eviction: eviction_manager.go synchronize, helpers.go).
//
// Signals (upstream names): memory.available (MemTotal - the root cgroup's working set),
// nodefs.available / nodefs.inodesFree (statvfs of the kubelet root), imagefs.available /
// imagefs.inodesFree (statvfs of the image store), pid.available (min(pid_max, threads-max) -
// the running tasks of /proc/loadavg). Thresholds are "<" statements with a quantity or a
// percentage of the signal's capacity; hard ones act at once, soft ones once met for their
// grace period. A met threshold sets its node condition (MemoryPressure, DiskPressure,
// PIDPressure), which stays true for evictionPressureTransitionPeriod after the last time it
// was met. Each pass reclaims node-level resources first for disk signals (dead containers,
// then unused images) and evicts at most one pod, ranked as upstream.
//
// Example (main):
//   ASSIGN_OR_RETURN(std::vector<Threshold> t, ParseThresholdConfig(hard, soft, grace, {}));
//   NodeEvictionManager m({.thresholds = t}, deps);
//   m.Start();  // a pass every 10 s and when Trigger() is called (memory notifier)
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kubelet/api/pod.h"

namespace berth::kubelet {

// An eviction signal (upstream evictionapi.Signal).
enum class Signal {
  kMemoryAvailable,
  kNodeFsAvailable,
  kNodeFsInodesFree,
  kImageFsAvailable,
  kImageFsInodesFree,
  kPidAvailable,
};

// The upstream spelling of `s` ("memory.available", ...).
const char* SignalName(Signal s);
// The signal named `name`; nullopt for names berth does not support (allocatableMemory.available,
// containerfs.*: berth has no split image filesystem and does not enforce node allocatable).
std::optional<Signal> ParseSignal(const std::string& name);
// The node condition a signal's threshold sets: "MemoryPressure", "DiskPressure", "PIDPressure".
const char* SignalCondition(Signal s);
// The resource reclaimed for `s`: "memory", "ephemeral-storage", "inodes" or "pids".
const char* SignalResource(Signal s);

// A threshold's value: an absolute quantity (bytes, inodes or pids) or a fraction of the
// signal's capacity (upstream ThresholdValue, Percentage a float32 in (0, 1]).
struct ThresholdValue {
  std::optional<int64_t> quantity;
  float percentage = 0;
  bool binary = true;  // the quantity was written with a binary suffix (how messages print it)
  bool operator==(const ThresholdValue&) const = default;
};

// The value of `v` against `capacity` (upstream GetThresholdQuantity: the quantity, or
// int64(capacity * percentage)).
int64_t ThresholdQuantity(const ThresholdValue& v, int64_t capacity);

// One eviction threshold: met when the signal's available amount is below `value`.
struct Threshold {
  Signal signal = Signal::kMemoryAvailable;
  ThresholdValue value;
  absl::Duration grace_period = absl::ZeroDuration();  // zero: a hard threshold
  std::optional<ThresholdValue> min_reclaim;           // evictionMinimumReclaim
  bool hard() const { return grace_period == absl::ZeroDuration(); }
  bool operator==(const Threshold&) const = default;
};

// upstream DefaultEvictionHard (Linux): memory.available<100Mi, nodefs.available<10%,
// nodefs.inodesFree<5%, imagefs.available<15%, imagefs.inodesFree<5%.
const std::map<std::string, std::string>& DefaultEvictionHard();

// Parses a "<"-separated map flag ("memory.available<100Mi,nodefs.available<10%", upstream
// LangleSeparatedMapStringString) or, with sep '=', a map flag ("memory.available=1m30s").
// Errors: InvalidArgument naming the entry without the separator or with an empty key.
absl::StatusOr<std::map<std::string, std::string>> ParseMapFlag(const std::string& flag, char sep);

// upstream ParseThresholdConfig: hard and soft statements ("100Mi", "10%"; "0%" and "100%"
// are ignored), each soft one with its grace period (Go durations), min-reclaims applied to
// every threshold of their signal. Errors (InvalidArgument, naming the signal and value): an
// unsupported signal, a value that does not parse, is not positive or above 100%, a soft
// threshold without a grace period, a negative min-reclaim.
absl::StatusOr<std::vector<Threshold>> ParseThresholdConfig(
    const std::map<std::string, std::string>& hard, const std::map<std::string, std::string>& soft,
    const std::map<std::string, std::string>& grace_periods,
    const std::map<std::string, std::string>& min_reclaim);

// What a signal measures at one instant: how much is available of how much capacity.
struct Observation {
  int64_t available = 0;
  int64_t capacity = 0;
};
using Observations = std::map<Signal, Observation>;

// Node-level readings, from which MakeObservations derives the signals. Unknown ones stay
// nullopt and their signals are not observed (their thresholds are never met).
struct NodeStats {
  std::optional<int64_t> memory_capacity;     // MemTotal, bytes
  std::optional<int64_t> memory_working_set;  // root cgroup usage - inactive_file, bytes
  struct Fs {
    int64_t capacity_bytes = 0, available_bytes = 0;
    int64_t inodes = 0, inodes_free = 0;
  };
  std::optional<Fs> nodefs;   // the kubelet root's filesystem
  std::optional<Fs> imagefs;  // the image store's filesystem
  std::optional<int64_t> max_pids, running_pids;
};

// statvfs of `path`: capacity and available bytes (f_bavail), inodes and free inodes (f_ffree).
// Errors: statvfs fails (ErrnoToStatus, naming the path).
absl::StatusOr<NodeStats::Fs> ReadFsStats(const std::string& path);
// upstream pidlimit.Stats: min(kernel.pid_max, kernel.threads-max) and the running tasks of
// /proc/loadavg (its 4th field's total). Unreadable values stay unset.
void ReadPidStats(const std::string& proc_root, NodeStats* stats);

// upstream makeSignalObservations for the signals above (available clamped at 0).
Observations MakeObservations(const NodeStats& stats);

// upstream thresholdsMet: the thresholds whose signal's available amount is below their value
// (plus their min-reclaim when `enforce_min_reclaim`). Unobserved signals meet nothing.
std::vector<Threshold> ThresholdsMet(const std::vector<Threshold>& thresholds,
                                     const Observations& observations, bool enforce_min_reclaim);

// Measured usage of one pod (nullopt: not measured).
struct PodUsage {
  std::optional<int64_t> memory;                    // pod cgroup working set, bytes
  std::map<std::string, int64_t> container_memory;  // container name -> working set
  std::optional<int64_t> disk;                      // rootfs + logs + local ephemeral volumes
  std::map<std::string, int64_t> container_disk;    // container name -> rootfs + logs
  std::optional<int64_t> processes;                 // tasks in the pod cgroup
};

// The pod's request of `resource` (upstream resourcehelper.PodRequests: the containers' sum,
// at least the largest init container's, plus the pod overhead), in base units.
int64_t PodRequest(const api::PodSpec& spec, const std::string& resource);

// Orders `pods` for eviction under `signal`'s pressure as upstream's rank functions:
//   memory: usage above requests first, then lower priority, then usage - requests (largest
//           first); disk signals the same with local ephemeral-storage usage; pid: lower
//           priority first, then the most processes. Pods without usage come first in the
//           "above requests" step (as upstream, which cannot tell).
// Stable; `usage` is by pod uid.
void RankPods(Signal signal, const std::map<std::string, PodUsage>& usage,
              std::vector<api::Pod>* pods);

// The Evicted message and event annotations (upstream evictionMessage):
//   "The node was low on resource: <resource>. Threshold quantity: <q>, available: <a>. "
//   + "Container <c> was using <usage>, request is <request>, has larger consumption of
//   <resource>. " per container above its request (memory and ephemeral-storage);
// annotations offending_containers, offending_containers_usage, starved_resource.
struct EvictionMessage {
  std::string message;
  std::map<std::string, std::string> annotations;
};
EvictionMessage MakeEvictionMessage(Signal signal, const api::Pod& pod, const PodUsage* usage,
                                    const std::vector<Threshold>& thresholds,
                                    const Observations& observations);

// The eviction manager's loop over node pressure. Thread-safe: Synchronize() runs on the
// manager's thread (or a test's), getters on any.
class NodeEvictionManager {
 public:
  struct Config {
    std::vector<Threshold> thresholds;
    absl::Duration pressure_transition_period = absl::Minutes(5);
    // evictionMaxPodGracePeriod: the grace period (seconds) of soft evictions, capped by the
    // pod's terminationGracePeriodSeconds; hard evictions use 1 s (upstream
    // immediateEvictionGracePeriodSeconds).
    int64_t max_pod_grace_period_s = 0;
    absl::Duration monitoring_interval = absl::Seconds(10);  // upstream evictionMonitoringPeriod
  };
  struct Deps {
    std::function<absl::StatusOr<NodeStats>()> node_stats;   // required
    std::function<std::vector<api::Pod>()> pods;             // the active pods; required
    std::function<std::map<std::string, PodUsage>()> usage;  // by pod uid; required
    // Evicts `pod` (status Failed/Evicted with `message`, a Warning "Evicted" event with
    // the annotations), killing it with `grace_period_s`. Returns false when it refused.
    std::function<bool(const api::Pod& pod, const EvictionMessage& m, int64_t grace_period_s)>
        evict;  // required
    // Whether an evicted pod's resources are reclaimed (upstream podResourcesAreReclaimed:
    // here, its volumes torn down). After an eviction the pass waits for it, polling every
    // second for at most 30 s (upstream waitForPodsCleanup). Optional.
    std::function<bool(const std::string& uid)> pod_cleaned_up;
    // Node-level reclaim for disk signals, in order: dead containers, then unused images
    // (upstream DeleteAllUnusedContainers, DeleteUnusedImages). Optional.
    std::vector<std::function<absl::Status()>> disk_reclaim;
    // A node event (Warning "EvictionThresholdMet", "Attempting to reclaim <resource>").
    std::function<void(const std::string& reason, const std::string& message)> node_event;
    std::function<absl::Time()> now;  // absl::Now when empty
  };

  NodeEvictionManager(Config config, Deps deps);
  ~NodeEvictionManager();

  // One pass of upstream synchronize. Returns the uid of the pod evicted, "" for none.
  // The usage of every active pod is read on each pass (so that background measurements
  // exist when pressure comes).
  // Errors: the node stats could not be read (nothing changes).
  absl::StatusOr<std::string> Synchronize();

  // The pressure conditions currently true ("MemoryPressure", "DiskPressure", "PIDPressure").
  std::set<std::string> Conditions() const;
  // The last observations (for tests and logs).
  Observations LastObservations() const;

  // Starts the thread: Synchronize every monitoring_interval, and soon after Trigger().
  void Start();
  // Asks the thread for a pass now (the memory threshold notifier). Thread-safe.
  void Trigger();
  // Stops and joins the thread. Idempotent.
  void Stop();

 private:
  absl::Time Now() const { return deps_.now ? deps_.now() : absl::Now(); }
  void Run();

  Config config_;
  Deps deps_;
  mutable absl::Mutex mu_;
  std::set<std::string> conditions_ ABSL_GUARDED_BY(mu_);
  Observations last_observations_ ABSL_GUARDED_BY(mu_);
  // Synchronize() state (one caller at a time; guarded for the getters' sake).
  std::vector<std::pair<Threshold, absl::Time>> first_observed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> condition_last_observed_ ABSL_GUARDED_BY(mu_);
  std::vector<Threshold> thresholds_met_ ABSL_GUARDED_BY(mu_);
  bool triggered_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex sync_mu_;  // serializes Synchronize()
  std::thread thread_;
};

// The memory threshold notifier (upstream memory_threshold_notifier.go + the cgroup v1
// threshold_notifier_linux.go): an eventfd registered through the root memory cgroup's
// cgroup.event_control on memory.usage_in_bytes, crossing which calls `on_crossed` (on the
// notifier's thread). The threshold is capacity - the memory.available threshold +
// inactive_file, refreshed with UpdateThreshold. Thread-safe.
class MemoryThresholdNotifier {
 public:
  // `memory_cgroup`: the v1 memory hierarchy's root (base/cgroup_mounts.h V1CgroupMount).
  MemoryThresholdNotifier(std::string memory_cgroup, std::function<void()> on_crossed);
  ~MemoryThresholdNotifier();
  // (Re)arms the notifier at usage `threshold_bytes`. Errors: the cgroup files cannot be
  // opened or written (e.g. a cgroup v2 host: no cgroup.event_control).
  absl::Status UpdateThreshold(int64_t threshold_bytes);
  // Stops the thread and closes the eventfd. Idempotent.
  void Stop();

 private:
  void Run(int efd, int stop_fd);
  const std::string memory_cgroup_;
  const std::function<void()> on_crossed_;
  absl::Mutex mu_;
  int efd_ ABSL_GUARDED_BY(mu_) = -1, usage_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};

// The usage (bytes) at which the notifier must fire for `threshold` (memory.available) on a
// node with `capacity` bytes and `inactive_file` bytes (upstream UpdateThreshold:
// capacity - threshold + inactive_file); nullopt when not positive.
std::optional<int64_t> MemoryNotifierThreshold(const Threshold& threshold, int64_t capacity,
                                               int64_t inactive_file);

}  // namespace berth::kubelet
