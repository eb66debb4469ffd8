// Clients of the streaming server for its unit tests: a WebSocket client (Boost.Beast's
// websocket::stream over a TCP socket) and a SPDY/3.1 client (spdy.h framing), both
// synchronous with a receive timeout so that a broken server fails a test instead of
// hanging it.
//
// Thread safety: one client per thread.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cri/streaming/spdy.h"

namespace berth::cri::streaming::testing {

namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;

// host, port and path of an "http://host:port/path" URL.
struct Url {
  std::string host, port, target;
};
inline Url ParseUrl(const std::string& url) {
  Url u;
  std::string rest = url.substr(url.find("://") + 3);
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  u.host = hostport.substr(0, hostport.rfind(':'));
  u.port = hostport.substr(hostport.rfind(':') + 1);
  return u;
}

inline void SetReceiveTimeout(int fd, int seconds) {
  struct timeval tv = {seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

// A WebSocket client connection to `url` offering `protocols`.
class WsClient {
 public:
  WsClient() : ws_(ioc_) {}

  // Connects and handshakes; the error (with the server's HTTP status in `status_code`)
  // when the upgrade is refused.
  absl::Status Connect(const std::string& url, const std::vector<std::string>& protocols) {
    Url u = ParseUrl(url);
    tcp::resolver resolver(ioc_);
    boost::system::error_code ec;
    net::connect(ws_.next_layer(), resolver.resolve(u.host, u.port), ec);
    if (ec) return absl::UnavailableError(ec.message());
    SetReceiveTimeout(ws_.next_layer().native_handle(), 10);
    ws_.next_layer().set_option(tcp::no_delay(true));  // as Go's net.Dial does
    std::string offered = absl::StrJoin(protocols, ", ");
    ws_.set_option(websocket::stream_base::decorator([offered](websocket::request_type& req) {
      if (!offered.empty()) req.set(boost::beast::http::field::sec_websocket_protocol, offered);
    }));
    ws_.handshake(response_, u.host, u.target, ec);
    if (ec) return absl::FailedPreconditionError(ec.message());
    ws_.auto_fragment(false);
    return absl::OkStatus();
  }
  std::string protocol() const {
    return std::string(response_[boost::beast::http::field::sec_websocket_protocol]);
  }

  // The next message; nullopt when the server closed (close_code() says how) or on error.
  std::optional<std::string> Read() {
    boost::beast::flat_buffer b;
    boost::system::error_code ec;
    ws_.read(b, ec);
    if (ec) {
      error_ = ec;
      return std::nullopt;
    }
    last_text_ = ws_.got_text();
    return boost::beast::buffers_to_string(b.data());
  }
  bool last_text() const { return last_text_; }
  boost::system::error_code error() const { return error_; }
  int close_code() const { return ws_.reason().code; }

  void Write(const std::string& payload, bool text = false) {
    ws_.text(text);
    ws_.write(net::buffer(payload));
  }
  void Close() {
    boost::system::error_code ec;
    ws_.close(websocket::close_code::normal, ec);
  }

 private:
  net::io_context ioc_;
  websocket::stream<tcp::socket> ws_;
  websocket::response_type response_;
  boost::system::error_code error_;
  bool last_text_ = false;
};

// Sends a WebSocket upgrade request for `url` offering `protocols` (with Beast's HTTP
// client) and returns the response's status code (101 on success), -1 on I/O errors.
inline int WebSocketUpgradeStatus(const std::string& url,
                                  const std::vector<std::string>& protocols) {
  namespace http = boost::beast::http;
  Url u = ParseUrl(url);
  net::io_context ioc;
  tcp::socket s(ioc);
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  net::connect(s, resolver.resolve(u.host, u.port), ec);
  if (ec) return -1;
  SetReceiveTimeout(s.native_handle(), 10);
  http::request<http::empty_body> req{http::verb::get, u.target, 11};
  req.set(http::field::host, u.host);
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  req.set(http::field::sec_websocket_version, "13");
  if (!protocols.empty())
    req.set(http::field::sec_websocket_protocol, absl::StrJoin(protocols, ", "));
  http::write(s, req, ec);
  if (ec) return -1;
  boost::beast::flat_buffer b;
  http::response_parser<http::empty_body> p;
  p.skip(true);  // the head is enough
  http::read_header(s, b, p, ec);
  return ec ? -1 : p.get().result_int();
}

// A SPDY/3.1 client connection. Frames are read whole; header blocks of the server's frames
// are decoded into Frame::header_block's place (`headers`).
class SpdyClient {
 public:
  SpdyClient() : socket_(ioc_) {}

  // Sends the upgrade request with X-Stream-Protocol-Version `protocols` and returns the
  // response head (status line and headers).
  absl::StatusOr<std::string> Connect(const std::string& url,
                                      const std::vector<std::string>& protocols) {
    Url u = ParseUrl(url);
    tcp::resolver resolver(ioc_);
    boost::system::error_code ec;
    net::connect(socket_, resolver.resolve(u.host, u.port), ec);
    if (ec) return absl::UnavailableError(ec.message());
    SetReceiveTimeout(socket_.native_handle(), 10);
    std::string req = absl::StrCat("POST ", u.target, " HTTP/1.1\r\nHost: ", u.host,
                                   "\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n");
    for (const auto& p : protocols) absl::StrAppend(&req, "X-Stream-Protocol-Version: ", p, "\r\n");
    req += "Content-Length: 0\r\n\r\n";
    net::write(socket_, net::buffer(req), ec);
    if (ec) return absl::UnavailableError(ec.message());
    size_t n = net::read_until(socket_, net::dynamic_buffer(in_), "\r\n\r\n", ec);
    if (ec) return absl::UnavailableError(ec.message());
    std::string head = in_.substr(0, n);
    in_.erase(0, n);
    parser_.Append(in_);  // frames after a 101, or the body of an error response
    return head;
  }
  // Reads the rest of a non-101 response (its body) to EOF.
  std::string ReadToEof() {
    std::string rest = std::move(in_);
    char buf[4096];
    boost::system::error_code ec;
    for (;;) {
      size_t n = socket_.read_some(net::buffer(buf), ec);
      if (ec) return rest;
      rest.append(buf, n);
    }
  }

  void CreateStream(uint32_t id, const spdy::Headers& h, bool fin = false) {
    Send(spdy::EncodeSynStream(id, 0, 0, fin ? spdy::kFlagFin : 0, codec_.Encode(h)));
  }
  void SendData(uint32_t id, const std::string& data, bool fin) {
    Send(spdy::EncodeData(id, data, fin));
  }
  void Send(const std::string& bytes) { net::write(socket_, net::buffer(bytes)); }

  // The next frame (header blocks decoded into `headers`), nullopt on EOF, error or timeout.
  struct Received {
    spdy::Frame frame;
    spdy::Headers headers;
  };
  std::optional<Received> Next() {
    for (;;) {
      auto f = parser_.Next();
      if (!f.ok()) return std::nullopt;
      if (f->has_value()) {
        Received r{std::move(**f), {}};
        if (r.frame.control && !r.frame.header_block.empty()) {
          auto h = codec_.Decode(r.frame.header_block);
          if (!h.ok()) return std::nullopt;
          r.headers = *h;
        }
        return r;
      }
      char buf[16384];
      boost::system::error_code ec;
      size_t n = socket_.read_some(net::buffer(buf), ec);
      if (ec) return std::nullopt;
      parser_.Append(absl::string_view(buf, n));
    }
  }

 private:
  net::io_context ioc_;
  tcp::socket socket_;
  std::string in_;
  spdy::FrameParser parser_;
  spdy::HeaderCodec codec_;
};

}  // namespace berth::cri::streaming::testing
