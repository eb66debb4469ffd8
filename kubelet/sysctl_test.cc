#include "kubelet/sysctl.h"

#include <gtest/gtest.h>

namespace berth::kubelet {
namespace {

TEST(SysctlTest, NormalizeSwapsSeparatorsOnlyWhenSlashComesFirst) {
  EXPECT_EQ(NormalizeSysctlName("kernel/shm_rmid_forced"), "kernel.shm_rmid_forced");
  EXPECT_EQ(NormalizeSysctlName("net/ipv4/conf/eth0.100/forwarding"),
            "net.ipv4.conf.eth0/100.forwarding");
  EXPECT_EQ(NormalizeSysctlName("net.ipv4.conf.eth0/100.forwarding"),
            "net.ipv4.conf.eth0/100.forwarding");
  EXPECT_EQ(NormalizeSysctlName("kernel"), "kernel");
}

TEST(SysctlTest, NamespacesAsUpstream) {
  EXPECT_EQ(SysctlNamespace("kernel.shm_rmid_forced"), "IPC");
  EXPECT_EQ(SysctlNamespace("kernel.msgmax"), "IPC");
  EXPECT_EQ(SysctlNamespace("fs.mqueue.msg_max"), "IPC");
  EXPECT_EQ(SysctlNamespace("net.core.somaxconn"), "Net");
  EXPECT_EQ(SysctlNamespace("kernel.hostname"), "");
  EXPECT_EQ(SysctlNamespace("vm.swappiness"), "");
}

TEST(SysctlTest, SafeSysctlsAndUnsafePatterns) {
  auto list = SysctlAllowlist::Create({"kernel.msg*", "net.core.somaxconn"});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->Validate("kernel.shm_rmid_forced", false, false).ok());
  EXPECT_TRUE(list->Validate("kernel/shm_rmid_forced", false, false).ok());
  EXPECT_TRUE(list->Validate("net.ipv4.ip_local_port_range", false, false).ok());
  EXPECT_TRUE(list->Validate("kernel.msgmax", false, false).ok());
  EXPECT_TRUE(list->Validate("net.core.somaxconn", false, false).ok());
  auto denied = list->Validate("kernel.shmall", false, false);
  EXPECT_TRUE(absl::IsFailedPrecondition(denied));
  EXPECT_EQ(denied.message(), "\"kernel.shmall\" not allowlisted");
  EXPECT_EQ(list->Validate("net.core.somaxconn", true, false).message(),
            "\"net.core.somaxconn\" not allowed with host net enabled");
  EXPECT_EQ(list->Validate("kernel.shm_rmid_forced", false, true).message(),
            "\"kernel.shm_rmid_forced\" not allowed with host ipc enabled");
}

TEST(SysctlTest, NonNamespacedOrMalformedPatternsAreRefused) {
  EXPECT_TRUE(absl::IsInvalidArgument(SysctlAllowlist::Create({"vm.swappiness"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(SysctlAllowlist::Create({"kernel.*"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(SysctlAllowlist::Create({"Net.Core"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(SysctlAllowlist::Create({"net..x"}).status()));
}

}  // namespace
}  // namespace berth::kubelet
