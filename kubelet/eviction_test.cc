#include "kubelet/eviction.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::kubelet {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// A pod with an emptyDir "cache" (sizeLimit `size_limit` unless empty) and containers `a`, `b`
// with ephemeral-storage limits `limit_a`, `limit_b` (none when empty).
// The typed pods of `j`, as the pod manager parses them.
api::Pod Typed(const Json& j) {
  absl::StatusOr<api::Pod> p = api::ParsePod(j);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : api::Pod{};
}
std::vector<api::Pod> TypedAll(const std::vector<Json>& pods) {
  std::vector<api::Pod> out;
  for (const Json& p : pods) out.push_back(Typed(p));
  return out;
}

Json Pod(const std::string& uid, const std::string& size_limit, const std::string& limit_a,
         const std::string& limit_b) {
  Json empty_dir = Json::object();
  if (!size_limit.empty()) empty_dir["sizeLimit"] = size_limit;
  auto container = [](const std::string& name, const std::string& limit) {
    Json c = {{"name", name}, {"image", "busybox"}};
    if (!limit.empty()) c["resources"] = {{"limits", {{"ephemeral-storage", limit}}}};
    return c;
  };
  return {{"metadata", {{"name", "p-" + uid}, {"namespace", "default"}, {"uid", uid}}},
          {"spec",
           {{"volumes", Json::array({{{"name", "cache"}, {"emptyDir", empty_dir}}})},
            {"containers", Json::array({container("a", limit_a), container("b", limit_b)})}}}};
}

TEST(EvictionTest, FormatQuantityIsCanonical) {
  EXPECT_EQ(FormatQuantity(kMiB, true), "1Mi");
  EXPECT_EQ(FormatQuantity(3 * kMiB, true), "3Mi");
  EXPECT_EQ(FormatQuantity(1536 * 1024, true), "1536Ki");
  EXPECT_EQ(FormatQuantity(1000, true), "1000");
  EXPECT_EQ(FormatQuantity(2000000, false), "2M");
  EXPECT_EQ(FormatQuantity(1500, false), "1500");
  EXPECT_EQ(FormatQuantity(0, true), "0");
}

// The three checks of localStorageEviction, in the upstream order and wording.
TEST(EvictionTest, MessagesForEachLimit) {
  PodStorageUsage usage;
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "1Mi", "2Mi", "2Mi")), usage), std::nullopt);
  usage.volumes["cache"] = kMiB;  // at the limit: not over it
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "1Mi", "", "")), usage), std::nullopt);
  usage.volumes["cache"] = kMiB + 4096;
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "1Mi", "", "")), usage),
            "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". ");
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "1024Ki", "", "")), usage),
            "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". ");
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "", "", "")), usage), std::nullopt);

  // Pod level: the sum of the containers' limits (3Mi), before any single container's.
  usage = {};
  usage.containers = {{"a", 2 * kMiB + 1}, {"b", kMiB}};
  usage.total = 3 * kMiB + 1;
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "", "2Mi", "1Mi")), usage),
            "Pod ephemeral local storage usage exceeds the total limit of containers 3Mi. ");
  // Container level: under the pod's total, over its own.
  usage.containers = {{"a", 2 * kMiB + 1}, {"b", 0}};
  usage.total = 2 * kMiB + 1;
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "", "2Mi", "1Mi")), usage),
            "Container a exceeded its local ephemeral storage limit \"2Mi\". ");
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "", "", "8Mi")), usage),
            std::nullopt);  // a: no limit
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "", "3M", "")), usage), std::nullopt);
  EXPECT_EQ(LocalStorageEvictionMessage(Typed(Pod("u", "", "2M", "")), usage),
            "Pod ephemeral local storage usage exceeds the total limit of containers 2M. ");
}

class EvictorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-eviction-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static void Write(const std::string& path, uint64_t bytes) {
    ASSERT_TRUE(MkdirAll(std::filesystem::path(path).parent_path()).ok());
    ASSERT_TRUE(WriteFileAtomic(path, std::string(bytes, 'x')).ok());
  }
  std::string dir_;
};

