#include "metrics/fs_usage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace berth::metrics {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class FsUsageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-fs-usage-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_EQ(system(("rm -rf " + dir_).c_str()), 0); }
  // Writes `bytes` of non-zero data (allocated blocks, no holes) to `path`.
  static void Write(const std::string& path, uint64_t bytes) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    std::vector<char> buf(kMiB, 'x');
    for (uint64_t done = 0; done < bytes; done += buf.size()) {
      ASSERT_EQ(write(fd, buf.data(), buf.size()), static_cast<ssize_t>(buf.size()));
    }
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }
  std::string dir_;
};

TEST_F(FsUsageTest, MeasuresDirectoryTreesAndFiles) {
  ASSERT_EQ(mkdir((dir_ + "/sub").c_str(), 0755), 0);
  Write(dir_ + "/sub/a", 3 * kMiB);
  Write(dir_ + "/b", 1 * kMiB);
  absl::StatusOr<FsStats> d = MeasurePath(dir_);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_GE(d->used_bytes, 4 * kMiB);
  EXPECT_LT(d->used_bytes, 5 * kMiB);
  EXPECT_EQ(d->inodes_used, 4u);  // dir, sub, a, b
  EXPECT_GT(d->capacity_bytes, d->available_bytes);
  EXPECT_GT(d->inodes, d->inodes_free);
  EXPECT_GT(d->time_seconds, 0);
  absl::StatusOr<FsStats> f = MeasurePath(dir_ + "/b");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_GE(f->used_bytes, kMiB);
  EXPECT_EQ(f->inodes_used, 1u);
  EXPECT_FALSE(MeasurePath(dir_ + "/missing").ok());
}

TEST_F(FsUsageTest, CacheMeasuresNewPathsAtOnceAndOthersPerPeriod) {
  Write(dir_ + "/a", 2 * kMiB);
  FsUsageCache cache({std::chrono::hours(1)});
  EXPECT_FALSE(cache.Get(dir_).has_value());
  cache.Want("test", {dir_});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!cache.Get(dir_) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(cache.Get(dir_).has_value()) << "a new path was not measured";
  uint64_t before = cache.Get(dir_)->used_bytes;
  EXPECT_GE(before, 2 * kMiB);
  // Not re-measured before the period: the scrape path reads the cached value.
  Write(dir_ + "/b", 3 * kMiB);
  cache.Want("test", {dir_});
  cache.Want("other", {});
  EXPECT_EQ(cache.Get(dir_)->used_bytes, before);
  cache.RefreshNow();
  EXPECT_GE(cache.Get(dir_)->used_bytes, before + 3 * kMiB);
  cache.Want("other", {dir_});
  cache.Want("test", {});
  EXPECT_TRUE(cache.Get(dir_).has_value());  // still wanted by "other"
  cache.Want("other", {});
  EXPECT_FALSE(cache.Get(dir_).has_value());
}

TEST_F(FsUsageTest, MeasureFilesystemIsStatvfsWithoutWalking) {
  absl::StatusOr<FsStats> fs = MeasureFilesystem(dir_);
  ASSERT_TRUE(fs.ok()) << fs.status();
  EXPECT_GT(fs->capacity_bytes, 0u);
  EXPECT_GT(fs->used_bytes, 0u);
  EXPECT_LE(fs->used_bytes + fs->available_bytes, fs->capacity_bytes);
  EXPECT_EQ(fs->inodes_used, fs->inodes - fs->inodes_free);
  EXPECT_FALSE(MeasureFilesystem(dir_ + "/missing").ok());
}

// The period is a setting: with a short one, a write shows up without RefreshNow(), every
// pass runs the OnRefresh callbacks, and Get() never walks (walks() counts the cache's own).
TEST_F(FsUsageTest, PeriodicPassesRefreshAndNotify) {
  FsUsageCache cache({std::chrono::milliseconds(50)});
  absl::Mutex mu;
  int passes = 0;
  cache.OnRefresh([&] {
    absl::MutexLock l(&mu);
    ++passes;
  });
  cache.WantAlso("test", dir_);
  auto wait_for = [](const std::function<bool()>& cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!cond() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
  };
  ASSERT_TRUE(wait_for([&] { return cache.Get(dir_).has_value(); }));
  Write(dir_ + "/a", 2 * kMiB);
  ASSERT_TRUE(wait_for([&] { return cache.Get(dir_)->used_bytes >= 2 * kMiB; }))
      << "not re-measured after the period";
  ASSERT_TRUE(wait_for([&] {
    absl::MutexLock l(&mu);
    return passes >= 2;
  }));
  // Readers do not walk: with an hour's period, one walk serves every Get().
  FsUsageCache slow({std::chrono::hours(1)});
  slow.WantAlso("test", dir_);
  ASSERT_TRUE(wait_for([&] { return slow.Get(dir_).has_value(); }));
  EXPECT_EQ(slow.walks(), 1u);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(slow.Get(dir_).has_value());
  slow.WantAlso("test", dir_);
  EXPECT_EQ(slow.walks(), 1u);
}

}  // namespace
}  // namespace berth::metrics
