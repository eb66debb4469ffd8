#include "cri/streaming/websocket.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth::cri::streaming::ws {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using ErrorCode = boost::system::error_code;

// A move-only completion handler of signature void(error_code, size_t), type-erased.
class PendingRead {
 public:
  virtual ~PendingRead() = default;
  // Copies from `in` into the read's buffers and posts its completion.
  virtual void Complete(std::string* in, size_t* in_off) = 0;
};

// The next layer under Beast's websocket::stream: an AsyncStream without a socket. Reads
// are served from `in_` (bytes the owner received); a read finding nothing stays pending
// until Feed(). Writes append to `*out_` and complete at once. Completions are posted to
// the io_context, which the owner runs with poll() (never blocking).
class BufferStream {
 public:
  using executor_type = net::io_context::executor_type;

  BufferStream(net::io_context* ioc, std::string* out) : ioc_(ioc), out_(out) {}
  BufferStream(BufferStream&&) = default;

  executor_type get_executor() noexcept { return ioc_->get_executor(); }

  void Feed(absl::string_view bytes) {
    in_.append(bytes.data(), bytes.size());
    if (pending_) {
      auto p = std::move(pending_);
      p->Complete(&in_, &in_off_);
    }
  }
  // Destroys a read that is still waiting (before the io_context goes).
  void DropPending() { pending_.reset(); }

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return net::async_initiate<ReadHandler, void(ErrorCode, size_t)>(
        [this](auto h, const MutableBufferSequence& b) {
          auto p = std::make_unique<Read<std::decay_t<decltype(h)>, MutableBufferSequence>>(
              get_executor(), std::move(h), b);
          if (in_off_ < in_.size()) {
            p->Complete(&in_, &in_off_);
          } else {
            pending_ = std::move(p);
          }
        },
        handler, buffers);
  }

  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return net::async_initiate<WriteHandler, void(ErrorCode, size_t)>(
        [this](auto h, const ConstBufferSequence& b) {
          size_t n = 0;
          for (auto it = net::buffer_sequence_begin(b); it != net::buffer_sequence_end(b); ++it) {
            net::const_buffer cb(*it);
            out_->append(static_cast<const char*>(cb.data()), cb.size());
            n += cb.size();
          }
          net::post(get_executor(), beast::bind_front_handler(std::move(h), ErrorCode{}, n));
        },
        handler, buffers);
  }

 private:
  template <class Handler, class Buffers>
  class Read : public PendingRead {
   public:
    Read(executor_type ex, Handler h, const Buffers& b)
        : ex_(ex), handler_(std::move(h)), buffers_(b) {}
    void Complete(std::string* in, size_t* in_off) override {
      size_t n =
          net::buffer_copy(buffers_, net::buffer(in->data() + *in_off, in->size() - *in_off));
      *in_off += n;
      if (*in_off == in->size()) {
        in->clear();
        *in_off = 0;
      }
      net::post(ex_, beast::bind_front_handler(std::move(handler_), ErrorCode{}, n));
    }

   private:
    executor_type ex_;
    Handler handler_;
    Buffers buffers_;
  };

  net::io_context* ioc_;
  std::string* out_;
  std::string in_;
  size_t in_off_ = 0;
  std::unique_ptr<PendingRead> pending_;
};

// Beast tears the connection down after a close handshake, and closes the socket on a
// timeout or failure: the owner closes the socket, so these only complete.
void beast_close_socket(BufferStream&) {}
template <class TeardownHandler>
void async_teardown(beast::role_type, BufferStream& s, TeardownHandler&& handler) {
  net::post(s.get_executor(),
            beast::bind_front_handler(std::forward<TeardownHandler>(handler), ErrorCode{}));
}

}  // namespace

struct Connection::Impl {
  explicit Impl(std::string* out) : ws(&ioc, out) {
    ws.auto_fragment(false);  // one frame per message, as the Go servers send
    ws.read_message_max(kMaxMessage);
  }
  ~Impl() { ws.next_layer().DropPending(); }

  // Runs every completion that is ready.
  void Poll() {
    ioc.restart();
    ioc.poll();
  }
  void StartRead() {
    ws.async_read(rd, [this](ErrorCode ec, size_t) {
      if (ec == websocket::error::closed) {
        peer_closed = true;
        return;
      }
      if (ec) {
        if (!read_error) read_error = ec;
        return;
      }
      received.push_back(Message{ws.got_text(), beast::buffers_to_string(rd.data())});
      rd.consume(rd.size());
      StartRead();
    });
  }

  net::io_context ioc;  // first: destroyed last, after the operations that track work on it
  websocket::stream<BufferStream> ws;
  beast::flat_buffer rd;
  std::vector<Message> received;
  std::optional<ErrorCode> read_error;
  bool accepted = false, peer_closed = false, close_sent = false;
};

Connection::Connection(std::string* out) : impl_(std::make_unique<Impl>(out)) {}
Connection::~Connection() = default;

absl::Status Connection::Accept(
    const boost::beast::http::request<boost::beast::http::empty_body>& req,
    const std::string& protocol) {
  impl_->ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
    if (!protocol.empty()) res.set(beast::http::field::sec_websocket_protocol, protocol);
  }));
  std::optional<ErrorCode> result;
  impl_->ws.async_accept(req, [&result](ErrorCode ec) { result = ec; });
  impl_->Poll();
  if (!result || *result) {
    return absl::InvalidArgumentError(
        absl::StrCat("websocket upgrade: ", result ? result->message() : "incomplete"));
  }
  impl_->accepted = true;
  impl_->StartRead();
  impl_->Poll();
  return absl::OkStatus();
}

absl::Status Connection::OnBytes(absl::string_view bytes, std::vector<Message>* messages) {
  if (!impl_->accepted) return absl::FailedPreconditionError("websocket: not accepted");
  impl_->ws.next_layer().Feed(bytes);
  impl_->Poll();
  for (auto& m : impl_->received) messages->push_back(std::move(m));
  impl_->received.clear();
  if (impl_->read_error) {
    return absl::InvalidArgumentError(absl::StrCat("websocket: ", impl_->read_error->message()));
  }
  return absl::OkStatus();
}

bool Connection::closed_by_peer() const { return impl_->peer_closed; }

void Connection::Send(absl::string_view payload, bool text) {
  if (!impl_->accepted || impl_->peer_closed || impl_->close_sent || !impl_->ws.is_open()) return;
  impl_->ws.text(text);
  impl_->ws.async_write(net::buffer(payload.data(), payload.size()), [](ErrorCode, size_t) {});
  impl_->Poll();  // the write completes here: BufferStream writes complete at once
}

void Connection::Close() {
  if (!impl_->accepted || impl_->peer_closed || impl_->close_sent || !impl_->ws.is_open()) return;
  impl_->close_sent = true;
  impl_->ws.async_close(websocket::close_code::normal, [](ErrorCode) {});
  impl_->Poll();  // writes the close frame; the answer is not awaited
}

std::string EncodeChannelMessage(int channel, absl::string_view data, bool base64) {
  if (base64) {
    std::string msg(1, static_cast<char>('0' + channel));
    msg.append(absl::Base64Escape(data));
    return msg;
  }
  std::string msg(1, static_cast<char>(channel));
  msg.append(data.data(), data.size());
  return msg;
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
