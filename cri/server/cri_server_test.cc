#include "cri/server/cri_server.h"

#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/file.h"
#include "cri/api/api.grpc.pb.h"
#include "cri/server/instrument.h"
#include "cri/testing/fake_cri.h"
#include "gtest/gtest.h"

namespace berth::cri::server {
namespace {

constexpr char kPodId[] = "4dd2f0b1c2a3fake0000000000000000000000000000000000000000000000000";

// One ready pod sandbox "web-0" and one image.
cri::testing::FakeRuntimeService::Sandbox Web0() {
  cri::testing::FakeRuntimeService::Sandbox sb;
  sb.config.mutable_metadata()->set_name("web-0");
  sb.config.mutable_metadata()->set_namespace_("default");
  sb.config.mutable_metadata()->set_uid("uid-web-0");
  sb.created_at = 1700000000000000000;
  return sb;
}

v1::Image Busybox() {
  v1::Image image;
  image.set_id("sha256:1111111111111111111111111111111111111111111111111111111111111111");
  image.add_repo_tags("localhost:5000/busybox:1.36");
  image.add_repo_digests(
      "localhost:5000/"
      "busybox@sha256:2222222222222222222222222222222222222222222222222222222222222222");
  image.set_size(1234567);
  return image;
}

class CriServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.AddSandbox(kPodId, Web0());
    images_.AddImage(Busybox());
    char tmpl[] = "/tmp/cri_server_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/run/berth.sock";
  }
  void TearDown() override {
    server_.reset();
    ASSERT_TRUE(RemoveAll(dir_).ok());
  }

  void StartServer() {
    server_ = std::make_unique<CriServer>(
        &runtime_, &images_, CriServerOptions{.socket_path = socket_, .registry = &registry_});
    absl::Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s;
    auto channel = grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials());
    runtime_stub_ = v1::RuntimeService::NewStub(channel);
    image_stub_ = v1::ImageService::NewStub(channel);
  }

  std::string dir_;
  std::string socket_;
  metrics::Registry registry_;
  cri::testing::FakeRuntimeService runtime_;
  cri::testing::FakeImageService images_;
  std::unique_ptr<CriServer> server_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_stub_;
  std::unique_ptr<v1::ImageService::Stub> image_stub_;
};

TEST_F(CriServerTest, VersionAndSocketMode) {
  StartServer();
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  grpc::ClientContext ctx;
  v1::VersionRequest req;
  req.set_version("v1");
  v1::VersionResponse resp;
  grpc::Status s = runtime_stub_->Version(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.runtime_name(), "fake-berth");
  EXPECT_EQ(resp.runtime_version(), "9.8.7");
  EXPECT_EQ(resp.runtime_api_version(), "v1");

  std::string text = registry_.Expose();
  EXPECT_NE(text.find("berth_cri_requests_total{method=\"Version\",code=\"OK\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cri_request_duration_seconds_count{method=\"Version\"} 1\n"),
            std::string::npos)
      << text;
}

