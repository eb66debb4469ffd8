#include "cri/runtime/seccomp.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "gtest/gtest.h"

namespace berth::cri::runtime {
namespace {
namespace v1 = ::runtime::v1;
using nlohmann::json;

// The action the profile applies to `name` without argument conditions ("" when no rule).
std::string ActionFor(const json& profile, const std::string& name) {
  for (const auto& r : profile["syscalls"]) {
    if (r.contains("args")) continue;
    for (const auto& n : r["names"]) {
      if (n == name) return r["action"].get<std::string>();
    }
  }
  return "";
}

TEST(Seccomp, NoProfileAndUnconfinedMeanNoFilter) {
  v1::LinuxContainerSecurityContext sc;
  EXPECT_TRUE(ContainerSeccomp(sc, {})->is_null());
  sc.mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
  EXPECT_TRUE(ContainerSeccomp(sc, {})->is_null());
}

TEST(Seccomp, RuntimeDefaultBlocksMountUnlessSysAdmin) {
  v1::LinuxContainerSecurityContext sc;
  sc.mutable_seccomp();  // RuntimeDefault is the zero value
  auto p = ContainerSeccomp(sc, {"CAP_CHOWN"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ(ActionFor(*p, "mount"), "SCMP_ACT_ERRNO");
  EXPECT_EQ(ActionFor(*p, "kexec_load"), "SCMP_ACT_ERRNO");
  EXPECT_EQ(ActionFor(*p, "read"), "");
  auto admin = ContainerSeccomp(sc, {"CAP_SYS_ADMIN"});
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(ActionFor(*admin, "mount"), "");
  EXPECT_EQ(ActionFor(*admin, "kexec_load"), "SCMP_ACT_ERRNO");  // no capability lifts it
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST(Seccomp, DeprecatedProfilePath) {
  v1::LinuxContainerSecurityContext sc;
  sc.set_seccomp_profile_path("runtime/default");
  EXPECT_FALSE(ContainerSeccomp(sc, {})->is_null());
  sc.set_seccomp_profile_path("bogus");
  EXPECT_EQ(ContainerSeccomp(sc, {}).status().code(), absl::StatusCode::kInvalidArgument);
}
#pragma GCC diagnostic pop

TEST(Seccomp, PrivilegedIgnoresProfile) {
  v1::LinuxContainerSecurityContext sc;
  sc.set_privileged(true);
  sc.mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  EXPECT_TRUE(ContainerSeccomp(sc, {})->is_null());
}

TEST(Seccomp, LocalhostProfileIsReadAndConverted) {
  char dir[] = "/tmp/berth-seccomp-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/p.json";
  std::ofstream(path) << R"({"defaultAction": "SCMP_ACT_ALLOW",
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [{"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"},
                 {"name": "reboot", "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_BOOT"]}}]})";
  v1::LinuxContainerSecurityContext sc;
  sc.mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
  sc.mutable_seccomp()->set_localhost_ref(path);
  auto p = ContainerSeccomp(sc, {"CAP_SYS_BOOT"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["architectures"], json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  EXPECT_EQ(ActionFor(*p, "fchmodat"), "SCMP_ACT_ERRNO");
  EXPECT_EQ(ActionFor(*p, "reboot"), "");  // excluded for holders of CAP_SYS_BOOT
  EXPECT_EQ(ActionFor(*ContainerSeccomp(sc, {}), "reboot"), "SCMP_ACT_ERRNO");

  sc.mutable_seccomp()->set_localhost_ref(std::string(dir) + "/missing.json");
  EXPECT_EQ(ContainerSeccomp(sc, {}).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(path) << "not json";
  sc.mutable_seccomp()->set_localhost_ref(path);
  EXPECT_EQ(ContainerSeccomp(sc, {}).status().code(), absl::StatusCode::kInvalidArgument);
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace berth::cri::runtime
