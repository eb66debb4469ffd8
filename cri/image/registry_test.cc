// RegistryClient endpoint selection: containerd's plain-HTTP fallback for loopback registries.
#include "cri/image/registry.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "cri/image/digest.h"

namespace berth::cri::image {
namespace {

TEST(IsLoopbackRegistryTest, LocalhostAndLoopbackAddressesOnly) {
  EXPECT_TRUE(IsLoopbackRegistry("localhost"));
  EXPECT_TRUE(IsLoopbackRegistry("localhost:5000"));
  EXPECT_TRUE(IsLoopbackRegistry("127.0.0.1:5000"));
  EXPECT_TRUE(IsLoopbackRegistry("127.3.4.5"));
  EXPECT_TRUE(IsLoopbackRegistry("[::1]:5000"));
  EXPECT_FALSE(IsLoopbackRegistry("registry.k8s.io"));
  EXPECT_FALSE(IsLoopbackRegistry("128.0.0.1:5000"));
  EXPECT_FALSE(IsLoopbackRegistry("localhost.example.com"));
  EXPECT_FALSE(IsLoopbackRegistry("10.0.0.1:5000"));
}

// A plain-HTTP registry on 127.0.0.1 not listed as insecure: HTTPS fails, HTTP answers.
TEST(RegistryClientTest, LoopbackRegistryFallsBackToPlainHttp) {
  const std::string manifest =
      R"({"schemaVersion":2,"mediaType":")" + std::string(kOciManifest) +
      R"(","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
      std::string(64, 'a') + R"(","size":2},"layers":[]})";
  httplib::Server srv;
  srv.Get("/v2/repo/manifests/t", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(manifest, kOciManifest);
  });
  int port = srv.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { srv.listen_after_bind(); });
  while (!srv.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  Reference ref{"127.0.0.1:" + std::to_string(port), "repo", "t", ""};
  RegistryClient client(ref, RegistryConfig{}, RegistryAuth{});
  EXPECT_EQ(client.endpoint(), "https://" + ref.domain);
  auto m = client.GetManifest("t");
  srv.stop();
  t.join();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(client.endpoint(), "http://" + ref.domain);
}

// A loopback registry with nothing listening: both schemes fail, the error is returned.
TEST(RegistryClientTest, LoopbackFallbackFailsWhenNothingListens) {
  // A port that was bound and closed: nothing listens, connect is refused at once.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  Reference ref{"127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), "repo", "t", ""};
  RegistryClient client(ref, RegistryConfig{}, RegistryAuth{});
  auto m = client.GetManifest("t");
  EXPECT_TRUE(absl::IsUnavailable(m.status())) << m.status();
}

// Other registries keep HTTPS; listed insecure ones use HTTP from the start.
TEST(RegistryClientTest, SchemeOfOtherRegistries) {
  Reference ref{"registry.example.com:5000", "repo", "t", ""};
  EXPECT_EQ(RegistryClient(ref, RegistryConfig{}, RegistryAuth{}).endpoint(),
            "https://registry.example.com:5000");
  RegistryConfig insecure;
  insecure.insecure_registries = {"registry.example.com:5000"};
  EXPECT_EQ(RegistryClient(ref, insecure, RegistryAuth{}).endpoint(),
            "http://registry.example.com:5000");
}

}  // namespace
}  // namespace berth::cri::image
