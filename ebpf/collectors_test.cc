#include "ebpf/collectors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "ebpf/progs/berth_ebpf.h"
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

// The BPF programs' division-free bucket is the bit length of the microseconds, capped, at
// every bucket boundary (each side) and across the range.
TEST(CollectorsTest, Log2BucketIsTheBitLengthOfMicroseconds) {
  auto reference = [](uint64_t ns) {
    uint64_t us = ns / 1000;
    uint32_t bits = 0;
    while (us != 0) {
      bits++;
      us >>= 1;
    }
    return std::min<uint32_t>(bits, BERTH_HIST_BUCKETS - 1);
  };
  std::vector<uint64_t> values = {0, 1, 999, 1000, 1001, 1999, 2000, 1023, 1024, ~uint64_t{0}};
  for (int i = 0; i < 64; i++) {
    uint64_t p = uint64_t{1} << i;
    for (uint64_t v : {p - 1, p, p + 1}) values.push_back(v);
    if (i < 54) {
      uint64_t b = uint64_t{1000} << i;
      for (uint64_t v : {b - 1, b, b + 1}) values.push_back(v);
    }
  }
  for (uint64_t v = 0; v < 5'000'000; v += 7) values.push_back(v);
  for (uint64_t v : values) ASSERT_EQ(berth_log2_bucket(v), reference(v)) << v << " ns";
  EXPECT_EQ(berth_log2_bucket(999), 0u);
  EXPECT_EQ(berth_log2_bucket(1000), 1u);
  EXPECT_EQ(berth_log2_bucket(2000), 2u);
  EXPECT_EQ(berth_log2_bucket(uint64_t{1000} << 30), BERTH_HIST_BUCKETS - 1u);
}

}  // namespace
}  // namespace berth::ebpf
