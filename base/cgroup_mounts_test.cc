#include "base/cgroup_mounts.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth {
namespace {

using ::testing::ElementsAre;

// One hierarchy as "<mount point> v2" or "<mount point> c1,c2" for compact expectations.
std::vector<std::string> Summary(const std::vector<CgroupMount>& mounts) {
  std::vector<std::string> out;
  for (const auto& m : mounts) {
    std::string s = m.mount_point + " ";
    if (m.v2) {
      s += "v2";
    } else {
      for (size_t i = 0; i < m.controllers.size(); ++i) s += (i ? "," : "") + m.controllers[i];
    }
    if (m.root != "/") s += " root=" + m.root;
    out.push_back(s);
  }
  return out;
}

struct Case {
  const char* name;
  std::string mountinfo;
  std::vector<std::string> want;
  std::string unified, memory, blkio;
};

TEST(ParseCgroupMounts, Table) {
  const std::string kTmpfs = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n";
  const std::vector<Case> cases = {
      {"hybrid",
       kTmpfs + "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
                "27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
                "30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                "31 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                "32 25 0:29 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,clone_children\n"
                "33 25 0:29 / /other/cpuset rw - cgroup cgroup rw,cpuset,clone_children\n",
       {"/sys/fs/cgroup/unified v2", "/sys/fs/cgroup/systemd name=systemd",
        "/sys/fs/cgroup/cpu,cpuacct cpu,cpuacct", "/sys/fs/cgroup/memory memory",
        "/sys/fs/cgroup/cpuset cpuset"},
       "/sys/fs/cgroup/unified",
       "/sys/fs/cgroup/memory",
       ""},
      {"pure v2",
       "26 25 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
       "rw,nsdelegate\n",
       {"/sys/fs/cgroup v2"},
       "/sys/fs/cgroup",
       "",
       ""},
      {"pure v1, optional tags and release_agent",
       kTmpfs +
           "31 25 0:28 / /sys/fs/cgroup/memory rw shared:9 master:2 - cgroup cgroup rw,memory\n"
           "38 25 0:35 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio,release_agent=/bin/x\n",
       {"/sys/fs/cgroup/memory memory", "/sys/fs/cgroup/blkio blkio"},
       "",
       "/sys/fs/cgroup/memory",
       "/sys/fs/cgroup/blkio"},
      {"a cgroup's bind mount before the hierarchy root: the root wins",
       "40 25 0:28 /kubepods /mnt/kubepods rw - cgroup cgroup rw,memory\n"
       "31 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
       {"/sys/fs/cgroup/memory memory"},
       "",
       "/sys/fs/cgroup/memory",
       ""},
      {"only a cgroup of the hierarchy is mounted (container without cgroupns)",
       "40 25 0:28 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
       {"/sys/fs/cgroup/memory memory root=/docker/abc"},
       "",
       "/sys/fs/cgroup/memory",
       ""},
      {"not cgroups, cgroups without controllers, garbage",
       kTmpfs + "41 25 0:40 / /sys/fs/cgroup/x rw - cgroup cgroup rw,nosuid\n"
                "garbage line\n"
                "42 25 0:41 / - cgroup2\n",
       {},
       "",
       "",
       ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<CgroupMount> m = ParseCgroupMounts(c.mountinfo);
    EXPECT_EQ(Summary(m), c.want);
    EXPECT_EQ(UnifiedCgroupMount(m), c.unified);
    EXPECT_EQ(V1CgroupMount(m, "memory"), c.memory);
    EXPECT_EQ(V1CgroupMount(m, "blkio"), c.blkio);
  }
}

TEST(V1CgroupMount, NamedHierarchiesAndCoMountedControllers) {
  std::vector<CgroupMount> m = ParseCgroupMounts(
      "27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
      "30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
  EXPECT_EQ(V1CgroupMount(m, "name=systemd"), "/sys/fs/cgroup/systemd");
  EXPECT_EQ(V1CgroupMount(m, "cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(V1CgroupMount(m, "cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(V1CgroupMount(m, "systemd"), "");
}

TEST(HostCgroupMounts, FindsTheHostsHierarchies) {
  // Every Linux host berth runs on mounts cgroups; each mount point is a directory.
  std::vector<CgroupMount> m = HostCgroupMounts();
  ASSERT_FALSE(m.empty());
  for (const auto& h : m) EXPECT_EQ(h.mount_point.rfind('/', 0), 0u) << h.mount_point;
}

}  // namespace
}  // namespace berth
