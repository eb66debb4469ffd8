#include "kubelet/status_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "kubelet/pod_util.h"
#include "kubelet/server/cri_log.h"

namespace berth::kubelet {

namespace {

constexpr size_t kMaxTerminationMessage = 4096;

const Json* FindByName(const Json& statuses, const std::string& name) {
  for (const auto& s : statuses) {
    if (s.value("name", std::string()) == name) return &s;
  }
  return nullptr;
}

std::string NanosToRfc3339(int64_t ns) { return FormatRfc3339(absl::FromUnixNanos(ns)); }

// The last lines of a container's log, as upstream's readLastStringFromContainerLogs: the
// last 80 records, at most the last 2048 bytes.
std::string LastLogLines(const std::string& path) {
  constexpr size_t kMaxLogMessage = 2048;
  server::LogOptions opts;
  opts.tail_lines = 80;
  std::string out;
  server::LogSink sink;
  sink.write = [&](std::string_view data) {
    out.append(data);
    if (out.size() > 2 * kMaxLogMessage) out.erase(0, out.size() - kMaxLogMessage);
    return true;
  };
  absl::Status s = server::ReadContainerLog(path, opts, sink);
  if (!s.ok()) return absl::StrCat("Error on reading termination message from logs: ", s.message());
  if (out.size() > kMaxLogMessage) out.erase(0, out.size() - kMaxLogMessage);
  return out;
}

// The termination message of an exited container, as upstream's getPodContainerStatuses:
// the runtime's message, then ": " and the file the container wrote at its
// terminationMessagePath (found through the container's mounts); with
// terminationMessagePolicy FallbackToLogsOnError, a failed container that wrote no file gets
// the end of its log instead.
std::string TerminationMessage(const cri::v1::ContainerStatus& cs) {
  std::string msg;
  auto it = cs.annotations().find(kTerminationMessagePathAnnotation);
  if (it != cs.annotations().end()) {
    for (const auto& m : cs.mounts()) {
      if (m.container_path() != it->second) continue;
      if (auto data = ReadFile(m.host_path()); data.ok()) {
        msg = *data;
        if (msg.size() > kMaxTerminationMessage) msg.resize(kMaxTerminationMessage);
      }
      break;
    }
  }
  auto policy = cs.annotations().find(kTerminationMessagePolicyAnnotation);
  if (msg.empty() && policy != cs.annotations().end() &&
      policy->second == "FallbackToLogsOnError" && cs.exit_code() != 0 &&
      cs.reason() != "ContainerCannotRun" && !cs.log_path().empty()) {
    msg = LastLogLines(cs.log_path());
  }
  if (cs.message().empty()) return msg;
  return msg.empty() ? cs.message() : absl::StrCat(cs.message(), ": ", msg);
}

Json TerminatedState(const cri::v1::ContainerStatus& cs) {
  std::string reason = cs.reason();
  if (reason.empty()) reason = cs.exit_code() == 0 ? "Completed" : "Error";
  Json t = {
      {"exitCode", cs.exit_code()},
      {"reason", reason},
      {"startedAt", cs.started_at() > 0 ? Json(NanosToRfc3339(cs.started_at())) : Json(nullptr)},
      {"finishedAt", cs.finished_at() > 0 ? Json(NanosToRfc3339(cs.finished_at())) : Json(nullptr)},
      {"containerID", absl::StrCat("berth://", cs.id())}};
  std::string msg = TerminationMessage(cs);
  if (!msg.empty()) t["message"] = msg;
  return t;
}

// One API ContainerStatus for spec container `c`. `instances` are that container's runtime
// instances, newest first.
Json BuildContainerStatus(const api::Container& c,
                          const std::vector<const cri::v1::ContainerStatus*>& instances,
                          const PodStatusContext& ctx, const std::string& default_waiting) {
  const std::string& name = c.name;
  Json s = {{"name", name},
            {"image", c.image},
            {"imageID", ""},
            {"ready", false},
            {"started", false},
            {"restartCount", 0},
            {"state", Json::object()},
            {"lastState", Json::object()}};
  auto w = ctx.waiting.find(name);
  if (instances.empty()) {
    if (w != ctx.waiting.end()) {
      s["state"] = {{"waiting", {{"reason", w->second.reason}, {"message", w->second.message}}}};
    } else {
      s["state"] = {{"waiting", {{"reason", default_waiting}}}};
    }
    return s;
  }
  const cri::v1::ContainerStatus& latest = *instances[0];
  s["imageID"] = latest.image_ref().empty() ? latest.image_id() : latest.image_ref();
  s["containerID"] = absl::StrCat("berth://", latest.id());
  s["restartCount"] = RestartCountOf(latest);
  const cri::v1::ContainerStatus* previous = instances.size() > 1 ? instances[1] : nullptr;
  switch (latest.state()) {
    case cri::v1::CONTAINER_RUNNING:
      s["state"] = {{"running", {{"startedAt", NanosToRfc3339(latest.started_at())}}}};
      // Readiness and startup probe results (upstream: ready needs started); without
      // probes a running container is ready.
      if (auto p = ctx.probes.find(latest.id()); p != ctx.probes.end()) {
        s["ready"] = p->second.ready;
        s["started"] = p->second.started;
      } else {
        s["ready"] = true;
        s["started"] = true;
      }
      if (previous && previous->state() == cri::v1::CONTAINER_EXITED) {
        s["lastState"] = {{"terminated", TerminatedState(*previous)}};
      }
      break;
    case cri::v1::CONTAINER_EXITED:
      if (w != ctx.waiting.end()) {
        // The container will be restarted (back-off, image pull, ...): waiting, with the
        // exited instance as the last state.
        s["state"] = {{"waiting", {{"reason", w->second.reason}, {"message", w->second.message}}}};
        s["lastState"] = {{"terminated", TerminatedState(latest)}};
      } else {
        s["state"] = {{"terminated", TerminatedState(latest)}};
        if (previous && previous->state() == cri::v1::CONTAINER_EXITED) {
          s["lastState"] = {{"terminated", TerminatedState(*previous)}};
        }
      }
      break;
    case cri::v1::CONTAINER_CREATED:
      s["state"] = {{"waiting", {{"reason", "ContainerCreating"}}}};
      break;
    default:
      s["state"] = {
          {"waiting",
           {{"reason", "ContainerStatusUnknown"},
            {"message", "The container could not be located when the pod was terminated"}}}};
      break;
  }
  if (w != ctx.waiting.end() && latest.state() != cri::v1::CONTAINER_EXITED &&
      latest.state() != cri::v1::CONTAINER_RUNNING) {
    s["state"] = {{"waiting", {{"reason", w->second.reason}, {"message", w->second.message}}}};
  }
  return s;
}

Json Condition(const std::string& type, bool status, const std::string& reason,
               const std::string& message, const Json& old_status, absl::Time now) {
  std::string st = status ? "True" : "False";
  Json c = {{"type", type}, {"status", st}, {"lastProbeTime", nullptr}};
  std::string transition = FormatRfc3339(now);
  for (const auto& oc : old_status.value("conditions", Json::array())) {
    if (oc.value("type", std::string()) == type && oc.value("status", std::string()) == st &&
        oc.contains("lastTransitionTime") && oc["lastTransitionTime"].is_string()) {
      transition = oc["lastTransitionTime"].get<std::string>();
    }
  }
  c["lastTransitionTime"] = transition;
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

}  // namespace

int RestartCountOf(const cri::v1::ContainerStatus& cs) {
  auto it = cs.annotations().find(kRestartCountAnnotation);
  if (it != cs.annotations().end()) {
    try {
      return std::stoi(it->second);
    } catch (...) {
    }
  }
  return static_cast<int>(cs.metadata().attempt());
}

std::string GetPodPhase(const api::Pod& pod, const Json& init_statuses, const Json& statuses,
                        bool pod_is_terminal, bool pod_has_initialized) {
  const std::string& policy = pod.spec.restart_policy;
  int pending_init = 0, failed_init = 0;
  for (const api::Container& c : pod.spec.init_containers) {
    if (api::IsRestartableInitContainer(c)) continue;  // sidecars: counted below
    const Json* s = FindByName(init_statuses, c.name);
    if (!s) {
      ++pending_init;
      continue;
    }
    const Json& state = (*s)["state"];
    if (state.contains("running")) {
      ++pending_init;
    } else if (state.contains("terminated")) {
      if (state["terminated"].value("exitCode", 0) != 0) ++failed_init;
    } else if (state.contains("waiting")) {
      const Json& last = s->value("lastState", Json::object());
      if (last.contains("terminated")) {
        if (last["terminated"].value("exitCode", 0) != 0) ++failed_init;
      } else {
        ++pending_init;
      }
    } else {
      ++pending_init;
    }
  }
  int unknown = 0, running = 0, waiting = 0, stopped = 0, succeeded = 0;
  // Sidecars count as running (pending until started); once exited they do not count.
  int pending_sidecars = 0;
  for (const api::Container& c : pod.spec.init_containers) {
    if (!api::IsRestartableInitContainer(c)) continue;
    const Json* s = FindByName(init_statuses, c.name);
    if (!s) {
      ++unknown;
      continue;
    }
    const Json& state = (*s)["state"];
    if (state.contains("running")) {
      if (!s->value("started", false)) ++pending_sidecars;
      ++running;
    } else if (state.contains("terminated")) {
    } else if (state.contains("waiting")) {
      if (!s->value("lastState", Json::object()).contains("terminated")) {
        ++pending_sidecars;
        ++waiting;
      }
    } else {
      ++pending_sidecars;
      ++unknown;
    }
  }
  if (pod_has_initialized) pending_sidecars = 0;
  pending_init += pending_sidecars;
  for (const api::Container& c : pod.spec.containers) {
    const Json* s = FindByName(statuses, c.name);
    if (!s) {
      ++unknown;
      continue;
    }
    const Json& state = (*s)["state"];
    if (state.contains("running")) {
      ++running;
    } else if (state.contains("terminated")) {
      ++stopped;
      if (state["terminated"].value("exitCode", 0) == 0) ++succeeded;
    } else if (state.contains("waiting")) {
      if (s->value("lastState", Json::object()).contains("terminated")) {
        ++stopped;
      } else {
        ++waiting;
      }
    } else {
      ++unknown;
    }
  }
  if (failed_init > 0 && policy == "Never") return "Failed";
  if (pending_init > 0 || waiting > 0) return "Pending";
  if (running > 0 && unknown == 0) return "Running";
  if (running == 0 && stopped > 0 && unknown == 0) {
    if (pod_is_terminal) return stopped == succeeded ? "Succeeded" : "Failed";
    if (policy == "Always") return "Running";
    if (stopped == succeeded) return "Succeeded";
    if (policy == "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

Json ComputePodStatus(const api::Pod& pod, const PodRuntimeStatus& runtime, const Json& old_status,
                      const PodStatusContext& ctx) {
  Json status = Json::object();
  // Container statuses, from the runtime instances grouped by container name.
  std::map<std::string, std::vector<const cri::v1::ContainerStatus*>> by_name;
  for (const auto& cs : runtime.containers) by_name[cs.metadata().name()].push_back(&cs);
  // Initialized once every regular init container completed and every sidecar started;
  // it stays so once regular containers were created (upstream podHasInitialized).
  bool has_initialized = false;
  for (const api::Container& c : pod.spec.containers) {
    if (!by_name[c.name].empty()) has_initialized = true;
  }
  for (const auto& oc : old_status.value("conditions", Json::array())) {
    if (oc.value("type", std::string()) == "Initialized" &&
        oc.value("status", std::string()) == "True") {
      has_initialized = true;
    }
  }
  Json init_statuses = Json::array();
  std::vector<std::string> incomplete_init;
  std::vector<std::string> unready;
  for (const api::Container& c : pod.spec.init_containers) {
    const std::string& name = c.name;
    Json s = BuildContainerStatus(c, by_name[name], ctx, "PodInitializing");
    const Json& st = s["state"];
    if (api::IsRestartableInitContainer(c)) {
      // A sidecar: started (startupProbe passed or none) completes it; its readiness
      // counts toward the pod's.
      if (!(st.contains("running") && s.value("started", false))) incomplete_init.push_back(name);
      if (!s.value("ready", false)) unready.push_back(name);
    } else {
      // Upstream prober manager UpdatePodStatus: a completed init container is ready.
      if (st.contains("terminated") && st["terminated"].value("exitCode", -1) == 0) {
        s["ready"] = true;
      } else {
        incomplete_init.push_back(name);
      }
    }
    init_statuses.push_back(std::move(s));
  }
  bool initialized = incomplete_init.empty() || has_initialized;
  Json statuses = Json::array();
  for (const api::Container& c : pod.spec.containers) {
    const std::string& name = c.name;
    Json s = BuildContainerStatus(c, by_name[name], ctx,
                                  initialized ? "ContainerCreating" : "PodInitializing");
    if (!s.value("ready", false)) unready.push_back(name);
    statuses.push_back(std::move(s));
  }
  std::string phase =
      GetPodPhase(pod, init_statuses, statuses, ctx.pod_is_terminal, has_initialized);
  status["phase"] = phase;

  // Conditions, in upstream's order.
  bool sandbox_ready =
      !runtime.sandboxes.empty() && runtime.sandboxes[0].state() == cri::v1::SANDBOX_READY;
  Json conditions = Json::array();
  conditions.push_back(
      Condition("PodReadyToStartContainers", sandbox_ready, "", "", old_status, ctx.now));
  conditions.push_back(
      Condition("Initialized", initialized, initialized ? "" : "ContainersNotInitialized",
                initialized ? ""
                            : absl::StrCat("containers with incomplete status: [",
                                           absl::StrJoin(incomplete_init, " "), "]"),
                old_status, ctx.now));
  bool containers_ready = unready.empty() && phase != "Succeeded" && phase != "Failed";
  std::string ready_reason, ready_message;
  if (phase == "Succeeded") {
    ready_reason = "PodCompleted";
  } else if (!containers_ready) {
    ready_reason = "ContainersNotReady";
    ready_message =
        absl::StrCat("containers with unready status: [", absl::StrJoin(unready, " "), "]");
  }
  // Readiness gates (upstream GeneratePodReadyCondition): with ready containers, the pod is
  // Ready only when each gate's condition, set on the object by someone else, is True.
  bool pod_ready = containers_ready;
  std::string gate_reason, gate_message;
  if (containers_ready) {
    std::vector<std::string> unready_gates;
    for (const std::string& type : pod.spec.readiness_gates) {
      const api::PodCondition* found = nullptr;
      for (const api::PodCondition& c : pod.status.conditions) {
        if (c.type == type) found = &c;
      }
      if (found == nullptr) {
        unready_gates.push_back(absl::StrCat("corresponding condition of pod readiness gate \"",
                                             type, "\" does not exist."));
      } else if (found->status != "True") {
        unready_gates.push_back(absl::StrCat("the status of pod readiness gate \"", type,
                                             "\" is not \"True\", but ", found->status));
      }
    }
    if (!unready_gates.empty()) {
      pod_ready = false;
      gate_reason = "ReadinessGatesNotReady";
      gate_message = absl::StrJoin(unready_gates, ", ");
    }
  }
  conditions.push_back(Condition(
      "Ready", pod_ready, pod_ready || !containers_ready ? ready_reason : gate_reason,
      pod_ready || !containers_ready ? ready_message : gate_message, old_status, ctx.now));
  conditions.push_back(Condition("ContainersReady", containers_ready, ready_reason, ready_message,
                                 old_status, ctx.now));
  for (const auto& oc : old_status.value("conditions", Json::array())) {
    if (oc.value("type", std::string()) == "PodScheduled") conditions.push_back(oc);
  }
  status["conditions"] = conditions;

  if (!ctx.node_ip.empty()) {
    status["hostIP"] = ctx.node_ip;
    status["hostIPs"] = Json::array({{{"ip", ctx.node_ip}}});
  }
  // Pod IPs: from the newest sandbox; host-network pods use the node's; kept once known.
  Json pod_ips = Json::array();
  const bool host_network = pod.spec.host_network;
  if (host_network) {
    if (!ctx.node_ip.empty()) pod_ips.push_back({{"ip", ctx.node_ip}});
  } else if (!runtime.sandboxes.empty() && !runtime.sandboxes[0].network().ip().empty()) {
    const auto& net = runtime.sandboxes[0].network();
    pod_ips.push_back({{"ip", net.ip()}});
    for (const auto& ip : net.additional_ips()) pod_ips.push_back({{"ip", ip.ip()}});
  } else if (old_status.contains("podIPs") && old_status["podIPs"].is_array()) {
    pod_ips = old_status["podIPs"];
  }
  if (!pod_ips.empty()) {
    status["podIP"] = pod_ips[0].value("ip", std::string());
    status["podIPs"] = pod_ips;
  }
  std::string start = old_status.value("startTime", std::string());
  status["startTime"] = start.empty() ? FormatRfc3339(ctx.now) : start;
  status["qosClass"] = PodQosClass(pod);
  if (!init_statuses.empty()) status["initContainerStatuses"] = init_statuses;
  status["containerStatuses"] = statuses;
  // Ephemeral containers: reported, never ready, not part of the phase or conditions.
  Json ephemeral = Json::array();
  for (const api::Container& c : pod.spec.ephemeral_containers) {
    Json s = BuildContainerStatus(c, by_name[c.name], ctx, "ContainerCreating");
    s["ready"] = false;
    ephemeral.push_back(std::move(s));
  }
  if (!ephemeral.empty()) status["ephemeralContainerStatuses"] = ephemeral;
  return status;
}

// ---------------------------------------------------------------------------------------
// StatusManager

StatusManager::StatusManager(ApiClient* api, const metrics::KubeletMetrics* km, int writers)
    : api_(api), km_(km), writers_count_(std::max(1, writers)) {}

StatusManager::~StatusManager() { Stop(); }

void StatusManager::Start() {
  absl::MutexLock l(&mu_);
  if (!writers_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < writers_count_; ++i) writers_.emplace_back([this] { Run(); });
}

void StatusManager::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  for (auto& w : writers_) w.join();
  writers_.clear();
}

void StatusManager::SetPodStatus(const api::Pod& pod, const Json& status) {
  const std::string& uid = pod.metadata.uid;
  absl::MutexLock l(&mu_);
  Entry& e = pods_[uid];
  e.ns = pod.metadata.namespace_;
  e.name = pod.metadata.name;
  if (e.status == status && (e.written == status || dirty_.count(uid) || e.retry_pending)) return;
  if (e.status == e.written || !dirty_.count(uid)) e.changed_at = std::chrono::steady_clock::now();
  e.status = status;
  dirty_.insert(uid);
  cv_.Signal();
}

void StatusManager::MarkForDeletion(const std::string& uid) {
  absl::MutexLock l(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  it->second.delete_requested = true;
  dirty_.insert(uid);
  cv_.Signal();
}

void StatusManager::RemovePod(const std::string& uid) {
  absl::MutexLock l(&mu_);
  pods_.erase(uid);
  dirty_.erase(uid);
}

void StatusManager::SetMirrorUidSource(
    std::function<std::optional<std::string>(const std::string&)> fn) {
  mirror_uid_of_ = std::move(fn);
}

void StatusManager::MirrorPodChanged(const std::string& uid) {
  absl::MutexLock l(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  it->second.written = Json();
  dirty_.insert(uid);
  cv_.Signal();
}

std::optional<Json> StatusManager::GetPodStatus(const std::string& uid) {
  absl::MutexLock l(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return std::nullopt;
  return it->second.status;
}

void StatusManager::Run() {
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    absl::Time now = absl::Now();
    while (!retries_.empty() && retries_.begin()->first <= now) {
      auto p = pods_.find(retries_.begin()->second);
      if (p != pods_.end()) {
        p->second.retry_pending = false;
        dirty_.insert(p->first);
      }
      retries_.erase(retries_.begin());
    }
    // The first dirty pod no other writer is writing.
    auto next = dirty_.begin();
    while (next != dirty_.end() && in_flight_.count(*next)) ++next;
    if (next == dirty_.end()) {
      if (retries_.empty()) {
        cv_.Wait(&mu_);
      } else {
        cv_.WaitWithDeadline(&mu_, retries_.begin()->first);
      }
      continue;
    }
    std::string uid = *next;
    dirty_.erase(next);
    in_flight_.insert(uid);
    mu_.Unlock();
    SyncOne(uid);
    mu_.Lock();
    in_flight_.erase(uid);
    if (dirty_.count(uid)) cv_.SignalAll();  // changed while written: any writer may take it
  }
}

void StatusManager::SyncOne(const std::string& uid) {
  Entry e;
  {
    absl::MutexLock l(&mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end()) return;
    e = it->second;
  }
  std::string path = absl::StrCat("/api/v1/namespaces/", e.ns, "/pods/", e.name);
  // A static pod's status goes to its mirror pod (upstream syncPod's TranslatePodUID).
  std::optional<std::string> mirror_uid = mirror_uid_of_ ? mirror_uid_of_(uid) : std::nullopt;
  if (mirror_uid && mirror_uid->empty()) return;  // no mirror pod yet: MirrorPodChanged
  const std::string object_uid = mirror_uid.value_or(uid);
  auto retry = [&](const absl::Status& s) {
    LOG(WARNING) << "pod " << e.ns << "/" << e.name << ": " << s.message() << "; retrying";
    absl::MutexLock l(&mu_);
    auto p = pods_.find(uid);
    if (p == pods_.end() || p->second.retry_pending) return;
    p->second.retry_pending = true;
    retries_.emplace(absl::Now() + absl::Seconds(1), uid);
    cv_.Signal();
  };
  if (e.status != e.written) {
    Json patch = {{"metadata", {{"uid", object_uid}}}, {"status", e.status}};
    // podIPs/hostIPs merge by "ip" in a strategic merge patch: a new sandbox's IP would be
    // added next to the old one (and refused: one IP per family). Replace them instead, as
    // the kubelet's two-way patch does by deleting the old entries.
    for (const char* list : {"podIPs", "hostIPs"}) {
      if (patch["status"].contains(list)) patch["status"][list].push_back({{"$patch", "replace"}});
    }
    auto r = api_->Patch(path + "/status", patch, PatchType::kStrategicMerge);
    if (!r.ok()) {
      if (absl::IsNotFound(r.status()) || absl::IsAborted(r.status()) ||
          absl::IsFailedPrecondition(r.status())) {
        // The object is gone, or the name now belongs to another pod (UID precondition).
        LOG(INFO) << "pod " << e.ns << "/" << e.name
                  << ": status not written: " << r.status().message();
        absl::MutexLock l(&mu_);
        if (mirror_uid) {
          // The mirror pod went: its successor gets the status (MirrorPodChanged).
          if (auto it = pods_.find(uid); it != pods_.end()) it->second.written = Json();
        } else {
          pods_.erase(uid);
        }
        return;
      }
      retry(Annotate(r.status(), "patch status"));
      return;
    }
    absl::MutexLock l(&mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end()) return;
    it->second.written = e.status;
    if (km_ != nullptr) {
      metrics::ObservePhase(km_, metrics::kPhaseStatusWrite, e.changed_at);
    }
    if (it->second.status != e.status) return;  // changed meanwhile: already dirty again
  }
  if (e.delete_requested && !mirror_uid) {
    Json options = {{"kind", "DeleteOptions"},
                    {"apiVersion", "v1"},
                    {"gracePeriodSeconds", 0},
                    {"preconditions", {{"uid", uid}}}};
    absl::Status s = api_->Delete(path, options);
    if (!s.ok() && !absl::IsNotFound(s) && !absl::IsAborted(s) && !absl::IsFailedPrecondition(s)) {
      retry(Annotate(s, "delete pod"));
      return;
    }
    LOG(INFO) << "pod " << e.ns << "/" << e.name << " deleted from the API server";
    absl::MutexLock l(&mu_);
    pods_.erase(uid);
  }
}

}  // namespace berth::kubelet
