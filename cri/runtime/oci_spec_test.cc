#include "cri/runtime/oci_spec.h"

#include <algorithm>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::cri::runtime {
namespace {
namespace v1 = ::runtime::v1;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

image::ImageConfig Img(std::vector<std::string> ep, std::vector<std::string> cmd) {
  image::ImageConfig c;
  c.entrypoint = std::move(ep);
  c.cmd = std::move(cmd);
  return c;
}

v1::ContainerConfig Cfg(std::vector<std::string> command, std::vector<std::string> args) {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name("c");
  for (auto& s : command) c.add_command(s);
  for (auto& s : args) c.add_args(s);
  return c;
}

TEST(ProcessArgs, ImageEntrypointAndCmd) {
  EXPECT_THAT(*ProcessArgs(Cfg({}, {}), Img({"/ep"}, {"a", "b"})), ElementsAre("/ep", "a", "b"));
}

TEST(ProcessArgs, CriArgsReplaceImageCmd) {
  EXPECT_THAT(*ProcessArgs(Cfg({}, {"x"}), Img({"/ep"}, {"a"})), ElementsAre("/ep", "x"));
}

TEST(ProcessArgs, CriCommandDropsImageEntrypointAndCmd) {
  EXPECT_THAT(*ProcessArgs(Cfg({"/bin/sh"}, {}), Img({"/ep"}, {"a"})), ElementsAre("/bin/sh"));
  EXPECT_THAT(*ProcessArgs(Cfg({"/bin/sh"}, {"-c", "x"}), Img({"/ep"}, {"a"})),
              ElementsAre("/bin/sh", "-c", "x"));
}

TEST(ProcessArgs, EmptyIsInvalid) {
  auto r = ProcessArgs(Cfg({}, {}), Img({}, {}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MergeEnv, CriOverridesImageAndDefaultPath) {
  v1::ContainerConfig c;
  auto* kv = c.add_envs();
  kv->set_key("A");
  kv->set_value("cri");
  kv = c.add_envs();
  kv->set_key("C");
  kv->set_value("3");
  auto env = MergeEnv({"HOSTNAME=h"}, {"A=img", "B=2"}, c);
  EXPECT_THAT(env, ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "HOSTNAME=h", "A=cri", "B=2", "C=3"));
  auto env2 = MergeEnv({}, {"PATH=/x"}, v1::ContainerConfig());
  EXPECT_THAT(env2, ElementsAre("PATH=/x"));
}

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1::/:/bin/false\n"
    "app:x:1000:1001:App:/home/app:/bin/sh\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "appgrp:x:1001:\n"
    "audio:x:29:app,other\n"
    "video:x:44:other\n";

TEST(ResolveUser, DefaultsToRoot) {
  auto u = ResolveUser({}, "", kPasswd, kGroup);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 0u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_THAT(u->additional_gids, ElementsAre(0u));
}

TEST(ResolveUser, ImageUserNameGetsPrimaryAndMemberGroups) {
  auto u = ResolveUser({}, "app", kPasswd, kGroup);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1001u);
  EXPECT_THAT(u->additional_gids, ElementsAre(1001u, 29u));
}

TEST(ResolveUser, ImageUserWithGroupName) {
  auto u = ResolveUser({}, "app:video", kPasswd, kGroup);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->gid, 44u);
  auto n = ResolveUser({}, "5:7", "", "");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->uid, 5u);
  EXPECT_EQ(n->gid, 7u);
}

TEST(ResolveUser, RunAsUserOverridesImageAndUsesPasswdGid) {
  v1::LinuxContainerSecurityContext sc;
  sc.mutable_run_as_user()->set_value(1000);
  sc.add_supplemental_groups(44);
  sc.add_supplemental_groups(1001);
  auto u = ResolveUser(sc, "daemon", kPasswd, kGroup);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1001u);
  EXPECT_THAT(u->additional_gids, ElementsAre(1001u, 29u, 44u));
  sc.mutable_run_as_group()->set_value(3);
  EXPECT_EQ(ResolveUser(sc, "", kPasswd, kGroup)->gid, 3u);
}

TEST(ResolveUser, RunAsUsername) {
  v1::LinuxContainerSecurityContext sc;
  sc.set_run_as_username("daemon");
  auto u = ResolveUser(sc, "app", kPasswd, kGroup);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 1u);
  EXPECT_EQ(u->gid, 1u);
}

