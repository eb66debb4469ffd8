#include "metrics/summary.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "base/file.h"

namespace berth::metrics {
namespace {

using Json = nlohmann::json;
const std::string kTestdata = BERTH_METRICS_TESTDATA;
const std::string kPodUid = "7b2e4d2f-6c1a-4d9b-8e8b-3a2d1f5c9b22";
const std::string kPodCgroup = "/kubepods/burstable/pod" + kPodUid;

// JSON field names of the Go types in k8s.io/kubelet@v0.36.3/pkg/apis/stats/v1alpha1.
const std::set<std::string> kNodeStatsFields = {
    "nodeName", "systemContainers", "startTime", "cpu", "memory", "io", "network",
    "fs",       "runtime",          "rlimit",    "swap"};
const std::set<std::string> kPodStatsFields = {
    "podRef",  "startTime", "containers",        "cpu",           "memory", "io",
    "network", "volume",    "ephemeral-storage", "process_stats", "swap"};
const std::set<std::string> kContainerStatsFields = {
    "name", "startTime",          "cpu", "memory", "io", "accelerators", "rootfs",
    "logs", "userDefinedMetrics", "swap"};
const std::set<std::string> kCpuStatsFields = {"time", "usageNanoCores", "usageCoreNanoSeconds",
                                               "psi"};
const std::set<std::string> kMemoryStatsFields = {
    "time",     "availableBytes", "usageBytes",      "workingSetBytes",
    "rssBytes", "pageFaults",     "majorPageFaults", "psi"};
const std::set<std::string> kNetworkStatsFields = {"time",    "name",     "rxBytes",   "rxErrors",
                                                   "txBytes", "txErrors", "interfaces"};

// Every key of `obj` is one of the Go type's fields.
void ExpectFieldsIn(const Json& obj, const std::set<std::string>& fields, const std::string& what) {
  ASSERT_TRUE(obj.is_object()) << what;
  for (const auto& [key, value] : obj.items()) {
    EXPECT_TRUE(fields.count(key)) << what << " has unknown field " << key;
  }
}

SummaryPod Pod() {
  SummaryPod pod{"web-0", "default", kPodUid, 1763736000, kPodCgroup, 4242, {}};
  pod.containers.push_back({"nginx", 1763736001, kPodCgroup + "/9a8b7c6d5e4f"});
  pod.containers.push_back({"gone", 1763736002, kPodCgroup + "/missing"});
  return pod;
}

TEST(SummaryTest, UsageNanoCores) {
  EXPECT_EQ(UsageNanoCores(1000000000, 10, 1500000000, 11), std::optional<uint64_t>(500000000));
  EXPECT_EQ(UsageNanoCores(1000000000, 10, 3000000000, 12), std::optional<uint64_t>(1000000000));
  EXPECT_EQ(UsageNanoCores(1000, 10, 500, 11), std::nullopt);   // counter reset
  EXPECT_EQ(UsageNanoCores(1000, 10, 2000, 10), std::nullopt);  // no interval
}

TEST(SummaryTest, FormatTimeIsRfc3339Utc) {
  EXPECT_EQ(FormatTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(1763736000.7), "2025-11-21T14:40:00Z");
}

TEST(SummaryTest, ShapeMatchesV1alpha1Types) {
  double now = 1763736100;
  SummaryOptions options;
  options.proc_root = kTestdata + "/proc";
  options.now = [&now] { return now; };
  SummaryProvider provider(CgroupReader::Create(kTestdata + "/v2").value(), "node-a", options);

  absl::StatusOr<std::string> first = provider.Summary({Pod()});
  ASSERT_TRUE(first.ok()) << first.status();
  Json j = Json::parse(*first, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << *first;
  ExpectFieldsIn(j, {"node", "pods"}, "Summary");
  ExpectFieldsIn(j["node"], kNodeStatsFields, "NodeStats");
  EXPECT_EQ(j["node"]["nodeName"], "node-a");
  ASSERT_EQ(j["pods"].size(), 1u);
  const Json& pod = j["pods"][0];
  ExpectFieldsIn(pod, kPodStatsFields, "PodStats");
  EXPECT_EQ(pod["podRef"], (Json{{"name", "web-0"}, {"namespace", "default"}, {"uid", kPodUid}}));
  EXPECT_EQ(pod["startTime"], "2025-11-21T14:40:00Z");
  ExpectFieldsIn(pod["cpu"], kCpuStatsFields, "pod CPUStats");
  EXPECT_EQ(pod["cpu"]["usageCoreNanoSeconds"], 2603117000u);
  EXPECT_FALSE(pod["cpu"].contains("usageNanoCores"));  // first sample
  EXPECT_EQ(pod["cpu"]["time"], "2025-11-21T14:41:40Z");
  ExpectFieldsIn(pod["memory"], kMemoryStatsFields, "pod MemoryStats");
  EXPECT_EQ(pod["memory"]["usageBytes"], 105906176u);
  EXPECT_EQ(pod["memory"]["workingSetBytes"], 105906176u - 31457280u);
  EXPECT_FALSE(pod["memory"].contains("availableBytes"));  // pod memory.max is "max"
  ExpectFieldsIn(pod["network"], kNetworkStatsFields, "pod NetworkStats");
  EXPECT_EQ(pod["network"]["name"], "eth0");
  EXPECT_EQ(pod["network"]["rxBytes"], 90u);
  EXPECT_EQ(pod["process_stats"]["process_count"], 4u);

  ASSERT_EQ(pod["containers"].size(), 2u);
  const Json& c = pod["containers"][0];
  ExpectFieldsIn(c, kContainerStatsFields, "ContainerStats");
  EXPECT_EQ(c["name"], "nginx");
  EXPECT_EQ(c["memory"]["rssBytes"], 41943040u);
  EXPECT_EQ(c["memory"]["pageFaults"], 53812u);
  EXPECT_EQ(c["memory"]["majorPageFaults"], 7u);
  EXPECT_EQ(c["memory"]["availableBytes"], 268435456u - (104857600u - 31457280u));
  // A container whose cgroup is gone is listed without stats.
  EXPECT_EQ(pod["containers"][1], (Json{{"name", "gone"}, {"startTime", "2025-11-21T14:40:02Z"}}));

  // Second sample 10 s later: the recorded tree did not change, so the rate is 0.
  now += 10;
  absl::StatusOr<std::string> second = provider.Summary({Pod()});
  ASSERT_TRUE(second.ok()) << second.status();
  Json j2 = Json::parse(*second, nullptr, false);
  EXPECT_EQ(j2["pods"][0]["cpu"]["usageNanoCores"], 0u);
  EXPECT_EQ(j2["pods"][0]["containers"][0]["cpu"]["usageNanoCores"], 0u);
}

TEST(SummaryTest, BuildSummaryJsonComputedFields) {
  CgroupStats s;
  s.has_cpu = true;
  s.cpu_usage_ns = 5;
  s.has_memory = true;
  s.memory_usage_bytes = 100;
  s.memory_working_set_bytes = 60;
  NodeSummaryInput node{"n", 0, StatsPoint{s, 250}, 1000, {}};
  Json j = Json::parse(BuildSummaryJson(node, {}, 0), nullptr, false);
  EXPECT_EQ(j["node"]["cpu"]["usageNanoCores"], 250u);
  EXPECT_EQ(j["node"]["memory"]["availableBytes"], 940u);
  EXPECT_TRUE(j["pods"].is_array());
  EXPECT_FALSE(j["node"].contains("network"));
}

// Filesystem usage: container rootfs/logs, pod volume[] and ephemeral-storage (their sum),
// with the FsStats field names of the v1alpha1 types.
TEST(SummaryTest, FilesystemUsageOfRootfsLogsAndVolumes) {
  NodeSummaryInput node{"n", 0, StatsPoint{}, 0, {}};
  PodSummaryInput in;
  in.pod = Pod();
  in.pod.volumes = {{"data", "/x/data"}, {"cache", "/x/cache"}, {"token", "/x/token", false}};
  auto fs = [](uint64_t used, uint64_t inodes) {
    FsStats f;
    f.time_seconds = 1763736100;
    f.used_bytes = used;
    f.inodes_used = inodes;
    f.capacity_bytes = 1000000;
    f.available_bytes = 400000;
    f.inodes = 5000;
    f.inodes_free = 4000;
    return f;
  };
  in.rootfs = {fs(300, 3), std::nullopt};
  in.logs = {fs(20, 1), std::nullopt};
  in.volumes = {fs(5000, 2), std::nullopt, fs(4096, 3)};
  Json j = Json::parse(BuildSummaryJson(node, {in}, 1763736200), nullptr, false);
  const Json& p = j["pods"][0];
  const Json& c = p["containers"][0];
  const std::set<std::string> kFsFields = {
      "time", "availableBytes", "capacityBytes", "usedBytes", "inodesFree", "inodes", "inodesUsed"};
  ExpectFieldsIn(c["rootfs"], kFsFields, "rootfs");
  EXPECT_EQ(c["rootfs"]["usedBytes"], 300u);
  EXPECT_EQ(c["rootfs"]["capacityBytes"], 1000000u);
  EXPECT_EQ(c["rootfs"]["time"], "2025-11-21T14:41:40Z");
  EXPECT_EQ(c["logs"]["usedBytes"], 20u);
  EXPECT_FALSE(p["containers"][1].contains("rootfs"));  // not measured yet
  ASSERT_EQ(p["volume"].size(), 2u);
  EXPECT_EQ(p["volume"][0]["name"], "data");
  EXPECT_EQ(p["volume"][0]["usedBytes"], 5000u);
  EXPECT_EQ(p["volume"][1]["name"], "token");  // listed, but not local ephemeral storage
  EXPECT_EQ(p["volume"][1]["usedBytes"], 4096u);
  EXPECT_EQ(p["ephemeral-storage"]["usedBytes"], 5320u);
  EXPECT_EQ(p["ephemeral-storage"]["inodesUsed"], 6u);
  EXPECT_EQ(p["ephemeral-storage"]["availableBytes"], 400000u);
}

const std::set<std::string> kFsStatsFields = {
    "time", "availableBytes", "capacityBytes", "usedBytes", "inodesFree", "inodes", "inodesUsed"};

// node.fs and node.runtime.{imageFs,containerFs}: FsStats of the v1alpha1 NodeStats.Fs and
// RuntimeStats, omitted when unknown.
TEST(SummaryTest, NodeFilesystemsShape) {
  NodeSummaryInput node{"n", 0, StatsPoint{}, 0, {}};
  Json none = Json::parse(BuildSummaryJson(node, {}, 0), nullptr, false);
  EXPECT_FALSE(none["node"].contains("fs"));
  EXPECT_FALSE(none["node"].contains("runtime"));
  FsStats root;
  root.time_seconds = 1763736100;
  root.capacity_bytes = 1000;
  root.available_bytes = 300;
  root.used_bytes = 650;
  root.inodes = 50;
  root.inodes_free = 20;
  root.inodes_used = 30;
  node.fs = root;
  FsStats images = root;
  images.used_bytes = 123;
  node.image_fs = images;
  node.container_fs = images;
  Json j = Json::parse(BuildSummaryJson(node, {}, 0), nullptr, false);
  ExpectFieldsIn(j["node"], kNodeStatsFields, "NodeStats");
  ExpectFieldsIn(j["node"]["fs"], kFsStatsFields, "node fs");
  EXPECT_EQ(j["node"]["fs"], (Json{{"time", "2025-11-21T14:41:40Z"},
                                   {"availableBytes", 300},
                                   {"capacityBytes", 1000},
                                   {"usedBytes", 650},
                                   {"inodesFree", 20},
                                   {"inodes", 50},
                                   {"inodesUsed", 30}}));
  ExpectFieldsIn(j["node"]["runtime"], {"imageFs", "containerFs"}, "RuntimeStats");
  ExpectFieldsIn(j["node"]["runtime"]["imageFs"], kFsStatsFields, "imageFs");
  EXPECT_EQ(j["node"]["runtime"]["imageFs"]["usedBytes"], 123);
  EXPECT_EQ(j["node"]["runtime"]["imageFs"]["capacityBytes"], 1000);
  EXPECT_EQ(j["node"]["runtime"]["containerFs"], j["node"]["runtime"]["imageFs"]);
}

// SummaryProvider: node.fs from statvfs of the root dir (each scrape), imageFs.usedBytes the
// image store's size from the FsUsageCache (which the provider asks to measure it).
TEST(SummaryTest, ProviderReportsRootAndImageFilesystems) {
  char tmpl[] = "/tmp/berth-summary-fs-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_TRUE(MkdirAll(dir + "/images").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/images/layer", std::string(1 << 20, 'x')).ok());
  FsUsageCache cache({std::chrono::hours(1)});
  SummaryOptions options;
  options.proc_root = kTestdata + "/proc";
  options.fs_usage = &cache;
  options.root_dir = dir;
  options.image_dir = dir + "/images";
  SummaryProvider provider(CgroupReader::Create(kTestdata + "/v2").value(), "node-a", options);
  Json first = Json::parse(provider.Summary({}).value(), nullptr, false);
  ASSERT_TRUE(first["node"].contains("fs"));
  EXPECT_GT(first["node"]["fs"]["capacityBytes"].get<uint64_t>(), 0u);
  EXPECT_GT(first["node"]["fs"]["usedBytes"].get<uint64_t>(), 0u);
  EXPECT_GT(first["node"]["fs"]["inodesUsed"].get<uint64_t>(), 0u);
  cache.RefreshNow();  // the image store, wanted by the first call, measured
  Json second = Json::parse(provider.Summary({}).value(), nullptr, false);
  const Json& image_fs = second["node"]["runtime"]["imageFs"];
  EXPECT_GE(image_fs["usedBytes"].get<uint64_t>(), 1u << 20);
  EXPECT_LT(image_fs["usedBytes"].get<uint64_t>(), 2u << 20);
  EXPECT_EQ(image_fs["capacityBytes"], second["node"]["fs"]["capacityBytes"]);  // same fs
  EXPECT_GT(image_fs["inodesUsed"].get<uint64_t>(), 0u);
  EXPECT_EQ(second["node"]["runtime"]["containerFs"], image_fs);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// A pod's PersistentVolumeClaim volume (a local PV): listed in volume[] with pvcRef and the
// stats of its filesystem (statvfs), not counted in ephemeral-storage; kubelet_volume_stats_*
// have one series per claim.
TEST(SummaryTest, ClaimVolumesHavePvcRefAndFilesystemStats) {
  char tmpl[] = "/tmp/berth-summary-pvc-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_TRUE(MkdirAll(dir + "/pods/uid-1/volumes/kubernetes.io~empty-dir/cache").ok());
  ASSERT_TRUE(MkdirAll(dir + "/pv").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/pv/blob", std::string(64 << 10, 'x')).ok());
  FsUsageCache cache({std::chrono::hours(1)});
  SummaryOptions options;
  options.proc_root = kTestdata + "/proc";
  options.fs_usage = &cache;
  options.pods_dir = dir + "/pods";
  std::vector<std::string> asked;
  options.claim_volumes = [&](const std::string& uid) {
    asked.push_back(uid);
    SummaryVolume v{"data", dir + "/pv", false};
    v.pvc_name = "claim-a";
    v.pvc_namespace = "team";
    v.filesystem = true;
    return std::vector<SummaryVolume>{v};
  };
  SummaryProvider provider(CgroupReader::Create(kTestdata + "/v2").value(), "node-a", options);
  SummaryPod pod = Pod();
  pod.uid = "uid-1";
  pod.containers.clear();
  Json j = Json::parse(provider.Summary({pod}).value(), nullptr, false);
  EXPECT_EQ(asked, std::vector<std::string>{"uid-1"});
  const Json& volumes = j["pods"][0]["volume"];
  ASSERT_TRUE(volumes.is_array()) << j.dump();
  const Json* data = nullptr;
  for (const Json& v : volumes) {
    if (v["name"] == "data") data = &v;
  }
  ASSERT_NE(data, nullptr) << volumes.dump();
  EXPECT_EQ((*data)["pvcRef"], (Json{{"name", "claim-a"}, {"namespace", "team"}}));
  ExpectFieldsIn(*data,
                 {"time", "availableBytes", "capacityBytes", "usedBytes", "inodesFree", "inodes",
                  "inodesUsed", "name", "pvcRef"},
                 "VolumeStats");
  absl::StatusOr<FsStats> fs = MeasureFilesystem(dir + "/pv");
  ASSERT_TRUE(fs.ok());
  EXPECT_EQ((*data)["capacityBytes"], fs->capacity_bytes);
  EXPECT_GT((*data)["usedBytes"].get<uint64_t>(), 0u);  // the filesystem's, not a walk
  // Not ephemeral storage: the cache (emptyDir) is not measured yet, so nothing is.
  EXPECT_FALSE(j["pods"][0].contains("ephemeral-storage")) << j["pods"][0].dump();

  FsStats a = *fs, b = *fs;
  b.capacity_bytes = 1;
  SummaryVolume va{"data", "/x", false, "claim-a", "team", true};
  SummaryVolume vb{"again", "/y", false, "claim-a", "team", true};  // the same claim twice
  SummaryVolume vc{"other", "/z", false, "claim-b", "team", true};
  SummaryVolume plain{"cache", "/w"};
  std::vector<FamilySnapshot> families =
      VolumeStatsFamilies({{va, a}, {vb, b}, {vc, b}, {plain, b}});
  ASSERT_EQ(families.size(), 6u);
  std::set<std::string> names;
  for (const FamilySnapshot& f : families) {
    names.insert(f.name);
    EXPECT_EQ(f.type, MetricType::kGauge);
    ASSERT_EQ(f.samples.size(), 2u) << f.name;
    EXPECT_EQ(f.samples[0].labels,
              (Labels{{"namespace", "team"}, {"persistentvolumeclaim", "claim-a"}}));
    EXPECT_EQ(f.samples[1].labels,
              (Labels{{"namespace", "team"}, {"persistentvolumeclaim", "claim-b"}}));
    if (f.name == "kubelet_volume_stats_capacity_bytes") {
      EXPECT_EQ(f.samples[0].value,
                static_cast<double>(a.capacity_bytes));  // the first volume wins
      EXPECT_EQ(f.samples[1].value, 1.0);
    }
  }
  EXPECT_EQ(names,
            (std::set<std::string>{
                "kubelet_volume_stats_available_bytes", "kubelet_volume_stats_capacity_bytes",
                "kubelet_volume_stats_inodes", "kubelet_volume_stats_inodes_free",
                "kubelet_volume_stats_inodes_used", "kubelet_volume_stats_used_bytes"}));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace berth::metrics
