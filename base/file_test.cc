#include "base/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "base/volatile_file.h"

namespace berth {
namespace {

TEST(FileTest, WriteReadRemove) {
  char tmpl[] = "/tmp/berth_file_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_TRUE(MkdirAll(dir + "/a/b/c").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/a/b/c/f", "hello").ok());
  auto got = ReadFile(dir + "/a/b/c/f");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "hello");
  auto names = ListDir(dir + "/a/b/c");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"f"});
  ASSERT_TRUE(RemoveAll(dir).ok());
  EXPECT_FALSE(PathExists(dir));
  EXPECT_EQ(ReadFile(dir + "/nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(FileTest, VolatileFileReplacesWithoutLeavingTempFiles) {
  char tmpl[] = "/tmp/berth_file_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_TRUE(WriteVolatileFile(dir + "/hosts", "old", 0600).ok());
  ASSERT_TRUE(WriteVolatileFile(dir + "/hosts", "new", 0600).ok());
  EXPECT_EQ(ReadFile(dir + "/hosts").value_or(""), "new");
  struct stat st {};
  ASSERT_EQ(stat((dir + "/hosts").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ListDir(dir).value_or(std::vector<std::string>{}), std::vector<std::string>{"hosts"});
  // A missing directory: an error naming the file, nothing created.
  absl::Status s = WriteVolatileFile(dir + "/none/f", "x");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(dir + "/none/f"), std::string::npos) << s;
  ASSERT_TRUE(RemoveAll(dir).ok());
}

TEST(FileTest, JoinPath) {
  EXPECT_EQ(JoinPath("/a/", "/b"), "/a/b");
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
}

}  // namespace
}  // namespace berth
