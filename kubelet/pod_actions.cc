#include "kubelet/pod_actions.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

namespace {

// Builds the plan; one instance per ComputePodActions call.
class Planner {
 public:
  Planner(const PodActionsInput& in, PodActions* out) : in_(in), pod_(*in.pod), out_(out) {
    for (const auto& cs : in.runtime->containers) by_name_[cs.metadata().name()].push_back(&cs);
  }

  void Plan() {
    PlanSandbox();
    if (out_->sandbox_lost_terminal) return;
    PlanInitContainers();
    PlanRegularContainers();
    PlanEphemeralContainers();
    PlanGarbage();
  }

 private:
  // The newest instance of container `name`, nullptr when it never ran.
  const v1::ContainerStatus* Latest(const std::string& name) {
    auto& inst = by_name_[name];
    return inst.empty() ? nullptr : inst[0];
  }

  void Resync(absl::Duration after) {
    if (!out_->resync_after || after < *out_->resync_after) out_->resync_after = after;
  }

  void PlanSandbox() {
    const PodRuntimeStatus& rt = *in_.runtime;
    if (!in_.created_sandbox_id.empty()) {
      out_->sandbox_id = in_.created_sandbox_id;
      return;
    }
    if (!rt.sandboxes.empty() && rt.sandboxes[0].state() == v1::SANDBOX_READY) {
      out_->sandbox_id = rt.sandboxes[0].id();
      out_->attempt = rt.sandboxes[0].metadata().attempt();
      return;
    }
    out_->create_sandbox = true;
    for (const auto& sb : rt.sandboxes) {
      out_->attempt = std::max(out_->attempt, sb.metadata().attempt() + 1);
    }
    if (rt.sandboxes.empty() && rt.containers.empty()) return;
    if (pod_.spec.restart_policy == "Never" && !rt.containers.empty()) {
      out_->create_sandbox = false;
      out_->sandbox_lost_terminal = true;
      return;
    }
    out_->kill_pod = true;
  }

  // Container `c` is to start after `latest` (nullptr: a first start), unless its crash-loop
  // back-off has not expired.
  void Start(ContainerToStart::Kind kind, const api::Container& c,
             const v1::ContainerStatus* latest) {
    ContainerToStart s;
    s.kind = kind;
    s.container = &c;
    if (latest != nullptr) {
      s.restart_count = RestartCountOf(*latest) + 1;
      absl::Time finished = absl::FromUnixNanos(latest->finished_at());
      std::optional<RestartBackoff> last;
      if (in_.crash_backoff != nullptr) {
        if (auto b = in_.crash_backoff->find(c.name); b != in_.crash_backoff->end()) {
          last = b->second;
        }
      }
      if (last) {
        if (in_.now - finished > 2 * in_.crash_backoff_max) {
          // A long healthy run since: the back-off starts afresh.
          out_->forget_backoff.push_back(c.name);
          last.reset();
        } else if (in_.now < finished + last->duration) {
          out_->waiting[c.name] = {
              "CrashLoopBackOff",
              absl::StrCat("back-off ", absl::FormatDuration(last->duration),
                           " restarting failed container=", c.name, " pod=", pod_.metadata.name,
                           "_", pod_.metadata.namespace_, "(", pod_.metadata.uid, ")")};
          Resync(finished + last->duration - in_.now);
          return;
        }
      }
      absl::Duration d =
          last ? std::min(last->duration * 2, in_.crash_backoff_max) : in_.backoff_initial;
      s.backoff = RestartBackoff{in_.now + d, d};
      if (latest->state() != v1::CONTAINER_EXITED) s.remove_first = latest->id();
    }
    out_->containers_to_start.push_back(std::move(s));
  }

  // Plans the kill of running instance `latest` of `name` when a liveness or startup probe
  // failed; returns true then.
  bool KillIfProbeFailed(const std::string& name, const v1::ContainerStatus& latest) {
    auto p = in_.probes.find(latest.id());
    if (p == in_.probes.end() || !p->second.failed) return false;
    ContainerToKill k;
    k.id = latest.id();
    k.name = name;
    k.probe = *p->second.failed;
    k.grace_seconds = p->second.kill_grace_seconds;
    k.message =
        absl::StrCat("Container ", name, " failed ", absl::AsciiStrToLower(ProbeTypeName(k.probe)),
                     " probe, will be restarted");
    out_->containers_to_kill.push_back(std::move(k));
    // The exit is seen by the next sync, which restarts the container per its policy.
    Resync(absl::ZeroDuration());
    return true;
  }

  bool Started(const v1::ContainerStatus& cs) const {
    auto p = in_.probes.find(cs.id());
    return p == in_.probes.end() || p->second.started;
  }

