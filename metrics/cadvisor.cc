#include "metrics/cadvisor.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::metrics {
namespace {

constexpr double kNanosPerSecond = 1e9;

// Collects families by name, in cAdvisor's help texts and types.
class FamilyBuilder {
 public:
  void Add(const std::string& name, const std::string& help, MetricType type, Labels labels,
           double value) {
    auto [it, inserted] = families_.try_emplace(name);
    if (inserted) {
      it->second.name = name;
      it->second.help = help;
      it->second.type = type;
    }
    std::sort(labels.begin(), labels.end());
    it->second.samples.push_back(Sample{"", std::move(labels), value});
  }
  std::vector<FamilySnapshot> Take() {
    std::vector<FamilySnapshot> out;
    out.reserve(families_.size());
    for (auto& [name, family] : families_) out.push_back(std::move(family));
    return out;
  }

 private:
  std::map<std::string, FamilySnapshot> families_;
};

Labels BaseLabels(const CadvisorContainer& c) {
  return {{"container", c.container}, {"id", c.cgroup_path},       {"image", c.image},
          {"name", c.name},           {"namespace", c.namespace_}, {"pod", c.pod}};
}

Labels With(Labels labels, std::initializer_list<std::pair<std::string, std::string>> extra) {
  for (const auto& kv : extra) labels.push_back(kv);
  return labels;
}

void AddContainer(const CadvisorSample& sample, double now_seconds,
                  const std::function<std::string(uint32_t, uint32_t)>& device_name,
                  FamilyBuilder* b) {
  const Labels base = BaseLabels(sample.container);
  constexpr MetricType kC = MetricType::kCounter;
  constexpr MetricType kG = MetricType::kGauge;

  b->Add("container_start_time_seconds", "Start time of the container since unix epoch in seconds.",
         kG, base, sample.container.start_time_seconds);
  b->Add("container_last_seen", "Last time a container was seen by the exporter", kG, base,
         now_seconds);
  if (!sample.stats) return;
  const CgroupStats& s = *sample.stats;

  if (s.has_cpu) {
    b->Add("container_spec_cpu_period", "CPU period of the container.", kG, base,
           static_cast<double>(s.cpu_period_us));
    if (s.cpu_quota_us && *s.cpu_quota_us != 0) {
      b->Add("container_spec_cpu_quota", "CPU quota of the container.", kG, base,
             static_cast<double>(*s.cpu_quota_us));
    }
    b->Add("container_spec_cpu_shares", "CPU share of the container.", kG, base,
           static_cast<double>(s.cpu_shares));
    b->Add("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", kC,
           With(base, {{"cpu", "total"}}), s.cpu_usage_ns / kNanosPerSecond);
    b->Add("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", kC,
           base, s.cpu_user_ns / kNanosPerSecond);
    b->Add("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.",
           kC, base, s.cpu_system_ns / kNanosPerSecond);
    b->Add("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", kC,
           base, static_cast<double>(s.cpu_nr_periods));
    b->Add("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", kC,
           base, static_cast<double>(s.cpu_nr_throttled));
    b->Add("container_cpu_cfs_throttled_seconds_total",
           "Total time duration the container has been throttled.", kC, base,
           s.cpu_throttled_time_ns / kNanosPerSecond);
  }
  if (s.has_memory) {
    b->Add("container_spec_memory_limit_bytes", "Memory limit for the container.", kG, base,
           static_cast<double>(s.memory_limit_bytes.value_or(0)));
    b->Add("container_memory_usage_bytes",
           "Current memory usage in bytes, including all memory regardless of when it was "
           "accessed",
           kG, base, static_cast<double>(s.memory_usage_bytes));
    b->Add("container_memory_working_set_bytes", "Current working set in bytes.", kG, base,
           static_cast<double>(s.memory_working_set_bytes));
    b->Add("container_memory_rss", "Size of RSS in bytes.", kG, base,
           static_cast<double>(s.memory_rss_bytes));
    b->Add("container_memory_cache", "Number of bytes of page cache memory.", kG, base,
           static_cast<double>(s.memory_cache_bytes));
    b->Add("container_memory_mapped_file", "Size of memory mapped files in bytes.", kG, base,
           static_cast<double>(s.memory_mapped_file_bytes));
    b->Add("container_memory_failcnt", "Number of memory usage hits limits", kC, base,
           static_cast<double>(s.memory_failcnt));
    const char* kFailuresHelp = "Cumulative count of memory allocation failures.";
    for (const char* scope : {"container", "hierarchy"}) {
      b->Add("container_memory_failures_total", kFailuresHelp, kC,
             With(base, {{"failure_type", "pgfault"}, {"scope", scope}}),
             static_cast<double>(s.memory_pgfault));
      b->Add("container_memory_failures_total", kFailuresHelp, kC,
             With(base, {{"failure_type", "pgmajfault"}, {"scope", scope}}),
             static_cast<double>(s.memory_pgmajfault));
    }
    b->Add("container_oom_events_total", "Count of out of memory events observed for the container",
           kC, base, static_cast<double>(s.memory_oom_kill));
  }
  for (const BlkioDeviceStats& d : s.blkio) {
    const Labels labels = With(base, {{"device", device_name(d.major, d.minor)}});
    b->Add("container_fs_reads_bytes_total", "Cumulative count of bytes read", kC, labels,
           static_cast<double>(d.read_bytes));
    b->Add("container_fs_writes_bytes_total", "Cumulative count of bytes written", kC, labels,
           static_cast<double>(d.write_bytes));
    b->Add("container_fs_reads_total", "Cumulative count of reads completed", kC, labels,
           static_cast<double>(d.read_ops));
    b->Add("container_fs_writes_total", "Cumulative count of writes completed", kC, labels,
           static_cast<double>(d.write_ops));
  }
}

// cAdvisor's filesystem gauges of the container's writable layer, on its device.
void AddFilesystem(const CadvisorSample& sample,
                   const std::function<std::string(uint32_t, uint32_t)>& device_name,
                   FamilyBuilder* b) {
  if (!sample.rootfs) return;
  const FsStats& fs = *sample.rootfs;
  const Labels labels =
      With(BaseLabels(sample.container), {{"device", device_name(fs.dev_major, fs.dev_minor)}});
  constexpr MetricType kG = MetricType::kGauge;
  b->Add("container_fs_usage_bytes",
         "Number of bytes that are consumed by the container on this filesystem.", kG, labels,
         static_cast<double>(fs.used_bytes));
  b->Add("container_fs_limit_bytes",
         "Number of bytes that can be consumed by the container on this filesystem.", kG, labels,
         static_cast<double>(fs.capacity_bytes));
  b->Add("container_fs_inodes_free", "Number of available Inodes", kG, labels,
         static_cast<double>(fs.inodes_free));
  // Not cAdvisor's container_fs_inodes_total: a gauge named *_total fails
  // `promtool check metrics`.
}

void AddNetwork(const CadvisorSample& sample, FamilyBuilder* b) {
  const Labels base = BaseLabels(sample.container);
  constexpr MetricType kC = MetricType::kCounter;
  for (const InterfaceStats& i : sample.network) {
    const Labels l = With(base, {{"interface", i.name}});
    b->Add("container_network_receive_bytes_total", "Cumulative count of bytes received", kC, l,
           static_cast<double>(i.rx_bytes));
    b->Add("container_network_receive_packets_total", "Cumulative count of packets received", kC, l,
           static_cast<double>(i.rx_packets));
    b->Add("container_network_receive_packets_dropped_total",
           "Cumulative count of packets dropped while receiving", kC, l,
           static_cast<double>(i.rx_dropped));
    b->Add("container_network_receive_errors_total",
           "Cumulative count of errors encountered while receiving", kC, l,
           static_cast<double>(i.rx_errors));
    b->Add("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", kC, l,
           static_cast<double>(i.tx_bytes));
    b->Add("container_network_transmit_packets_total", "Cumulative count of packets transmitted",
           kC, l, static_cast<double>(i.tx_packets));
    b->Add("container_network_transmit_packets_dropped_total",
           "Cumulative count of packets dropped while transmitting", kC, l,
           static_cast<double>(i.tx_dropped));
    b->Add("container_network_transmit_errors_total",
           "Cumulative count of errors encountered while transmitting", kC, l,
           static_cast<double>(i.tx_errors));
  }
}

double WallClockSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

absl::StatusOr<MachineInfo> ReadMachineInfo(const std::string& proc_root) {
  MachineInfo info;
  // Logical CPUs as cAdvisor counts them: "processor" entries of cpuinfo.
  if (absl::StatusOr<std::string> cpuinfo = ReadFile(JoinPath(proc_root, "cpuinfo"));
      cpuinfo.ok()) {
    for (absl::string_view line : absl::StrSplit(*cpuinfo, '\n')) {
      if (absl::StartsWith(line, "processor")) ++info.cpu_cores;
    }
  }
  if (info.cpu_cores == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    info.cpu_cores = cpus > 0 ? static_cast<uint64_t>(cpus) : 0;
  }
  const std::string path = JoinPath(proc_root, "meminfo");
  ASSIGN_OR_RETURN(std::string meminfo, ReadFile(path));
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, " kB");
    uint64_t kb;
    if (!absl::SimpleAtoi(line, &kb)) break;
    info.memory_bytes = kb * 1024;
    return info;
  }
  return absl::DataLossError(absl::StrCat(path, ": no parsable MemTotal line"));
}

