#include "kubelet/server/container_log_manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "cri/testing/fake_cri.h"

namespace berth::kubelet::server {
namespace {

namespace v1 = ::runtime::v1;

// One running container "c1" (and an exited "c0") whose log is `path`; ReopenContainerLog
// creates a new file there (what conmon does) unless `fail_reopen`.
class LogRuntime : public cri::testing::FakeRuntimeService {
 public:
  std::string path;
  bool fail_reopen = false;
  int reopens = 0;

  LogRuntime() {
    AddContainer("c0", {.state = v1::CONTAINER_EXITED});
    AddContainer("c1", {.state = v1::CONTAINER_RUNNING});
    OnContainerStatus(
        [this](const v1::ContainerStatusRequest&) -> absl::StatusOr<v1::ContainerStatusResponse> {
          v1::ContainerStatusResponse resp;
          resp.mutable_status()->set_log_path(path);
          return resp;
        });
    OnReopenContainerLog([this](const v1::ReopenContainerLogRequest& r)
                             -> absl::StatusOr<v1::ReopenContainerLogResponse> {
      EXPECT_EQ(r.container_id(), "c1");
      if (fail_reopen) return absl::FailedPreconditionError("container not running");
      ++reopens;
      std::ofstream(path).flush();
      return v1::ReopenContainerLogResponse();
    });
  }
};

TEST(ParseQuantityBytes, Suffixes) {
  EXPECT_EQ(*ParseQuantityBytes("10Mi"), 10 << 20);
  EXPECT_EQ(*ParseQuantityBytes("1Ki"), 1024);
  EXPECT_EQ(*ParseQuantityBytes("2M"), 2000000);
  EXPECT_EQ(*ParseQuantityBytes("4096"), 4096);
  EXPECT_EQ(*ParseQuantityBytes("Mi"), 0);  // no digits: zero, as upstream ParseQuantity
  EXPECT_FALSE(ParseQuantityBytes("").ok());
  EXPECT_FALSE(ParseQuantityBytes("-1").ok());
  EXPECT_EQ(*ParseQuantityBytes("1.5Mi"),
            1572864);  // whole bytes (upstream refuses it for its representation)
  EXPECT_FALSE(ParseQuantityBytes("1.5").ok());
  EXPECT_FALSE(ParseQuantityBytes("10K").ok());  // no "K" suffix upstream
  EXPECT_EQ(*ParseQuantityBytes("1e3"), 1000);
}

TEST(ContainerLogManager, RotatesBigLogsKeepsMaxFilesAndRestoresOnFailure) {
  auto dir = std::filesystem::temp_directory_path() / absl::StrCat("log_manager_test_", getpid());
  std::filesystem::create_directories(dir);
  LogRuntime rt;
  rt.path = (dir / "0.log").string();
  ContainerLogManager m(&rt, {.max_size_bytes = 100, .max_files = 3});
  auto write = [&](size_t n) { std::ofstream(rt.path, std::ios::app) << std::string(n, 'x'); };
  auto count = [&] {
    return std::distance(std::filesystem::directory_iterator(dir),
                         std::filesystem::directory_iterator());
  };
  write(50);
  ASSERT_TRUE(m.RotateOnce(absl::FromUnixSeconds(1000)).ok());
  EXPECT_EQ(rt.reopens, 0);  // small: untouched
  for (int i = 0; i < 4; ++i) {
    write(200);
    ASSERT_TRUE(m.RotateOnce(absl::FromUnixSeconds(1000 + i)).ok());
    EXPECT_EQ(rt.reopens, i + 1);
    EXPECT_EQ(std::filesystem::file_size(rt.path), 0u);
  }
  // The current file + max_files - 1 rotated ones: the newest two rotations.
  EXPECT_EQ(count(), 3);
  EXPECT_TRUE(std::filesystem::exists(rt.path + ".19700101-001642"));
  EXPECT_TRUE(std::filesystem::exists(rt.path + ".19700101-001643"));
  rt.fail_reopen = true;
  write(200);
  EXPECT_TRUE(m.RotateOnce(absl::FromUnixSeconds(2000)).ok());
  EXPECT_EQ(std::filesystem::file_size(rt.path), 200u);  // renamed back
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace berth::kubelet::server
