// ContainerStats / ListContainerStats / PodSandboxStats / ListPodSandboxStats, from cgroupfs
// through metrics::CgroupReader (the numbers /metrics/cadvisor reports) and, for the writable
// layer, from the background measurements of metrics::FsUsageCache (as containerd's snapshot
// usage cache: a stats call never walks the upper directory).

#include <sys/stat.h>

#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "cri/image/snapshotter.h"
#include "cri/runtime/runtime_records.h"
#include "metrics/cgroup_stats.h"
#include "metrics/fs_usage.h"

namespace berth::cri::runtime {
namespace {

const absl::StatusOr<metrics::CgroupReader>& Reader() {
  static const absl::StatusOr<metrics::CgroupReader> reader = metrics::CgroupReader::Create();
  return reader;
}

// The FsUsageCache consumer name of the CRI stats calls.
constexpr char kFsConsumer[] = "cri";

// Fills cpu and memory of `cpu`/`mem` from cgroup `path`; `key` names the CPU rate sample.
void FillCgroupUsage(const std::string& path, int64_t now, uint64_t prev_ts_usage[2],
                     bool have_prev, v1::CpuUsage* cpu, v1::MemoryUsage* mem, uint64_t* usage_out,
                     bool* ok) {
  *ok = false;
  const auto& reader = Reader();
  if (!reader.ok() || path.empty()) return;
  auto s = reader->Read(path);
  if (!s.ok()) return;
  *ok = true;
  if (s->has_cpu) {
    cpu->set_timestamp(now);
    cpu->mutable_usage_core_nano_seconds()->set_value(s->cpu_usage_ns);
    uint64_t rate = 0;
    if (have_prev && now > static_cast<int64_t>(prev_ts_usage[0]) &&
        s->cpu_usage_ns >= prev_ts_usage[1]) {
      rate =
          static_cast<uint64_t>(static_cast<double>(s->cpu_usage_ns - prev_ts_usage[1]) * 1e9 /
                                static_cast<double>(now - static_cast<int64_t>(prev_ts_usage[0])));
    }
    cpu->mutable_usage_nano_cores()->set_value(rate);
    *usage_out = s->cpu_usage_ns;
  }
  if (s->has_memory) {
    mem->set_timestamp(now);
    mem->mutable_working_set_bytes()->set_value(s->memory_working_set_bytes);
    mem->mutable_usage_bytes()->set_value(s->memory_usage_bytes);
    mem->mutable_rss_bytes()->set_value(s->memory_rss_bytes);
    mem->mutable_page_faults()->set_value(s->memory_pgfault);
    mem->mutable_major_page_faults()->set_value(s->memory_pgmajfault);
    if (s->memory_limit_bytes && *s->memory_limit_bytes > s->memory_working_set_bytes) {
      mem->mutable_available_bytes()->set_value(*s->memory_limit_bytes -
                                                s->memory_working_set_bytes);
    }
  }
}

}  // namespace

absl::StatusOr<v1::ContainerStats> Runtime::StatsOf(const ContainerRec& c) {
  v1::ContainerStats st;
  std::string cgroup, bundle;
  bool running;
  {
    absl::MutexLock l(&mu_);
    if (!c.created) return absl::NotFoundError("container " + c.id + " not found");
    auto* a = st.mutable_attributes();
    a->set_id(c.id);
    *a->mutable_metadata() = c.config.metadata();
    *a->mutable_labels() = c.config.labels();
    *a->mutable_annotations() = c.config.annotations();
    cgroup = c.cgroups_path;
    bundle = c.bundle;
    running = c.state == v1::CONTAINER_RUNNING || c.state == v1::CONTAINER_CREATED;
  }
  const int64_t now = NowNs();
  if (running) {
    uint64_t prev[2] = {0, 0};
    bool have_prev = false;
    {
      absl::MutexLock l(&cpu_samples_mu_);
      if (auto it = cpu_samples_.find(c.id); it != cpu_samples_.end()) {
        prev[0] = static_cast<uint64_t>(it->second.first);
        prev[1] = it->second.second;
        have_prev = true;
      }
    }
    uint64_t usage = 0;
    bool ok = false;
    FillCgroupUsage(cgroup, now, prev, have_prev, st.mutable_cpu(), st.mutable_memory(), &usage,
                    &ok);
    if (ok) {
      absl::MutexLock l(&cpu_samples_mu_);
      cpu_samples_[c.id] = {now, usage};
    }
  }
  if (!bundle.empty()) {
    const std::string upper = image::SnapshotPathsIn(bundle).upper;
    if (std::optional<metrics::FsStats> fs = deps_.fs_usage->Get(upper)) {
      auto* w = st.mutable_writable_layer();
      w->set_timestamp(static_cast<int64_t>(fs->time_seconds * 1e9));
      w->mutable_fs_id()->set_mountpoint(JoinPath(opts_.root_dir, "containers"));
      w->mutable_used_bytes()->set_value(fs->used_bytes);
      w->mutable_inodes_used()->set_value(fs->inodes_used);
    } else {
      deps_.fs_usage->WantAlso(kFsConsumer, upper);  // measured in the background
    }
  }
  return st;
}

void Runtime::WantWritableLayers() {
  std::set<std::string> paths;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, c] : containers_) {
      if (c->created && !c->bundle.empty()) paths.insert(image::SnapshotPathsIn(c->bundle).upper);
    }
  }
  deps_.fs_usage->Want(kFsConsumer, paths);
}

