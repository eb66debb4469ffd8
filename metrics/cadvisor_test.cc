#include "metrics/cadvisor.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "base/file.h"
#include "base/process.h"

namespace berth::metrics {
namespace {

const std::string kTestdata = BERTH_METRICS_TESTDATA;

std::vector<CadvisorContainer> Entries(const std::string& pod_uid, const std::string& id) {
  const std::string pod_cgroup = "/kubepods/burstable/pod" + pod_uid;
  CadvisorContainer pod{"", "", "web-0", "default", "", pod_cgroup, 4242, 1763736000};
  CadvisorContainer ctr{
      "nginx", id,        "web-0", "default", "docker.io/library/nginx:1.27", pod_cgroup + "/" + id,
      0,       1763736001};
  return {pod, ctr};
}

std::string Scrape(const std::string& mode, const std::vector<CadvisorContainer>& entries) {
  CgroupReader reader = CgroupReader::Create(kTestdata + "/" + mode).value();
  CadvisorOptions options;
  options.proc_root = kTestdata + "/proc";
  options.sys_root = kTestdata + "/sys";
  options.now = [] { return 1763736100.0; };
  Registry registry;
  RegisterCadvisorMetrics(
      &registry, std::move(reader), [entries] { return entries; }, options);
  return registry.Expose();
}

// Compares with testdata/<name>; BERTH_UPDATE_GOLDEN=1 rewrites the file instead.
void ExpectGolden(const std::string& text, const std::string& name) {
  const std::string path = kTestdata + "/" + name;
  if (std::getenv("BERTH_UPDATE_GOLDEN") != nullptr) {
    ASSERT_TRUE(WriteFileAtomic(path, text).ok());
  }
  absl::StatusOr<std::string> golden = ReadFile(path);
  ASSERT_TRUE(golden.ok()) << golden.status();
  EXPECT_EQ(text, *golden) << "regenerate with BERTH_UPDATE_GOLDEN=1 if intended";
}

TEST(CadvisorTest, GoldenV1) {
  std::string text = Scrape("v1", Entries("6a1d3c1e-5f0b-4c8e-9d7a-2f1c0e4b8a11", "3f4e5d6c7b8a"));
  ExpectGolden(text, "cadvisor_v1.golden");
}

TEST(CadvisorTest, GoldenV2) {
  std::string text = Scrape("v2", Entries("7b2e4d2f-6c1a-4d9b-8e8b-3a2d1f5c9b22", "9a8b7c6d5e4f"));
  ExpectGolden(text, "cadvisor_v2.golden");
}

// Spot checks that do not depend on the golden file: cAdvisor's names, labels and units.
TEST(CadvisorTest, NamesLabelsAndUnits) {
  std::string text = Scrape("v1", Entries("6a1d3c1e-5f0b-4c8e-9d7a-2f1c0e4b8a11", "3f4e5d6c7b8a"));
  const std::string ctr_labels =
      "container=\"nginx\",id=\"/kubepods/burstable/pod6a1d3c1e-5f0b-4c8e-9d7a-2f1c0e4b8a11/"
      "3f4e5d6c7b8a\",image=\"docker.io/library/nginx:1.27\",name=\"3f4e5d6c7b8a\","
      "namespace=\"default\",pod=\"web-0\"";
  EXPECT_NE(text.find("# TYPE container_cpu_usage_seconds_total counter"), std::string::npos);
  EXPECT_NE(text.find("container_cpu_usage_seconds_total{container=\"nginx\",cpu=\"total\","),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("container_memory_working_set_bytes{" + ctr_labels + "} 58445824"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("container_spec_cpu_quota{" + ctr_labels + "} 10000"), std::string::npos);
  EXPECT_NE(text.find("container_cpu_cfs_throttled_seconds_total{" + ctr_labels + "} 2.250213764"),
            std::string::npos);
  EXPECT_NE(text.find("container_fs_reads_bytes_total{container=\"nginx\",device=\"/dev/vda\","),
            std::string::npos);
  // Network is reported on the pod entry (container="") only, loopback excluded.
  EXPECT_NE(text.find("container_network_receive_bytes_total{container=\"\",id=\"/kubepods/"
                      "burstable/pod6a1d3c1e-5f0b-4c8e-9d7a-2f1c0e4b8a11\",image=\"\","
                      "interface=\"eth0\",name=\"\",namespace=\"default\",pod=\"web-0\"} 90"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("interface=\"lo\""), std::string::npos);
  EXPECT_EQ(text.find("container_network_receive_bytes_total{container=\"nginx\""),
            std::string::npos);
  EXPECT_NE(text.find("container_last_seen{" + ctr_labels + "} 1763736100"), std::string::npos);
  EXPECT_NE(text.find("\nmachine_memory_bytes "), std::string::npos);
}

// The node's filesystem as the root container's (id="/") filesystem gauges, as cAdvisor.
TEST(CadvisorTest, NodeFilesystemAsRootContainerFsGauges) {
  FsStats fs;
  fs.used_bytes = 7000;
  fs.capacity_bytes = 10000;
  fs.inodes_free = 30;
  fs.dev_major = 254;
  std::vector<FamilySnapshot> families = BuildCadvisorFamilies(
      {}, MachineInfo{}, 1763736100,
      [](uint32_t major, uint32_t) { return major == 254 ? "/dev/vda" : "?"; }, fs);
  std::map<std::string, double> got;
  for (const FamilySnapshot& f : families) {
    if (f.name.rfind("container_fs_", 0) != 0) continue;
    ASSERT_EQ(f.samples.size(), 1u) << f.name;
    std::map<std::string, std::string> labels(f.samples[0].labels.begin(),
                                              f.samples[0].labels.end());
    EXPECT_EQ(labels, (std::map<std::string, std::string>{{"container", ""},
                                                          {"device", "/dev/vda"},
                                                          {"id", "/"},
                                                          {"image", ""},
                                                          {"name", ""},
                                                          {"namespace", ""},
                                                          {"pod", ""}}))
        << f.name;
    got[f.name] = f.samples[0].value;
  }
  EXPECT_EQ(got, (std::map<std::string, double>{{"container_fs_usage_bytes", 7000},
                                                {"container_fs_limit_bytes", 10000},
                                                {"container_fs_inodes_free", 30}}));
}

// The writable layer's usage (from FsUsageCache) as cAdvisor's filesystem gauges.
TEST(CadvisorTest, WritableLayerUsageAsFsGauges) {
  CadvisorSample sample{Entries("u1", "abc")[1], std::nullopt, {}, FsStats{}};
  sample.rootfs->used_bytes = 20971520;
  sample.rootfs->capacity_bytes = 1000000000;
  sample.rootfs->inodes = 5000;
  sample.rootfs->inodes_free = 4000;
  sample.rootfs->dev_major = 254;
  CadvisorSample unmeasured{Entries("u2", "def")[1], std::nullopt, {}, std::nullopt};
  std::vector<FamilySnapshot> families = BuildCadvisorFamilies(
      {sample, unmeasured}, MachineInfo{}, 1763736100,
      [](uint32_t major, uint32_t minor) { return major == 254 ? "/dev/vda" : "?"; });
  std::map<std::string, const FamilySnapshot*> by_name;
  for (const FamilySnapshot& f : families) by_name[f.name] = &f;
  const std::map<std::string, double> want = {{"container_fs_usage_bytes", 20971520},
                                              {"container_fs_limit_bytes", 1000000000},
                                              {"container_fs_inodes_free", 4000}};
  EXPECT_FALSE(by_name.count("container_fs_inodes_total"));  // promtool: gauge named *_total
  for (const auto& [name, value] : want) {
    ASSERT_TRUE(by_name.count(name)) << name;
    const FamilySnapshot& f = *by_name[name];
    EXPECT_EQ(f.type, MetricType::kGauge) << name;
    ASSERT_EQ(f.samples.size(), 1u) << name << ": the unmeasured container has none";
    EXPECT_EQ(f.samples[0].value, value) << name;
    bool device = false;
    for (const auto& [k, v] : f.samples[0].labels) device |= k == "device" && v == "/dev/vda";
    EXPECT_TRUE(device) << name;
  }
}

TEST(CadvisorTest, GoneCgroupStillListedWithoutUsage) {
  std::vector<CadvisorContainer> entries = {
      {"gone", "abc", "p", "ns", "img", "/kubepods/besteffort/podx/abc", 0, 5}};
  std::string text = Scrape("v1", entries);
  EXPECT_NE(text.find("container_start_time_seconds{container=\"gone\""), std::string::npos);
  EXPECT_EQ(text.find("container_cpu_usage_seconds_total"), std::string::npos);
}

TEST(CadvisorTest, ReadMachineInfoFromHost) {
  absl::StatusOr<MachineInfo> m = ReadMachineInfo();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(m->cpu_cores, 0u);
  EXPECT_GT(m->memory_bytes, 0u);
}

TEST(CadvisorTest, PromtoolAcceptsExposition) {
  absl::StatusOr<std::string> promtool = LookPath("promtool");
  if (!promtool.ok()) GTEST_SKIP() << "promtool (Debian package prometheus) not installed";
  for (const char* mode : {"v1", "v2"}) {
    std::string text =
        mode == std::string("v1")
            ? Scrape(mode, Entries("6a1d3c1e-5f0b-4c8e-9d7a-2f1c0e4b8a11", "3f4e5d6c7b8a"))
            : Scrape(mode, Entries("7b2e4d2f-6c1a-4d9b-8e8b-3a2d1f5c9b22", "9a8b7c6d5e4f"));
    absl::StatusOr<RunResult> run = berth::Run({*promtool, "check", "metrics"}, text);
    ASSERT_TRUE(run.ok()) << run.status();
    // The one lint finding is cAdvisor's own name, kept for compatibility: exit code 3
    // means "lint problems only" (1 would be a parse error).
    EXPECT_EQ(run->err, "container_memory_failcnt counter metrics should have \"_total\" suffix\n")
        << run->out << "\n"
        << text;
    EXPECT_EQ(run->exit_code, 3) << run->out << run->err << "\n" << text;
  }
}

}  // namespace
}  // namespace berth::metrics
