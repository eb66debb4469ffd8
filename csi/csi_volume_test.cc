#include "csi/csi_volume.h"

#include <sys/mount.h>
#include <unistd.h>

#include "base/file.h"
#include "csi/testing/fake_csi_driver.h"
#include "csi/testing/object_store_api.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::csi {
namespace {

using ::testing::ElementsAre;
using Cap = ::csi::v1::NodeServiceCapability::RPC;
using AccessMode = ::csi::v1::VolumeCapability::AccessMode;
using Json = nlohmann::json;

constexpr char kDriver[] = "drv.example.com";

class CsiVolumesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/csi-vol-XXXXXX";
    root_ = ::mkdtemp(t);
    sock_ = JoinPath(root_, "csi.sock");
    driver_ = std::make_unique<testing::FakeCsiDriver>(sock_, kDriver);
    driver_->SetCapabilities({Cap::STAGE_UNSTAGE_VOLUME});
    registry_.Add(kDriver, sock_);
  }
  void TearDown() override {
    driver_.reset();
    (void)RemoveAll(root_);
  }
  VolumeRequest Request(const std::string& pod_uid) {
    VolumeRequest r;
    r.driver = kDriver;
    r.volume_handle = "vol-1";
    r.spec_name = "pv-1";
    r.pod_uid = pod_uid;
    r.pod_name = "p-" + pod_uid;
    r.pod_namespace = "ns";
    r.service_account = "default";
    r.attributes = {{"k", "v"}};
    r.fs_type = "ext4";
    r.mount_options = {"noatime"};
    r.publish_context = {{"dev", "/dev/x"}};
    r.stage_secrets = {{"s", "1"}};
    r.publish_secrets = {{"p", "2"}};
    return r;
  }
  Json ReadJsonFile(const std::string& path) { return Json::parse(*ReadFile(path)); }

  std::string root_, sock_;
  std::unique_ptr<testing::FakeCsiDriver> driver_;
  DriverRegistry registry_;
  std::unique_ptr<CsiVolumes> volumes_;
  CsiVolumes& V() {
    if (!volumes_)
      volumes_ =
          std::make_unique<CsiVolumes>(&registry_, nullptr, root_, "node-a", absl::Seconds(5));
    return *volumes_;
  }
};

TEST(CsiAccessModeTest, MapsAsUpstream) {
  EXPECT_EQ(CsiAccessMode("ReadWriteOnce", true), AccessMode::SINGLE_NODE_MULTI_WRITER);
  EXPECT_EQ(CsiAccessMode("ReadWriteOncePod", true), AccessMode::SINGLE_NODE_SINGLE_WRITER);
  EXPECT_EQ(CsiAccessMode("ReadWriteOnce", false), AccessMode::SINGLE_NODE_WRITER);
  EXPECT_EQ(CsiAccessMode("ReadWriteOncePod", false), AccessMode::SINGLE_NODE_WRITER);
  EXPECT_EQ(CsiAccessMode("ReadOnlyMany", false), AccessMode::MULTI_NODE_READER_ONLY);
  EXPECT_EQ(CsiAccessMode("ReadWriteMany", true), AccessMode::MULTI_NODE_MULTI_WRITER);
}