absl::StatusOr<v1::ContainerStatsResponse> Runtime::ContainerStats(
    const v1::ContainerStatsRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c)
    return absl::NotFoundError("ContainerStats: container " + req.container_id() + " not found");
  v1::ContainerStatsResponse r;
  ASSIGN_OR_RETURN(*r.mutable_stats(), StatsOf(*c));
  return r;
}

absl::StatusOr<v1::ListContainerStatsResponse> Runtime::ListContainerStats(
    const v1::ListContainerStatsRequest& req) {
  const auto& f = req.filter();
  std::vector<std::shared_ptr<ContainerRec>> cs;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, c] : containers_) {
      if (!c->created) continue;
      if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
      if (!f.pod_sandbox_id().empty() && !absl::StartsWith(c->sandbox_id, f.pod_sandbox_id()))
        continue;
      if (!MatchLabels(c->config.labels(), f.label_selector())) continue;
      cs.push_back(c);
    }
  }
  WantWritableLayers();  // forgets removed containers
  v1::ListContainerStatsResponse r;
  for (const auto& c : cs) {
    auto st = StatsOf(*c);
    if (st.ok()) *r.add_stats() = std::move(*st);  // removed meanwhile: left out
  }
  return r;
}

absl::StatusOr<v1::PodSandboxStatsResponse> Runtime::PodSandboxStats(
    const v1::PodSandboxStatsRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb)
    return absl::NotFoundError("PodSandboxStats: pod sandbox " + req.pod_sandbox_id() +
                               " not found");
  v1::PodSandboxStatsResponse r;
  auto* st = r.mutable_stats();
  std::string cgroup;
  pid_t pause_pid = 0;
  bool ready;
  std::vector<std::shared_ptr<ContainerRec>> cs;
  {
    absl::MutexLock l(&mu_);
    if (!sb->created)
      return absl::NotFoundError("PodSandboxStats: pod sandbox " + sb->id + " not found");
    auto* a = st->mutable_attributes();
    a->set_id(sb->id);
    *a->mutable_metadata() = sb->config.metadata();
    *a->mutable_labels() = sb->config.labels();
    *a->mutable_annotations() = sb->config.annotations();
    cgroup = sb->cgroup_path;
    pause_pid = sb->pause_pid;
    ready = sb->state == v1::SANDBOX_READY;
    for (const auto& [id, c] : containers_) {
      if (c->sandbox_id == sb->id && c->created) cs.push_back(c);
    }
  }
  auto* lx = st->mutable_linux();
  const int64_t now = NowNs();
  if (ready) {
    uint64_t prev[2] = {0, 0};
    bool have_prev = false;
    const std::string key = "pod:" + sb->id;
    {
      absl::MutexLock l(&cpu_samples_mu_);
      if (auto it = cpu_samples_.find(key); it != cpu_samples_.end()) {
        prev[0] = static_cast<uint64_t>(it->second.first);
        prev[1] = it->second.second;
        have_prev = true;
      }
    }
    uint64_t usage = 0;
    bool ok = false;
    FillCgroupUsage(cgroup, now, prev, have_prev, lx->mutable_cpu(), lx->mutable_memory(), &usage,
                    &ok);
    if (ok) {
      absl::MutexLock l(&cpu_samples_mu_);
      cpu_samples_[key] = {now, usage};
      auto s = Reader()->Read(cgroup);
      if (s.ok() && s->has_pids) {
        lx->mutable_process()->set_timestamp(now);
        lx->mutable_process()->mutable_process_count()->set_value(s->pids_current);
      }
    }
    if (pause_pid > 0) {
      auto ifs = metrics::ReadNetworkStats(pause_pid);
      if (ifs.ok()) {
        auto* net = lx->mutable_network();
        net->set_timestamp(now);
        for (const auto& i : *ifs) {
          auto* n = i.name == "eth0" || ifs->size() == 1 ? net->mutable_default_interface()
                                                         : net->add_interfaces();
          n->set_name(i.name);
          n->mutable_rx_bytes()->set_value(i.rx_bytes);
          n->mutable_rx_errors()->set_value(i.rx_errors);
          n->mutable_tx_bytes()->set_value(i.tx_bytes);
          n->mutable_tx_errors()->set_value(i.tx_errors);
        }
      }
    }
  }
  for (const auto& c : cs) {
    auto cst = StatsOf(*c);
    if (cst.ok()) *lx->add_containers() = std::move(*cst);
  }
  return r;
}

absl::StatusOr<v1::ListPodSandboxStatsResponse> Runtime::ListPodSandboxStats(
    const v1::ListPodSandboxStatsRequest& req) {
  const auto& f = req.filter();
  std::vector<std::string> ids;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, sb] : sandboxes_) {
      if (!sb->created) continue;
      if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
      if (!MatchLabels(sb->config.labels(), f.label_selector())) continue;
      ids.push_back(id);
    }
  }
  WantWritableLayers();
  v1::ListPodSandboxStatsResponse r;
  for (const auto& id : ids) {
    v1::PodSandboxStatsRequest one;
    one.set_pod_sandbox_id(id);
    auto s = PodSandboxStats(one);
    if (s.ok()) *r.add_stats() = std::move(*s->mutable_stats());
  }
  return r;
}

}  // namespace berth::cri::runtime
