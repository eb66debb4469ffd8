#include "kubelet/node_status.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <string>

#include "kubelet/lease.h"
#include "kubelet/testing/scripted_api_client.h"

namespace berth::kubelet {
namespace {

using testing::ScriptedApiClient;

MachineInfo FakeMachine() {
  MachineInfo m;
  m.hostname = "host-1";
  m.cpu_count = 4;
  m.memory_kib = 8 * 1024 * 1024;
  m.root_fs_kib = 100 * 1024 * 1024;
  m.machine_id = "0123456789abcdef0123456789abcdef";
  m.system_uuid = "uuid-1";
  m.boot_id = "boot-1";
  m.kernel_version = "6.1.0-test";
  m.os_image = "Debian GNU/Linux 12 (bookworm)";
  m.architecture = "amd64";
  return m;
}

TEST(NodeStatusTest, BuildNode) {
  NodeStatusOptions opts{
      .node_name = "n1",
      .node_ip = "10.1.0.2",
      .labels = {{"node.kubernetes.io/exclude-from-external-load-balancers", "true"}}};
  auto now = std::chrono::system_clock::from_time_t(1700000000);
  Json node = BuildNode(opts, FakeMachine(), now);
  EXPECT_EQ(node["kind"], "Node");
  EXPECT_EQ(node["metadata"]["name"], "n1");
  const Json& labels = node["metadata"]["labels"];
  EXPECT_EQ(labels["kubernetes.io/hostname"], "host-1");
  EXPECT_EQ(labels["kubernetes.io/os"], "linux");
  EXPECT_EQ(labels["kubernetes.io/arch"], "amd64");
  EXPECT_EQ(labels["node.kubernetes.io/exclude-from-external-load-balancers"], "true");
  const Json& st = node["status"];
  EXPECT_EQ(st["capacity"]["cpu"], "4");
  EXPECT_EQ(st["capacity"]["memory"], "8388608Ki");
  EXPECT_EQ(st["capacity"]["ephemeral-storage"], "104857600Ki");
  EXPECT_EQ(st["capacity"]["pods"], "110");
  EXPECT_EQ(st["allocatable"], st["capacity"]);
  ASSERT_EQ(st["conditions"].size(), 4u);
  for (const Json& c : st["conditions"]) {
    EXPECT_EQ(c["lastHeartbeatTime"], "2023-11-14T22:13:20Z");
    if (c["type"] == "Ready") {
      EXPECT_EQ(c["status"], "True");
      EXPECT_EQ(c["reason"], "KubeletReady");
      EXPECT_EQ(c["message"], "berth is posting ready status");
    } else {
      EXPECT_EQ(c["status"], "False") << c["type"];
    }
  }
  EXPECT_EQ(st["addresses"], Json::parse(R"([{"type":"InternalIP","address":"10.1.0.2"},
                            {"type":"Hostname","address":"host-1"}])"));
  EXPECT_EQ(st["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
  const Json& info = st["nodeInfo"];
  EXPECT_EQ(info["machineID"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(info["systemUUID"], "uuid-1");
  EXPECT_EQ(info["bootID"], "boot-1");
  EXPECT_EQ(info["kernelVersion"], "6.1.0-test");
  EXPECT_EQ(info["osImage"], "Debian GNU/Linux 12 (bookworm)");
  EXPECT_EQ(info["containerRuntimeVersion"], "berth://0.1.0");
  EXPECT_EQ(info["kubeletVersion"], "v1.36.3-berth");
  EXPECT_EQ(info["operatingSystem"], "linux");
  EXPECT_EQ(info["architecture"], "amd64");
}

// A runtime whose network is not ready makes the node NotReady with the check's message, and
// Ready comes back (with a new transition time) once the check passes.
TEST(NodeStatusTest, NodeLabelsTaintsAndMaxPodsFlags) {
  auto labels = ParseNodeLabels("role=edge, zone=a,empty=");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(*labels,
            (std::map<std::string, std::string>{{"role", "edge"}, {"zone", "a"}, {"empty", ""}}));
  EXPECT_TRUE(ParseNodeLabels("").ok());
  EXPECT_EQ(ParseNodeLabels("role").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNodeLabels("=x").status().code(), absl::StatusCode::kInvalidArgument);

  auto taints = ParseTaints("dedicated=gpu:NoSchedule,maintenance:NoExecute");
  ASSERT_TRUE(taints.ok()) << taints.status();
  EXPECT_EQ(*taints, Json::parse(R"([{"key":"dedicated","value":"gpu","effect":"NoSchedule"},
                                     {"key":"maintenance","effect":"NoExecute"}])"));
  EXPECT_EQ(ParseTaints("a=b:Sometimes").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTaints("a=b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTaints(":NoSchedule").status().code(), absl::StatusCode::kInvalidArgument);

  NodeStatusOptions opts{.node_name = "n1", .labels = *labels, .taints = *taints, .max_pods = 20};
  Json node = BuildNode(opts, FakeMachine(), std::chrono::system_clock::from_time_t(1700000000));
  EXPECT_EQ(node["metadata"]["labels"]["role"], "edge");
  EXPECT_EQ(node["spec"]["taints"], *taints);
  EXPECT_EQ(node["status"]["capacity"]["pods"], "20");
  opts.taints = Json::array();
  EXPECT_FALSE(
      BuildNode(opts, FakeMachine(), std::chrono::system_clock::from_time_t(1700000000))["spec"]
          .contains("taints"));
}

TEST(NodeStatusTest, ReadinessCheckDrivesReadyCondition) {
  ScriptedApiClient client;
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    return Json{{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}}, {"spec", Json::object()}};
  };
  NodeStatusManager mgr(&client, {.node_name = "n1"}, FakeMachine());
  std::string why =
      "container runtime network not ready: NetworkReady=false "
      "reason:NetworkPluginNotReady message:no CNI configuration";
  mgr.SetReadinessCheck([&] { return why; });
  auto ready_of = [](const Json& body) {
    for (const Json& c : body["status"]["conditions"]) {
      if (c["type"] == "Ready") return c;
    }
    return Json();
  };
  ASSERT_TRUE(mgr.RegisterOnce().ok());
  Json c = ready_of(client.Requests().back().body);
  EXPECT_EQ(c["status"], "False");
  ASSERT_TRUE(mgr.UpdateStatusOnce().ok());
  c = ready_of(client.Requests().back().body);
  EXPECT_EQ(c["status"], "False");
  EXPECT_EQ(c["reason"], "KubeletNotReady");
  EXPECT_EQ(c["message"], why);
  std::string not_ready_since = c["lastTransitionTime"];
  why.clear();
  ASSERT_TRUE(mgr.UpdateStatusOnce().ok());
  c = ready_of(client.Requests().back().body);
  EXPECT_EQ(c["status"], "True");
  EXPECT_EQ(c["reason"], "KubeletReady");
  EXPECT_GE(c["lastTransitionTime"].get<std::string>(), not_ready_since);  // RFC 3339 sorts
}

// The eviction manager's conditions: True with upstream reasons while reported, False after.
TEST(NodeStatusTest, PressureCheckDrivesPressureConditions) {
  ScriptedApiClient client;
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    return Json{{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}}, {"spec", Json::object()}};
  };
  NodeStatusManager mgr(&client, {.node_name = "n1"}, FakeMachine());
  std::set<std::string> pressures = {"DiskPressure"};
  mgr.SetPressureCheck([&] { return pressures; });
  auto condition = [&](const std::string& type) {
    Json body = client.Requests().back().body;  // (a copy: Requests() returns a temporary)
    for (const Json& c : body["status"]["conditions"]) {
      if (c["type"] == type) return c;
    }
    return Json();
  };
  ASSERT_TRUE(mgr.UpdateStatusOnce().ok());
  EXPECT_EQ(condition("DiskPressure")["status"], "True");
  EXPECT_EQ(condition("DiskPressure")["reason"], "KubeletHasDiskPressure");
  EXPECT_EQ(condition("DiskPressure")["message"], "kubelet has disk pressure");
  EXPECT_EQ(condition("MemoryPressure")["status"], "False");
  EXPECT_EQ(condition("PIDPressure")["reason"], "KubeletHasSufficientPID");
  EXPECT_EQ(condition("Ready")["status"], "True");
  pressures = {"MemoryPressure", "PIDPressure"};
  ASSERT_TRUE(mgr.UpdateStatusOnce().ok());
  EXPECT_EQ(condition("DiskPressure")["status"], "False");
  EXPECT_EQ(condition("DiskPressure")["reason"], "KubeletHasNoDiskPressure");
  EXPECT_EQ(condition("MemoryPressure")["reason"], "KubeletHasInsufficientMemory");
  EXPECT_EQ(condition("PIDPressure")["reason"], "KubeletHasInsufficientPID");
}

// nodeStatusReportFrequency: an unchanged status is not written again before it passes; a
// change is written at once.
TEST(NodeStatusTest, UnchangedStatusIsReportedInfrequently) {
  ScriptedApiClient client;
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    return Json{{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}}, {"spec", Json::object()}};
  };
  NodeStatusManager mgr(&client, {.node_name = "n1", .report_frequency = std::chrono::hours(1)},
                        FakeMachine());
  std::string why;
  mgr.SetReadinessCheck([&] { return why; });
  ASSERT_TRUE(mgr.RegisterOnce().ok());
  ASSERT_TRUE(mgr.UpdateStatusOnce().ok());
  EXPECT_EQ(mgr.StatusUpdates(), 1);
  std::atomic<bool> cidr_assigned{false};
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    Json node = {{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}}, {"spec", Json::object()}};
    if (r.verb == "GET" && cidr_assigned) node["spec"]["podCIDR"] = "10.244.7.0/24";
    return node;
  };
  cidr_assigned = true;  // the controller-manager assigns it after the first write
  ASSERT_TRUE(mgr.UpdateStatusOnce().ok());
  ASSERT_TRUE(mgr.UpdateStatusOnce().ok());
  EXPECT_EQ(mgr.StatusUpdates(), 1);          // only the heartbeat would have changed
  EXPECT_EQ(mgr.PodCidr(), "10.244.7.0/24");  // but the Node was read: its podCIDR is known
  why = "container runtime is down";
  ASSERT_TRUE(mgr.UpdateStatusOnce().ok());
  EXPECT_EQ(mgr.StatusUpdates(), 2);
}

