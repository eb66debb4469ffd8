#include "cri/streaming/websocket.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth::cri::streaming::ws {

std::string AcceptKey(absl::string_view key) {
  std::string in = absl::StrCat(key, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(digest), sizeof(digest)));
}

absl::StatusOr<std::optional<Message>> FrameParser::Next() {
  for (;;) {
    if (pos_ > 0 && pos_ * 2 > buf_.size()) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    size_t avail = buf_.size() - pos_;
    if (avail < 2) return std::nullopt;
    const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
    bool fin = (p[0] & 0x80) != 0;
    uint8_t opcode = p[0] & 0x0f;
    bool masked = (p[1] & 0x80) != 0;
    uint64_t len = p[1] & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) return std::nullopt;
      len = (uint64_t{p[2]} << 8) | p[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) return std::nullopt;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      hdr = 10;
    }
    if (!masked) return absl::InvalidArgumentError("websocket: unmasked client frame");
    if (len > kMaxMessage) return absl::InvalidArgumentError("websocket: frame too large");
    if (avail < hdr + 4 + len) return std::nullopt;
    const unsigned char* mask = p + hdr;
    std::string payload(reinterpret_cast<const char*>(p + hdr + 4), static_cast<size_t>(len));
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(payload[i] ^ mask[i % 4]);
    pos_ += hdr + 4 + static_cast<size_t>(len);

    if (opcode >= 0x8) {  // control frames: never fragmented, may interleave
      if (!fin || len > 125) return absl::InvalidArgumentError("websocket: bad control frame");
      return Message{opcode, std::move(payload)};
    }
    if (opcode == kOpContinuation) {
      if (!partial_) return absl::InvalidArgumentError("websocket: continuation without a start");
      partial_->payload.append(payload);
      if (partial_->payload.size() > kMaxMessage) {
        return absl::InvalidArgumentError("websocket: message too large");
      }
    } else {
      if (partial_) return absl::InvalidArgumentError("websocket: interleaved data messages");
      partial_ = Message{opcode, std::move(payload)};
    }
    if (fin) {
      Message m = std::move(*partial_);
      partial_.reset();
      return m;
    }
  }
}

std::string EncodeFrame(uint8_t opcode, absl::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 10);
  out.push_back(static_cast<char>(0x80 | opcode));
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(payload.size()));
  } else if (payload.size() <= 0xffff) {
    out.push_back(126);
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    out.push_back(127);
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xff));
  }
  out.append(payload.data(), payload.size());
  return out;
}

std::string EncodeChannelMessage(int channel, absl::string_view data, bool base64) {
  if (base64) {
    std::string msg(1, static_cast<char>('0' + channel));
    msg.append(absl::Base64Escape(data));
    return EncodeFrame(kOpText, msg);
  }
  std::string msg(1, static_cast<char>(channel));
  msg.append(data.data(), data.size());
  return EncodeFrame(kOpBinary, msg);
}

absl::StatusOr<ChannelMessage> DecodeChannelMessage(absl::string_view payload, bool base64) {
  if (payload.empty()) return absl::InvalidArgumentError("websocket: empty channel message");
  ChannelMessage m;
  if (base64) {
    m.channel = payload[0] - '0';
    if (m.channel < 0 || m.channel > 9) {
      return absl::InvalidArgumentError("websocket: bad base64 channel digit");
    }
    if (!absl::Base64Unescape(payload.substr(1), &m.data)) {
      return absl::InvalidArgumentError("websocket: bad base64 data");
    }
    return m;
  }
  m.channel = static_cast<unsigned char>(payload[0]);
  m.data.assign(payload.data() + 1, payload.size() - 1);
  return m;
}

}  // namespace berth::cri::streaming::ws
