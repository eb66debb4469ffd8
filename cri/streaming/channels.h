// Channel framing of the remote command protocols (exec, attach): the mapping of the
// Kubernetes channels (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize) onto the two
// transports of an upgraded connection, as k8s.io/apimachinery's httpstream does:
//   - SPDY/3.1 (spdy.h): the client creates one stream per channel, typed by its
//     `streamType` header (stdin, stdout, stderr, error, resize); a channel ends with a
//     FIN (DATA frame with FLAG_FIN) and the connection with GOAWAY.
//   - WebSocket (websocket.h): one message per chunk, prefixed with the channel byte (or
//     the ASCII digit for base64.channel.k8s.io); channels are open from the start as the
//     request's options say; v5.channel.k8s.io signals a channel's end with the CLOSE
//     message (channel 255, data = the channel); the connection ends with a close frame.
//
// Thread safety: transports are single-threaded (one per session thread).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cri/streaming/spdy.h"
#include "cri/streaming/websocket.h"

namespace berth::cri::streaming {

// Channel numbers of the remote command protocols (also the WebSocket channel bytes).
inline constexpr int kStdin = 0, kStdout = 1, kStderr = 2, kError = 3, kResize = 4;
inline constexpr int kNumChannels = 5;
// ChannelEvent::channel when the client ended the whole connection (WebSocket close).
inline constexpr int kConnectionClosed = -1;

// What a transport reports from the client: data on a channel, its end (eof), or the end of
// the connection (channel kConnectionClosed).
struct ChannelEvent {
  int channel = kConnectionClosed;
  std::string data;
  bool eof = false;
};

// The channel framing of one upgraded connection, for exec/attach.
class ChannelTransport {
 public:
  virtual ~ChannelTransport() = default;
  // Parses bytes received from the client into events. An error ends the session.
  virtual absl::Status OnBytes(absl::string_view bytes, std::vector<ChannelEvent>* events) = 0;
  // True when the channel is open towards the client (SPDY: the client created its stream).
  virtual bool Has(int channel) const = 0;
  // Streams the client created (SPDY); 0 for WebSocket, where channels need no creation.
  virtual int streams() const = 0;
  // Sends data on a channel (dropped when the channel is not open), split into frames.
  virtual void Send(int channel, absl::string_view data) = 0;
  // Ends a channel (once; SPDY FIN, WebSocket v5 CLOSE message, nothing before v5).
  virtual void Close(int channel) = 0;
  // Ends the connection politely (GOAWAY / close frame).
  virtual void Finish() = 0;
};

// SPDY/3.1 streams. Frames for the client are appended to `*out` (not owned).
class SpdyChannels : public ChannelTransport {
 public:
  explicit SpdyChannels(std::string* out) : out_(out) {}

  absl::Status OnBytes(absl::string_view bytes, std::vector<ChannelEvent>* events) override;
  bool Has(int ch) const override { return ch >= 0 && ch < kNumChannels && streams_[ch] != 0; }
  int streams() const override { return count_; }
  void Send(int ch, absl::string_view data) override;
  void Close(int ch) override;
  void Finish() override;

 private:
  std::string* out_;
  spdy::FrameParser parser_;
  spdy::HeaderCodec codec_;
  std::array<uint32_t, kNumChannels> streams_{};
  std::array<bool, kNumChannels> closed_{};
  std::map<uint32_t, int> by_stream_;
  uint32_t last_id_ = 0;
  int count_ = 0;
};

// WebSocket channels on an accepted ws::Connection (not owned). `base64`: the
// base64.channel.k8s.io text encoding; `v5`: the CLOSE signal of v5.channel.k8s.io; `open`:
// the channels the request opened (stdin, stdout, stderr unless tty, error, resize if tty).
class WebSocketChannels : public ChannelTransport {
 public:
  WebSocketChannels(ws::Connection* conn, bool base64, bool v5, std::array<bool, kNumChannels> open)
      : conn_(conn), base64_(base64), v5_(v5), open_(open) {}

  absl::Status OnBytes(absl::string_view bytes, std::vector<ChannelEvent>* events) override;
  bool Has(int ch) const override { return ch >= 0 && ch < kNumChannels && open_[ch]; }
  int streams() const override { return 0; }
  void Send(int ch, absl::string_view data) override;
  void Close(int ch) override;
  void Finish() override { conn_->Close(); }

 private:
  ws::Connection* conn_;
  bool base64_, v5_;
  std::array<bool, kNumChannels> open_;
  std::array<bool, kNumChannels> closed_{};
  bool peer_closed_ = false;
};

}  // namespace berth::cri::streaming
