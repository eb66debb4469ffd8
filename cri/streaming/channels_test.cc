// The channel framing on its own: Kubernetes channels on SPDY streams and WebSocket
// messages, bytes in and bytes out.
#include "cri/streaming/channels.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace berth::cri::streaming {
namespace {

namespace http = boost::beast::http;

// All frames in `bytes` (server to client), header blocks decoded with `codec`.
std::vector<spdy::Frame> SpdyFrames(const std::string& bytes) {
  spdy::FrameParser p;
  p.Append(bytes);
  std::vector<spdy::Frame> out;
  for (;;) {
    auto f = p.Next();
    EXPECT_TRUE(f.ok());
    if (!f.ok() || !f->has_value()) return out;
    out.push_back(std::move(**f));
  }
}

TEST(SpdyChannels, StreamTypesBecomeChannels) {
  std::string out;
  SpdyChannels t(&out);
  spdy::HeaderCodec client;
  // Header blocks share one zlib stream: encoded in wire order, one statement each.
  std::string in = spdy::EncodeSynStream(1, 0, 0, 0, client.Encode({{"streamtype", "error"}}));
  in += spdy::EncodeSynStream(3, 0, 0, 0, client.Encode({{"streamtype", "stdin"}}));
  in += spdy::EncodeSynStream(5, 0, 0, 0, client.Encode({{"streamtype", "stdin"}}));
  in += spdy::EncodeSynStream(7, 0, 0, spdy::kFlagFin, client.Encode({{"streamtype", "resize"}}));
  in += spdy::EncodeData(3, "abc", true) + spdy::EncodeData(5, "dropped", false);
  std::vector<ChannelEvent> events;
  // In two pieces: frames split across reads are reassembled.
  ASSERT_TRUE(t.OnBytes(in.substr(0, 10), &events).ok());
  ASSERT_TRUE(t.OnBytes(in.substr(10), &events).ok());
  EXPECT_EQ(t.streams(), 3);
  EXPECT_TRUE(t.Has(kError) && t.Has(kStdin) && t.Has(kResize));
  EXPECT_FALSE(t.Has(kStdout));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].channel, kResize);  // created with FIN: ended at once
  EXPECT_TRUE(events[0].eof);
  EXPECT_EQ(events[1].channel, kStdin);
  EXPECT_EQ(events[1].data, "abc");
  EXPECT_TRUE(events[1].eof);
  auto frames = SpdyFrames(out);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].type, spdy::FrameType::kSynReply);
  EXPECT_EQ(frames[1].type, spdy::FrameType::kSynReply);
  EXPECT_EQ(frames[2].type, spdy::FrameType::kRstStream);  // the second stdin is refused
  EXPECT_EQ(frames[2].stream_id, 5u);
  EXPECT_EQ(frames[3].type, spdy::FrameType::kSynReply);
}

TEST(SpdyChannels, SendSplitsFramesAndClosesOnce) {
  std::string out;
  SpdyChannels t(&out);
  spdy::HeaderCodec client;
  std::vector<ChannelEvent> events;
  ASSERT_TRUE(
      t.OnBytes(spdy::EncodeSynStream(1, 0, 0, 0, client.Encode({{"streamtype", "stdout"}})),
                &events)
          .ok());
  out.clear();
  t.Send(kStdout, std::string(spdy::kMaxDataPayload + 1, 'x'));
  t.Send(kStderr, "no stream: dropped");
  t.Close(kStdout);
  t.Close(kStdout);
  t.Finish();
  auto frames = SpdyFrames(out);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].data.size(), spdy::kMaxDataPayload);
  EXPECT_EQ(frames[1].data, "x");
  EXPECT_FALSE(frames[1].fin());
  EXPECT_TRUE(frames[2].fin());
  EXPECT_EQ(frames[2].stream_id, 1u);
  EXPECT_EQ(frames[3].type, spdy::FrameType::kGoAway);
  EXPECT_EQ(frames[3].last_good_id, 1u);
}

