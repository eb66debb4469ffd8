#include "cri/streaming/spdy.h"

#include <zlib.h>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace berth::cri::streaming::spdy {
namespace {

TEST(SpdyDictionary, MatchesSpec) {
  const std::string& d = HeaderDictionary();
  EXPECT_EQ(d.size(), 1423u);
  // The dictionary id zlib puts in the stream header (Adler-32 of the dictionary).
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(d.data()), d.size()), 0xe3c6a7c2u);
  EXPECT_EQ(d.substr(0, 11), std::string("\0\0\0\7options", 11));
}

TEST(SpdyHeaders, RoundTripAcrossBlocks) {
  HeaderCodec a, b;  // a sends, b receives: one zlib context per direction
  Headers h1 = {{"streamtype", "stdin"}, {"port", "8080"}, {"requestid", "0"}};
  Headers h2 = {{"streamtype", "stdout"}};
  auto d1 = b.Decode(a.Encode(h1));
  ASSERT_TRUE(d1.ok()) << d1.status();
  EXPECT_EQ(*d1, h1);
  auto d2 = b.Decode(a.Encode(h2));  // second block relies on the shared context
  ASSERT_TRUE(d2.ok()) << d2.status();
  EXPECT_EQ(*d2, h2);
  auto d3 = b.Decode(a.Encode({}));
  ASSERT_TRUE(d3.ok());
  EXPECT_TRUE(d3->empty());
}

TEST(SpdyHeaders, DecodesForeignCompressor) {
  // {"streamtype": "stdin"} compressed by another zlib (level 9, SPDY/3 dictionary, sync
  // flush), as Go's spdystream framer produces it.
  std::string block =
      absl::HexStringToBytes("78f9e3c6a7c202a62346703a2b294a4dcc851625acc525c03c01000000ffff");
  HeaderCodec c;
  auto h = c.Decode(block);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, (Headers{{"streamtype", "stdin"}}));
}

TEST(SpdyHeaders, CorruptBlockIsDataLoss) {
  HeaderCodec c;
  auto h = c.Decode("not zlib at all");
  EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss);
}

TEST(SpdyFrames, RoundTripEveryType) {
  HeaderCodec tx, rx;
  // Header blocks are encoded in wire order: they share one zlib stream.
  std::string b1 = tx.Encode({{"streamtype", "error"}});
  std::string b2 = tx.Encode({});
  std::string b3 = tx.Encode({{"a", "b"}});
  std::string wire = EncodeSynStream(1, 0, 3, kFlagFin, b1) + EncodeSynReply(1, 0, b2) +
                     EncodeData(1, "hello", false) + EncodeData(3, "", true) +
                     EncodeRstStream(5, kRstCancel) + EncodeSettings({{7, 65536}}) +
                     EncodePing(42) + EncodeGoAway(9, 0) + EncodeHeaders(1, 0, b3) +
                     EncodeWindowUpdate(1, 1000);
  FrameParser p;
  // Fed one byte at a time: frames come out only when complete.
  std::vector<Frame> frames;
  for (char ch : wire) {
    p.Append(std::string(1, ch));
    for (;;) {
      auto f = p.Next();
      ASSERT_TRUE(f.ok()) << f.status();
      if (!*f) break;
      frames.push_back(**f);
    }
  }
  ASSERT_EQ(frames.size(), 10u);
  EXPECT_TRUE(frames[0].control);
  EXPECT_EQ(frames[0].type, FrameType::kSynStream);
  EXPECT_EQ(frames[0].stream_id, 1u);
  EXPECT_EQ(frames[0].priority, 3);
  EXPECT_TRUE(frames[0].fin());
  auto h = rx.Decode(frames[0].header_block);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ((*h)["streamtype"], "error");
  EXPECT_EQ(frames[1].type, FrameType::kSynReply);
  ASSERT_TRUE(rx.Decode(frames[1].header_block).ok());
  EXPECT_FALSE(frames[2].control);
  EXPECT_EQ(frames[2].stream_id, 1u);
  EXPECT_EQ(frames[2].data, "hello");
  EXPECT_FALSE(frames[2].fin());
  EXPECT_TRUE(frames[3].fin());
  EXPECT_EQ(frames[3].data, "");
  EXPECT_EQ(frames[4].type, FrameType::kRstStream);
  EXPECT_EQ(frames[4].stream_id, 5u);
  EXPECT_EQ(frames[4].status, kRstCancel);
  EXPECT_EQ(frames[5].type, FrameType::kSettings);
  ASSERT_EQ(frames[5].settings.size(), 1u);
  EXPECT_EQ(frames[5].settings[0], std::make_pair(7u, 65536u));
  EXPECT_EQ(frames[6].ping_id, 42u);
  EXPECT_EQ(frames[7].type, FrameType::kGoAway);
  EXPECT_EQ(frames[7].last_good_id, 9u);
  EXPECT_EQ(frames[8].type, FrameType::kHeaders);
  auto h2 = rx.Decode(frames[8].header_block);
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ((*h2)["a"], "b");
  EXPECT_EQ(frames[9].type, FrameType::kWindowUpdate);
  EXPECT_EQ(frames[9].delta_window, 1000u);
}

TEST(SpdyFrames, WireLayoutOfDataAndPing) {
  EXPECT_EQ(EncodeData(3, "ab", true), std::string("\0\0\0\3\1\0\0\2ab", 10));
  EXPECT_EQ(EncodePing(7), std::string("\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x07", 12));
}

TEST(SpdyFrames, WrongVersionIsAnError) {
  FrameParser p;
  p.Append(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x07", 12));
  EXPECT_FALSE(p.Next().ok());
}

TEST(SpdyFrames, UnknownControlTypeIsSkipped) {
  FrameParser p;
  p.Append(std::string("\x80\x03\x00\x0f\x00\x00\x00\x02xy", 10) + EncodePing(1));
  auto f = p.Next();
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->type, FrameType::kPing);
}

TEST(SpdyFrames, LargeStreamKeepsBufferBounded) {
  FrameParser p;
  std::string chunk(32 * 1024, 'x');
  for (int i = 0; i < 200; ++i) {
    p.Append(EncodeData(1, chunk, false));
    auto f = p.Next();
    ASSERT_TRUE(f.ok() && f->has_value());
    EXPECT_EQ((*f)->data.size(), chunk.size());
  }
  EXPECT_EQ(p.buffered(), 0u);
}

}  // namespace
}  // namespace berth::cri::streaming::spdy
