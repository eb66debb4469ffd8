#include "kubelet/container_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth::kubelet {
namespace {

namespace v1 = cri::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

Json PodJson() {
  return {{"metadata",
           {{"name", "web"}, {"namespace", "ns"}, {"uid", "u1"}, {"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", Json::array({{{"name", "main"}, {"image", "busybox"}}})}}}};
}

api::Pod Parse(const Json& json) {
  auto pod = api::ParsePod(json);
  EXPECT_TRUE(pod.ok()) << pod.status();
  return pod.ok() ? *pod : api::Pod();
}

std::vector<std::string> List(const google::protobuf::RepeatedPtrField<std::string>& r) {
  return {r.begin(), r.end()};
}

TEST(ContainerConfigTest, ParseResolvConfKeepsTheLastSearchAndEveryOption) {
  ResolvConf rc = ParseResolvConf(
      "# comment\nnameserver 1.1.1.1\n; other\nsearch a b\nnameserver 8.8.8.8\ndomain c\n"
      "options ndots:2\noptions rotate\n");
  EXPECT_THAT(rc.servers, ElementsAre("1.1.1.1", "8.8.8.8"));
  EXPECT_THAT(rc.searches, ElementsAre("c"));
  EXPECT_THAT(rc.options, ElementsAre("ndots:2", "rotate"));
}

TEST(ContainerConfigTest, SandboxClusterFirstDns) {
  SandboxConfigInputs in;
  in.cluster_dns = {"10.96.0.10"};
  in.cluster_domain = "cluster.local";
  in.host_dns = ParseResolvConf("nameserver 9.9.9.9\nsearch corp\noptions edns0\n");
  Json json = PodJson();
  json["spec"]["dnsConfig"] = {{"searches", {"extra"}},
                               {"options", Json::array({{{"name", "ndots"}, {"value", "2"}}})}};
  SandboxConfigResult r = MakePodSandboxConfig(Parse(json), 3, in);
  EXPECT_FALSE(r.missing_cluster_dns);
  const v1::DNSConfig& dns = r.config.dns_config();
  EXPECT_THAT(List(dns.servers()), ElementsAre("10.96.0.10"));
  EXPECT_THAT(List(dns.searches()), ElementsAre("ns.svc.cluster.local", "svc.cluster.local",
                                                "cluster.local", "corp", "extra"));
  EXPECT_THAT(List(dns.options()), ElementsAre("ndots:2"));
  EXPECT_EQ(r.config.metadata().attempt(), 3u);
  EXPECT_EQ(r.config.hostname(), "web");
  EXPECT_EQ(r.config.log_directory(), "/var/log/pods/ns_web_u1");
  EXPECT_EQ(r.config.labels().at("app"), "web");
  EXPECT_EQ(r.config.labels().at(kPodUidLabel), "u1");
  EXPECT_EQ(r.config.linux().cgroup_parent(), "/kubepods/besteffort/podu1");
}

TEST(ContainerConfigTest, SandboxWithoutClusterDnsFallsBackToTheHost) {
  SandboxConfigInputs in;
  in.host_dns = ParseResolvConf("nameserver 9.9.9.9\nsearch corp\n");
  SandboxConfigResult r = MakePodSandboxConfig(Parse(PodJson()), 0, in);
  EXPECT_TRUE(r.missing_cluster_dns);
  EXPECT_THAT(List(r.config.dns_config().servers()), ElementsAre("9.9.9.9"));
  EXPECT_THAT(MissingClusterDnsMessage(Parse(PodJson())),
              HasSubstr("pod: \"web_ns(u1)\". kubelet does not have ClusterDNS IP configured"));
}

TEST(ContainerConfigTest, SandboxDnsNoneIsCutToTheLimits) {
  Json json = PodJson();
  json["spec"]["dnsPolicy"] = "None";
  json["spec"]["dnsConfig"] = {
      {"nameservers", {"1.1.1.1", "2.2.2.2", "1.1.1.1", "3.3.3.3", "4.4.4.4"}}};
  SandboxConfigInputs in;
  in.host_dns = ParseResolvConf("nameserver 9.9.9.9\n");
  SandboxConfigResult r = MakePodSandboxConfig(Parse(json), 0, in);
  EXPECT_THAT(List(r.config.dns_config().servers()), ElementsAre("1.1.1.1", "2.2.2.2", "3.3.3.3"));
  EXPECT_TRUE(r.config.dns_config().searches().empty());
}

TEST(ContainerConfigTest, SandboxHostNetworkHostnamePortsSysctlsPrivileged) {
  Json json = PodJson();
  json["spec"]["hostNetwork"] = true;
  json["spec"]["containers"][0]["ports"] =
      Json::array({{{"containerPort", 80}, {"hostPort", 8080}, {"protocol", "UDP"}}});
  json["spec"]["containers"][0]["securityContext"] = {{"privileged", true}};
  json["spec"]["securityContext"] = {
      {"runAsUser", 1000},
      {"supplementalGroups", {5}},
      {"fsGroup", 6},
      {"sysctls", Json::array({{{"name", "net/core/somaxconn"}, {"value", "1024"}}})}};
  SandboxConfigInputs in;
  in.node_hostname = "node-1";
  in.cluster_dns = {"10.96.0.10"};
  in.host_dns = ParseResolvConf("nameserver 9.9.9.9\n");
  SandboxConfigResult r = MakePodSandboxConfig(Parse(json), 0, in);
  EXPECT_EQ(r.config.hostname(), "node-1");
  // ClusterFirst on the host network is Default.
  EXPECT_THAT(List(r.config.dns_config().servers()), ElementsAre("9.9.9.9"));
  ASSERT_EQ(r.config.port_mappings_size(), 1);
  EXPECT_EQ(r.config.port_mappings(0).protocol(), v1::UDP);
  EXPECT_EQ(r.config.port_mappings(0).host_port(), 8080);
  const auto& sc = r.config.linux().security_context();
  EXPECT_EQ(sc.namespace_options().network(), v1::NODE);
  EXPECT_TRUE(sc.privileged());
  EXPECT_EQ(sc.run_as_user().value(), 1000);
  EXPECT_THAT(sc.supplemental_groups(), ElementsAre(5, 6));
  EXPECT_EQ(r.config.linux().sysctls().at("net.core.somaxconn"), "1024");
}

TEST(ContainerConfigTest, HostnameAndFqdn) {
  Json json = PodJson();
  json["spec"]["hostname"] = std::string(70, 'h');
  json["spec"]["subdomain"] = "sub";
  json["spec"]["setHostnameAsFQDN"] = true;
  api::Pod pod = Parse(json);
  auto [host, domain] = PodHostnameAndDomain(pod, "cluster.local");
  EXPECT_EQ(host, std::string(63, 'h'));
  EXPECT_EQ(domain, "sub.ns.svc.cluster.local");
  SandboxConfigInputs in;
  in.cluster_domain = "cluster.local";
  EXPECT_EQ(MakePodSandboxConfig(pod, 0, in).config.hostname(),
            std::string(63, 'h') + ".sub.ns.svc.cluster.local");
}

TEST(ContainerConfigTest, HostsFile) {
  Json json = PodJson();
  json["spec"]["subdomain"] = "sub";
  json["spec"]["hostAliases"] = Json::array({{{"ip", "1.2.3.4"}, {"hostnames", {"a", "b"}}}});
  std::string hosts = MakeHostsFile(Parse(json), "10.1.0.5", "ignored", "cluster.local");
  EXPECT_THAT(hosts, HasSubstr("127.0.0.1\tlocalhost\n"));
  EXPECT_THAT(hosts, HasSubstr("10.1.0.5\tweb.sub.ns.svc.cluster.local\tweb\n"));
  EXPECT_THAT(hosts, HasSubstr("\n# Entries added by HostAliases.\n1.2.3.4\ta\tb\n"));
  EXPECT_THAT(hosts, ::testing::Not(HasSubstr("ignored")));

  json["spec"]["hostNetwork"] = true;
  EXPECT_EQ(MakeHostsFile(Parse(json), "10.1.0.5", "127.0.0.1 host\n", ""),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 host\n"
            "\n# Entries added by HostAliases.\n1.2.3.4\ta\tb\n");
}

TEST(ContainerConfigTest, EnvOrderOverridesExpansionAndReferences) {
  Json json = PodJson();
  Json& c = json["spec"]["containers"][0];
  c["envFrom"] = Json::array({{{"configMapRef", {{"name", "cm"}}}, {"prefix", "CM_"}},
                              {{"secretRef", {{"name", "missing"}, {"optional", true}}}}});
  c["env"] = Json::array(
      {{{"name", "SVC_HOST"}, {"value", "override"}},
       {{"name", "URL"}, {"value", "http://$(SVC_HOST):$(CM_port)/$(UNKNOWN)"}},
       {{"name", "IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}},
       {{"name", "PASS"}, {"valueFrom", {{"secretKeyRef", {{"name", "s"}, {"key", "password"}}}}}},
       {{"name", "OPT"},
        {"valueFrom",
         {{"configMapKeyRef", {{"name", "cm"}, {"key", "nope"}, {"optional", true}}}}}}});
  EnvInputs in;
  in.service_env = {{"SVC_HOST", "10.0.0.1"}, {"KUBERNETES_SERVICE_HOST", "10.96.0.1"}};
  in.pod_ip = "10.1.0.5";
  in.lookup = [](const std::string& kind, const std::string& name) -> absl::StatusOr<Json> {
    if (kind == "configmaps" && name == "cm") return Json{{"data", {{"port", "80"}}}};
    if (kind == "secrets" && name == "s") {
      return Json{{"data", {{"password", absl::Base64Escape("hunter2")}}}};
    }
    return absl::NotFoundError(absl::StrCat(kind, "/", name, " not found"));
  };
  auto env = MakeContainerEnv(Parse(json), Parse(json).spec.containers[0], in);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_THAT(
      *env, ElementsAre(Pair("SVC_HOST", "override"), Pair("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
                        Pair("CM_port", "80"), Pair("URL", "http://override:80/$(UNKNOWN)"),
                        Pair("IP", "10.1.0.5"), Pair("PASS", "hunter2")));
}

TEST(ContainerConfigTest, EnvMissingReferenceIsAnError) {
  Json json = PodJson();
  json["spec"]["containers"][0]["env"] = Json::array(
      {{{"name", "A"}, {"valueFrom", {{"configMapKeyRef", {{"name", "cm"}, {"key", "k"}}}}}}});
  EnvInputs in;
  in.lookup = [](const std::string&, const std::string&) -> absl::StatusOr<Json> {
    return Json{{"data", {{"other", "v"}}}};
  };
  api::Pod pod = Parse(json);
  auto env = MakeContainerEnv(pod, pod.spec.containers[0], in);
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(env.status().message(), HasSubstr("configmaps ns/cm has no key \"k\""));
}

TEST(ContainerConfigTest, VolumeMounts) {
  Json json = PodJson();
  json["spec"]["containers"][0]["volumeMounts"] = Json::array(
      {{{"name", "data"}, {"mountPath", "/data"}, {"mountPropagation", "HostToContainer"}},
       {{"name", "cfg"}, {"mountPath", "/cfg"}, {"subPathExpr", "$(POD)/x"}}});
  api::Pod pod = Parse(json);
  std::map<std::string, MountedVolume> volumes;
  volumes["data"].host_path = "/v/data";
  volumes["cfg"].host_path = "/v/cfg";
  volumes["cfg"].read_only = true;
  std::vector<std::pair<std::string, std::string>> prepared;
  std::vector<std::pair<std::string, int>> prepared_mounts;
  auto prepare = [&](const std::string& host, const std::string& sub, const std::string& volume,
                     int index) -> absl::StatusOr<std::string> {
    prepared.emplace_back(host, sub);
    prepared_mounts.emplace_back(volume, index);
    return host + "/" + sub;
  };
  auto mounts = MakeVolumeMounts(pod.spec.containers[0], volumes, {{"POD", "web"}}, prepare);
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  EXPECT_EQ(prepared_mounts, (std::vector<std::pair<std::string, int>>{{"cfg", 1}}));
  ASSERT_EQ(mounts->size(), 2u);
  EXPECT_EQ((*mounts)[0].host_path(), "/v/data");
  EXPECT_EQ((*mounts)[0].propagation(), v1::PROPAGATION_HOST_TO_CONTAINER);
  EXPECT_FALSE((*mounts)[0].readonly());
  EXPECT_EQ((*mounts)[1].host_path(), "/v/cfg/web/x");
  EXPECT_TRUE((*mounts)[1].readonly());
  EXPECT_THAT(prepared, ElementsAre(Pair("/v/cfg", "web/x")));

  volumes.erase("cfg");
  auto missing = MakeVolumeMounts(pod.spec.containers[0], volumes, {}, prepare);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(),
              HasSubstr("volumeMount \"cfg\" refers to a volume that is not set up"));
}

TEST(ContainerConfigTest, ResourcesByQosClass) {
  Json json = PodJson();
  json["spec"]["containers"][0]["resources"] = {{"requests", {{"cpu", "500m"}, {"memory", "64Mi"}}},
                                                {"limits", {{"cpu", "500m"}, {"memory", "64Mi"}}}};
  api::Pod guaranteed = Parse(json);
  v1::LinuxContainerResources r =
      MakeContainerResources(guaranteed, guaranteed.spec.containers[0], 1 << 30, -999);
  EXPECT_EQ(r.cpu_shares(), 512);
  EXPECT_EQ(r.cpu_period(), 100000);
  EXPECT_EQ(r.cpu_quota(), 50000);
  EXPECT_EQ(r.memory_limit_in_bytes(), 64 << 20);
  EXPECT_EQ(r.oom_score_adj(), -997);
  // Berth's own score is the floor.
  EXPECT_EQ(
      MakeContainerResources(guaranteed, guaranteed.spec.containers[0], 1 << 30, 0).oom_score_adj(),
      0);

  json["spec"]["containers"][0]["resources"] = {{"requests", {{"memory", "256Mi"}}}};
  api::Pod burstable = Parse(json);
  r = MakeContainerResources(burstable, burstable.spec.containers[0], 1 << 30, -999);
  EXPECT_EQ(r.cpu_shares(), 2);
  EXPECT_EQ(r.cpu_quota(), 0);
  EXPECT_EQ(r.oom_score_adj(), 750);

  api::Pod best_effort = Parse(PodJson());
  EXPECT_EQ(MakeContainerResources(best_effort, best_effort.spec.containers[0], 1 << 30, -999)
                .oom_score_adj(),
            1000);
}

TEST(ContainerConfigTest, SecurityContextContainerWinsGroupsOnceSeccompTarget) {
  Json json = PodJson();
  json["spec"]["securityContext"] = {
      {"runAsUser", 1000}, {"runAsGroup", 2000}, {"supplementalGroups", {5}}, {"fsGroup", 6}};
  json["spec"]["containers"][0]["securityContext"] = {
      {"runAsUser", 1001},
      {"allowPrivilegeEscalation", false},
      {"readOnlyRootFilesystem", true},
      {"capabilities", {{"add", {"NET_ADMIN"}}, {"drop", {"ALL"}}}}};
  api::Pod pod = Parse(json);
  SecurityContextInputs in;
  in.pid_target_id = "target";
  in.volume_gids = {6, 7, 7};
  in.seccomp = {SeccompProfile::Type::kLocalhost, "/var/lib/kubelet/seccomp/p.json"};
  v1::LinuxContainerSecurityContext sc =
      MakeContainerSecurityContext(pod, pod.spec.containers[0], in);
  EXPECT_EQ(sc.run_as_user().value(), 1001);
  EXPECT_EQ(sc.run_as_group().value(), 2000);
  EXPECT_THAT(sc.supplemental_groups(), ElementsAre(5, 6, 7));
  EXPECT_TRUE(sc.no_new_privs());
  EXPECT_TRUE(sc.readonly_rootfs());
  EXPECT_FALSE(sc.privileged());
  EXPECT_THAT(List(sc.capabilities().add_capabilities()), ElementsAre("NET_ADMIN"));
  EXPECT_THAT(List(sc.capabilities().drop_capabilities()), ElementsAre("ALL"));
  EXPECT_EQ(sc.namespace_options().pid(), v1::TARGET);
  EXPECT_EQ(sc.namespace_options().target_id(), "target");
  EXPECT_EQ(sc.seccomp().profile_type(), v1::SecurityProfile::Localhost);
  EXPECT_EQ(sc.seccomp().localhost_ref(), "/var/lib/kubelet/seccomp/p.json");

  // A shared PID namespace is kept over a target.
  json["spec"]["shareProcessNamespace"] = true;
  api::Pod shared = Parse(json);
  EXPECT_EQ(
      MakeContainerSecurityContext(shared, shared.spec.containers[0], in).namespace_options().pid(),
      v1::POD);
}

TEST(ContainerConfigTest, RunAsNonRoot) {
  Json json = PodJson();
  json["spec"]["securityContext"] = {{"runAsNonRoot", true}};
  api::Pod pod = Parse(json);
  const api::Container& c = pod.spec.containers[0];
  EXPECT_TRUE(RunAsNonRoot(pod, c));
  v1::LinuxContainerSecurityContext sc;
  sc.mutable_run_as_user()->set_value(0);
  EXPECT_THAT(VerifyRunAsNonRoot(pod, c, sc, nullptr).message(),
              HasSubstr("container's runAsUser breaks non-root policy (pod: \"web_ns(u1)\", "
                        "container: main)"));
  sc.mutable_run_as_user()->set_value(1000);
  EXPECT_TRUE(VerifyRunAsNonRoot(pod, c, sc, nullptr).ok());

  v1::LinuxContainerSecurityContext no_user;
  v1::Image image;
  EXPECT_THAT(VerifyRunAsNonRoot(pod, c, no_user, &image).message(),
              HasSubstr("image will run as root"));
  image.set_username("nobody");
  EXPECT_THAT(VerifyRunAsNonRoot(pod, c, no_user, &image).message(),
              HasSubstr("image has non-numeric user (nobody)"));
  image.mutable_uid()->set_value(65534);
  EXPECT_TRUE(VerifyRunAsNonRoot(pod, c, no_user, &image).ok());
  // Unknown image user: no verdict.
  EXPECT_TRUE(VerifyRunAsNonRoot(pod, c, no_user, nullptr).ok());

  json["spec"]["containers"][0]["securityContext"] = {{"runAsNonRoot", false}};
  api::Pod own = Parse(json);
  EXPECT_FALSE(RunAsNonRoot(own, own.spec.containers[0]));
}

TEST(ContainerConfigTest, ContainerConfigAssembly) {
  Json json = PodJson();
  json["spec"]["terminationGracePeriodSeconds"] = 45;
  json["spec"]["containers"][0]["command"] = {"sh", "-c"};
  json["spec"]["containers"][0]["args"] = {"echo $(MSG) $$(MSG)"};
  json["spec"]["containers"][0]["workingDir"] = "/w";
  json["spec"]["containers"][0]["tty"] = true;
  api::Pod pod = Parse(json);
  ContainerConfigInputs in;
  in.image_ref = "sha256:abc";
  in.restart_count = 2;
  in.env = {{"MSG", "hi"}};
  v1::Mount data;
  data.set_container_path("/data");
  data.set_host_path("/v/data");
  in.mounts = {data};
  in.hosts_path = "/pods/u1/etc-hosts";
  in.termination_log_path = "/pods/u1/containers/main/termination-log-2";
  in.resources.set_cpu_shares(2);
  in.security_context.set_privileged(true);
  v1::ContainerConfig cfg = MakeContainerConfig(pod, pod.spec.containers[0], in);
  EXPECT_EQ(cfg.metadata().name(), "main");
  EXPECT_EQ(cfg.metadata().attempt(), 2u);
  EXPECT_EQ(cfg.image().image(), "sha256:abc");
  EXPECT_EQ(cfg.image().user_specified_image(), "busybox");
  EXPECT_THAT(List(cfg.command()), ElementsAre("sh", "-c"));
  EXPECT_THAT(List(cfg.args()), ElementsAre("echo hi $(MSG)"));
  EXPECT_EQ(cfg.working_dir(), "/w");
  EXPECT_TRUE(cfg.tty());
  ASSERT_EQ(cfg.envs_size(), 1);
  EXPECT_EQ(cfg.envs(0).key(), "MSG");
  ASSERT_EQ(cfg.mounts_size(), 3);
  EXPECT_EQ(cfg.mounts(0).container_path(), "/data");
  EXPECT_EQ(cfg.mounts(1).container_path(), "/etc/hosts");
  EXPECT_EQ(cfg.mounts(2).container_path(), "/dev/termination-log");
  EXPECT_EQ(cfg.mounts(2).host_path(), "/pods/u1/containers/main/termination-log-2");
  EXPECT_EQ(cfg.log_path(), "main/2.log");
  EXPECT_EQ(cfg.labels().at(kContainerNameLabel), "main");
  EXPECT_EQ(cfg.annotations().at(kRestartCountAnnotation), "2");
  EXPECT_EQ(cfg.annotations().at(kGracePeriodAnnotation), "45");
  EXPECT_EQ(cfg.annotations().at(kTerminationMessagePolicyAnnotation), "File");
  EXPECT_EQ(cfg.linux().resources().cpu_shares(), 2);
  EXPECT_TRUE(cfg.linux().security_context().privileged());
}

}  // namespace
}  // namespace berth::kubelet