std::string BlockDeviceName(uint32_t major, uint32_t minor, const std::string& sys_root) {
  const std::string id = absl::StrCat(major, ":", minor);
  absl::StatusOr<std::string> uevent = ReadFile(JoinPath(sys_root, "dev/block/" + id + "/uevent"));
  if (uevent.ok()) {
    for (absl::string_view line : absl::StrSplit(*uevent, '\n')) {
      if (absl::ConsumePrefix(&line, "DEVNAME=") && !line.empty()) {
        return absl::StrCat("/dev/", line);
      }
    }
  }
  return id;
}

std::vector<FamilySnapshot> BuildCadvisorFamilies(
    const std::vector<CadvisorSample>& samples, const MachineInfo& machine, double now_seconds,
    const std::function<std::string(uint32_t, uint32_t)>& device_name,
    const std::optional<FsStats>& node_fs) {
  FamilyBuilder b;
  b.Add("machine_cpu_cores", "Number of logical CPU cores.", MetricType::kGauge, {},
        static_cast<double>(machine.cpu_cores));
  b.Add("machine_memory_bytes", "Amount of memory installed on the machine.", MetricType::kGauge,
        {}, static_cast<double>(machine.memory_bytes));
  if (node_fs) {
    CadvisorSample root;
    root.container.cgroup_path = "/";
    root.rootfs = node_fs;
    AddFilesystem(root, device_name, &b);
  }
  for (const CadvisorSample& sample : samples) {
    AddContainer(sample, now_seconds, device_name, &b);
    AddFilesystem(sample, device_name, &b);
    AddNetwork(sample, &b);
  }
  return b.Take();
}

