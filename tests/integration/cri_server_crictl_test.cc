// Upstream crictl (sigs.k8s.io/cri-tools, built by tests/cluster) against berth's CRI gRPC
// server backed by fake services: proves the wire format, service names and socket handling
// are what real CRI clients expect.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/process.h"
#include "cri/server/cri_server.h"
#include "cri/testing/fake_cri.h"
#include "gtest/gtest.h"

namespace berth::cri::server {
namespace {

constexpr char kPodId[] = "4dd2f0b1c2a3fake0000000000000000000000000000000000000000000000000";
constexpr char kImageId[] =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

class CrictlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One ready pod sandbox and one image.
    cri::testing::FakeRuntimeService::Sandbox pod;
    pod.config.mutable_metadata()->set_name("web-0");
    pod.config.mutable_metadata()->set_namespace_("default");
    pod.config.mutable_metadata()->set_uid("uid-web-0");
    pod.created_at = 1700000000000000000;
    runtime_.AddSandbox(kPodId, pod);
    v1::Image image;
    image.set_id(kImageId);
    image.add_repo_tags("localhost:5000/busybox:1.36");
    image.add_repo_digests(
        "localhost:5000/"
        "busybox@sha256:2222222222222222222222222222222222222222222222222222222222222222");
    image.set_size(1234567);
    images_.AddImage(image);
    if (!PathExists(BERTH_CRICTL)) {
      GTEST_SKIP() << BERTH_CRICTL << " not built (tests/cluster/build.sh)";
    }
    char tmpl[] = "/tmp/cri_server_crictl.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/berth.sock";
    server_ =
        std::make_unique<CriServer>(&runtime_, &images_, CriServerOptions{.socket_path = socket_});
    absl::Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s;
    // crictl insists on a config file; ours points at the test server, not the host's.
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/crictl.yaml", "runtime-endpoint: unix://" + socket_ +
                                                           "\n" + "image-endpoint: unix://" +
                                                           socket_ + "\n" + "timeout: 10\n")
                    .ok());
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) {
      EXPECT_TRUE(RemoveAll(dir_).ok());
    }
  }

  // Runs crictl with `args` against the server; returns stdout, failing the test on a
  // non-zero exit.
  std::string Crictl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {
        BERTH_CRICTL,         "--config",          dir_ + "/crictl.yaml",  // not the host's
        "--runtime-endpoint", "unix://" + socket_, "--image-endpoint",
        "unix://" + socket_,  "--timeout",         "10s"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<RunResult> r = berth::Run(argv, "", std::chrono::seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->exit_code, 0) << "crictl " << args[0] << ": " << r->err;
    return r->out;
  }

  std::string dir_;
  std::string socket_;
  cri::testing::FakeRuntimeService runtime_;
  cri::testing::FakeImageService images_;
  std::unique_ptr<CriServer> server_;
};

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_F(CrictlTest, Version) {
  std::string out = Crictl({"version"});
  EXPECT_TRUE(Contains(out, "RuntimeName:  fake-berth")) << out;
  EXPECT_TRUE(Contains(out, "RuntimeVersion:  9.8.7")) << out;
  EXPECT_TRUE(Contains(out, "RuntimeApiVersion:  v1")) << out;
}

TEST_F(CrictlTest, Pods) {
  std::string out = Crictl({"pods"});
  EXPECT_TRUE(Contains(out, "web-0")) << out;
  EXPECT_TRUE(Contains(out, "default")) << out;
  EXPECT_TRUE(Contains(out, "Ready")) << out;
  EXPECT_TRUE(Contains(out, std::string(kPodId).substr(0, 13))) << out;

  std::string json = Crictl({"pods", "-o", "json"});
  EXPECT_TRUE(Contains(json, "\"id\": \"" + std::string(kPodId) + "\"")) << json;
  EXPECT_TRUE(Contains(json, "\"uid\": \"uid-web-0\"")) << json;
}

TEST_F(CrictlTest, Images) {
  std::string out = Crictl({"images"});
  EXPECT_TRUE(Contains(out, "localhost:5000/busybox")) << out;
  EXPECT_TRUE(Contains(out, "1.36")) << out;
  EXPECT_TRUE(Contains(out, " " + std::string(kImageId).substr(7, 13) + " ")) << out;  // short ID
  EXPECT_TRUE(Contains(out, "1.23MB")) << out;

  std::string json = Crictl({"images", "-o", "json"});
  EXPECT_TRUE(Contains(json, kImageId)) << json;
}

}  // namespace
}  // namespace berth::cri::server
