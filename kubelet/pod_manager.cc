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
#include "kubelet/pod_manager_internal.h"
#include "kubelet/pod_util.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

using namespace pod_internal;  // NOLINT(google-build-using-namespace): shared helpers

PodManager::PodManager(ApiClient* api, cri::RuntimeService* runtime, cri::ImageService* images,
                       PodManagerOptions options)
    : api_(api),
      runtime_(runtime),
      images_(images),
      opts_(std::move(options)),
      volumes_(api, opts_.root_dir, opts_.clock),
      sysctls_(SysctlAllowlist::Create(opts_.allowed_unsafe_sysctls)
                   .value_or(*SysctlAllowlist::Create({}))),
      status_(api) {
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
}

PodManager::~PodManager() { Stop(); }

void PodManager::Start() {
  absl::MutexLock l(&mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  status_.Start();
  for (int i = 0; i < std::max(1, opts_.workers); ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  threads_.emplace_back([this] { TimerLoop(); });
}

void PodManager::Stop() {
  prober_->Stop();
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    work_cv_.SignalAll();
    timer_cv_.SignalAll();
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
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
  const std::string& uid = pod->metadata.uid;
  {
    absl::MutexLock l(&mu_);
    auto it = pods_.find(uid);
    if (type == "DELETED") {
      if (it == pods_.end()) return;
      it->second->pod = std::move(pod);
      it->second->removed = true;
    } else if (type == "ADDED" || type == "MODIFIED" || type == "SYNC") {
      if (it == pods_.end()) it = pods_.emplace(uid, std::make_shared<PodState>()).first;
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

void PodManager::Enqueue(const std::string& uid) {
  absl::MutexLock l(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  PodState& st = *it->second;
  if (st.running) {
    st.dirty = true;
  } else if (!st.queued) {
    st.queued = true;
    queue_.push_back(uid);
    work_cv_.Signal();
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

void PodManager::WorkerLoop() {
  mu_.Lock();
  while (true) {
    while (!stopping_ && queue_.empty()) work_cv_.Wait(&mu_);
    if (stopping_) break;
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
    mu_.Unlock();
    bool forget = SyncPod(uid, st.get(), *pod, removed);
    if (forget || st->terminated) prober_->RemovePod(uid);
    mu_.Lock();
    st->running = false;
    if (forget) {
      pods_.erase(uid);
      for (auto c = container_to_pod_.begin(); c != container_to_pod_.end();) {
        c = c->second == uid ? container_to_pod_.erase(c) : std::next(c);
      }
    } else if (st->dirty && !st->queued) {
      st->queued = true;
      queue_.push_back(uid);
      work_cv_.Signal();
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

absl::Status PodManager::KillPod(const std::string& uid, const api::Pod& pod, int64_t grace_seconds,
                                 bool remove) {
  ASSIGN_OR_RETURN(PodRuntimeStatus rt, GetRuntimeStatus(uid));
  // Upstream killContainersWithSyncResult: the regular (and ephemeral) containers are
  // stopped in parallel, each with the grace period; then the sidecars one at a time in
  // reverse spec order with what is left of it (at least 2 s, as upstream's minimum).
  std::map<std::string, int> sidecar_index;
  const std::vector<api::Container>& init = pod.spec.init_containers;
  for (size_t i = 0; i < init.size(); ++i) {
    if (api::IsRestartableInitContainer(init[i])) sidecar_index[init[i].name] = static_cast<int>(i);
  }
  std::vector<const v1::ContainerStatus*> first;
  std::vector<std::pair<int, const v1::ContainerStatus*>> sidecars;
  for (const auto& c : rt.containers) {
    if (c.state() == v1::CONTAINER_EXITED) continue;
    auto s = sidecar_index.find(c.metadata().name());
    if (s == sidecar_index.end()) {
      first.push_back(&c);
    } else {
      sidecars.emplace_back(s->second, &c);
    }
  }
  std::stable_sort(sidecars.begin(), sidecars.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string pod_ip = pod.spec.host_network ? opts_.node_ip : "";
  if (pod_ip.empty() && !rt.sandboxes.empty()) pod_ip = rt.sandboxes[0].network().ip();
  absl::Time deadline = absl::Now() + absl::Seconds(grace_seconds);
  std::vector<std::vector<const v1::ContainerStatus*>> waves;
  if (!first.empty()) waves.push_back(first);
  for (const auto& [_, c] : sidecars) waves.push_back({c});
  for (const auto& wave : waves) {
    int64_t left = grace_seconds;
    if (&wave != &waves.front()) {
      left = std::max<int64_t>(absl::ToInt64Seconds(deadline - absl::Now()),
                               grace_seconds > 0 ? kMinGracePeriodSeconds : 0);
    }
    std::vector<std::thread> stoppers;
    std::vector<absl::Status> results(wave.size());
    for (size_t i = 0; i < wave.size(); ++i) {
      stoppers.emplace_back([this, &results, &pod, &pod_ip, i, c = wave[i], left] {
        results[i] = StopOne(pod, c->metadata().name(), c->id(), left, pod_ip);
      });
    }
    for (auto& t : stoppers) t.join();
    for (const auto& s : results) RETURN_IF_ERROR(s);
  }
  for (const auto& sb : rt.sandboxes) {
    if (sb.state() != v1::SANDBOX_READY && !remove) continue;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(sb.id());
    auto r = runtime_->StopPodSandbox(req);
    if (!r.ok() && !absl::IsNotFound(r.status())) {
      return Annotate(r.status(), absl::StrCat("StopPodSandbox ", sb.id(), " of pod ", pod.Key()));
    }
  }
  if (!remove) return absl::OkStatus();
  for (const auto& c : rt.containers) {
    v1::RemoveContainerRequest req;
    req.set_container_id(c.id());
    auto r = runtime_->RemoveContainer(req);
    if (!r.ok() && !absl::IsNotFound(r.status())) {
      return Annotate(r.status(), absl::StrCat("RemoveContainer ", c.id()));
    }
  }
  for (const auto& sb : rt.sandboxes) {
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(sb.id());
    auto r = runtime_->RemovePodSandbox(req);
    if (!r.ok() && !absl::IsNotFound(r.status())) {
      return Annotate(r.status(), absl::StrCat("RemovePodSandbox ", sb.id()));
    }
  }
  return absl::OkStatus();
}

absl::Status PodManager::StopOne(const api::Pod& pod, const std::string& name,
                                 const std::string& id, int64_t grace_seconds,
                                 const std::string& pod_ip) {
  const api::Container* spec_c = nullptr;
  for (const auto* list : {&pod.spec.containers, &pod.spec.init_containers}) {
    for (const api::Container& c : *list) {
      if (spec_c == nullptr && c.name == name) spec_c = &c;
    }
  }
  if (spec_c != nullptr && spec_c->lifecycle && spec_c->lifecycle->pre_stop && grace_seconds > 0) {
    // Upstream executePreStopHook: the hook's time counts against the grace period.
    absl::Time start = absl::Now();
    absl::Status h =
        hooks_->Run(*spec_c, LifecycleHook::kPreStop, id, pod_ip, absl::Seconds(grace_seconds));
    if (!h.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": preStop hook of " << name << ": " << h.message();
      Event(pod, "Warning", "FailedPreStopHook", std::string(h.message()), name);
    }
    grace_seconds =
        std::max(grace_seconds - absl::ToInt64Seconds(absl::Now() - start), kMinGracePeriodSeconds);
  }
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(grace_seconds);
  auto r = runtime_->StopContainer(req);
  if (!r.ok() && !absl::IsNotFound(r.status())) {
    return Annotate(r.status(), absl::StrCat("StopContainer ", id, " of pod ", pod.Key()));
  }
  return absl::OkStatus();
}

bool PodManager::SyncPod(const std::string& uid, PodState* state, const api::Pod& pod,
                         bool removed) {
  const api::PodSpec& spec = pod.spec;
  bool deleting = removed || pod.metadata.deletion_timestamp.has_value();
  if (deleting) {
    prober_->RemovePod(uid);
    if (state->cleaned_up) {
      // Already killed and removed; the status manager deletes the object.
      if (removed) status_.RemovePod(uid);
      return removed;
    }
    int64_t grace =
        pod.metadata.deletion_grace_period_seconds.value_or(spec.termination_grace_period_seconds);
    absl::Status s = KillPod(uid, pod, grace, /*remove=*/false);
    if (s.ok() && !removed) {
      auto rt = GetRuntimeStatus(uid);
      if (rt.ok()) {
        state->waiting.clear();
        UpdateStatus(uid, state, pod, *rt, /*terminal=*/true);
      }
    }
    if (s.ok()) s = KillPod(uid, pod, grace, /*remove=*/true);
    if (s.ok()) s = volumes_.TearDownPodVolumes(uid);
    if (!s.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": kill failed, retrying: " << s.message();
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
    state->terminated = true;
    state->cleaned_up = true;
    if (removed) {
      status_.RemovePod(uid);
      (void)RemoveAll(volumes_.PodDir(uid));
      LOG(INFO) << "pod " << pod.Key() << " removed";
      return true;
    }
    status_.MarkForDeletion(uid);
    return false;
  }
  if (state->terminated) return false;  // terminal pod: nothing runs any more
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
  if (!evicted.empty()) {
    // The eviction manager's evictPod (and the active deadline's kill): event first, then
    // kill with no grace period; the status (Failed/Evicted) is written by UpdateStatus.
    Event(pod, "Warning", state->rejected_reason.empty() ? "Evicted" : state->rejected_reason,
          evicted);
    prober_->RemovePod(uid);
    absl::Status k = KillPod(uid, pod, 0, /*remove=*/false);
    if (!k.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": evicting: " << k.message();
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
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
    return false;
  }
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
  const std::string& policy = spec.restart_policy;
  state->waiting.clear();

  auto rt = GetRuntimeStatus(uid);
  if (!rt.ok()) {
    LOG(WARNING) << "pod " << pod.Key() << ": runtime status: " << rt.status().message();
    EnqueueAfter(uid, absl::Seconds(2));
    return false;
  }
  // Admission, once, for a pod that does not run here yet (upstream HandlePodAdditions ->
  // canAdmitPod; a rejected pod is Failed with the handler's reason and never runs).
  if (!state->admitted) {
    if (rt->sandboxes.empty()) {
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
        UpdateStatus(uid, state, pod, *rt, /*terminal=*/true);
        return false;
      }
    }
    state->admitted = true;
  }
  // A first status (Pending, ContainerCreating) before anything slow happens.
  if (state->last_status.empty()) UpdateStatus(uid, state, pod, *rt, false);

  // Volumes first: containers cannot start without them.
  auto volumes = volumes_.SetUpPodVolumes(pod.raw, opts_.node_ip);
  if (auto refresh = volumes_.NextRefresh(uid)) EnqueueAfter(uid, *refresh - now);
  if (!volumes.ok()) {
    LOG(WARNING) << "pod " << pod.Key() << ": " << volumes.status().message();
    // As the kubelet's operation executor reports it; once per distinct error, not per retry.
    std::string message = absl::StrCat("MountVolume.SetUp failed for ", volumes.status().message());
    if (message != state->volume_error) {
      Event(pod, "Warning", "FailedMount", message);
      state->volume_error = std::move(message);
    }
    UpdateStatus(uid, state, pod, *rt, false);
    state->volume_retry = state->volume_retry == absl::ZeroDuration()
                              ? absl::Milliseconds(200)
                              : std::min(state->volume_retry * 2, opts_.backoff_initial);
    EnqueueAfter(uid, state->volume_retry);
    return false;
  }
  state->volume_retry = absl::ZeroDuration();
  state->volume_error.clear();

  // The sandbox: the newest ready one, or a new one.
  const v1::PodSandboxStatus* sandbox = nullptr;
  if (!rt->sandboxes.empty() && rt->sandboxes[0].state() == v1::SANDBOX_READY)
    sandbox = &rt->sandboxes[0];
  std::string sandbox_id;
  v1::PodSandboxConfig sandbox_config;
  if (sandbox == nullptr) {
    uint32_t attempt = 0;
    for (const auto& sb : rt->sandboxes) attempt = std::max(attempt, sb.metadata().attempt() + 1);
    if (!rt->sandboxes.empty() || !rt->containers.empty()) {
      if (policy == "Never" && !rt->containers.empty()) {
        // The sandbox died after containers ran: a Never pod is not recreated.
        (void)KillPod(uid, pod, 0, false);
        auto after = GetRuntimeStatus(uid);
        state->terminated = true;
        UpdateStatus(uid, state, pod, after.ok() ? *after : *rt, /*terminal=*/true);
        return false;
      }
      absl::Status k = KillPod(uid, pod, spec.termination_grace_period_seconds, false);
      if (!k.ok()) {
        LOG(WARNING) << "pod " << pod.Key() << ": " << k.message();
      }
    }
    sandbox_config = MakeSandboxConfig(pod, attempt);
    (void)MkdirAll(sandbox_config.log_directory(), 0755);
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = sandbox_config;
    std::string handler = opts_.runtime_handler;
    std::string rc = spec.runtime_class_name.value_or("");
    if (!rc.empty()) {
      auto obj = api_->Get(absl::StrCat("/apis/node.k8s.io/v1/runtimeclasses/", rc));
      if (obj.ok()) handler = obj->value("handler", handler);
    }
    req.set_runtime_handler(handler);
    LOG(INFO) << "pod " << pod.Key() << ": RunPodSandbox attempt " << attempt;
    auto run = runtime_->RunPodSandbox(req);
    if (!run.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": RunPodSandbox: " << run.status().message();
      // kubelet's reason and message for a sandbox that could not be created (events.go).
      Event(pod, "Warning", "FailedCreatePodSandBox",
            absl::StrCat("Failed to create pod sandbox: ", run.status().message()));
      UpdateStatus(uid, state, pod, *rt, false);
      EnqueueAfter(uid, opts_.backoff_initial);
      return false;
    }
    sandbox_id = run->pod_sandbox_id();
    rt = GetRuntimeStatus(uid);
    if (!rt.ok()) {
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
  } else {
    sandbox_id = sandbox->id();
    sandbox_config = MakeSandboxConfig(pod, sandbox->metadata().attempt());
  }
  std::string pod_ip;
  for (const auto& sb : rt->sandboxes) {
    if (sb.id() == sandbox_id) pod_ip = sb.network().ip();
  }
  if (spec.host_network) pod_ip = opts_.node_ip;

  // Container instances by name, newest first.
  std::map<std::string, std::vector<const v1::ContainerStatus*>> by_name;
  for (const auto& cs : rt->containers) by_name[cs.metadata().name()].push_back(&cs);
  bool changed = false;
  bool failed = false;
  // Starts container `c` after `latest` (nullptr: first start), honouring the crash-loop
  // back-off for restarts.
  auto start = [&](const api::Container& c, const v1::ContainerStatus* latest) {
    const std::string& name = c.name;
    int restart_count = 0;
    if (latest) {
      restart_count = RestartCountOf(*latest) + 1;
      absl::Time finished = absl::FromUnixNanos(latest->finished_at());
      auto b = state->crash_backoff.find(name);
      if (b != state->crash_backoff.end()) {
        // Forget a back-off after a long healthy run (upstream: 2x the maximum).
        if (now - finished > 2 * opts_.crash_backoff_max) {
          state->crash_backoff.erase(b);
        } else if (now < finished + b->second.duration) {
          state->waiting[name] = {
              "CrashLoopBackOff",
              absl::StrCat("back-off ", absl::FormatDuration(b->second.duration),
                           " restarting failed container=", name, " pod=", pod.metadata.name, "_",
                           pod.metadata.namespace_, "(", uid, ")")};
          EnqueueAfter(uid, finished + b->second.duration - now);
          return;
        }
      }
      b = state->crash_backoff.find(name);
      absl::Duration d = b == state->crash_backoff.end()
                             ? opts_.backoff_initial
                             : std::min(b->second.duration * 2, opts_.crash_backoff_max);
      state->crash_backoff[name] = Backoff{now + d, d};
      if (latest->state() != v1::CONTAINER_EXITED) {
        v1::RemoveContainerRequest rm;
        rm.set_container_id(latest->id());
        (void)runtime_->RemoveContainer(rm);
      }
    }
    auto id =
        StartContainer(state, pod, c, restart_count, sandbox_id, sandbox_config, pod_ip, *volumes);
    if (!id.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": " << id.status().message();
      if (state->waiting[name].reason == "CreateContainerConfigError") {
        // As upstream's startContainer when generateContainerConfig fails.
        Event(pod, "Warning", "Failed", absl::StrCat("Error: ", state->waiting[name].message),
              name);
      }
      if (state->waiting[name].reason != "ErrImagePull" &&
          state->waiting[name].reason != "ImagePullBackOff") {
        EnqueueAfter(uid, opts_.backoff_initial);
      }
    }
    changed = true;
  };

  // A failed liveness / startup probe of a running instance: kill it; the next sync (the
  // exit event) restarts it per the restart policy (upstream computePodActions). Returns
  // true when the instance is being killed.
  int64_t pod_grace = spec.termination_grace_period_seconds;
  auto kill_if_probe_failed = [&](const std::string& name, const v1::ContainerStatus& latest) {
    auto kill = prober_->KillReason(uid, name, latest.id(), pod_grace);
    if (!kill) return false;
    std::string probe = absl::AsciiStrToLower(ProbeTypeName(kill->type));
    Event(pod, "Normal", "Killing",
          absl::StrCat("Container ", name, " failed ", probe, " probe, will be restarted"), name);
    LOG(INFO) << "pod " << pod.Key() << ": container " << name << " failed " << probe
              << " probe, stopping " << latest.id();
    absl::Status r = StopOne(pod, name, latest.id(), kill->grace_seconds, pod_ip);
    if (!r.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": " << r.message();
    }
    changed = true;
    EnqueueAfter(uid, absl::ZeroDuration());
    return true;
  };

  // Once regular containers were created, regular init containers are done for good
  // (upstream isPreviouslyInitialized).
  bool previously_initialized = false;
  for (const api::Container& c : spec.containers) {
    if (!by_name[c.name].empty()) previously_initialized = true;
  }
  // Init containers in order: a regular one runs to completion before the next starts; a
  // sidecar (restartPolicy Always) lets the next start once it is started (running, and its
  // startupProbe succeeded if it has one), and is restarted whenever it exits.
  bool initialized = true;
  for (const api::Container& c : spec.init_containers) {
    const std::string& name = c.name;
    auto& inst = by_name[name];
    const v1::ContainerStatus* latest = inst.empty() ? nullptr : inst[0];
    if (api::IsRestartableInitContainer(c)) {
      if (latest && latest->state() == v1::CONTAINER_RUNNING) {
        if (kill_if_probe_failed(name, *latest)) {
          if (!previously_initialized) initialized = false;
          if (!previously_initialized) break;
          continue;
        }
        if (!prober_->Status(uid, name, latest->id()).started && !previously_initialized) {
          initialized = false;  // wait for its startupProbe
          break;
        }
        continue;
      }
      if (latest && latest->state() == v1::CONTAINER_CREATED && !previously_initialized) {
        initialized = false;
        break;
      }
      start(c, latest);  // first start, or a restart whatever the pod's restartPolicy
      if (!previously_initialized) {
        // Resync to go on with the next container once this one is started (upstream: the
        // PLEG ContainerStarted event).
        EnqueueAfter(uid, absl::ZeroDuration());
        initialized = false;
        break;
      }
      continue;
    }
    if (previously_initialized) continue;
    if (latest && latest->state() == v1::CONTAINER_EXITED && latest->exit_code() == 0) continue;
    initialized = false;
    if (latest && latest->state() == v1::CONTAINER_RUNNING) break;
    if (latest && latest->state() == v1::CONTAINER_EXITED && policy == "Never") {
      failed = true;
      break;
    }
    start(c, latest);
    break;
  }
  // With sidecars, the pod is done once every regular container has exited for good: the
  // sidecars are then stopped (upstream computePodActions kills the pod).
  bool regular_done = initialized && !spec.containers.empty();
  if (initialized) {
    for (const api::Container& c : spec.containers) {
      const std::string& name = c.name;
      auto& inst = by_name[name];
      const v1::ContainerStatus* latest = inst.empty() ? nullptr : inst[0];
      if (latest && latest->state() == v1::CONTAINER_RUNNING) {
        regular_done = false;
        kill_if_probe_failed(name, *latest);
        continue;
      }
      if (latest && latest->state() == v1::CONTAINER_EXITED) {
        bool restart = policy == "Always" || (policy == "OnFailure" && latest->exit_code() != 0);
        if (!restart) continue;
      }
      regular_done = false;
      start(c, latest);
    }
  }

  // Ephemeral containers (kubectl debug, added through the ephemeralcontainers
  // subresource): each started once, never restarted (upstream EphemeralContainersToStart);
  // with targetContainerName in the PID namespace of that container's running instance.
  for (const api::Container& c : spec.ephemeral_containers) {
    const std::string& name = c.name;
    if (!by_name[name].empty()) continue;
    const std::string& target = c.target_container_name;
    std::string target_id;
    if (!target.empty()) {
      const auto& t = by_name[target];
      if (t.empty() || t[0]->state() != v1::CONTAINER_RUNNING) {
        state->waiting[name] = {"CreateContainerConfigError",
                                absl::StrCat("target container \"", target, "\" is not running")};
        continue;
      }
      target_id = t[0]->id();
    }
    auto id =
        StartContainer(state, pod, c, 0, sandbox_id, sandbox_config, pod_ip, *volumes, target_id);
    if (!id.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": ephemeral container " << name << ": "
                   << id.status().message();
      if (state->waiting[name].reason != "ErrImagePull" &&
          state->waiting[name].reason != "ImagePullBackOff") {
        EnqueueAfter(uid, opts_.backoff_initial);
      }
    }
    changed = true;
  }

  // Garbage: keep the two newest instances of each container (current + last state).
  for (const auto& [name, inst] : by_name) {
    for (size_t i = 2; i < inst.size(); ++i) {
      if (inst[i]->state() != v1::CONTAINER_EXITED) continue;
      v1::RemoveContainerRequest rm;
      rm.set_container_id(inst[i]->id());
      (void)runtime_->RemoveContainer(rm);
      changed = true;
    }
  }
  if (changed) {
    auto after = GetRuntimeStatus(uid);
    if (after.ok()) rt = std::move(after);
  }
  // The probe workers follow the newest instance of each container.
  {
    std::map<std::string, ProbedContainer> probed;
    for (const auto& cs : rt->containers) {  // newest first
      if (probed.count(cs.metadata().name())) continue;
      probed[cs.metadata().name()] = {cs.id(), absl::FromUnixNanos(cs.started_at()),
                                      cs.state() == v1::CONTAINER_RUNNING};
    }
    prober_->SyncPod(pod, pod_ip, probed);
  }
  UpdateStatus(uid, state, pod, *rt, false);
  std::string phase = state->last_status.value("phase", "");
  bool has_sidecars = false;
  for (const api::Container& c : spec.init_containers)
    has_sidecars |= api::IsRestartableInitContainer(c);
  if (failed || phase == "Succeeded" || phase == "Failed" || (has_sidecars && regular_done)) {
    // Terminal: stop what is left (the sandbox), keep the exited containers for logs.
    absl::Status k = KillPod(uid, pod, spec.termination_grace_period_seconds, false);
    if (!k.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": stopping terminal pod: " << k.message();
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
    state->terminated = true;
    auto after = GetRuntimeStatus(uid);
    UpdateStatus(uid, state, pod, after.ok() ? *after : *rt, /*terminal=*/true);
    LOG(INFO) << "pod " << pod.Key() << " is " << state->last_status.value("phase", "");
  }
  return false;
}

}  // namespace berth::kubelet
