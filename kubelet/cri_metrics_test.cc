#include "kubelet/cri_metrics.h"

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cri/testing/fake_cri.h"
#include "gtest/gtest.h"

namespace berth::kubelet {
namespace {

namespace v1 = ::runtime::v1;

StatsTargets Targets() {
  StatsTargets t;
  metrics::CadvisorContainer pod;
  pod.name = "sb1";
  pod.pod_sandbox_id = "sb1";
  pod.pod = "web";
  pod.namespace_ = "default";
  pod.cgroup_path = "/kubepods/poduid1";
  metrics::CadvisorContainer ctr = pod;
  ctr.container = "nginx";
  ctr.name = "c1";
  ctr.cgroup_path = "/kubepods/poduid1/c1";
  t.cadvisor = {pod, ctr};
  return t;
}

uint64_t FakeId(const std::string& path) {
  if (path == "/kubepods/poduid1") return 10;
  if (path == "/kubepods/poduid1/c1") return 11;
  return 0;
}

const v1::Metric* Find(const google::protobuf::RepeatedPtrField<v1::Metric>& ms,
                       const std::string& name) {
  for (const v1::Metric& m : ms) {
    if (m.name() == name) return &m;
  }
  return nullptr;
}

TEST(CriMetricsTest, PodAndContainerMetricsFromTheSnapshot) {
  ebpf::StatsSnapshot snap;
  snap.cgroups[11].cpu_ns = 1'500'000'000;
  snap.cgroups[11].net_tx_bytes = 4096;
  snap.cgroups[11].runq_latency.count = 3;
  snap.cgroups[11].runq_latency.sum_ns = 9000;
  snap.cgroups[10].exec_count = 1;
  v1::ListPodSandboxMetricsResponse r = BuildPodSandboxMetrics(Targets(), snap, FakeId, 77);
  ASSERT_EQ(r.pod_metrics_size(), 1);
  const v1::PodSandboxMetrics& pm = r.pod_metrics(0);
  EXPECT_EQ(pm.pod_sandbox_id(), "sb1");
  const v1::Metric* exec = Find(pm.metrics(), "berth_cgroup_exec_total");
  ASSERT_NE(exec, nullptr);
  EXPECT_EQ(exec->value().value(), 1u);
  EXPECT_EQ(exec->timestamp(), 77);
  EXPECT_EQ(exec->metric_type(), v1::COUNTER);
  ASSERT_EQ(exec->label_values_size(), 3);
  EXPECT_EQ(exec->label_values(0), "");
  EXPECT_EQ(exec->label_values(1), "default");
  EXPECT_EQ(exec->label_values(2), "web");
  ASSERT_EQ(pm.container_metrics_size(), 1);
  const v1::ContainerMetrics& cm = pm.container_metrics(0);
  EXPECT_EQ(cm.container_id(), "c1");
  EXPECT_EQ(Find(cm.metrics(), "berth_cgroup_cpu_nanoseconds_total")->value().value(),
            1'500'000'000u);
  EXPECT_EQ(Find(cm.metrics(), "berth_cgroup_network_transmit_bytes_total")->value().value(),
            4096u);
  EXPECT_EQ(Find(cm.metrics(), "berth_cgroup_runqueue_latency_nanoseconds_total")->value().value(),
            9000u);
  EXPECT_EQ(Find(cm.metrics(), "berth_cgroup_runqueue_latency_samples_total")->value().value(), 3u);
  EXPECT_EQ(Find(cm.metrics(), "berth_cgroup_cpu_nanoseconds_total")->label_values(0), "nginx");
  // Every metric reported is described, once.
  std::set<std::string> names;
  for (const CriMetricDef& d : CriMetricDefs()) EXPECT_TRUE(names.insert(d.name).second) << d.name;
  EXPECT_EQ(cm.metrics_size(), static_cast<int>(names.size()));
  for (const v1::Metric& m : cm.metrics()) EXPECT_EQ(names.count(m.name()), 1u) << m.name();
}

TEST(CriMetricsTest, UnknownCgroupGetsZeros) {
  StatsTargets t = Targets();
  v1::ListPodSandboxMetricsResponse r = BuildPodSandboxMetrics(
      t, ebpf::StatsSnapshot{}, [](const std::string&) { return 0; }, 1);
  ASSERT_EQ(r.pod_metrics_size(), 1);
  for (const v1::Metric& m : r.pod_metrics(0).metrics()) EXPECT_EQ(m.value().value(), 0u);
}

TEST(CriMetricsTest, ServiceForwardsOtherRpcsAndDescribesMetrics) {
  cri::testing::FakeRuntimeService base;
  CriMetricsService s(&base,
                      [] { return std::optional<ebpf::StatsSnapshot>(ebpf::StatsSnapshot{}); });
  absl::StatusOr<v1::VersionResponse> v = s.Version(v1::VersionRequest());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->runtime_name(), "fake-berth");
  base.SetError("StopPodSandbox", absl::UnimplementedError("StopPodSandbox"));
  EXPECT_EQ(s.StopPodSandbox(v1::StopPodSandboxRequest()).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(base.CallCount("StopPodSandbox"), 1);
  absl::StatusOr<v1::ListMetricDescriptorsResponse> d =
      s.ListMetricDescriptors(v1::ListMetricDescriptorsRequest());
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->descriptors_size(), static_cast<int>(CriMetricDefs().size()));
  EXPECT_EQ(d->descriptors(0).label_keys_size(), 3);
  EXPECT_FALSE(d->descriptors(0).help().empty());
  absl::StatusOr<v1::ListPodSandboxMetricsResponse> m =
      s.ListPodSandboxMetrics(v1::ListPodSandboxMetricsRequest());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->pod_metrics_size(), 0);

