#include "metrics/cgroup_stats.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::metrics {
namespace {

// cAdvisor treats memory limits above 2^62 as unlimited (v1 writes PAGE_COUNTER_MAX pages).
constexpr uint64_t kMaxLimit = uint64_t{1} << 62;

// The file's content, nullopt when it does not exist; other errors are returned.
absl::StatusOr<std::optional<std::string>> ReadOptional(const std::string& path) {
  absl::StatusOr<std::string> content = ReadFile(path);
  if (content.ok()) return std::optional<std::string>(std::move(*content));
  if (absl::IsNotFound(content.status())) return std::optional<std::string>();
  return content.status();
}

// Reads an optional single-number file into *out; returns whether it existed.
absl::StatusOr<bool> ReadUintFile(const std::string& path, uint64_t* out) {
  ASSIGN_OR_RETURN(std::optional<std::string> content, ReadOptional(path));
  if (!content) return false;
  absl::StatusOr<uint64_t> v = ParseUint(*content);
  if (!v.ok()) return absl::DataLossError(absl::StrCat(path, ": ", v.status().message()));
  *out = *v;
  return true;
}

absl::StatusOr<bool> ReadLimitFile(const std::string& path, std::optional<uint64_t>* out) {
  ASSIGN_OR_RETURN(std::optional<std::string> content, ReadOptional(path));
  if (!content) return false;
  absl::StatusOr<std::optional<uint64_t>> v = ParseLimit(*content);
  if (!v.ok()) return absl::DataLossError(absl::StrCat(path, ": ", v.status().message()));
  *out = *v;
  return true;
}

// Keyed file, empty map when absent.
absl::StatusOr<std::map<std::string, uint64_t>> ReadKeyedFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::optional<std::string> content, ReadOptional(path));
  if (!content) return std::map<std::string, uint64_t>();
  return ParseFlatKeyed(*content);
}

uint64_t Get(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

bool IsDir(const std::string& path) { return PathExists(path); }

bool ParseDevice(absl::string_view dev, uint32_t* major, uint32_t* minor) {
  std::pair<absl::string_view, absl::string_view> mm = absl::StrSplit(dev, ':');
  return absl::SimpleAtoi(mm.first, major) && absl::SimpleAtoi(mm.second, minor);
}

BlkioDeviceStats* DeviceEntry(std::vector<BlkioDeviceStats>* devices, uint32_t major,
                              uint32_t minor) {
  for (BlkioDeviceStats& d : *devices) {
    if (d.major == major && d.minor == minor) return &d;
  }
  devices->push_back(BlkioDeviceStats{major, minor});
  return &devices->back();
}

void SortDevices(std::vector<BlkioDeviceStats>* devices) {
  std::sort(devices->begin(), devices->end(), [](const auto& a, const auto& b) {
    return std::tie(a.major, a.minor) < std::tie(b.major, b.minor);
  });
}

void SetWorkingSet(const std::map<std::string, uint64_t>& stat, const std::string& inactive_key,
                   CgroupStats* s) {
  s->memory_inactive_file_bytes = Get(stat, inactive_key);
  s->memory_working_set_bytes = s->memory_usage_bytes > s->memory_inactive_file_bytes
                                    ? s->memory_usage_bytes - s->memory_inactive_file_bytes
                                    : 0;
}

}  // namespace

const char* CgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kV1:
      return "v1";
    case CgroupMode::kHybrid:
      return "hybrid";
    case CgroupMode::kV2:
      return "v2";
  }
  return "unknown";
}

std::map<std::string, uint64_t> ParseFlatKeyed(const std::string& content) {
  std::map<std::string, uint64_t> out;
  for (absl::string_view line : absl::StrSplit(content, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t v;
    if (f.size() == 2 && absl::SimpleAtoi(f[1], &v)) out[std::string(f[0])] = v;
  }
  return out;
}

absl::StatusOr<uint64_t> ParseUint(const std::string& content) {
  uint64_t v;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(content), &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an unsigned integer: \"", absl::StripAsciiWhitespace(content), "\""));
  }
  return v;
}

absl::StatusOr<std::optional<uint64_t>> ParseLimit(const std::string& content) {
  absl::string_view s = absl::StripAsciiWhitespace(content);
  if (s == "max" || s == "-1") return std::optional<uint64_t>();
  ASSIGN_OR_RETURN(uint64_t v, ParseUint(content));
  if (v > kMaxLimit) return std::optional<uint64_t>();
  return std::optional<uint64_t>(v);
}

