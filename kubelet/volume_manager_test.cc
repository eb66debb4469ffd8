#include "kubelet/volume_manager.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "absl/strings/str_join.h"
#include "base/file.h"
#include "kubelet/pod_util.h"
#include "kubelet/testing/fake_api_client.h"

namespace berth::kubelet {
namespace {

using testing::FakeApiClient;

int ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return st.st_mode & 07777;
}

class VolumeManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (std::filesystem::temp_directory_path() /
             ("berth-vol-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::filesystem::create_directories(root_);
  }
  void TearDown() override {
    // The tmpfs volumes a failed test left mounted, then the tree.
    EXPECT_TRUE(UnmountAllUnder(root_).ok());
    std::filesystem::remove_all(root_);
  }

  absl::Time Now() {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }

  std::string root_;
  FakeApiClient api_;
  std::mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1704067200);
};

const char kPod[] = R"({
  "metadata": {"name": "web", "namespace": "team", "uid": "u-1"},
  "spec": {"serviceAccountName": "builder", "volumes": [
    {"name": "kube-api-access-x", "projected": {"defaultMode": 420, "sources": [
      {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token", "audience": "api"}},
      {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
      {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
    ]}},
    {"name": "creds", "secret": {"secretName": "db", "defaultMode": 256,
                                 "items": [{"key": "password", "path": "sub/pw", "mode": 384}]}},
    {"name": "cache", "emptyDir": {}},
    {"name": "missing", "configMap": {"name": "nope", "optional": true}}
  ]}
})";

TEST_F(VolumeManagerTest, ProjectedTokenConfigMapDownwardApiAndRefresh) {
  int issued = 0;
  Json last_request;
  api_.OnPost("/api/v1/namespaces/team/serviceaccounts/builder/token",
              [&](const Json& body) -> absl::StatusOr<Json> {
                ++issued;
                last_request = body;
                absl::Time exp = Now() + absl::Seconds(3600);
                return Json{{"status",
                             {{"token", "token-" + std::to_string(issued)},
                              {"expirationTimestamp", FormatRfc3339(exp)}}}};
              });
  api_.SetObject("/api/v1/namespaces/team/configmaps/kube-root-ca.crt",
                 {{"data", {{"ca.crt", "-----BEGIN CERTIFICATE-----\nCA\n"}}}});
  api_.SetObject("/api/v1/namespaces/team/secrets/db",
                 {{"data", {{"password", "czNjcjN0"}}}});  // "s3cr3t"

  VolumeManager vm(&api_, root_, [this] { return Now(); });
  Json pod = Json::parse(kPod);
  auto vols = vm.SetUpPodVolumes(pod, "192.0.2.1");
  ASSERT_TRUE(vols.ok()) << vols.status();
  std::string dir = root_ + "/pods/u-1/volumes/kubernetes.io~projected/kube-api-access-x";
  EXPECT_EQ(vols->at("kube-api-access-x").host_path, dir);
  EXPECT_TRUE(vols->at("kube-api-access-x").read_only);
  EXPECT_EQ(*ReadFile(dir + "/token"), "token-1");
  EXPECT_EQ(*ReadFile(dir + "/ca.crt"), "-----BEGIN CERTIFICATE-----\nCA\n");
  EXPECT_EQ(*ReadFile(dir + "/namespace"), "team");
  EXPECT_EQ(ModeOf(dir + "/token"), 0644);
  // The TokenRequest is bound to the pod.
  EXPECT_EQ(last_request["kind"], "TokenRequest");
  EXPECT_EQ(last_request["spec"]["expirationSeconds"], 3607);
  EXPECT_EQ(last_request["spec"]["audiences"][0], "api");
  EXPECT_EQ(last_request["spec"]["boundObjectRef"]["kind"], "Pod");
  EXPECT_EQ(last_request["spec"]["boundObjectRef"]["name"], "web");
  EXPECT_EQ(last_request["spec"]["boundObjectRef"]["uid"], "u-1");
  // Secret: base64-decoded, item path and mode.
  std::string pw = root_ + "/pods/u-1/volumes/kubernetes.io~secret/creds/sub/pw";
  EXPECT_EQ(*ReadFile(pw), "s3cr3t");
  EXPECT_EQ(ModeOf(pw), 0600);
  EXPECT_EQ(vols->at("cache").host_path, root_ + "/pods/u-1/volumes/kubernetes.io~empty-dir/cache");
  EXPECT_TRUE(vols->count("missing"));  // optional and absent: an empty volume

  // Before 80% of the lifetime: no new token. After: refreshed.
  ASSERT_TRUE(vm.NextRefresh("u-1").has_value());
  EXPECT_EQ(*vm.NextRefresh("u-1"), absl::FromUnixSeconds(1704067200) + absl::Seconds(2880));
  {
    std::lock_guard<std::mutex> l(mu_);
    now_ += absl::Seconds(2000);
  }
  ASSERT_TRUE(vm.SetUpPodVolumes(pod, "192.0.2.1").ok());
  EXPECT_EQ(issued, 1);
  {
    std::lock_guard<std::mutex> l(mu_);
    now_ += absl::Seconds(900);
  }
  ASSERT_TRUE(vm.SetUpPodVolumes(pod, "192.0.2.1").ok());
  EXPECT_EQ(issued, 2);
  EXPECT_EQ(*ReadFile(dir + "/token"), "token-2");

  ASSERT_TRUE(vm.TearDownPodVolumes("u-1").ok());
  EXPECT_FALSE(PathExists(root_ + "/pods/u-1/volumes"));
  EXPECT_FALSE(vm.NextRefresh("u-1").has_value());
}

// The filesystem type (statfs f_type) and size in bytes of the filesystem at `path`.
std::pair<int64_t, uint64_t> FsOf(const std::string& path) {
  struct statfs st;
  if (::statfs(path.c_str(), &st) != 0) return {-1, 0};
  return {static_cast<int64_t>(st.f_type), static_cast<uint64_t>(st.f_blocks) * st.f_bsize};
}

// As upstream: an emptyDir of medium Memory, secret, downwardAPI and projected volumes are
// tmpfs mounts sized by the sizeLimit and the pod's memory limit; configMap and other emptyDirs
// stay on disk. Set-up is idempotent across a restart (no second mount); tear-down unmounts.
TEST_F(VolumeManagerTest, MemoryBackedVolumesAreTmpfsMounts) {
  api_.SetObject("/api/v1/namespaces/n/secrets/db", {{"data", {{"password", "czNjcjN0"}}}});
  api_.SetObject("/api/v1/namespaces/n/configmaps/cfg", {{"data", {{"k", "v"}}}});
  Json pod = Json::parse(R"({"metadata": {"name": "p", "namespace": "n", "uid": "u-mem"},
    "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}],
      "volumes": [
      {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
      {"name": "big", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
      {"name": "disk", "emptyDir": {}},
      {"name": "creds", "secret": {"secretName": "db"}},
      {"name": "cfg", "configMap": {"name": "cfg"}},
      {"name": "meta", "downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}},
      {"name": "huge", "emptyDir": {"medium": "HugePages"}}]}})");
  const std::string vols = root_ + "/pods/u-mem/volumes";
  {
    VolumeManager vm(&api_, root_, [this] { return Now(); });
    auto set_up = vm.SetUpPodVolumes(pod, "");
    ASSERT_FALSE(set_up.ok());  // HugePages: refused by name, the others set up
    EXPECT_TRUE(absl::IsUnimplemented(set_up.status())) << set_up.status();
    EXPECT_NE(set_up.status().message().find("HugePages"), std::string::npos) << set_up.status();
  }
  EXPECT_EQ(FsOf(vols + "/kubernetes.io~empty-dir/shm"),
            std::make_pair(int64_t{TMPFS_MAGIC}, uint64_t{1} << 20));
  // sizeLimit above the pod's memory limit: the pod's limit.
  EXPECT_EQ(FsOf(vols + "/kubernetes.io~empty-dir/big"),
            std::make_pair(int64_t{TMPFS_MAGIC}, uint64_t{64} << 20));
  EXPECT_EQ(ModeOf(vols + "/kubernetes.io~empty-dir/shm"), 01777);  // tmpfs default, as upstream
  EXPECT_EQ(FsOf(vols + "/kubernetes.io~secret/creds").first, TMPFS_MAGIC);
  EXPECT_EQ(*ReadFile(vols + "/kubernetes.io~secret/creds/password"), "s3cr3t");
  EXPECT_EQ(FsOf(vols + "/kubernetes.io~downward-api/meta").first, TMPFS_MAGIC);
  EXPECT_EQ(*ReadFile(vols + "/kubernetes.io~downward-api/meta/mem"), "64");  // resourceFieldRef
  EXPECT_FALSE(IsMountPoint(vols + "/kubernetes.io~empty-dir/disk"));
  EXPECT_FALSE(IsMountPoint(vols + "/kubernetes.io~configmap/cfg"));
  auto mounts = MountPointsUnder(vols);
  ASSERT_TRUE(mounts.ok());
  EXPECT_EQ(mounts->size(), 4u) << absl::StrJoin(*mounts, " ");

  // berth restarted: a new manager sets the pod up again over the same mounts.
  VolumeManager again(&api_, root_, [this] { return Now(); });
  (void)again.SetUpPodVolumes(pod, "");
  EXPECT_EQ(MountPointsUnder(vols)->size(), 4u) << "tmpfs mounted twice";
  EXPECT_EQ(*ReadFile(vols + "/kubernetes.io~secret/creds/password"), "s3cr3t");

  ASSERT_TRUE(again.TearDownPodVolumes("u-mem").ok());
  EXPECT_TRUE(MountPointsUnder(vols)->empty());
  EXPECT_FALSE(PathExists(vols));
}

// As upstream's remount on every sync: a changed configMap or secret, an optional one that
// appears or goes, and the pod's new labels reach the files; a source that cannot be read
// keeps the old content.
TEST_F(VolumeManagerTest, ProjectionsFollowTheirSources) {
  VolumeManager vm(&api_, root_, [this] { return Now(); });
  api_.SetObject("/api/v1/namespaces/n/configmaps/cfg", {{"data", {{"a", "1"}, {"b", "2"}}}});
  api_.SetObject("/api/v1/namespaces/n/secrets/s", {{"data", {{"k", "djE="}}}});  // "v1"
  Json pod =
      Json::parse(R"({"metadata": {"name": "p", "namespace": "n", "uid": "u", "labels": {"v": "1"}},
    "spec": {"volumes": [
      {"name": "cfg", "configMap": {"name": "cfg"}},
      {"name": "sec", "secret": {"secretName": "s"}},
      {"name": "opt", "configMap": {"name": "later", "optional": true}},
      {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}})");
  ASSERT_TRUE(vm.SetUpPodVolumes(pod, "").ok());
  const std::string vols = root_ + "/pods/u/volumes/";
  EXPECT_EQ(*ReadFile(vols + "kubernetes.io~configmap/cfg/a"), "1");
  EXPECT_EQ(std::filesystem::read_symlink(vols + "kubernetes.io~configmap/cfg/a").string(),
            "..data/a");
  EXPECT_FALSE(PathExists(vols + "kubernetes.io~configmap/opt/x"));

  api_.SetObject("/api/v1/namespaces/n/configmaps/cfg", {{"data", {{"a", "10"}}}});
  api_.SetObject("/api/v1/namespaces/n/secrets/s", {{"data", {{"k", "djI="}}}});  // "v2"
  api_.SetObject("/api/v1/namespaces/n/configmaps/later", {{"data", {{"x", "here"}}}});
  pod["metadata"]["labels"]["v"] = "2";
  ASSERT_TRUE(vm.SetUpPodVolumes(pod, "").ok());
  EXPECT_EQ(*ReadFile(vols + "kubernetes.io~configmap/cfg/a"), "10");
  EXPECT_FALSE(PathExists(vols + "kubernetes.io~configmap/cfg/b"));  // key removed
  EXPECT_EQ(*ReadFile(vols + "kubernetes.io~secret/sec/k"), "v2");
  EXPECT_EQ(*ReadFile(vols + "kubernetes.io~configmap/opt/x"), "here");
  EXPECT_EQ(*ReadFile(vols + "kubernetes.io~downward-api/info/labels"), "v=\"2\"");

  // The required configMap is deleted: the old content stays, set-up does not fail.
  api_.RemoveObject("/api/v1/namespaces/n/configmaps/cfg");
  ASSERT_TRUE(vm.SetUpPodVolumes(pod, "").ok());
  EXPECT_EQ(*ReadFile(vols + "kubernetes.io~configmap/cfg/a"), "10");
  ASSERT_TRUE(vm.TearDownPodVolumes("u").ok());
}

TEST_F(VolumeManagerTest, MissingRequiredConfigMapIsAnError) {
  VolumeManager vm(&api_, root_, [this] { return Now(); });
  Json pod = Json::parse(R"({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
    "spec": {"volumes": [{"name": "cfg", "configMap": {"name": "app-config"}}]}})");
  auto vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_FALSE(vols.ok());
  EXPECT_TRUE(absl::IsNotFound(vols.status()));
  EXPECT_NE(vols.status().message().find("cfg"), std::string::npos);
  EXPECT_NE(vols.status().message().find("app-config"), std::string::npos);
}

Json BoundClaim(const std::string& name, const std::string& uid, const std::string& pv) {
  return {{"metadata", {{"name", name}, {"namespace", "n"}, {"uid", uid}}},
          {"spec", {{"volumeName", pv}}},
          {"status", {{"phase", "Bound"}}}};
}

Json Volume(const std::string& name, const std::string& claim_uid, const Json& source) {
  Json spec = source;
  spec["claimRef"] = {{"namespace", "n"}, {"name", "data"}, {"uid", claim_uid}};
  return {{"metadata", {{"name", name}}}, {"spec", spec}};
}

TEST_F(VolumeManagerTest, ClaimsBoundToHostPathAndLocalVolumesAreUsedInPlace) {
  VolumeManager vm(&api_, root_, [this] { return Now(); });
  const std::string host_dir = root_ + "/pv-host";
  const std::string local_dir = root_ + "/pv-local";
  std::filesystem::create_directories(local_dir);
  api_.SetObject("/api/v1/namespaces/n/persistentvolumeclaims/data",
                 BoundClaim("data", "c-1", "pv-a"));
  api_.SetObject(
      "/api/v1/persistentvolumes/pv-a",
      Volume("pv-a", "c-1", {{"hostPath", {{"path", host_dir}, {"type", "DirectoryOrCreate"}}}}));
  api_.SetObject("/api/v1/namespaces/n/persistentvolumeclaims/logs",
                 BoundClaim("logs", "c-2", "pv-b"));
  Json pv_b = Volume("pv-b", "c-2", {{"local", {{"path", local_dir}}}});
  pv_b["metadata"]["annotations"] = {{"pv.beta.kubernetes.io/gid", "1234"}};
  api_.SetObject("/api/v1/persistentvolumes/pv-b", pv_b);
  Json pod = Json::parse(R"({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
    "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                         {"name": "l", "persistentVolumeClaim": {"claimName": "logs", "readOnly": true}}]}})");
  auto vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_TRUE(vols.ok()) << vols.status();
  EXPECT_EQ((*vols)["d"].host_path, host_dir);
  EXPECT_FALSE((*vols)["d"].read_only);
  EXPECT_TRUE(std::filesystem::is_directory(host_dir));  // DirectoryOrCreate
  EXPECT_EQ((*vols)["l"].host_path, local_dir);
  EXPECT_TRUE((*vols)["l"].read_only);
  EXPECT_EQ((*vols)["l"].supplemental_gid, 1234);  // pv.beta.kubernetes.io/gid
  EXPECT_FALSE((*vols)["d"].supplemental_gid.has_value());
  // Known as claim volumes; only the local PV reports filesystem stats (upstream: local
  // MetricsStatFS, hostPath MetricsNil).
  std::vector<ClaimVolume> claims = vm.ClaimVolumes();
  ASSERT_EQ(claims.size(), 2u);
  EXPECT_EQ(claims[0].volume_name, "d");
  EXPECT_EQ(claims[0].volume.claim_namespace, "n");
  EXPECT_EQ(claims[0].volume.claim_name, "data");
  EXPECT_FALSE(claims[0].volume.filesystem_stats);
  EXPECT_EQ(claims[1].volume_name, "l");
  EXPECT_EQ(claims[1].volume.claim_name, "logs");
  EXPECT_TRUE(claims[1].volume.filesystem_stats);
  // Tear-down leaves the volumes' data alone: they are not under the pod's directory.
  ASSERT_TRUE(std::filesystem::exists(local_dir));
  std::filesystem::create_directories(host_dir + "/keep");
  ASSERT_TRUE(vm.TearDownPodVolumes("u").ok());
  EXPECT_TRUE(vm.ClaimVolumes().empty());
  EXPECT_TRUE(std::filesystem::exists(host_dir + "/keep"));
  EXPECT_TRUE(std::filesystem::exists(local_dir));
}

TEST_F(VolumeManagerTest, UnboundClaimIsRetriedUntilBound) {
  VolumeManager vm(&api_, root_, [this] { return Now(); });
  Json pod = Json::parse(R"({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
    "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})");
  // No claim at all.
  auto vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_FALSE(vols.ok());
  EXPECT_TRUE(absl::IsNotFound(vols.status())) << vols.status();
  EXPECT_NE(vols.status().message().find("n/data"), std::string::npos) << vols.status();
  // Pending.
  api_.SetObject("/api/v1/namespaces/n/persistentvolumeclaims/data",
                 {{"metadata", {{"name", "data"}, {"uid", "c-1"}}},
                  {"spec", Json::object()},
                  {"status", {{"phase", "Pending"}}}});
  vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_FALSE(vols.ok());
  EXPECT_TRUE(absl::IsUnavailable(vols.status())) << vols.status();
  EXPECT_NE(vols.status().message().find("non-bound phase (\"Pending\")"), std::string::npos)
      << vols.status();
  // Bound, but the PV's claimRef names another claim (a stale binding).
  const std::string dir = root_ + "/pv";
  std::filesystem::create_directories(dir);
  api_.SetObject("/api/v1/namespaces/n/persistentvolumeclaims/data",
                 BoundClaim("data", "c-1", "pv-a"));
  api_.SetObject("/api/v1/persistentvolumes/pv-a",
                 Volume("pv-a", "c-0", {{"local", {{"path", dir}}}}));
  vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_FALSE(vols.ok());
  EXPECT_NE(vols.status().message().find("does not point to claim.UID (c-1)"), std::string::npos)
      << vols.status();
  // Bound both ways.
  api_.SetObject("/api/v1/persistentvolumes/pv-a",
                 Volume("pv-a", "c-1", {{"local", {{"path", dir}}}}));
  vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_TRUE(vols.ok()) << vols.status();
  EXPECT_EQ((*vols)["d"].host_path, dir);
}

TEST_F(VolumeManagerTest, EphemeralVolumeUsesTheClaimThePodOwns) {
  VolumeManager vm(&api_, root_, [this] { return Now(); });
  const std::string dir = root_ + "/pv";
  Json pod = Json::parse(R"({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
    "spec": {"volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]}})");
  Json claim = BoundClaim("p-scratch", "c-1", "pv-a");
  claim["metadata"]["ownerReferences"] = {
      {{"kind", "Pod"}, {"name", "p"}, {"uid", "other"}, {"controller", true}}};
  api_.SetObject("/api/v1/namespaces/n/persistentvolumeclaims/p-scratch", claim);
  api_.SetObject(
      "/api/v1/persistentvolumes/pv-a",
      Volume("pv-a", "c-1", {{"hostPath", {{"path", dir}, {"type", "DirectoryOrCreate"}}}}));
  auto vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_FALSE(vols.ok());
  EXPECT_NE(vols.status().message().find("pod is not owner"), std::string::npos) << vols.status();
  claim["metadata"]["ownerReferences"][0]["uid"] = "u";
  api_.SetObject("/api/v1/namespaces/n/persistentvolumeclaims/p-scratch", claim);
  vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_TRUE(vols.ok()) << vols.status();
  EXPECT_EQ((*vols)["scratch"].host_path, dir);
  EXPECT_EQ((*vols)["scratch"].claim_name, "p-scratch");
}

TEST_F(VolumeManagerTest, UnsupportedPersistentVolumeSourcesAreNamed) {
  VolumeManager vm(&api_, root_, [this] { return Now(); });
  api_.SetObject("/api/v1/namespaces/n/persistentvolumeclaims/data",
                 BoundClaim("data", "c-1", "pv-a"));
  api_.SetObject(
      "/api/v1/persistentvolumes/pv-a",
      Volume("pv-a", "c-1", {{"nfs", {{"server", "nfs.example"}, {"path", "/export"}}}}));
  Json pod = Json::parse(R"({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
    "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})");
  auto vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_FALSE(vols.ok());
  EXPECT_TRUE(absl::IsUnimplemented(vols.status())) << vols.status();
  EXPECT_NE(vols.status().message().find("\"nfs\""), std::string::npos) << vols.status();
}

gid_t GroupOf(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 ? st.st_gid : static_cast<gid_t>(-1);
}

TEST_F(VolumeManagerTest, SetVolumeOwnershipAppliesTheFsGroup) {
  const std::string dir = root_ + "/vol";
  std::filesystem::create_directories(dir + "/sub");
  ASSERT_TRUE(WriteFileAtomic(dir + "/sub/f", "x", 0600).ok());
  ::chmod((dir + "/sub/f").c_str(), 0600);
  ::chmod((dir + "/sub").c_str(), 0700);
  std::filesystem::create_symlink("sub/f", dir + "/link");
  ASSERT_TRUE(SetVolumeOwnership(dir, 4321, false, false).ok());
  for (const char* p : {"", "/sub", "/sub/f", "/link"}) EXPECT_EQ(GroupOf(dir + p), 4321u) << p;
  EXPECT_EQ(ModeOf(dir + "/sub/f"), 0660);
  EXPECT_EQ(ModeOf(dir + "/sub"), 02770);
  // Read-only volumes get group read only.
  ::chmod((dir + "/sub/f").c_str(), 0600);
  ASSERT_TRUE(SetVolumeOwnership(dir, 4321, true, false).ok());
  EXPECT_EQ(ModeOf(dir + "/sub/f"), 0640);
  // OnRootMismatch: the root matches, so nothing below is looked at.
  ASSERT_EQ(::chown((dir + "/sub/f").c_str(), -1, 0), 0);
  ASSERT_TRUE(SetVolumeOwnership(dir, 4321, true, true).ok());
  EXPECT_EQ(GroupOf(dir + "/sub/f"), 0u);
  ASSERT_TRUE(SetVolumeOwnership(dir, 4321, true, false).ok());  // Always
  EXPECT_EQ(GroupOf(dir + "/sub/f"), 4321u);
}

TEST_F(VolumeManagerTest, PodFsGroupOwnsItsManagedVolumesButNotHostPaths) {
  VolumeManager vm(&api_, root_, [this] { return Now(); });
  api_.SetObject("/api/v1/namespaces/n/secrets/db", {{"data", {{"password", "czNjcjN0"}}}});
  const std::string host = root_ + "/host";
  std::filesystem::create_directories(host);
  Json pod = Json::parse(R"({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
    "spec": {"securityContext": {"fsGroup": 2000}, "volumes": [
      {"name": "cache", "emptyDir": {}},
      {"name": "creds", "secret": {"secretName": "db", "defaultMode": 256}},
      {"name": "host", "hostPath": {"path": "HOST"}}]}})");
  pod["spec"]["volumes"][2]["hostPath"]["path"] = host;
  auto vols = vm.SetUpPodVolumes(pod, "");
  ASSERT_TRUE(vols.ok()) << vols.status();
  EXPECT_EQ(GroupOf((*vols)["cache"].host_path), 2000u);
  EXPECT_EQ(ModeOf((*vols)["cache"].host_path), 02777);
  EXPECT_EQ(GroupOf((*vols)["creds"].host_path + "/password"), 2000u);
  EXPECT_EQ(ModeOf((*vols)["creds"].host_path + "/password"), 0440);  // 0400 + group read
  EXPECT_EQ(GroupOf(host), 0u);                                       // hostPath: never changed
  ASSERT_TRUE(vm.TearDownPodVolumes("u").ok());
}

}  // namespace
}  // namespace berth::kubelet
