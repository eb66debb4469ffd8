#include "cri/runtime/native_exec.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

namespace berth::cri::runtime {
namespace {

using nlohmann::json;

json Config() {
  return json::parse(R"({
    "process": {
      "user": {"uid": 1000, "gid": 2000, "additionalGids": [3, 4], "umask": 18},
      "args": ["sleep", "1"],
      "env": ["PATH=/usr/bin:/bin", "A=b"],
      "cwd": "/work",
      "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"],
                       "permitted": ["CAP_KILL"], "inheritable": [], "ambient": []},
      "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
      "noNewPrivileges": true,
      "oomScoreAdj": 500
    },
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}]}
  })");
}

TEST(PrepareNativeExec, TakesTheContainersProcess) {
  auto p = PrepareNativeExec(Config(), getpid(), {"ls", "-l"}, /*tty=*/true);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->argv, (std::vector<std::string>{"ls", "-l"}));
  EXPECT_EQ(p->envp, (std::vector<std::string>{"PATH=/usr/bin:/bin", "A=b", "TERM=xterm"}));
  EXPECT_EQ(p->exec_paths, (std::vector<std::string>{"/usr/bin/ls", "/bin/ls"}));
  EXPECT_EQ(p->not_found_msg, "exec: \"ls\": executable file not found in $PATH");
  EXPECT_EQ(p->cwd, "/work");
  EXPECT_EQ(p->uid, 1000u);
  EXPECT_EQ(p->gid, 2000u);
  EXPECT_EQ(p->groups, (std::vector<gid_t>{3, 4}));
  EXPECT_TRUE(p->has_umask);
  EXPECT_EQ(p->umask, 022u);
  EXPECT_TRUE(p->no_new_privs);
  EXPECT_TRUE(p->has_oom_score_adj);
  EXPECT_EQ(p->oom_score_adj, 500);
  EXPECT_EQ(p->cap_bounding, (uint64_t{1} << 0) | (uint64_t{1} << 5));  // CHOWN, KILL
  EXPECT_EQ(p->cap_effective, uint64_t{1} << 5);
  EXPECT_EQ(p->cap_ambient, 0u);
  ASSERT_EQ(p->rlimits.size(), 1u);
  EXPECT_EQ(p->rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(p->rlimits[0].soft, 1024u);
  EXPECT_EQ(p->rlimits[0].hard, 4096u);
  // Our own cgroups: one cgroup.procs per mounted hierarchy, each existing.
  ASSERT_FALSE(p->cgroup_procs.empty());
  for (const auto& f : p->cgroup_procs) EXPECT_EQ(access(f.c_str(), F_OK), 0) << f;

  auto abs = PrepareNativeExec(Config(), getpid(), {"/bin/true"}, false);
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ(abs->exec_paths, std::vector<std::string>{"/bin/true"});
  EXPECT_EQ(abs->envp.size(), 2u);  // no TERM without a tty
}

TEST(PrepareNativeExec, LeavesToRuncWhatItCannotServe) {
  auto with = [](const char* ptr, json v) {
    json c = Config();
    c[json::json_pointer(ptr)] = std::move(v);
    return PrepareNativeExec(c, getpid(), {"true"}, false).status();
  };
  EXPECT_TRUE(absl::IsUnimplemented(with("/linux/seccomp", {{"defaultAction", "SCMP_ACT_ALLOW"}})));
  EXPECT_TRUE(absl::IsUnimplemented(with("/process/apparmorProfile", "runtime/default")));
  EXPECT_TRUE(absl::IsUnimplemented(with("/process/selinuxLabel", "system_u:system_r:x")));
  EXPECT_TRUE(absl::IsUnimplemented(with("/linux/personality", {{"domain", "LINUX32"}})));
  EXPECT_TRUE(absl::IsUnimplemented(
      with("/linux/namespaces", json::array({{{"type", "pid"}}, {{"type", "user"}}}))));
  EXPECT_TRUE(absl::IsInvalidArgument(with("/process/capabilities/bounding", {"CAP_BOGUS"})));
  EXPECT_TRUE(absl::IsInvalidArgument(with("/process/rlimits", json::array({{{"type", "X"}}}))));
  EXPECT_TRUE(with("/linux/seccomp", nullptr).ok());  // null: no filter
  EXPECT_FALSE(PrepareNativeExec(Config(), getpid(), {}, false).ok());
}

}  // namespace
}  // namespace berth::cri::runtime
