#include "kubelet/node_eviction.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace berth::kubelet {
namespace {

using api::Json;

constexpr int64_t kMi = 1 << 20;
constexpr int64_t kGi = 1 << 30;

api::Pod MakePod(const std::string& name, const std::string& memory_request = "",
                 int32_t priority = 0) {
  Json c = {{"name", "main"}, {"image", "busybox"}};
  if (!memory_request.empty()) c["resources"] = {{"requests", {{"memory", memory_request}}}};
  Json j = {{"metadata", {{"name", name}, {"namespace", "ns"}, {"uid", "uid-" + name}}},
            {"spec", {{"containers", Json::array({c})}, {"priority", priority}}}};
  absl::StatusOr<api::Pod> p = api::ParsePod(j);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : api::Pod{};
}

std::vector<std::string> Names(const std::vector<api::Pod>& pods) {
  std::vector<std::string> out;
  for (const api::Pod& p : pods) out.push_back(p.metadata.name);
  return out;
}

TEST(ParseThresholdConfig, Table) {
  struct Case {
    std::map<std::string, std::string> hard, soft, grace, reclaim;
    std::string error;  // substring; "" = ok
    size_t count = 0;
  };
  const Case cases[] = {
      {{{"memory.available", "100Mi"}}, {}, {}, {}, "", 1},
      {{{"nodefs.available", "10%"}, {"pid.available", "5%"}}, {}, {}, {}, "", 2},
      {{{"nodefs.available", "0%"}, {"imagefs.available", "100%"}}, {}, {}, {}, "", 0},
      {{{"memory.available", "-1Mi"}}, {}, {}, {}, "must be positive", 0},
      {{{"memory.available", "0"}}, {}, {}, {}, "must be positive", 0},
      {{{"memory.available", "110%"}}, {}, {}, {}, "must be <= 100%", 0},
      {{{"memory.available", "abc"}}, {}, {}, {}, "memory.available", 0},
      {{{"memory.availabel", "1Mi"}},
       {},
       {},
       {},
       "unsupported eviction signal memory.availabel",
       0},
      {{}, {{"memory.available", "1Gi"}}, {}, {}, "grace period must be specified", 0},
      {{}, {{"memory.available", "1Gi"}}, {{"memory.available", "1m30s"}}, {}, "", 1},
      {{}, {{"memory.available", "1Gi"}}, {{"memory.available", "soon"}}, {}, "not a duration", 0},
      {{{"memory.available", "1Gi"}}, {}, {}, {{"memory.available", "-1Mi"}}, "positive", 0},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<Threshold>> t =
        ParseThresholdConfig(c.hard, c.soft, c.grace, c.reclaim);
    if (c.error.empty()) {
      ASSERT_TRUE(t.ok()) << t.status();
      EXPECT_EQ(t->size(), c.count);
    } else {
      ASSERT_FALSE(t.ok());
      EXPECT_NE(t.status().message().find(c.error), std::string::npos) << t.status();
    }
  }
}

TEST(ParseThresholdConfig, ValuesGraceAndMinReclaim) {
  absl::StatusOr<std::vector<Threshold>> t =
      ParseThresholdConfig({{"memory.available", "100Mi"}}, {{"memory.available", "10%"}},
                           {{"memory.available", "1m30s"}}, {{"memory.available", "5%"}});
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_TRUE((*t)[0].hard());
  EXPECT_EQ((*t)[0].value.quantity, 100 * kMi);
  EXPECT_FALSE((*t)[1].hard());
  EXPECT_EQ((*t)[1].grace_period, absl::Seconds(90));
  EXPECT_FLOAT_EQ((*t)[1].value.percentage, 0.1f);
  ASSERT_TRUE((*t)[1].min_reclaim.has_value());
  EXPECT_EQ(ThresholdQuantity(*(*t)[1].min_reclaim, 1000), 50);
}

TEST(ParseMapFlag, LangleAndEquals) {
  auto m = ParseMapFlag("memory.available<100Mi, nodefs.available<10%", '<');
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["memory.available"], "100Mi");
  EXPECT_EQ((*m)["nodefs.available"], "10%");
  EXPECT_FALSE(ParseMapFlag("memory.available=100Mi", '<').ok());
  EXPECT_FALSE(ParseMapFlag("<1", '<').ok());
  auto g = ParseMapFlag("memory.available=1m30s", '=');
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)["memory.available"], "1m30s");
  EXPECT_TRUE(ParseMapFlag("", '<')->empty());
}

