#include "kubelet/pod_manager.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "kubelet/instrumented_runtime.h"
#include "kubelet/pod_manager_internal.h"
#include "kubelet/pod_util.h"
#include "kubelet/static_pods.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

using namespace pod_internal;  // NOLINT(google-build-using-namespace): shared helpers

PodManager::PodManager(ApiClient* api, cri::RuntimeService* runtime, cri::ImageService* images,
                       PodManagerOptions options)
    : api_(api),
      // With kubelet metrics, every CRI call goes through the instrumented decorators.
      instrumented_runtime_(
          options.kubelet_metrics == nullptr
              ? nullptr
              : std::make_unique<InstrumentedRuntimeService>(runtime, options.kubelet_metrics)),
      instrumented_images_(
          options.kubelet_metrics == nullptr
              ? nullptr
              : std::make_unique<InstrumentedImageService>(images, options.kubelet_metrics)),
      runtime_(instrumented_runtime_ ? instrumented_runtime_.get() : runtime),
      images_(instrumented_images_ ? instrumented_images_.get() : images),
      opts_(std::move(options)),
      km_(opts_.kubelet_metrics),
      volumes_(api, opts_.root_dir, opts_.clock),
      sysctls_(SysctlAllowlist::Create(opts_.allowed_unsafe_sysctls)
                   .value_or(*SysctlAllowlist::Create({}))),
      status_(api, opts_.kubelet_metrics),
      puller_(images_, api,
              {.backoff_initial = opts_.backoff_initial,
               .backoff_max = opts_.image_backoff_max,
               .clock = opts_.clock,
               .record_event = [this](const api::Pod& pod, const std::string& type,
                                      const std::string& reason, const std::string& message,
                                      const std::string& container) {
                 Event(pod, type, reason, message, container);
               }}) {
  ProbeRunner* runner = opts_.probe_runner;
  if (runner == nullptr) {
    default_probe_runner_ = std::make_unique<DefaultProbeRunner>(runtime_);
    runner = default_probe_runner_.get();
  }
  ProberOptions popts;
  popts.clock = opts_.clock;
  popts.on_change = [this](const std::string& uid) { Enqueue(uid); };
  popts.record_event = opts_.record_event;
  popts.registry = opts_.probe_metrics;
  prober_ = std::make_unique<Prober>(runner, std::move(popts));
  hooks_ = std::make_unique<LifecycleHandlerRunner>(runner);
  if (opts_.mirror_uid_of) status_.SetMirrorUidSource(opts_.mirror_uid_of);
}

PodManager::~PodManager() { Stop(); }

void PodManager::Start() {
  absl::MutexLock l(&mu_);
  if (started_) return;
  started_ = true;
  stopping_ = false;
  status_.Start();
  for (int i = 0; i < std::max(1, opts_.workers); ++i) {
    int id = next_worker_id_++;
    workers_.emplace(id, std::thread([this, id] { WorkerLoop(id); }));
  }
  timer_thread_ = std::thread([this] { TimerLoop(); });
  // Syncs queued before Start().
  for (size_t i = 0; i < queue_.size(); ++i) MaybeAddWorkerLocked();
}

void PodManager::Stop() {
  prober_->Stop();
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    if (!started_) return;
    started_ = false;
    stopping_ = true;
    work_cv_.SignalAll();
    timer_cv_.SignalAll();
  }
  // Workers may still move themselves to exited_ until they see stopping_: join them in
  // rounds, without mu_ held, until none is left.
  while (true) {
    {
      absl::MutexLock l(&mu_);
      for (auto& [_, t] : workers_) threads.push_back(std::move(t));
      workers_.clear();
      for (auto& t : exited_) threads.push_back(std::move(t));
      exited_.clear();
    }
    if (threads.empty()) break;
    for (auto& t : threads) t.join();
    threads.clear();
  }
  if (timer_thread_.joinable()) timer_thread_.join();
  status_.Stop();
}

namespace {
// True when `a` and `b` differ at most in status and bookkeeping metadata.
bool OnlyStatusChanged(const Json& a, const Json& b) {
  if (!a.is_object() || !b.is_object() || a.empty()) return false;
  auto strip = [](Json p) {
    p.erase("status");
    if (p.contains("metadata") && p["metadata"].is_object()) {
      p["metadata"].erase("resourceVersion");
      p["metadata"].erase("managedFields");
      p["metadata"].erase("generation");
    }
    return p;
  };
  return strip(a) == strip(b);
}
}  // namespace

