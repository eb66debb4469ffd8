#include "kubelet/stats_source.h"

#include <nlohmann/json.hpp>

#include "cri/testing/fake_cri.h"
#include "gtest/gtest.h"
#include "metrics/registry.h"

namespace berth::kubelet {
namespace {

namespace v1 = ::runtime::v1;

// A runtime with one ready sandbox holding one running container, plus a running container
// of an unknown sandbox (and a not-ready sandbox and an exited container, filtered out).
class FakeRuntime : public cri::testing::FakeRuntimeService {
 public:
  FakeRuntime() {
    Sandbox sb;
    sb.config.mutable_metadata()->set_name("web");
    sb.config.mutable_metadata()->set_namespace_("default");
    sb.config.mutable_metadata()->set_uid("uid1");
    sb.created_at = 2'000'000'000;
    sb.info = nlohmann::json{{"pid", 42}, {"cgroupPath", "/root/kubepods/poduid1"}}.dump();
    AddSandbox("sb1", sb);
    AddSandbox("sb0", {.state = v1::SANDBOX_NOTREADY});
    Container c;
    c.sandbox_id = "sb1";
    c.config.mutable_metadata()->set_name("nginx");
    c.config.mutable_image()->set_image("docker.io/library/nginx:1");
    c.state = v1::CONTAINER_RUNNING;
    c.created_at = 3'000'000'000;
    c.info = nlohmann::json{{"pid", 43}, {"cgroupPath", "/root/kubepods/poduid1/c1"}}.dump();
    AddContainer("c1", c);
    AddContainer("c2", {.sandbox_id = "gone", .state = v1::CONTAINER_RUNNING});
    AddContainer("c3", {.sandbox_id = "sb1", .state = v1::CONTAINER_EXITED});
  }
};

TEST(StatsSourceTest, ListsSandboxesAndContainersWithCgroups) {
  FakeRuntime rt;
  absl::StatusOr<StatsTargets> t = ListStatsTargets(&rt);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->cadvisor.size(), 2u);
  EXPECT_EQ(t->cadvisor[0].container, "");
  EXPECT_EQ(t->cadvisor[0].pod, "web");
  EXPECT_EQ(t->cadvisor[0].namespace_, "default");
  EXPECT_EQ(t->cadvisor[0].cgroup_path, "/root/kubepods/poduid1");
  EXPECT_EQ(t->cadvisor[0].network_pid, 42);
  EXPECT_EQ(t->cadvisor[1].container, "nginx");
  EXPECT_EQ(t->cadvisor[1].name, "c1");
  EXPECT_EQ(t->cadvisor[1].image, "docker.io/library/nginx:1");
  EXPECT_EQ(t->cadvisor[1].cgroup_path, "/root/kubepods/poduid1/c1");
  EXPECT_EQ(t->cadvisor[1].network_pid, 0);
  EXPECT_DOUBLE_EQ(t->cadvisor[1].start_time_seconds, 3.0);
  ASSERT_EQ(t->pods.size(), 1u);
  EXPECT_EQ(t->pods[0].uid, "uid1");
  EXPECT_DOUBLE_EQ(t->pods[0].start_time_seconds, 2.0);
  ASSERT_EQ(t->pods[0].containers.size(), 1u);
  EXPECT_EQ(t->pods[0].containers[0].name, "nginx");
  EXPECT_EQ(t->pods[0].containers[0].cgroup_path, "/root/kubepods/poduid1/c1");
}

// With a cache, a scrape asks for each id's verbose status once; gone ids leave the cache.
TEST(StatsSourceTest, CacheMakesRepeatedListingsStatusFree) {
  FakeRuntime rt;
  StatsInfoCache cache;
  absl::StatusOr<StatsTargets> first = ListStatsTargets(&rt, &cache);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(rt.CallCount("PodSandboxStatus"), 1);
  EXPECT_EQ(rt.CallCount("ContainerStatus"), 1);
  EXPECT_EQ(cache.size(), 2u);
  absl::StatusOr<StatsTargets> second = ListStatsTargets(&rt, &cache);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(rt.CallCount("PodSandboxStatus"), 1);
  EXPECT_EQ(rt.CallCount("ContainerStatus"), 1);
  ASSERT_EQ(second->cadvisor.size(), 2u);
  EXPECT_EQ(second->cadvisor[0].cgroup_path, "/root/kubepods/poduid1");
  EXPECT_EQ(second->cadvisor[0].network_pid, 42);
  EXPECT_EQ(second->cadvisor[1].cgroup_path, "/root/kubepods/poduid1/c1");
  EXPECT_EQ(second->cadvisor[1].image, "docker.io/library/nginx:1");
  rt.ExitContainer("c1", 0);
  rt.ExitContainer("c2", 0);
  absl::StatusOr<StatsTargets> third = ListStatsTargets(&rt, &cache);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->cadvisor.size(), 1u);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_FALSE(cache.Find("c1").has_value());
}

