#include "kubelet/cri_metrics.h"

#include <time.h>

#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/log.h"

namespace berth::kubelet {
namespace {

namespace v1 = ::runtime::v1;

const std::vector<std::string>& LabelKeys() {
  static const std::vector<std::string> keys = {"container", "namespace", "pod"};
  return keys;
}

void AppendMetrics(const metrics::CadvisorContainer& entry, const ebpf::CgroupStats& stats,
                   int64_t timestamp_ns, google::protobuf::RepeatedPtrField<v1::Metric>* out) {
  for (const CriMetricDef& def : CriMetricDefs()) {
    v1::Metric* m = out->Add();
    m->set_name(def.name);
    m->set_timestamp(timestamp_ns);
    m->set_metric_type(def.type);
    m->add_label_values(entry.container);
    m->add_label_values(entry.namespace_);
    m->add_label_values(entry.pod);
    m->mutable_value()->set_value(def.value(stats));
  }
}

}  // namespace

const std::vector<CriMetricDef>& CriMetricDefs() {
  using S = ebpf::CgroupStats;
  static const std::vector<CriMetricDef> defs = {
      {"berth_cgroup_cpu_nanoseconds_total",
       "On-CPU time of the cgroup's tasks (eBPF sched_switch).", v1::COUNTER,
       [](const S& s) { return s.cpu_ns; }},
      {"berth_cgroup_runqueue_latency_nanoseconds_total",
       "Sum of run-queue latencies of the cgroup's tasks, wakeup to running (eBPF).", v1::COUNTER,
       [](const S& s) { return s.runq_latency.sum_ns; }},
      {"berth_cgroup_runqueue_latency_samples_total",
       "Number of run-queue latency samples (switches to a waiting task of the cgroup).",
       v1::COUNTER, [](const S& s) { return s.runq_latency.count; }},
      {"berth_cgroup_exec_total", "Successful execve() calls in the cgroup (eBPF).", v1::COUNTER,
       [](const S& s) { return s.exec_count; }},
      {"berth_cgroup_io_read_bytes_total", "Block I/O bytes read, submitted by the cgroup (eBPF).",
       v1::COUNTER, [](const S& s) { return s.io_read_bytes; }},
      {"berth_cgroup_io_write_bytes_total",
       "Block I/O bytes written, submitted by the cgroup (eBPF).", v1::COUNTER,
       [](const S& s) { return s.io_write_bytes; }},
      {"berth_cgroup_io_latency_nanoseconds_total",
       "Sum of block I/O latencies of the cgroup's requests, issue to completion (eBPF).",
       v1::COUNTER, [](const S& s) { return s.io_latency.sum_ns; }},
      {"berth_cgroup_io_requests_total", "Completed block I/O requests of the cgroup (eBPF).",
       v1::COUNTER, [](const S& s) { return s.io_latency.count; }},
      {"berth_cgroup_tcp_retransmits_total", "TCP segments retransmitted on the cgroup's sockets.",
       v1::COUNTER, [](const S& s) { return s.tcp_retransmits; }},
      {"berth_cgroup_tcp_resets_sent_total", "TCP resets sent on the cgroup's sockets.",
       v1::COUNTER, [](const S& s) { return s.tcp_resets_sent; }},
      {"berth_cgroup_tcp_resets_received_total", "TCP resets received on the cgroup's sockets.",
       v1::COUNTER, [](const S& s) { return s.tcp_resets_received; }},
      {"berth_cgroup_network_receive_bytes_total",
       "Bytes received by the cgroup's sockets (eBPF cgroup_skb ingress, L3 length).", v1::COUNTER,
       [](const S& s) { return s.net_rx_bytes; }},
      {"berth_cgroup_network_receive_packets_total",
       "Packets received by the cgroup's sockets (eBPF cgroup_skb ingress).", v1::COUNTER,
       [](const S& s) { return s.net_rx_packets; }},
      {"berth_cgroup_network_transmit_bytes_total",
       "Bytes sent by the cgroup's sockets (eBPF cgroup_skb egress, L3 length).", v1::COUNTER,
       [](const S& s) { return s.net_tx_bytes; }},
      {"berth_cgroup_network_transmit_packets_total",
       "Packets sent by the cgroup's sockets (eBPF cgroup_skb egress).", v1::COUNTER,
       [](const S& s) { return s.net_tx_packets; }},
      {"berth_cgroup_oom_kills_total", "OOM kill victims in the cgroup (eBPF oom:mark_victim).",
       v1::COUNTER, [](const S& s) { return s.oom_kills; }},
  };
  return defs;
}

v1::ListPodSandboxMetricsResponse BuildPodSandboxMetrics(
    const StatsTargets& targets, const ebpf::StatsSnapshot& snapshot,
    const std::function<uint64_t(const std::string&)>& cgroup_id, int64_t timestamp_ns) {
  v1::ListPodSandboxMetricsResponse resp;
  std::map<std::string, v1::PodSandboxMetrics*> by_sandbox;
  const ebpf::CgroupStats zero;
  auto stats_of = [&](const metrics::CadvisorContainer& c) -> const ebpf::CgroupStats& {
    uint64_t id = cgroup_id(c.cgroup_path);
    auto it = id != 0 ? snapshot.cgroups.find(id) : snapshot.cgroups.end();
    return it != snapshot.cgroups.end() ? it->second : zero;
  };
  // Pod-level entries come first in targets.cadvisor (ListStatsTargets).
  for (const metrics::CadvisorContainer& c : targets.cadvisor) {
    if (!c.container.empty()) continue;
    v1::PodSandboxMetrics* pm = resp.add_pod_metrics();
    pm->set_pod_sandbox_id(c.pod_sandbox_id);
    AppendMetrics(c, stats_of(c), timestamp_ns, pm->mutable_metrics());
    by_sandbox[c.pod_sandbox_id] = pm;
  }
  for (const metrics::CadvisorContainer& c : targets.cadvisor) {
    if (c.container.empty()) continue;
    auto it = by_sandbox.find(c.pod_sandbox_id);
    if (it == by_sandbox.end()) continue;
    v1::ContainerMetrics* cm = it->second->add_container_metrics();
    cm->set_container_id(c.name);
    AppendMetrics(c, stats_of(c), timestamp_ns, cm->mutable_metrics());
  }
  return resp;
}

std::string TrackedSubtreeOf(const std::string& pod_cgroup) {
  std::vector<absl::string_view> parts = absl::StrSplit(pod_cgroup, '/', absl::SkipEmpty());
  if (parts.empty()) return "";
  std::string out;
  for (absl::string_view p : parts) {
    absl::StrAppend(&out, "/", p);
    if (absl::StartsWith(p, "kubepods")) return out;
  }
  parts.pop_back();
  if (parts.empty()) return pod_cgroup[0] == '/' ? pod_cgroup : "/" + pod_cgroup;
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

CriMetricsService::CriMetricsService(cri::RuntimeService* base,
                                     std::function<std::optional<ebpf::StatsSnapshot>()> snapshot,
                                     std::function<void(const std::string&)> track,
                                     StatsInfoCache* cache)
    : base_(base), snapshot_(std::move(snapshot)), track_(std::move(track)), cache_(cache) {}

absl::StatusOr<v1::RunPodSandboxResponse> CriMetricsService::Handle(
    const v1::RunPodSandboxRequest& request,
    absl::StatusOr<v1::RunPodSandboxResponse> (cri::RuntimeService::*)(
        const v1::RunPodSandboxRequest&)) {
  absl::StatusOr<v1::RunPodSandboxResponse> resp = base_->RunPodSandbox(request);
  if (!resp.ok() || !track_) return resp;
  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(resp->pod_sandbox_id());
  sreq.set_verbose(true);
  absl::StatusOr<v1::PodSandboxStatusResponse> st = base_->PodSandboxStatus(sreq);
  if (!st.ok()) return resp;
  auto it = st->info().find("info");
  if (it == st->info().end()) return resp;
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_object() && j.contains("cgroupPath") && j["cgroupPath"].is_string()) {
    track_(j["cgroupPath"].get<std::string>());
  }
  return resp;
}

absl::StatusOr<v1::ListMetricDescriptorsResponse> CriMetricsService::Handle(
    const v1::ListMetricDescriptorsRequest&,
    absl::StatusOr<v1::ListMetricDescriptorsResponse> (cri::RuntimeService::*)(
        const v1::ListMetricDescriptorsRequest&)) {
  v1::ListMetricDescriptorsResponse resp;
  if (!snapshot_) return resp;
  for (const CriMetricDef& def : CriMetricDefs()) {
    v1::MetricDescriptor* d = resp.add_descriptors();
    d->set_name(def.name);
    d->set_help(def.help);
    for (const std::string& k : LabelKeys()) d->add_label_keys(k);
  }
  return resp;
}

absl::StatusOr<v1::ListPodSandboxMetricsResponse> CriMetricsService::Handle(
    const v1::ListPodSandboxMetricsRequest&,
    absl::StatusOr<v1::ListPodSandboxMetricsResponse> (cri::RuntimeService::*)(
        const v1::ListPodSandboxMetricsRequest&)) {
  if (!snapshot_) return v1::ListPodSandboxMetricsResponse();
  std::optional<ebpf::StatsSnapshot> snap = snapshot_();
  if (!snap) return v1::ListPodSandboxMetricsResponse();
  absl::StatusOr<StatsTargets> targets = ListStatsTargets(base_, cache_);
  if (!targets.ok()) return targets.status();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now_ns = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  return BuildPodSandboxMetrics(*targets, *snap, DefaultCgroupId, now_ns);
}

}  // namespace berth::kubelet