void PodManager::HandlePodEvent(const std::string& type, const Json& json) {
  if (IsMirrorPod(json)) {
    if (opts_.on_mirror_pod) opts_.on_mirror_pod(type == "SYNC" ? "MODIFIED" : type, json);
    return;
  }
  absl::StatusOr<api::Pod> parsed = api::ParsePod(json);
  if (!parsed.ok()) {
    // The API server validated the object, so this is a field berth reads differently:
    // say so on the pod, keep what we had.
    LOG(ERROR) << "pod event " << type << ": cannot parse the pod: " << parsed.status().message();
    if (!json.is_object()) return;
    if (type == "DELETED") {
      // A deletion still applies to the pod we know.
      std::string uid = GetString(json, "metadata.uid");
      absl::MutexLock l(&mu_);
      auto it = pods_.find(uid);
      if (it == pods_.end()) return;
      it->second->removed = true;
    } else {
      Event(json, "Warning", "FailedToParsePod",
            absl::StrCat("berth cannot read the pod: ", parsed.status().message()));
      return;
    }
    Enqueue(GetString(json, "metadata.uid"));
    return;
  }
  auto pod = std::make_shared<const api::Pod>(*std::move(parsed));
  const std::string uid = pod->metadata.uid;
  {
    absl::MutexLock l(&mu_);
    auto it = pods_.find(uid);
    if (it != pods_.end() && type != "DELETED") MaybeRecordSli(it->second.get(), *pod);
    if (type == "DELETED") {
      if (it == pods_.end()) return;
      it->second->pod = std::move(pod);
      it->second->removed = true;
    } else if (type == "ADDED" || type == "MODIFIED" || type == "SYNC") {
      if (it == pods_.end()) {
        it = pods_.emplace(uid, std::make_shared<PodState>()).first;
        it->second->first_seen = std::chrono::steady_clock::now();
        // A pod already running when first seen (berth restarted) is not a start.
        it->second->sli_recorded = pod->status.phase == "Running";
        it->second->start_recorded = it->second->sli_recorded;
      }
      if (it->second->removed) return;  // a late update of a pod that is gone
      // As kubelet's pod config (RECONCILE vs UPDATE): an update that changes only the
      // status (typically our own status write coming back) needs no sync.
      bool status_only = type == "MODIFIED" && it->second->pod &&
                         OnlyStatusChanged(it->second->pod->raw, pod->raw);
      it->second->pod = std::move(pod);
      if (status_only) return;
    } else {
      return;
    }
  }
  Enqueue(uid);
}

void PodManager::HandlePodsSynced() {
  v1::ListPodSandboxRequest req;
  auto sandboxes = runtime_->ListPodSandbox(req);
  if (!sandboxes.ok()) {
    LOG(WARNING) << "orphan cleanup: ListPodSandbox: " << sandboxes.status().message();
    return;
  }
  std::vector<std::string> orphans;
  {
    absl::MutexLock l(&mu_);
    for (const auto& sb : sandboxes->items()) {
      auto uid = sb.labels().find(kPodUidLabel);
      if (uid == sb.labels().end() || pods_.count(uid->second)) continue;
      // A removed pod built from the sandbox's metadata: the worker kills and forgets it.
      auto st = std::make_shared<PodState>();
      auto orphan = std::make_shared<api::Pod>();
      orphan->metadata.name = sb.metadata().name();
      orphan->metadata.namespace_ = sb.metadata().namespace_();
      orphan->metadata.uid = uid->second;
      orphan->raw = {{"metadata",
                      {{"name", orphan->metadata.name},
                       {"namespace", orphan->metadata.namespace_},
                       {"uid", uid->second}}},
                     {"spec", Json::object()}};
      st->pod = std::move(orphan);
      st->removed = true;
      pods_.emplace(uid->second, st);
      orphans.push_back(uid->second);
    }
  }
  for (const auto& uid : orphans) {
    LOG(INFO) << "removing orphaned pod " << uid;
    Enqueue(uid);
  }
  // Pod directories of pods neither bound here nor with a sandbox (deleted while berth was
  // down, after their sandbox went): their volumes are torn down (tmpfs unmounted) and the
  // directory removed, as upstream cleanupOrphanedPodDirs.
  std::set<std::string> sandbox_uids;
  for (const auto& sb : sandboxes->items()) {
    if (auto uid = sb.labels().find(kPodUidLabel); uid != sb.labels().end())
      sandbox_uids.insert(uid->second);
  }
  auto dirs = ListDir(JoinPath(volumes_.root_dir(), "pods"));
  if (!dirs.ok()) return;
  for (const std::string& uid : *dirs) {
    {
      absl::MutexLock l(&mu_);
      if (pods_.count(uid) || sandbox_uids.count(uid)) continue;
    }
    LOG(INFO) << "removing the directory of orphaned pod " << uid;
    absl::Status st = volumes_.TearDownPodVolumes(uid);
    if (st.ok()) st = RemoveAll(volumes_.PodDir(uid));
    if (!st.ok()) {
      LOG(WARNING) << "orphaned pod directory " << uid << ": " << st.message();
    }
  }
}

