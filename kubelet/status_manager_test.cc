#include "kubelet/status_manager.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "base/file.h"
#include "kubelet/pod_util.h"
#include "kubelet/testing/fake_api_client.h"

namespace berth::kubelet {
namespace {

using testing::FakeApiClient;

// The typed pod of `j`, as the pod manager parses it.
api::Pod Typed(const Json& j) {
  absl::StatusOr<api::Pod> p = api::ParsePod(j);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : api::Pod{};
}

Json PodWith(const std::string& policy) {
  return Json::parse(
      R"({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
    "spec": {"restartPolicy": ")" +
      policy + R"(", "containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]}})");
}
Json Running(const std::string& name) {
  return {{"name", name}, {"state", {{"running", {{"startedAt", "2024-01-01T00:00:00Z"}}}}}};
}
Json Terminated(const std::string& name, int code) {
  return {{"name", name}, {"state", {{"terminated", {{"exitCode", code}}}}}};
}
Json Waiting(const std::string& name, bool restarted) {
  Json s = {{"name", name}, {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}}};
  if (restarted) s["lastState"] = {{"terminated", {{"exitCode", 1}}}};
  return s;
}

TEST(GetPodPhaseTest, FollowsUpstreamRules) {
  Json none = Json::array();
  EXPECT_EQ(
      GetPodPhase(Typed(PodWith("Always")), none, Json::array({Running("a"), Running("b")}), false),
      "Running");
  EXPECT_EQ(GetPodPhase(Typed(PodWith("Always")), none, Json::array({Running("a")}), false),
            "Pending");  // b unknown
  EXPECT_EQ(GetPodPhase(Typed(PodWith("Never")), none,
                        Json::array({Terminated("a", 0), Terminated("b", 0)}), false),
            "Succeeded");
  EXPECT_EQ(GetPodPhase(Typed(PodWith("Never")), none,
                        Json::array({Terminated("a", 0), Terminated("b", 3)}), false),
            "Failed");
  EXPECT_EQ(GetPodPhase(Typed(PodWith("OnFailure")), none,
                        Json::array({Terminated("a", 0), Terminated("b", 3)}), false),
            "Running");
  EXPECT_EQ(GetPodPhase(Typed(PodWith("Always")), none,
                        Json::array({Terminated("a", 0), Terminated("b", 0)}), false),
            "Running");
  EXPECT_EQ(GetPodPhase(Typed(PodWith("Always")), none,
                        Json::array({Terminated("a", 0), Terminated("b", 0)}), true),
            "Succeeded");
  EXPECT_EQ(GetPodPhase(Typed(PodWith("Always")), none,
                        Json::array({Waiting("a", true), Running("b")}), false),
            "Running");
  EXPECT_EQ(GetPodPhase(Typed(PodWith("Always")), none,
                        Json::array({Waiting("a", false), Running("b")}), false),
            "Pending");
  Json with_init = PodWith("Never");
  with_init["spec"]["initContainers"] = Json::array({{{"name", "init"}, {"image", "i"}}});
  EXPECT_EQ(
      GetPodPhase(Typed(with_init), Json::array({Terminated("init", 1)}), Json::array(), false),
      "Failed");
  EXPECT_EQ(GetPodPhase(Typed(with_init), Json::array({Running("init")}), Json::array(), false),
            "Pending");

  // A sidecar (restartable init container): pending until started, then counted as a
  // running container; an exited one is ignored.
  Json with_sidecar = PodWith("Never");
  with_sidecar["spec"]["initContainers"] =
      Json::array({{{"name", "side"}, {"image", "i"}, {"restartPolicy", "Always"}}});
  Json side = Running("side");
  side["started"] = false;
  EXPECT_EQ(GetPodPhase(Typed(with_sidecar), Json::array({side}), Json::array(), false), "Pending");
  side["started"] = true;
  EXPECT_EQ(GetPodPhase(Typed(with_sidecar), Json::array({side}),
                        Json::array({Terminated("a", 0), Terminated("b", 0)}), false),
            "Running");
  EXPECT_EQ(GetPodPhase(Typed(with_sidecar), Json::array({Terminated("side", 137)}),
                        Json::array({Terminated("a", 0), Terminated("b", 0)}), true),
            "Succeeded");
  Json restarting = Waiting("side", false);
  EXPECT_EQ(GetPodPhase(Typed(with_sidecar), Json::array({restarting}),
                        Json::array({Running("a"), Running("b")}), false,
                        /*pod_has_initialized=*/true),
            "Pending");  // waiting without a last state counts as waiting
  EXPECT_EQ(
      GetPodPhase(Typed(with_sidecar), Json::array({Waiting("side", true)}),
                  Json::array({Running("a"), Running("b")}), false, /*pod_has_initialized=*/true),
      "Running");
}

TEST(ComputePodStatusTest, StableForUnchangedInputsAndKeepsTransitionTimes) {
  Json pod = PodWith("Always");
  pod["status"] = Json::parse(R"({"conditions": [{"type": "PodScheduled", "status": "True",
                                  "lastTransitionTime": "2023-01-01T00:00:00Z"}]})");
  PodRuntimeStatus rt;
  runtime::v1::PodSandboxStatus sb;
  sb.set_id("sb1");
  sb.set_state(runtime::v1::SANDBOX_READY);
  sb.mutable_network()->set_ip("10.1.2.3");
  rt.sandboxes.push_back(sb);
  for (const char* name : {"a", "b"}) {
    runtime::v1::ContainerStatus cs;
    cs.set_id(std::string("c-") + name);
    cs.mutable_metadata()->set_name(name);
    cs.set_state(runtime::v1::CONTAINER_RUNNING);
    cs.set_started_at(1704067200LL * 1000000000LL);
    cs.set_image_ref("sha256:abc");
    rt.containers.push_back(cs);
  }
  PodStatusContext ctx;
  ctx.node_ip = "192.0.2.1";
  ctx.now = absl::FromUnixSeconds(1704067300);
  Json s1 = ComputePodStatus(Typed(pod), rt, pod["status"], ctx);
  EXPECT_EQ(s1["phase"], "Running");
  EXPECT_EQ(s1["podIP"], "10.1.2.3");
  EXPECT_EQ(s1["podIPs"][0]["ip"], "10.1.2.3");
  EXPECT_EQ(s1["hostIPs"][0]["ip"], "192.0.2.1");
  EXPECT_EQ(s1["containerStatuses"][1]["containerID"], "berth://c-b");
  EXPECT_EQ(s1["containerStatuses"][0]["imageID"], "sha256:abc");
  EXPECT_EQ(s1["containerStatuses"][0]["state"]["running"]["startedAt"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(s1["startTime"], "2024-01-01T00:01:40Z");
  bool scheduled = false;
  for (const auto& c : s1["conditions"]) {
    if (c["type"] == "PodScheduled") {
      scheduled = true;
      EXPECT_EQ(c["lastTransitionTime"], "2023-01-01T00:00:00Z");
    }
  }
  EXPECT_TRUE(scheduled);
  ctx.now += absl::Seconds(30);
  Json s2 = ComputePodStatus(Typed(pod), rt, s1, ctx);
  EXPECT_EQ(s1, s2);  // nothing changed: identical status, so no write
}

// Upstream's termination message: the file at terminationMessagePath; with
// FallbackToLogsOnError and no file content, the end of the log of a failed container only.
TEST(ComputePodStatusTest, TerminationMessageFromFileOrFallbackToLogs) {
  char tmpl[] = "/tmp/berth-termmsg-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_TRUE(WriteFileAtomic(dir + "/a.log",
                              "2024-01-01T00:00:00.000000000Z stdout F first\n"
                              "2024-01-01T00:00:01.000000000Z stderr P par\n"
                              "2024-01-01T00:00:01.000000000Z stderr F tial\n")
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/empty", "").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/msg", "from file").ok());
  auto exited = [&](int code, const std::string& policy, const std::string& msg_file) {
    Json pod = PodWith("Never");
    PodRuntimeStatus rt;
    runtime::v1::ContainerStatus cs;
    cs.set_id("c-a");
    cs.mutable_metadata()->set_name("a");
    cs.set_state(runtime::v1::CONTAINER_EXITED);
    cs.set_exit_code(code);
    cs.set_log_path(dir + "/a.log");
    (*cs.mutable_annotations())[kTerminationMessagePathAnnotation] = "/dev/termination-log";
    (*cs.mutable_annotations())[kTerminationMessagePolicyAnnotation] = policy;
    auto* m = cs.add_mounts();
    m->set_container_path("/dev/termination-log");
    m->set_host_path(dir + "/" + msg_file);
    rt.containers.push_back(cs);
    PodStatusContext ctx;
    ctx.now = absl::FromUnixSeconds(1704067300);
    Json s = ComputePodStatus(Typed(pod), rt, Json::object(), ctx);
    return s["containerStatuses"][0]["state"]["terminated"].value("message", std::string("<none>"));
  };
  EXPECT_EQ(exited(1, "FallbackToLogsOnError", "empty"), "first\npartial\n");
  EXPECT_EQ(exited(1, "FallbackToLogsOnError", "msg"), "from file");
  EXPECT_EQ(exited(0, "FallbackToLogsOnError", "empty"), "<none>");  // succeeded: no fallback
  EXPECT_EQ(exited(1, "File", "empty"), "<none>");
  EXPECT_EQ(exited(0, "File", "msg"), "from file");
  std::filesystem::remove_all(dir);
}