// As the kubelet's fast node status update: a not-ready node reports becoming ready at once,
// not at the next update_period (here an hour).
TEST(NodeStatusTest, NotReadyNodeReportsReadinessChangeAtOnce) {
  ScriptedApiClient client;
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    return Json{{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}}, {"spec", Json::object()}};
  };
  NodeStatusManager mgr(&client,
                        {.node_name = "n1",
                         .update_period = std::chrono::hours(1),
                         .fast_update_period = std::chrono::milliseconds(20)},
                        FakeMachine());
  std::atomic<bool> ready{false};
  mgr.SetReadinessCheck([&]() -> std::string { return ready ? "" : "NetworkReady=false"; });
  auto ready_status = [](const testing::ScriptedRequest& r) {
    if (r.verb != "PATCH" || r.path != "/api/v1/nodes/n1/status") return std::string();
    for (const Json& c : r.body["status"]["conditions"]) {
      if (c["type"] == "Ready") return c["status"].get<std::string>();
    }
    return std::string();
  };
  mgr.Start();
  ASSERT_TRUE(client.WaitFor([&](const std::vector<testing::ScriptedRequest>& rs) {
    for (const auto& r : rs)
      if (ready_status(r) == "False") return true;
    return false;
  }));
  ready = true;
  EXPECT_TRUE(client.WaitFor([&](const std::vector<testing::ScriptedRequest>& rs) {
    for (const auto& r : rs)
      if (ready_status(r) == "True") return true;
    return false;
  }));
  mgr.Stop();
  // Ready now: no further fast updates (one PATCH for False, one for True).
  int patches = 0;
  for (const auto& r : client.Requests()) patches += !ready_status(r).empty();
  EXPECT_EQ(patches, 2);
}