std::vector<BlkioDeviceStats> ParseV1Blkio(const std::string& service_bytes,
                                           const std::string& serviced) {
  std::vector<BlkioDeviceStats> out;
  auto parse = [&out](const std::string& content, bool bytes) {
    for (absl::string_view line : absl::StrSplit(content, '\n', absl::SkipWhitespace())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      uint32_t major, minor;
      uint64_t v;
      if (f.size() != 3 || !ParseDevice(f[0], &major, &minor) || !absl::SimpleAtoi(f[2], &v)) {
        continue;  // "Total N" and unknown lines
      }
      if (f[1] != "Read" && f[1] != "Write") continue;
      BlkioDeviceStats* d = DeviceEntry(&out, major, minor);
      if (f[1] == "Read") {
        (bytes ? d->read_bytes : d->read_ops) = v;
      } else {
        (bytes ? d->write_bytes : d->write_ops) = v;
      }
    }
  };
  parse(service_bytes, true);
  parse(serviced, false);
  SortDevices(&out);
  return out;
}

std::vector<BlkioDeviceStats> ParseIoStat(const std::string& content) {
  std::vector<BlkioDeviceStats> out;
  for (absl::string_view line : absl::StrSplit(content, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint32_t major, minor;
    if (f.empty() || !ParseDevice(f[0], &major, &minor)) continue;
    BlkioDeviceStats* d = DeviceEntry(&out, major, minor);
    for (size_t i = 1; i < f.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(f[i], '=');
      uint64_t v;
      if (!absl::SimpleAtoi(kv.second, &v)) continue;
      if (kv.first == "rbytes") d->read_bytes = v;
      if (kv.first == "wbytes") d->write_bytes = v;
      if (kv.first == "rios") d->read_ops = v;
      if (kv.first == "wios") d->write_ops = v;
    }
  }
  SortDevices(&out);
  return out;
}

absl::Status ParseCpuMax(const std::string& content, std::optional<uint64_t>* quota_us,
                         uint64_t* period_us) {
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::StripAsciiWhitespace(content), ' ', absl::SkipEmpty());
  uint64_t quota = 0;
  if (f.size() != 2 || !absl::SimpleAtoi(f[1], period_us) ||
      (f[0] != "max" && !absl::SimpleAtoi(f[0], &quota))) {
    return absl::InvalidArgumentError(
        absl::StrCat("cpu.max: expected \"<quota|max> <period>\", got \"",
                     absl::StripAsciiWhitespace(content), "\""));
  }
  *quota_us = f[0] == "max" ? std::nullopt : std::optional<uint64_t>(quota);
  return absl::OkStatus();
}

uint64_t CpuWeightToShares(uint64_t weight) {
  if (weight < 1 || weight > 10000) return 0;
  return 2 + ((weight - 1) * 262142) / 9999;
}

absl::StatusOr<CgroupReader> CgroupReader::Create() { return FromMounts(HostCgroupMounts()); }

absl::StatusOr<CgroupReader> CgroupReader::FromMounts(const std::vector<CgroupMount>& mounts) {
  const std::string unified = UnifiedCgroupMount(mounts);
  std::map<std::string, std::string> v1;
  std::string first_v1;
  for (const CgroupMount& m : mounts) {
    if (m.v2) continue;
    for (const std::string& c : m.controllers) {
      if (c.rfind("name=", 0) == 0) continue;  // a named hierarchy has no resource files
      v1.emplace(c, m.mount_point);
      if (first_v1.empty()) first_v1 = m.mount_point;
    }
  }
  if (v1.empty()) {
    if (unified.empty()) {
      return absl::FailedPreconditionError(
          "detect cgroup mode: no cgroup hierarchy in /proc/self/mountinfo");
    }
    CgroupReader reader(unified, CgroupMode::kV2);
    reader.unified_ = unified;
    return reader;
  }
  if (!v1.count("cpu") && !v1.count("cpuacct") && !v1.count("memory")) {
    return absl::FailedPreconditionError(
        "detect cgroup mode: no v1 cpu, cpuacct or memory hierarchy is mounted");
  }
  CgroupReader reader(first_v1.substr(0, first_v1.rfind('/')),
                      unified.empty() ? CgroupMode::kV1 : CgroupMode::kHybrid);
  reader.unified_ = unified;
  reader.v1_dirs_ = std::move(v1);
  return reader;
}

