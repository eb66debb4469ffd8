#include "metrics/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace berth::metrics {
namespace {

TEST(ProcessMetricsTest, ReadsSelf) {
  absl::StatusOr<ProcessStats> s = ReadProcessStats();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->resident_memory_bytes, 0);
  EXPECT_GE(s->virtual_memory_bytes, s->resident_memory_bytes);
  EXPECT_GE(s->open_fds, 3);
  rlimit lim;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  EXPECT_EQ(s->max_fds, static_cast<double>(lim.rlim_cur));
  double now = static_cast<double>(time(nullptr));
  EXPECT_LE(s->start_time_seconds, now + 1);
  EXPECT_GT(s->start_time_seconds, now - 3600);  // this test process started recently
  EXPECT_GE(s->cpu_seconds_total, 0);
}

TEST(ProcessMetricsTest, MissingProcessIsAnError) {
  absl::StatusOr<ProcessStats> s = ReadProcessStats("self", "/nonexistent-proc");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/nonexistent-proc"), absl::string_view::npos);
}

TEST(ProcessMetricsTest, ExposesClientGolangNames) {
  Registry r;
  RegisterProcessMetrics(&r);
  RegisterBuildInfo(&r, "0.1.0");
  std::string text = r.Expose();
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
                           "process_start_time_seconds "}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name << "\n" << text;
  }
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("berth_build_info{version=\"0.1.0\"} 1\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace berth::metrics
