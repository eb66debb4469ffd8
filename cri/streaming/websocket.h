// WebSocket (RFC 6455) server-side framing and the Kubernetes channel protocols on top
// (k8s.io/apimachinery wsstream semantics):
//   - binary protocols (channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io,
//     v4.portforward.k8s.io): each message is one channel byte followed by the data;
//   - base64.channel.k8s.io: text messages, the channel as an ASCII digit ('0' + n) followed
//     by the base64 of the data;
//   - v5.channel.k8s.io adds the CLOSE signal: channel 255 whose data is the channel closed.
// Server frames are unmasked; client frames must be masked (RFC 6455 section 5.1).
//
// Thread safety: FrameParser is a single-threaded object (one per connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cri::streaming::ws {

inline constexpr uint8_t kOpContinuation = 0x0, kOpText = 0x1, kOpBinary = 0x2, kOpClose = 0x8,
                         kOpPing = 0x9, kOpPong = 0xA;
inline constexpr int kCloseChannel = 255;
// Largest message accepted from a client (data messages are small: stdin chunks, resize).
inline constexpr size_t kMaxMessage = 16u << 20;

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455 GUID)).
std::string AcceptKey(absl::string_view key);

// One complete message (fragments joined) or control frame.
struct Message {
  uint8_t opcode = 0;
  std::string payload;  // unmasked
};

// Incremental parser of client frames.
class FrameParser {
 public:
  void Append(absl::string_view bytes) { buf_.append(bytes.data(), bytes.size()); }
  // The next message, nullopt when more bytes are needed, or an error (unmasked client frame,
  // oversized message, bad fragmentation): the connection must be closed.
  absl::StatusOr<std::optional<Message>> Next();

 private:
  std::string buf_;
  size_t pos_ = 0;
  std::optional<Message> partial_;  // a fragmented data message being assembled
};

// One unmasked, final server frame.
std::string EncodeFrame(uint8_t opcode, absl::string_view payload);

// A data message on `channel` (binary, or text with base64 encoding).
std::string EncodeChannelMessage(int channel, absl::string_view data, bool base64);

struct ChannelMessage {
  int channel = 0;
  std::string data;
};
// Splits a received message payload into channel and data (decoding base64). InvalidArgument
// for an empty message or bad base64.
absl::StatusOr<ChannelMessage> DecodeChannelMessage(absl::string_view payload, bool base64);

}  // namespace berth::cri::streaming::ws