// The evictor reads the cache's measurements (asking it for the paths it needs), evicts each
// pod over a limit once, and leaves pods without limits alone.
TEST_F(EvictorTest, EvictsPodsOverTheirLimitsOnce) {
  metrics::FsUsageCache fs({std::chrono::hours(1)});
  const std::string pods_dir = dir_ + "/pods";
  std::vector<Json> pods = {Pod("uid-ed", "1Mi", "", ""), Pod("uid-c", "", "1Mi", ""),
                            Pod("uid-ok", "4Mi", "4Mi", ""), Pod("uid-none", "", "", ""),
                            Pod("uid-critical", "1Mi", "", "")};
  pods.back()["spec"]["priority"] = 2000001000;  // system-node-critical: never evicted
  metrics::SummaryPod running;
  running.uid = "uid-c";
  metrics::SummaryContainer a;
  a.name = "a";
  a.rootfs_dir = dir_ + "/containers/c1/upper";
  a.log_path = dir_ + "/logs/a/0.log";
  running.containers.push_back(a);
  std::vector<std::pair<std::string, std::string>> evicted;
  LocalStorageEvictor evictor(
      {&fs, [&] { return TypedAll(pods); },
       [&] { return std::vector<metrics::SummaryPod>{running}; },
       [&](const std::string& uid, const std::string& msg) { evicted.emplace_back(uid, msg); },
       pods_dir});
  const std::string ed = "/volumes/kubernetes.io~empty-dir/cache";
  Write(pods_dir + "/uid-ed" + ed + "/blob", 2 * kMiB);
  Write(pods_dir + "/uid-ok" + ed + "/blob", 2 * kMiB);
  Write(pods_dir + "/uid-none" + ed + "/blob", 2 * kMiB);
  Write(pods_dir + "/uid-critical" + ed + "/blob", 2 * kMiB);
  Write(a.rootfs_dir + "/blob", 512 * 1024);
  Write(a.log_path, 600 * 1024);  // rootfs + logs > 1Mi, each alone under it

  // Nothing measured yet: nothing evicted, the needed paths are asked for.
  EXPECT_TRUE(evictor.Check().empty());
  fs.RefreshNow();
  EXPECT_FALSE(fs.Get(pods_dir + "/uid-none" + ed).has_value()) << "a pod without limits measured";
  std::vector<std::string> out = evictor.Check();
  EXPECT_EQ(out, (std::vector<std::string>{"uid-ed", "uid-c"}));
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_EQ(evicted[0].second, "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". ");
  EXPECT_EQ(evicted[1].second,
            "Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. ");
  // Once per pod, even while the pod is still listed.
  EXPECT_TRUE(evictor.Check().empty());
  EXPECT_EQ(evicted.size(), 2u);
}

// A configMap volume is local ephemeral storage (upstream IsLocalEphemeralVolume): it counts
// in the pod's total, a secret does not (tmpfs upstream).
TEST_F(EvictorTest, ConfigMapVolumesCountInThePodsTotal) {
  metrics::FsUsageCache fs({std::chrono::hours(1)});
  const std::string pods_dir = dir_ + "/pods";
  auto with_volume = [](Json pod, const std::string& type) {
    pod["spec"]["volumes"].push_back({{"name", "cfg"}, {type, {{"name", "cfg"}}}});
    return pod;
  };
  std::vector<Json> pods = {with_volume(Pod("uid-cm", "", "1Mi", ""), "configMap"),
                            with_volume(Pod("uid-secret", "", "1Mi", ""), "secret")};
  std::vector<std::string> evicted;
  LocalStorageEvictor evictor(
      {&fs, [&] { return TypedAll(pods); }, [] { return std::vector<metrics::SummaryPod>{}; },
       [&](const std::string& uid, const std::string&) { evicted.push_back(uid); }, pods_dir});
  Write(pods_dir + "/uid-cm/volumes/kubernetes.io~configmap/cfg/data", 2 * kMiB);
  Write(pods_dir + "/uid-secret/volumes/kubernetes.io~secret/cfg/data", 2 * kMiB);
  EXPECT_TRUE(evictor.Check().empty());
  fs.RefreshNow();
  EXPECT_EQ(evictor.Check(), (std::vector<std::string>{"uid-cm"}));
  EXPECT_EQ(evicted, (std::vector<std::string>{"uid-cm"}));
}

}  // namespace
}  // namespace berth::kubelet