TEST(Sha256HexTest, KnownValue) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(CsiVolumesTest, StagePublishUnpublishUnstageWithUpstreamPaths) {
  auto pub = V().SetUp(Request("uid-1"));
  ASSERT_TRUE(pub.ok()) << pub.status();
  const std::string staging =
      root_ + "/plugins/kubernetes.io/csi/drv.example.com/" + Sha256Hex("vol-1") + "/globalmount";
  const std::string target = root_ + "/pods/uid-1/volumes/kubernetes.io~csi/pv-1/mount";
  EXPECT_EQ(pub->target_path, target);
  EXPECT_THAT(driver_->Methods(), ElementsAre("NodeGetCapabilities", "NodeStageVolume",
                                              "NodeGetCapabilities", "NodePublishVolume"));
  auto stage = driver_->Last<::csi::v1::NodeStageVolumeRequest>("NodeStageVolume");
  EXPECT_EQ(stage.volume_id(), "vol-1");
  EXPECT_EQ(stage.staging_target_path(), staging);
  EXPECT_EQ(stage.publish_context().at("dev"), "/dev/x");
  EXPECT_EQ(stage.secrets().at("s"), "1");
  EXPECT_EQ(stage.volume_context().at("k"), "v");
  EXPECT_EQ(stage.volume_capability().mount().fs_type(), "ext4");
  EXPECT_THAT(stage.volume_capability().mount().mount_flags(), ElementsAre("noatime"));
  EXPECT_EQ(stage.volume_capability().access_mode().mode(), AccessMode::SINGLE_NODE_WRITER);
  auto publish = driver_->Last<::csi::v1::NodePublishVolumeRequest>("NodePublishVolume");
  EXPECT_EQ(publish.target_path(), target);
  EXPECT_EQ(publish.staging_target_path(), staging);
  EXPECT_EQ(publish.secrets().at("p"), "2");
  EXPECT_FALSE(publish.readonly());
  EXPECT_FALSE(publish.volume_context().contains("csi.storage.k8s.io/pod.name"));
  EXPECT_EQ(ReadJsonFile(root_ + "/plugins/kubernetes.io/csi/drv.example.com/" +
                         Sha256Hex("vol-1") + "/vol_data.json"),
            Json({{"volumeHandle", "vol-1"}, {"driverName", kDriver}}));
  Json data = ReadJsonFile(root_ + "/pods/uid-1/volumes/kubernetes.io~csi/pv-1/vol_data.json");
  EXPECT_EQ(data["specVolID"], "pv-1");
  EXPECT_EQ(data["volumeHandle"], "vol-1");
  EXPECT_EQ(data["driverName"], kDriver);
  EXPECT_EQ(data["nodeName"], "node-a");
  EXPECT_EQ(data["volumeLifecycleMode"], "Persistent");

  // A second pod: no second stage.
  driver_->ClearCalls();
  ASSERT_TRUE(V().SetUp(Request("uid-2")).ok());
  EXPECT_THAT(driver_->Methods(),
              ElementsAre("NodeGetCapabilities", "NodeGetCapabilities", "NodePublishVolume"));

  // First pod goes: unpublish only (the other pod still uses the volume).
  driver_->ClearCalls();
  ASSERT_TRUE(V().TearDownPod("uid-1").ok());
  EXPECT_THAT(driver_->Methods(), ElementsAre("NodeUnpublishVolume"));
  EXPECT_FALSE(PathExists(root_ + "/pods/uid-1/volumes/kubernetes.io~csi/pv-1"));
  EXPECT_TRUE(PathExists(staging));

  // Last pod goes, with a fresh CsiVolumes (as after a restart): unpublish, then unstage.
  volumes_.reset();
  driver_->ClearCalls();
  ASSERT_TRUE(V().TearDownPod("uid-2").ok());
  EXPECT_THAT(driver_->Methods(),
              ElementsAre("NodeUnpublishVolume", "NodeGetCapabilities", "NodeUnstageVolume"));
  auto unstage = driver_->Last<::csi::v1::NodeUnstageVolumeRequest>("NodeUnstageVolume");
  EXPECT_EQ(unstage.staging_target_path(), staging);
  EXPECT_FALSE(
      PathExists(root_ + "/plugins/kubernetes.io/csi/drv.example.com/" + Sha256Hex("vol-1")));
  EXPECT_FALSE(PathExists(root_ + "/pods/uid-2/volumes/kubernetes.io~csi/pv-1"));
}

TEST_F(CsiVolumesTest, WithoutStageUnstageOnlyPublishes) {
  driver_->SetCapabilities({Cap::SINGLE_NODE_MULTI_WRITER});
  ASSERT_TRUE(V().SetUp(Request("uid-1")).ok());
  EXPECT_THAT(driver_->Methods(),
              ElementsAre("NodeGetCapabilities", "NodeGetCapabilities", "NodePublishVolume"));
  auto publish = driver_->Last<::csi::v1::NodePublishVolumeRequest>("NodePublishVolume");
  EXPECT_EQ(publish.staging_target_path(), "");
  EXPECT_EQ(publish.volume_capability().access_mode().mode(), AccessMode::SINGLE_NODE_MULTI_WRITER);
  // The staging metadata is written anyway, as upstream.
  EXPECT_TRUE(PathExists(root_ + "/plugins/kubernetes.io/csi/drv.example.com/" +
                         Sha256Hex("vol-1") + "/vol_data.json"));
  driver_->ClearCalls();
  ASSERT_TRUE(V().TearDownPod("uid-1").ok());
  EXPECT_THAT(driver_->Methods(), ElementsAre("NodeUnpublishVolume", "NodeGetCapabilities"));
  EXPECT_FALSE(
      PathExists(root_ + "/plugins/kubernetes.io/csi/drv.example.com/" + Sha256Hex("vol-1")));
}

