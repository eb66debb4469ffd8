#include "cri/streaming/websocket.h"

#include "gtest/gtest.h"

namespace berth::cri::streaming::ws {
namespace {

// A masked client frame, as RFC 6455 requires clients to send.
std::string ClientFrame(uint8_t opcode, const std::string& payload, bool fin = true) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  }
  out.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i) out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return out;
}

TEST(WebSocket, AcceptKeyFromRfc) {
  // RFC 6455 section 1.3 example.
  EXPECT_EQ(AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocket, ParsesMaskedFramesAndFragments) {
  FrameParser p;
  p.Append(ClientFrame(kOpBinary, std::string("\0hel", 4), false));
  p.Append(ClientFrame(kOpPing, "p"));  // control frame between fragments
  p.Append(ClientFrame(kOpContinuation, "lo"));
  p.Append(ClientFrame(kOpBinary, std::string(300, 'z')));
  auto m = p.Next();
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->opcode, kOpPing);
  m = p.Next();
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->opcode, kOpBinary);
  EXPECT_EQ((*m)->payload, std::string("\0hello", 6));
  m = p.Next();
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->payload, std::string(300, 'z'));
  m = p.Next();
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->has_value());
}

TEST(WebSocket, RejectsUnmaskedClientFrame) {
  FrameParser p;
  p.Append(EncodeFrame(kOpBinary, "x"));
  EXPECT_FALSE(p.Next().ok());
}

TEST(WebSocket, ServerFramesAreUnmaskedWithExtendedLengths) {
  EXPECT_EQ(EncodeFrame(kOpBinary, "ab"), std::string("\x82\x02" "ab", 4));
  std::string mid = EncodeFrame(kOpBinary, std::string(200, 'a'));
  EXPECT_EQ(mid.substr(0, 4), std::string("\x82\x7e\x00\xc8", 4));
  std::string big = EncodeFrame(kOpBinary, std::string(70000, 'a'));
  EXPECT_EQ(big.size(), 70000u + 10);
  EXPECT_EQ(static_cast<unsigned char>(big[1]), 127);
}

TEST(WebSocket, ChannelFraming) {
  EXPECT_EQ(EncodeChannelMessage(1, "out", false), std::string("\x82\x04\x01out", 6));
  // base64.channel.k8s.io: text frame, ASCII channel digit, base64 data.
  EXPECT_EQ(EncodeChannelMessage(2, "hi", true), std::string("\x81\x05" "2aGk=", 7));
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
