// Root-only: creates a real cgroup (every v1 controller used, plus the unified hierarchy in
// hybrid mode; or one v2 cgroup), runs a busy loop inside it, and reads it back through
// CgroupReader. Cleans up (kill, reap, rmdir) also on failure.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "base/process.h"
#include "base/status.h"
#include "metrics/cadvisor.h"
#include "metrics/cgroup_stats.h"
#include "metrics/summary.h"

#include <signal.h>
#include <sys/wait.h>

namespace berth::metrics {
namespace {

// Owns the test cgroup directories and the child process in them.
class TestCgroup {
 public:
  TestCgroup(const CgroupReader& reader, const std::string& path) {
    if (reader.mode() == CgroupMode::kV2) {
      dirs_.push_back(reader.Dir("", path));
    } else {
      for (const char* c : {"cpu", "cpuacct", "memory", "pids", "blkio"}) {
        dirs_.push_back(reader.Dir(c, path));
      }
      if (reader.mode() == CgroupMode::kHybrid) dirs_.push_back(reader.Dir("unified", path));
    }
  }
  ~TestCgroup() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (const std::string& d : dirs_) {
      // A killed task leaves the cgroup asynchronously; retry briefly.
      for (int i = 0; i < 100 && rmdir(d.c_str()) != 0 && errno == EBUSY; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  absl::Status Create() {
    for (const std::string& d : dirs_) RETURN_IF_ERROR(MkdirAll(d));
    return absl::OkStatus();
  }
  // Starts a shell that joins every cgroup, allocates ~4 MB and spins.
  absl::Status StartBusyLoop() {
    std::string script;
    for (const std::string& d : dirs_) script += "echo $$ > " + d + "/cgroup.procs || exit 1; ";
    script += "x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done";
    ASSIGN_OR_RETURN(pid_, Spawn({"/bin/busybox", "sh", "-c", script}));
    return absl::OkStatus();
  }
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> dirs_;
  pid_t pid_ = -1;
};

TEST(CgroupStatsIntegrationTest, BusyLoopShowsCpuAndMemory) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  absl::StatusOr<CgroupReader> reader = CgroupReader::Create();
  ASSERT_TRUE(reader.ok()) << reader.status();
  const std::string path = "/berth-cg-test-" + std::to_string(getpid());
  TestCgroup cgroup(*reader, path);
  ASSERT_TRUE(cgroup.Create().ok());
  ASSERT_TRUE(cgroup.StartBusyLoop().ok());

  // Wait (up to 20 s on a loaded machine) until the loop has used 0.3 s of CPU.
  absl::StatusOr<CgroupStats> stats;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    stats = reader->Read(path);
    ASSERT_TRUE(stats.ok()) << stats.status();
    if (stats->cpu_usage_ns > 300'000'000) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(waitpid(cgroup.pid(), nullptr, WNOHANG), 0)
        << "busy loop exited (cgroup join failed?)";
  }
  EXPECT_TRUE(stats->has_cpu);
  EXPECT_GT(stats->cpu_usage_ns, 300'000'000u);
  EXPECT_GT(stats->cpu_user_ns + stats->cpu_system_ns, 0u);
  if (stats->has_memory) {
    EXPECT_GT(stats->memory_usage_bytes, 0u);
    EXPECT_GT(stats->memory_working_set_bytes, 0u);
  } else {
    ADD_FAILURE() << "memory controller not available for " << path;
  }
  EXPECT_TRUE(stats->has_pids);
  EXPECT_GE(stats->pids_current, 1u);

  // The cAdvisor collector reports the same cgroup.
  std::vector<FamilySnapshot> families;
  CollectCadvisorMetrics(*reader, {{"busy", "busy", "p", "ns", "", path, 0, 0}}, MachineInfo{1, 1},
                         CadvisorOptions{}, &families);
  bool found = false;
  for (const FamilySnapshot& f : families) {
    if (f.name == "container_cpu_usage_seconds_total") {
      ASSERT_EQ(f.samples.size(), 1u);
      EXPECT_GT(f.samples[0].value, 0.3);
      found = true;
    }
  }
  EXPECT_TRUE(found);

  // /stats/summary: a second sample after more CPU was used gives usageNanoCores > 0.
  SummaryProvider provider(*reader, "node-it");
  const std::vector<SummaryPod> pods = {{"busy", "ns", "uid-1", 0, path, 0, {}}};
  ASSERT_TRUE(provider.Summary(pods).ok());
  const uint64_t before = reader->Read(path)->cpu_usage_ns;
  while (reader->Read(path)->cpu_usage_ns < before + 50'000'000 &&
         std::chrono::steady_clock::now() < deadline + std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  absl::StatusOr<std::string> second = provider.Summary(pods);
  ASSERT_TRUE(second.ok()) << second.status();
  nlohmann::json j = nlohmann::json::parse(*second, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << *second;
  EXPECT_GT(j["pods"][0]["cpu"]["usageNanoCores"].get<uint64_t>(), 0u) << *second;
  EXPECT_GT(j["pods"][0]["memory"]["workingSetBytes"].get<uint64_t>(), 0u) << *second;
  EXPECT_TRUE(j["node"]["cpu"].contains("usageNanoCores")) << *second;
}

}  // namespace
}  // namespace berth::metrics
