#include "cri/runtime/runtime.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::cri::runtime {
namespace {
namespace v1 = ::runtime::v1;

TEST(NewId, Is64HexAndUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    std::string id = NewId();
    ASSERT_EQ(id.size(), 64u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
}

TEST(NameKeys, DistinguishAttempts) {
  v1::PodSandboxMetadata m;
  m.set_name("p");
  m.set_namespace_("ns");
  m.set_uid("u");
  std::string k0 = SandboxNameKey(m);
  m.set_attempt(1);
  EXPECT_NE(k0, SandboxNameKey(m));
  v1::ContainerMetadata c;
  c.set_name("c");
  EXPECT_NE(ContainerNameKey("s1", c), ContainerNameKey("s2", c));
}

TEST(MatchLabels, SubsetMatches) {
  google::protobuf::Map<std::string, std::string> labels, sel;
  labels["app"] = "web";
  labels["tier"] = "fe";
  EXPECT_TRUE(MatchLabels(labels, sel));
  sel["app"] = "web";
  EXPECT_TRUE(MatchLabels(labels, sel));
  sel["tier"] = "be";
  EXPECT_FALSE(MatchLabels(labels, sel));
  sel.erase("tier");
  sel["x"] = "";
  EXPECT_FALSE(MatchLabels(labels, sel));
}

TEST(ResolvConf, FromDnsConfig) {
  v1::DNSConfig dns;
  EXPECT_EQ(ResolvConf(dns), "");
  dns.add_servers("10.96.0.10");
  dns.add_searches("default.svc.cluster.local");
  dns.add_searches("svc.cluster.local");
  dns.add_options("ndots:5");
  EXPECT_EQ(ResolvConf(dns),
            "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n");
}

}  // namespace
}  // namespace berth::cri::runtime
