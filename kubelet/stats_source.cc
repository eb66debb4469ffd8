#include "kubelet/stats_source.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/cgroup_mounts.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::kubelet {
namespace {

namespace v1 = ::runtime::v1;
using metrics::FamilySnapshot;
using metrics::Labels;
using metrics::MetricType;
using metrics::Sample;

struct VerboseInfo {
  std::string cgroup_path;
  int pid = 0;
  std::string bundle;
};

// The "cgroupPath" and "pid" of a verbose status' info["info"] JSON.
VerboseInfo ParseInfo(const google::protobuf::Map<std::string, std::string>& info) {
  VerboseInfo out;
  auto it = info.find("info");
  if (it == info.end()) return out;
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return out;
  if (auto p = j.find("cgroupPath"); p != j.end() && p->is_string()) out.cgroup_path = *p;
  if (auto p = j.find("pid"); p != j.end() && p->is_number_integer()) out.pid = p->get<int>();
  if (auto p = j.find("bundle"); p != j.end() && p->is_string()) out.bundle = *p;
  return out;
}

double NsToSeconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

std::optional<StatsInfoCache::Entry> StatsInfoCache::Find(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void StatsInfoCache::Put(const std::string& id, Entry entry) {
  absl::MutexLock lock(&mu_);
  entries_[id] = std::move(entry);
}

void StatsInfoCache::Retain(const std::set<std::string>& live) {
  absl::MutexLock lock(&mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (live.count(it->first) != 0) {
      ++it;
    } else {
      it = entries_.erase(it);
    }
  }
}

size_t StatsInfoCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

absl::StatusOr<StatsTargets> ListStatsTargets(cri::RuntimeService* runtime, StatsInfoCache* cache) {
  v1::ListPodSandboxRequest sreq;
  sreq.mutable_filter()->mutable_state()->set_state(v1::SANDBOX_READY);
  absl::StatusOr<v1::ListPodSandboxResponse> sandboxes = runtime->ListPodSandbox(sreq);
  if (!sandboxes.ok()) return Annotate(sandboxes.status(), "stats: ListPodSandbox");
  v1::ListContainersRequest creq;
  creq.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_RUNNING);
  absl::StatusOr<v1::ListContainersResponse> containers = runtime->ListContainers(creq);
  if (!containers.ok()) return Annotate(containers.status(), "stats: ListContainers");

  std::set<std::string> live;
  // The verbose facts of a sandbox (container == false) or container id, from the cache or
  // the runtime; nullopt when the runtime no longer knows it or reports no cgroup.
  auto info_of = [&](const std::string& id,
                     bool container) -> std::optional<StatsInfoCache::Entry> {
    live.insert(id);
    if (cache != nullptr) {
      if (std::optional<StatsInfoCache::Entry> e = cache->Find(id)) return e;
    }
    StatsInfoCache::Entry e;
    if (container) {
      v1::ContainerStatusRequest req;
      req.set_container_id(id);
      req.set_verbose(true);
      absl::StatusOr<v1::ContainerStatusResponse> st = runtime->ContainerStatus(req);
      if (!st.ok()) {
        LOG(DEBUG) << "stats: ContainerStatus " << id << ": " << st.status();
        return std::nullopt;
      }
      VerboseInfo info = ParseInfo(st->info());
      e.cgroup_path = info.cgroup_path;
      e.pid = info.pid;
      e.image = st->status().image().image();
      e.log_path = st->status().log_path();
      // berth's overlay layout: the container's writable layer is <bundle>/upper.
      if (!info.bundle.empty()) e.rootfs_dir = JoinPath(info.bundle, "upper");
    } else {
      v1::PodSandboxStatusRequest req;
      req.set_pod_sandbox_id(id);
      req.set_verbose(true);
      absl::StatusOr<v1::PodSandboxStatusResponse> st = runtime->PodSandboxStatus(req);
      if (!st.ok()) {
        LOG(DEBUG) << "stats: PodSandboxStatus " << id << ": " << st.status();
        return std::nullopt;
      }
      VerboseInfo info = ParseInfo(st->info());
      e.cgroup_path = info.cgroup_path;
      e.pid = info.pid;
    }
    if (e.cgroup_path.empty()) return std::nullopt;
    if (cache != nullptr) cache->Put(id, e);
    return e;
  };

  StatsTargets out;
  std::map<std::string, size_t> pod_index;  // sandbox id -> index in out.pods
  for (const v1::PodSandbox& sb : sandboxes->items()) {
    std::optional<StatsInfoCache::Entry> info = info_of(sb.id(), false);
    if (!info) continue;
    metrics::SummaryPod pod;
    pod.name = sb.metadata().name();
    pod.namespace_ = sb.metadata().namespace_();
    pod.uid = sb.metadata().uid();
    pod.start_time_seconds = NsToSeconds(sb.created_at());
    pod.cgroup_path = info->cgroup_path;
    pod.network_pid = info->pid;
    metrics::CadvisorContainer c;
    c.name = sb.id();
    c.pod_sandbox_id = sb.id();
    c.pod = pod.name;
    c.namespace_ = pod.namespace_;
    c.cgroup_path = pod.cgroup_path;
    c.network_pid = pod.network_pid;
    c.start_time_seconds = pod.start_time_seconds;
    out.cadvisor.push_back(std::move(c));
    pod_index[sb.id()] = out.pods.size();
    out.pods.push_back(std::move(pod));
  }
  for (const v1::Container& ctr : containers->containers()) {
    auto pi = pod_index.find(ctr.pod_sandbox_id());
    if (pi == pod_index.end()) continue;
    std::optional<StatsInfoCache::Entry> info = info_of(ctr.id(), true);
    if (!info) continue;
    metrics::SummaryPod& pod = out.pods[pi->second];
    metrics::CadvisorContainer c;
    c.container = ctr.metadata().name();
    c.name = ctr.id();
    c.pod_sandbox_id = ctr.pod_sandbox_id();
    c.pod = pod.name;
    c.namespace_ = pod.namespace_;
    c.image = !info->image.empty() ? info->image : ctr.image().image();
    c.cgroup_path = info->cgroup_path;
    c.rootfs_dir = info->rootfs_dir;
    c.start_time_seconds = NsToSeconds(ctr.created_at());
    out.cadvisor.push_back(c);
    pod.containers.push_back(metrics::SummaryContainer{
        c.container, c.start_time_seconds, c.cgroup_path, info->rootfs_dir, info->log_path});
  }
  if (cache != nullptr) cache->Retain(live);
  return out;
}

uint64_t DefaultCgroupId(const std::string& cgroup_path) {
  static const std::string unified = UnifiedCgroupMount(HostCgroupMounts());
  return unified.empty() ? 0 : ebpf::CgroupIdOf(unified + cgroup_path);
}

std::map<uint64_t, CgroupOwner> CgroupOwners(
    const StatsTargets& targets, const std::function<uint64_t(const std::string&)>& cgroup_id) {
  std::function<uint64_t(const std::string&)> id_of = cgroup_id;
  if (!id_of) id_of = DefaultCgroupId;
  std::map<uint64_t, CgroupOwner> out;
  for (const metrics::CadvisorContainer& c : targets.cadvisor) {
    uint64_t id = id_of(c.cgroup_path);
    if (id == 0) continue;
    out[id] = CgroupOwner{c.pod, c.namespace_, c.container};
  }
  return out;
}

std::vector<FamilySnapshot> BuildEbpfFamilies(const ebpf::StatsSnapshot& snapshot,
                                              const std::map<uint64_t, CgroupOwner>& owners) {
  auto labels_of = [](const CgroupOwner& o) {
    return Labels{{"container", o.container}, {"namespace", o.namespace_}, {"pod", o.pod}};
  };
  struct CounterDef {
    const char* name;
    const char* help;
    double (*value)(const ebpf::CgroupStats&);
  };
  static const CounterDef kCounters[] = {
      {"berth_cgroup_cpu_seconds_total", "On-CPU time of the cgroup's tasks (eBPF sched_switch).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.cpu_ns) / 1e9; }},
      {"berth_cgroup_exec_total", "Successful execve() calls in the cgroup (eBPF).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.exec_count); }},
      {"berth_cgroup_io_read_bytes_total", "Block I/O bytes read, submitted by the cgroup (eBPF).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.io_read_bytes); }},
      {"berth_cgroup_io_write_bytes_total",
       "Block I/O bytes written, submitted by the cgroup (eBPF).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.io_write_bytes); }},
      {"berth_cgroup_tcp_retransmits_total", "TCP segments retransmitted on the cgroup's sockets.",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.tcp_retransmits); }},
      {"berth_cgroup_tcp_resets_sent_total", "TCP resets sent on the cgroup's sockets.",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.tcp_resets_sent); }},
      {"berth_cgroup_tcp_resets_received_total", "TCP resets received on the cgroup's sockets.",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.tcp_resets_received); }},
      {"berth_cgroup_oom_kills_total", "OOM kill victims in the cgroup (eBPF oom:mark_victim).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.oom_kills); }},
      {"berth_cgroup_network_receive_bytes_total",
       "Bytes received by the cgroup's sockets (eBPF cgroup_skb ingress, L3 length).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.net_rx_bytes); }},
      {"berth_cgroup_network_receive_packets_total",
       "Packets received by the cgroup's sockets (eBPF cgroup_skb ingress).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.net_rx_packets); }},
      {"berth_cgroup_network_transmit_bytes_total",
       "Bytes sent by the cgroup's sockets (eBPF cgroup_skb egress, L3 length).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.net_tx_bytes); }},
      {"berth_cgroup_network_transmit_packets_total",
       "Packets sent by the cgroup's sockets (eBPF cgroup_skb egress).",
       [](const ebpf::CgroupStats& s) { return static_cast<double>(s.net_tx_packets); }},
  };
  // Deterministic order: by cgroup id.
  std::map<uint64_t, const ebpf::CgroupStats*> known;
  for (const auto& [id, stats] : snapshot.cgroups) {
    if (owners.count(id) != 0) known[id] = &stats;
  }
  std::vector<FamilySnapshot> out;
  for (const CounterDef& def : kCounters) {
    FamilySnapshot f{def.name, def.help, MetricType::kCounter, {}};
    for (const auto& [id, stats] : known) {
      f.samples.push_back(Sample{"", labels_of(owners.at(id)), def.value(*stats)});
    }
    out.push_back(std::move(f));
  }
  // Log2 microsecond buckets as Prometheus `le` buckets (cumulative, in seconds).
  auto histogram = [&](const char* name, const char* help,
                       const ebpf::LatencyHistogram ebpf::CgroupStats::*field) {
    FamilySnapshot h{name, help, MetricType::kHistogram, {}};
    for (const auto& [id, stats] : known) {
      const ebpf::LatencyHistogram& hist = stats->*field;
      Labels base = labels_of(owners.at(id));
      uint64_t cumulative = 0;
      for (int i = 0; i < ebpf::kHistogramBuckets; ++i) {
        cumulative += hist.buckets[i];
        Labels l = base;
        if (i == ebpf::kHistogramBuckets - 1) {
          l.emplace_back("le", "+Inf");
          h.samples.push_back(Sample{"_bucket", l, static_cast<double>(hist.count)});
        } else {
          l.emplace_back(
              "le", metrics::FormatValue(static_cast<double>(ebpf::HistogramBucketUpperBoundUs(i)) /
                                         1e6));
          h.samples.push_back(Sample{"_bucket", l, static_cast<double>(cumulative)});
        }
      }
      h.samples.push_back(Sample{"_sum", base, static_cast<double>(hist.sum_ns) / 1e9});
      h.samples.push_back(Sample{"_count", base, static_cast<double>(hist.count)});
    }
    out.push_back(std::move(h));
  };
  histogram("berth_cgroup_runqueue_latency_seconds",
            "Run-queue latency of the cgroup's tasks, wakeup to running (eBPF).",
            &ebpf::CgroupStats::runq_latency);
  histogram("berth_cgroup_io_latency_seconds",
            "Block I/O latency of requests submitted by the cgroup, issue to completion (eBPF).",
            &ebpf::CgroupStats::io_latency);
  std::map<std::pair<uint64_t, std::string>, uint64_t> ooms;
  for (const ebpf::OomKill& k : snapshot.oom_kills) {
    if (owners.count(k.cgroup_id) != 0) ++ooms[{k.cgroup_id, k.comm}];
  }
  FamilySnapshot o{"berth_oom_kills_total",
                   "OOM kills by victim command (of the most recent kills retained).",
                   MetricType::kCounter,
                   {}};
  for (const auto& [key, n] : ooms) {
    Labels l = labels_of(owners.at(key.first));
    l.emplace_back("command", key.second);
    o.samples.push_back(Sample{"", l, static_cast<double>(n)});
  }
  out.push_back(std::move(o));
  std::sort(out.begin(), out.end(),
            [](const FamilySnapshot& a, const FamilySnapshot& b) { return a.name < b.name; });
  return out;
}

absl::Status AttachPodNetworkCounters(ebpf::Collectors* collectors,
                                      const metrics::CgroupReader& reader,
                                      const std::string& pods_cgroup) {
  if (reader.mode() == metrics::CgroupMode::kV1) {
    return absl::FailedPreconditionError(
        "per-pod network counters: the host has no cgroup2 hierarchy for cgroup_skb programs");
  }
  std::string dir = reader.Dir("unified", pods_cgroup);
  RETURN_IF_ERROR(MkdirAll(dir, 0755));
  return collectors->AttachNetwork(dir);
}

void CollectResourceMetrics(const metrics::CgroupReader& reader, const StatsTargets& targets,
                            std::vector<FamilySnapshot>* out) {
  bool error = false;
  FamilySnapshot node_cpu{"node_cpu_usage_seconds_total",
                          "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
                          MetricType::kCounter,
                          {}};
  FamilySnapshot node_mem{"node_memory_working_set_bytes",
                          "[STABLE] Current working set of the node in bytes",
                          MetricType::kGauge,
                          {}};
  absl::StatusOr<metrics::CgroupStats> root = reader.Read("/");
  if (root.ok()) {
    if (root->has_cpu) {
      node_cpu.samples.push_back(Sample{"", {}, static_cast<double>(root->cpu_usage_ns) / 1e9});
    }
    if (root->has_memory) {
      node_mem.samples.push_back(
          Sample{"", {}, static_cast<double>(root->memory_working_set_bytes)});
    }
  } else {
    error = true;
  }
  FamilySnapshot pod_cpu{"pod_cpu_usage_seconds_total",
                         "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
                         MetricType::kCounter,
                         {}};
  FamilySnapshot pod_mem{"pod_memory_working_set_bytes",
                         "[STABLE] Current working set of the pod in bytes",
                         MetricType::kGauge,
                         {}};
  FamilySnapshot ctr_cpu{"container_cpu_usage_seconds_total",
                         "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
                         MetricType::kCounter,
                         {}};
  FamilySnapshot ctr_mem{"container_memory_working_set_bytes",
                         "[STABLE] Current working set of the container in bytes",
                         MetricType::kGauge,
                         {}};
  FamilySnapshot ctr_start{"container_start_time_seconds",
                           "[STABLE] Start time of the container since unix epoch in seconds",
                           MetricType::kGauge,
                           {}};
  for (const metrics::CadvisorContainer& c : targets.cadvisor) {
    absl::StatusOr<metrics::CgroupStats> st = reader.Read(c.cgroup_path);
    bool pod_level = c.container.empty();
    Labels labels =
        pod_level ? Labels{{"namespace", c.namespace_}, {"pod", c.pod}}
                  : Labels{{"container", c.container}, {"namespace", c.namespace_}, {"pod", c.pod}};
    if (!pod_level) ctr_start.samples.push_back(Sample{"", labels, c.start_time_seconds});
    if (!st.ok()) {
      LOG(DEBUG) << "resource metrics: cgroup " << c.cgroup_path << ": " << st.status();
      error = true;
      continue;
    }
    if (st->has_cpu) {
      (pod_level ? pod_cpu : ctr_cpu)
          .samples.push_back(Sample{"", labels, static_cast<double>(st->cpu_usage_ns) / 1e9});
    }
    if (st->has_memory) {
      (pod_level ? pod_mem : ctr_mem)
          .samples.push_back(Sample{"", labels, static_cast<double>(st->memory_working_set_bytes)});
    }
  }
  FamilySnapshot scrape{"scrape_error",
                        "[STABLE] 1 if there was an error while getting container metrics, 0 "
                        "otherwise",
                        MetricType::kGauge,
                        {Sample{"", {}, error ? 1.0 : 0.0}}};
  for (FamilySnapshot* f :
       {&ctr_cpu, &ctr_mem, &ctr_start, &node_cpu, &node_mem, &pod_cpu, &pod_mem, &scrape}) {
    out->push_back(std::move(*f));
  }
}

}  // namespace berth::kubelet
