// Per-cgroup eBPF collectors: on-CPU time, run-queue latency, exec count, block I/O, TCP
// retransmits/resets (progs/cgroup_stats.bpf.c) and OOM kills (progs/oom.bpf.c).
//
// Everything is keyed by cgroup v2 id: bpf_get_current_cgroup_id(), i.e. the inode number of
// the cgroup's directory on the cgroup2 mount (/sys/fs/cgroup/unified on a hybrid host,
// /sys/fs/cgroup on a v2 host). metrics/ joins ids to pods/containers with CgroupIdOf().
// Only the cgroups in tracked subtrees (Track(): berth's parents of pod cgroups) are counted;
// the kernel programs return before any map access for every other task, so the host's own
// scheduling costs little. Bounds: on-CPU time, run-queue latency and exec counts for at most
// 2048 tracked cgroups at once (BERTH_MAX_SLOTS: a preallocated per-CPU array, 640 KiB per
// possible CPU); the other counters for at most 10240 cgroups (BERTH_MAX_CGROUPS).
//
// Example:
//   auto c = berth::ebpf::Collectors::Load({});
//   if (!c.ok()) { LOG(WARNING) << c.status(); /* export berth_ebpf_up 0 */ }
//   else { auto snap = (*c)->Snapshot(); ... }
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::ebpf {

// Number of log2 buckets of a LatencyHistogram (BERTH_HIST_BUCKETS in progs/berth_ebpf.h).
inline constexpr int kHistogramBuckets = 27;

// Upper bound on the tracked subtrees (BERTH_MAX_TRACKED in progs/berth_ebpf.h).
inline constexpr size_t kMaxTrackedCgroups = 8;

// Upper bound (exclusive) of bucket `i` in microseconds: 1, 2, 4, ... 2^i. The last bucket
// is unbounded (+Inf).
inline constexpr uint64_t HistogramBucketUpperBoundUs(int i) { return uint64_t{1} << i; }

// Cumulative log2 histogram of durations. buckets[i] is not cumulative (Prometheus `le`
// buckets are the running sum).
struct LatencyHistogram {
  std::array<uint64_t, kHistogramBuckets> buckets{};
  uint64_t count = 0;
  uint64_t sum_ns = 0;
};

// Monotonic counters of one cgroup since the collectors were loaded (or the cgroup created).
struct CgroupStats {
  uint64_t cgroup_id = 0;
  uint64_t cpu_ns = 0;            // on-CPU time of the cgroup's tasks
  LatencyHistogram runq_latency;  // wakeup/preemption -> running
  uint64_t exec_count = 0;        // successful execve()s
  uint64_t io_read_bytes = 0;     // block I/O of the cgroup, attributed as the block
  uint64_t io_write_bytes = 0;    // cgroup controller does (the bios' blkcg)
  LatencyHistogram io_latency;    // block request issue -> complete
  uint64_t tcp_retransmits = 0;   // on the cgroup's sockets
  uint64_t tcp_resets_sent = 0;
  uint64_t tcp_resets_received = 0;
  uint64_t net_rx_bytes = 0;    // packets of the cgroup's sockets, counted only below
  uint64_t net_rx_packets = 0;  // a cgroup passed to AttachNetwork()
  uint64_t net_tx_bytes = 0;
  uint64_t net_tx_packets = 0;
  uint64_t oom_kills = 0;  // OOM victims whose cgroup this was
};

// One OOM kill (oom:mark_victim).
struct OomKill {
  uint64_t cgroup_id = 0;  // the victim's cgroup v2 id
  std::string comm;        // the victim's command (task comm, at most 15 characters)
  int32_t pid = 0;         // the victim's process id (tgid)
  uint32_t uid = 0;
  std::chrono::system_clock::time_point time;  // when the kernel marked the victim
};

// One consistent-enough view of all counters (each cgroup's entry is read atomically per
// field, not across fields).
struct StatsSnapshot {
  std::unordered_map<uint64_t, CgroupStats> cgroups;  // by cgroup id
  std::vector<OomKill> oom_kills;  // oldest first, the last Options::max_oom_kills
};

// What to load. Collectors that are switched off cost nothing at runtime.
struct Options {
  // Kernel BTF for CO-RE relocations; empty uses /sys/kernel/btf/vmlinux.
  std::string btf_path;
  bool sched = true;  // on-CPU time + run-queue latency (sched_switch)
  bool exec = true;   // sched_process_exec
  bool io = true;     // block_rq_issue, block_rq_complete
  bool tcp = true;    // tcp_retransmit_skb, tcp_send_reset, tcp_receive_reset
  bool net = true;    // cgroup_skb programs, attached per cgroup by AttachNetwork()
  bool oom = true;    // oom:mark_victim through a ring buffer and one polling thread
  // The first tracked subtrees, as given to Track() after load (e.g. {"/berth/kubepods"}).
  std::vector<std::string> tracked_cgroups;
  // Count every cgroup but the root instead of the tracked subtrees (the host's every
  // context switch then runs the full programs).
  bool track_all_cgroups = false;
  // With track_all_cgroups, also count tasks of the root cgroup (id 1).
  bool count_root_cgroup = false;
  // How many recent OOM kills Snapshot() returns.
  size_t max_oom_kills = 256;
};

// The loaded BPF programs and their maps. Thread-safe: Snapshot() and Prune() may be called
// concurrently from any thread. Destroying it detaches all programs and stops the OOM thread.
class Collectors {
 public:
  // Opens, loads and attaches the enabled programs. Errors say which object/step failed and
  // why, including libbpf's diagnostics (missing BTF, no CAP_BPF, verifier rejection, a
  // missing tracepoint): the caller logs it once and exports berth_ebpf_up 0.
  static absl::StatusOr<std::unique_ptr<Collectors>> Load(const Options& options);

  virtual ~Collectors() = default;

  // Reads all per-cgroup counters and the retained OOM kills.
  virtual StatsSnapshot Snapshot() = 0;

  // Drops the counters of every cgroup id for which `alive(id)` returns false (e.g. its
  // directory is gone and cgroup_rmdir was missed). Returns how many ids were dropped.
  virtual size_t Prune(const std::function<bool(uint64_t)>& alive) = 0;

  // Starts counting the cgroup `cgroup_path` (relative to the hierarchy roots, e.g.
  // "/berth/kubepods") and its descendants, from now on; before, the kernel programs return
  // at once for their tasks. Creates the directory (mkdir -p) in the cgroup2 hierarchy and,
  // on a v1/hybrid host, in the blkio hierarchy when missing. Idempotent. Errors: more than
  // kMaxTrackedCgroups subtrees, mkdir fails, collectors loaded without the cgroup_stats
  // programs.
  virtual absl::Status Track(const std::string& cgroup_path) = 0;

  // Starts counting network bytes/packets (cgroup_skb ingress and egress) of the sockets in
  // the cgroup v2 directory `cgroup_v2_path` and its descendants, e.g. the parent of all pod
  // cgroups (what berth attaches) or one pod's cgroup; counts land on the socket's own cgroup
  // id. Attach either a cgroup or its ancestor, never both: both programs would count every
  // packet. Idempotent. Errors: the path cannot be opened, or collectors loaded without
  // Options::net.
  virtual absl::Status AttachNetwork(const std::string& cgroup_v2_path) = 0;
  // Stops counting for a path given to AttachNetwork(); no-op when not attached.
  virtual void DetachNetwork(const std::string& cgroup_v2_path) = 0;
};

// The cgroup v2 id of the cgroup directory `cgroup_v2_path` (its inode number), e.g.
// "/sys/fs/cgroup/unified/kubepods/pod<uid>". Returns 0 (never a valid id) when the path
// cannot be stat'ed.
uint64_t CgroupIdOf(const std::string& cgroup_v2_path);

}  // namespace berth::ebpf