// Readiness gates: Ready needs ready containers and every gate's condition True.
TEST(ComputePodStatusTest, ReadinessGates) {
  Json pod = PodWith("Always");
  pod["spec"]["readinessGates"] =
      Json::parse(R"([{"conditionType": "k8s.io/g1"}, {"conditionType": "k8s.io/g2"}])");
  PodRuntimeStatus rt;
  runtime::v1::PodSandboxStatus sb;
  sb.set_id("sb1");
  sb.set_state(runtime::v1::SANDBOX_READY);
  rt.sandboxes.push_back(sb);
  for (const char* name : {"a", "b"}) {
    runtime::v1::ContainerStatus cs;
    cs.set_id(std::string("c-") + name);
    cs.mutable_metadata()->set_name(name);
    cs.set_state(runtime::v1::CONTAINER_RUNNING);
    rt.containers.push_back(cs);
  }
  PodStatusContext ctx;
  ctx.now = absl::FromUnixSeconds(1704067300);
  auto ready = [&](const Json& status) {
    for (const auto& c : status["conditions"]) {
      if (c["type"] == "Ready") return c;
    }
    return Json();
  };
  Json r = ready(ComputePodStatus(Typed(pod), rt, Json::object(), ctx));
  EXPECT_EQ(r["status"], "False");
  EXPECT_EQ(r["reason"], "ReadinessGatesNotReady");
  EXPECT_EQ(r["message"],
            "corresponding condition of pod readiness gate \"k8s.io/g1\" does not exist., "
            "corresponding condition of pod readiness gate \"k8s.io/g2\" does not exist.");
  pod["status"]["conditions"] = Json::parse(R"([{"type": "k8s.io/g1", "status": "True"},
                                               {"type": "k8s.io/g2", "status": "False"}])");
  r = ready(ComputePodStatus(Typed(pod), rt, Json::object(), ctx));
  EXPECT_EQ(r["status"], "False");
  EXPECT_EQ(r["message"],
            "the status of pod readiness gate \"k8s.io/g2\" is not \"True\", but False");
  pod["status"]["conditions"][1]["status"] = "True";
  Json all = ComputePodStatus(Typed(pod), rt, Json::object(), ctx);
  EXPECT_EQ(ready(all)["status"], "True");
  for (const auto& c : all["conditions"]) {
    if (c["type"] == "ContainersReady") {
      EXPECT_EQ(c["status"], "True");
    }
  }
}

