#include "metrics/kubelet_metrics.h"

#include <string>

#include "gtest/gtest.h"

namespace berth::metrics {
namespace {

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(KubeletMetricsTest, UpstreamNamesLabelsAndBuckets) {
  Registry r;
  KubeletMetrics km = RegisterKubeletMetrics(&r);
  ASSERT_NE(km.pod_start_sli, nullptr);
  km.pod_start_sli->WithLabelValues({})->Observe(0.7);
  km.pod_start_total->WithLabelValues({})->Observe(0.7);
  km.pod_start->WithLabelValues({})->Observe(2.5);
  km.pod_worker->WithLabelValues({"create"})->Observe(0.2);
  km.pod_worker_start->WithLabelValues({})->Observe(0.001);
  km.runtime_operations->WithLabelValues({"run_podsandbox"})->Inc();
  km.runtime_operations_duration->WithLabelValues({"run_podsandbox"})->Observe(0.1);
  km.runtime_operations_errors->WithLabelValues({"run_podsandbox"})->Inc();
  ObserveCgroupManager(&km, "create", std::chrono::steady_clock::now());
  ObservePhaseSeconds(&km, kPhaseCniAdd, 0.003);
  std::string text = r.Expose();
  // podStartupDurationBuckets: 0.5 1 2 3 ... 3600.
  EXPECT_TRUE(Has(text, "kubelet_pod_start_sli_duration_seconds_bucket{le=\"0.5\"} 0\n"));
  EXPECT_TRUE(Has(text, "kubelet_pod_start_sli_duration_seconds_bucket{le=\"1\"} 1\n"));
  EXPECT_TRUE(Has(text, "kubelet_pod_start_sli_duration_seconds_bucket{le=\"3600\"} 1\n"));
  EXPECT_TRUE(Has(text, "kubelet_pod_start_total_duration_seconds_count 1\n"));
  EXPECT_TRUE(Has(text, "kubelet_pod_start_duration_seconds_bucket{le=\"2\"} 0\n"));
  EXPECT_TRUE(Has(text, "kubelet_pod_start_duration_seconds_bucket{le=\"3\"} 1\n"));
  // DefBuckets, operation_type.
  EXPECT_TRUE(Has(text,
                  "kubelet_pod_worker_duration_seconds_bucket{operation_type=\"create\","
                  "le=\"0.25\"} 1\n"));
  EXPECT_TRUE(Has(text, "kubelet_pod_worker_start_duration_seconds_count 1\n"));
  // ExponentialBuckets(.005, 2.5, 14): 0.005 0.0125 0.03125 0.078125 0.1953125 ...
  EXPECT_TRUE(Has(text,
                  "kubelet_runtime_operations_duration_seconds_bucket{operation_type="
                  "\"run_podsandbox\",le=\"0.078125\"} 0\n"));
  EXPECT_TRUE(Has(text,
                  "kubelet_runtime_operations_duration_seconds_bucket{operation_type="
                  "\"run_podsandbox\",le=\"0.1953125\"} 1\n"));
  EXPECT_TRUE(Has(text, "kubelet_runtime_operations_total{operation_type=\"run_podsandbox\"} 1\n"));
  EXPECT_TRUE(
      Has(text, "kubelet_runtime_operations_errors_total{operation_type=\"run_podsandbox\"} 1\n"));
  EXPECT_TRUE(Has(text, "# TYPE kubelet_cgroup_manager_duration_seconds histogram\n"));
  EXPECT_TRUE(Has(text,
                  "kubelet_cgroup_manager_duration_seconds_bucket{operation_type=\"create\","
                  "le=\"0.005\"}"));
  // berth's phases: 1 ms doubling.
  EXPECT_TRUE(Has(text,
                  "berth_pod_start_phase_duration_seconds_bucket{phase=\"cni_add\",le=\"0.002\"}"
                  " 0\n"));
  EXPECT_TRUE(Has(text,
                  "berth_pod_start_phase_duration_seconds_bucket{phase=\"cni_add\",le=\"0.004\"}"
                  " 1\n"));
  EXPECT_TRUE(Has(text,
                  "berth_pod_start_phase_duration_seconds_bucket{phase=\"cni_add\",le=\"16.384\"}"
                  " 1\n"));
}

TEST(KubeletMetricsTest, NullMetricsAreIgnored) {
  ObservePhaseSeconds(nullptr, kPhaseSandbox, 1);
  ObservePhase(nullptr, kPhaseSandbox, std::chrono::steady_clock::now());
  ObserveCgroupManager(nullptr, "create", std::chrono::steady_clock::now());
  KubeletMetrics empty = RegisterKubeletMetrics(nullptr);
  EXPECT_EQ(empty.pod_start_phase, nullptr);
  ObservePhaseSeconds(&empty, kPhaseSandbox, 1);
}

TEST(KubeletMetricsTest, RegisteringTwiceSharesTheFamilies) {
  Registry r;
  KubeletMetrics a = RegisterKubeletMetrics(&r);
  KubeletMetrics b = RegisterKubeletMetrics(&r);
  EXPECT_EQ(a.pod_start_phase, b.pod_start_phase);
  EXPECT_EQ(a.runtime_operations, b.runtime_operations);
}

}  // namespace
}  // namespace berth::metrics
