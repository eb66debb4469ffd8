#include "kubelet/lifecycle.h"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

namespace berth::kubelet {
namespace {

// Records the targets it is asked to run and answers with a fixed outcome.
class RecordingRunner : public ProbeRunner {
 public:
  ProbeOutcome Run(const ProbeTarget& t) override {
    std::lock_guard<std::mutex> l(mu);
    targets.push_back(t);
    return outcome;
  }
  std::mutex mu;
  std::vector<ProbeTarget> targets;
  ProbeOutcome outcome{ProbeResult::kSuccess, ""};
};

const Json kContainer = {{"name", "web"}, {"ports", {{{"name", "http"}, {"containerPort", 8080}}}}};

// Container kContainer with `handler` as its preStop hook, typed as the pod manager has it.
api::Container With(const Json& handler) {
  Json c = kContainer;
  c["lifecycle"] = {{"preStop", handler}};
  absl::StatusOr<api::Pod> pod =
      api::ParsePod({{"metadata", {{"uid", "u"}}}, {"spec", {{"containers", Json::array({c})}}}});
  EXPECT_TRUE(pod.ok()) << pod.status();
  return pod.ok() ? pod->spec.containers[0] : api::Container{};
}

TEST(LifecycleHandlerRunnerTest, ExecAndHttpGetGoThroughTheProbeHandlers) {
  RecordingRunner runner;
  LifecycleHandlerRunner hooks(&runner);
  Json exec = {{"exec", {{"command", {"sh", "-c", "echo hi"}}}}};
  EXPECT_TRUE(
      hooks.Run(With(exec), LifecycleHook::kPreStop, "ctr1", "10.0.0.5", absl::Seconds(7)).ok());
  Json http = {{"httpGet", {{"path", "/shutdown"}, {"port", "http"}}}};
  EXPECT_TRUE(
      hooks.Run(With(http), LifecycleHook::kPreStop, "ctr1", "10.0.0.5", absl::Seconds(3)).ok());
  ASSERT_EQ(runner.targets.size(), 2u);
  EXPECT_EQ(runner.targets[0].probe, exec);
  EXPECT_EQ(runner.targets[0].container_id, "ctr1");
  EXPECT_EQ(runner.targets[0].timeout, absl::Seconds(7));
  EXPECT_EQ(runner.targets[1].pod_ip, "10.0.0.5");
  EXPECT_EQ(runner.targets[1].container["ports"],
            kContainer["ports"]);  // named ports resolve against it

  runner.outcome = {ProbeResult::kFailure, "exit status 7: broken"};
  absl::Status s = hooks.Run(With(exec), LifecycleHook::kPreStop, "ctr1", "", absl::Seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(),
            "Exec lifecycle hook ([sh -c echo hi]) for Container \"web\" failed - error: exit "
            "status 7: broken");
  s = hooks.Run(With(http), LifecycleHook::kPreStop, "ctr1", "10.0.0.5", absl::Seconds(1));
  EXPECT_EQ(s.message(),
            "HTTP lifecycle hook (/shutdown) for Container \"web\" failed - error: exit status 7: "
            "broken");
}

TEST(LifecycleHandlerRunnerTest, SleepIsCutAtTheTimeoutAndOthersAreRejected) {
  RecordingRunner runner;
  LifecycleHandlerRunner hooks(&runner);
  absl::Time start = absl::Now();
  EXPECT_TRUE(hooks
                  .Run(With({{"sleep", {{"seconds", 30}}}}), LifecycleHook::kPreStop, "c", "",
                       absl::Milliseconds(200))
                  .ok());
  absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(200));
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_EQ(hooks
                .Run(With({{"sleep", {{"seconds", -1}}}}), LifecycleHook::kPreStop, "c", "",
                     absl::Seconds(1))
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hooks
                .Run(With({{"tcpSocket", {{"port", 80}}}}), LifecycleHook::kPreStop, "c", "",
                     absl::Seconds(1))
                .code(),
            absl::StatusCode::kInvalidArgument);
  // A container without the hook.
  EXPECT_EQ(hooks
                .Run(With({{"sleep", {{"seconds", 1}}}}), LifecycleHook::kPostStart, "c", "",
                     absl::Seconds(1))
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(runner.targets.empty());
}

}  // namespace
}  // namespace berth::kubelet
