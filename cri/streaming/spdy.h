// SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00, "SPDY Protocol - Draft 3.1"), the
// transport the Kubernetes streaming protocols (remotecommand `v4/v5.channel.k8s.io`,
// `portforward.k8s.io`) run over after an `Upgrade: SPDY/3.1` HTTP request.
//
// Frames: a control frame is
//   |1| version(15)=3 | type(16) | flags(8) | length(24) | data
// a data frame is
//   |0| stream id(31) | flags(8) | length(24) | data
// Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams primed with the SPDY/3
// dictionary (section 2.6.10.1), one compression context per direction for the whole
// connection, each block ending in a sync flush.
//
// Thread safety: FrameParser and HeaderCodec are single-threaded objects (one per connection).
#pragma once

#include <zlib.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cri::streaming::spdy {

// Control frame types (section 2.6).
enum class FrameType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

// Flags: FLAG_FIN on data and SYN_STREAM/SYN_REPLY/HEADERS; FLAG_UNIDIRECTIONAL on SYN_STREAM.
inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint8_t kFlagUnidirectional = 0x02;

// RST_STREAM status codes (section 2.6.3).
inline constexpr uint32_t kRstProtocolError = 1;
inline constexpr uint32_t kRstInvalidStream = 2;
inline constexpr uint32_t kRstRefusedStream = 3;
inline constexpr uint32_t kRstCancel = 5;
inline constexpr uint32_t kRstInternalError = 6;

// Largest frame payload accepted from a peer (the 24-bit length allows 16 MiB); larger
// frames are a protocol error. Data frames we send for exec/attach are at most
// kMaxDataPayload; port-forward sends what one read from the pod returned (up to
// kMaxForwardPayload): fewer frames for the peer's framer to handle.
inline constexpr uint32_t kMaxFrameLength = 1u << 24;
inline constexpr size_t kMaxDataPayload = 32 * 1024;
inline constexpr size_t kMaxForwardPayload = 128 * 1024;

// Header names are lower case (SPDY requires it); duplicate names are joined by NUL as the
// spec says, so one name maps to one value here.
using Headers = std::map<std::string, std::string>;

// The SPDY/3 zlib dictionary (1423 bytes), built from the spec's list of header names and
// common values.
const std::string& HeaderDictionary();

// zlib header-block compression with the SPDY/3 dictionary; one instance per connection
// holds both directions' streams.
class HeaderCodec {
 public:
  HeaderCodec();
  ~HeaderCodec();
  HeaderCodec(const HeaderCodec&) = delete;
  HeaderCodec& operator=(const HeaderCodec&) = delete;

  // Serializes and compresses `h` (Z_SYNC_FLUSH) for a frame we send.
  std::string Encode(const Headers& h);
  // Decompresses and parses a received header block. DataLoss on a corrupt stream or
  // block (which ends the connection: the zlib context is shared by every later block).
  absl::StatusOr<Headers> Decode(absl::string_view block);

 private:
  z_stream deflate_{};
  z_stream inflate_{};
  bool inflate_ready_ = false;
};

// One decoded frame. Fields not used by a type stay zero/empty.
struct Frame {
  bool control = false;
  FrameType type = FrameType::kSynStream;  // control frames only
  uint8_t flags = 0;
  uint32_t stream_id = 0;      // data, SYN_STREAM, SYN_REPLY, RST, HEADERS, WINDOW_UPDATE
  uint32_t associated_id = 0;  // SYN_STREAM
  uint8_t priority = 0;        // SYN_STREAM (3 bits)
  uint32_t status = 0;         // RST_STREAM status, GOAWAY status
  uint32_t ping_id = 0;        // PING
  uint32_t last_good_id = 0;   // GOAWAY
  uint32_t delta_window = 0;   // WINDOW_UPDATE
  std::vector<std::pair<uint32_t, uint32_t>> settings;  // SETTINGS (id, value)
  std::string header_block;  // SYN_STREAM/SYN_REPLY/HEADERS, still compressed
  std::string data;          // data frames
  bool fin() const { return (flags & kFlagFin) != 0; }
};

// Incremental frame parser: Append() received bytes, then Next() until it returns nullopt.
class FrameParser {
 public:
  void Append(absl::string_view bytes) { buf_.append(bytes.data(), bytes.size()); }
  // The next complete frame, nullopt when more bytes are needed, or an error (wrong version,
  // oversized or malformed frame: the connection must be closed). Unknown control frame
  // types are skipped, as section 2.2 requires.
  absl::StatusOr<std::optional<Frame>> Next();
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
};

// Frame encoders; header blocks are passed already compressed (HeaderCodec::Encode).
std::string EncodeData(uint32_t stream_id, absl::string_view data, bool fin);
// Appends one data frame to *out (no temporary; `data` may be up to kMaxFrameLength - 1).
void AppendData(std::string* out, uint32_t stream_id, absl::string_view data, bool fin);
std::string EncodeSynStream(uint32_t stream_id, uint32_t associated_id, uint8_t priority,
                            uint8_t flags, absl::string_view header_block);
std::string EncodeSynReply(uint32_t stream_id, uint8_t flags, absl::string_view header_block);
std::string EncodeRstStream(uint32_t stream_id, uint32_t status);
std::string EncodeSettings(const std::vector<std::pair<uint32_t, uint32_t>>& settings);
std::string EncodePing(uint32_t id);
std::string EncodeGoAway(uint32_t last_good_id, uint32_t status);
std::string EncodeHeaders(uint32_t stream_id, uint8_t flags, absl::string_view header_block);
std::string EncodeWindowUpdate(uint32_t stream_id, uint32_t delta);

}  // namespace berth::cri::streaming::spdy
