#include "cni/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "base/file.h"

namespace berth::cni {
namespace {

TEST(ParseNetworkConfigTest, ParsesList) {
  auto l = ParseNetworkConfig(R"({"name":"net","cniVersion":"1.0.0","disableCheck":true,
      "plugins":[{"type":"bridge","bridge":"b0"},{"type":"portmap","capabilities":{"portMappings":true}}]})");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->name, "net");
  EXPECT_EQ(l->cni_version, "1.0.0");
  EXPECT_TRUE(l->disable_check);
  ASSERT_EQ(l->plugins.size(), 2u);
  EXPECT_EQ(l->plugins[0].type, "bridge");
  EXPECT_EQ(l->plugins[0].raw["bridge"], "b0");
  EXPECT_FALSE(l->plugins[0].HasCapability("portMappings"));
  EXPECT_TRUE(l->plugins[1].HasCapability("portMappings"));
}

TEST(ParseNetworkConfigTest, WrapsSingleConf) {
  auto l = ParseNetworkConfig(R"({"name":"one","cniVersion":"0.4.0","type":"ptp","mtu":1400})");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->name, "one");
  EXPECT_EQ(l->cni_version, "0.4.0");
  ASSERT_EQ(l->plugins.size(), 1u);
  EXPECT_EQ(l->plugins[0].type, "ptp");
  EXPECT_EQ(l->plugins[0].raw["mtu"], 1400);
  EXPECT_TRUE(l->raw.contains("plugins"));
}

TEST(ParseNetworkConfigTest, RejectsInvalid) {
  EXPECT_FALSE(ParseNetworkConfig("not json").ok());
  EXPECT_FALSE(ParseNetworkConfig("[]").ok());
  EXPECT_FALSE(ParseNetworkConfig(R"({"cniVersion":"1.0.0","plugins":[{"type":"x"}]})").ok());
  EXPECT_FALSE(ParseNetworkConfig(R"({"name":"n","plugins":[{"type":"x"}]})").ok());
  EXPECT_FALSE(
      ParseNetworkConfig(R"({"name":"n","cniVersion":"9.9.9","plugins":[{"type":"x"}]})").ok());
  EXPECT_FALSE(ParseNetworkConfig(R"({"name":"n","cniVersion":"1.0.0","plugins":[]})").ok());
  EXPECT_FALSE(ParseNetworkConfig(R"({"name":"n","cniVersion":"1.0.0","plugins":[{"a":1}]})").ok());
  EXPECT_FALSE(
      ParseNetworkConfig(R"({"name":"n","cniVersion":"1.0.0","plugins":[{"type":"../x"}]})").ok());
  auto s =
      ParseNetworkConfig(R"({"name":"n","cniVersion":"1.0.0","plugins":[{"mtu":1}]})").status();
  EXPECT_NE(s.message().find("plugins[0] has no \"type\""), std::string::npos) << s;
}

TEST(ParseNetworkConfigTest, RejectsInvalidNetworkName) {
  EXPECT_FALSE(
      ParseNetworkConfig(R"({"name":"../x","cniVersion":"1.0.0","plugins":[{"type":"x"}]})").ok());
  EXPECT_FALSE(
      ParseNetworkConfig(R"({"name":"a b","cniVersion":"1.0.0","plugins":[{"type":"x"}]})").ok());
  EXPECT_TRUE(ParseNetworkConfig(
                  R"({"name":"k8s-pod.net_1","cniVersion":"1.0.0","plugins":[{"type":"x"}]})")
                  .ok());
}

TEST(ValidateTest, NamesAndInterfaces) {
  EXPECT_TRUE(IsValidCniName("0123abc.def-g_h"));
  EXPECT_FALSE(IsValidCniName(""));
  EXPECT_FALSE(IsValidCniName("-abc"));
  EXPECT_FALSE(IsValidCniName("a/b"));
  EXPECT_TRUE(ValidateInterfaceName("eth0").ok());
  EXPECT_TRUE(ValidateInterfaceName("abcdefghijklmno").ok());  // 15 bytes
  EXPECT_FALSE(ValidateInterfaceName("abcdefghijklmnop").ok());
  EXPECT_FALSE(ValidateInterfaceName("").ok());
  EXPECT_FALSE(ValidateInterfaceName("..").ok());
  EXPECT_FALSE(ValidateInterfaceName("a:b").ok());
  EXPECT_FALSE(ValidateInterfaceName("a b").ok());
}

TEST(CompareVersionsTest, Orders) {
  EXPECT_LT(CompareVersions("0.3.1", "0.4.0"), 0);
  EXPECT_EQ(CompareVersions("1.0.0", "1.0.0"), 0);
  EXPECT_GT(CompareVersions("1.1.0", "1.0.0"), 0);
  EXPECT_GT(CompareVersions("0.10.0", "0.9.0"), 0);
}

class LoadDefaultNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cni_config_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  void Write(const std::string& name, const std::string& data) {
    ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, name), data).ok());
  }
  std::string dir_;
};

TEST_F(LoadDefaultNetworkTest, EmptyDirIsFailedPrecondition) {
  auto l = LoadDefaultNetwork(dir_);
  EXPECT_EQ(l.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(l.status().message().find("no network config found in " + dir_), std::string::npos);
  EXPECT_EQ(LoadDefaultNetwork(dir_ + "/missing").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(LoadDefaultNetworkTest, FirstValidInLexicalOrder) {
  Write("05-broken.conflist", "{");
  Write("10-b.conf", R"({"name":"b","cniVersion":"1.0.0","type":"bridge"})");
  Write("20-a.conflist", R"({"name":"a","cniVersion":"1.0.0","plugins":[{"type":"bridge"}]})");
  Write("00-ignored.txt", R"({"name":"t","cniVersion":"1.0.0","plugins":[{"type":"bridge"}]})");
  auto l = LoadDefaultNetwork(dir_);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->name, "b");
  EXPECT_EQ(l->source_path, dir_ + "/10-b.conf");
}

TEST_F(LoadDefaultNetworkTest, OnlyInvalidFilesSaysWhy) {
  Write("10-x.json", R"({"name":"x","cniVersion":"7.0.0","type":"bridge"})");
  auto l = LoadDefaultNetwork(dir_);
  EXPECT_EQ(l.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(l.status().message().find("unsupported cniVersion 7.0.0"), std::string::npos)
      << l.status();
}

}  // namespace
}  // namespace berth::cni