TEST(ResolveUser, UnknownNamesAreErrors) {
  EXPECT_EQ(ResolveUser({}, "nobody", kPasswd, kGroup).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveUser({}, "app:nogroup", kPasswd, kGroup).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClampOomScoreAdj, NeverBelowCurrent) {
  EXPECT_EQ(ClampOomScoreAdj(-998, 0), 0);
  EXPECT_EQ(ClampOomScoreAdj(1000, 0), 1000);
  EXPECT_EQ(ClampOomScoreAdj(-500, -900), -500);
  EXPECT_EQ(ClampOomScoreAdj(-1000, -900), -900);
}

struct SpecFixture : ::testing::Test {
  SpecFixture() {
    cfg.mutable_metadata()->set_name("app");
    cfg.add_command("/bin/sh");
    img.id = "sha256:abc";
    in.container_id = "cid";
    in.config = &cfg;
    in.image = &img;
    in.rootfs = "/r/rootfs";
    in.cgroups_path = "/berth-e2e/pod/cid";
    in.sandbox.id = "sid";
    in.sandbox.pause_pid = 42;
    in.sandbox.netns_path = "/run/berth/netns/sid";
    in.sandbox.hosts_path = "/s/hosts";
    in.sandbox.hostname_path = "/s/hostname";
    in.sandbox.resolv_conf_path = "/s/resolv.conf";
    in.sandbox.shm_path = "/s/shm";
  }
  std::vector<std::string> Destinations(const nlohmann::json& spec) {
    std::vector<std::string> out;
    for (const auto& m : spec["mounts"]) out.push_back(m["destination"]);
    return out;
  }
  nlohmann::json MountAt(const nlohmann::json& spec, const std::string& dst) {
    for (const auto& m : spec["mounts"]) {
      if (m["destination"] == dst) return m;
    }
    return nullptr;
  }
  v1::ContainerConfig cfg;
  image::ResolvedImage img;
  SpecInput in;
};

TEST_F(SpecFixture, DefaultMountsAndSandboxFiles) {
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(Destinations(*spec),
              ElementsAre("/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
                          "/dev/shm", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"));
  EXPECT_EQ(MountAt(*spec, "/dev/shm")["source"], "/s/shm");
  EXPECT_THAT(MountAt(*spec, "/sys")["options"].get<std::vector<std::string>>(), Contains("ro"));
  EXPECT_EQ((*spec)["root"]["path"], "/r/rootfs");
  EXPECT_EQ((*spec)["linux"]["cgroupsPath"], "/berth-e2e/pod/cid");
  EXPECT_EQ((*spec)["process"]["cwd"], "/");
  EXPECT_FALSE((*spec)["linux"]["maskedPaths"].empty());
}

TEST_F(SpecFixture, CriMountsOverrideAndPropagation) {
  auto* m = cfg.add_mounts();
  m->set_container_path("/etc/hosts");
  m->set_host_path("/kubelet/etc-hosts");
  m = cfg.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/vol");
  m->set_readonly(true);
  m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok());
  int hosts = 0;
  for (const auto& d : Destinations(*spec)) hosts += d == "/etc/hosts";
  EXPECT_EQ(hosts, 1);
  EXPECT_EQ(MountAt(*spec, "/etc/hosts")["source"], "/kubelet/etc-hosts");
  EXPECT_THAT(MountAt(*spec, "/data")["options"].get<std::vector<std::string>>(),
              ElementsAre("rbind", "rslave", "ro"));
  EXPECT_EQ((*spec)["linux"]["rootfsPropagation"], "rslave");
  // A bidirectional volume makes the container's mounts shared, whatever the order.
  m = cfg.add_mounts();
  m->set_container_path("/shared");
  m->set_host_path("/mnt/shared");
  m->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  cfg.add_mounts()->CopyFrom(cfg.mounts(1));
  spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["linux"]["rootfsPropagation"], "rshared");
  cfg.clear_mounts();
  spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE((*spec)["linux"].contains("rootfsPropagation"));
}

TEST_F(SpecFixture, NamespacesJoinPause) {
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok());
  auto ns = (*spec)["linux"]["namespaces"];
  EXPECT_EQ(ns.size(), 5u);
  bool net = false, pid_new = false;
  for (const auto& n : ns) {
    if (n["type"] == "network") net = n["path"] == "/run/berth/netns/sid";
    if (n["type"] == "pid") pid_new = !n.contains("path");
    if (n["type"] == "ipc") {
      EXPECT_EQ(n["path"], "/proc/42/ns/ipc");
    }
  }
  EXPECT_TRUE(net);
  EXPECT_TRUE(pid_new);

  cfg.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::NODE);
  in.sandbox.host_network = true;
  in.sandbox.host_ipc = true;
  auto host = GenerateSpec(in);
  ASSERT_TRUE(host.ok());
  EXPECT_EQ((*host)["linux"]["namespaces"].size(), 1u);  // only mount
}

