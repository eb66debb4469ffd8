// Safe subPath mounts (kubelet/subpath.h). Needs root (bind mounts); every mount is made
// under the test's temporary directory and unmounted by the fixture, also on failure.
#include "kubelet/subpath.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::kubelet {
namespace {

struct Ino {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const Ino& o) const { return dev == o.dev && ino == o.ino; }
};

Ino InoOf(const std::string& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino};
}

class SubPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (bind mounts)";
    char tmpl[] = "/tmp/berth-subpath-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    vol_ = dir_ + "/volume";
    pod_ = dir_ + "/pod";
    outside_ = dir_ + "/host-secret";
    ASSERT_TRUE(MkdirAll(vol_).ok());
    ASSERT_TRUE(MkdirAll(pod_).ok());
    ASSERT_TRUE(MkdirAll(outside_).ok());
    ASSERT_TRUE(WriteFileAtomic(outside_ + "/shadow", "host secret").ok());
  }
  void TearDown() override {
    if (dir_.empty()) return;
    EXPECT_TRUE(UnmountAllUnder(dir_).ok());
    EXPECT_TRUE(RemoveAll(dir_).ok());
  }
  SubPathMount Mount(const std::string& sub, int index = 0) {
    return {vol_, sub, pod_, "data", "app", index};
  }

  std::string dir_, vol_, pod_, outside_;
};

TEST_F(SubPathTest, BindsADirectoryAtUpstreamsPath) {
  ASSERT_TRUE(SafeMakeDir(vol_, "a/b", 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(vol_ + "/a/b/f", "x").ok());
  absl::StatusOr<std::string> t = PrepareSafeSubPath(Mount("a/b", 2));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, pod_ + "/volume-subpaths/data/app/2");
  EXPECT_EQ(InoOf(*t), InoOf(vol_ + "/a/b"));
  EXPECT_EQ(ReadFile(*t + "/f").value_or(""), "x");
  // Prepared again (a restarted container): the same mount is kept, not stacked.
  ASSERT_TRUE(PrepareSafeSubPath(Mount("a/b", 2)).ok());
  EXPECT_EQ(MountPointsUnder(*t).value().size(), 1u);
}

TEST_F(SubPathTest, BindsAFile) {
  ASSERT_TRUE(WriteFileAtomic(vol_ + "/config.yaml", "k: v").ok());
  absl::StatusOr<std::string> t = PrepareSafeSubPath(Mount("config.yaml"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(ReadFile(*t).value_or(""), "k: v");
}

TEST_F(SubPathTest, SymlinkResolvingInsideIsAllowed) {
  ASSERT_TRUE(MkdirAll(vol_ + "/real").ok());
  ASSERT_EQ(::symlink("real", (vol_ + "/link").c_str()), 0);
  absl::StatusOr<std::string> t = PrepareSafeSubPath(Mount("link"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(InoOf(*t), InoOf(vol_ + "/real"));
}

TEST_F(SubPathTest, RefusesEscapes) {
  ASSERT_EQ(::symlink(outside_.c_str(), (vol_ + "/evil").c_str()), 0);
  absl::Status escaped = PrepareSafeSubPath(Mount("evil")).status();
  EXPECT_TRUE(absl::IsInvalidArgument(escaped)) << escaped;
  EXPECT_NE(escaped.message().find("outside the volume"), std::string::npos) << escaped;
  EXPECT_TRUE(absl::IsInvalidArgument(SafeMakeDir(vol_, "evil/new", 0755)));
  EXPECT_FALSE(PathExists(outside_ + "/new"));
  EXPECT_TRUE(absl::IsInvalidArgument(PrepareSafeSubPath(Mount("/etc")).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(PrepareSafeSubPath(Mount("a/../../x")).status()));
  EXPECT_TRUE(absl::IsNotFound(PrepareSafeSubPath(Mount("missing")).status()));
  EXPECT_FALSE(PathExists(pod_ + "/volume-subpaths/data/app/0") &&
               InoOf(pod_ + "/volume-subpaths/data/app/0") == InoOf(outside_));
}

TEST_F(SubPathTest, SafeMakeDirSetsTheModeOfEachNewComponent) {
  ASSERT_TRUE(SafeMakeDir(vol_, "x/y/z", 0770).ok());
  struct stat st;
  ASSERT_EQ(::stat((vol_ + "/x/y/z").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0770u);
  EXPECT_TRUE(SafeMakeDir(vol_, "x/y/z", 0770).ok());  // idempotent
  // The setgid bit of a volume's mode (fsGroup) is kept too.
  ASSERT_TRUE(SafeMakeDir(vol_, "g", 02775).ok());
  ASSERT_EQ(::stat((vol_ + "/g").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02775u);
}

// A container swaps the subPath's directory for a symlink to the host in a loop while the
// kubelet prepares the mount: every mount made shows the volume's directory, never the host's.
TEST_F(SubPathTest, SymlinkSwapRaceNeverReachesTheHost) {
  const std::string sub = vol_ + "/work";
  const std::string real = vol_ + "/work.dir";
  const std::string link = vol_ + "/work.lnk";
  ASSERT_TRUE(MkdirAll(real).ok());
  ASSERT_EQ(::symlink(outside_.c_str(), link.c_str()), 0);
  ASSERT_EQ(::rename(real.c_str(), sub.c_str()), 0);
  const Ino volume_dir = InoOf(sub);
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    // Exchanges work (the directory) and work.lnk (the symlink to the host) atomically.
    while (!stop.load())
      ::renameat2(AT_FDCWD, sub.c_str(), AT_FDCWD, link.c_str(), RENAME_EXCHANGE);
  });
  // Until 20 mounts were made and 20 refused (most attempts see the symlink and are refused),
  // for at most 20 s: on a busy machine the swapper may sleep through many attempts.
  int ok = 0, refused = 0, escaped = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (int i = 0; (ok < 20 || refused < 20) && std::chrono::steady_clock::now() < deadline; ++i) {
    absl::StatusOr<std::string> t = PrepareSafeSubPath(Mount("work", i % 4));
    if (!t.ok()) {
      ++refused;
      continue;
    }
    ++ok;
    if (!(InoOf(*t) == volume_dir)) ++escaped;
    EXPECT_TRUE(UnmountAllUnder(*t).ok());
  }
  stop = true;
  swapper.join();
  EXPECT_EQ(escaped, 0) << ok << " mounted, " << refused << " refused";
  EXPECT_GT(ok, 0) << refused << " refused";
  EXPECT_GT(refused, 0) << "the swap never raced a preparation";
  std::printf("race: %d mounted, %d refused, %d reached the host\n", ok, refused, escaped);
}

TEST_F(SubPathTest, CleanSubPathsUnmountsAndRemovesEverything) {
  ASSERT_TRUE(SafeMakeDir(vol_, "d", 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(vol_ + "/f", "keep").ok());
  ASSERT_TRUE(PrepareSafeSubPath(Mount("d", 0)).ok());
  ASSERT_TRUE(PrepareSafeSubPath(Mount("f", 1)).ok());
  ASSERT_TRUE(CleanSubPaths(pod_).ok());
  EXPECT_FALSE(PathExists(pod_ + "/volume-subpaths"));
  EXPECT_TRUE(MountPointsUnder(pod_).value().empty());
  // The volume's own content is untouched.
  EXPECT_EQ(ReadFile(vol_ + "/f").value_or(""), "keep");
  EXPECT_TRUE(PathExists(vol_ + "/d"));
  EXPECT_TRUE(CleanSubPaths(pod_).ok());  // absent: OK
}

}  // namespace
}  // namespace berth::kubelet