TEST(ComputePodStatusTest, DualStackPodIPsFromSandboxStatus) {
  Json pod = PodWith("Always");
  PodRuntimeStatus rt;
  runtime::v1::PodSandboxStatus sb;
  sb.set_id("sb1");
  sb.set_state(runtime::v1::SANDBOX_READY);
  sb.mutable_network()->set_ip("10.244.1.5");
  sb.mutable_network()->add_additional_ips()->set_ip("fd00:10:244:1::5");
  rt.sandboxes.push_back(sb);
  PodStatusContext ctx;
  ctx.node_ip = "192.0.2.1";
  ctx.now = absl::FromUnixSeconds(1704067300);
  Json s = ComputePodStatus(Typed(pod), rt, Json::object(), ctx);
  EXPECT_EQ(s["podIP"], "10.244.1.5");
  EXPECT_EQ(s["podIPs"], Json::parse(R"([{"ip":"10.244.1.5"},{"ip":"fd00:10:244:1::5"}])"));
  // A host-network pod reports the node's address, whatever its sandbox says.
  pod["spec"]["hostNetwork"] = true;
  s = ComputePodStatus(Typed(pod), rt, Json::object(), ctx);
  EXPECT_EQ(s["podIPs"], Json::parse(R"([{"ip":"192.0.2.1"}])"));
}

TEST(StatusManagerTest, CoalescesAndSkipsUnchanged) {
  FakeApiClient api;
  StatusManager sm(&api);
  Json pod = PodWith("Always");
  Json st1 = {{"phase", "Pending"}};
  Json st2 = {{"phase", "Running"}};
  // Two updates before the writer runs produce one PATCH with the latest status.
  sm.SetPodStatus(Typed(pod), st1);
  sm.SetPodStatus(Typed(pod), st2);
  sm.Start();
  auto r = api.WaitForStatus([](const Json& s) { return s["phase"] == "Running"; });
  ASSERT_TRUE(r.has_value());
  sm.SetPodStatus(Typed(pod), st2);  // unchanged: no write
  sm.MarkForDeletion("u1");
  ASSERT_TRUE(
      api.WaitFor([](const FakeApiClient::Request& r) { return r.verb == "DELETE"; }).has_value());
  sm.Stop();
  int patches = 0;
  for (const auto& req : api.Requests()) {
    if (req.verb == "PATCH") {
      ++patches;
      EXPECT_EQ(req.path, "/api/v1/namespaces/ns/pods/p/status");
      EXPECT_EQ(req.body["metadata"]["uid"], "u1");
    }
  }
  EXPECT_EQ(patches, 1);
}