  CriMetricsService off(&base, nullptr);
  d = off.ListMetricDescriptors(v1::ListMetricDescriptorsRequest());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->descriptors_size(), 0);
}

TEST(CriMetricsTest, TrackedSubtreeOfPodCgroups) {
  EXPECT_EQ(TrackedSubtreeOf("/r/kubepods/besteffort/poduid1"), "/r/kubepods");
  EXPECT_EQ(TrackedSubtreeOf("/kubepods/poduid1"), "/kubepods");
  EXPECT_EQ(TrackedSubtreeOf("kubepods.slice/kubepods-burstable.slice/x.slice"), "/kubepods.slice");
  EXPECT_EQ(TrackedSubtreeOf("/berth/4dd2f0"), "/berth");
  EXPECT_EQ(TrackedSubtreeOf("/root-r/berth/4dd2f0"), "/root-r/berth");
  EXPECT_EQ(TrackedSubtreeOf("/lonely"), "/lonely");
  EXPECT_EQ(TrackedSubtreeOf("/"), "");
  EXPECT_EQ(TrackedSubtreeOf(""), "");
}

// RunPodSandbox: the new sandbox's cgroup (verbose status) goes to `track`; failures do not.
class SandboxRuntime : public cri::testing::FakeRuntimeService {
 public:
  SandboxRuntime() {
    OnRunPodSandbox(
        [](const v1::RunPodSandboxRequest& req) -> absl::StatusOr<v1::RunPodSandboxResponse> {
          if (req.config().metadata().name() == "bad") return absl::InternalError("no");
          v1::RunPodSandboxResponse r;
          r.set_pod_sandbox_id("sb-" + req.config().metadata().name());
          return r;
        });
    OnPodSandboxStatus(
        [](const v1::PodSandboxStatusRequest& req) -> absl::StatusOr<v1::PodSandboxStatusResponse> {
          EXPECT_TRUE(req.verbose());
          v1::PodSandboxStatusResponse r;
          (*r.mutable_info())["info"] =
              nlohmann::json{{"cgroupPath", "/r/kubepods/pod" + req.pod_sandbox_id()}}.dump();
          return r;
        });
  }
};

TEST(CriMetricsTest, RunPodSandboxReportsTheSandboxCgroup) {
  SandboxRuntime rt;
  std::vector<std::string> tracked;
  CriMetricsService svc(&rt, nullptr, [&](const std::string& cg) { tracked.push_back(cg); });
  v1::RunPodSandboxRequest req;
  req.mutable_config()->mutable_metadata()->set_name("web");
  auto resp = svc.RunPodSandbox(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->pod_sandbox_id(), "sb-web");
  req.mutable_config()->mutable_metadata()->set_name("bad");
  EXPECT_FALSE(svc.RunPodSandbox(req).ok());
  EXPECT_EQ(tracked, std::vector<std::string>{"/r/kubepods/podsb-web"});
}

}  // namespace
}  // namespace berth::kubelet
