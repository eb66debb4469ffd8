#include "cni/testing/fake_network_plugin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::cni::testing {
namespace {

TEST(FakeNetworkPluginTest, AttachesAndInjectsErrors) {
  FakeNetworkPlugin net;
  EXPECT_TRUE(net.Ready().ok());
  AttachRequest req;
  req.container_id = "sb1";
  auto r = net.Add(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ips, std::vector<std::string>{"10.88.0.2"});
  EXPECT_TRUE(net.Check(req).ok());
  EXPECT_EQ(net.attached().count("sb1"), 1u);
  EXPECT_TRUE(net.Del(req).ok());
  EXPECT_TRUE(net.Del(req).ok());
  EXPECT_EQ(net.Check(req).code(), absl::StatusCode::kNotFound);
  net.SetAddError(absl::InternalError("boom"));
  EXPECT_EQ(net.Add(req).status().message(), "boom");
  EXPECT_TRUE(net.attached().empty());
  net.SetReady(absl::FailedPreconditionError("no network config found in /x"));
  EXPECT_EQ(net.Ready().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(net.calls(), ::testing::ElementsAre("ADD sb1", "CHECK sb1", "DEL sb1", "DEL sb1",
                                                  "CHECK sb1", "ADD sb1"));
}

}  // namespace
}  // namespace berth::cni::testing