absl::StatusOr<CgroupReader> CgroupReader::Create(const std::string& root) {
  if (PathExists(JoinPath(root, "cgroup.controllers"))) {
    CgroupReader reader(root, CgroupMode::kV2);
    reader.unified_ = root;
    return reader;
  }
  CgroupMode mode = PathExists(JoinPath(root, "unified/cgroup.controllers")) ? CgroupMode::kHybrid
                                                                             : CgroupMode::kV1;
  CgroupReader reader(root, mode);
  if (mode == CgroupMode::kHybrid) reader.unified_ = JoinPath(root, "unified");
  for (const char* name : {"cpu", "cpu,cpuacct"}) {
    if (IsDir(JoinPath(root, name))) {
      reader.v1_dirs_["cpu"] = JoinPath(root, name);
      break;
    }
  }
  for (const char* name : {"cpuacct", "cpu,cpuacct"}) {
    if (IsDir(JoinPath(root, name))) {
      reader.v1_dirs_["cpuacct"] = JoinPath(root, name);
      break;
    }
  }
  if (!reader.v1_dirs_.count("cpu") && !reader.v1_dirs_.count("cpuacct") &&
      !IsDir(JoinPath(root, "memory"))) {
    return absl::FailedPreconditionError(
        absl::StrCat("detect cgroup mode under ", root,
                     ": no cgroup.controllers and no v1 cpu, cpuacct or memory hierarchy"));
  }
  return reader;
}

std::string CgroupReader::Dir(const std::string& controller, const std::string& cgroup_path) const {
  if (mode_ == CgroupMode::kV2) return JoinPath(unified_, cgroup_path);
  if (controller == "unified" && !unified_.empty()) return JoinPath(unified_, cgroup_path);
  if (auto it = v1_dirs_.find(controller); it != v1_dirs_.end())
    return JoinPath(it->second, cgroup_path);
  return JoinPath(JoinPath(root_, controller), cgroup_path);
}

int CgroupReader::EnableV1BlkioStats(const std::string& sys_block) const {
  if (mode_ == CgroupMode::kV2) return 0;
  const std::string rule_file = JoinPath(Dir("blkio", "/"), "blkio.throttle.write_bps_device");
  if (!PathExists(rule_file)) return 0;
  int enabled = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(sys_block, ec)) {
    if (!PathExists(JoinPath(e.path().string(), "queue"))) continue;
    absl::StatusOr<std::string> dev = ReadFile(JoinPath(e.path().string(), "dev"));
    if (!dev.ok()) continue;
    const std::string rule = absl::StrCat(absl::StripAsciiWhitespace(*dev), " 0");
    // A cgroupfs file: one write(2) of the whole rule, not a rename.
    std::ofstream out(rule_file);
    out << rule << std::flush;
    if (!out) {
      LOG(WARNING) << "cgroup stats: cannot enable blkio accounting of "
                   << e.path().filename().string() << " (" << rule << " > " << rule_file << ")";
      continue;
    }
    ++enabled;
  }
  return enabled;
}

absl::StatusOr<CgroupStats> CgroupReader::Read(const std::string& cgroup_path) const {
  CgroupStats s;
  absl::Status status =
      mode_ == CgroupMode::kV2 ? ReadV2(cgroup_path, &s) : ReadV1(cgroup_path, &s);
  if (!status.ok()) {
    return Annotate(status, absl::StrCat("read cgroup ", cgroup_path, " (", CgroupModeName(mode_),
                                         " under ", root_, ")"));
  }
  return s;
}

