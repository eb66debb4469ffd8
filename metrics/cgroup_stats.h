// Resource usage of one cgroup read from cgroupfs (v1, hybrid or v2 unified), and network
// counters of a pod read from /proc/<pid>/net/dev inside its network namespace.
//
// Values follow cAdvisor's definitions (github.com/google/cadvisor container/libcontainer
// handler.go), so that container_* metrics and /stats/summary agree with an upstream node:
// working set = usage - inactive_file; on v1 with use_hierarchy the total_* keys of
// memory.stat are used; on v2 rss/cache/mapped_file are memory.stat anon/file/file_mapped.
//
// The parsers are pure functions over file contents; CgroupReader does the file I/O.
//
// Example:
//   ASSIGN_OR_RETURN(CgroupReader reader, CgroupReader::Create());
//   ASSIGN_OR_RETURN(CgroupStats s, reader.Read("/kubepods/besteffort/pod<uid>/<id>"));
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/cgroup_mounts.h"

namespace berth::metrics {

// How the host mounts cgroups under the root (normally /sys/fs/cgroup).
enum class CgroupMode {
  kV1,      // one v1 hierarchy per controller, no cgroup2 mount
  kHybrid,  // v1 controllers, plus a controller-less cgroup2 at <root>/unified
  kV2,      // cgroup2 mounted at the root (unified hierarchy)
};

// "v1", "hybrid" or "v2".
const char* CgroupModeName(CgroupMode mode);

// Block I/O of one device (v1 blkio.throttle.io_service{_bytes,d}_recursive, v2 io.stat).
struct BlkioDeviceStats {
  uint32_t major = 0;
  uint32_t minor = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint64_t read_ops = 0;
  uint64_t write_ops = 0;
};

// Usage counters and limits of one cgroup. Absent controllers leave their has_* false
// and their fields zero. Times are nanoseconds, sizes bytes.
struct CgroupStats {
  // cpu / cpuacct
  bool has_cpu = false;
  uint64_t cpu_usage_ns = 0;             // cpuacct.usage / cpu.stat usage_usec
  uint64_t cpu_user_ns = 0;              // cpuacct.usage_user (or .stat) / cpu.stat user_usec
  uint64_t cpu_system_ns = 0;            // cpuacct.usage_sys (or .stat) / cpu.stat system_usec
  uint64_t cpu_nr_periods = 0;           // cpu.stat nr_periods
  uint64_t cpu_nr_throttled = 0;         // cpu.stat nr_throttled
  uint64_t cpu_throttled_time_ns = 0;    // cpu.stat throttled_time / throttled_usec
  uint64_t cpu_shares = 0;               // cpu.shares, or v2 cpu.weight converted as cAdvisor does
  std::optional<uint64_t> cpu_quota_us;  // cfs quota; nullopt when unlimited
  uint64_t cpu_period_us = 0;            // cfs period

  // memory
  bool has_memory = false;
  uint64_t memory_usage_bytes = 0;        // memory.usage_in_bytes / memory.current
  uint64_t memory_working_set_bytes = 0;  // usage - inactive_file (0 if negative)
  uint64_t memory_rss_bytes = 0;
  uint64_t memory_cache_bytes = 0;
  uint64_t memory_mapped_file_bytes = 0;
  uint64_t memory_inactive_file_bytes = 0;
  uint64_t memory_pgfault = 0;                 // memory.stat pgfault (count)
  uint64_t memory_pgmajfault = 0;              // memory.stat pgmajfault (count)
  uint64_t memory_oom_kill = 0;                // memory.oom_control / memory.events oom_kill
  uint64_t memory_failcnt = 0;                 // memory.failcnt / memory.events max
  std::optional<uint64_t> memory_limit_bytes;  // nullopt when unlimited

  // pids
  bool has_pids = false;
  uint64_t pids_current = 0;
  std::optional<uint64_t> pids_limit;  // nullopt when "max"

  // blkio / io, one entry per device, sorted by (major, minor)
  bool has_blkio = false;
  std::vector<BlkioDeviceStats> blkio;
};

// ---- pure parsers (content of one cgroupfs/procfs file) ----

// "key value" lines (cpu.stat, memory.stat, memory.events, memory.oom_control,
// cpuacct.stat). Lines that do not parse are skipped.
std::map<std::string, uint64_t> ParseFlatKeyed(const std::string& content);

// A single unsigned integer file; "max" (and v1's near-2^63 "unlimited") -> nullopt.
// Errors: InvalidArgument when the content is not a number.
absl::StatusOr<std::optional<uint64_t>> ParseLimit(const std::string& content);

// A single unsigned integer file. Errors: InvalidArgument when not a number.
absl::StatusOr<uint64_t> ParseUint(const std::string& content);

// v1 blkio.throttle.io_service_bytes_recursive + io_serviced_recursive
// ("254:0 Read 20971520" lines; "Total" lines ignored) -> per device, sorted.
std::vector<BlkioDeviceStats> ParseV1Blkio(const std::string& service_bytes,
                                           const std::string& serviced);

// v2 io.stat ("254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0") -> per device, sorted.
std::vector<BlkioDeviceStats> ParseIoStat(const std::string& content);

// v2 cpu.max ("max 100000" or "50000 100000") -> quota (nullopt for max) and period.
// Errors: InvalidArgument on other content.
absl::Status ParseCpuMax(const std::string& content, std::optional<uint64_t>* quota_us,
                         uint64_t* period_us);

// cpu.weight (1..10000) -> cpu shares as cAdvisor reports them: 2 + (w-1)*262142/9999.
uint64_t CpuWeightToShares(uint64_t weight);

// Reads cgroup stats of one host. Thread-safe (immutable after Create).
class CgroupReader {
 public:
  // Reads the host's cgroups where /proc/self/mountinfo has them: FromMounts(HostCgroupMounts()).
  static absl::StatusOr<CgroupReader> Create();