TEST_F(CriServerTest, ErrorsKeepCodeAndMessage) {
  runtime_.SetError("ListPodSandbox", absl::NotFoundError("pod sandbox \"abc\" not found"));
  StartServer();
  {
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse resp;
    grpc::Status s = runtime_stub_->ListPodSandbox(&ctx, v1::ListPodSandboxRequest(), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(), "pod sandbox \"abc\" not found");
  }
  {
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id("missing");
    v1::PodSandboxStatusResponse resp;
    grpc::Status s = runtime_stub_->PodSandboxStatus(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(), "pod sandbox \"missing\" not found");
  }
  {
    // Not modelled by the fake: the interface's default.
    grpc::ClientContext ctx;
    v1::UpdateContainerResourcesResponse resp;
    grpc::Status s =
        runtime_stub_->UpdateContainerResources(&ctx, v1::UpdateContainerResourcesRequest(), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(s.error_message(), "UpdateContainerResources is not implemented by berth");
  }
  std::string text = registry_.Expose();
  EXPECT_NE(text.find("berth_cri_requests_total{method=\"ListPodSandbox\",code=\"NotFound\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_cri_requests_total{method=\"UpdateContainerResources\",code="
                      "\"Unimplemented\"} 1\n"),
            std::string::npos)
      << text;
}

TEST_F(CriServerTest, ListsAndImages) {
  StartServer();
  grpc::ClientContext ctx;
  v1::ListPodSandboxRequest req;
  req.mutable_filter()->set_id(kPodId);
  v1::ListPodSandboxResponse resp;
  ASSERT_TRUE(runtime_stub_->ListPodSandbox(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.items_size(), 1);
  EXPECT_EQ(resp.items(0).metadata().name(), "web-0");
  EXPECT_EQ(runtime_.LastRequest<v1::ListPodSandboxRequest>().filter().id(), kPodId);

  grpc::ClientContext ctx2;
  v1::ListImagesResponse images;
  ASSERT_TRUE(image_stub_->ListImages(&ctx2, v1::ListImagesRequest(), &images).ok());
  ASSERT_EQ(images.images_size(), 1);
  EXPECT_EQ(images.images(0).repo_tags(0), "localhost:5000/busybox:1.36");
}

TEST_F(CriServerTest, StreamListsSendAllItemsThenEof) {
  runtime_.AddSandbox("second", Web0());
  StartServer();
  {
    grpc::ClientContext ctx;
    v1::StreamPodSandboxesRequest req;
    auto reader = runtime_stub_->StreamPodSandboxes(&ctx, req);
    v1::StreamPodSandboxesResponse resp;
    std::vector<std::string> ids;
    while (reader->Read(&resp)) {
      EXPECT_GT(resp.pod_sandboxes_size(), 0);
      for (const auto& p : resp.pod_sandboxes()) ids.push_back(p.id());
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(ids, (std::vector<std::string>{kPodId, "second"}));
  }
  {
    // The filter is passed on: nothing matches, so no response at all, then OK.
    grpc::ClientContext ctx;
    v1::StreamPodSandboxesRequest req;
    req.mutable_filter()->set_id("nothing");
    auto reader = runtime_stub_->StreamPodSandboxes(&ctx, req);
    v1::StreamPodSandboxesResponse resp;
    EXPECT_FALSE(reader->Read(&resp));
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(runtime_.LastRequest<v1::ListPodSandboxRequest>().filter().id(), "nothing");
  }
  {
    grpc::ClientContext ctx;
    auto reader = image_stub_->StreamImages(&ctx, v1::StreamImagesRequest());
    v1::StreamImagesResponse resp;
    ASSERT_TRUE(reader->Read(&resp));
    EXPECT_EQ(resp.images_size(), 1);
    EXPECT_FALSE(reader->Read(&resp));
    EXPECT_TRUE(reader->Finish().ok());
  }
  {
    // ListContainers fails: the stream carries that error.
    runtime_.SetError("ListContainers",
                      absl::UnimplementedError("ListContainers is not implemented by berth"));
    grpc::ClientContext ctx;
    auto reader = runtime_stub_->StreamContainers(&ctx, v1::StreamContainersRequest());
    v1::StreamContainersResponse resp;
    EXPECT_FALSE(reader->Read(&resp));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  {
    grpc::ClientContext ctx;
    auto reader = runtime_stub_->GetContainerEvents(&ctx, v1::GetEventsRequest());
    v1::ContainerEventResponse resp;
    EXPECT_FALSE(reader->Read(&resp));
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_NE(s.error_message().find("GetContainerEvents"), std::string::npos);
  }
}

// A list larger than a client's default 4 MiB receive limit arrives as several responses,
// each item exactly once, in order.
TEST_F(CriServerTest, StreamSplitsLargeListsIntoChunks) {
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(kPodId);
  ASSERT_TRUE(runtime_.RemovePodSandbox(rm).ok());
  for (int i = 0; i < 5; ++i) {
    cri::testing::FakeRuntimeService::Sandbox p;
    (*p.config.mutable_annotations())["big"] = std::string(1500 * 1024, 'x');
    runtime_.AddSandbox("pod" + std::to_string(i), p);
  }
  StartServer();
  {
    // The unary List is 7.5 MiB: over the client's default limit.
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse resp;
    EXPECT_EQ(runtime_stub_->ListPodSandbox(&ctx, v1::ListPodSandboxRequest(), &resp).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  grpc::ClientContext ctx;
  auto reader = runtime_stub_->StreamPodSandboxes(&ctx, v1::StreamPodSandboxesRequest());
  v1::StreamPodSandboxesResponse resp;
  std::vector<std::string> ids;
  int responses = 0;
  while (reader->Read(&resp)) {
    ++responses;
    EXPECT_GT(resp.pod_sandboxes_size(), 0);
    EXPECT_LT(resp.ByteSizeLong(), 4u * 1024 * 1024);
    for (const auto& p : resp.pod_sandboxes()) ids.push_back(p.id());
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_GT(responses, 1);
  EXPECT_EQ(ids, (std::vector<std::string>{"pod0", "pod1", "pod2", "pod3", "pod4"}));
}

TEST_F(CriServerTest, ReplacesStaleSocketRefusesLiveOneAndCleansUp) {
  StartServer();
  CriServer second(&runtime_, &images_, CriServerOptions{.socket_path = socket_});
  EXPECT_EQ(second.Start().code(), absl::StatusCode::kAlreadyExists);

  server_->Shutdown(std::chrono::milliseconds(100));
  EXPECT_FALSE(PathExists(socket_));
  server_->Shutdown();  // idempotent

  // A stale socket file (bound, then closed without unlink: a crashed server) is replaced.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
    ASSERT_TRUE(PathExists(socket_));
    CriServer third(&runtime_, &images_, CriServerOptions{.socket_path = socket_});
    ASSERT_TRUE(third.Start().ok());
    auto stub = v1::RuntimeService::NewStub(
        grpc::CreateChannel(third.target(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::VersionResponse resp;
    EXPECT_TRUE(stub->Version(&ctx, v1::VersionRequest(), &resp).ok());
  }
  EXPECT_FALSE(PathExists(socket_));
  ASSERT_TRUE(WriteFileAtomic(socket_, "not a socket").ok());
  CriServer fourth(&runtime_, &images_, CriServerOptions{.socket_path = socket_});
  EXPECT_EQ(fourth.Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(InstrumentTest, KeyIdsAndCodes) {
  v1::CreateContainerRequest create;
  create.set_pod_sandbox_id("pod1");
  create.mutable_config()->mutable_metadata()->set_name("app");
  EXPECT_EQ(KeyIds(create), "pod_sandbox_id=pod1 name=app");
  v1::PullImageRequest pull;
  pull.mutable_image()->set_image("busybox:1.36");
  EXPECT_EQ(KeyIds(pull), "image=busybox:1.36");
  v1::RunPodSandboxRequest run;
  run.mutable_config()->mutable_metadata()->set_name("web-0");
  run.mutable_config()->mutable_metadata()->set_namespace_("default");
  EXPECT_EQ(KeyIds(run), "namespace=default name=web-0");
  EXPECT_EQ(KeyIds(v1::VersionRequest()), "");

  grpc::Status g = ToGrpcStatus(absl::DeadlineExceededError("slow"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(g.error_message(), "slow");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_STREQ(GrpcCodeName(absl::StatusCode::kResourceExhausted), "ResourceExhausted");
}

}  // namespace
}  // namespace berth::cri::server