TEST_F(CsiVolumesTest, InlineEphemeralWithPodInfoAndMountGroup) {
  driver_->SetCapabilities({Cap::STAGE_UNSTAGE_VOLUME, Cap::VOLUME_MOUNT_GROUP});
  VolumeRequest r = Request("uid-1");
  r.ephemeral = true;
  r.spec_name = "scratch";
  r.volume_handle = "csi-" + Sha256Hex("uid-1scratch");
  r.pod_info_on_mount = true;
  r.fs_group = 1234;
  r.read_only = true;
  auto pub = V().SetUp(r);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_FALSE(pub->kubelet_applies_fs_group);
  EXPECT_THAT(driver_->Methods(),
              ElementsAre("NodeGetCapabilities", "NodeGetCapabilities", "NodePublishVolume"));
  auto publish = driver_->Last<::csi::v1::NodePublishVolumeRequest>("NodePublishVolume");
  EXPECT_EQ(publish.staging_target_path(), "");
  EXPECT_TRUE(publish.readonly());
  EXPECT_EQ(publish.volume_capability().mount().volume_mount_group(), "1234");
  EXPECT_EQ(publish.volume_context().at("csi.storage.k8s.io/pod.name"), "p-uid-1");
  EXPECT_EQ(publish.volume_context().at("csi.storage.k8s.io/pod.namespace"), "ns");
  EXPECT_EQ(publish.volume_context().at("csi.storage.k8s.io/pod.uid"), "uid-1");
  EXPECT_EQ(publish.volume_context().at("csi.storage.k8s.io/serviceAccount.name"), "default");
  EXPECT_EQ(publish.volume_context().at("csi.storage.k8s.io/ephemeral"), "true");
  EXPECT_EQ(
      ReadJsonFile(
          root_ +
          "/pods/uid-1/volumes/kubernetes.io~csi/scratch/vol_data.json")["volumeLifecycleMode"],
      "Ephemeral");
  driver_->ClearCalls();
  ASSERT_TRUE(V().TearDownPod("uid-1").ok());
  EXPECT_THAT(driver_->Methods(), ElementsAre("NodeUnpublishVolume"));
}

TEST_F(CsiVolumesTest, FsGroupAppliedByKubeletPerPolicy) {
  VolumeRequest r = Request("uid-1");
  r.fs_group = 1000;
  auto pub = V().SetUp(r);
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(pub->kubelet_applies_fs_group);  // RWO with an fsType
  r.pod_uid = "uid-2";
  r.fs_group_policy = "None";
  EXPECT_FALSE(V().SetUp(r)->kubelet_applies_fs_group);
  r.pod_uid = "uid-3";
  r.fs_group_policy = "ReadWriteOnceWithFSType";
  r.fs_type = "";
  EXPECT_FALSE(V().SetUp(r)->kubelet_applies_fs_group);
  r.pod_uid = "uid-4";
  r.fs_group_policy = "File";
  EXPECT_TRUE(V().SetUp(r)->kubelet_applies_fs_group);
}

TEST_F(CsiVolumesTest, FinalPublishErrorCleansUpNonFinalKeepsRecord) {
  driver_->Fail("NodePublishVolume", grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad"));
  auto pub = V().SetUp(Request("uid-1"));
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pub.status().message()), ::testing::HasSubstr("NodePublishVolume: bad"));
  EXPECT_FALSE(PathExists(root_ + "/pods/uid-1/volumes/kubernetes.io~csi/pv-1"));

  driver_->Fail("NodePublishVolume", grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow"));
  pub = V().SetUp(Request("uid-2"));
  ASSERT_FALSE(pub.ok());
  // Uncertain: the record stays so that teardown unpublishes.
  EXPECT_TRUE(PathExists(root_ + "/pods/uid-2/volumes/kubernetes.io~csi/pv-1/vol_data.json"));
  driver_->Fail("NodePublishVolume", grpc::Status::OK);
  driver_->ClearCalls();
  ASSERT_TRUE(V().TearDownPod("uid-2").ok());
  EXPECT_THAT(driver_->Methods(),
              ElementsAre("NodeUnpublishVolume", "NodeGetCapabilities", "NodeUnstageVolume"));
}