TEST_F(SpecFixture, PidNamespaceTargetJoinsTheTargetContainer) {
  auto* nso = cfg.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  nso->set_pid(v1::TARGET);
  nso->set_target_id("target-ctr");
  in.target_pid = 4242;
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok());
  std::string pid_path = "missing";
  for (const auto& n : (*spec)["linux"]["namespaces"]) {
    if (n["type"] == "pid") pid_path = n.value("path", "");
  }
  EXPECT_EQ(pid_path, "/proc/4242/ns/pid");
}

TEST_F(SpecFixture, CapabilitiesAddDropPrivileged) {
  auto* caps = cfg.mutable_linux()->mutable_security_context()->mutable_capabilities();
  caps->add_add_capabilities("NET_ADMIN");
  caps->add_drop_capabilities("CAP_KILL");
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok());
  auto eff = (*spec)["process"]["capabilities"]["effective"].get<std::vector<std::string>>();
  EXPECT_THAT(eff, Contains("CAP_NET_ADMIN"));
  EXPECT_THAT(eff, Not(Contains("CAP_KILL")));
  EXPECT_THAT(eff, Contains("CAP_CHOWN"));

  caps->Clear();
  caps->add_drop_capabilities("ALL");
  caps->add_add_capabilities("CHOWN");
  spec = GenerateSpec(in);
  EXPECT_THAT((*spec)["process"]["capabilities"]["effective"].get<std::vector<std::string>>(),
              ElementsAre("CAP_CHOWN"));

  caps->Clear();
  caps->add_add_capabilities("CAP_BOGUS");
  EXPECT_EQ(GenerateSpec(in).status().code(), absl::StatusCode::kInvalidArgument);

  caps->Clear();
  cfg.mutable_linux()->mutable_security_context()->set_privileged(true);
  spec = GenerateSpec(in);
  EXPECT_THAT((*spec)["process"]["capabilities"]["effective"].get<std::vector<std::string>>(),
              Contains("CAP_SYS_ADMIN"));
  EXPECT_FALSE((*spec)["linux"].contains("maskedPaths"));
  EXPECT_THAT(MountAt(*spec, "/sys")["options"].get<std::vector<std::string>>(), Contains("rw"));
}

TEST_F(SpecFixture, ResourcesAndOomClamp) {
  auto* r = cfg.mutable_linux()->mutable_resources();
  r->set_cpu_shares(512);
  r->set_cpu_quota(50000);
  r->set_cpu_period(100000);
  r->set_memory_limit_in_bytes(64 << 20);
  r->set_oom_score_adj(-997);
  in.current_oom_score_adj = -500;
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok());
  auto res = (*spec)["linux"]["resources"];
  EXPECT_EQ(res["cpu"]["shares"], 512);
  EXPECT_EQ(res["cpu"]["quota"], 50000);
  EXPECT_EQ(res["memory"]["limit"], 64 << 20);
  EXPECT_EQ((*spec)["process"]["oomScoreAdj"], -500);
}

TEST_F(SpecFixture, WorkingDirAndUserFromImage) {
  img.config.working_dir = "/srv";
  img.config.user = "app";
  in.passwd = kPasswd;
  in.group = kGroup;
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["cwd"], "/srv");
  EXPECT_EQ((*spec)["process"]["user"]["uid"], 1000);
  cfg.set_working_dir("/w");
  EXPECT_EQ((*GenerateSpec(in))["process"]["cwd"], "/w");
}

TEST_F(SpecFixture, CapabilitiesLimitedToBerthsBoundingSet) {
  in.cap_bounding = ~(uint64_t{1} << 24);  // no CAP_SYS_RESOURCE, as on this CI machine
  cfg.mutable_linux()->mutable_security_context()->set_privileged(true);
  auto caps =
      (*GenerateSpec(in))["process"]["capabilities"]["bounding"].get<std::vector<std::string>>();
  EXPECT_THAT(caps, Contains("CAP_SYS_ADMIN"));
  EXPECT_THAT(caps, Not(Contains("CAP_SYS_RESOURCE")));
  cfg.mutable_linux()->mutable_security_context()->set_privileged(false);
  cfg.mutable_linux()->mutable_security_context()->mutable_capabilities()->add_add_capabilities(
      "ALL");
  caps =
      (*GenerateSpec(in))["process"]["capabilities"]["effective"].get<std::vector<std::string>>();
  EXPECT_THAT(caps, Contains("CAP_NET_ADMIN"));
  EXPECT_THAT(caps, Not(Contains("CAP_SYS_RESOURCE")));
}

