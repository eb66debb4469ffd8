// PodManager with static pods: mirror pods from the API are never run, and a static pod's
// status goes to its mirror pod (kubelet/static_pods.h).
// (gtest and gmock come with the fixture, after the CRI protos: <signal.h> macros clash.)
#include "kubelet/pod_manager.h"  // first: the CRI protos clash with <signal.h> macros
#include "kubelet/static_pods.h"
#include "kubelet/testing/pod_manager_fixture.h"

namespace berth::kubelet {
namespace {

class StaticPodManagerTest : public PodManagerTest {
 protected:
  void Configure(PodManagerOptions* opts) override {
    opts->on_mirror_pod = [this](const std::string& type, const Json& mirror) {
      std::lock_guard<std::mutex> l(mu_);
      mirror_events_.push_back(type + " " + mirror["metadata"]["name"].get<std::string>());
    };
    opts->mirror_uid_of = [this](const std::string& uid) -> std::optional<std::string> {
      std::lock_guard<std::mutex> l(mu_);
      if (uid != static_uid_) return std::nullopt;
      return mirror_uid_;
    };
  }
  std::mutex mu_;
  std::vector<std::string> mirror_events_;
  std::string static_uid_;
  std::string mirror_uid_;  // "" = none yet
};

TEST_F(StaticPodManagerTest, MirrorPodIsNotRunAndStaticPodStatusGoesToIt) {
  absl::StatusOr<Json> static_pod = ParseStaticPodManifest(
      R"(apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: main, image: registry.local/busybox:1.36, command: [sleep, "1000"]}]
)",
      "/etc/manifests/web.yaml", "node1");
  ASSERT_TRUE(static_pod.ok()) << static_pod.status();
  const std::string uid = (*static_pod)["metadata"]["uid"];
  {
    std::lock_guard<std::mutex> l(mu_);
    static_uid_ = uid;
  }
  // The mirror pod the API server holds for it: passed on, never run.
  Json mirror = MakeMirrorPod(*static_pod, "node1", "node-uid");
  mirror["metadata"]["uid"] = "mirror-1";
  manager_->HandlePodEvent("ADDED", mirror);
  manager_->HandlePodEvent("DELETED", mirror);
  {
    std::lock_guard<std::mutex> l(mu_);
    EXPECT_THAT(mirror_events_, ::testing::ElementsAre("ADDED web-node1", "DELETED web-node1"));
  }
  EXPECT_THAT(manager_->PodUids(), ::testing::IsEmpty());

  // The static pod runs; its status waits for the mirror pod, then goes to it.
  manager_->HandlePodEvent("ADDED", *static_pod);
  ASSERT_TRUE(runtime_.WaitForCalls([](const std::vector<std::string>& calls) {
    return FirstCallWithPrefix(calls, "StartContainer main") < static_cast<long>(calls.size());
  }));
  EXPECT_THAT(manager_->PodUids(), ::testing::ElementsAre(uid));
  auto running = [&] {
    std::optional<Json> s = manager_->GetPodStatus(uid);
    return s && Phase(*s) == "Running";
  };
  for (int i = 0; i < 200 && !running(); ++i) {
    api_.WaitFor([](const FakeApiClient::Request&) { return false; },
                 std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(running());
  for (const auto& r : api_.Requests()) {
    EXPECT_NE(r.verb, "PATCH") << "status written before the mirror pod exists: " << r.path;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    mirror_uid_ = "mirror-2";
  }
  manager_->MirrorPodChanged(uid);
  auto patch = api_.WaitFor([](const FakeApiClient::Request& r) { return r.verb == "PATCH"; });
  ASSERT_TRUE(patch.has_value());
  EXPECT_EQ(patch->path, "/api/v1/namespaces/default/pods/web-node1/status");
  EXPECT_EQ(patch->body["metadata"]["uid"], "mirror-2");
  EXPECT_EQ(Phase(patch->body["status"]), "Running");
}

}  // namespace
}  // namespace berth::kubelet
