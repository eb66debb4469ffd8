// Port-forward through the in-process server, over SPDY (portforward.k8s.io) and WebSocket
// (v4.portforward.k8s.io), to an echo server of the test.
#include "cri/streaming/port_forward.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "cri/streaming/testing/clients.h"
#include "cri/streaming/testing/fake_streaming_runtime.h"
#include "gtest/gtest.h"

namespace berth::cri::streaming {
namespace {

using testing::FakeStreamingRuntime;
using testing::SpdyClient;
using testing::WsClient;

// A TCP server on 127.0.0.1 that echoes one connection until EOF, then closes it.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 1);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      for (;;) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        echoed_ += static_cast<int>(n);
        if (!testing::WriteString(c, std::string(buf, static_cast<size_t>(n)))) break;
      }
      saw_eof_ = true;
      close(c);
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);  // ends a pending accept
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  // Waits for the connection to end (the thread exits): true when it saw the client's EOF.
  bool WaitEof() {
    thread_.join();
    thread_ = std::thread([] {});
    return saw_eof_;
  }
  int echoed() const { return echoed_; }

 private:
  int fd_ = -1, port_ = 0;
  std::atomic<int> echoed_{0};
  std::atomic<bool> saw_eof_{false};
  std::thread thread_;
};

// A port nothing listens on.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class PortForwardTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start().ok()); }
  std::string Url(int32_t port) {
    v1::PortForwardRequest req;
    req.set_pod_sandbox_id("sb1");
    req.add_port(port);
    auto resp = server_.GetPortForward(req);
    EXPECT_TRUE(resp.ok());
    return resp.ok() ? resp->url() : "";
  }
  FakeStreamingRuntime runtime_;
  Server server_{&runtime_, ServerOptions{}};
};

TEST_F(PortForwardTest, WebSocketAnnouncesPortsAndForwards) {
  EchoServer echo;
  runtime_.set_port_map([&](int32_t p) { return p == 80 ? echo.port() : -1; });
  WsClient c;
  ASSERT_TRUE(c.Connect(Url(80), {"v4.portforward.k8s.io"}).ok());
  EXPECT_EQ(c.protocol(), "v4.portforward.k8s.io");
  // The first message on the data and the error channel: the port, 2 bytes little-endian.
  EXPECT_EQ(c.Read(), std::string("\x00\x50\x00", 3));
  EXPECT_EQ(c.Read(), std::string("\x01\x50\x00", 3));
  c.Write(ws::EncodeChannelMessage(0, "ping", false));
  auto m = c.Read();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(*m, std::string("\x00ping", 5));
  c.Close();
  EXPECT_TRUE(echo.WaitEof());  // the client's close ended the pod connection
  EXPECT_EQ(echo.echoed(), 4);
}

TEST_F(PortForwardTest, WebSocketDialErrorGoesToErrorChannel) {
  runtime_.set_port_map([](int32_t) { return ClosedPort(); });
  WsClient c;
  ASSERT_TRUE(c.Connect(Url(8080), {"portforward.k8s.io"}).ok());
  EXPECT_EQ(c.Read(), std::string("\x00\x90\x1f", 3));
  EXPECT_EQ(c.Read(), std::string("\x01\x90\x1f", 3));
  auto err = c.Read();
  ASSERT_TRUE(err.has_value());
  EXPECT_TRUE(absl::StartsWith(*err,
                               "\x01"
                               "error forwarding port 8080 to pod sb1, uid : "))
      << *err;
  // Nothing is left to forward: the server closes normally.
  EXPECT_FALSE(c.Read().has_value());
  EXPECT_EQ(c.close_code(), 1000);
}

TEST_F(PortForwardTest, SpdyForwardsAndHalfClosesPerRequest) {
  EchoServer echo;
  runtime_.set_port_map([&](int32_t) { return echo.port(); });
  SpdyClient c;
  auto head = c.Connect(Url(80), {"portforward.k8s.io"});
  ASSERT_TRUE(head.ok());
  EXPECT_TRUE(absl::StrContains(*head, "X-Stream-Protocol-Version: portforward.k8s.io")) << *head;
  c.CreateStream(1, {{"streamtype", "error"}, {"port", "80"}, {"requestid", "0"}});
  c.CreateStream(3, {{"streamtype", "data"}, {"port", "80"}, {"requestid", "0"}});
  c.SendData(3, "hello", false);
  std::string data;
  std::map<uint32_t, bool> fin;
  int replies = 0;
  while (!(fin[1] && fin[3])) {
    auto r = c.Next();
    ASSERT_TRUE(r.has_value());
    if (r->frame.control) {
      if (r->frame.type == spdy::FrameType::kSynReply) ++replies;
      continue;
    }
    if (r->frame.stream_id == 3) data += r->frame.data;
    if (r->frame.fin()) fin[r->frame.stream_id] = true;
    if (data == "hello" && !fin[3]) c.SendData(3, "", true);  // half-close: the echo ends
  }
  EXPECT_EQ(replies, 2);
  EXPECT_EQ(data, "hello");
  EXPECT_TRUE(echo.WaitEof());
}

TEST_F(PortForwardTest, SpdyDialErrorGoesToErrorStream) {
  runtime_.set_port_map([](int32_t) { return ClosedPort(); });
  SpdyClient c;
  ASSERT_TRUE(c.Connect(Url(80), {"portforward.k8s.io"}).ok());
  c.CreateStream(1, {{"streamtype", "error"}, {"port", "80"}, {"requestid", "7"}});
  c.CreateStream(3, {{"streamtype", "data"}, {"port", "80"}, {"requestid", "7"}});
  std::string err;
  std::map<uint32_t, bool> fin;
  while (!(fin[1] && fin[3])) {
    auto r = c.Next();
    ASSERT_TRUE(r.has_value());
    if (r->frame.control) continue;
    if (r->frame.stream_id == 1) err += r->frame.data;
    if (r->frame.fin()) fin[r->frame.stream_id] = true;
  }
  EXPECT_TRUE(absl::StartsWith(err, "error forwarding port 80 to pod sb1, uid : ")) << err;
}

TEST_F(PortForwardTest, SpdyRefusesStreamsWithoutValidPort) {
  SpdyClient c;
  ASSERT_TRUE(c.Connect(Url(80), {"portforward.k8s.io"}).ok());
  c.CreateStream(1, {{"streamtype", "data"}, {"port", "0"}, {"requestid", "0"}});
  c.CreateStream(3, {{"streamtype", "bogus"}, {"port", "80"}, {"requestid", "0"}});
  for (uint32_t want : {1u, 3u}) {
    auto r = c.Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->frame.type, spdy::FrameType::kRstStream);
    EXPECT_EQ(r->frame.stream_id, want);
    EXPECT_EQ(r->frame.status, spdy::kRstRefusedStream);
  }
}

}  // namespace
}  // namespace berth::cri::streaming
