#include "cri/streaming/channels.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "base/log.h"
#include "base/status.h"

namespace berth::cri::streaming {

namespace {

// The channel a SPDY stream carries, from its streamType header; -1 when unknown.
int ChannelOfStreamType(const std::string& type) {
  return type == "stdin"    ? kStdin
         : type == "stdout" ? kStdout
         : type == "stderr" ? kStderr
         : type == "error"  ? kError
         : type == "resize" ? kResize
                            : -1;
}

// Largest WebSocket message sent (stdout/stderr chunks are split).
constexpr size_t kMaxWebSocketChunk = 32 * 1024;

}  // namespace

absl::Status SpdyChannels::OnBytes(absl::string_view bytes, std::vector<ChannelEvent>* events) {
  parser_.Append(bytes);
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<spdy::Frame> f, parser_.Next());
    if (!f) return absl::OkStatus();
    if (!f->control) {
      auto it = by_stream_.find(f->stream_id);
      if (it == by_stream_.end()) continue;  // a stream we reset or never knew: dropped
      events->push_back({it->second, std::move(f->data), f->fin()});
      continue;
    }
    switch (f->type) {
      case spdy::FrameType::kSynStream: {
        ASSIGN_OR_RETURN(spdy::Headers h, codec_.Decode(f->header_block));
        last_id_ = std::max(last_id_, f->stream_id);
        std::string type = h.count("streamtype") ? h["streamtype"] : "";
        int ch = ChannelOfStreamType(type);
        if (ch < 0 || streams_[ch] != 0) {
          LOG(WARNING) << "streaming: unexpected stream type \"" << type << "\"";
          out_->append(spdy::EncodeRstStream(f->stream_id, spdy::kRstRefusedStream));
          break;
        }
        streams_[ch] = f->stream_id;
        by_stream_[f->stream_id] = ch;
        ++count_;
        out_->append(spdy::EncodeSynReply(f->stream_id, 0, codec_.Encode({})));
        if (f->fin()) events->push_back({ch, "", true});
        break;
      }
      case spdy::FrameType::kRstStream: {
        auto it = by_stream_.find(f->stream_id);
        if (it != by_stream_.end()) events->push_back({it->second, "", true});
        break;
      }
      case spdy::FrameType::kPing:
        out_->append(spdy::EncodePing(f->ping_id));
        break;
      case spdy::FrameType::kHeaders:
      case spdy::FrameType::kSynReply: {
        // Decoded only to keep the shared zlib context in step.
        ASSIGN_OR_RETURN(spdy::Headers unused, codec_.Decode(f->header_block));
        (void)unused;
        break;
      }
      default:  // SETTINGS, WINDOW_UPDATE (Go's spdystream sends no window updates), GOAWAY
        break;
    }
  }
}

void SpdyChannels::Send(int ch, absl::string_view data) {
  if (!Has(ch)) return;
  while (!data.empty()) {
    size_t n = std::min(data.size(), spdy::kMaxDataPayload);
    spdy::AppendData(out_, streams_[ch], data.substr(0, n), false);
    data.remove_prefix(n);
  }
}

void SpdyChannels::Close(int ch) {
  if (!Has(ch) || closed_[ch]) return;
  closed_[ch] = true;
  out_->append(spdy::EncodeData(streams_[ch], "", true));
}

void SpdyChannels::Finish() { out_->append(spdy::EncodeGoAway(last_id_, 0)); }

absl::Status WebSocketChannels::OnBytes(absl::string_view bytes,
                                        std::vector<ChannelEvent>* events) {
  std::vector<ws::Message> messages;
  absl::Status s = conn_->OnBytes(bytes, &messages);
  for (const auto& m : messages) {
    ASSIGN_OR_RETURN(ws::ChannelMessage cm, ws::DecodeChannelMessage(m.payload, base64_));
    if (v5_ && cm.channel == ws::kCloseChannel) {
      if (!cm.data.empty()) events->push_back({static_cast<unsigned char>(cm.data[0]), "", true});
    } else if (cm.channel < kNumChannels) {
      events->push_back({cm.channel, std::move(cm.data), false});
    }
  }
  RETURN_IF_ERROR(s);
  if (conn_->closed_by_peer() && !peer_closed_) {
    peer_closed_ = true;
    events->push_back({kStdin, "", true});
    events->push_back({kConnectionClosed, "", true});  // the client is done
  }
  return absl::OkStatus();
}

void WebSocketChannels::Send(int ch, absl::string_view data) {
  if (!Has(ch)) return;
  while (!data.empty()) {
    size_t n = std::min(data.size(), kMaxWebSocketChunk);
    conn_->Send(ws::EncodeChannelMessage(ch, data.substr(0, n), base64_), base64_);
    data.remove_prefix(n);
  }
}

void WebSocketChannels::Close(int ch) {
  if (v5_ && Has(ch) && !closed_[ch]) {
    conn_->Send(
        ws::EncodeChannelMessage(ws::kCloseChannel, std::string(1, static_cast<char>(ch)), base64_),
        base64_);
  }
  if (ch >= 0 && ch < kNumChannels) closed_[ch] = true;
}

}  // namespace berth::cri::streaming