void PodManager::OnContainerEvent(const std::string& container_id) {
  std::string uid;
  {
    absl::MutexLock l(&mu_);
    auto it = container_to_pod_.find(container_id);
    if (it == container_to_pod_.end()) {
      LOG(DEBUG) << "container event for unknown container " << container_id;
      return;
    }
    uid = it->second;
  }
  Enqueue(uid);
}

void PodManager::MirrorPodChanged(const std::string& uid) { status_.MirrorPodChanged(uid); }

std::optional<Json> PodManager::GetPodStatus(const std::string& uid) {
  return status_.GetPodStatus(uid);
}

std::vector<api::Pod> PodManager::ActivePods() {
  absl::MutexLock l(&mu_);
  std::vector<api::Pod> out;
  for (const auto& [uid, st] : pods_) {
    if (st->removed || !st->evicted.empty()) continue;
    if (st->pod->metadata.deletion_timestamp) continue;
    const std::string& phase = st->pod->status.phase;
    if (phase == "Succeeded" || phase == "Failed") continue;
    out.push_back(*st->pod);
  }
  return out;
}

void PodManager::EvictPod(const std::string& uid, const std::string& message) {
  {
    absl::MutexLock l(&mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end() || it->second->removed || !it->second->evicted.empty()) return;
    it->second->evicted = message;
  }
  Enqueue(uid);
}

std::vector<std::string> PodManager::PodUids() {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [uid, _] : pods_) out.push_back(uid);
  return out;
}

void PodManager::Phase(const PodState& state, const char* phase,
                       std::chrono::steady_clock::time_point start) {
  if (!state.start_recorded) metrics::ObservePhase(km_, phase, start);
}

std::chrono::steady_clock::time_point PodManager::ImageTime(
    PodState* state, std::chrono::steady_clock::time_point start) {
  auto now = std::chrono::steady_clock::now();
  double seconds = std::chrono::duration<double>(now - start).count();
  if (!state->start_recorded) metrics::ObservePhaseSeconds(km_, metrics::kPhaseImageCheck, seconds);
  absl::MutexLock l(&mu_);
  state->image_seconds += seconds;
  return now;
}

