// The pod worker model (PodManager::WorkerLoop/Enqueue) and the pod-start metrics.
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

#include "kubelet/pod_manager.h"
#include "kubelet/status_manager.h"
#include "kubelet/testing/pod_manager_fixture.h"
#include "metrics/kubelet_metrics.h"

namespace berth::kubelet {
namespace {

// RunPodSandbox blocks until `want` calls are in it at once (or 10 s pass), and records the
// most that ever were. Once they met, it lets every call through and the fake's model runs
// the next attempts (a failed attempt is retried after backoff_initial).
class Barrier {
 public:
  explicit Barrier(int want) : want_(want) {}
  // Returns true when `want` calls met.
  bool Arrive() {
    std::unique_lock<std::mutex> l(mu_);
    ++inside_;
    max_inside_ = std::max(max_inside_, inside_);
    if (inside_ >= want_) met_ = true;
    cv_.notify_all();
    cv_.wait_for(l, std::chrono::seconds(10), [this] { return met_; });
    --inside_;
    return met_;
  }
  int max_inside() {
    std::lock_guard<std::mutex> l(mu_);
    return max_inside_;
  }

 private:
  const int want_;
  std::mutex mu_;
  std::condition_variable cv_;
  int inside_ = 0;
  int max_inside_ = 0;
  bool met_ = false;
};

class PodWorkersTest : public PodManagerTest {
 protected:
  void Configure(PodManagerOptions* opts) override {
    opts->workers = 2;  // kept idle; more start on demand
    opts->max_workers = max_workers_;
    opts->backoff_initial = absl::Milliseconds(100);
    opts->kubelet_metrics = &km_;
  }
  // Adds `n` pods p0..p<n-1> and blocks their sandboxes in `barrier`.
  void AddPods(int n, Barrier* barrier) {
    runtime_.OnRunPodSandbox([this, barrier](const cri::v1::RunPodSandboxRequest&)
                                 -> absl::StatusOr<cri::v1::RunPodSandboxResponse> {
      barrier->Arrive();
      runtime_.OnRunPodSandbox(nullptr);  // later attempts: the model
      return absl::UnavailableError("held by the test");
    });
    for (int i = 0; i < n; ++i) manager_->HandlePodEvent("ADDED", MakePod("p" + std::to_string(i)));
  }
  // Waits until every pod p0..p<n-1> has status phase Running.
  bool WaitAllRunning(int n) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      int running = 0;
      for (int i = 0; i < n; ++i) {
        auto st = manager_->GetPodStatus("uid-p" + std::to_string(i));
        if (st && st->value("phase", "") == "Running") ++running;
      }
      if (running == n) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  metrics::Registry registry_;
  metrics::KubeletMetrics km_ = metrics::RegisterKubeletMetrics(&registry_);
  int max_workers_ = 256;
};

TEST_F(PodWorkersTest, PodsAreSyncedInParallelBeyondTheKeptWorkers) {
  // Ten pods, two kept workers: all ten syncs are in RunPodSandbox at once (a fixed pool of
  // two would keep eight in the queue and never meet the barrier).
  Barrier barrier(10);
  AddPods(10, &barrier);
  ASSERT_TRUE(WaitAllRunning(10));
  EXPECT_EQ(barrier.max_inside(), 10);
}

class BoundedPodWorkersTest : public PodWorkersTest {
 protected:
  void Configure(PodManagerOptions* opts) override {
    max_workers_ = 3;
    PodWorkersTest::Configure(opts);
  }
};

TEST_F(BoundedPodWorkersTest, NoMoreThanMaxWorkersSyncAtOnce) {
  Barrier barrier(3);
  AddPods(6, &barrier);
  ASSERT_TRUE(WaitAllRunning(6));
  EXPECT_EQ(barrier.max_inside(), 3);
}

TEST_F(PodWorkersTest, PodStartMetricsAreObserved) {
  manager_->HandlePodEvent("ADDED", MakePod("web"));
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  EXPECT_GE(km_.pod_worker->WithLabelValues({"create"})->Count(), 1u);
  EXPECT_EQ(km_.pod_worker_start->WithLabelValues({})->Count(), 1u);
  EXPECT_EQ(km_.pod_start->WithLabelValues({})->Count(), 1u);
  EXPECT_EQ(km_.runtime_operations->WithLabelValues({"run_podsandbox"})->Value(), 1);
  EXPECT_GE(km_.runtime_operations->WithLabelValues({"list_containers"})->Value(), 1);
  for (const char* phase :
       {metrics::kPhaseQueueWait, metrics::kPhaseRuntimeStatus, metrics::kPhaseVolumes,
        metrics::kPhaseSandbox, metrics::kPhaseImageCheck, metrics::kPhaseContainerCreate,
        metrics::kPhaseContainerStart}) {
    EXPECT_GE(km_.pod_start_phase->WithLabelValues({phase})->Count(), 1u) << phase;
  }
  // The SLI is recorded when the watch shows the pod running with its containers started.
  Json seen = MakePod("web");
  seen["metadata"]["creationTimestamp"] =
      absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone());
  seen["status"] = *manager_->GetPodStatus("uid-web");
  manager_->HandlePodEvent("MODIFIED", seen);
  manager_->HandlePodEvent("MODIFIED", seen);
  EXPECT_EQ(km_.pod_start_sli->WithLabelValues({})->Count(), 1u);
  EXPECT_EQ(km_.pod_start_total->WithLabelValues({})->Count(), 1u);
}

// PATCHes wait in a barrier of `want` concurrent writes; the most concurrent writes of one
// pod (path) are recorded too.
class BlockingPatchApi : public FakeApiClient {
 public:
  explicit BlockingPatchApi(int want) : barrier_(want) {}
  absl::StatusOr<Json> Patch(const std::string& path, const Json& body, PatchType type) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      max_same_path_ = std::max(max_same_path_, ++inside_[path]);
    }
    barrier_.Arrive();
    {
      std::lock_guard<std::mutex> l(mu_);
      --inside_[path];
    }
    return FakeApiClient::Patch(path, body, type);
  }
  Barrier barrier_;
  std::mutex mu_;
  std::map<std::string, int> inside_;
  int max_same_path_ = 0;
};

api::Pod NamedPod(const std::string& name) {
  api::Pod pod;
  pod.metadata.name = name;
  pod.metadata.namespace_ = "default";
  pod.metadata.uid = "uid-" + name;
  return pod;
}

TEST(StatusWritersTest, PodsAreWrittenInParallelEachPodInOrder) {
  BlockingPatchApi api(3);
  StatusManager sm(&api, nullptr, /*writers=*/4);
  sm.Start();
  for (const char* name : {"a", "b", "c"}) sm.SetPodStatus(NamedPod(name), {{"phase", "Pending"}});
  // A second status of "a" (its first may be in flight): written after it, never beside it.
  sm.SetPodStatus(NamedPod("a"), {{"phase", "Running"}});
  auto running = api.WaitFor([](const FakeApiClient::Request& r) {
    return r.verb == "PATCH" && r.path == "/api/v1/namespaces/default/pods/a/status" &&
           r.body["status"]["phase"] == "Running";
  });
  sm.Stop();
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(api.barrier_.max_inside(), 3);  // one writer thread would never meet the barrier
  EXPECT_EQ(api.max_same_path_, 1);
}

}  // namespace
}  // namespace berth::kubelet