// Node.status.volumesInUse (upstream VolumesInUse setter): written with each status, the
// API server's answer marks them reported; RequestUpdate writes at once, not at the period.
TEST(NodeStatusTest, VolumesInUseWrittenAndReportedOnRequest) {
  ScriptedApiClient client;
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    Json node = {{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}}, {"spec", Json::object()}};
    if (r.verb == "PATCH") node["status"] = r.body["status"];  // the API server echoes it
    return node;
  };
  NodeStatusManager mgr(&client, {.node_name = "n1", .update_period = std::chrono::hours(1)},
                        FakeMachine());
  std::mutex mu;
  std::vector<std::string> in_use;    // guarded by mu
  std::vector<std::string> reported;  // guarded by mu
  mgr.SetVolumesInUse(
      [&] {
        std::lock_guard<std::mutex> l(mu);
        return in_use;
      },
      [&](const std::vector<std::string>& v) {
        std::lock_guard<std::mutex> l(mu);
        reported = v;
      });
  mgr.Start();
  auto patched_with = [](const std::vector<testing::ScriptedRequest>& rs, const Json& want) {
    for (const auto& r : rs)
      if (r.verb == "PATCH" && r.path == "/api/v1/nodes/n1/status" &&
          r.body["status"]["volumesInUse"] == want)
        return true;
    return false;
  };
  ASSERT_TRUE(client.WaitFor([&](const auto& rs) { return patched_with(rs, Json::array()); }));
  const std::string vol = "kubernetes.io/csi/drv^h1";
  {
    std::lock_guard<std::mutex> l(mu);
    in_use = {vol};
  }
  mgr.RequestUpdate();  // without it the next write would be in an hour
  EXPECT_TRUE(client.WaitFor([&](const auto& rs) { return patched_with(rs, Json::array({vol})); }));
  mgr.Stop();
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(reported, std::vector<std::string>{vol});
}

