// Table tests of ComputePodActions, in the spirit of upstream's TestComputePodActions,
// ...WithInitContainers, ...WithRestartableInitContainers and
// ...WithInitAndEphemeralContainers: each case is a pod, the runtime's view and the back-off /
// probe state, and the expected plan written as a compact summary.
#include "kubelet/pod_actions.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kubelet/pod_util.h"

namespace berth::kubelet {
namespace {

namespace v1 = cri::v1;

const absl::Time kNow = absl::FromUnixSeconds(1'000'000);

// A pod with regular containers `main` and `helper` (restartPolicy `policy`).
Json BasePod(const std::string& policy = "Always") {
  return {
      {"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u1"}}},
      {"spec",
       {{"restartPolicy", policy},
        {"terminationGracePeriodSeconds", 30},
        {"containers",
         {{{"name", "main"}, {"image", "busybox"}}, {{"name", "helper"}, {"image", "busybox"}}}}}}};
}

Json InitContainer(const std::string& name, bool sidecar = false) {
  Json c = {{"name", name}, {"image", "busybox"}};
  if (sidecar) c["restartPolicy"] = "Always";
  return c;
}

v1::PodSandboxStatus Sandbox(const std::string& id, bool ready, uint32_t attempt) {
  v1::PodSandboxStatus s;
  s.set_id(id);
  s.set_state(ready ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY);
  s.mutable_metadata()->set_attempt(attempt);
  s.mutable_network()->set_ip("10.0.0.5");
  return s;
}

// One container instance: `id`, its container `name`, its state, exit code and restart count;
// it finished at `finished` (exited instances).
v1::ContainerStatus Instance(const std::string& id, const std::string& name,
                             v1::ContainerState state, int exit_code = 0, int restart_count = 0,
                             absl::Time finished = kNow - absl::Seconds(1)) {
  v1::ContainerStatus c;
  c.set_id(id);
  c.mutable_metadata()->set_name(name);
  c.set_state(state);
  c.set_exit_code(exit_code);
  (*c.mutable_annotations())[kRestartCountAnnotation] = std::to_string(restart_count);
  if (state == v1::CONTAINER_EXITED) c.set_finished_at(absl::ToUnixNanos(finished));
  return c;
}

v1::ContainerStatus Running(const std::string& id, const std::string& name) {
  return Instance(id, name, v1::CONTAINER_RUNNING);
}
v1::ContainerStatus Exited(const std::string& id, const std::string& name, int code,
                           int restart_count = 0, absl::Time finished = kNow - absl::Seconds(1)) {
  return Instance(id, name, v1::CONTAINER_EXITED, code, restart_count, finished);
}

// The plan as one line, fields in a fixed order; empty parts are left out.
std::string Summary(const PodActions& a) {
  std::vector<std::string> parts;
  if (a.sandbox_lost_terminal) parts.push_back("sandbox-lost-terminal");
  if (a.create_sandbox) {
    parts.push_back(
        absl::StrCat("create-sandbox attempt=", a.attempt, a.kill_pod ? " kill-pod" : ""));
  }
  std::vector<std::string> kills;
  for (const ContainerToKill& k : a.containers_to_kill) {
    kills.push_back(
        absl::StrCat(k.name, "/", k.id, "(", ProbeTypeName(k.probe), ",", k.grace_seconds, "s)"));
  }
  if (!kills.empty()) parts.push_back("kill " + absl::StrJoin(kills, " "));
  std::vector<std::string> starts;
  for (const ContainerToStart& s : a.containers_to_start) {
    std::string kind = s.kind == ContainerToStart::Kind::kInit        ? "init:"
                       : s.kind == ContainerToStart::Kind::kEphemeral ? "eph:"
                                                                      : "";
    std::string st = absl::StrCat(kind, s.container->name, "#", s.restart_count);
    if (!s.remove_first.empty()) absl::StrAppend(&st, " rm=", s.remove_first);
    if (!s.pid_target_id.empty()) absl::StrAppend(&st, " pid=", s.pid_target_id);
    if (s.backoff) absl::StrAppend(&st, " backoff=", absl::FormatDuration(s.backoff->duration));
    starts.push_back(st);
  }
  if (!starts.empty()) parts.push_back("start " + absl::StrJoin(starts, ", "));
  for (const auto& [name, w] : a.waiting)
    parts.push_back(absl::StrCat("wait ", name, "=", w.reason));
  for (const std::string& name : a.forget_backoff) parts.push_back("forget-backoff " + name);
  if (!a.containers_to_remove.empty()) {
    parts.push_back("remove " + absl::StrJoin(a.containers_to_remove, ","));
  }
  if (a.resync_after) parts.push_back("resync " + absl::FormatDuration(*a.resync_after));
  if (a.init_failed) parts.push_back("init-failed");
  if (a.only_sidecars_left) parts.push_back("only-sidecars-left");
  return absl::StrJoin(parts, "; ");
}