absl::Status CgroupReader::ReadV1(const std::string& path, CgroupStats* s) const {
  const std::string cpuacct = Dir("cpuacct", path);
  const std::string cpu = Dir("cpu", path);
  const std::string memory = Dir("memory", path);
  const bool have_cpuacct = IsDir(cpuacct), have_cpu = IsDir(cpu), have_memory = IsDir(memory);
  if (!have_cpuacct && !have_cpu && !have_memory) {
    return absl::NotFoundError("no such cgroup in the cpu, cpuacct or memory hierarchy");
  }

  if (have_cpuacct) {
    ASSIGN_OR_RETURN(s->has_cpu,
                     ReadUintFile(JoinPath(cpuacct, "cpuacct.usage"), &s->cpu_usage_ns));
    ASSIGN_OR_RETURN(bool have_user,
                     ReadUintFile(JoinPath(cpuacct, "cpuacct.usage_user"), &s->cpu_user_ns));
    ASSIGN_OR_RETURN(bool have_sys,
                     ReadUintFile(JoinPath(cpuacct, "cpuacct.usage_sys"), &s->cpu_system_ns));
    if (!have_user || !have_sys) {
      // Older kernels: cpuacct.stat in USER_HZ ticks.
      ASSIGN_OR_RETURN(auto stat, ReadKeyedFile(JoinPath(cpuacct, "cpuacct.stat")));
      const uint64_t ns_per_tick = 1000000000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
      s->cpu_user_ns = Get(stat, "user") * ns_per_tick;
      s->cpu_system_ns = Get(stat, "system") * ns_per_tick;
    }
  }
  if (have_cpu) {
    ASSIGN_OR_RETURN(auto stat, ReadKeyedFile(JoinPath(cpu, "cpu.stat")));
    s->cpu_nr_periods = Get(stat, "nr_periods");
    s->cpu_nr_throttled = Get(stat, "nr_throttled");
    s->cpu_throttled_time_ns = Get(stat, "throttled_time");
    ASSIGN_OR_RETURN(bool have_shares, ReadUintFile(JoinPath(cpu, "cpu.shares"), &s->cpu_shares));
    ASSIGN_OR_RETURN(bool have_period,
                     ReadUintFile(JoinPath(cpu, "cpu.cfs_period_us"), &s->cpu_period_us));
    ASSIGN_OR_RETURN(bool have_quota,
                     ReadLimitFile(JoinPath(cpu, "cpu.cfs_quota_us"), &s->cpu_quota_us));
    s->has_cpu = s->has_cpu || have_shares || have_period || have_quota;
  }
  if (have_memory) {
    ASSIGN_OR_RETURN(s->has_memory, ReadUintFile(JoinPath(memory, "memory.usage_in_bytes"),
                                                 &s->memory_usage_bytes));
    ASSIGN_OR_RETURN(auto stat, ReadKeyedFile(JoinPath(memory, "memory.stat")));
    uint64_t use_hierarchy = 0;
    ASSIGN_OR_RETURN(bool have_hierarchy,
                     ReadUintFile(JoinPath(memory, "memory.use_hierarchy"), &use_hierarchy));
    const std::string prefix = have_hierarchy && use_hierarchy == 1 ? "total_" : "";
    s->memory_rss_bytes = Get(stat, prefix + "rss");
    s->memory_cache_bytes = Get(stat, prefix + "cache");
    s->memory_mapped_file_bytes = Get(stat, prefix + "mapped_file");
    s->memory_pgfault = Get(stat, "pgfault");
    s->memory_pgmajfault = Get(stat, "pgmajfault");
    SetWorkingSet(stat, "total_inactive_file", s);
    RETURN_IF_ERROR(ReadUintFile(JoinPath(memory, "memory.failcnt"), &s->memory_failcnt).status());
    ASSIGN_OR_RETURN(auto oom, ReadKeyedFile(JoinPath(memory, "memory.oom_control")));
    s->memory_oom_kill = Get(oom, "oom_kill");
    RETURN_IF_ERROR(
        ReadLimitFile(JoinPath(memory, "memory.limit_in_bytes"), &s->memory_limit_bytes).status());
  }
  const std::string pids = Dir("pids", path);
  if (IsDir(pids)) {
    ASSIGN_OR_RETURN(s->has_pids, ReadUintFile(JoinPath(pids, "pids.current"), &s->pids_current));
    RETURN_IF_ERROR(ReadLimitFile(JoinPath(pids, "pids.max"), &s->pids_limit).status());
  }
  const std::string blkio = Dir("blkio", path);
  if (IsDir(blkio)) {
    ASSIGN_OR_RETURN(auto bytes,
                     ReadOptional(JoinPath(blkio, "blkio.throttle.io_service_bytes_recursive")));
    ASSIGN_OR_RETURN(auto ops,
                     ReadOptional(JoinPath(blkio, "blkio.throttle.io_serviced_recursive")));
    if (bytes || ops) {
      s->has_blkio = true;
      s->blkio = ParseV1Blkio(bytes.value_or(""), ops.value_or(""));
    }
  }
  return absl::OkStatus();
}