TEST(MakeObservations, Signals) {
  NodeStats s;
  s.memory_capacity = 8 * kGi;
  s.memory_working_set = 3 * kGi;
  s.nodefs = NodeStats::Fs{100 * kGi, 20 * kGi, 1000, 100};
  s.imagefs = NodeStats::Fs{50 * kGi, 5 * kGi, 500, 400};
  s.max_pids = 4194304;
  s.running_pids = 4194300;
  Observations o = MakeObservations(s);
  EXPECT_EQ(o[Signal::kMemoryAvailable].available, 5 * kGi);
  EXPECT_EQ(o[Signal::kMemoryAvailable].capacity, 8 * kGi);
  EXPECT_EQ(o[Signal::kNodeFsAvailable].available, 20 * kGi);
  EXPECT_EQ(o[Signal::kNodeFsInodesFree].available, 100);
  EXPECT_EQ(o[Signal::kImageFsInodesFree].capacity, 500);
  EXPECT_EQ(o[Signal::kPidAvailable].available, 4);
  // Unknown readings: no observation.
  EXPECT_TRUE(MakeObservations(NodeStats{}).empty());
  // Working set above capacity: clamped at 0.
  s.memory_working_set = 9 * kGi;
  EXPECT_EQ(MakeObservations(s)[Signal::kMemoryAvailable].available, 0);
}

TEST(ThresholdsMet, PercentagesAndMinReclaim) {
  auto t = ParseThresholdConfig({{"nodefs.available", "10%"}, {"memory.available", "1Gi"}}, {}, {},
                                {{"nodefs.available", "5Gi"}});
  ASSERT_TRUE(t.ok());
  Observations o;
  o[Signal::kNodeFsAvailable] = {12 * kGi, 100 * kGi};  // 10% = 10Gi < 12Gi
  o[Signal::kMemoryAvailable] = {2 * kGi, 8 * kGi};
  EXPECT_TRUE(ThresholdsMet(*t, o, false).empty());
  // With min-reclaim 10Gi + 5Gi > 12Gi: still met (pressure not yet resolved).
  auto met = ThresholdsMet(*t, o, true);
  ASSERT_EQ(met.size(), 1u);
  EXPECT_EQ(met[0].signal, Signal::kNodeFsAvailable);
  o[Signal::kNodeFsAvailable].available = 9 * kGi;
  o[Signal::kMemoryAvailable].available = 1 * kGi - 1;
  EXPECT_EQ(ThresholdsMet(*t, o, false).size(), 2u);
  // No observation for a signal: never met.
  o.erase(Signal::kMemoryAvailable);
  EXPECT_EQ(ThresholdsMet(*t, o, false).size(), 1u);
}

TEST(RankPods, MemoryAboveRequestsThenPriorityThenUsage) {
  std::vector<api::Pod> pods = {
      MakePod("guaranteed-under", "512Mi"),  // uses 100Mi of 512Mi requested
      MakePod("besteffort-small"),           // uses 10Mi, no request: above
      MakePod("burstable-over", "100Mi"),    // uses 300Mi: above by 200Mi
      MakePod("high-priority", "", 1000),    // uses 1Gi, above, but higher priority
      MakePod("besteffort-big"),             // uses 400Mi: above by 400Mi
  };
  std::map<std::string, PodUsage> usage;
  usage["uid-guaranteed-under"].memory = 100 * kMi;
  usage["uid-besteffort-small"].memory = 10 * kMi;
  usage["uid-burstable-over"].memory = 300 * kMi;
  usage["uid-high-priority"].memory = 1 * kGi;
  usage["uid-besteffort-big"].memory = 400 * kMi;
  RankPods(Signal::kMemoryAvailable, usage, &pods);
  EXPECT_EQ(Names(pods),
            (std::vector<std::string>{"besteffort-big", "burstable-over", "besteffort-small",
                                      "high-priority", "guaranteed-under"}));
}

TEST(RankPods, UnmeasuredFirstAndPids) {
  std::vector<api::Pod> pods = {MakePod("a"), MakePod("b"), MakePod("c", "", -5)};
  std::map<std::string, PodUsage> usage;
  usage["uid-a"].disk = 10;
  usage["uid-c"].disk = 5;
  RankPods(Signal::kNodeFsAvailable, usage, &pods);
  EXPECT_EQ(Names(pods), (std::vector<std::string>{"b", "c", "a"}));

  usage["uid-a"].processes = 5;
  usage["uid-b"].processes = 50;
  usage["uid-c"].processes = 1;
  RankPods(Signal::kPidAvailable, usage, &pods);
  EXPECT_EQ(Names(pods), (std::vector<std::string>{"c", "b", "a"}));
}

