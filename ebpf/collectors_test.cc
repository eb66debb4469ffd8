#include "ebpf/collectors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace berth::ebpf {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/berth-ebpf-unit-XXXXXX";
  char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d ? d : "";
}

TEST(CollectorsTest, LoadWithMissingBtfSaysWhichFile) {
  Options o;
  o.btf_path = "/nonexistent/berth-test/vmlinux";
  auto c = Collectors::Load(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound) << c.status();
  EXPECT_NE(c.status().message().find("/nonexistent/berth-test/vmlinux"), absl::string_view::npos)
      << c.status();
}

TEST(CollectorsTest, LoadWithCorruptBtfNamesTheObject) {
  std::string dir = TempDir();
  std::string btf = dir + "/vmlinux";
  std::ofstream(btf) << "this is not BTF";
  Options o;
  o.btf_path = btf;
  auto c = Collectors::Load(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("BPF object cgroup_stats"), absl::string_view::npos)
      << c.status();
  unlink(btf.c_str());
  rmdir(dir.c_str());
}

TEST(CollectorsTest, CgroupIdOfIsTheDirectoryInode) {
  std::string dir = TempDir();
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(CgroupIdOf(dir), static_cast<uint64_t>(st.st_ino));
  rmdir(dir.c_str());
  EXPECT_EQ(CgroupIdOf(dir), 0u);
  EXPECT_EQ(CgroupIdOf("/etc/passwd"), 0u);  // not a directory
}

TEST(CollectorsTest, HistogramBucketBounds) {
  EXPECT_EQ(HistogramBucketUpperBoundUs(0), 1u);
  EXPECT_EQ(HistogramBucketUpperBoundUs(10), 1024u);
  EXPECT_EQ(HistogramBucketUpperBoundUs(kHistogramBuckets - 1), uint64_t{1} << 26);
}

}  // namespace
}  // namespace berth::ebpf