struct Case {
  std::string name;
  // Changes to BasePod().
  std::function<void(Json&)> pod = [](Json&) {};
  std::vector<v1::PodSandboxStatus> sandboxes = {Sandbox("sb1", true, 0)};
  std::vector<v1::ContainerStatus> containers;  // newest first
  std::map<std::string, RestartBackoff> backoff;
  std::map<std::string, ProbeVerdict> probes;
  std::string want;
};

void RunCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json json = BasePod();
    c.pod(json);
    absl::StatusOr<api::Pod> pod = api::ParsePod(json);
    ASSERT_TRUE(pod.ok()) << pod.status();
    PodRuntimeStatus rt{c.sandboxes, c.containers};
    PodActionsInput in;
    in.pod = &*pod;
    in.runtime = &rt;
    in.crash_backoff = &c.backoff;
    in.probes = c.probes;
    in.now = kNow;
    in.backoff_initial = absl::Seconds(10);
    in.crash_backoff_max = absl::Seconds(300);
    EXPECT_EQ(Summary(ComputePodActions(in)), c.want);
  }
}

void SetPolicy(Json& pod, const std::string& policy) { pod["spec"]["restartPolicy"] = policy; }

TEST(ComputePodActionsTest, SandboxAndRegularContainers) {
  const std::vector<Case> cases = {
      {.name = "new pod: a sandbox, then every container",
       .sandboxes = {},
       .want = "create-sandbox attempt=0; start main#0, helper#0"},
      {.name = "everything running: nothing to do",
       .containers = {Running("c2", "helper"), Running("c1", "main")},
       .want = ""},
      {.name = "sandbox died: the pod is killed and a sandbox created with the next attempt",
       .sandboxes = {Sandbox("sb2", false, 1), Sandbox("sb1", false, 0)},
       .containers = {Running("c2", "helper"), Exited("c1", "main", 0)},
       .want = "create-sandbox attempt=2 kill-pod; start main#1 backoff=10s"},
      {.name = "sandbox gone without containers: recreated, nothing to kill",
       .sandboxes = {Sandbox("sb1", false, 0)},
       .want = "create-sandbox attempt=1 kill-pod; start main#0, helper#0"},
      {.name = "Never pod whose sandbox died after its containers ran: terminal",
       .pod = [](Json& p) { SetPolicy(p, "Never"); },
       .sandboxes = {Sandbox("sb1", false, 0)},
       .containers = {Running("c2", "helper"), Running("c1", "main")},
       .want = "sandbox-lost-terminal"},
      {.name = "Never pod whose sandbox died before any container: recreated",
       .pod = [](Json& p) { SetPolicy(p, "Never"); },
       .sandboxes = {Sandbox("sb1", false, 0)},
       .want = "create-sandbox attempt=1 kill-pod; start main#0, helper#0"},
      {.name = "Always: an exited container restarts, whatever its exit code",
       .containers = {Running("c2", "helper"), Exited("c1", "main", 0, 3)},
       .want = "start main#4 backoff=10s"},
      {.name = "OnFailure: exit 0 stays, exit 1 restarts",
       .pod = [](Json& p) { SetPolicy(p, "OnFailure"); },
       .containers = {Exited("c2", "helper", 1), Exited("c1", "main", 0)},
       .want = "start helper#1 backoff=10s"},
      {.name = "Never: exited containers stay",
       .pod = [](Json& p) { SetPolicy(p, "Never"); },
       .containers = {Exited("c2", "helper", 1), Exited("c1", "main", 0)},
       .want = ""},
      {.name = "a created, never started instance is removed before the restart",
       .containers = {Running("c2", "helper"), Instance("c1", "main", v1::CONTAINER_CREATED)},
       .want = "start main#1 rm=c1 backoff=10s"},
      {.name = "old exited instances beyond the two newest are garbage",
       .containers = {Running("c4", "main"), Exited("c3", "main", 1), Exited("c2", "main", 1),
                      Exited("c1", "main", 1), Running("h1", "helper")},
       .want = "remove c2,c1"},
  };
  RunCases(cases);
}

