// The PodManager test fixture (fake API server, CRI runtime, image service, clock and
// probes) shared by pod_manager_test.cc and pod_admission_test.cc.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "base/file.h"
#include "cri/testing/fake_cri.h"
#include "kubelet/pod_manager.h"
#include "kubelet/testing/fake_api_client.h"

namespace berth::kubelet {

using cri::testing::FakeImageService;
using cri::testing::FakeRuntimeService;
using testing::FakeApiClient;

// Index in `calls` of the first runtime call starting with `prefix` (calls.size() if none).
inline long FirstCallWithPrefix(const std::vector<std::string>& calls, const std::string& prefix) {
  return std::find_if(calls.begin(), calls.end(),
                      [&](const std::string& c) { return c.rfind(prefix, 0) == 0; }) -
         calls.begin();
}

// A settable clock shared with the manager.
class FakeClock {
 public:
  absl::Time Now() {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
  }

 private:
  std::mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1704067200);
};

inline Json MakePod(const std::string& name, const std::string& restart_policy = "Always") {
  return Json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": ")" +
                     name + R"(", "namespace": "default", "uid": "uid-)" + name + R"(",
                 "labels": {"app": "web"}},
    "spec": {
      "nodeName": "node1", "restartPolicy": ")" +
                     restart_policy + R"(",
      "terminationGracePeriodSeconds": 30,
      "volumes": [{"name": "scratch", "emptyDir": {}}],
      "containers": [{
        "name": "main", "image": "registry.local/busybox:1.36",
        "command": ["/bin/sh", "-c"], "args": ["echo $(GREETING) && sleep 1000"],
        "env": [{"name": "GREETING", "value": "hello"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"containerPort": 80, "hostPort": 8080}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]
      }]
    },
    "status": {"phase": "Pending", "conditions": [
      {"type": "PodScheduled", "status": "True", "lastProbeTime": null,
       "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
  })");
}

inline std::string Phase(const Json& s) { return s.value("phase", ""); }
inline Json MainStatus(const Json& s) { return s["containerStatuses"][0]; }
inline std::string WaitingReason(const Json& s) {
  const Json state = MainStatus(s)["state"];
  return state.contains("waiting") ? state["waiting"].value("reason", "") : "";
}

// Probe outcomes controlled by the test: readiness follows `ready`, liveness fails for the
// instance named in `kill_id`.
class ScriptedProbes : public ProbeRunner {
 public:
  ProbeOutcome Run(const ProbeTarget& t) override {
    std::function<void(const ProbeTarget&)> hook;
    {
      std::lock_guard<std::mutex> l(mu);
      hook = on_run;
    }
    if (hook) hook(t);
    std::lock_guard<std::mutex> l(mu);
    // Lifecycle hooks (exec): "hook-fail" fails, anything else succeeds.
    if (t.probe.contains("exec") && t.probe["exec"]["command"][0] == "hook-fail") {
      return {ProbeResult::kFailure, "boom"};
    }
    if (t.type == ProbeType::kReadiness) {
      return {ready ? ProbeResult::kSuccess : ProbeResult::kFailure,
              "cat: /tmp/ready: No such file"};
    }
    if (t.type == ProbeType::kStartup && !started) return {ProbeResult::kFailure, "not yet"};
    if (t.container_id == kill_id) return {ProbeResult::kFailure, "wedged"};
    return {ProbeResult::kSuccess, ""};
  }
  std::mutex mu;
  bool ready = false;
  bool started = true;
  std::function<void(const ProbeTarget&)> on_run;  // called first on every run
  std::string kill_id;
};

class PodManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("berth-pods-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(root_);
    resolv_ = (root_ / "resolv.conf").string();
    std::ofstream(resolv_) << "nameserver 192.0.2.53\nsearch example.test\noptions edns0\n";
    PodManagerOptions opts;
    opts.node_name = "node1";
    opts.node_ip = "192.0.2.10";
    opts.root_dir = (root_ / "kubelet").string();
    opts.log_root = (root_ / "logs").string();
    opts.resolv_conf = resolv_;
    opts.workers = 2;
    opts.clock = [this] { return clock_.Now(); };
    opts.probe_runner = &probes_;
    // The cluster's services as the watch delivers them: the master and one in "default".
    services_.Upsert(
        {{"metadata", {{"namespace", "default"}, {"name", "kubernetes"}}},
         {"spec", {{"clusterIP", "10.96.0.1"}, {"ports", {{{"name", "https"}, {"port", 443}}}}}}});
    services_.Upsert({{"metadata", {{"namespace", "default"}, {"name", "db"}}},
                      {"spec", {{"clusterIP", "10.96.0.20"}, {"ports", {{{"port", 5432}}}}}}});
    services_.MarkSynced();
    opts.service_env = &services_;
    opts.record_event = [this](const Json&, const std::string&, const std::string& reason,
                               const std::string& message, const std::string& field_path) {
      std::lock_guard<std::mutex> l(events_mu_);
      events_.push_back(reason + ": " + message);
      event_paths_.push_back(reason + " " + field_path);
    };
    Configure(&opts);
    manager_ = std::make_unique<PodManager>(&api_, &runtime_, &images_, opts);
    runtime_.SetExitListener([this](const std::string& id) { manager_->OnContainerEvent(id); });
    manager_->Start();
  }
  // Tests of other node configurations override this (called before the manager is made).
  virtual void Configure(PodManagerOptions*) {}
  void TearDown() override {
    manager_->Stop();
    EXPECT_TRUE(UnmountAllUnder(root_.string()).ok());  // what a failed test left mounted
    std::filesystem::remove_all(root_);
  }

  std::filesystem::path root_;
  ServiceEnv services_;
  std::string resolv_;
  FakeClock clock_;
  FakeApiClient api_;
  FakeRuntimeService runtime_;
  FakeImageService images_;
  ScriptedProbes probes_;
  std::mutex events_mu_;
  std::vector<std::string> events_;
  std::vector<std::string> event_paths_;  // "<reason> <involvedObject.fieldPath>"
  std::unique_ptr<PodManager> manager_;
};

inline std::string ReadyCondition(const Json& s) {
  for (const auto& c : s["conditions"]) {
    if (c["type"] == "Ready") return c["status"];
  }
  return "";
}

}  // namespace berth::kubelet
