// kubelet_api against a real control plane (tests/cluster/up.sh: etcd, kube-apiserver,
// controller-manager, scheduler in a netns of their own). Registers a Node with a node
// kubeconfig (system:node:<name>, so the Node authorizer and NodeRestriction apply), waits
// for it to be Ready and get a podCIDR, sees the Lease renewed with an ownerReference to the
// Node, and keeps a pod ListWatch running (one LIST) through creates, updates and deletes.
// Needs root; the test thread joins the cluster's netns with setns(2) and leaves it after.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "base/file.h"
#include "base/process.h"
#include "kubelet/api_client.h"
#include "kubelet/lease.h"
#include "kubelet/list_watch.h"
#include "kubelet/node_status.h"

#ifndef BERTH_SOURCE_DIR
#error "BERTH_SOURCE_DIR must be defined"
#endif

namespace berth::kubelet {
namespace {

constexpr char kNode[] = "berth-it-node";

// Polls `pred` every 100 ms until true or `timeout`; returns the last result.
bool Eventually(const std::function<bool()>& pred,
                std::chrono::seconds timeout = std::chrono::seconds(90)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

class KubeletApiIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/tmp/kapi-it.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    state_ = tmpl;
    netns_ = "berth-kapi-" + state_.substr(state_.rfind('.') + 1);
    cluster_ = std::string(BERTH_SOURCE_DIR) + "/tests/cluster";
    SpawnOptions env;
    env.extra_env = {"BERTH_NETNS=" + netns_, "BERTH_UP_TIMEOUT=240"};
    started_ = true;
    auto up = berth::Run({cluster_ + "/up.sh", state_}, "", std::chrono::seconds(280), env);
    ASSERT_TRUE(up.ok()) << up.status();
    ASSERT_EQ(up->exit_code, 0) << "up.sh failed:\n" << up->err;
    auto kc = RunOk({cluster_ + "/node-kubeconfig.sh", state_, kNode});
    ASSERT_TRUE(kc.ok()) << kc.status();
    node_kubeconfig_ = state_ + "/node-" + kNode + ".kubeconfig";
    auto ip = ReadFile(state_ + "/node_ip");
    ASSERT_TRUE(ip.ok()) << ip.status();
    node_ip_ = ip->substr(0, ip->find('/'));

    host_ns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(host_ns_, 0);
    int fd = open(("/run/netns/" + netns_).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << "open netns " << netns_;
    ASSERT_EQ(setns(fd, CLONE_NEWNET), 0) << strerror(errno);
    close(fd);
  }

  void TearDown() override {
    if (host_ns_ >= 0) {
      EXPECT_EQ(setns(host_ns_, CLONE_NEWNET), 0) << strerror(errno);
      close(host_ns_);
    }
    if (started_) {
      auto down = berth::Run({cluster_ + "/down.sh", state_}, "", std::chrono::seconds(120));
      EXPECT_TRUE(down.ok() && down->exit_code == 0)
          << "down.sh failed: " << (down.ok() ? down->err : down.status().ToString());
      if (HasFailure()) {
        auto log = ReadFile(state_ + "/logs/kube-apiserver.log");
        if (log.ok())
          std::cerr << "apiserver log tail:\n"
                    << log->substr(log->size() > 3000 ? log->size() - 3000 : 0);
      }
      EXPECT_TRUE(RemoveAll(state_).ok());
    }
  }

  std::string state_, netns_, cluster_, node_kubeconfig_, node_ip_;
  bool started_ = false;
  int host_ns_ = -1;
};

std::string ConditionStatus(const Json& node, const std::string& type) {
  if (!node.contains("status") || !node["status"].contains("conditions")) return "";
  for (const auto& c : node["status"]["conditions"]) {
    if (c.value("type", "") == type) return c.value("status", "");
  }
  return "";
}

TEST_F(KubeletApiIntegrationTest, RegisterNodeLeaseAndWatch) {
  auto node_client = ApiClient::FromKubeconfig(node_kubeconfig_);
  ASSERT_TRUE(node_client.ok()) << node_client.status();
  auto admin = ApiClient::FromKubeconfig(state_ + "/admin.kubeconfig");
  ASSERT_TRUE(admin.ok()) << admin.status();
  ApiClient* nc = node_client->get();

  auto machine = ReadMachineInfo("/");
  ASSERT_TRUE(machine.ok()) << machine.status();
  NodeStatusManager status(
      nc,
      {.node_name = kNode, .node_ip = node_ip_, .update_period = std::chrono::milliseconds(1000)},
      *machine);
  std::mutex mu;
  std::string cidr_seen;
  status.SetPodCidrCallback([&](const std::string& c, const std::vector<std::string>&) {
    std::lock_guard<std::mutex> lock(mu);
    cidr_seen = c;
  });
  status.Start();
  LeaseController lease(nc, {.node_name = kNode,
                             .renew_period = std::chrono::milliseconds(1000),
                             .node_uid = [&status] { return status.NodeUid(); }});
  lease.Start();

  // The Node is registered and Ready, as the admin sees it.
  Json node;
  ASSERT_TRUE(Eventually([&] {
    auto n = (*admin)->Get(std::string("/api/v1/nodes/") + kNode);
    if (!n.ok()) return false;
    node = *n;
    return ConditionStatus(node, "Ready") == "True";
  })) << node.dump(2);
  EXPECT_EQ(node["metadata"]["labels"]["kubernetes.io/os"], "linux");
  EXPECT_EQ(node["status"]["nodeInfo"]["kubeletVersion"], "v1.36.3-berth");
  EXPECT_EQ(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
  EXPECT_EQ(ConditionStatus(node, "MemoryPressure"), "False");
  bool has_ip = false;
  for (const auto& a : node["status"]["addresses"]) {
    has_ip |= a["type"] == "InternalIP" && a["address"] == node_ip_;
  }
  EXPECT_TRUE(has_ip) << node["status"]["addresses"].dump();
  std::string uid = node["metadata"]["uid"];

  // The controller-manager assigns a podCIDR; the manager reports it.
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !cidr_seen.empty();
  })) << "no podCIDR reported";
  EXPECT_EQ(status.PodCidr().rfind("10.244.", 0), 0u) << status.PodCidr();

