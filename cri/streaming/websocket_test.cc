#include "cri/streaming/websocket.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace berth::cri::streaming::ws {
namespace {

namespace http = boost::beast::http;

// A masked client frame, as RFC 6455 requires clients to send (built by hand, so that the
// test does not check Beast against itself).
std::string ClientFrame(uint8_t opcode, const std::string& payload, bool fin = true,
                        bool masked = true) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  char m = masked ? static_cast<char>(0x80) : 0;
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(m | payload.size()));
  } else {
    out.push_back(static_cast<char>(m | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  }
  if (!masked) return out + payload;
  out.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return out;
}

http::request<http::empty_body> UpgradeRequest(
    const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==") {
  http::request<http::empty_body> req{http::verb::get, "/exec/tok", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::sec_websocket_key, key);
  req.set(http::field::sec_websocket_version, "13");
  return req;
}

// A connection past the handshake; `out` holds only what came after the 101 response.
struct Accepted {
  std::string out;
  Connection conn{&out};
  explicit Accepted(const std::string& protocol = "v5.channel.k8s.io") {
    EXPECT_TRUE(conn.Accept(UpgradeRequest(), protocol).ok());
    out.clear();
  }
};

TEST(WebSocket, AcceptAnswersRfcKeyAndProtocol) {
  std::string out;
  Connection conn(&out);
  ASSERT_TRUE(conn.Accept(UpgradeRequest(), "v4.channel.k8s.io").ok());
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 101 Switching Protocols\r\n")) << out;
  // RFC 6455 section 1.3 example key.
  EXPECT_TRUE(absl::StrContains(out, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n")) << out;
}

TEST(WebSocket, AcceptWithoutProtocolSendsNone) {
  std::string out;
  Connection conn(&out);
  ASSERT_TRUE(conn.Accept(UpgradeRequest(), "").ok());
  EXPECT_FALSE(absl::StrContains(out, "Sec-WebSocket-Protocol")) << out;
}

TEST(WebSocket, AcceptRejectsMissingKeyWith400) {
  std::string out;
  Connection conn(&out);
  auto req = UpgradeRequest();
  req.erase(http::field::sec_websocket_key);
  EXPECT_FALSE(conn.Accept(req, "v4.channel.k8s.io").ok());
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 400 Bad Request\r\n")) << out;
}

TEST(WebSocket, JoinsFragmentsAndAnswersPingBetweenThem) {
  Accepted a;
  std::vector<Message> got;
  std::string bytes = ClientFrame(0x2, std::string("\0hel", 4), false) + ClientFrame(0x9, "p") +
                      ClientFrame(0x0, "lo") + ClientFrame(0x2, std::string(300, 'z'));
  // Byte by byte: frames split across reads are reassembled.
  for (char ch : bytes) ASSERT_TRUE(a.conn.OnBytes(std::string(1, ch), &got).ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].text);
  EXPECT_EQ(got[0].payload, std::string("\0hello", 6));
  EXPECT_EQ(got[1].payload, std::string(300, 'z'));
  EXPECT_EQ(a.out, std::string("\x8a\x01p", 3));  // the pong, unmasked
}

TEST(WebSocket, TextMessagesAreMarkedText) {
  Accepted a("base64.channel.k8s.io");
  std::vector<Message> got;
  ASSERT_TRUE(a.conn.OnBytes(ClientFrame(0x1, "0aGk="), &got).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].text);
  EXPECT_EQ(got[0].payload, "0aGk=");
}

TEST(WebSocket, RejectsUnmaskedClientFrame) {
  Accepted a;
  std::vector<Message> got;
  EXPECT_FALSE(a.conn.OnBytes(ClientFrame(0x2, "x", true, false), &got).ok());
  EXPECT_TRUE(got.empty());
}

TEST(WebSocket, ServerFramesAreSingleUnmaskedFrames) {
  Accepted a;
  a.conn.Send("ab", false);
  EXPECT_EQ(a.out, std::string("\x82\x02"
                               "ab",
                               4));
  a.out.clear();
  a.conn.Send(std::string(200, 'a'), true);
  EXPECT_EQ(a.out.substr(0, 4), std::string("\x81\x7e\x00\xc8", 4));
  EXPECT_EQ(a.out.size(), 204u);
  a.out.clear();
  a.conn.Send(std::string(70000, 'a'), false);  // not fragmented (auto_fragment off)
  ASSERT_EQ(a.out.size(), 70000u + 10);
  EXPECT_EQ(static_cast<unsigned char>(a.out[0]), 0x82);
  EXPECT_EQ(static_cast<unsigned char>(a.out[1]), 127);
}

TEST(WebSocket, ClientCloseIsEchoedAndEndsTheConnection) {
  Accepted a;
  std::vector<Message> got;
  ASSERT_TRUE(a.conn.OnBytes(ClientFrame(0x2, "\x01x") + ClientFrame(0x8, "\x03\xe8"), &got).ok());
  EXPECT_EQ(got.size(), 1u);
  EXPECT_TRUE(a.conn.closed_by_peer());
  EXPECT_EQ(a.out, std::string("\x88\x02\x03\xe8", 4));
  a.out.clear();
  a.conn.Send("late", false);  // ignored after the close
  a.conn.Close();
  EXPECT_EQ(a.out, "");
}

TEST(WebSocket, ServerCloseSendsNormalClosureOnce) {
  Accepted a;
  a.conn.Close();
  EXPECT_EQ(a.out, std::string("\x88\x02\x03\xe8", 4));
  a.conn.Close();
  a.conn.Send("late", false);
  EXPECT_EQ(a.out.size(), 4u);
  EXPECT_FALSE(a.conn.closed_by_peer());
}

TEST(WebSocket, ChannelMessages) {
  EXPECT_EQ(EncodeChannelMessage(1, "out", false), std::string("\x01out", 4));
  // base64.channel.k8s.io: ASCII channel digit, base64 data.
  EXPECT_EQ(EncodeChannelMessage(2, "hi", true), "2aGk=");
  auto m = DecodeChannelMessage(std::string("\0input", 6), false);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->channel, 0);
  EXPECT_EQ(m->data, "input");
  auto b = DecodeChannelMessage("0aGk=", true);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->channel, 0);
  EXPECT_EQ(b->data, "hi");
  auto close = DecodeChannelMessage(std::string("\xff\x00", 2), false);
  ASSERT_TRUE(close.ok());
  EXPECT_EQ(close->channel, kCloseChannel);
  EXPECT_EQ(close->data, std::string("\0", 1));
  EXPECT_FALSE(DecodeChannelMessage("", false).ok());
  EXPECT_FALSE(DecodeChannelMessage("0!!!", true).ok());
}

}  // namespace
}  // namespace berth::cri::streaming::ws