TEST(SpdyChannels, AnswersPing) {
  std::string out;
  SpdyChannels t(&out);
  std::vector<ChannelEvent> events;
  ASSERT_TRUE(t.OnBytes(spdy::EncodePing(9), &events).ok());
  EXPECT_EQ(out, spdy::EncodePing(9));
  // A control frame of SPDY version 2: the connection must end.
  EXPECT_FALSE(t.OnBytes(std::string("\x80\x02\x00\x06\x00\x00\x00\x00", 8), &events).ok());
}

// A masked client frame.
std::string ClientFrame(uint8_t opcode, const std::string& payload) {
  std::string out(1, static_cast<char>(0x80 | opcode));
  out.push_back(static_cast<char>(0x80 | payload.size()));  // payloads here are < 126 bytes
  out.append("\0\0\0\0", 4);                                // a zero mask keeps the payload
  return out + payload;
}

struct WsFixture {
  std::string out;
  ws::Connection conn{&out};
  explicit WsFixture(const std::string& protocol) {
    http::request<http::empty_body> req{http::verb::get, "/exec/t", 11};
    req.set(http::field::host, "x");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    EXPECT_TRUE(conn.Accept(req, protocol).ok());
    out.clear();
  }
};

TEST(WebSocketChannels, V5CloseSignalEndsAChannel) {
  WsFixture f("v5.channel.k8s.io");
  WebSocketChannels t(&f.conn, false, true, {true, true, true, true, false});
  std::vector<ChannelEvent> events;
  ASSERT_TRUE(t.OnBytes(ClientFrame(2, std::string("\0in", 3)) +
                            ClientFrame(2, std::string("\xff\0", 2)) +
                            ClientFrame(2, std::string("\x09ignored", 8)),
                        &events)
                  .ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].channel, kStdin);
  EXPECT_EQ(events[0].data, "in");
  EXPECT_EQ(events[1].channel, kStdin);
  EXPECT_TRUE(events[1].eof);
  t.Send(kStdout, "o");
  t.Send(kResize, "not open");
  t.Close(kStdout);
  t.Close(kStdout);
  EXPECT_EQ(f.out, std::string("\x82\x02\x01o"
                               "\x82\x02\xff\x01",
                               8));
}

TEST(WebSocketChannels, BeforeV5ThereIsNoCloseSignal) {
  WsFixture f("v4.channel.k8s.io");
  WebSocketChannels t(&f.conn, false, false, {false, true, false, true, false});
  std::vector<ChannelEvent> events;
  // Channel 255 is no signal in v4: its message is dropped.
  ASSERT_TRUE(t.OnBytes(ClientFrame(2, std::string("\xff\0", 2)), &events).ok());
  EXPECT_TRUE(events.empty());
  t.Close(kStdout);
  EXPECT_EQ(f.out, "");
  t.Finish();
  EXPECT_EQ(f.out, std::string("\x88\x02\x03\xe8", 4));
}

TEST(WebSocketChannels, Base64AndClientClose) {
  WsFixture f("base64.channel.k8s.io");
  WebSocketChannels t(&f.conn, true, false, {true, true, true, true, false});
  std::vector<ChannelEvent> events;
  ASSERT_TRUE(t.OnBytes(ClientFrame(1, "0aGk=") + ClientFrame(8, "\x03\xe8"), &events).ok());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].channel, kStdin);
  EXPECT_EQ(events[0].data, "hi");
  EXPECT_EQ(events[1].channel, kStdin);  // the close ends stdin, then the connection
  EXPECT_TRUE(events[1].eof);
  EXPECT_EQ(events[2].channel, kConnectionClosed);
  f.out.clear();
  t.Send(kStdout, "late");  // after the close: nothing goes out
  EXPECT_EQ(f.out, "");
}

TEST(WebSocketChannels, BadBase64EndsTheSession) {
  WsFixture f("base64.channel.k8s.io");
  WebSocketChannels t(&f.conn, true, false, {true, true, true, true, false});
  std::vector<ChannelEvent> events;
  EXPECT_FALSE(t.OnBytes(ClientFrame(1, "0!!!"), &events).ok());
}

}  // namespace
}  // namespace berth::cri::streaming
