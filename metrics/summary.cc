#include "metrics/summary.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "metrics/cadvisor.h"

namespace berth::metrics {
namespace {

using Json = nlohmann::json;

double WallClockSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// CPUStats; null when there are no CPU stats.
Json CpuJson(const StatsPoint& p, const std::string& time) {
  if (!p.stats || !p.stats->has_cpu) return nullptr;
  Json j = {{"time", time}, {"usageCoreNanoSeconds", p.stats->cpu_usage_ns}};
  if (p.usage_nano_cores) j["usageNanoCores"] = *p.usage_nano_cores;
  return j;
}

// MemoryStats; availableBytes = limit - working set when `limit` is known (0 = unknown).
Json MemoryJson(const StatsPoint& p, uint64_t limit, const std::string& time) {
  if (!p.stats || !p.stats->has_memory) return nullptr;
  const CgroupStats& s = *p.stats;
  Json j = {{"time", time},
            {"usageBytes", s.memory_usage_bytes},
            {"workingSetBytes", s.memory_working_set_bytes},
            {"rssBytes", s.memory_rss_bytes},
            {"pageFaults", s.memory_pgfault},
            {"majorPageFaults", s.memory_pgmajfault}};
  if (limit == 0 && s.memory_limit_bytes) limit = *s.memory_limit_bytes;
  if (limit != 0) {
    j["availableBytes"] =
        limit > s.memory_working_set_bytes ? limit - s.memory_working_set_bytes : 0;
  }
  return j;
}

Json InterfaceJson(const InterfaceStats& i) {
  return {{"name", i.name},
          {"rxBytes", i.rx_bytes},
          {"rxErrors", i.rx_errors},
          {"txBytes", i.tx_bytes},
          {"txErrors", i.tx_errors}};
}

// NetworkStats: the default interface (eth0, else the first) inline, plus all interfaces.
Json NetworkJson(const std::vector<InterfaceStats>& interfaces, const std::string& time) {
  if (interfaces.empty()) return nullptr;
  const InterfaceStats* def = &interfaces.front();
  for (const InterfaceStats& i : interfaces) {
    if (i.name == "eth0") def = &i;
  }
  Json j = InterfaceJson(*def);
  j["time"] = time;
  Json all = Json::array();
  for (const InterfaceStats& i : interfaces) all.push_back(InterfaceJson(i));
  j["interfaces"] = std::move(all);
  return j;
}

Json FsJson(const std::optional<FsStats>& fs) {
  if (!fs) return nullptr;
  return {{"time", FormatTime(fs->time_seconds)}, {"availableBytes", fs->available_bytes},
          {"capacityBytes", fs->capacity_bytes},  {"usedBytes", fs->used_bytes},
          {"inodesFree", fs->inodes_free},        {"inodes", fs->inodes},
          {"inodesUsed", fs->inodes_used}};
}

// The pod's ephemeral storage, as the kubelet sums it: containers' writable layers and logs
// plus its disk-backed volumes; capacity/available of the first measured filesystem.
Json EphemeralJson(const PodSummaryInput& in) {
  std::optional<FsStats> total;
  auto add = [&](const std::optional<FsStats>& fs) {
    if (!fs) return;
    if (!total) {
      total = *fs;
      return;
    }
    total->used_bytes += fs->used_bytes;
    total->inodes_used += fs->inodes_used;
    total->time_seconds = std::max(total->time_seconds, fs->time_seconds);
  };
  for (const auto& fs : in.rootfs) add(fs);
  for (const auto& fs : in.logs) add(fs);
  for (size_t i = 0; i < in.volumes.size(); ++i) {
    if (i < in.pod.volumes.size() && !in.pod.volumes[i].local_ephemeral) continue;
    add(in.volumes[i]);
  }
  return FsJson(total);
}

void SetIfPresent(Json* obj, const char* key, Json value) {
  if (!value.is_null()) (*obj)[key] = std::move(value);
}

absl::StatusOr<double> BootTimeSeconds(const std::string& proc_root) {
  const std::string path = JoinPath(proc_root, "stat");
  ASSIGN_OR_RETURN(std::string stat, ReadFile(path));
  for (absl::string_view line : absl::StrSplit(stat, '\n')) {
    double btime;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &btime)) return btime;
  }
  return absl::DataLossError(path + ": no btime line");
}

}  // namespace

