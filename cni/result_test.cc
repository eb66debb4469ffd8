#include "cni/result.h"

#include <gtest/gtest.h>

namespace berth::cni {
namespace {

TEST(ResultTest, Parses100AndOrdersIPv4First) {
  auto r = ParseResult(R"({"cniVersion":"1.0.0",
      "interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff","sandbox":"/run/netns/x"}],
      "ips":[{"address":"fd00::5/64","interface":0},{"address":"10.88.0.5/16","gateway":"10.88.0.1","interface":0}],
      "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.0.0.10"]}})",
                       "1.0.0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cni_version, "1.0.0");
  EXPECT_EQ(ResultIPs(*r), (std::vector<std::string>{"10.88.0.5", "fd00::5"}));
  EXPECT_EQ(r->interfaces[0]["mac"], "aa:bb:cc:dd:ee:ff");
  EXPECT_EQ(r->dns["nameservers"][0], "10.0.0.10");
}

TEST(ResultTest, Converts040To100AndBack) {
  auto r = ParseResult(R"({"cniVersion":"0.4.0",
      "ips":[{"version":"4","address":"10.1.0.2/24","gateway":"10.1.0.1","interface":1}],
      "routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}]})",
                       "0.4.0");
  ASSERT_TRUE(r.ok()) << r.status();
  nlohmann::json v1 = ResultToJson(*r, "1.0.0");
  EXPECT_EQ(v1["cniVersion"], "1.0.0");
  EXPECT_FALSE(v1["ips"][0].contains("version"));
  EXPECT_EQ(v1["ips"][0]["address"], "10.1.0.2/24");
  EXPECT_EQ(v1["ips"][0]["interface"], 1);
  EXPECT_EQ(v1["routes"][0]["gw"], "10.1.0.1");
  nlohmann::json v031 = ResultToJson(*r, "0.3.1");
  EXPECT_EQ(v031["cniVersion"], "0.3.1");
  EXPECT_EQ(v031["ips"][0]["version"], "4");
  auto r6 = ParseResult(R"({"cniVersion":"1.0.0","ips":[{"address":"fd00::1/64"}]})", "1.0.0");
  ASSERT_TRUE(r6.ok());
  EXPECT_EQ(ResultToJson(*r6, "0.4.0")["ips"][0]["version"], "6");
}

TEST(ResultTest, Converts020) {
  auto r = ParseResult(R"({"cniVersion":"0.2.0","ip4":{"ip":"10.2.0.3/16","gateway":"10.2.0.1",
      "routes":[{"dst":"0.0.0.0/0"}]},"ip6":{"ip":"fd01::3/64"}})",
                       "0.2.0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ResultIPs(*r), (std::vector<std::string>{"10.2.0.3", "fd01::3"}));
  nlohmann::json v1 = ResultToJson(*r, "1.0.0");
  EXPECT_EQ(v1["ips"][0]["gateway"], "10.2.0.1");
  EXPECT_EQ(v1["routes"].size(), 1u);
}

TEST(ResultTest, MissingVersionUsesDefault) {
  auto r = ParseResult(R"({"ips":[{"version":"4","address":"10.3.0.4/24"}]})", "0.3.1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cni_version, "0.3.1");
  EXPECT_EQ(ResultIPs(*r), std::vector<std::string>{"10.3.0.4"});
}

TEST(ResultTest, RejectsGarbage) {
  EXPECT_FALSE(ParseResult("", "1.0.0").ok());
  EXPECT_FALSE(ParseResult("[1]", "1.0.0").ok());
  EXPECT_FALSE(
      ParseResult(R"({"cniVersion":"1.0.0","ips":[{"gateway":"1.2.3.4"}]})", "1.0.0").ok());
  EXPECT_FALSE(ParseResult(R"({"cniVersion":"5.0.0"})", "1.0.0").ok());
}

}  // namespace
}  // namespace berth::cni