TEST_F(CsiVolumesTest, UnregisteredDriverAndFailedUnpublishAreErrors) {
  VolumeRequest r = Request("uid-1");
  r.driver = "other.example.com";
  auto pub = V().SetUp(r);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(std::string(pub.status().message()),
              ::testing::HasSubstr("not found in the list of registered CSI drivers"));

  ASSERT_TRUE(V().SetUp(Request("uid-1")).ok());
  driver_->Fail("NodeUnpublishVolume", grpc::Status(grpc::StatusCode::INTERNAL, "busy"));
  EXPECT_FALSE(V().TearDownPod("uid-1").ok());
  EXPECT_TRUE(PathExists(root_ + "/pods/uid-1/volumes/kubernetes.io~csi/pv-1/vol_data.json"));
  driver_->Fail("NodeUnpublishVolume", grpc::Status::OK);
  EXPECT_TRUE(V().TearDownPod("uid-1").ok());
  EXPECT_FALSE(PathExists(root_ + "/pods/uid-1/volumes/kubernetes.io~csi"));
}

TEST_F(CsiVolumesTest, TargetStillMountedAfterUnpublishIsAnError) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a bind mount";
  ASSERT_TRUE(V().SetUp(Request("uid-1")).ok());
  const std::string target = V().TargetPath("uid-1", "pv-1");
  const std::string src = JoinPath(root_, "src");
  ASSERT_TRUE(MkdirAll(src).ok());
  // A bind mount within one filesystem (same st_dev as the parent): a driver that
  // "unpublished" without unmounting must not make berth delete the volume's files.
  ASSERT_EQ(::mount(src.c_str(), target.c_str(), nullptr, MS_BIND, nullptr), 0);
  ASSERT_TRUE(WriteFileAtomic(JoinPath(src, "data"), "keep").ok());
  absl::Status s = V().TearDownPod("uid-1");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("still mounted"));
  EXPECT_TRUE(PathExists(JoinPath(src, "data")));
  EXPECT_TRUE(PathExists(root_ + "/pods/uid-1/volumes/kubernetes.io~csi/pv-1/vol_data.json"));
  ASSERT_EQ(::umount(target.c_str()), 0);
  EXPECT_TRUE(V().TearDownPod("uid-1").ok());
  EXPECT_FALSE(PathExists(root_ + "/pods/uid-1/volumes/kubernetes.io~csi"));
}