void PodManager::Enqueue(const std::string& uid) {
  absl::MutexLock l(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  PodState& st = *it->second;
  if (st.running) {
    st.dirty = true;
  } else if (!st.queued) {
    PushLocked(uid, &st);
  }
}

void PodManager::PushLocked(const std::string& uid, PodState* st, bool self_available) {
  st->queued = true;
  st->queued_at = std::chrono::steady_clock::now();
  queue_.push_back(uid);
  MaybeAddWorkerLocked(self_available ? 1 : 0);
  work_cv_.Signal();
}

void PodManager::MaybeAddWorkerLocked(int about_to_wait) {
  if (!started_ || stopping_) return;
  for (auto& t : exited_) t.join();  // finished: they released mu_ for good
  exited_.clear();
  // Every queued sync needs a worker of its own: an idle one (woken by the caller's Signal,
  // and still counted idle until it runs), or a new one.
  if (queue_.size() <= static_cast<size_t>(idle_workers_ + about_to_wait)) return;
  if (static_cast<int>(workers_.size()) >= std::max(opts_.max_workers, 1)) return;
  int id = next_worker_id_++;
  workers_.emplace(id, std::thread([this, id] { WorkerLoop(id); }));
}

void PodManager::MaybeRecordSli(PodState* st, const api::Pod& pod) {
  // Upstream pod_startup_latency_tracker: creationTimestamp -> the watch reports the pod
  // Running with every container started; image pulling time is subtracted (here: the time
  // spent ensuring images, ImageStatus included). Once per pod.
  if (st->sli_recorded || km_ == nullptr || pod.status.phase != "Running") return;
  if (!pod.metadata.creation_timestamp) return;
  const Json& statuses = pod.raw.value("status", Json::object()).value("containerStatuses", Json());
  if (!statuses.is_array() || statuses.empty()) return;
  for (const Json& cs : statuses) {
    if (!cs.value("started", false) && !cs.value("state", Json::object()).contains("running"))
      return;
  }
  st->sli_recorded = true;
  double total = absl::ToDoubleSeconds(absl::Now() - *pod.metadata.creation_timestamp);
  if (km_->pod_start_total) km_->pod_start_total->WithLabelValues({})->Observe(total);
  if (km_->pod_start_sli) {
    km_->pod_start_sli->WithLabelValues({})->Observe(std::max(0.0, total - st->image_seconds));
  }
}

void PodManager::EnqueueAfter(const std::string& uid, absl::Duration delay) {
  absl::Time at = absl::Now() + std::max(delay, absl::ZeroDuration());
  absl::MutexLock l(&mu_);
  auto [it, inserted] = timers_.emplace(uid, at);
  if (!inserted) {
    if (it->second <= at) return;
    it->second = at;
  }
  timer_cv_.Signal();
}

void PodManager::WorkerLoop(int id) {
  mu_.Lock();
  while (true) {
    bool timed_out = false;
    while (!stopping_ && queue_.empty() && !timed_out) {
      ++idle_workers_;
      timed_out = work_cv_.WaitWithTimeout(&mu_, opts_.worker_idle_timeout);
      --idle_workers_;
    }
    if (stopping_) break;
    if (queue_.empty()) {
      // Idle for worker_idle_timeout: threads above the kept number go away.
      if (static_cast<int>(workers_.size()) <= std::max(1, opts_.workers)) continue;
      auto self = workers_.find(id);
      exited_.push_back(std::move(self->second));
      workers_.erase(self);
      break;
    }
    std::string uid = queue_.front();
    queue_.pop_front();
    auto it = pods_.find(uid);
    if (it == pods_.end()) continue;
    std::shared_ptr<PodState> st = it->second;
    st->queued = false;
    st->running = true;
    st->dirty = false;
    std::shared_ptr<const api::Pod> pod = st->pod;
    bool removed = st->removed;
    const auto sync_start = std::chrono::steady_clock::now();
    const bool first_sync = !st->synced;
    if (first_sync && km_ && km_->pod_worker_start &&
        st->first_seen != std::chrono::steady_clock::time_point()) {
      km_->pod_worker_start->WithLabelValues({})->Observe(
          std::chrono::duration<double>(sync_start - st->first_seen).count());
    }
    if (!st->start_recorded) {
      metrics::ObservePhaseSeconds(
          km_, metrics::kPhaseQueueWait,
          std::chrono::duration<double>(sync_start - st->queued_at).count());
    }
    mu_.Unlock();
    // Upstream's operation types: the first sync creates the pod, a changed object is an
    // update, anything else a resync; a deleting pod's syncs are "terminated".
    const char* operation = removed || pod->metadata.deletion_timestamp ? "terminated"
                            : first_sync                                ? "create"
                            : st->last_synced != pod                    ? "update"
                                                                        : "sync";
    st->synced = true;
    st->last_synced = pod;
    bool forget = SyncPod(uid, st.get(), *pod, removed);
    if (km_ && km_->pod_worker) {
      km_->pod_worker->WithLabelValues({operation})->Observe(metrics::SecondsSince(sync_start));
    }
    if (forget || st->terminated) prober_->RemovePod(uid);
    mu_.Lock();
    st->running = false;
    if (forget) {
      pods_.erase(uid);
      for (auto c = container_to_pod_.begin(); c != container_to_pod_.end();) {
        c = c->second == uid ? container_to_pod_.erase(c) : std::next(c);
      }
    } else if (st->dirty && !st->queued) {
      PushLocked(uid, st.get(), /*self_available=*/true);
    }
  }
  mu_.Unlock();
}

void PodManager::TimerLoop() {
  absl::Time next_resync = absl::Now() + opts_.resync_period;
  mu_.Lock();
  while (!stopping_) {
    absl::Time now = absl::Now();
    std::vector<std::string> due;
    absl::Time deadline = next_resync;
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->second <= now) {
        due.push_back(it->first);
        it = timers_.erase(it);
      } else {
        deadline = std::min(deadline, it->second);
        ++it;
      }
    }
    if (now >= next_resync) {
      for (const auto& [uid, _] : pods_) due.push_back(uid);
      next_resync = now + opts_.resync_period;
    }
    if (!due.empty()) {
      mu_.Unlock();
      for (const auto& uid : due) Enqueue(uid);
      mu_.Lock();
      continue;
    }
    timer_cv_.WaitWithDeadline(&mu_, deadline);
  }
  mu_.Unlock();
}

