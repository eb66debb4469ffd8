// PodManager: the termination paths (upstream kuberuntime killPodWithSyncResult,
// killContainer and the pod worker's terminating sync), split from pod_manager.cc.
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
#include "kubelet/pod_manager.h"
#include "kubelet/pod_manager_internal.h"
#include "kubelet/pod_util.h"
#include "kubelet/static_pods.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

using namespace pod_internal;  // NOLINT(google-build-using-namespace): shared helpers

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

bool PodManager::SyncTerminatingPod(const std::string& uid, PodState* state, const api::Pod& pod,
                                    bool removed) {
  prober_->RemovePod(uid);
  if (state->cleaned_up) {
    // Already killed and removed; the status manager deletes the object.
    if (removed) status_.RemovePod(uid);
    return removed;
  }
  int64_t grace = pod.metadata.deletion_grace_period_seconds.value_or(
      pod.spec.termination_grace_period_seconds);
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

}  // namespace berth::kubelet