TEST_F(CsiVolumesTest, PersistentFromApiObjectsWaitsForAttachment) {
  testing::ObjectStoreApi api;
  CsiVolumes v(&registry_, &api, root_, "node-a", absl::Seconds(5));
  int in_use_changed = 0;
  v.SetVolumesInUseChanged([&] { ++in_use_changed; });
  Json pod = {{"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "uid-9"}}},
              {"spec", {{"serviceAccountName", "sa"}}}};
  Json pv = {{"metadata", {{"name", "pv-9"}}},
             {"spec",
              {{"accessModes", {"ReadWriteOncePod"}},
               {"csi",
                {{"driver", kDriver},
                 {"volumeHandle", "h9"},
                 {"volumeAttributes", {{"a", "b"}}},
                 {"nodePublishSecretRef", {{"name", "sec"}, {"namespace", "ns2"}}}}}}}};
  api.Set("/api/v1/namespaces/ns2/secrets/sec", {{"data", {{"user", "YWRtaW4="}}}});
  api.Set("/api/v1/nodes/node-a", {{"metadata", {{"name", "node-a"}}}});
  const std::string name = std::string("kubernetes.io/csi/") + kDriver + "^h9";
  EXPECT_EQ(UniqueVolumeName(kDriver, "h9"), name);
  EXPECT_TRUE(v.VolumesInUse().empty());
  // No CSIDriver object: attach required. The pod wants it: in use, not yet reported.
  auto pub = v.SetUpPersistent(pod, pv, false);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(pub.status().message()), ::testing::HasSubstr("VolumesInUse"));
  EXPECT_THAT(v.VolumesInUse(), ElementsAre(name));
  EXPECT_GE(in_use_changed, 1);
  // Reported, but not in the Node's volumesAttached.
  v.MarkVolumesReportedInUse({name});
  pub = v.SetUpPersistent(pod, pv, false);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(std::string(pub.status().message()), ::testing::HasSubstr("node status"));
  api.Set("/api/v1/nodes/node-a",
          {{"metadata", {{"name", "node-a"}}},
           {"status", {{"volumesAttached", {{{"name", name}, {"devicePath", ""}}}}}}});
  // Listed there, but no VolumeAttachment yet.
  pub = v.SetUpPersistent(pod, pv, false);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(driver_->Methods().empty());
  const std::string va = "csi-" + Sha256Hex(std::string("h9") + kDriver + "node-a");
  api.Set("/apis/storage.k8s.io/v1/volumeattachments/" + va,
          {{"metadata", {{"name", va}}},
           {"status", {{"attached", false}, {"attachError", {{"message", "no such disk"}}}}}});
  pub = v.SetUpPersistent(pod, pv, false);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(std::string(pub.status().message()), ::testing::HasSubstr("no such disk"));
  api.Set("/apis/storage.k8s.io/v1/volumeattachments/" + va,
          {{"metadata", {{"name", va}}},
           {"status", {{"attached", true}, {"attachmentMetadata", {{"lun", "3"}}}}}});
  pub = v.SetUpPersistent(pod, pv, true);
  ASSERT_TRUE(pub.ok()) << pub.status();
  auto stage = driver_->Last<::csi::v1::NodeStageVolumeRequest>("NodeStageVolume");
  EXPECT_EQ(stage.publish_context().at("lun"), "3");
  auto publish = driver_->Last<::csi::v1::NodePublishVolumeRequest>("NodePublishVolume");
  EXPECT_EQ(publish.publish_context().at("lun"), "3");
  EXPECT_EQ(publish.secrets().at("user"), "admin");
  EXPECT_TRUE(publish.readonly());
  EXPECT_EQ(publish.volume_capability().access_mode().mode(), AccessMode::SINGLE_NODE_WRITER);
  EXPECT_EQ(ReadJsonFile(
                root_ + "/pods/uid-9/volumes/kubernetes.io~csi/pv-9/vol_data.json")["attachmentID"],
            va);
  // A restarted kubelet (a new object) reports the published volume from vol_data.json.
  CsiVolumes restarted(&registry_, &api, root_, "node-a", absl::Seconds(5));
  EXPECT_THAT(restarted.VolumesInUse(), ElementsAre(name));
  // In use until unstaged, not after.
  ASSERT_TRUE(v.TearDownPod("uid-9").ok());
  EXPECT_THAT(driver_->Methods(), ::testing::Contains("NodeUnstageVolume"));
  EXPECT_TRUE(v.VolumesInUse().empty());
}