TEST(ComputePodActionsTest, CrashLoopBackOff) {
  const std::vector<Case> cases = {
      {.name = "within the back-off: waiting, resync when it ends",
       .containers = {Running("h1", "helper"), Exited("c1", "main", 1, 2, kNow - absl::Seconds(5))},
       .backoff = {{"main", {kNow + absl::Seconds(15), absl::Seconds(20)}}},
       .want = "wait main=CrashLoopBackOff; resync 15s"},
      {.name = "back-off over: restart, the back-off doubles",
       .containers = {Running("h1", "helper"),
                      Exited("c1", "main", 1, 2, kNow - absl::Seconds(25))},
       .backoff = {{"main", {kNow - absl::Seconds(5), absl::Seconds(20)}}},
       .want = "start main#3 backoff=40s"},
      {.name = "the doubled back-off is capped",
       .containers = {Running("h1", "helper"),
                      Exited("c1", "main", 1, 9, kNow - absl::Seconds(250))},
       .backoff = {{"main", {kNow - absl::Seconds(10), absl::Seconds(240)}}},
       .want = "start main#10 backoff=5m"},
      {.name = "after a long healthy run the back-off is forgotten",
       .containers = {Running("h1", "helper"),
                      Exited("c1", "main", 1, 9, kNow - absl::Seconds(601))},
       .backoff = {{"main", {kNow - absl::Seconds(700), absl::Seconds(300)}}},
       .want = "start main#10 backoff=10s; forget-backoff main"},
  };
  RunCases(cases);
}

TEST(ComputePodActionsTest, ProbeFailures) {
  const std::vector<Case> cases = {
      {.name = "liveness failure kills the running instance, resync at once",
       .containers = {Running("c2", "helper"), Running("c1", "main")},
       .probes = {{"c1", {.failed = ProbeType::kLiveness, .kill_grace_seconds = 5}}},
       .want = "kill main/c1(Liveness,5s); resync 0"},
      {.name = "startup failure kills too",
       .containers = {Running("c2", "helper"), Running("c1", "main")},
       .probes = {{"c2",
                   {.started = false, .failed = ProbeType::kStartup, .kill_grace_seconds = 30}}},
       .want = "kill helper/c2(Startup,30s); resync 0"},
      {.name = "a verdict about an older instance is ignored",
       .containers = {Running("c3", "main"), Exited("c1", "main", 1), Running("c2", "helper")},
       .probes = {{"c1", {.failed = ProbeType::kLiveness}}},
       .want = ""},
  };
  RunCases(cases);
}

TEST(ComputePodActionsTest, InitContainers) {
  auto two_inits = [](const std::string& policy) {
    return [policy](Json& p) {
      SetPolicy(p, policy);
      p["spec"]["initContainers"] = {InitContainer("init1"), InitContainer("init2")};
    };
  };
  const std::vector<Case> cases = {
      {.name = "new pod: the first init container only",
       .pod = two_inits("Always"),
       .sandboxes = {},
       .want = "create-sandbox attempt=0; start init:init1#0"},
      {.name = "first init running: wait",
       .pod = two_inits("Always"),
       .containers = {Running("i1", "init1")},
       .want = ""},
      {.name = "first init done: the second starts",
       .pod = two_inits("Always"),
       .containers = {Exited("i1", "init1", 0)},
       .want = "start init:init2#0"},
      {.name = "all init done: the regular containers start",
       .pod = two_inits("Always"),
       .containers = {Exited("i2", "init2", 0), Exited("i1", "init1", 0)},
       .want = "start main#0, helper#0"},
      {.name = "failed init of an Always pod is restarted",
       .pod = two_inits("Always"),
       .containers = {Exited("i1", "init1", 2)},
       .want = "start init:init1#1 backoff=10s"},
      {.name = "failed init of an OnFailure pod is restarted too",
       .pod = two_inits("OnFailure"),
       .containers = {Exited("i2", "init2", 1), Exited("i1", "init1", 0)},
       .want = "start init:init2#1 backoff=10s"},
      {.name = "failed init of a Never pod fails the pod",
       .pod = two_inits("Never"),
       .containers = {Exited("i1", "init1", 1)},
       .want = "init-failed"},
      {.name = "once a regular container was created, init containers are done for good",
       .pod = two_inits("Always"),
       .containers = {Exited("c1", "main", 1), Running("c2", "helper")},
       .want = "start main#1 backoff=10s"},
      {.name = "init restart within its back-off waits",
       .pod = two_inits("Always"),
       .containers = {Exited("i1", "init1", 1, 1, kNow - absl::Seconds(2))},
       .backoff = {{"init1", {kNow + absl::Seconds(8), absl::Seconds(10)}}},
       .want = "wait init1=CrashLoopBackOff; resync 8s"},
  };
  RunCases(cases);
}

