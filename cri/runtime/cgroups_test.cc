#include "cri/runtime/cgroups.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::cri::runtime {
namespace {

TEST(ParseCgroupMounts, HybridHost) {
  const char kMountinfo[] =
      "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
      "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
      "27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
      "30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "31 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "32 25 0:29 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,clone_children\n"
      "33 25 0:29 / /other/cpuset rw - cgroup cgroup rw,cpuset,clone_children\n";
  auto m = ParseCgroupMounts(kMountinfo);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_TRUE(m[0].v2);
  EXPECT_EQ(m[0].mount_point, "/sys/fs/cgroup/unified");
  EXPECT_THAT(m[1].controllers, ::testing::ElementsAre("name=systemd"));
  EXPECT_THAT(m[2].controllers, ::testing::ElementsAre("cpu", "cpuacct"));
  EXPECT_EQ(m[4].mount_point, "/sys/fs/cgroup/cpuset");  // the duplicate mount is dropped
}

TEST(HasHugetlbController, V1Hierarchies) {
  const char kWithout[] =
      "30 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
      "31 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
  EXPECT_FALSE(HasHugetlbController(ParseCgroupMounts(kWithout)));
  const char kWith[] =
      "30 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
      "34 25 0:30 / /sys/fs/cgroup/hugetlb rw - cgroup cgroup rw,hugetlb\n";
  EXPECT_TRUE(HasHugetlbController(ParseCgroupMounts(kWith)));
}

TEST(HasHugetlbController, Cgroup2ReadsControllers) {
  std::string dir = ::testing::TempDir() + "/hugetlb_v2";
  ASSERT_EQ(system(("mkdir -p " + dir).c_str()), 0);
  const std::string mountinfo = "26 25 0:23 / " + dir + " rw - cgroup2 cgroup2 rw\n";
  FILE* f = fopen((dir + "/cgroup.controllers").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("cpuset cpu io memory pids\n", f);
  fclose(f);
  EXPECT_FALSE(HasHugetlbController(ParseCgroupMounts(mountinfo)));
  f = fopen((dir + "/cgroup.controllers").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("cpuset cpu io memory hugetlb pids\n", f);
  fclose(f);
  EXPECT_TRUE(HasHugetlbController(ParseCgroupMounts(mountinfo)));
  // Hybrid: v1 controllers mounted, hugetlb only in the unified mount: runc cannot use it.
  const std::string hybrid = mountinfo + "30 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
  EXPECT_FALSE(HasHugetlbController(ParseCgroupMounts(hybrid)));
}

}  // namespace
}  // namespace berth::cri::runtime