// attachRequired: false: no VolumeAttachment, nothing in volumesInUse, no publish_context.
TEST_F(CsiVolumesTest, AttachNotRequiredSkipsTheWait) {
  testing::ObjectStoreApi api;
  CsiVolumes v(&registry_, &api, root_, "node-a", absl::Seconds(5));
  api.Set(std::string("/apis/storage.k8s.io/v1/csidrivers/") + kDriver,
          {{"spec", {{"attachRequired", false}}}});
  Json pod = {{"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "uid-7"}}},
              {"spec", Json::object()}};
  Json pv = {{"metadata", {{"name", "pv-7"}}},
             {"spec", {{"csi", {{"driver", kDriver}, {"volumeHandle", "h7"}}}}}};
  auto pub = v.SetUpPersistent(pod, pv, false);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_TRUE(v.VolumesInUse().empty());
  auto publish = driver_->Last<::csi::v1::NodePublishVolumeRequest>("NodePublishVolume");
  EXPECT_TRUE(publish.publish_context().empty());
  EXPECT_EQ(ReadJsonFile(
                root_ + "/pods/uid-7/volumes/kubernetes.io~csi/pv-7/vol_data.json")["attachmentID"],
            "");
  ASSERT_TRUE(v.TearDownPod("uid-7").ok());
}

// A pod deleted while waiting for the attachment no longer holds the volume in use.
TEST_F(CsiVolumesTest, PodGoneWhileWaitingReleasesTheVolume) {
  testing::ObjectStoreApi api;
  CsiVolumes v(&registry_, &api, root_, "node-a", absl::Seconds(5));
  Json pv = {{"metadata", {{"name", "pv-8"}}},
             {"spec", {{"csi", {{"driver", kDriver}, {"volumeHandle", "h8"}}}}}};
  auto pod = [](const std::string& uid) {
    return Json{{"metadata", {{"name", uid}, {"namespace", "ns"}, {"uid", uid}}},
                {"spec", Json::object()}};
  };
  EXPECT_FALSE(v.SetUpPersistent(pod("a"), pv, false).ok());
  EXPECT_FALSE(v.SetUpPersistent(pod("b"), pv, false).ok());
  ASSERT_TRUE(v.TearDownPod("a").ok());
  EXPECT_EQ(v.VolumesInUse().size(), 1u);  // pod b still wants it
  ASSERT_TRUE(v.TearDownPod("b").ok());
  EXPECT_TRUE(v.VolumesInUse().empty());
}

TEST_F(CsiVolumesTest, InlineNeedsEphemeralLifecycleMode) {
  testing::ObjectStoreApi api;
  CsiVolumes v(&registry_, &api, root_, "node-a", absl::Seconds(5));
  Json pod = {{"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "uid-5"}}},
              {"spec", Json::object()}};
  Json volume = {{"name", "inl"},
                 {"csi", {{"driver", kDriver}, {"volumeAttributes", {{"size", "1"}}}}}};
  auto pub = v.SetUpInline(pod, volume);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(std::string(pub.status().message()), ::testing::HasSubstr("Ephemeral"));
  api.Set(std::string("/apis/storage.k8s.io/v1/csidrivers/") + kDriver,
          {{"spec",
            {{"podInfoOnMount", true}, {"volumeLifecycleModes", {"Persistent", "Ephemeral"}}}}});
  pub = v.SetUpInline(pod, volume);
  ASSERT_TRUE(pub.ok()) << pub.status();
  auto publish = driver_->Last<::csi::v1::NodePublishVolumeRequest>("NodePublishVolume");
  EXPECT_EQ(publish.volume_id(), "csi-" + Sha256Hex("uid-5inl"));
  EXPECT_EQ(publish.volume_context().at("size"), "1");
  EXPECT_EQ(publish.volume_context().at("csi.storage.k8s.io/ephemeral"), "true");
  ASSERT_TRUE(v.TearDownPod("uid-5").ok());
}

// NodeGetVolumeStats only with GET_VOLUME_STATS, with the pod's target path; BYTES and INODES
// mapped as upstream; answers are kept for the max age.
TEST_F(CsiVolumesTest, VolumeStatsFromTheDriver) {
  const std::string path = root_ + "/pods/u/volumes/kubernetes.io~csi/pv/mount";
  auto stats = V().VolumeStats(kDriver, "vol-1", path);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(driver_->Methods(), std::vector<std::string>{"NodeGetCapabilities"});
  driver_->SetCapabilities({Cap::STAGE_UNSTAGE_VOLUME, Cap::GET_VOLUME_STATS});
  // A failure is kept too: nothing is asked again within the max age.
  EXPECT_FALSE(V().VolumeStats(kDriver, "vol-1", path).ok());
  EXPECT_EQ(driver_->Methods().size(), 1u);
  V().SetStatsMaxAge(absl::ZeroDuration());
  stats = V().VolumeStats(kDriver, "vol-1", path);
  ASSERT_FALSE(stats.ok());  // the driver answered no usage
  EXPECT_THAT(std::string(stats.status().message()), ::testing::HasSubstr("usage is nil"));
  ::csi::v1::NodeGetVolumeStatsResponse resp;
  auto* bytes = resp.add_usage();
  bytes->set_unit(::csi::v1::VolumeUsage::BYTES);
  bytes->set_total(1000);
  bytes->set_used(300);
  bytes->set_available(700);
  auto* inodes = resp.add_usage();
  inodes->set_unit(::csi::v1::VolumeUsage::INODES);
  inodes->set_total(50);
  inodes->set_used(5);
  inodes->set_available(45);
  driver_->SetVolumeStats(resp);
  stats = V().VolumeStats(kDriver, "vol-1", path);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->capacity_bytes, 1000);
  EXPECT_EQ(stats->used_bytes, 300);
  EXPECT_EQ(stats->available_bytes, 700);
  EXPECT_EQ(stats->inodes, 50);
  EXPECT_EQ(stats->inodes_used, 5);
  EXPECT_EQ(stats->inodes_free, 45);
  auto req = driver_->Last<::csi::v1::NodeGetVolumeStatsRequest>("NodeGetVolumeStats");
  EXPECT_EQ(req.volume_id(), "vol-1");
  EXPECT_EQ(req.volume_path(), path);
  V().SetStatsMaxAge(absl::Hours(1));
  const size_t calls = driver_->Methods().size();
  EXPECT_EQ(V().VolumeStats(kDriver, "vol-1", path)->used_bytes, 300);
  EXPECT_EQ(driver_->Methods().size(), calls);
  EXPECT_EQ(V().VolumeStats("other.driver", "h", "/p").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace berth::csi
