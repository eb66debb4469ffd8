#include "csi/plugin_watcher.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "base/file.h"
#include "csi/csi_plugin.h"
#include "csi/node_info_manager.h"
#include "csi/testing/fake_csi_driver.h"
#include "csi/testing/object_store_api.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::csi {
namespace {

using ::testing::ElementsAre;
using Cap = ::csi::v1::NodeServiceCapability::RPC;

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/csi-test-XXXXXX";
    path_ = ::mkdtemp(t);
  }
  ~TempDir() { (void)RemoveAll(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr char kNodePath[] = "/api/v1/nodes/node-a";
constexpr char kCsiNodePath[] = "/apis/storage.k8s.io/v1/csinodes/node-a";

class PluginWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reg_dir_ = JoinPath(tmp_.path(), "plugins_registry");
    ASSERT_TRUE(MkdirAll(reg_dir_).ok());
    api_.Set(
        kNodePath,
        {{"metadata", {{"name", "node-a"}, {"uid", "uid-1"}, {"labels", {{"existing", "x"}}}}}});
    ASSERT_TRUE(nim_.InitializeCsiNode().ok());
    watcher_.AddHandler(kCsiPluginType, &handler_);
  }
  nlohmann::json CsiNode() { return *api_.Object(kCsiNodePath); }

  TempDir tmp_;
  std::string reg_dir_;
  testing::ObjectStoreApi api_;
  NodeInfoManager nim_{&api_, "node-a"};
  DriverRegistry registry_;
  CsiPluginHandler handler_{&registry_, &nim_, absl::Seconds(5)};
  PluginWatcher watcher_{JoinPath(tmp_.path(), "plugins_registry"), absl::Milliseconds(50)};
};

TEST(ValidateCsiVersionsTest, AcceptsOnly1x) {
  EXPECT_TRUE(ValidateCsiVersions("d", {"1.0.0"}).ok());
  EXPECT_TRUE(ValidateCsiVersions("d", {"0.3.0", "v1.2.0"}).ok());
  EXPECT_FALSE(ValidateCsiVersions("d", {"0.3.0"}).ok());
  EXPECT_FALSE(ValidateCsiVersions("d", {"2.0.0"}).ok());
  EXPECT_FALSE(ValidateCsiVersions("d", {}).ok());
}

