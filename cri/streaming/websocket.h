// The server side of one WebSocket connection (RFC 6455 framing, masking, fragmentation,
// ping/pong and the close handshake by Boost.Beast's websocket::stream), driven by bytes
// instead of a socket so that the streaming sessions keep their own poll loop, and the
// Kubernetes channel message format on top (k8s.io/apimachinery wsstream semantics):
//   - binary protocols (channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io,
//     v4.portforward.k8s.io, portforward.k8s.io): each message is one channel byte followed
//     by the data;
//   - base64.channel.k8s.io: text messages, the channel as an ASCII digit ('0' + n) followed
//     by the base64 of the data;
//   - v5.channel.k8s.io adds the CLOSE signal: channel 255 whose data is the channel closed.
//
// Thread safety: a Connection is a single-threaded object (one per upgraded connection).
#pragma once

// clang-format off
// First: the CRI protos' Signal enum (SIGABRT, ...) clashes with <signal.h>'s macros, which
// Boost.Asio includes.
#include "cri/runtime_service.h"
// clang-format on

#include <boost/beast/http.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cri::streaming::ws {

inline constexpr int kCloseChannel = 255;
// Largest message accepted from a client (data messages are small: stdin chunks, resize).
inline constexpr size_t kMaxMessage = 16u << 20;

// One complete message from the client (fragments joined, unmasked).
struct Message {
  bool text = false;
  std::string payload;
};

// A WebSocket server connection over Beast. Bytes for the client (the handshake response,
// data frames, pongs, the close frame) are appended to `*out`, which the owner writes to the
// socket; bytes from the client are given to OnBytes.
class Connection {
 public:
  // `out` is not owned and must outlive the connection.
  explicit Connection(std::string* out);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Validates the upgrade request `req` (as Beast's accept does: GET, HTTP/1.1, Host,
  // Connection: upgrade, Upgrade: websocket, Sec-WebSocket-Key, Sec-WebSocket-Version 13)
  // and appends the 101 response, with `Sec-WebSocket-Protocol: <protocol>` unless
  // `protocol` is empty. On an invalid request Beast's error response (400, or 426 for a
  // wrong version) is appended instead and InvalidArgument returned. Call once, first.
  absl::Status Accept(const boost::beast::http::request<boost::beast::http::empty_body>& req,
                      const std::string& protocol);

  // Parses bytes received from the client and appends the complete data messages to
  // `messages`. Pings are answered, and a close frame is answered and ends the connection
  // (closed_by_peer()). Errors (an unmasked or oversized frame, bad fragmentation): the
  // connection must be dropped.
  absl::Status OnBytes(absl::string_view bytes, std::vector<Message>* messages);

  // True once the client sent a close frame (it has been answered).
  bool closed_by_peer() const;

  // Appends one unfragmented message (binary, or text). Ignored after a close.
  void Send(absl::string_view payload, bool text);

  // Starts the close handshake with status 1000 (normal closure); no-op when a close was
  // already sent or received. Further input need not be fed.
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The payload of a data message on `channel` (binary, or text with base64 encoding).
std::string EncodeChannelMessage(int channel, absl::string_view data, bool base64);

struct ChannelMessage {
  int channel = 0;
  std::string data;
};
// Splits a received message payload into channel and data (decoding base64). InvalidArgument
// for an empty message or bad base64.
absl::StatusOr<ChannelMessage> DecodeChannelMessage(absl::string_view payload, bool base64);

}  // namespace berth::cri::streaming::ws
