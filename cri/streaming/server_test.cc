// The streaming server itself: URLs, routing by request-cache token, request validation and
// the upgrade negotiation (SPDY and WebSocket), as kubelet's CRI streaming server answers.
#include "cri/streaming/server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cri/streaming/connection.h"
#include "cri/streaming/testing/clients.h"
#include "cri/streaming/testing/fake_streaming_runtime.h"
#include "cri/streaming/websocket.h"
#include "gtest/gtest.h"

namespace berth::cri::streaming {
namespace {

using testing::FakeStreamingRuntime;
using testing::SpdyClient;
using testing::WsClient;

// Sends raw bytes to the server and reads its answer to EOF.
std::string RawRequest(const std::string& base_url, const std::string& request) {
  testing::Url u = testing::ParseUrl(base_url);
  testing::net::io_context ioc;
  testing::tcp::socket s(ioc);
  testing::tcp::resolver r(ioc);
  boost::system::error_code ec;
  testing::net::connect(s, r.resolve(u.host, u.port), ec);
  if (ec) return "";
  testing::SetReceiveTimeout(s.native_handle(), 10);
  testing::net::write(s, testing::net::buffer(request), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(testing::net::buffer(buf), ec);
    if (ec) return out;
    out.append(buf, n);
  }
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.set_script([](int, int out, int) {
      testing::WriteString(out, "ok");
      return 0;
    });
    ASSERT_TRUE(server_.Start().ok());
  }
  std::string ExecUrl() {
    v1::ExecRequest req;
    req.set_container_id("c1");
    req.add_cmd("true");
    req.set_stdout(true);
    auto resp = server_.GetExec(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->url() : "";
  }
  FakeStreamingRuntime runtime_;
  Server server_{&runtime_, ServerOptions{}};
};

TEST_F(ServerTest, UrlsCarryKindAndToken) {
  EXPECT_TRUE(absl::StartsWith(server_.base_url(), "http://127.0.0.1:"));
  std::string url = ExecUrl();
  EXPECT_TRUE(absl::StartsWith(url, server_.base_url() + "/exec/")) << url;
  v1::AttachRequest a;
  a.set_stdout(true);
  EXPECT_TRUE(absl::StartsWith(server_.GetAttach(a)->url(), server_.base_url() + "/attach/"));
  v1::PortForwardRequest p;
  EXPECT_TRUE(
      absl::StartsWith(server_.GetPortForward(p)->url(), server_.base_url() + "/portforward/"));
}

TEST_F(ServerTest, RejectsInvalidRequests) {
  v1::ExecRequest none;  // no stream
  EXPECT_EQ(server_.GetExec(none).status().code(), absl::StatusCode::kInvalidArgument);
  v1::ExecRequest tty_err;
  tty_err.set_tty(true);
  tty_err.set_stderr(true);
  EXPECT_EQ(server_.GetExec(tty_err).status().code(), absl::StatusCode::kInvalidArgument);
  v1::AttachRequest a;
  EXPECT_EQ(server_.GetAttach(a).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, TokenIsSingleUse) {
  std::string url = ExecUrl();
  WsClient first;
  ASSERT_TRUE(first.Connect(url, {"v4.channel.k8s.io"}).ok());
  EXPECT_EQ(testing::WebSocketUpgradeStatus(url, {"v4.channel.k8s.io"}), 404);
}

TEST_F(ServerTest, UnknownTokenAndWrongKindAre404) {
  std::string url = ExecUrl();
  std::string token = url.substr(url.rfind('/') + 1);
  std::string wrong_kind = RawRequest(
      server_.base_url(), absl::StrCat("GET /attach/", token, " HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(wrong_kind, "HTTP/1.1 404 Not Found")) << wrong_kind;
  std::string unknown =
      RawRequest(server_.base_url(), "GET /exec/nosuchtoken HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(unknown, "HTTP/1.1 404 Not Found")) << unknown;
  std::string bad_path = RawRequest(server_.base_url(), "GET /exec HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(bad_path, "HTTP/1.1 404 Not Found")) << bad_path;
  // The token was consumed by the wrong-kind request, as kubelet's cache does.
  WsClient c;
  EXPECT_FALSE(c.Connect(url, {"v4.channel.k8s.io"}).ok());
}

TEST_F(ServerTest, MalformedRequestIs400) {
  std::string resp = RawRequest(server_.base_url(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(resp, "HTTP/1.1 400 Bad Request")) << resp;
}

TEST_F(ServerTest, MissingUpgradeIs400) {
  std::string url = ExecUrl();
  std::string path = testing::ParseUrl(url).target;
  std::string resp =
      RawRequest(server_.base_url(), absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(resp, "HTTP/1.1 400 Bad Request")) << resp;
  EXPECT_TRUE(absl::StrContains(resp, "missing upgrade headers")) << resp;
}

TEST_F(ServerTest, SpdyNegotiationFailureIs403WithAcceptedVersions) {
  SpdyClient c;
  auto head = c.Connect(ExecUrl(), {"v3.channel.k8s.io", "channel.k8s.io"});
  ASSERT_TRUE(head.ok());
  EXPECT_TRUE(absl::StartsWith(*head, "HTTP/1.1 403 Forbidden")) << *head;
  EXPECT_TRUE(absl::StrContains(*head, "X-Accepted-Stream-Protocol-Versions: v5.channel.k8s.io"));
  EXPECT_TRUE(absl::StrContains(*head, "X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io"));
  EXPECT_TRUE(absl::StrContains(c.ReadToEof(), "unable to negotiate protocol"));
}

TEST_F(ServerTest, SpdyPrefersTheClientsOrder) {
  SpdyClient c;
  auto head = c.Connect(ExecUrl(), {"v4.channel.k8s.io", "v5.channel.k8s.io"});
  ASSERT_TRUE(head.ok());
  EXPECT_TRUE(absl::StrContains(*head, "X-Stream-Protocol-Version: v4.channel.k8s.io")) << *head;
}

TEST_F(ServerTest, WebSocketNegotiation) {
  WsClient c;
  ASSERT_TRUE(c.Connect(ExecUrl(), {"v4.channel.k8s.io", "v5.channel.k8s.io"}).ok());
  EXPECT_EQ(c.protocol(), "v4.channel.k8s.io");
  WsClient none;  // no subprotocol offered: accepted without one
  ASSERT_TRUE(none.Connect(ExecUrl(), {}).ok());
  EXPECT_EQ(none.protocol(), "");
  EXPECT_EQ(testing::WebSocketUpgradeStatus(ExecUrl(), {"v9.channel.k8s.io"}), 400);
  // Port-forward protocols are not exec protocols.
  EXPECT_EQ(testing::WebSocketUpgradeStatus(ExecUrl(), {"v4.portforward.k8s.io"}), 400);
  EXPECT_EQ(testing::WebSocketUpgradeStatus(ExecUrl(), {"v5.channel.k8s.io"}), 101);
}

TEST_F(ServerTest, WebSocketWrongVersionIsRefusedByBeast) {
  std::string path = testing::ParseUrl(ExecUrl()).target;
  std::string resp = RawRequest(
      server_.base_url(),
      absl::StrCat("GET ", path,
                   " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"
                   "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(resp, "HTTP/1.1 426 Upgrade Required")) << resp;
}

TEST_F(ServerTest, ShutdownEndsSessions) {
  runtime_.set_script([](int in, int out, int) {
    testing::ReadAll(in);  // until the session ends
    return 0;
  });
  v1::ExecRequest req;
  req.set_stdin(true);
  req.set_stdout(true);
  auto url = server_.GetExec(req);
  ASSERT_TRUE(url.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(url->url(), {"v5.channel.k8s.io"}).ok());
  c.Write(ws::EncodeChannelMessage(0, "x", false));
  server_.Shutdown();  // joins the session thread: returns only once it ended
  EXPECT_EQ(server_.active_sessions(), 0);
  EXPECT_FALSE(c.Read().has_value());
}

// A client that writes faster than the session consumes cannot make one read unbounded
// (stdin used to pile up in memory and be shifted on every write to the process).
TEST(Client, ReadIsBounded) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::string chunk(256 * 1024, 'x');
    while (!stop.load() && send(sv[1], chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
    }
  });
  internal::Client c;
  c.fd = sv[0];
  internal::SetNonBlocking(c.fd);
  size_t most = 0, total = 0;
  while (total < (64u << 20)) {
    std::string got;
    struct pollfd p = {c.fd, POLLIN, 0};
    poll(&p, 1, 10000);
    ASSERT_TRUE(c.Read(&got));
    most = std::max(most, got.size());
    total += got.size();
  }
  stop = true;
  shutdown(sv[0], SHUT_RDWR);
  writer.join();
  close(sv[0]);
  close(sv[1]);
  EXPECT_LT(most, internal::kHighWater + 64 * 1024);
  EXPECT_GT(most, 0u);
}

}  // namespace
}  // namespace berth::cri::streaming
