// PodManager: pod admission (OS, sysctls), activeDeadlineSeconds, DNS config and env from
// ConfigMaps and Secrets, as the upstream kubelet.
#include "kubelet/pod_manager.h"
#include "kubelet/testing/pod_manager_fixture.h"

namespace berth::kubelet {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Upstream's sysctl admission: an unsafe sysctl the node does not allow rejects the pod
// (Failed, SysctlForbidden) before anything runs; safe ones reach the sandbox, normalized.
TEST_F(PodManagerTest, UnsafeSysctlRejectsThePodSafeOnesRun) {
  Json bad = MakePod("unsafe", "Never");
  bad["spec"]["securityContext"]["sysctls"] =
      Json::parse(R"([{"name": "kernel.shmall", "value": "1"}])");
  manager_->HandlePodEvent("ADDED", bad);
  auto failed = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Failed"; });
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ((*failed)["reason"], "SysctlForbidden");
  EXPECT_EQ((*failed)["message"],
            "Pod was rejected: forbidden sysctl: \"kernel.shmall\" not allowlisted");
  EXPECT_TRUE(runtime_.Sandboxes().empty());

  // A pod for another OS: PodOSNotSupported.
  Json windows = MakePod("windows", "Never");
  windows["spec"]["os"] = {{"name", "windows"}};
  manager_->HandlePodEvent("ADDED", windows);
  auto rejected = api_.WaitForStatus(
      [](const Json& s) { return s.value("reason", "") == "PodOSNotSupported"; });
  ASSERT_TRUE(rejected.has_value());
  EXPECT_EQ(Phase(*rejected), "Failed");

  Json good = MakePod("safe");
  good["spec"]["securityContext"]["sysctls"] =
      Json::parse(R"([{"name": "kernel/shm_rmid_forced", "value": "1"}])");
  manager_->HandlePodEvent("ADDED", good);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  auto sandboxes = runtime_.Sandboxes();
  ASSERT_EQ(sandboxes.size(), 1u);
  EXPECT_EQ(sandboxes.begin()->second.config.linux().sysctls().at("kernel.shm_rmid_forced"), "1");
}

// spec.activeDeadlineSeconds, counted from the pod's startTime (upstream
// activeDeadlineHandler): once passed, the containers are killed and the pod is Failed with
// reason DeadlineExceeded.
TEST_F(PodManagerTest, ActiveDeadlineKillsThePod) {
  Json pod = MakePod("deadline");
  pod["spec"]["activeDeadlineSeconds"] = 30;
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  clock_.Advance(absl::Seconds(31));
  pod["metadata"]["labels"]["touched"] = "1";  // any update makes the worker look again
  manager_->HandlePodEvent("MODIFIED", pod);
  auto failed = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Failed"; });
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ((*failed)["reason"], "DeadlineExceeded");
  EXPECT_EQ((*failed)["message"], "Pod was active on the node longer than the specified deadline");
  std::string id = runtime_.LatestContainer("main");
  EXPECT_NE(runtime_.Containers().at(id).state, runtime::v1::CONTAINER_RUNNING);
}

// A node with --cluster-dns and --cluster-domain (kubelet dns.Configurer.GetPodDNS).
class PodManagerClusterDnsTest : public PodManagerTest {
 protected:
  void Configure(PodManagerOptions* opts) override {
    opts->cluster_dns = {"10.96.0.10"};
    opts->cluster_domain = "cluster.local";
  }
  // The DNS config of the sandbox of a pod whose spec is patched by `edit`.
  runtime::v1::DNSConfig SandboxDns(const std::string& name,
                                    const std::function<void(Json&)>& edit) {
    Json pod = MakePod(name);
    edit(pod["spec"]);
    manager_->HandlePodEvent("ADDED", pod);
    EXPECT_TRUE(
        api_.WaitForStatus([&](const Json& s) { return Phase(s) == "Running"; }).has_value());
    for (const auto& [id, sb] : runtime_.Sandboxes()) {
      if (sb.config.metadata().name() == name) return sb.config.dns_config();
    }
    ADD_FAILURE() << "no sandbox for " << name;
    return {};
  }
};

TEST_F(PodManagerClusterDnsTest, ClusterFirstUsesClusterDnsAndSearchesFirst) {
  auto dns = SandboxDns("cf", [](Json&) {});
  EXPECT_THAT(dns.servers(), ElementsAre("10.96.0.10"));
  EXPECT_THAT(dns.searches(), ElementsAre("default.svc.cluster.local", "svc.cluster.local",
                                          "cluster.local", "example.test"));
  EXPECT_THAT(dns.options(), ElementsAre("ndots:5"));
}

TEST_F(PodManagerClusterDnsTest, DefaultPolicyIsTheHostsResolvConf) {
  auto dns = SandboxDns("def", [](Json& spec) { spec["dnsPolicy"] = "Default"; });
  EXPECT_THAT(dns.servers(), ElementsAre("192.0.2.53"));
  EXPECT_THAT(dns.searches(), ElementsAre("example.test"));
  EXPECT_THAT(dns.options(), ElementsAre("edns0"));
}

TEST_F(PodManagerClusterDnsTest, PodDnsConfigIsAppendedAndItsOptionsWin) {
  auto dns = SandboxDns("custom", [](Json& spec) {
    spec["dnsConfig"] = Json::parse(R"({"nameservers": ["10.96.0.10", "192.0.2.99"],
        "searches": ["my.example", "svc.cluster.local"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})");
  });
  EXPECT_THAT(dns.servers(), ElementsAre("10.96.0.10", "192.0.2.99"));
  EXPECT_THAT(dns.searches(), ElementsAre("default.svc.cluster.local", "svc.cluster.local",
                                          "cluster.local", "example.test", "my.example"));
  EXPECT_THAT(dns.options(), ElementsAre("ndots:2", "edns0"));
}

TEST_F(PodManagerClusterDnsTest, NonePolicyHasOnlyThePodsDnsConfig) {
  auto dns = SandboxDns("none", [](Json& spec) {
    spec["dnsPolicy"] = "None";
    spec["dnsConfig"] = Json::parse(R"({"nameservers": ["1.2.3.4", "1.2.3.5", "1.2.3.6", "1.2.3.7"],
        "searches": ["a.example"]})");
  });
  EXPECT_THAT(dns.servers(),
              ElementsAre("1.2.3.4", "1.2.3.5", "1.2.3.6"));  // at most 3, as upstream
  EXPECT_THAT(dns.searches(), ElementsAre("a.example"));
  EXPECT_TRUE(dns.options().empty());
}
// envFrom a ConfigMap and a Secret, with and without prefix; keys that are not C identifiers
// ("data-1") are passed on as they are, as upstream (the conformance specs check them); a
// resourceFieldRef with the divisor the API server defaults ("0") gives the plain value.
TEST_F(PodManagerTest, EnvFromConfigMapsAndSecrets) {
  api_.SetObject("/api/v1/namespaces/default/configmaps/cm", {{"data", {{"data-1", "value-1"}}}});
  api_.SetObject("/api/v1/namespaces/default/secrets/sec",
                 {{"data", {{"data-2", "dmFsdWUtMg=="}}}});
  Json pod = MakePod("envfrom");
  Json& main = pod["spec"]["containers"][0];
  main["envFrom"] = Json::parse(
      R"([{"configMapRef": {"name": "cm"}}, {"prefix": "p-", "configMapRef": {"name": "cm"}},
                                    {"secretRef": {"name": "sec"}}])");
  main["resources"] = {{"limits", {{"memory", "64Mi"}}}};
  main["env"].push_back(
      {{"name", "MEM"},
       {"valueFrom",
        {{"resourceFieldRef",
          {{"containerName", ""}, {"resource", "limits.memory"}, {"divisor", "0"}}}}}});
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  const auto config = runtime_.Containers().at(runtime_.LatestContainer("main")).config;
  std::map<std::string, std::string> env;
  for (const auto& kv : config.envs()) env[kv.key()] = kv.value();
  EXPECT_EQ(env["data-1"], "value-1");
  EXPECT_EQ(env["p-data-1"], "value-1");
  EXPECT_EQ(env["data-2"], "value-2");
  EXPECT_EQ(env["MEM"], "67108864");
}

}  // namespace
}  // namespace berth::kubelet