const std::vector<std::pair<std::string, bool>>& SummaryVolumePlugins() {
  static const auto* const kPlugins =
      new std::vector<std::pair<std::string, bool>>{{"kubernetes.io~empty-dir", true},
                                                    {"kubernetes.io~configmap", true},
                                                    {"kubernetes.io~secret", false},
                                                    {"kubernetes.io~downward-api", false},
                                                    {"kubernetes.io~projected", false}};
  return *kPlugins;
}

std::optional<uint64_t> UsageNanoCores(uint64_t prev_usage_ns, double prev_seconds,
                                       uint64_t cur_usage_ns, double cur_seconds) {
  const double interval = cur_seconds - prev_seconds;
  if (!(interval > 0) || cur_usage_ns < prev_usage_ns) return std::nullopt;
  return static_cast<uint64_t>(
      std::llround(static_cast<double>(cur_usage_ns - prev_usage_ns) / interval));
}

std::string FormatTime(double seconds_since_epoch) {
  std::time_t t = static_cast<std::time_t>(std::floor(seconds_since_epoch));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string BuildSummaryJson(const NodeSummaryInput& node, const std::vector<PodSummaryInput>& pods,
                             double now_seconds) {
  const std::string now = FormatTime(now_seconds);
  Json n = {{"nodeName", node.node_name}, {"startTime", FormatTime(node.start_time_seconds)}};
  SetIfPresent(&n, "cpu", CpuJson(node.stats, now));
  SetIfPresent(&n, "memory", MemoryJson(node.stats, node.memory_capacity_bytes, now));
  SetIfPresent(&n, "network", NetworkJson(node.network, now));
  SetIfPresent(&n, "fs", FsJson(node.fs));
  if (node.image_fs || node.container_fs) {
    Json rt = Json::object();
    SetIfPresent(&rt, "imageFs", FsJson(node.image_fs));
    SetIfPresent(&rt, "containerFs", FsJson(node.container_fs));
    n["runtime"] = std::move(rt);
  }
  if (node.stats.stats && node.stats.stats->has_pids && node.stats.stats->pids_limit) {
    n["rlimit"] = {{"time", now},
                   {"maxpid", *node.stats.stats->pids_limit},
                   {"curproc", node.stats.stats->pids_current}};
  }

  Json pod_list = Json::array();
  for (const PodSummaryInput& in : pods) {
    Json p = {
        {"podRef", {{"name", in.pod.name}, {"namespace", in.pod.namespace_}, {"uid", in.pod.uid}}},
        {"startTime", FormatTime(in.pod.start_time_seconds)}};
    Json containers = Json::array();
    for (size_t i = 0; i < in.pod.containers.size(); ++i) {
      const SummaryContainer& c = in.pod.containers[i];
      Json cj = {{"name", c.name}, {"startTime", FormatTime(c.start_time_seconds)}};
      if (i < in.containers.size()) {
        SetIfPresent(&cj, "cpu", CpuJson(in.containers[i], now));
        SetIfPresent(&cj, "memory", MemoryJson(in.containers[i], 0, now));
      }
      if (i < in.rootfs.size()) SetIfPresent(&cj, "rootfs", FsJson(in.rootfs[i]));
      if (i < in.logs.size()) SetIfPresent(&cj, "logs", FsJson(in.logs[i]));
      containers.push_back(std::move(cj));
    }
    p["containers"] = std::move(containers);
    SetIfPresent(&p, "cpu", CpuJson(in.stats, now));
    SetIfPresent(&p, "memory", MemoryJson(in.stats, 0, now));
    SetIfPresent(&p, "network", NetworkJson(in.network, now));
    if (in.stats.stats && in.stats.stats->has_pids) {
      p["process_stats"] = {{"process_count", in.stats.stats->pids_current}};
    }
    Json volumes = Json::array();
    for (size_t i = 0; i < in.pod.volumes.size() && i < in.volumes.size(); ++i) {
      Json v = FsJson(in.volumes[i]);
      if (v.is_null()) continue;
      v["name"] = in.pod.volumes[i].name;
      if (!in.pod.volumes[i].pvc_name.empty()) {
        v["pvcRef"] = {{"name", in.pod.volumes[i].pvc_name},
                       {"namespace", in.pod.volumes[i].pvc_namespace}};
      }
      volumes.push_back(std::move(v));
    }
    if (!volumes.empty()) p["volume"] = std::move(volumes);
    SetIfPresent(&p, "ephemeral-storage", EphemeralJson(in));
    pod_list.push_back(std::move(p));
  }
  Json summary = {{"node", std::move(n)}, {"pods", std::move(pod_list)}};
  return summary.dump();
}

SummaryProvider::SummaryProvider(CgroupReader reader, std::string node_name, SummaryOptions options)
    : reader_(std::move(reader)), node_name_(std::move(node_name)), options_(std::move(options)) {}

std::vector<FamilySnapshot> VolumeStatsFamilies(
    const std::vector<std::pair<SummaryVolume, FsStats>>& volumes) {
  struct Def {
    const char* name;
    const char* help;
    uint64_t FsStats::*field;
  };
  static constexpr Def kDefs[] = {
      {"kubelet_volume_stats_available_bytes", "Number of available bytes in the volume",
       &FsStats::available_bytes},
      {"kubelet_volume_stats_capacity_bytes", "Capacity in bytes of the volume",
       &FsStats::capacity_bytes},
      {"kubelet_volume_stats_inodes", "Maximum number of inodes in the volume", &FsStats::inodes},
      {"kubelet_volume_stats_inodes_free", "Number of free inodes in the volume",
       &FsStats::inodes_free},
      {"kubelet_volume_stats_inodes_used", "Number of used inodes in the volume",
       &FsStats::inodes_used},
      {"kubelet_volume_stats_used_bytes", "Number of used bytes in the volume",
       &FsStats::used_bytes},
  };
  std::vector<FamilySnapshot> out;
  for (const Def& def : kDefs) {
    FamilySnapshot f{def.name, def.help, MetricType::kGauge, {}};
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& [v, fs] : volumes) {
      if (v.pvc_name.empty() || !seen.insert({v.pvc_namespace, v.pvc_name}).second) continue;
      f.samples.push_back(
          Sample{"", Labels{{"namespace", v.pvc_namespace}, {"persistentvolumeclaim", v.pvc_name}},
                 static_cast<double>(fs.*def.field)});
    }
    out.push_back(std::move(f));
  }
  return out;
}

