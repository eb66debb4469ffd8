// Container lifecycle hooks: running a v1.LifecycleHandler (lifecycle.postStart /
// lifecycle.preStop) of a container (upstream pkg/kubelet/lifecycle/handlers.go,
// HandlerRunner.Run). The exec and httpGet handlers are the prober's (kubelet/prober.h,
// through a ProbeRunner, so tests can script them); sleep waits in the calling thread.
//
// Example:
//   LifecycleHandlerRunner hooks(&probe_runner);
//   absl::Status s = hooks.Run(container["lifecycle"]["postStart"], container, id, pod_ip,
//                              absl::Minutes(2));
//   if (!s.ok()) { record FailedPostStartHook, kill the container }
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kubelet/api/pod.h"
#include "kubelet/prober.h"

namespace berth::kubelet {

// Which of a container's lifecycle handlers to run.
enum class LifecycleHook { kPostStart, kPreStop };

// Runs lifecycle handlers. Thread-safe (as the ProbeRunner it uses).
class LifecycleHandlerRunner {
 public:
  // `runner` is not owned and must outlive this object.
  explicit LifecycleHandlerRunner(ProbeRunner* runner) : runner_(runner) {}

  // Runs the `hook` handler of `container` (lifecycle.postStart or .preStop: exactly one of
  // exec, httpGet, sleep) for its running instance `container_id` in a pod with IP `pod_ip`
  // (the httpGet default host), blocking at most about `timeout`:
  //  - exec: CRI ExecSync of exec.command; a non-zero exit code or a runtime error fails,
  //    the message carries the command's output (upstream: "Exec lifecycle hook (...) for
  //    Container ... failed - error: ..., message: ...");
  //  - httpGet: GET scheme://host:port/path; a connection error or a status outside
  //    200-399 fails;
  //  - sleep: waits sleep.seconds (cut at `timeout`); never fails for seconds >= 0.
  // Errors: InvalidArgument for a container without that hook or a handler without a
  // supported action (tcpSocket is deprecated and, as upstream, not run), Unknown with the
  // handler's output otherwise.
  absl::Status Run(const api::Container& container, LifecycleHook hook,
                   const std::string& container_id, const std::string& pod_ip,
                   absl::Duration timeout);

 private:
  ProbeRunner* runner_;
};

}  // namespace berth::kubelet