absl::Status CgroupReader::ReadV2(const std::string& path, CgroupStats* s) const {
  const std::string dir = Dir("", path);
  if (!IsDir(dir)) return absl::NotFoundError("no such cgroup in the unified hierarchy");

  ASSIGN_OR_RETURN(std::optional<std::string> cpu_stat, ReadOptional(JoinPath(dir, "cpu.stat")));
  if (cpu_stat) {
    std::map<std::string, uint64_t> stat = ParseFlatKeyed(*cpu_stat);
    s->has_cpu = true;
    s->cpu_usage_ns = Get(stat, "usage_usec") * 1000;
    s->cpu_user_ns = Get(stat, "user_usec") * 1000;
    s->cpu_system_ns = Get(stat, "system_usec") * 1000;
    s->cpu_nr_periods = Get(stat, "nr_periods");
    s->cpu_nr_throttled = Get(stat, "nr_throttled");
    s->cpu_throttled_time_ns = Get(stat, "throttled_usec") * 1000;
  }
  uint64_t weight = 0;
  ASSIGN_OR_RETURN(bool have_weight, ReadUintFile(JoinPath(dir, "cpu.weight"), &weight));
  if (have_weight) s->cpu_shares = CpuWeightToShares(weight);
  ASSIGN_OR_RETURN(std::optional<std::string> cpu_max, ReadOptional(JoinPath(dir, "cpu.max")));
  if (cpu_max) {
    absl::Status st = ParseCpuMax(*cpu_max, &s->cpu_quota_us, &s->cpu_period_us);
    if (!st.ok())
      return absl::DataLossError(absl::StrCat(JoinPath(dir, "cpu.max"), ": ", st.message()));
  }

  ASSIGN_OR_RETURN(s->has_memory,
                   ReadUintFile(JoinPath(dir, "memory.current"), &s->memory_usage_bytes));
  if (s->has_memory) {
    ASSIGN_OR_RETURN(auto stat, ReadKeyedFile(JoinPath(dir, "memory.stat")));
    s->memory_rss_bytes = Get(stat, "anon");
    s->memory_cache_bytes = Get(stat, "file");
    s->memory_mapped_file_bytes = Get(stat, "file_mapped");
    s->memory_pgfault = Get(stat, "pgfault");
    s->memory_pgmajfault = Get(stat, "pgmajfault");
    SetWorkingSet(stat, "inactive_file", s);
    ASSIGN_OR_RETURN(auto events, ReadKeyedFile(JoinPath(dir, "memory.events")));
    s->memory_oom_kill = Get(events, "oom_kill");
    s->memory_failcnt = Get(events, "max");
    RETURN_IF_ERROR(ReadLimitFile(JoinPath(dir, "memory.max"), &s->memory_limit_bytes).status());
  }

  ASSIGN_OR_RETURN(s->has_pids, ReadUintFile(JoinPath(dir, "pids.current"), &s->pids_current));
  if (s->has_pids) {
    RETURN_IF_ERROR(ReadLimitFile(JoinPath(dir, "pids.max"), &s->pids_limit).status());
  }
  ASSIGN_OR_RETURN(std::optional<std::string> io, ReadOptional(JoinPath(dir, "io.stat")));
  if (io) {
    s->has_blkio = true;
    s->blkio = ParseIoStat(*io);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<InterfaceStats>> ParseNetDev(const std::string& content) {
  std::vector<InterfaceStats> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(content, '\n', absl::SkipWhitespace())) {
    if (++line_no <= 2) continue;  // "Inter-|   Receive ..." and "face |bytes ..." headers
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      return absl::DataLossError(
          absl::StrCat("net/dev line ", line_no, ": no ':' in \"", line, "\""));
    }
    InterfaceStats st;
    st.name = std::string(absl::StripAsciiWhitespace(line.substr(0, colon)));
    std::vector<absl::string_view> f =
        absl::StrSplit(line.substr(colon + 1), ' ', absl::SkipEmpty());
    uint64_t v[16];
    bool ok = f.size() >= 16;
    for (size_t i = 0; ok && i < 16; ++i) ok = absl::SimpleAtoi(f[i], &v[i]);
    if (!ok) {
      return absl::DataLossError(
          absl::StrCat("net/dev line ", line_no, " (", st.name, "): expected 16 counters"));
    }
    if (st.name == "lo") continue;
    // Receive: bytes packets errs drop fifo frame compressed multicast; Transmit: bytes
    // packets errs drop fifo colls carrier compressed.
    st.rx_bytes = v[0];
    st.rx_packets = v[1];
    st.rx_errors = v[2];
    st.rx_dropped = v[3];
    st.tx_bytes = v[8];
    st.tx_packets = v[9];
    st.tx_errors = v[10];
    st.tx_dropped = v[11];
    out.push_back(std::move(st));
  }
  return out;
}

absl::StatusOr<std::vector<InterfaceStats>> ReadNetworkStats(int pid,
                                                             const std::string& proc_root) {
  const std::string path = JoinPath(proc_root, absl::StrCat(pid, "/net/dev"));
  ASSIGN_OR_RETURN(std::string content, ReadFile(path));
  absl::StatusOr<std::vector<InterfaceStats>> out = ParseNetDev(content);
  if (!out.ok()) return Annotate(out.status(), path);
  return out;
}

}  // namespace berth::metrics
