// ComputePodActions: what one sync of a pod must do, decided from the pod, the runtime's
// view of it and the crash-loop back-off state (upstream kuberuntime_manager.go
// computePodActions). Pure: no I/O, no clock read (`now` is an input), no locks; PodManager
// carries the plan out.
//
// Example:
//   PodActionsInput in{.pod = &pod, .runtime = &rt, .crash_backoff = &state.crash_backoff,
//                      .now = clock()};
//   in.probes = ...;  // the prober's verdicts on the running instances
//   PodActions plan = ComputePodActions(in);
//   if (plan.create_sandbox) { RunPodSandbox(plan.attempt) ... }
//   for (const ContainerToKill& k : plan.containers_to_kill) StopContainer(k.id, ...);
//   for (const ContainerToStart& s : plan.containers_to_start) StartContainer(*s.container, ...);
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cri/runtime_service.h"
#include "kubelet/api/pod.h"
#include "kubelet/prober.h"
#include "kubelet/status_manager.h"

namespace berth::kubelet {

// The crash-loop back-off of one container (by name): no restart before `until`; `duration`
// is the last back-off applied (doubled per restart up to the maximum).
struct RestartBackoff {
  absl::Time until;
  absl::Duration duration;
};

// What the prober says about the running instance of a container (by container ID).
struct ProbeVerdict {
  // startupProbe succeeded, or the container has none.
  bool started = true;
  // The liveness or startup probe failed: the instance must be killed (upstream
  // computePodActions' "Container failed liveness/startup probe"), with this grace period.
  std::optional<ProbeType> failed;
  int64_t kill_grace_seconds = 0;
};

// Everything ComputePodActions reads. Pointers are not owned and must outlive the call.
struct PodActionsInput {
  const api::Pod* pod = nullptr;
  // The runtime's view of the pod: sandboxes and container instances, newest first.
  const PodRuntimeStatus* runtime = nullptr;
  // Crash-loop back-off per container name (the pod worker's state); may be null (none).
  const std::map<std::string, RestartBackoff>* crash_backoff = nullptr;
  // Prober verdicts of running instances by container ID; instances not listed are started
  // and healthy.
  std::map<std::string, ProbeVerdict> probes;
  absl::Time now;
  // A sandbox this sync has just created: no sandbox decision is made, containers are
  // planned in it. "" otherwise.
  std::string created_sandbox_id;
  // Crash-loop back-off: the first restart waits `backoff_initial` after the previous one,
  // each further one twice the last, up to `crash_backoff_max`; a back-off is forgotten after
  // the container ran 2 x crash_backoff_max (upstream's backoff GC).
  absl::Duration backoff_initial = absl::Seconds(10);
  absl::Duration crash_backoff_max = absl::Minutes(5);
};

// A container instance to start, in the order given.
struct ContainerToStart {
  enum class Kind { kInit, kRegular, kEphemeral };
  Kind kind = Kind::kRegular;
  // The container in the pod's spec (points into PodActionsInput::pod).
  const api::Container* container = nullptr;
  // The new instance's restart count (CRI attempt): 0 for a first start, else the previous
  // instance's + 1.
  int restart_count = 0;
  // A previous instance that is not exited (created and never started) and must be removed
  // before the new one is created; "" when none.
  std::string remove_first;
  // Ephemeral containers: the running instance of targetContainerName whose PID namespace
  // the new one joins; "" for none.
  std::string pid_target_id;
  // The crash-loop back-off to record for this container once the restart is attempted
  // (restarts only).
  std::optional<RestartBackoff> backoff;
};

// A running container instance to kill because its liveness or startup probe failed.
struct ContainerToKill {
  std::string id;
  std::string name;
  ProbeType probe = ProbeType::kLiveness;
  int64_t grace_seconds = 0;
  // The Killing event's message ("Container web failed liveness probe, will be restarted").
  std::string message;
};

// The plan of one sync (upstream podActions).
struct PodActions {
  // No ready sandbox: create one with this attempt number (one above the highest seen).
  bool create_sandbox = false;
  uint32_t attempt = 0;
  // With create_sandbox: the pod's old sandboxes and containers must be stopped first (with
  // the pod's grace period), as upstream's KillPod before a new sandbox.
  bool kill_pod = false;
  // The sandbox died after containers ran in a restartPolicy Never pod: it is not recreated;
  // the pod is killed (no grace) and terminal.
  bool sandbox_lost_terminal = false;
  // The ready sandbox to start containers in (without create_sandbox).
  std::string sandbox_id;

  // Probe failures to act on, before any start.
  std::vector<ContainerToKill> containers_to_kill;
  // Init containers (the next regular one, or sidecars), then regular containers, then
  // ephemeral containers, in this order.
  std::vector<ContainerToStart> containers_to_start;
  // Containers that wait instead (CrashLoopBackOff; an ephemeral container whose target is
  // not running: CreateContainerConfigError), by name.
  std::map<std::string, ContainerWaiting> waiting;
  // Back-offs to forget (a long healthy run since), by container name.
  std::vector<std::string> forget_backoff;
  // Sync again after this delay (a back-off that expires, a sidecar to see started, a
  // killed instance to restart); nullopt: only on events.
  std::optional<absl::Duration> resync_after;
  // Exited instances beyond the two newest of each container (current and last state).
  std::vector<std::string> containers_to_remove;

  // A regular init container failed and restartPolicy is Never: the pod is Failed.
  bool init_failed = false;
  // The pod has sidecars and every regular container has exited for good: the sidecars are
  // stopped and the pod is terminal (upstream kills the pod).
  bool only_sidecars_left = false;
};

// Decides the plan of one sync of `in.pod` (see PodActions). The pod's restartPolicy
// applies to regular containers and regular init containers; sidecars (init containers with
// restartPolicy Always) are restarted whenever they exit; ephemeral containers are started
// once and never restarted. Once a regular container was created, regular init containers
// are done for good (upstream isPreviouslyInitialized).
PodActions ComputePodActions(const PodActionsInput& in);

}  // namespace berth::kubelet