TEST(NodeStatusTest, Parsers) {
  auto kib = ParseMemTotalKib("MemTotal:       16318012 kB\nMemFree: 1 kB\n");
  ASSERT_TRUE(kib.ok());
  EXPECT_EQ(*kib, 16318012);
  EXPECT_FALSE(ParseMemTotalKib("MemFree: 1 kB\n").ok());
  EXPECT_EQ(
      ParseOsReleasePrettyName("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
      "Debian GNU/Linux 12 (bookworm)");
  EXPECT_EQ(ParseOsReleasePrettyName("NAME=x\n"), "Linux");
  auto t = std::chrono::system_clock::from_time_t(1700000000) + std::chrono::microseconds(42);
  EXPECT_EQ(FormatMicroTime(t), "2023-11-14T22:13:20.000042Z");
  EXPECT_EQ(FormatTime(t), "2023-11-14T22:13:20Z");
}

TEST(NodeStatusTest, ReadMachineInfoOnThisHost) {
  auto m = ReadMachineInfo("/");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(m->cpu_count, 0);
  EXPECT_GT(m->memory_kib, 0);
  EXPECT_GT(m->root_fs_kib, 0);
  EXPECT_FALSE(m->kernel_version.empty());
  EXPECT_FALSE(m->hostname.empty());
}

TEST(NodeStatusTest, RegistersAdoptsExistingAndReportsPodCidr) {
  ScriptedApiClient client;
  std::atomic<int> posts{0};
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    if (r.verb == "POST") {
      posts++;
      if (posts == 1) return absl::UnavailableError("POST /api/v1/nodes: connection refused");
      return absl::AlreadyExistsError("POST /api/v1/nodes: 409 AlreadyExists");
    }
    if (r.verb == "GET" && r.path == "/api/v1/nodes/n1") {
      return Json{{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}}, {"spec", Json::object()}};
    }
    if (r.verb == "PATCH" && r.path == "/api/v1/nodes/n1") {
      return Json{{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}}};
    }
    if (r.verb == "PATCH" && r.path == "/api/v1/nodes/n1/status") {
      return Json{{"metadata", {{"name", "n1"}, {"uid", "uid-1"}}},
                  {"spec", {{"podCIDR", "10.244.1.0/24"}, {"podCIDRs", {"10.244.1.0/24"}}}}};
    }
    return absl::NotFoundError(r.path);
  };
  NodeStatusManager mgr(&client,
                        {.node_name = "n1",
                         .update_period = std::chrono::milliseconds(20),
                         .report_frequency = std::chrono::milliseconds(0),  // write every update
                         .register_backoff_initial = std::chrono::milliseconds(5)},
                        FakeMachine());
  std::mutex mu;
  std::vector<std::string> cidrs;
  mgr.SetPodCidrCallback([&](const std::string& c, const std::vector<std::string>&) {
    std::lock_guard<std::mutex> lock(mu);
    cidrs.push_back(c);
  });
  mgr.Start();
  ASSERT_TRUE(client.WaitFor([](const std::vector<testing::ScriptedRequest>& rs) {
    int n = 0;
    for (const auto& r : rs) n += r.verb == "PATCH" && r.path == "/api/v1/nodes/n1/status";
    return n >= 3;
  }));
  mgr.Stop();
  EXPECT_TRUE(mgr.Registered());
  EXPECT_EQ(mgr.NodeUid(), "uid-1");
  EXPECT_EQ(mgr.PodCidr(), "10.244.1.0/24");
  EXPECT_EQ(posts.load(), 2);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(cidrs, std::vector<std::string>{"10.244.1.0/24"});  // once, not per update
  }
  for (const auto& r : client.Requests()) {
    if (r.verb == "PATCH" && r.path == "/api/v1/nodes/n1/status") {
      EXPECT_EQ(r.patch_type, PatchType::kStrategicMerge);
      EXPECT_EQ(r.body["status"]["conditions"].size(), 4u);
      EXPECT_FALSE(r.body.contains("spec"));
    }
    if (r.verb == "PATCH" && r.path == "/api/v1/nodes/n1") {
      EXPECT_EQ(r.body["metadata"]["labels"]["kubernetes.io/os"], "linux");
    }
  }
}