StatsPoint SummaryProvider::Point(const std::string& cgroup_path, double now,
                                  std::map<std::string, CpuSample>* next) {
  StatsPoint p;
  absl::StatusOr<CgroupStats> stats = reader_.Read(cgroup_path);
  if (!stats.ok()) {
    LOG(DEBUG) << "stats summary: " << stats.status().ToString();
    return p;
  }
  if (stats->has_cpu) {
    auto prev = previous_.find(cgroup_path);
    if (prev != previous_.end()) {
      p.usage_nano_cores =
          UsageNanoCores(prev->second.usage_ns, prev->second.seconds, stats->cpu_usage_ns, now);
    }
    (*next)[cgroup_path] = CpuSample{stats->cpu_usage_ns, now};
  }
  p.stats = std::move(*stats);
  return p;
}

absl::StatusOr<std::string> SummaryProvider::Summary(const std::vector<SummaryPod>& pods) {
  absl::MutexLock lock(&mu_);
  const double now = options_.now ? options_.now() : WallClockSeconds();
  std::map<std::string, CpuSample> next;

  NodeSummaryInput node;
  node.node_name = node_name_;
  node.stats = Point("/", now, &next);
  if (!node.stats.stats) return reader_.Read("/").status();
  if (absl::StatusOr<double> boot = BootTimeSeconds(options_.proc_root); boot.ok()) {
    node.start_time_seconds = *boot;
  }
  if (absl::StatusOr<MachineInfo> m = ReadMachineInfo(options_.proc_root); m.ok()) {
    node.memory_capacity_bytes = m->memory_bytes;
  }
  if (auto net = ReadNetworkStats(getpid(), options_.proc_root); net.ok()) {
    node.network = std::move(*net);
  }

  std::set<std::string> fs_paths;
  FsUsageCache* fs = options_.fs_usage;
  if (!options_.root_dir.empty()) {
    if (absl::StatusOr<FsStats> root = MeasureFilesystem(options_.root_dir); root.ok()) {
      node.fs = *root;
    } else {
      LOG(DEBUG) << "stats summary: node fs: " << root.status().ToString();
    }
  }
  if (fs != nullptr && !options_.image_dir.empty()) {
    fs_paths.insert(options_.image_dir);
    absl::StatusOr<FsStats> image_fs = MeasureFilesystem(options_.image_dir);
    std::optional<FsStats> images = fs->Get(options_.image_dir);
    if (image_fs.ok() && images) {
      // The filesystem's numbers; bytes used by the images (as the kubelet's
      // ImageStats.TotalStorageBytes), inodes used on the whole filesystem (as the kubelet).
      node.image_fs = *image_fs;
      node.image_fs->used_bytes = images->used_bytes;
      node.container_fs = node.image_fs;
    }
  }

  std::vector<PodSummaryInput> inputs;
  inputs.reserve(pods.size());
  auto fs_of = [&](const std::string& path) -> std::optional<FsStats> {
    if (fs == nullptr || path.empty()) return std::nullopt;
    fs_paths.insert(path);
    return fs->Get(path);
  };
  for (const SummaryPod& pod : pods) {
    PodSummaryInput in;
    in.pod = pod;
    if (fs != nullptr && !options_.pods_dir.empty() && in.pod.volumes.empty() && !pod.uid.empty()) {
      const std::string volumes = JoinPath(JoinPath(options_.pods_dir, pod.uid), "volumes");
      for (const auto& [plugin, local_ephemeral] : SummaryVolumePlugins()) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(JoinPath(volumes, plugin), ec)) {
          if (!e.is_directory(ec)) continue;
          // An emptyDir of medium Memory is a tmpfs mount: memory, not ephemeral storage.
          const bool on_disk = local_ephemeral && !IsMountPoint(e.path());
          in.pod.volumes.push_back(SummaryVolume{e.path().filename(), e.path(), on_disk});
        }
      }
      if (options_.claim_volumes) {
        for (SummaryVolume& v : options_.claim_volumes(pod.uid))
          in.pod.volumes.push_back(std::move(v));
      }
      std::sort(in.pod.volumes.begin(), in.pod.volumes.end(),
                [](const SummaryVolume& a, const SummaryVolume& b) { return a.name < b.name; });
    }
    for (const SummaryContainer& c : pod.containers) {
      in.rootfs.push_back(fs_of(c.rootfs_dir));
      in.logs.push_back(fs_of(c.log_path));
    }
    for (const SummaryVolume& v : in.pod.volumes) {
      if (v.measure) {
        absl::StatusOr<FsStats> measured = v.measure();
        in.volumes.push_back(measured.ok() ? std::optional<FsStats>(*measured) : std::nullopt);
      } else if (v.filesystem) {
        absl::StatusOr<FsStats> fs_stats = MeasureFilesystem(v.path);
        if (fs_stats.ok()) fs_stats->time_seconds = now;
        in.volumes.push_back(fs_stats.ok() ? std::optional<FsStats>(*fs_stats) : std::nullopt);
      } else {
        in.volumes.push_back(fs_of(v.path));
      }
    }
    in.stats = Point(pod.cgroup_path, now, &next);
    for (const SummaryContainer& c : pod.containers)
      in.containers.push_back(Point(c.cgroup_path, now, &next));
    if (pod.network_pid > 0) {
      absl::StatusOr<std::vector<InterfaceStats>> net =
          ReadNetworkStats(pod.network_pid, options_.proc_root);
      if (net.ok()) {
        in.network = std::move(*net);
      } else {
        LOG(DEBUG) << "stats summary: network of pod " << pod.namespace_ << "/" << pod.name << ": "
                   << net.status().ToString();
      }
    }
    inputs.push_back(std::move(in));
  }
  previous_ = std::move(next);
  if (fs != nullptr) fs->Want("summary", fs_paths);
  return BuildSummaryJson(node, inputs, now);
}

}  // namespace berth::metrics