TEST(StatsSourceTest, EbpfFamiliesJoinCgroupIdsAndSkipUnknown) {
  FakeRuntime rt;
  absl::StatusOr<StatsTargets> t = ListStatsTargets(&rt);
  ASSERT_TRUE(t.ok());
  auto owners = CgroupOwners(*t, [](const std::string& path) -> uint64_t {
    return path == "/root/kubepods/poduid1/c1" ? 100 : 0;
  });
  ASSERT_EQ(owners.size(), 1u);
  ebpf::StatsSnapshot snap;
  ebpf::CgroupStats& s = snap.cgroups[100];
  s.cgroup_id = 100;
  s.cpu_ns = 1'500'000'000;
  s.exec_count = 3;
  s.runq_latency.buckets[0] = 2;  // < 1us
  s.runq_latency.buckets[3] = 1;  // < 8us
  s.runq_latency.count = 3;
  s.runq_latency.sum_ns = 9000;
  s.net_tx_bytes = 52'428'800;
  s.net_rx_packets = 11;
  s.io_latency.buckets[10] = 4;  // < 1.024ms
  s.io_latency.count = 4;
  s.io_latency.sum_ns = 2'000'000;
  snap.cgroups[200].exec_count = 7;  // unknown cgroup
  snap.oom_kills.push_back(ebpf::OomKill{100, "stress", 5, 0, {}});
  snap.oom_kills.push_back(ebpf::OomKill{200, "other", 6, 0, {}});

  metrics::Registry r;
  auto families = BuildEbpfFamilies(snap, owners);
  r.AddCollector([families](std::vector<metrics::FamilySnapshot>* out) {
    out->insert(out->end(), families.begin(), families.end());
  });
  std::string text = r.Expose();
  const std::string l = "container=\"nginx\",namespace=\"default\",pod=\"web\"";
  EXPECT_NE(text.find("berth_cgroup_cpu_seconds_total{" + l + "} 1.5\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cgroup_exec_total{" + l + "} 3\n"), std::string::npos) << text;
  EXPECT_EQ(text.find(" 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("berth_cgroup_runqueue_latency_seconds_bucket{" + l + ",le=\"1e-06\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cgroup_runqueue_latency_seconds_bucket{" + l + ",le=\"8e-06\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cgroup_runqueue_latency_seconds_bucket{" + l + ",le=\"+Inf\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cgroup_runqueue_latency_seconds_count{" + l + "} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("berth_oom_kills_total{" + l + ",command=\"stress\"} 1\n"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("other"), std::string::npos);
  EXPECT_NE(text.find("berth_cgroup_network_transmit_bytes_total{" + l + "} 52428800\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cgroup_network_receive_packets_total{" + l + "} 11\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cgroup_io_latency_seconds_bucket{" + l + ",le=\"0.000512\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cgroup_io_latency_seconds_bucket{" + l + ",le=\"0.001024\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cgroup_io_latency_seconds_sum{" + l + "} 0.002\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE berth_cgroup_runqueue_latency_seconds histogram"), std::string::npos);
}

}  // namespace
}  // namespace berth::kubelet
