#include "cri/streaming/status.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace berth::cri::streaming {
namespace {

TEST(ExitStatus, SuccessAndNonZero) {
  EXPECT_EQ(ExitStatusJson(0), R"({"metadata":{},"status":"Success"})");
  auto j = nlohmann::json::parse(ExitStatusJson(3));
  EXPECT_EQ(j["status"], "Failure");
  EXPECT_EQ(j["reason"], "NonZeroExitCode");
  EXPECT_EQ(j["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(j["details"]["causes"][0]["message"], "3");
  EXPECT_EQ(j["message"], "command terminated with non-zero exit code: exit status 3");
}

TEST(ExitStatus, InternalError) {
  auto j = nlohmann::json::parse(InternalErrorStatusJson("no such file"));
  EXPECT_EQ(j["status"], "Failure");
  EXPECT_EQ(j["reason"], "InternalError");
  EXPECT_EQ(j["code"], 500);
  EXPECT_EQ(j["message"], "error executing command in container: no such file");
}

// Protocols before v4: nothing on success, the message text otherwise.
TEST(ExitStatus, LegacyText) {
  EXPECT_EQ(LegacyStatusText(ExitStatusJson(0)), "");
  EXPECT_EQ(LegacyStatusText(ExitStatusJson(3)),
            "command terminated with non-zero exit code: exit status 3");
  EXPECT_EQ(LegacyStatusText(InternalErrorStatusJson("boom")),
            "error executing command in container: boom");
}

}  // namespace
}  // namespace berth::cri::streaming