TEST_F(PluginWatcherTest, InitializeCsiNodeOwnedByNodeWithMigratedPlugins) {
  auto csinode = CsiNode();
  EXPECT_EQ(csinode["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  EXPECT_EQ(csinode["metadata"]["ownerReferences"][0]["kind"], "Node");
  EXPECT_EQ(csinode["metadata"]["annotations"][kMigratedPluginsAnnotation], kMigratedPlugins);
  EXPECT_TRUE(csinode["spec"]["drivers"].empty());
  EXPECT_TRUE(nim_.Initialized());
}

TEST_F(PluginWatcherTest, CsiNodeOfAnotherNodeUidIsRecreated) {
  auto csinode = CsiNode();
  csinode["metadata"]["ownerReferences"][0]["uid"] = "old-uid";
  csinode["spec"]["drivers"] = {{{"name", "stale"}}};
  api_.Set(kCsiNodePath, csinode);
  ASSERT_TRUE(nim_.InitializeCsiNode().ok());
  auto now = CsiNode();
  EXPECT_EQ(now["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  EXPECT_TRUE(now["spec"]["drivers"].empty());
}

TEST_F(PluginWatcherTest, RegistersDeregistersAndReregisters) {
  const std::string sock = JoinPath(reg_dir_, "drv.example.com-reg.sock");
  auto driver = std::make_unique<testing::FakeCsiDriver>(sock, "drv.example.com");
  driver->SetNodeInfo("node-id-7", 12,
                      {{"topology.example.com/zone", "z1"}, {"a.example.com/rack", "r2"}});
  watcher_.ReconcileOnce();
  EXPECT_THAT(driver->Methods(), ElementsAre("GetInfo", "NodeGetInfo", "NotifyRegistrationStatus"));
  ASSERT_EQ(driver->Notifications().size(), 1u);
  EXPECT_TRUE(driver->Notifications()[0].plugin_registered());
  EXPECT_THAT(watcher_.RegisteredSockets(), ElementsAre(sock));
  // Empty endpoint in GetInfo: the registration socket serves the Node service.
  EXPECT_EQ(*registry_.Endpoint("drv.example.com"), sock);

  auto node = *api_.Object(kNodePath);
  EXPECT_EQ(
      nlohmann::json::parse(node["metadata"]["annotations"][kNodeIdAnnotation].get<std::string>()),
      nlohmann::json({{"drv.example.com", "node-id-7"}}));
  EXPECT_EQ(node["metadata"]["labels"]["topology.example.com/zone"], "z1");
  EXPECT_EQ(node["metadata"]["labels"]["existing"], "x");
  auto drivers = CsiNode()["spec"]["drivers"];
  ASSERT_EQ(drivers.size(), 1u);
  EXPECT_EQ(drivers[0]["name"], "drv.example.com");
  EXPECT_EQ(drivers[0]["nodeID"], "node-id-7");
  EXPECT_EQ(drivers[0]["topologyKeys"],
            nlohmann::json({"a.example.com/rack", "topology.example.com/zone"}));
  EXPECT_EQ(drivers[0]["allocatable"]["count"], 12);

  // Unchanged socket: nothing happens.
  driver->ClearCalls();
  watcher_.ReconcileOnce();
  EXPECT_TRUE(driver->Methods().empty());

  // Recreated socket: registered again.
  driver.reset();
  driver = std::make_unique<testing::FakeCsiDriver>(sock, "drv.example.com");
  driver->SetNodeInfo("node-id-8", 0, {});
  watcher_.ReconcileOnce();
  EXPECT_THAT(driver->Methods(), ElementsAre("GetInfo", "NodeGetInfo", "NotifyRegistrationStatus"));
  drivers = CsiNode()["spec"]["drivers"];
  ASSERT_EQ(drivers.size(), 1u);
  EXPECT_EQ(drivers[0]["nodeID"], "node-id-8");
  EXPECT_FALSE(drivers[0].contains("allocatable"));

  // Removed socket: deregistered, CSINode entry and annotation gone.
  driver->Shutdown();
  watcher_.ReconcileOnce();
  EXPECT_TRUE(watcher_.RegisteredSockets().empty());
  EXPECT_FALSE(registry_.Endpoint("drv.example.com").ok());
  EXPECT_TRUE(CsiNode()["spec"]["drivers"].empty());
  node = *api_.Object(kNodePath);
  EXPECT_FALSE(node["metadata"]["annotations"].contains(kNodeIdAnnotation));
  EXPECT_EQ(node["metadata"]["labels"]["topology.example.com/zone"],
            "z1");  // labels stay, as upstream
}

TEST_F(PluginWatcherTest, FailuresAreReportedToThePlugin) {
  const std::string sock = JoinPath(reg_dir_, "old-reg.sock");
  testing::FakeCsiDriver driver(sock, "old.example.com");
  driver.SetVersions({"0.3.0"});
  watcher_.ReconcileOnce();
  ASSERT_EQ(driver.Notifications().size(), 1u);
  EXPECT_FALSE(driver.Notifications()[0].plugin_registered());
  EXPECT_THAT(driver.Notifications()[0].error(), ::testing::HasSubstr("0.3.0"));
  EXPECT_TRUE(watcher_.RegisteredSockets().empty());
  EXPECT_TRUE(CsiNode()["spec"]["drivers"].empty());
}

TEST_F(PluginWatcherTest, EmptyNodeIdFailsRegistration) {
  const std::string sock = JoinPath(reg_dir_, "x-reg.sock");
  testing::FakeCsiDriver driver(sock, "x.example.com");
  driver.SetNodeInfo("", 0, {});
  watcher_.ReconcileOnce();
  ASSERT_EQ(driver.Notifications().size(), 1u);
  EXPECT_FALSE(driver.Notifications()[0].plugin_registered());
  EXPECT_FALSE(registry_.Endpoint("x.example.com").ok());
}

TEST_F(PluginWatcherTest, TopologyLabelCollisionFailsRegistration) {
  const std::string sock = JoinPath(reg_dir_, "x-reg.sock");
  testing::FakeCsiDriver driver(sock, "x.example.com");
  driver.SetNodeInfo("n", 0, {{"existing", "other"}});
  watcher_.ReconcileOnce();
  ASSERT_EQ(driver.Notifications().size(), 1u);
  EXPECT_FALSE(driver.Notifications()[0].plugin_registered());
  EXPECT_THAT(driver.Notifications()[0].error(), ::testing::HasSubstr("collides"));
}

TEST_F(PluginWatcherTest, HiddenSocketsAreIgnoredAndSubdirsSearched) {
  testing::FakeCsiDriver hidden(JoinPath(reg_dir_, ".hidden.sock"), "hidden.example.com");
  ASSERT_TRUE(MkdirAll(JoinPath(reg_dir_, "sub")).ok());
  testing::FakeCsiDriver nested(JoinPath(reg_dir_, "sub/n-reg.sock"), "nested.example.com");
  watcher_.ReconcileOnce();
  EXPECT_TRUE(hidden.Methods().empty());
  EXPECT_THAT(watcher_.RegisteredSockets(), ElementsAre(JoinPath(reg_dir_, "sub/n-reg.sock")));
}

TEST_F(PluginWatcherTest, ThreadRegistersNewSockets) {
  watcher_.Start();
  testing::FakeCsiDriver driver(JoinPath(reg_dir_, "t-reg.sock"), "t.example.com");
  ASSERT_TRUE(driver.WaitForNotification(1));
  EXPECT_TRUE(driver.Notifications()[0].plugin_registered());
  watcher_.Stop();
}

}  // namespace
}  // namespace berth::csi