TEST(MakeEvictionMessage, UpstreamFormat) {
  api::Pod pod = MakePod("web", "100Mi");
  PodUsage u;
  u.memory = 300 * kMi;
  u.container_memory["main"] = 300 * kMi;
  auto t = ParseThresholdConfig({{"memory.available", "500Mi"}}, {}, {}, {});
  ASSERT_TRUE(t.ok());
  Observations o;
  o[Signal::kMemoryAvailable] = {400 * kMi, 8 * kGi};
  EvictionMessage m = MakeEvictionMessage(Signal::kMemoryAvailable, pod, &u, *t, o);
  EXPECT_EQ(m.message,
            "The node was low on resource: memory. Threshold quantity: 500Mi, available: 400Mi. "
            "Container main was using 300Mi, request is 100Mi, has larger consumption of memory. ");
  EXPECT_EQ(m.annotations["offending_containers"], "main");
  EXPECT_EQ(m.annotations["offending_containers_usage"], "300Mi");
  EXPECT_EQ(m.annotations["starved_resource"], "memory");

  auto disk = ParseThresholdConfig({{"nodefs.available", "10%"}}, {}, {}, {});
  ASSERT_TRUE(disk.ok());
  o[Signal::kNodeFsAvailable] = {5 * kGi, 100 * kGi};
  u.container_disk["main"] = 2 * kGi;
  m = MakeEvictionMessage(Signal::kNodeFsAvailable, pod, &u, *disk, o);
  EXPECT_EQ(m.message,
            // int64(capacity * float32(0.1)), as upstream's float32 percentage gives.
            "The node was low on resource: ephemeral-storage. Threshold quantity: 10737418400, "
            "available: 5Gi. Container main was using 2Gi, request is 0, has larger consumption of "
            "ephemeral-storage. ");
}

// A scripted node for the manager: stats, pods and usage set by the test, evictions recorded.
struct Node {
  NodeStats stats;
  std::vector<api::Pod> pods;
  std::map<std::string, PodUsage> usage;
  std::vector<std::pair<std::string, int64_t>> evicted;  // name, grace
  std::vector<std::string> events;
  int reclaims = 0;
  std::function<void()> reclaim_effect;
  absl::Time now = absl::FromUnixSeconds(1700000000);

  NodeEvictionManager::Deps Deps() {
    NodeEvictionManager::Deps d;
    d.node_stats = [this]() -> absl::StatusOr<NodeStats> { return stats; };
    d.pods = [this] { return pods; };
    d.usage = [this] { return usage; };
    d.evict = [this](const api::Pod& p, const EvictionMessage&, int64_t grace) {
      evicted.emplace_back(p.metadata.name, grace);
      return true;
    };
    d.disk_reclaim.push_back([this] {
      ++reclaims;
      if (reclaim_effect) reclaim_effect();
      return absl::OkStatus();
    });
    d.node_event = [this](const std::string& r, const std::string& m) {
      events.push_back(r + ": " + m);
    };
    d.now = [this] { return now; };
    return d;
  }
};

TEST(NodeEvictionManager, HardThresholdEvictsOnePodAndSetsConditionUntilTransition) {
  Node n;
  n.stats.memory_capacity = 8 * kGi;
  n.stats.memory_working_set = 7 * kGi + 900 * kMi;  // 124Mi available
  n.pods = {MakePod("a", "1Gi"), MakePod("b")};
  n.usage["uid-a"].memory = 100 * kMi;
  n.usage["uid-b"].memory = 50 * kMi;
  auto t = ParseThresholdConfig({{"memory.available", "200Mi"}}, {}, {}, {});
  ASSERT_TRUE(t.ok());
  NodeEvictionManager m({.thresholds = *t, .pressure_transition_period = absl::Seconds(30)},
                        n.Deps());
  absl::StatusOr<std::string> r = m.Synchronize();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "uid-b");  // best effort (above its 0 request) before a under its request
  ASSERT_EQ(n.evicted.size(), 1u);
  EXPECT_EQ(n.evicted[0].second, 1);  // hard: immediate grace period
  EXPECT_EQ(n.reclaims, 0);           // memory: no node-level reclaim
  EXPECT_EQ(m.Conditions(), std::set<std::string>{"MemoryPressure"});
  EXPECT_EQ(n.events,
            std::vector<std::string>{"EvictionThresholdMet: Attempting to reclaim memory"});

  // Pressure gone: the condition holds for the transition period, no eviction.
  n.stats.memory_working_set = 4 * kGi;
  n.now += absl::Seconds(10);
  EXPECT_EQ(*m.Synchronize(), "");
  EXPECT_EQ(m.Conditions(), std::set<std::string>{"MemoryPressure"});
  n.now += absl::Seconds(25);
  EXPECT_EQ(*m.Synchronize(), "");
  EXPECT_TRUE(m.Conditions().empty());
  EXPECT_EQ(n.evicted.size(), 1u);
}