absl::StatusOr<PodRuntimeStatus> PodManager::GetRuntimeStatus(const std::string& uid) {
  PodRuntimeStatus out;
  v1::ListPodSandboxRequest lsreq;
  (*lsreq.mutable_filter()->mutable_label_selector())[kPodUidLabel] = uid;
  ASSIGN_OR_RETURN(v1::ListPodSandboxResponse sandboxes, runtime_->ListPodSandbox(lsreq));
  for (const auto& sb : sandboxes.items()) {
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(sb.id());
    auto st = runtime_->PodSandboxStatus(req);
    if (!st.ok()) {
      if (absl::IsNotFound(st.status())) continue;
      return Annotate(st.status(), absl::StrCat("PodSandboxStatus ", sb.id()));
    }
    out.sandboxes.push_back(st->status());
  }
  std::sort(out.sandboxes.begin(), out.sandboxes.end(),
            [](const auto& a, const auto& b) { return a.created_at() > b.created_at(); });
  v1::ListContainersRequest lcreq;
  (*lcreq.mutable_filter()->mutable_label_selector())[kPodUidLabel] = uid;
  ASSIGN_OR_RETURN(v1::ListContainersResponse containers, runtime_->ListContainers(lcreq));
  std::vector<std::string> ids;
  for (const auto& c : containers.containers()) {
    v1::ContainerStatusRequest req;
    req.set_container_id(c.id());
    auto st = runtime_->ContainerStatus(req);
    if (!st.ok()) {
      if (absl::IsNotFound(st.status())) continue;
      return Annotate(st.status(), absl::StrCat("ContainerStatus ", c.id()));
    }
    out.containers.push_back(st->status());
    ids.push_back(c.id());
  }
  std::sort(out.containers.begin(), out.containers.end(),
            [](const auto& a, const auto& b) { return a.created_at() > b.created_at(); });
  absl::MutexLock l(&mu_);
  for (const auto& id : ids) container_to_pod_[id] = uid;
  return out;
}

