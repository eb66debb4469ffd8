// Container probes: livenessProbe, readinessProbe and startupProbe of the kubelet role
// (upstream pkg/kubelet/prober: prober_manager.go, worker.go, prober.go and the handlers in
// pkg/probe/{exec,http,tcp,grpc}).
//
// One worker per (pod, container, probe type), a thread that probes every periodSeconds
// while the pod exists. A worker follows the container across restarts (a new container ID
// resets its result to the initial value: readiness Failure, liveness Success, startup
// Unknown). The startup probe gates liveness and readiness until it succeeds, and stops
// probing once it has. Results change only after successThreshold / failureThreshold
// consecutive equal outcomes; a liveness or startup Failure puts the worker on hold until
// the container is replaced. The pod worker reads the results: readiness and startup for the
// container status (ready / started), liveness and startup for killing the container.
//
// Example:
//   DefaultProbeRunner runner(&runtime);
//   Prober prober(&runner, {.on_change = [&](const std::string& uid) { pods.Sync(uid); }});
//   pod worker:  prober.SyncPod(pod, pod_ip, {{"web", {.id = id, .started_at = t, .running =
//   true}}});
//                auto st = prober.Status(uid, "web", id);        // ready / started
//                if (auto k = prober.KillReason(uid, "web", id)) StopContainer(...);
//   pod gone:    prober.RemovePod(uid);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cri/runtime_service.h"
#include "kubelet/api/pod.h"
#include "kubelet/api_client.h"
#include "metrics/registry.h"

namespace berth::kubelet {

// The three probes of a v1.Container.
enum class ProbeType { kLiveness, kReadiness, kStartup };

// "Liveness", "Readiness", "Startup" (as in upstream events and metric labels).
std::string ProbeTypeName(ProbeType type);

// The outcome of one probe run or the current result of a worker (upstream results.Result
// and probe.Result: Unknown is an error running the probe, counted as a failure).
enum class ProbeResult { kSuccess, kFailure, kUnknown };

// The timing fields of a v1.Probe with the API defaults applied (seconds).
struct ProbeTiming {
  int64_t initial_delay_seconds = 0;
  int64_t period_seconds = 10;
  int64_t timeout_seconds = 1;
  int64_t success_threshold = 1;
  int64_t failure_threshold = 3;
  // probe.terminationGracePeriodSeconds (liveness/startup kills), if set.
  std::optional<int64_t> termination_grace_period_seconds;
};

// The timing of `probe` (defaults already applied by api::ParsePod); non-positive values
// get the defaults too.
ProbeTiming ProbeTimingOf(const api::Probe& probe);

// Everything a handler needs for one run.
struct ProbeTarget {
  ProbeType type = ProbeType::kReadiness;
  Json probe;                // the v1.Probe (exec / httpGet / tcpSocket / grpc)
  Json container;            // the v1.Container (named ports)
  std::string pod_ip;        // default host of httpGet / tcpSocket / grpc
  std::string container_id;  // for exec (CRI ExecSync)
  absl::Duration timeout = absl::Seconds(1);
};

// Result and output (the message of the Unhealthy event) of one probe run.
struct ProbeOutcome {
  ProbeResult result = ProbeResult::kUnknown;
  std::string output;
  // A success upstream calls probe.Warning (an HTTP probe that stopped at a redirect to
  // another host): recorded as a ProbeWarning event with `output`.
  bool warning = false;
};

// Runs one probe of a target. Implementations must honour target.timeout and be callable
// from several worker threads at once.
class ProbeRunner {
 public:
  virtual ~ProbeRunner() = default;
  virtual ProbeOutcome Run(const ProbeTarget& target) = 0;
};

// exec: CRI ExecSync of probe.exec.command with timeoutSeconds; exit code 0 is Success, any
// other Failure, a runtime error or timeout Unknown. Output: stdout+stderr.
ProbeOutcome RunExecProbe(cri::RuntimeService* runtime, const ProbeTarget& target);
// httpGet: GET scheme://host:port/path (host default pod IP, port a number or a named
// container port, httpHeaders added; https skips certificate verification) from berth's
// network namespace. Status 200-399 is Success, others Failure, a connection error Failure.
ProbeOutcome RunHttpGetProbe(const ProbeTarget& target);
// tcpSocket: a TCP connect to host:port within the timeout is Success.
ProbeOutcome RunTcpSocketProbe(const ProbeTarget& target);
// grpc: grpc.health.v1.Health/Check{service} on host:port (plaintext); SERVING is Success,
// any other status or an RPC error Failure.
ProbeOutcome RunGrpcProbe(const ProbeTarget& target);

// Resolves v1.Probe port `port` (an integer or the name of one of `container`'s ports).
// Returns -1 when it cannot be resolved.
int ResolveProbePort(const Json& port, const Json& container);

// The handlers above, dispatched on the field set in the probe. Thread-safe.
class DefaultProbeRunner : public ProbeRunner {
 public:
  // `runtime` is not owned and must outlive this object.
  explicit DefaultProbeRunner(cri::RuntimeService* runtime) : runtime_(runtime) {}
  ProbeOutcome Run(const ProbeTarget& target) override;