  // The Lease exists, is owned by the Node, and its renewTime advances.
  const std::string lease_path =
      std::string("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/") + kNode;
  std::string first_renew;
  ASSERT_TRUE(Eventually([&] {
    auto l = (*admin)->Get(lease_path);
    if (!l.ok() || !(*l)["metadata"].contains("ownerReferences")) return false;
    EXPECT_EQ((*l)["metadata"]["ownerReferences"][0]["uid"], uid);
    EXPECT_EQ((*l)["metadata"]["ownerReferences"][0]["kind"], "Node");
    EXPECT_EQ((*l)["spec"]["holderIdentity"], kNode);
    EXPECT_EQ((*l)["spec"]["leaseDurationSeconds"], 40);
    first_renew = (*l)["spec"]["renewTime"];
    return true;
  })) << "lease not created with owner";
  ASSERT_TRUE(Eventually([&] {
    auto l = (*admin)->Get(lease_path);
    return l.ok() && (*l)["spec"]["renewTime"] != first_renew;
  })) << "lease not renewed";

  // A pod ListWatch as the node sees it (fieldSelector spec.nodeName), through add, update,
  // delete; the watch stays up (one LIST) across all of them and the status/lease traffic.
  std::vector<std::string> events;
  std::condition_variable cv;
  auto push = [&](const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    cv.notify_all();
  };
  auto has = [&](const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    return std::find(events.begin(), events.end(), e) != events.end();
  };
  ListWatch pods(nc,
                 {.path = "/api/v1/pods", .field_selector = std::string("spec.nodeName=") + kNode},
                 {.on_add = [&](const Json& p) { push("add " + ListWatch::KeyOf(p)); },
                  .on_update =
                      [&](const Json&, const Json& p) {
                        if (p["metadata"].contains("labels")) push("update " + ListWatch::KeyOf(p));
                      },
                  .on_delete = [&](const Json& p) { push("delete " + ListWatch::KeyOf(p)); },
                  .on_synced = [&] { push("synced"); }});
  pods.Start();
  ASSERT_TRUE(Eventually([&] { return has("synced"); }));
  Json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "p1"}, {"namespace", "default"}}},
              {"spec",
               {{"nodeName", kNode},
                {"automountServiceAccountToken", false},
                {"containers", {{{"name", "c"}, {"image", "127.0.0.1:5000/busybox"}}}}}}};
  auto created = (*admin)->Post("/api/v1/namespaces/default/pods", pod);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(Eventually([&] { return has("add default/p1"); }));
  auto patched = (*admin)->Patch("/api/v1/namespaces/default/pods/p1",
                                 Json{{"metadata", {{"labels", {{"x", "y"}}}}}}, PatchType::kMerge);
  ASSERT_TRUE(patched.ok()) << patched.status();
  ASSERT_TRUE(Eventually([&] { return has("update default/p1"); }));
  ASSERT_TRUE(
      (*admin)
          ->Delete("/api/v1/namespaces/default/pods/p1",
                   Json{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"gracePeriodSeconds", 0}})
          .ok());
  ASSERT_TRUE(Eventually([&] { return has("delete default/p1"); }));
  EXPECT_EQ(pods.ListCount(), 1);
  pods.Stop();

  // The node's identity is enforced: it may not touch another Node's status.
  auto other = nc->Patch("/api/v1/nodes/someone-else/status", Json{{"status", Json::object()}},
                         PatchType::kStrategicMerge);
  EXPECT_FALSE(other.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(other.status()) || absl::IsNotFound(other.status()))
      << other.status();

  EXPECT_GE(status.StatusUpdates(), 1);
  EXPECT_GE(lease.Renewals(), 2);
  lease.Stop();
  status.Stop();
}

}  // namespace
}  // namespace berth::kubelet
