#include "metrics/metrics_server.h"

#include <httplib.h>

#include "base/process.h"
#include "gtest/gtest.h"
#include "metrics/process_metrics.h"

namespace berth::metrics {
namespace {

TEST(MetricsServerTest, ServesMetricsAndHealthzOnPortZero) {
  Registry r;
  r.AddCounter("berth_test_total", "Test counter.", {"k"})->WithLabelValues({"v"})->Inc(3);
  MetricsServer server(&r, "127.0.0.1:0");
  ASSERT_TRUE(server.Start().ok());
  ASSERT_GT(server.port(), 0);

  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res->body.find("berth_test_total{k=\"v\"} 3\n"), std::string::npos) << res->body;

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");

  EXPECT_EQ(client.Get("/nope")->status, 404);
  server.Stop();
  server.Stop();  // idempotent
  EXPECT_FALSE(httplib::Client("127.0.0.1", server.port()).Get("/healthz"));
}

TEST(MetricsServerTest, ServesExtraRegistriesAndHandlers) {
  Registry main_registry, second;
  main_registry.AddGauge("berth_main", "Main.", {})->WithLabelValues({})->Set(1);
  second.AddGauge("container_test", "Second.", {})->WithLabelValues({})->Set(2);
  MetricsServer server(&main_registry, "127.0.0.1:0");
  server.AddRegistry("/metrics/cadvisor", &second);
  server.AddHandler(
      "/stats/summary", []() -> absl::StatusOr<std::string> { return std::string("{}"); },
      "application/json");
  server.AddHandler(
      "/broken", []() -> absl::StatusOr<std::string> { return absl::InternalError("boom"); },
      "application/json");
  ASSERT_TRUE(server.Start().ok());
  httplib::Client client("127.0.0.1", server.port());

  auto main_res = client.Get("/metrics");
  ASSERT_TRUE(main_res);
  EXPECT_NE(main_res->body.find("berth_main 1"), std::string::npos) << main_res->body;
  EXPECT_EQ(main_res->body.find("container_test"), std::string::npos) << main_res->body;

  auto cadvisor = client.Get("/metrics/cadvisor");
  ASSERT_TRUE(cadvisor);
  EXPECT_EQ(cadvisor->status, 200);
  EXPECT_NE(cadvisor->body.find("container_test 2"), std::string::npos) << cadvisor->body;
  EXPECT_EQ(cadvisor->body.find("berth_main"), std::string::npos) << cadvisor->body;

  auto summary = client.Get("/stats/summary");
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->status, 200);
  EXPECT_EQ(summary->body, "{}");
  EXPECT_EQ(summary->get_header_value("Content-Type"), "application/json");

  auto broken = client.Get("/broken");
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->status, 500);
  EXPECT_NE(broken->body.find("boom"), std::string::npos);
}

// Without a registry: the kubelet's healthz server (GET /healthz -> 200 "ok", nothing else).
TEST(MetricsServerTest, HealthzOnlyWithoutRegistry) {
  MetricsServer server(nullptr, "127.0.0.1:0", "healthz server");
  ASSERT_TRUE(server.Start().ok());
  httplib::Client client("127.0.0.1", server.port());
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");
  EXPECT_EQ(client.Get("/metrics")->status, 404);
  MetricsServer second(nullptr, "127.0.0.1:" + std::to_string(server.port()), "healthz server");
  absl::Status s = second.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("healthz server"), absl::string_view::npos) << s;
}

TEST(MetricsServerTest, StopRightAfterStartDoesNotHang) {
  Registry r;
  for (int i = 0; i < 20; ++i) {
    MetricsServer server(&r, "127.0.0.1:0");
    ASSERT_TRUE(server.Start().ok());
  }
}

TEST(MetricsServerTest, BadAddresses) {
  Registry r;
  EXPECT_EQ(MetricsServer(&r, "127.0.0.1").Start().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer(&r, "127.0.0.1:99999").Start().code(),
            absl::StatusCode::kInvalidArgument);
  MetricsServer first(&r, "127.0.0.1:0");
  ASSERT_TRUE(first.Start().ok());
  MetricsServer second(&r, "127.0.0.1:" + std::to_string(first.port()));
  EXPECT_EQ(second.Start().code(), absl::StatusCode::kUnavailable);
}

// The exposition of a registry with every metric type passes Prometheus' own linter.
TEST(MetricsServerTest, PromtoolAcceptsExposition) {
  absl::StatusOr<std::string> promtool = LookPath("promtool");
  if (!promtool.ok()) GTEST_SKIP() << "promtool (Debian package prometheus) not installed";
  Registry r;
  RegisterProcessMetrics(&r);
  RegisterBuildInfo(&r, "0.1.0");
  r.AddCounter("berth_cri_requests_total", "CRI requests by method and gRPC code.",
               {"method", "code"})
      ->WithLabelValues({"Version", "OK"})
      ->Inc();
  r.AddHistogram("berth_cri_request_duration_seconds", "CRI request latency in seconds.",
                 {"method"})
      ->WithLabelValues({"Version"})
      ->Observe(0.003);
  r.AddGauge("berth_test_escaped", "Label \"escaping\" \\ check.", {"path"})
      ->WithLabelValues({"a\\b\n\"c\""})
      ->Set(1);
  absl::StatusOr<RunResult> run = berth::Run({*promtool, "check", "metrics"}, r.Expose());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->out << run->err << "\n" << r.Expose();
  EXPECT_EQ(run->err, "") << run->out;
}

}  // namespace
}  // namespace berth::metrics
