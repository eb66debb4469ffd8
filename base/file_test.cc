#include "base/file.h"

#include <gtest/gtest.h>

#include <cstdlib>

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

TEST(FileTest, JoinPath) {
  EXPECT_EQ(JoinPath("/a/", "/b"), "/a/b");
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
}

}  // namespace
}  // namespace berth
