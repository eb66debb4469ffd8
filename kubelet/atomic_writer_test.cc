#include "kubelet/atomic_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "base/file.h"

namespace berth::kubelet {
namespace {

namespace fs = std::filesystem;

class AtomicWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-atomic-writer-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  std::string Read(const std::string& rel) {
    auto s = ReadFile(dir_ + "/" + rel);
    return s.ok() ? *s : "<" + std::string(s.status().message()) + ">";
  }
  int Mode(const std::string& rel) {
    struct stat st;
    return ::stat((dir_ + "/" + rel).c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
  }
  std::string Link(const std::string& rel) {
    std::error_code ec;
    return fs::read_symlink(dir_ + "/" + rel, ec).string();
  }
  int TimestampDirs() {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string name = e.path().filename();
      if (name.rfind("..", 0) == 0 && name != "..data" && e.is_directory() && !e.is_symlink()) ++n;
    }
    return n;
  }
  std::string dir_;
};

TEST_F(AtomicWriterTest, UpstreamLayoutWithModes) {
  auto w = WriteAtomically(dir_, {{"key", {"value", 0400}}, {"sub/nested", {"deep", 0644}}});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(*w);
  EXPECT_EQ(Read("key"), "value");
  EXPECT_EQ(Read("sub/nested"), "deep");
  EXPECT_EQ(Mode("key"), 0400);
  EXPECT_EQ(Mode("sub/nested"), 0644);
  EXPECT_EQ(Link("key"), "..data/key");
  EXPECT_EQ(Link("sub"), "..data/sub");
  EXPECT_EQ(Link("..data").rfind("..", 0), 0u);
  EXPECT_EQ(TimestampDirs(), 1);
}

TEST_F(AtomicWriterTest, SamePayloadWritesNothing) {
  ASSERT_TRUE(WriteAtomically(dir_, {{"a", {"1", 0644}}}).ok());
  std::string before = Link("..data");
  auto w = WriteAtomically(dir_, {{"a", {"1", 0644}}});
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(*w);
  EXPECT_EQ(Link("..data"), before);
}

TEST_F(AtomicWriterTest, UpdateSwapsContentAddsAndRemovesKeys) {
  ASSERT_TRUE(
      WriteAtomically(dir_, {{"a", {"1", 0644}}, {"gone", {"x", 0644}}, {"d/f", {"y", 0644}}})
          .ok());
  std::string before = Link("..data");
  auto w = WriteAtomically(dir_, {{"a", {"2", 0644}}, {"new", {"n", 0644}}});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(*w);
  EXPECT_NE(Link("..data"), before);
  EXPECT_EQ(Read("a"), "2");
  EXPECT_EQ(Read("new"), "n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ + "/gone")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ + "/d")));
  EXPECT_FALSE(fs::exists(dir_ + "/" + before));  // the old timestamped directory is gone
  EXPECT_EQ(TimestampDirs(), 1);
}

TEST_F(AtomicWriterTest, ReplacesFilesOfTheOldNonAtomicLayout) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", "plain", 0644).ok());
  ASSERT_TRUE(WriteAtomically(dir_, {{"a", {"atomic", 0644}}}).ok());
  EXPECT_EQ(Link("a"), "..data/a");
  EXPECT_EQ(Read("a"), "atomic");
}

TEST_F(AtomicWriterTest, BadPathsAreRefusedBeforeAnyWrite) {
  for (const char* bad : {"/abs", "../up", "a/../../b", "..hidden", ""}) {
    auto w = WriteAtomically(dir_, {{"ok", {"1", 0644}}, {bad, {"x", 0644}}});
    EXPECT_TRUE(absl::IsInvalidArgument(w.status())) << bad << ": " << w.status();
  }
  EXPECT_FALSE(fs::exists(dir_ + "/ok"));
  EXPECT_EQ(TimestampDirs(), 0);
}

TEST_F(AtomicWriterTest, FailedPermissionsKeepTheOldContent) {
  ASSERT_TRUE(WriteAtomically(dir_, {{"a", {"1", 0644}}}).ok());
  auto w = WriteAtomically(dir_, {{"a", {"2", 0644}}},
                           [](const std::string&) { return absl::PermissionDeniedError("no"); });
  EXPECT_TRUE(absl::IsPermissionDenied(w.status()));
  EXPECT_EQ(Read("a"), "1");
  EXPECT_EQ(TimestampDirs(), 1);
}

}  // namespace
}  // namespace berth::kubelet