 private:
  cri::RuntimeService* runtime_;
};

// What the pod worker knows about the newest instance of a container.
struct ProbedContainer {
  std::string id;
  absl::Time started_at = absl::InfinitePast();
  bool running = false;
};

// Configuration of a Prober.
struct ProberOptions {
  // Current time (for initialDelaySeconds). Waits between probes use real time.
  std::function<absl::Time()> clock = absl::Now;
  // false: no worker threads; tests drive the workers with ProbeAllForTest().
  bool start_workers = true;
  // Called (from a worker thread, without locks held) when a result of pod `uid` changed, so
  // that the pod worker syncs the pod. Must not block.
  std::function<void(const std::string& uid)> on_change;
  // Records an Event about `pod` (same contract as PodManagerOptions::record_event).
  std::function<void(const Json& pod, const std::string& type, const std::string& reason,
                     const std::string& message, const std::string& field_path)>
      record_event;
  // When set, prober_probe_total{probe_type,result,container,pod,namespace,pod_uid} is
  // registered and counted here (the kubelet's /metrics/probes). Not owned.
  metrics::Registry* registry = nullptr;
};

// The probe workers of all pods (see the file comment). Thread safety: every public method
// may be called from any thread; callbacks run on worker threads.
class Prober {
 public:
  // `runner` is not owned and must outlive this object.
  Prober(ProbeRunner* runner, ProberOptions options);
  ~Prober();

  // Starts a worker for every probe of `pod`'s containers that has none yet and records the
  // newest instance of each container (by container name; absent = not created yet).
  void SyncPod(const api::Pod& pod, const std::string& pod_ip,
               const std::map<std::string, ProbedContainer>& containers);
  // Stops and joins the workers of pod `uid` and forgets its results.
  void RemovePod(const std::string& uid);
  // Stops and joins every worker. Final: SyncPod does nothing afterwards.
  void Stop();

  // What the container status shows for instance `container_id` of container `name`.
  struct ContainerProbeStatus {
    bool ready = true;    // readiness Success (or no readinessProbe) and started
    bool started = true;  // startup Success (or no startupProbe)
  };
  ContainerProbeStatus Status(const std::string& uid, const std::string& name,
                              const std::string& container_id);

  // Why instance `container_id` of `name` must be killed: its liveness or startup probe has
  // failed. Returns the failed probe type and the grace period to use (the probe's
  // terminationGracePeriodSeconds, else `pod_grace_seconds`).
  struct Kill {
    ProbeType type;
    int64_t grace_seconds;
  };
  std::optional<Kill> KillReason(const std::string& uid, const std::string& name,
                                 const std::string& container_id, int64_t pod_grace_seconds);

  // Number of live workers (threads when start_workers).
  size_t WorkerCount();
  // Runs one probe round of every worker, in the calling thread (start_workers == false).
  void ProbeAllForTest();

 private:
  using Key = std::tuple<std::string, std::string, ProbeType>;  // uid, container, type
  struct Worker {
    Key key;
    Json probe;
    ProbeTiming timing;
    // Guarded by Prober::mu_:
    std::string container_id;  // the instance the result is about
    ProbeResult result = ProbeResult::kUnknown;
    ProbeResult last_outcome = ProbeResult::kUnknown;
    int64_t result_run = 0;
    bool on_hold = false;
    bool stop = false;
    bool trigger = false;  // run now instead of at the end of the period
    std::thread thread;
    metrics::Counter* counters[3] = {nullptr, nullptr, nullptr};  // by ProbeResult
    std::vector<std::string> metric_labels;  // prober_probe_total labels ("" for result)
  };
  struct PodEntry {
    std::shared_ptr<const api::Pod> pod;
    std::string pod_ip;
    std::map<std::string, ProbedContainer> containers;
  };
  static ProbeResult InitialResult(ProbeType type);
  void Loop(Worker* w);
  // One probe round of `w` (upstream worker.doProbe).
  void DoProbe(Worker* w);
  bool StartedLocked(const std::string& uid, const std::string& name, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ProbeRunner* runner_;
  const ProberOptions opts_;
  metrics::CounterFamily* probe_total_ = nullptr;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, PodEntry> pods_ ABSL_GUARDED_BY(mu_);
  std::map<Key, std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace berth::kubelet