TEST(LeaseTest, CreatesWithOwnerThenRenews) {
  ScriptedApiClient client;
  Json stored;
  std::mutex mu;
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    std::lock_guard<std::mutex> lock(mu);
    const std::string path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    if (r.verb == "GET" && r.path == path + "/n1") {
      if (stored.is_null()) return absl::NotFoundError("GET lease: 404 NotFound");
      return stored;
    }
    if (r.verb == "POST" && r.path == path) {
      stored = r.body;
      stored["metadata"]["resourceVersion"] = "1";
      return stored;
    }
    if (r.verb == "PUT" && r.path == path + "/n1") {
      if (r.body["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]) {
        return absl::AbortedError("PUT lease: 409 Conflict");
      }
      stored = r.body;
      stored["metadata"]["resourceVersion"] =
          std::to_string(std::stoi(stored["metadata"]["resourceVersion"].get<std::string>()) + 1);
      return stored;
    }
    return absl::NotFoundError(r.path);
  };
  LeaseController lease(&client, {.node_name = "n1", .node_uid = [] { return "uid-1"; }});
  ASSERT_TRUE(lease.RenewOnce().ok());
  std::string first_renew;
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(stored["spec"]["holderIdentity"], "n1");
    EXPECT_EQ(stored["spec"]["leaseDurationSeconds"], 40);
    EXPECT_EQ(stored["metadata"]["ownerReferences"],
              Json::parse(R"([{"apiVersion":"v1","kind":"Node","name":"n1","uid":"uid-1"}])"));
    first_renew = stored["spec"]["renewTime"];
    EXPECT_EQ(first_renew.size(), std::string("2023-11-14T22:13:20.000042Z").size());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // renewTime has µs resolution
  ASSERT_TRUE(lease.RenewOnce().ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(stored["metadata"]["resourceVersion"], "2");
    EXPECT_GT(stored["spec"]["renewTime"].get<std::string>(), first_renew);
  }
  // Someone else updated the Lease: the PUT conflicts, the next renewal re-reads and succeeds.
  {
    std::lock_guard<std::mutex> lock(mu);
    stored["metadata"]["resourceVersion"] = "9";
  }
  EXPECT_EQ(lease.RenewOnce().code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(lease.RenewOnce().ok());
  EXPECT_EQ(lease.Renewals(), 3);
}

TEST(LeaseTest, ThreadRenewsUntilStopped) {
  ScriptedApiClient client;
  client.handler = [](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    if (r.verb == "GET") return Json{{"metadata", {{"name", "n1"}}}, {"spec", Json::object()}};
    return r.body;
  };
  LeaseController lease(&client,
                        {.node_name = "n1", .renew_period = std::chrono::milliseconds(10)});
  lease.Start();
  ASSERT_TRUE(client.WaitFor([](const std::vector<testing::ScriptedRequest>& rs) {
    int puts = 0;
    for (const auto& r : rs) puts += r.verb == "PUT";
    return puts >= 3;
  }));
  lease.Stop();
  int after = lease.Renewals();
  EXPECT_GE(after, 3);
}

}  // namespace
}  // namespace berth::kubelet
