#include "cri/runtime/cgroups.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::cri::runtime {
namespace {

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
  const std::string hybrid =
      mountinfo + "30 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
  EXPECT_FALSE(HasHugetlbController(ParseCgroupMounts(hybrid)));
}

}  // namespace
}  // namespace berth::cri::runtime