  // Init containers in order: a regular one runs to completion before the next starts; a
  // sidecar lets the next start once it is started (running, and its startupProbe
  // succeeded), and is restarted whenever it exits.
  void PlanInitContainers() {
    for (const api::Container& c : pod_.spec.containers) {
      if (!by_name_[c.name].empty()) previously_initialized_ = true;
    }
    const std::string& policy = pod_.spec.restart_policy;
    for (const api::Container& c : pod_.spec.init_containers) {
      const v1::ContainerStatus* latest = Latest(c.name);
      if (api::IsRestartableInitContainer(c)) {
        if (latest && latest->state() == v1::CONTAINER_RUNNING) {
          if (KillIfProbeFailed(c.name, *latest)) {
            if (!previously_initialized_) {
              initialized_ = false;
              break;
            }
            continue;
          }
          if (!Started(*latest) && !previously_initialized_) {
            initialized_ = false;  // wait for its startupProbe
            break;
          }
          continue;
        }
        if (latest && latest->state() == v1::CONTAINER_CREATED && !previously_initialized_) {
          initialized_ = false;
          break;
        }
        Start(ContainerToStart::Kind::kInit, c, latest);  // whatever the pod's restartPolicy
        if (!previously_initialized_) {
          // Go on with the next container once this one is started (upstream: the PLEG
          // ContainerStarted event).
          Resync(absl::ZeroDuration());
          initialized_ = false;
          break;
        }
        continue;
      }
      if (previously_initialized_) continue;
      if (latest && latest->state() == v1::CONTAINER_EXITED && latest->exit_code() == 0) continue;
      initialized_ = false;
      if (latest && latest->state() == v1::CONTAINER_RUNNING) break;
      if (latest && latest->state() == v1::CONTAINER_EXITED && policy == "Never") {
        out_->init_failed = true;
        break;
      }
      Start(ContainerToStart::Kind::kInit, c, latest);
      break;
    }
  }

  void PlanRegularContainers() {
    // With sidecars, the pod is done once every regular container has exited for good.
    bool regular_done = initialized_ && !pod_.spec.containers.empty();
    if (initialized_) {
      const std::string& policy = pod_.spec.restart_policy;
      for (const api::Container& c : pod_.spec.containers) {
        const v1::ContainerStatus* latest = Latest(c.name);
        if (latest && latest->state() == v1::CONTAINER_RUNNING) {
          regular_done = false;
          KillIfProbeFailed(c.name, *latest);
          continue;
        }
        if (latest && latest->state() == v1::CONTAINER_EXITED) {
          bool restart = policy == "Always" || (policy == "OnFailure" && latest->exit_code() != 0);
          if (!restart) continue;
        }
        regular_done = false;
        Start(ContainerToStart::Kind::kRegular, c, latest);
      }
    }
    bool has_sidecars = false;
    for (const api::Container& c : pod_.spec.init_containers) {
      has_sidecars |= api::IsRestartableInitContainer(c);
    }
    out_->only_sidecars_left = has_sidecars && regular_done;
  }

  // Ephemeral containers: each started once, never restarted (upstream
  // EphemeralContainersToStart); with targetContainerName, in the PID namespace of that
  // container's running instance.
  void PlanEphemeralContainers() {
    for (const api::Container& c : pod_.spec.ephemeral_containers) {
      if (!by_name_[c.name].empty()) continue;
      ContainerToStart s;
      s.kind = ContainerToStart::Kind::kEphemeral;
      s.container = &c;
      if (const std::string& target = c.target_container_name; !target.empty()) {
        const v1::ContainerStatus* t = Latest(target);
        if (t == nullptr || t->state() != v1::CONTAINER_RUNNING) {
          out_->waiting[c.name] = {
              "CreateContainerConfigError",
              absl::StrCat("target container \"", target, "\" is not running")};
          continue;
        }
        s.pid_target_id = t->id();
      }
      out_->containers_to_start.push_back(std::move(s));
    }
  }

  // Keeps the two newest instances of each container (current and last state).
  void PlanGarbage() {
    for (const auto& [name, inst] : by_name_) {
      for (size_t i = 2; i < inst.size(); ++i) {
        if (inst[i]->state() == v1::CONTAINER_EXITED)
          out_->containers_to_remove.push_back(inst[i]->id());
      }
    }
  }

  const PodActionsInput& in_;
  const api::Pod& pod_;
  PodActions* out_;
  // Container instances by name, newest first.
  std::map<std::string, std::vector<const v1::ContainerStatus*>> by_name_;
  bool previously_initialized_ = false;
  bool initialized_ = true;
};

}  // namespace

PodActions ComputePodActions(const PodActionsInput& in) {
  PodActions out;
  Planner(in, &out).Plan();
  return out;
}

}  // namespace berth::kubelet