TEST(ComputePodActionsTest, RestartableInitContainers) {
  auto sidecar_then_init = [](const std::string& policy) {
    return [policy](Json& p) {
      SetPolicy(p, policy);
      p["spec"]["initContainers"] = {InitContainer("side", true), InitContainer("init2")};
    };
  };
  const std::vector<Case> cases = {
      {.name = "the sidecar starts first; resync to go on once it runs",
       .pod = sidecar_then_init("Always"),
       .sandboxes = {},
       .want = "create-sandbox attempt=0; start init:side#0; resync 0"},
      {.name = "sidecar created, not running yet: wait",
       .pod = sidecar_then_init("Always"),
       .containers = {Instance("s1", "side", v1::CONTAINER_CREATED)},
       .want = ""},
      {.name = "sidecar running, startup probe pending: wait",
       .pod = sidecar_then_init("Always"),
       .containers = {Running("s1", "side")},
       .probes = {{"s1", {.started = false}}},
       .want = ""},
      {.name = "sidecar started: the next init container",
       .pod = sidecar_then_init("Always"),
       .containers = {Running("s1", "side")},
       .want = "start init:init2#0"},
      {.name = "sidecar started and init done: regular containers",
       .pod = sidecar_then_init("Never"),
       .containers = {Exited("i2", "init2", 0), Running("s1", "side")},
       .want = "start main#0, helper#0"},
      {.name = "a sidecar that exits is restarted alone, even in a Never pod",
       .pod = sidecar_then_init("Never"),
       .containers = {Running("c1", "main"), Running("c2", "helper"), Exited("s1", "side", 0)},
       .want = "start init:side#1 backoff=10s"},
      {.name = "sidecar liveness failure: killed, regular containers untouched",
       .pod = sidecar_then_init("Always"),
       .containers = {Running("c1", "main"), Running("c2", "helper"), Running("s1", "side")},
       .probes = {{"s1", {.failed = ProbeType::kLiveness, .kill_grace_seconds = 30}}},
       .want = "kill side/s1(Liveness,30s); resync 0"},
      {.name = "sidecar probe failure before initialization holds the next init container",
       .pod = sidecar_then_init("Always"),
       .containers = {Running("s1", "side")},
       .probes = {{"s1", {.failed = ProbeType::kStartup, .kill_grace_seconds = 30}}},
       .want = "kill side/s1(Startup,30s); resync 0"},
      {.name = "Never pod: regular containers done, only the sidecar runs: the pod is done",
       .pod = sidecar_then_init("Never"),
       .containers = {Exited("c1", "main", 0), Exited("c2", "helper", 1), Running("s1", "side")},
       .want = "only-sidecars-left"},
      {.name = "Always pod: regular containers restart instead",
       .pod = sidecar_then_init("Always"),
       .containers = {Exited("c1", "main", 0), Running("c2", "helper"), Running("s1", "side")},
       .want = "start main#1 backoff=10s"},
  };
  RunCases(cases);
}

TEST(ComputePodActionsTest, EphemeralContainers) {
  auto debug = [](const std::string& target) {
    return [target](Json& p) {
      Json e = {{"name", "debug"}, {"image", "busybox"}};
      if (!target.empty()) e["targetContainerName"] = target;
      p["spec"]["ephemeralContainers"] = Json::array({e});
    };
  };
  const std::vector<Case> cases = {
      {.name = "started in the running target's PID namespace",
       .pod = debug("main"),
       .containers = {Running("c2", "helper"), Running("c1", "main")},
       .want = "start eph:debug#0 pid=c1"},
      {.name = "without a target",
       .pod = debug(""),
       .containers = {Running("c2", "helper"), Running("c1", "main")},
       .want = "start eph:debug#0"},
      {.name = "target not running: waits with CreateContainerConfigError",
       .pod = debug("main"),
       .containers = {Running("c2", "helper"), Exited("c1", "main", 1)},
       .backoff = {{"main", {kNow + absl::Seconds(5), absl::Seconds(10)}}},
       .want = "wait debug=CreateContainerConfigError; wait main=CrashLoopBackOff; resync 9s"},
      {.name = "never restarted once it ran",
       .pod = debug("main"),
       .containers = {Exited("e1", "debug", 0), Running("c2", "helper"), Running("c1", "main")},
       .want = ""},
  };
  RunCases(cases);
}

}  // namespace
}  // namespace berth::kubelet
