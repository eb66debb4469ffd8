#include "metrics/registry.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace berth::metrics {
namespace {

TEST(RegistryTest, GoldenExposition) {
  Registry r;
  auto* requests = r.AddCounter("berth_cri_requests_total", "CRI requests by method and code.",
                                {"method", "code"});
  requests->WithLabelValues({"Version", "OK"})->Inc();
  requests->WithLabelValues({"Version", "OK"})->Inc(2);
  requests->WithLabelValues({"ListPodSandbox", "NotFound"})->Inc();
  auto* g = r.AddGauge("a_gauge", "A gauge.");
  g->WithLabelValues({})->Set(-1.5);
  auto* h = r.AddHistogram("lat_seconds", "Latency.", {"method"}, {0.1, 1});
  auto* hv = h->WithLabelValues({"Version"});
  hv->Observe(0.05);
  hv->Observe(0.1);  // le is inclusive
  hv->Observe(0.5);
  hv->Observe(7);
  r.AddGauge("never_set", "No children, not exposed.", {"x"});

  EXPECT_EQ(r.Expose(),
            "# HELP a_gauge A gauge.\n"
            "# TYPE a_gauge gauge\n"
            "a_gauge -1.5\n"
            "# HELP berth_cri_requests_total CRI requests by method and code.\n"
            "# TYPE berth_cri_requests_total counter\n"
            "berth_cri_requests_total{method=\"ListPodSandbox\",code=\"NotFound\"} 1\n"
            "berth_cri_requests_total{method=\"Version\",code=\"OK\"} 3\n"
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{method=\"Version\",le=\"0.1\"} 2\n"
            "lat_seconds_bucket{method=\"Version\",le=\"1\"} 3\n"
            "lat_seconds_bucket{method=\"Version\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{method=\"Version\"} 7.65\n"
            "lat_seconds_count{method=\"Version\"} 4\n");
}

TEST(RegistryTest, EscapesHelpAndLabelValues) {
  Registry r;
  r.AddCounter("esc_total", "back\\slash and\nnewline \"quotes\" kept", {"path"})
      ->WithLabelValues({"C:\\dir\n\"q\""})
      ->Inc();
  EXPECT_EQ(r.Expose(),
            "# HELP esc_total back\\\\slash and\\nnewline \"quotes\" kept\n"
            "# TYPE esc_total counter\n"
            "esc_total{path=\"C:\\\\dir\\n\\\"q\\\"\"} 1\n");
}

TEST(RegistryTest, HistogramBuckets) {
  Histogram h({1, 2, 4});
  for (double v : {0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 100.0}) h.Observe(v);
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{2, 4, 6, 7}));
  EXPECT_EQ(h.Count(), 7u);
  EXPECT_DOUBLE_EQ(h.Sum(), 111.5);
  EXPECT_EQ(ExponentialBuckets(0.001, 2, 4), (std::vector<double>{0.001, 0.002, 0.004, 0.008}));
  EXPECT_EQ(DefaultBuckets().size(), 11u);
}

TEST(RegistryTest, FormatValue) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(100000), "100000");
  EXPECT_EQ(FormatValue(1.5e21), "1.5e+21");
  EXPECT_EQ(FormatValue(0.00001), "1e-05");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
}

TEST(RegistryTest, Names) {
  EXPECT_TRUE(IsValidMetricName("berth:cri_x_total"));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_TRUE(IsValidLabelName("pod_uid"));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(RegistryTest, SameRegistrationReturnsSameFamily) {
  Registry r;
  auto* a = r.AddCounter("x_total", "X.", {"l"});
  EXPECT_EQ(a, r.AddCounter("x_total", "X.", {"l"}));
}

TEST(RegistryDeathTest, ConflictingRegistrationCrashes) {
  Registry r;
  r.AddCounter("x_total", "X.", {"l"});
  EXPECT_DEATH(r.AddGauge("x_total", "X.", {"l"}), "registered twice");
  EXPECT_DEATH(r.AddHistogram("h", "H.", {"le"}), "reserved");
  EXPECT_DEATH(r.AddCounter("y_total", "Y.", {"a"})->WithLabelValues({"1", "2"}), "label values");
}

TEST(RegistryTest, RemoveChild) {
  Registry r;
  auto* f = r.AddGauge("g", "G.", {"c"});
  f->WithLabelValues({"a"})->Set(1);
  f->WithLabelValues({"b"})->Set(2);
  f->Remove({"a"});
  EXPECT_EQ(r.Expose(), "# HELP g G.\n# TYPE g gauge\ng{c=\"b\"} 2\n");
}

TEST(RegistryTest, CollectorsAreSortedIntoOutput) {
  Registry r;
  r.AddCounter("m_total", "M.")->WithLabelValues({})->Inc();
  int calls = 0;
  r.AddCollector([&calls](std::vector<FamilySnapshot>* out) {
    ++calls;
    out->push_back({"a_collected", "Collected.", MetricType::kGauge, {{"", {{"k", "v"}}, 5}}});
    out->push_back(
        {"m_total", "Duplicate of a registered family.", MetricType::kGauge, {{"", {}, 9}}});
    out->push_back({"bad-name", "Invalid.", MetricType::kGauge, {{"", {}, 1}}});
  });
  EXPECT_EQ(r.Expose(),
            "# HELP a_collected Collected.\n"
            "# TYPE a_collected gauge\n"
            "a_collected{k=\"v\"} 5\n"
            "# HELP m_total M.\n"
            "# TYPE m_total counter\n"
            "m_total 1\n");
  EXPECT_EQ(calls, 1);
}

TEST(RegistryTest, ConcurrentIncrements) {
  Registry r;
  auto* f = r.AddCounter("c_total", "C.", {"t"});
  auto* h = r.AddHistogram("h_seconds", "H.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([f, h] {
      for (int i = 0; i < 10000; ++i) {
        f->WithLabelValues({"x"})->Inc();
        h->WithLabelValues({})->Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(f->WithLabelValues({"x"})->Value(), 40000);
  EXPECT_EQ(h->WithLabelValues({})->Count(), 40000u);
  EXPECT_DOUBLE_EQ(h->WithLabelValues({})->Sum(), 20000);
}

}  // namespace
}  // namespace berth::metrics