bool PodManager::SyncPod(const std::string& uid, PodState* state, const api::Pod& pod,
                         bool removed) {
  if (removed || pod.metadata.deletion_timestamp.has_value()) {
    return SyncTerminatingPod(uid, state, pod, removed);
  }
  if (state->terminated) return false;  // terminal pod: nothing runs any more
  if (EvictIfDue(uid, state, pod)) return false;
  const std::string& api_phase = pod.status.phase;
  if (api_phase == "Succeeded" || api_phase == "Failed") {
    // Terminal before we saw it (e.g. berth restarted): never run it again.
    absl::Status k = KillPod(uid, pod, 0, /*remove=*/false);
    if (!k.ok()) {
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
    state->terminated = true;
    return false;
  }

  absl::Time now = opts_.clock();
  state->waiting.clear();
  auto phase_start = std::chrono::steady_clock::now();
  auto rt = GetRuntimeStatus(uid);
  Phase(*state, metrics::kPhaseRuntimeStatus, phase_start);
  if (!rt.ok()) {
    LOG(WARNING) << "pod " << pod.Key() << ": runtime status: " << rt.status().message();
    EnqueueAfter(uid, absl::Seconds(2));
    return false;
  }
  if (!AdmitOnce(uid, state, pod, *rt)) return false;
  // A first status (Pending, ContainerCreating) before anything slow happens.
  if (state->last_status.empty()) UpdateStatus(uid, state, pod, *rt, false);

  // Volumes first: containers cannot start without them.
  auto volumes = SetUpVolumes(uid, state, pod, *rt, now);
  if (!volumes) return false;

  // The plan (upstream computePodActions), then the sandbox (RunPodSandbox sets up the
  // network through CNI).
  PodActions plan = PlanSync(uid, state, pod, *rt, now);
  SandboxInfo sandbox;
  if (!EnsureSandbox(uid, state, pod, plan, &*rt, &sandbox)) return false;
  // A new sandbox: plan the containers again on the runtime's new view.
  if (plan.create_sandbox) plan = PlanSync(uid, state, pod, *rt, now, sandbox.id);

  // Containers: probe kills, then starts (each: image, create, start, postStart), garbage.
  bool changed = KillContainers(pod, plan, sandbox.pod_ip);
  changed |= StartContainers(uid, state, pod, plan, sandbox, *volumes);
  changed |= RemoveContainers(plan);
  if (plan.resync_after) EnqueueAfter(uid, *plan.resync_after);
  if (changed) {
    auto after = GetRuntimeStatus(uid);
    if (after.ok()) rt = std::move(after);
  }

  // Status: probe workers follow the newest instances, the status is written, a pod that is
  // done is stopped.
  SyncProbes(pod, *rt, sandbox.pod_ip);
  UpdateStatus(uid, state, pod, *rt, false);
  FinishIfTerminal(uid, state, pod, plan, *rt);
  return false;
}

bool PodManager::EvictIfDue(const std::string& uid, PodState* state, const api::Pod& pod) {
  std::string evicted;
  {
    absl::MutexLock l(&mu_);
    evicted = state->evicted;
  }
  if (auto left = ActiveDeadlineLeft(pod, *state); evicted.empty() && left) {
    // spec.activeDeadlineSeconds (upstream activeDeadlineHandler): measured from the pod's
    // startTime; once passed, the pod is killed and Failed with reason DeadlineExceeded.
    if (*left <= absl::ZeroDuration()) {
      evicted = "Pod was active on the node longer than the specified deadline";
      state->rejected_reason = "DeadlineExceeded";
      absl::MutexLock l(&mu_);
      state->evicted = evicted;
    } else {
      EnqueueAfter(uid, *left);
    }
  }
  if (evicted.empty()) return false;
  // The eviction manager's evictPod (and the active deadline's kill): event first, then
  // kill with no grace period; the status (Failed/Evicted) is written by UpdateStatus.
  Event(pod, "Warning", state->rejected_reason.empty() ? "Evicted" : state->rejected_reason,
        evicted);
  prober_->RemovePod(uid);
  absl::Status k = KillPod(uid, pod, 0, /*remove=*/false);
  if (!k.ok()) {
    LOG(WARNING) << "pod " << pod.Key() << ": evicting: " << k.message();
    EnqueueAfter(uid, absl::Seconds(2));
    return true;
  }
  // As upstream, the volumes of a terminated pod are torn down (an evicted pod's emptyDirs
  // give their disk back before the pod is deleted).
  if (absl::Status v = volumes_.TearDownPodVolumes(uid); !v.ok()) {
    LOG(WARNING) << "pod " << pod.Key() << ": evicted: " << v.message();
  }
  state->terminated = true;
  state->waiting.clear();
  auto after = GetRuntimeStatus(uid);
  if (after.ok()) UpdateStatus(uid, state, pod, *after, /*terminal=*/true);
  LOG(INFO) << "pod " << pod.Key() << " evicted: " << evicted;
  return true;
}

bool PodManager::AdmitOnce(const std::string& uid, PodState* state, const api::Pod& pod,
                           const PodRuntimeStatus& rt) {
  // Admission, once, for a pod that does not run here yet (upstream HandlePodAdditions ->
  // canAdmitPod; a rejected pod is Failed with the handler's reason and never runs).
  if (state->admitted) return true;
  if (rt.sandboxes.empty()) {
    if (auto rejected = AdmitPod(pod)) {
      const std::string message = absl::StrCat("Pod was rejected: ", rejected->second);
      LOG(INFO) << "pod " << pod.Key() << " rejected: " << rejected->first << ": "
                << rejected->second;
      Event(pod, "Warning", rejected->first, message);
      {
        absl::MutexLock l(&mu_);
        state->evicted = message;
      }
      state->rejected_reason = rejected->first;
      state->terminated = true;
      UpdateStatus(uid, state, pod, rt, /*terminal=*/true);
      return false;
    }
  }
  state->admitted = true;
  return true;
}

std::optional<std::map<std::string, MountedVolume>> PodManager::SetUpVolumes(
    const std::string& uid, PodState* state, const api::Pod& pod, const PodRuntimeStatus& rt,
    absl::Time now) {
  auto phase_start = std::chrono::steady_clock::now();
  auto volumes = volumes_.SetUpPodVolumes(pod.raw, opts_.node_ip);
  Phase(*state, metrics::kPhaseVolumes, phase_start);
  if (auto refresh = volumes_.NextRefresh(uid)) EnqueueAfter(uid, *refresh - now);
  if (!volumes.ok()) {
    LOG(WARNING) << "pod " << pod.Key() << ": " << volumes.status().message();
    // As the kubelet's operation executor reports it; once per distinct error, not per retry.
    std::string message = absl::StrCat("MountVolume.SetUp failed for ", volumes.status().message());
    if (message != state->volume_error) {
      Event(pod, "Warning", "FailedMount", message);
      state->volume_error = std::move(message);
    }
    UpdateStatus(uid, state, pod, rt, false);
    state->volume_retry = state->volume_retry == absl::ZeroDuration()
                              ? absl::Milliseconds(200)
                              : std::min(state->volume_retry * 2, opts_.backoff_initial);
    EnqueueAfter(uid, state->volume_retry);
    return std::nullopt;
  }
  state->volume_retry = absl::ZeroDuration();
  state->volume_error.clear();
  return *std::move(volumes);
}

PodActions PodManager::PlanSync(const std::string& uid, PodState* state, const api::Pod& pod,
                                const PodRuntimeStatus& rt, absl::Time now,
                                const std::string& created_sandbox_id) {
  PodActionsInput in;
  in.created_sandbox_id = created_sandbox_id;
  in.pod = &pod;
  in.runtime = &rt;
  in.crash_backoff = &state->crash_backoff;
  in.now = now;
  in.backoff_initial = opts_.backoff_initial;
  in.crash_backoff_max = opts_.crash_backoff_max;
  for (const auto& cs : rt.containers) {
    if (cs.state() != v1::CONTAINER_RUNNING) continue;
    ProbeVerdict v;
    v.started = prober_->Status(uid, cs.metadata().name(), cs.id()).started;
    if (auto kill = prober_->KillReason(uid, cs.metadata().name(), cs.id(),
                                        pod.spec.termination_grace_period_seconds)) {
      v.failed = kill->type;
      v.kill_grace_seconds = kill->grace_seconds;
    }
    in.probes[cs.id()] = v;
  }
  return ComputePodActions(in);
}

bool PodManager::EnsureSandbox(const std::string& uid, PodState* state, const api::Pod& pod,
                               const PodActions& plan, PodRuntimeStatus* rt, SandboxInfo* sandbox) {
  if (plan.sandbox_lost_terminal) {
    // The sandbox died after containers ran: a Never pod is not recreated.
    (void)KillPod(uid, pod, 0, false);
    auto after = GetRuntimeStatus(uid);
    state->terminated = true;
    UpdateStatus(uid, state, pod, after.ok() ? *after : *rt, /*terminal=*/true);
    return false;
  }
  if (!plan.create_sandbox) {
    sandbox->id = plan.sandbox_id;
    sandbox->config = MakeSandboxConfig(pod, plan.attempt);
  } else {
    if (plan.kill_pod) {
      absl::Status k = KillPod(uid, pod, pod.spec.termination_grace_period_seconds, false);
      if (!k.ok()) {
        LOG(WARNING) << "pod " << pod.Key() << ": " << k.message();
      }
    }
    sandbox->config = MakeSandboxConfig(pod, plan.attempt);
    (void)MkdirAll(sandbox->config.log_directory(), 0755);
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = sandbox->config;
    std::string handler = opts_.runtime_handler;
    std::string rc = pod.spec.runtime_class_name.value_or("");
    if (!rc.empty()) {
      auto obj = api_->Get(absl::StrCat("/apis/node.k8s.io/v1/runtimeclasses/", rc));
      if (obj.ok()) handler = obj->value("handler", handler);
    }
    req.set_runtime_handler(handler);
    LOG(INFO) << "pod " << pod.Key() << ": RunPodSandbox attempt " << plan.attempt;
    auto phase_start = std::chrono::steady_clock::now();
    auto run = runtime_->RunPodSandbox(req);
    Phase(*state, metrics::kPhaseSandbox, phase_start);
    if (!run.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": RunPodSandbox: " << run.status().message();
      // kubelet's reason and message for a sandbox that could not be created (events.go).
      Event(pod, "Warning", "FailedCreatePodSandBox",
            absl::StrCat("Failed to create pod sandbox: ", run.status().message()));
      UpdateStatus(uid, state, pod, *rt, false);
      EnqueueAfter(uid, opts_.backoff_initial);
      return false;
    }
    sandbox->id = run->pod_sandbox_id();
    auto after = GetRuntimeStatus(uid);
    if (!after.ok()) {
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
    *rt = *std::move(after);
  }
  for (const auto& sb : rt->sandboxes) {
    if (sb.id() == sandbox->id) sandbox->pod_ip = sb.network().ip();
  }
  if (pod.spec.host_network) sandbox->pod_ip = opts_.node_ip;
  return true;
}

bool PodManager::KillContainers(const api::Pod& pod, const PodActions& plan,
                                const std::string& pod_ip) {
  for (const ContainerToKill& k : plan.containers_to_kill) {
    Event(pod, "Normal", "Killing", k.message, k.name);
    LOG(INFO) << "pod " << pod.Key() << ": container " << k.name << " failed "
              << absl::AsciiStrToLower(ProbeTypeName(k.probe)) << " probe, stopping " << k.id;
    absl::Status r = StopOne(pod, k.name, k.id, k.grace_seconds, pod_ip);
    if (!r.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": " << r.message();
    }
  }
  return !plan.containers_to_kill.empty();
}

bool PodManager::StartContainers(const std::string& uid, PodState* state, const api::Pod& pod,
                                 const PodActions& plan, const SandboxInfo& sandbox,
                                 const std::map<std::string, MountedVolume>& volumes) {
  for (const std::string& name : plan.forget_backoff) state->crash_backoff.erase(name);
  for (const auto& [name, w] : plan.waiting) state->waiting[name] = w;
  for (const ContainerToStart& s : plan.containers_to_start) {
    const std::string& name = s.container->name;
    if (s.backoff) state->crash_backoff[name] = *s.backoff;
    if (!s.remove_first.empty()) {
      v1::RemoveContainerRequest rm;
      rm.set_container_id(s.remove_first);
      (void)runtime_->RemoveContainer(rm);
    }
    auto id = StartContainer(state, pod, *s.container, s.restart_count, sandbox.id, sandbox.config,
                             sandbox.pod_ip, volumes, s.pid_target_id);
    if (id.ok()) continue;
    const std::string& reason = state->waiting[name].reason;
    if (s.kind == ContainerToStart::Kind::kEphemeral) {
      LOG(WARNING) << "pod " << pod.Key() << ": ephemeral container " << name << ": "
                   << id.status().message();
    } else {
      LOG(WARNING) << "pod " << pod.Key() << ": " << id.status().message();
      if (reason == "CreateContainerConfigError") {
        // As upstream's startContainer when generateContainerConfig fails.
        Event(pod, "Warning", "Failed", absl::StrCat("Error: ", state->waiting[name].message),
              name);
      }
    }
    if (reason != "ErrImagePull" && reason != "ImagePullBackOff") {
      EnqueueAfter(uid, opts_.backoff_initial);
    }
  }
  return !plan.containers_to_start.empty();
}

bool PodManager::RemoveContainers(const PodActions& plan) {
  for (const std::string& id : plan.containers_to_remove) {
    v1::RemoveContainerRequest rm;
    rm.set_container_id(id);
    (void)runtime_->RemoveContainer(rm);
  }
  return !plan.containers_to_remove.empty();
}

void PodManager::SyncProbes(const api::Pod& pod, const PodRuntimeStatus& rt,
                            const std::string& pod_ip) {
  // The probe workers follow the newest instance of each container.
  std::map<std::string, ProbedContainer> probed;
  for (const auto& cs : rt.containers) {  // newest first
    if (probed.count(cs.metadata().name())) continue;
    probed[cs.metadata().name()] = {cs.id(), absl::FromUnixNanos(cs.started_at()),
                                    cs.state() == v1::CONTAINER_RUNNING};
  }
  prober_->SyncPod(pod, pod_ip, probed);
}

void PodManager::FinishIfTerminal(const std::string& uid, PodState* state, const api::Pod& pod,
                                  const PodActions& plan, const PodRuntimeStatus& rt) {
  std::string phase = state->last_status.value("phase", "");
  if (!plan.init_failed && phase != "Succeeded" && phase != "Failed" && !plan.only_sidecars_left) {
    return;
  }
  // Terminal: stop what is left (the sandbox), keep the exited containers for logs.
  absl::Status k = KillPod(uid, pod, pod.spec.termination_grace_period_seconds, false);
  if (!k.ok()) {
    LOG(WARNING) << "pod " << pod.Key() << ": stopping terminal pod: " << k.message();
    EnqueueAfter(uid, absl::Seconds(2));
    return;
  }
  state->terminated = true;
  auto after = GetRuntimeStatus(uid);
  UpdateStatus(uid, state, pod, after.ok() ? *after : rt, /*terminal=*/true);
  LOG(INFO) << "pod " << pod.Key() << " is " << state->last_status.value("phase", "");
}

}  // namespace berth::kubelet
