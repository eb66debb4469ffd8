#include "base/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace berth {
namespace {

TEST(ProcessTest, RunCapturesOutputAndExitCode) {
  auto r = berth::Run({"sh", "-c", "cat; echo err >&2; exit 3"}, "input");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "input");
  EXPECT_EQ(r->err, "err\n");
}

TEST(ProcessTest, RunOkReportsFailure) {
  auto r = RunOk({"sh", "-c", "echo boom >&2; exit 1"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("boom"), std::string::npos);
}

TEST(ProcessTest, TimeoutKills) {
  auto r = berth::Run({"sleep", "10"}, "", std::chrono::milliseconds(100));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
}

// A descriptor of berth without FD_CLOEXEC (a listener opened by Asio, say) is not inherited.
TEST(ProcessTest, ChildInheritsOnlyStdio) {
  int tmp = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(tmp, 0);
  int fd = dup2(tmp, 100);  // dup2 leaves FD_CLOEXEC off
  close(tmp);
  ASSERT_EQ(fd, 100);
  auto r = berth::Run({"sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"});
  close(fd);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((" " + r->out).find(" 100 "), std::string::npos) << r->out;
}

TEST(ProcessTest, MissingBinaryIsNotFound) {
  EXPECT_EQ(Spawn({"/nonexistent/bin"}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace berth