TEST(StatusManagerTest, FailedWriteIsRetriedOnceASecondNotOnEveryUpdate) {
  FakeApiClient api;
  api.SetPatchError(absl::InvalidArgumentError("422 Invalid"));
  StatusManager sm(&api);
  const api::Pod pod = Typed(PodWith("Always"));
  Json st = {{"phase", "Running"}};
  sm.Start();
  sm.SetPodStatus(pod, st);
  ASSERT_TRUE(
      api.WaitFor([](const FakeApiClient::Request& r) { return r.verb == "PATCH"; }).has_value());
  // The pod worker keeps reporting the same status: no rewrite until the retry is due.
  for (int i = 0; i < 50; ++i) sm.SetPodStatus(pod, st);
  int patches = 0;
  for (const auto& req : api.Requests()) patches += req.verb == "PATCH";
  EXPECT_EQ(patches, 1);
  // Once the API server takes it, the pending retry (due 1 s after the failure) writes it.
  api.SetPatchError(absl::OkStatus());
  auto count = [&] {
    int n = 0;
    for (const auto& req : api.Requests()) n += req.verb == "PATCH";
    return n;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (count() < 2 && std::chrono::steady_clock::now() < deadline) {
    api.WaitFor([](const FakeApiClient::Request&) { return false; }, std::chrono::milliseconds(50));
  }
  sm.Stop();
  EXPECT_EQ(count(), 2);
}

TEST(StatusManagerTest, PodIpsReplacedNotMerged) {
  FakeApiClient api;
  StatusManager sm(&api);
  Json pod = PodWith("Always");
  Json st = {{"phase", "Running"},
             {"podIP", "10.0.0.2"},
             {"podIPs", Json::parse(R"([{"ip":"10.0.0.2"}])")}};
  sm.SetPodStatus(Typed(pod), st);
  sm.Start();
  auto r = api.WaitFor([](const FakeApiClient::Request& r) { return r.verb == "PATCH"; });
  sm.Stop();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body["status"]["podIPs"],
            Json::parse(R"([{"ip":"10.0.0.2"},{"$patch":"replace"}])"));
  EXPECT_EQ(sm.GetPodStatus("u1")->at("podIPs"), st["podIPs"]);
}

// A static pod's status goes to its mirror pod: nothing while there is none, then a PATCH
// with the mirror's UID as precondition; again to a replacing mirror pod.
TEST(StatusManagerTest, StaticPodStatusGoesToItsMirrorPod) {
  FakeApiClient api;
  StatusManager sm(&api);
  absl::Mutex mu;
  std::string mirror;  // guarded by mu; "" = no mirror pod yet
  sm.SetMirrorUidSource([&](const std::string& uid) -> std::optional<std::string> {
    if (uid != "u1") return std::nullopt;
    absl::MutexLock l(&mu);
    return mirror;
  });
  sm.Start();
  sm.SetPodStatus(Typed(PodWith("Always")), {{"phase", "Running"}});
  // Another pod's write shows the writer has run past the static pod.
  Json other = PodWith("Always");
  other["metadata"]["uid"] = "u2";
  other["metadata"]["name"] = "q";
  sm.SetPodStatus(Typed(other), {{"phase", "Pending"}});
  ASSERT_TRUE(api.WaitFor([](const FakeApiClient::Request& r) {
                   return r.verb == "PATCH" && r.body["metadata"]["uid"] == "u2";
                 })
                  .has_value());
  for (const auto& req : api.Requests()) EXPECT_NE(req.path, "/api/v1/namespaces/ns/pods/p/status");
  {
    absl::MutexLock l(&mu);
    mirror = "m1";
  }
  sm.MirrorPodChanged("u1");
  auto r = api.WaitFor([](const FakeApiClient::Request& r) {
    return r.verb == "PATCH" && r.path == "/api/v1/namespaces/ns/pods/p/status";
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body["metadata"]["uid"], "m1");
  EXPECT_EQ(r->body["status"]["phase"], "Running");
  {
    absl::MutexLock l(&mu);
    mirror = "m2";
  }
  sm.MirrorPodChanged("u1");
  auto r2 = api.WaitFor([](const FakeApiClient::Request& r) {
    return r.verb == "PATCH" && r.body["metadata"]["uid"] == "m2";
  });
  sm.Stop();
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->body["status"]["phase"], "Running");
}

}  // namespace
}  // namespace berth::kubelet
