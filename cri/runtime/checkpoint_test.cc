#include "cri/runtime/checkpoint.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/process.h"
#include "gtest/gtest.h"

namespace berth::cri::runtime {
namespace {
namespace fs = std::filesystem;

class CheckpointArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-cpt-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(CheckpointArchiveTest, TarOfTreeWithRelativeNamesAndSkip) {
  std::string src = dir_ + "/src";
  ASSERT_TRUE(MkdirAll(src + "/a/b").ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/a/b/file", "content\n", 0640).ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/skipme", "x", 0644).ok());
  ASSERT_EQ(symlink("a/b/file", (src + "/link").c_str()), 0);
  std::string tar = dir_ + "/out.tar";
  ASSERT_TRUE(WriteTarFromDir(src, tar, [](const std::string& rel, const struct stat&) {
                return rel == "skipme";
              }).ok());
  auto list = RunOk({"tar", "-tf", tar});
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::string> names = absl::StrSplit(*list, '\n', absl::SkipEmpty());
  std::sort(names.begin(), names.end());  // (directory order)
  EXPECT_EQ(names,
            (std::vector<std::string>{"a/", "a/b/", "a/b/file", "link"}));  // no root, no skipped
  ASSERT_TRUE(MkdirAll(dir_ + "/x").ok());
  ASSERT_TRUE(RunOk({"tar", "-xf", tar, "-C", dir_ + "/x"}).ok());
  EXPECT_EQ(ReadFile(dir_ + "/x/a/b/file").value_or(""), "content\n");
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/x/a/b/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(fs::read_symlink(dir_ + "/x/link").string(), "a/b/file");
}

TEST_F(CheckpointArchiveTest, UnwritableTargetFailsAndLeavesNothing) {
  ASSERT_TRUE(MkdirAll(dir_ + "/src").ok());
  absl::Status s = WriteTarFromDir(dir_ + "/src", dir_ + "/missing/out.tar");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("missing/out.tar"), std::string::npos) << s;
}

TEST_F(CheckpointArchiveTest, OverlayWhiteoutsAreCharDevicesZeroZero) {
  if (geteuid() != 0) GTEST_SKIP() << "mknod of a whiteout needs root";
  std::string up = dir_ + "/upper";
  ASSERT_TRUE(MkdirAll(up + "/etc/deep").ok());
  ASSERT_EQ(mknod((up + "/etc/group").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);
  ASSERT_EQ(mknod((up + "/etc/deep/gone").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);
  ASSERT_TRUE(WriteFileAtomic(up + "/etc/kept", "k").ok());
  auto w = OverlayWhiteouts(up);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(*w, (std::vector<std::string>{"etc/deep/gone", "etc/group"}));
  struct stat st;
  ASSERT_EQ(lstat((up + "/etc/kept").c_str(), &st), 0);
  EXPECT_FALSE(IsOverlayWhiteout(st));
  EXPECT_FALSE(OverlayWhiteouts(dir_ + "/nope").ok());
}

TEST_F(CheckpointArchiveTest, LastLinesKeepsTheEnd) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/log", "one\ntwo\n\nthree\nfour\n").ok());
  EXPECT_EQ(LastLines(dir_ + "/log", 2), "three\nfour");
  EXPECT_EQ(LastLines(dir_ + "/log", 10), "one\ntwo\nthree\nfour");
  EXPECT_EQ(LastLines(dir_ + "/none", 3), "");
  EXPECT_EQ(LastLines(dir_ + "/log", 5, "o"), "one\ntwo\nfour");
}

TEST_F(CheckpointArchiveTest, CriuLogSummaryPrefersErrors) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/dump.log",
                              "(0.1) start\n(0.2) Error (criu/vdso.c:381): vdso: bad\n(0.3) tail\n")
                  .ok());
  EXPECT_EQ(CriuLogSummary(dir_ + "/dump.log"), "(0.2) Error (criu/vdso.c:381): vdso: bad");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/ok.log", "(0.1) a\n(0.2) b\n").ok());
  EXPECT_EQ(CriuLogSummary(dir_ + "/ok.log"), "(0.1) a\n(0.2) b");
  EXPECT_EQ(CriuLogSummary(dir_ + "/none.log"), "");
}

}  // namespace
}  // namespace berth::cri::runtime