  // Reads the hierarchies `mounts` (base/cgroup_mounts.h): v2 when the cgroup2 hierarchy is
  // the only one with controllers; hybrid when v1 controllers are mounted beside a cgroup2
  // mount; v1 otherwise. Each v1 controller is read at its own mount point. Errors:
  // FailedPrecondition when no cpu, cpuacct or memory hierarchy and no cgroup2 one is mounted.
  static absl::StatusOr<CgroupReader> FromMounts(const std::vector<CgroupMount>& mounts);

  // Reads a tree laid out as systemd mounts cgroups under `root` (test trees): detects the
  // mode under `root`: <root>/cgroup.controllers -> v2; else <root>/unified/cgroup.controllers
  // -> hybrid; else a v1 controller directory (<root>/memory, <root>/cpu, <root>/cpuacct,
  // <root>/cpu,cpuacct) -> v1. v1 controllers are expected at <root>/<controller>. Errors:
  // FailedPrecondition when nothing under `root` looks like cgroupfs.
  static absl::StatusOr<CgroupReader> Create(const std::string& root);

  CgroupMode mode() const { return mode_; }
  const std::string& root() const { return root_; }

  // Directory of `cgroup_path` (e.g. "/kubepods/pod<uid>/<id>") in the hierarchy of
  // v1 `controller` ("memory", "cpu", ...), or in the unified hierarchy when the mode is
  // v2 or `controller` is "unified" (hybrid).
  std::string Dir(const std::string& controller, const std::string& cgroup_path) const;

  // Reads the stats of `cgroup_path`, relative to the hierarchy roots ("/" is the root
  // cgroup). Controllers whose directory or files are missing are left out (has_* false).
  // Errors: NotFound when the cgroup exists in none of the cpu/cpuacct/memory hierarchies;
  // DataLoss when a present file does not parse (message names the file).
  absl::StatusOr<CgroupStats> Read(const std::string& cgroup_path) const;

  // cgroup v1 only: makes the blkio.throttle.io_service* files count. Since Linux 6.10 the
  // throttle layer of a disk is set up only when a rule is first configured for it, and until
  // then every cgroup reads "Total 0" on that disk. Writes the no-op rule "<major>:<minor> 0"
  // (no limit) to the root cgroup's blkio.throttle.write_bps_device for every disk under
  // `sys_block` (whole disks with a queue). Returns how many disks were set up; a disk
  // whose write fails is skipped (logged). No-op (0) on v2 or without a blkio hierarchy.
  int EnableV1BlkioStats(const std::string& sys_block = "/sys/block") const;

 private:
  CgroupReader(std::string root, CgroupMode mode) : root_(std::move(root)), mode_(mode) {}
  absl::Status ReadV1(const std::string& path, CgroupStats* s) const;
  absl::Status ReadV2(const std::string& path, CgroupStats* s) const;

  std::string root_;  // the directory the hierarchies are mounted under (error messages)
  CgroupMode mode_;
  std::string unified_;  // the cgroup2 hierarchy (v2, hybrid); "" on v1
  // v1 controller -> its hierarchy's directory; a controller not here is at <root>/<controller>.
  std::map<std::string, std::string> v1_dirs_;
};

// Counters of one network interface, from /proc/<pid>/net/dev.
struct InterfaceStats {
  std::string name;
  uint64_t rx_bytes = 0;
  uint64_t rx_packets = 0;
  uint64_t rx_errors = 0;
  uint64_t rx_dropped = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_errors = 0;
  uint64_t tx_dropped = 0;
};

// Parses the content of /proc/net/dev (two header lines, then "name: 16 counters"), leaving
// out the loopback "lo". Interfaces in file order. Errors: DataLoss on a malformed line.
absl::StatusOr<std::vector<InterfaceStats>> ParseNetDev(const std::string& content);

// Reads <proc_root>/<pid>/net/dev: the interfaces of the network namespace of `pid` (for a
// pod, its sandbox's infra/pause process). Errors: those of ReadFile (NotFound when the
// process is gone) and ParseNetDev.
absl::StatusOr<std::vector<InterfaceStats>> ReadNetworkStats(
    int pid, const std::string& proc_root = "/proc");

}  // namespace berth::metrics