TEST_F(SpecFixture, SeccompSysctlsAndRecursiveReadOnlyMounts) {
  auto* sc = cfg.mutable_linux()->mutable_security_context();
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  in.sandbox.sysctls = {{"net.ipv4.ip_forward", "1"}};
  auto* m = cfg.add_mounts();
  m->set_host_path("/h");
  m->set_container_path("/c");
  m->set_readonly(true);
  m->set_recursive_read_only(true);
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ((*spec)["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
  EXPECT_THAT(MountAt(*spec, "/c")["options"].get<std::vector<std::string>>(), Contains("rro"));
  m->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  EXPECT_EQ(GenerateSpec(in).status().code(), absl::StatusCode::kInvalidArgument);
  m->set_propagation(v1::PROPAGATION_PRIVATE);
  m->set_readonly(false);
  EXPECT_EQ(GenerateSpec(in).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PodUserns, ValidatesModesAndMappings) {
  v1::PodSandboxConfig cfg;
  EXPECT_FALSE(PodUserns(cfg)->enabled());  // absent: the host's
  auto* nso = cfg.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  auto* u = nso->mutable_userns_options();
  u->set_mode(v1::NODE);
  EXPECT_FALSE(PodUserns(cfg)->enabled());
  u->set_mode(v1::POD);
  EXPECT_EQ(PodUserns(cfg).status().code(), absl::StatusCode::kInvalidArgument);  // no mappings
  for (auto* m : {u->add_uids(), u->add_gids()}) {
    m->set_host_id(1000);
    m->set_length(100000);
  }
  auto ok = PodUserns(cfg);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->uid_map, "0 1000 100000\n");
  EXPECT_EQ(ok->gid_map, "0 1000 100000\n");
  u->set_mode(v1::NODE);
  EXPECT_EQ(PodUserns(cfg).status().code(), absl::StatusCode::kInvalidArgument);  // NODE + maps
  u->set_mode(v1::POD);
  nso->set_network(v1::NODE);
  EXPECT_EQ(PodUserns(cfg).status().code(), absl::StatusCode::kInvalidArgument);
  nso->set_network(v1::POD);
  u->mutable_uids(0)->set_container_id(1);
  EXPECT_EQ(PodUserns(cfg).status().code(), absl::StatusCode::kInvalidArgument);
  u->mutable_uids(0)->set_container_id(0);
  u->add_uids()->CopyFrom(u->uids(0));
  EXPECT_EQ(PodUserns(cfg).status().code(), absl::StatusCode::kInvalidArgument);
  u->mutable_uids()->RemoveLast();
  for (auto mode : {v1::CONTAINER, v1::TARGET}) {
    u->set_mode(mode);
    EXPECT_EQ(PodUserns(cfg).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(SpecFixture, UserNamespacedPodJoinsThePausesUserns) {
  in.sandbox.pause_pid = 42;
  in.sandbox.userns = {"0 1000 100000\n", "0 2000 100000\n", 1000, 2000, 100000};
  auto spec = GenerateSpec(in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  bool user = false;
  for (const auto& n : (*spec)["linux"]["namespaces"]) {
    if (n["type"] == "user") user = n["path"] == "/proc/42/ns/user";
  }
  EXPECT_TRUE(user) << (*spec)["linux"]["namespaces"].dump();
  EXPECT_EQ((*spec)["linux"]["uidMappings"][0]["hostID"], 1000);
  EXPECT_EQ((*spec)["linux"]["gidMappings"][0]["hostID"], 2000);
  EXPECT_EQ((*spec)["linux"]["gidMappings"][0]["size"], 100000);
}

TEST(ResolveUser, RunAsGroupNeedsAUserAndStrictPolicySkipsImageGroups) {
  v1::LinuxContainerSecurityContext sc;
  sc.mutable_run_as_group()->set_value(3);
  EXPECT_EQ(ResolveUser(sc, "app", kPasswd, kGroup).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::LinuxContainerSecurityContext strict;
  strict.mutable_run_as_user()->set_value(1000);
  strict.add_supplemental_groups(44);
  strict.set_supplemental_groups_policy(v1::Strict);
  EXPECT_THAT(ResolveUser(strict, "", kPasswd, kGroup)->additional_gids, ElementsAre(1001u, 44u));
}

}  // namespace
}  // namespace berth::cri::runtime
