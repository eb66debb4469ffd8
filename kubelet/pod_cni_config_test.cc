#include "kubelet/pod_cni_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "base/file.h"

namespace berth::kubelet {
namespace {

TEST(PodCniConfigTest, WritesOnlyIntoAnEmptyDir) {
  char tmpl[] = "/tmp/berth_cni_conf.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = std::string(tmpl) + "/net.d";
  ASSERT_TRUE(WriteDefaultCniConfig(dir, "10.244.3.0/24").ok());
  auto text = ReadFile(dir + "/10-berth.conflist");
  ASSERT_TRUE(text.ok());
  auto j = nlohmann::json::parse(*text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.3.0/24");
  EXPECT_FALSE(j["plugins"][0]["ipam"].contains("dataDir"));
  // A second call with another CIDR keeps the existing configuration.
  ASSERT_TRUE(WriteDefaultCniConfig(dir, "10.244.9.0/24").ok());
  EXPECT_EQ(*ReadFile(dir + "/10-berth.conflist"), *text);
  ASSERT_TRUE(RemoveAll(tmpl).ok());
}

TEST(PodCniConfigTest, IpamDataDir) {
  auto j = nlohmann::json::parse(DefaultCniConfig("10.244.1.0/24", "/var/lib/berth/cni/networks"));
  EXPECT_EQ(j["plugins"][0]["ipam"]["dataDir"], "/var/lib/berth/cni/networks");
  EXPECT_EQ(j["plugins"][0]["type"], "bridge");
}

}  // namespace
}  // namespace berth::kubelet
