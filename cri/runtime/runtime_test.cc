#include "cri/runtime/runtime.h"

#include <set>

#include "cri/runtime/testing/fakes.h"
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
            "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions "
            "ndots:5\n");
}

// CRI Status: a missing OCI runtime or conmon makes RuntimeReady false with the reason, and
// a missing network configuration makes NetworkReady false (what kubelet shows as
// "container runtime is down" / "network plugin not ready").
TEST(RuntimeStatus, ReportsMissingRuntimeAndNetwork) {
  oci::OciRuntimeOptions oo;
  oo.runtime_path = "/nonexistent/runc";
  oo.conmon_path = "/nonexistent/conmon";
  oci::OciRuntime oci(oo);
  berth::cri::runtime::testing::FakeImageResolver images;
  berth::cri::runtime::testing::FakeNetworkPlugin net;
  net.ready = absl::FailedPreconditionError("no network config found in /etc/cni/net.d");
  RuntimeDeps deps;
  deps.images = &images;
  deps.network = &net;
  deps.oci = &oci;
  Runtime rt(RuntimeOptions{}, deps);
  auto st = rt.Status(v1::StatusRequest());
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ(st->status().conditions_size(), 2);
  const auto& runtime_ready = st->status().conditions(0);
  EXPECT_EQ(runtime_ready.type(), "RuntimeReady");
  EXPECT_FALSE(runtime_ready.status());
  EXPECT_THAT(runtime_ready.message(), ::testing::HasSubstr("/nonexistent/"));
  const auto& network_ready = st->status().conditions(1);
  EXPECT_EQ(network_ready.type(), "NetworkReady");
  EXPECT_FALSE(network_ready.status());
  EXPECT_EQ(network_ready.reason(), "NetworkPluginNotReady");
  EXPECT_THAT(network_ready.message(), ::testing::HasSubstr("no network config"));
}

}  // namespace
}  // namespace berth::cri::runtime