void CollectCadvisorMetrics(const CgroupReader& reader,
                            const std::vector<CadvisorContainer>& containers,
                            const MachineInfo& machine, const CadvisorOptions& options,
                            std::vector<FamilySnapshot>* out) {
  std::vector<CadvisorSample> samples;
  samples.reserve(containers.size());
  std::set<std::string> fs_paths;
  for (const CadvisorContainer& c : containers) {
    CadvisorSample sample{c, std::nullopt, {}, std::nullopt};
    if (options.fs_usage != nullptr && !c.rootfs_dir.empty()) {
      fs_paths.insert(c.rootfs_dir);
      sample.rootfs = options.fs_usage->Get(c.rootfs_dir);
    }
    absl::StatusOr<CgroupStats> stats = reader.Read(c.cgroup_path);
    if (stats.ok()) {
      sample.stats = std::move(*stats);
    } else {
      LOG(DEBUG) << "cadvisor metrics: " << stats.status().ToString();
    }
    if (c.network_pid > 0) {
      absl::StatusOr<std::vector<InterfaceStats>> net =
          ReadNetworkStats(c.network_pid, options.proc_root);
      if (net.ok()) {
        sample.network = std::move(*net);
      } else {
        LOG(DEBUG) << "cadvisor metrics: network of pod " << c.namespace_ << "/" << c.pod << ": "
                   << net.status().ToString();
      }
    }
    samples.push_back(std::move(sample));
  }
  if (options.fs_usage != nullptr) options.fs_usage->Want("cadvisor", fs_paths);
  const double now = options.now ? options.now() : WallClockSeconds();
  // Device names rarely change: resolve each major:minor once per scrape.
  std::map<std::pair<uint32_t, uint32_t>, std::string> devices;
  auto device_name = [&](uint32_t major, uint32_t minor) {
    auto [it, inserted] = devices.try_emplace({major, minor});
    if (inserted) it->second = BlockDeviceName(major, minor, options.sys_root);
    return it->second;
  };
  std::optional<FsStats> node_fs;
  if (!options.root_fs_dir.empty()) {
    absl::StatusOr<FsStats> fs = MeasureFilesystem(options.root_fs_dir);
    if (fs.ok()) {
      node_fs = *fs;
    } else {
      LOG(DEBUG) << "cadvisor metrics: node fs: " << fs.status().ToString();
    }
  }
  for (FamilySnapshot& f : BuildCadvisorFamilies(samples, machine, now, device_name, node_fs)) {
    out->push_back(std::move(f));
  }
}

void RegisterCadvisorMetrics(Registry* registry, CgroupReader reader,
                             std::function<std::vector<CadvisorContainer>()> list,
                             CadvisorOptions options) {
  absl::StatusOr<MachineInfo> machine = ReadMachineInfo(options.proc_root);
  if (!machine.ok()) {
    LOG(WARNING) << "machine_* metrics: " << machine.status().ToString();
    machine = MachineInfo{};
  }
  auto state = std::make_shared<const std::tuple<CgroupReader, MachineInfo, CadvisorOptions>>(
      std::move(reader), *machine, std::move(options));
  registry->AddCollector([state, list = std::move(list)](std::vector<FamilySnapshot>* out) {
    const auto& [reader, machine, options] = *state;
    CollectCadvisorMetrics(reader, list(), machine, options, out);
  });
}

}  // namespace berth::metrics