TEST(NodeEvictionManager, SoftThresholdWaitsForGracePeriod) {
  Node n;
  n.stats.max_pids = 1000;
  n.stats.running_pids = 950;
  api::Pod pod = MakePod("forky");
  pod.spec.termination_grace_period_seconds = 5;
  n.pods = {pod};
  n.usage["uid-forky"].processes = 900;
  auto t = ParseThresholdConfig({}, {{"pid.available", "10%"}}, {{"pid.available", "1m"}}, {});
  ASSERT_TRUE(t.ok());
  NodeEvictionManager m({.thresholds = *t, .max_pod_grace_period_s = 30}, n.Deps());
  EXPECT_EQ(*m.Synchronize(), "");
  EXPECT_EQ(m.Conditions(), std::set<std::string>{"PIDPressure"});  // condition at once
  n.now += absl::Seconds(59);
  EXPECT_EQ(*m.Synchronize(), "");
  n.now += absl::Seconds(1);
  EXPECT_EQ(*m.Synchronize(), "uid-forky");
  ASSERT_EQ(n.evicted.size(), 1u);
  EXPECT_EQ(n.evicted[0].second, 5);  // min(evictionMaxPodGracePeriod, the pod's grace)
}

TEST(NodeEvictionManager, DiskPressureReclaimsBeforeEvicting) {
  Node n;
  n.stats.nodefs = NodeStats::Fs{100 * kGi, 5 * kGi, 1000, 900};
  n.pods = {MakePod("writer")};
  n.usage["uid-writer"].disk = 3 * kGi;
  auto t =
      ParseThresholdConfig({{"nodefs.available", "10%"}}, {}, {}, {{"nodefs.available", "1Gi"}});
  ASSERT_TRUE(t.ok());
  NodeEvictionManager m({.thresholds = *t}, n.Deps());
  // GC frees enough (past threshold + min-reclaim): no eviction.
  n.reclaim_effect = [&n] { n.stats.nodefs->available_bytes = 12 * kGi; };
  EXPECT_EQ(*m.Synchronize(), "");
  EXPECT_EQ(n.reclaims, 1);
  EXPECT_TRUE(n.evicted.empty());
  EXPECT_EQ(m.Conditions(), std::set<std::string>{"DiskPressure"});
  // GC frees too little: the pod is evicted.
  n.stats.nodefs->available_bytes = 5 * kGi;
  n.reclaim_effect = [&n] { n.stats.nodefs->available_bytes = 10 * kGi + 1; };
  EXPECT_EQ(*m.Synchronize(), "uid-writer");
  EXPECT_EQ(n.reclaims, 2);
}

TEST(NodeEvictionManager, CriticalPodsAreNotEvicted) {
  Node n;
  n.stats.nodefs = NodeStats::Fs{100 * kGi, 1 * kGi, 1000, 900};
  n.pods = {MakePod("system", "", 2000001000)};
  auto t = ParseThresholdConfig({{"nodefs.available", "10%"}}, {}, {}, {});
  ASSERT_TRUE(t.ok());
  NodeEvictionManager m({.thresholds = *t}, n.Deps());
  EXPECT_EQ(*m.Synchronize(), "");
  EXPECT_TRUE(n.evicted.empty());
}

TEST(MemoryNotifierThreshold, CapacityMinusThresholdPlusInactive) {
  auto t = ParseThresholdConfig({{"memory.available", "1Gi"}}, {}, {}, {});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(MemoryNotifierThreshold((*t)[0], 8 * kGi, 512 * kMi), 7 * kGi + 512 * kMi);
  EXPECT_EQ(MemoryNotifierThreshold((*t)[0], 512 * kMi, 0), std::nullopt);
}

}  // namespace
}  // namespace berth::kubelet
