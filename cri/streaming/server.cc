#include "cri/streaming/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "base/status.h"
#include "cri/streaming/connection.h"
#include "cri/streaming/spdy.h"
#include "cri/streaming/status.h"
#include "cri/streaming/websocket.h"
#include "nlohmann/json.hpp"

namespace berth::cri::streaming {

using namespace internal;  // NOLINT(google-build-using-namespace): shared internals

namespace {

// What a transport reports from the client.
struct ChannelEvent {
  int channel = -1;
  std::string data;
  bool eof = false;
};

// The channel framing of one upgraded connection, for exec/attach.
class ChannelTransport {
 public:
  virtual ~ChannelTransport() = default;
  // Parses received bytes into events. An error ends the session.
  virtual absl::Status OnBytes(absl::string_view bytes, std::vector<ChannelEvent>* events) = 0;
  // True when the client opened the channel (SPDY: created the stream).
  virtual bool Has(int channel) const = 0;
  virtual int streams() const = 0;
  virtual void Send(int channel, absl::string_view data) = 0;
  virtual void Close(int channel) = 0;
  // Ends the connection politely (GOAWAY / close frame).
  virtual void Finish() = 0;
};

class SpdyChannels : public ChannelTransport {
 public:
  explicit SpdyChannels(std::string* out) : out_(out) {}

  absl::Status OnBytes(absl::string_view bytes, std::vector<ChannelEvent>* events) override {
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
          int ch = type == "stdin"    ? kStdin
                   : type == "stdout" ? kStdout
                   : type == "stderr" ? kStderr
                   : type == "error"  ? kError
                   : type == "resize" ? kResize
                                      : -1;
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
  bool Has(int ch) const override { return streams_[ch] != 0; }
  int streams() const override { return count_; }
  void Send(int ch, absl::string_view data) override {
    if (!Has(ch)) return;
    while (!data.empty()) {
      size_t n = std::min(data.size(), spdy::kMaxDataPayload);
      spdy::AppendData(out_, streams_[ch], data.substr(0, n), false);
      data.remove_prefix(n);
    }
  }
  void Close(int ch) override {
    if (!Has(ch) || closed_[ch]) return;
    closed_[ch] = true;
    out_->append(spdy::EncodeData(streams_[ch], "", true));
  }
  void Finish() override { out_->append(spdy::EncodeGoAway(last_id_, 0)); }

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

class WebSocketChannels : public ChannelTransport {
 public:
  WebSocketChannels(std::string* out, bool base64, bool v5, std::array<bool, kNumChannels> open)
      : out_(out), base64_(base64), v5_(v5), open_(open) {}

  absl::Status OnBytes(absl::string_view bytes, std::vector<ChannelEvent>* events) override {
    parser_.Append(bytes);
    for (;;) {
      ASSIGN_OR_RETURN(std::optional<ws::Message> m, parser_.Next());
      if (!m) return absl::OkStatus();
      switch (m->opcode) {
        case ws::kOpPing:
          out_->append(ws::EncodeFrame(ws::kOpPong, m->payload));
          break;
        case ws::kOpClose:
          if (!close_sent_) out_->append(ws::EncodeFrame(ws::kOpClose, ""));
          close_sent_ = true;
          events->push_back({kStdin, "", true});
          events->push_back({-1, "", true});  // the client is done
          break;
        case ws::kOpText:
        case ws::kOpBinary: {
          ASSIGN_OR_RETURN(ws::ChannelMessage cm, ws::DecodeChannelMessage(m->payload, base64_));
          if (v5_ && cm.channel == ws::kCloseChannel) {
            if (!cm.data.empty()) {
              events->push_back({static_cast<unsigned char>(cm.data[0]), "", true});
            }
          } else if (cm.channel < kNumChannels) {
            events->push_back({cm.channel, std::move(cm.data), false});
          }
          break;
        }
        default:
          break;
      }
    }
  }
  bool Has(int ch) const override { return open_[ch]; }
  int streams() const override { return 0; }
  void Send(int ch, absl::string_view data) override {
    if (!Has(ch)) return;
    while (!data.empty()) {
      size_t n = std::min(data.size(), size_t{32 * 1024});
      out_->append(ws::EncodeChannelMessage(ch, data.substr(0, n), base64_));
      data.remove_prefix(n);
    }
  }
  void Close(int ch) override {
    if (v5_ && Has(ch) && !closed_[ch]) {
      out_->append(ws::EncodeChannelMessage(ws::kCloseChannel, std::string(1, static_cast<char>(ch)),
                                            base64_));
    }
    closed_[ch] = true;
  }
  void Finish() override {
    if (close_sent_) return;
    close_sent_ = true;
    out_->append(ws::EncodeFrame(ws::kOpClose, std::string("\x03\xe8", 2)));  // 1000 normal
  }

 private:
  std::string* out_;
  bool base64_, v5_;
  std::array<bool, kNumChannels> open_;
  std::array<bool, kNumChannels> closed_{};
  ws::FrameParser parser_;
  bool close_sent_ = false;
};

// Options of a remote command (exec or attach), from the stored CRI request.
struct CommandOptions {
  bool stdin = false, stdout = false, stderr = false, tty = false;
  // Protocols before v4 (WebSocket channel.k8s.io, base64.channel.k8s.io): the error channel
  // carries nothing on success and the error's text otherwise (upstream v1WriteStatusFunc),
  // not a Status object.
  bool legacy_status = false;
  int ExpectedStreams() const {
    return 1 + stdin + stdout + (stderr && !tty) + tty;  // error + ... + resize
  }
};

// Parses {"Width":w,"Height":h} objects from the resize channel.
void HandleResize(std::string* buf, StreamProcess* proc) {
  if (proc == nullptr) return;  // kept until the process exists
  for (;;) {
    auto end = buf->find('}');
    if (end == std::string::npos) return;
    auto j = nlohmann::json::parse(buf->substr(0, end + 1), nullptr, false);
    buf->erase(0, end + 1);
    if (j.is_object() && j.contains("Width") && j.contains("Height") && j["Width"].is_number() &&
        j["Height"].is_number()) {
      proc->Resize(j["Width"].get<uint16_t>(), j["Height"].get<uint16_t>());
    }
  }
}

// Runs one exec/attach session over an upgraded connection until the command ends or the
// client goes away. `wake_fd` readable means the server shuts down.
void RunRemoteCommand(Client* c, ChannelTransport* t, const std::string& leftover,
                      const CommandOptions& o, bool wait_for_streams, Clock::time_point deadline,
                      int wake_fd,
                      const std::function<absl::StatusOr<std::unique_ptr<StreamProcess>>()>& start) {
  std::unique_ptr<StreamProcess> proc;
  std::string stdin_buf, resize_buf;
  bool stdin_eof = false, stdin_closed = false;
  bool out_open[3] = {false, false, false};  // indexed by kStdout/kStderr
  bool exited = false;
  std::optional<Clock::time_point> detach_at;  // DetachOnStdinEof: when the client's stdin ended
  std::optional<std::string> final_status;
  Clock::time_point last_output = Clock::now();
  std::vector<ChannelEvent> events;

  auto handle_events = [&]() {
    for (auto& e : events) {
      if (e.channel == -1) {
        c->gone = true;  // WebSocket close
      } else if (e.channel == kStdin) {
        stdin_buf.append(e.data);
        if (e.eof) stdin_eof = true;
      } else if (e.channel == kResize) {
        resize_buf.append(e.data);
        HandleResize(&resize_buf, proc.get());
      }
    }
    events.clear();
  };
  auto fail = [&](const std::string& msg) { final_status = InternalErrorStatusJson(msg); };

  if (!leftover.empty()) {
    if (auto s = t->OnBytes(leftover, &events); !s.ok()) return;
  }
  bool started = false;
  for (;;) {
    if (!started && (!wait_for_streams || t->streams() >= o.ExpectedStreams())) {
      started = true;
      auto p = start();
      if (!p.ok()) {
        fail(std::string(p.status().message()));
      } else {
        proc = std::move(*p);
        out_open[kStdout] = proc->stdout_fd() >= 0;
        out_open[kStderr] = proc->stderr_fd() >= 0 && !proc->conmon_framed();
        if (proc->stdin_fd() < 0) stdin_closed = true;
      }
    }
    handle_events();
    if (proc && !stdin_closed && !stdin_buf.empty()) {
      // Written in small pieces to conmon's SOCK_SEQPACKET socket (messages are not split).
      size_t max = proc->conmon_framed() ? 4096 : stdin_buf.size();
      while (!stdin_buf.empty()) {
        ssize_t n = write(proc->stdin_fd(), stdin_buf.data(), std::min(max, stdin_buf.size()));
        if (n > 0) {
          stdin_buf.erase(0, static_cast<size_t>(n));
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          break;
        } else {
          stdin_buf.clear();  // the command closed its stdin
          stdin_closed = true;
        }
      }
    }
    if (proc && stdin_eof && stdin_buf.empty() && !stdin_closed) {
      stdin_closed = true;
      proc->CloseStdin();
      t->Close(kStdin);
      if (proc->DetachOnStdinEof()) detach_at = Clock::now();
    }
    bool outputs_done = !out_open[kStdout] && !out_open[kStderr];
    if (started && !proc) break;  // start failed: report it
    if (proc && exited && (outputs_done || Clock::now() - last_output > kDrainGrace)) break;
    if (proc && proc->exit_fd() < 0 && outputs_done) break;  // attach: console closed
    if (proc && detach_at) {  // attach: the client detached (its stdin ended)
      // Output still flowing is delivered: the session ends once it has been quiet for
      // kAttachStdinEofQuiet, and at the latest kDrainGrace after the detach.
      auto now = Clock::now();
      if (now - std::max(last_output, *detach_at) > kAttachStdinEofQuiet || now - *detach_at > kDrainGrace) break;
    }
    if (c->gone) return;
    c->Flush();
    if (c->gone) return;

    struct pollfd fds[6];
    int n = 0;
    int i_client = n++;
    fds[i_client] = {c->fd, 0, 0};
    if (stdin_buf.size() < kHighWater) fds[i_client].events |= POLLIN;
    if (c->pending() > 0) fds[i_client].events |= POLLOUT;
    fds[n++] = {wake_fd, POLLIN, 0};
    int i_out = -1, i_err = -1, i_in = -1, i_exit = -1;
    if (proc && c->pending() < kHighWater) {
      if (out_open[kStdout]) fds[i_out = n++] = {proc->stdout_fd(), POLLIN, 0};
      if (out_open[kStderr]) fds[i_err = n++] = {proc->stderr_fd(), POLLIN, 0};
    }
    if (proc && !stdin_closed && !stdin_buf.empty()) fds[i_in = n++] = {proc->stdin_fd(), POLLOUT, 0};
    if (proc && !exited && proc->exit_fd() >= 0) fds[i_exit = n++] = {proc->exit_fd(), POLLIN, 0};
    int timeout_ms = -1;
    if (!started) {
      timeout_ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    } else if (exited) {
      timeout_ms = 200;
    } else if (detach_at) {
      timeout_ms = 50;
    }
    int rc = poll(fds, n, timeout_ms);
    if (rc < 0 && errno != EINTR) return;
    if (!started && Clock::now() >= deadline) {
      LOG(WARNING) << "streaming: timed out waiting for the client to create streams";
      return;
    }
    if (rc <= 0) continue;
    if (fds[1].revents) return;  // shutting down
    if (fds[i_client].revents & (POLLIN | POLLHUP | POLLERR)) {
      std::string got;
      bool ok = c->Read(&got);
      if (!got.empty()) {
        if (auto s = t->OnBytes(got, &events); !s.ok()) {
          LOG(WARNING) << "streaming: " << s;
          return;
        }
      }
      if (!ok) return;  // the client went away: `proc` is released (killed) on return
    }
    for (int ch : {kStdout, kStderr}) {
      int idx = ch == kStdout ? i_out : i_err;
      if (idx < 0 || !fds[idx].revents) continue;
      char buf[kReadChunk + 1];
      ssize_t r = read(fds[idx].fd, buf, sizeof(buf));
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {  // EOF, or EIO from a pty whose other side closed
        out_open[ch] = false;
        if (proc->conmon_framed()) {
          t->Close(kStdout);
          t->Close(kStderr);
        } else {
          t->Close(ch);
        }
        continue;
      }
      last_output = Clock::now();
      if (proc->conmon_framed()) {
        // conmon: first byte is the pipe (2 stdout, 3 stderr).
        int target = buf[0] == 3 ? kStderr : kStdout;
        t->Send(o.tty ? kStdout : target, absl::string_view(buf + 1, static_cast<size_t>(r - 1)));
      } else {
        t->Send(ch, absl::string_view(buf, static_cast<size_t>(r)));
      }
    }
    (void)i_in;
    if (i_exit >= 0 && fds[i_exit].revents) {
      exited = true;
      last_output = Clock::now();
      auto code = proc->Wait();
      final_status = code.ok() ? ExitStatusJson(*code) : InternalErrorStatusJson(
                                                             std::string(code.status().message()));
    }
  }
  t->Close(kStdout);
  t->Close(kStderr);
  if (!final_status) final_status = ExitStatusJson(0);
  if (o.legacy_status) {
    std::string text = LegacyStatusText(*final_status);
    if (!text.empty()) t->Send(kError, text);
  } else {
    t->Send(kError, *final_status);
  }
  t->Close(kError);
  t->Finish();
  c->FlushAll(Clock::now() + kFinalFlushTimeout);
}

// Values of a (possibly repeated, comma-separated) request header.
std::vector<std::string> HeaderValues(const http::request<http::empty_body>& req,
                                      absl::string_view name) {
  std::vector<std::string> out;
  auto range = req.equal_range(boost::beast::string_view(name.data(), name.size()));
  for (auto it = range.first; it != range.second; ++it) {
    std::string v(it->value().data(), it->value().size());
    for (absl::string_view p : absl::StrSplit(v, ',', absl::SkipEmpty())) {
      p = absl::StripAsciiWhitespace(p);
      if (!p.empty()) out.emplace_back(p);
    }
  }
  return out;
}

// Client preference first, as apimachinery's httpstream.Handshake negotiates.
std::string Negotiate(const std::vector<std::string>& client,
                      const std::vector<std::string>& server) {
  for (const auto& c : client) {
    for (const auto& s : server) {
      if (c == s) return c;
    }
  }
  return "";
}

}  // namespace

Server::Server(StreamingRuntime* runtime, ServerOptions opts)
    : runtime_(runtime), opts_(std::move(opts)), cache_(opts_.token_ttl) {}

Server::~Server() { Shutdown(); }

absl::Status Server::Start() {
  std::string host = opts_.address, port_s = "0";
  if (auto colon = opts_.address.rfind(':'); colon != std::string::npos) {
    host = opts_.address.substr(0, colon);
    port_s = opts_.address.substr(colon + 1);
  }
  int port = 0;
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  if (!absl::SimpleAtoi(port_s, &port) || port < 0 || port > 65535 ||
      inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming address \"", opts_.address, "\": want IPv4:port"));
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return ErrnoStatus(errno, "streaming server: socket");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 128) != 0) {
    int err = errno;
    close(listen_fd_);
    listen_fd_ = -1;
    return ErrnoStatus(err, absl::StrCat("streaming server: listen on ", opts_.address));
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  base_url_ = absl::StrCat("http://", host, ":", ntohs(addr.sin_port));
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return ErrnoStatus(errno, "streaming server: eventfd");
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  LOG(INFO) << "streaming server on " << base_url_;
  return absl::OkStatus();
}

void Server::Shutdown() {
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t unused = write(wake_fd_, &one, sizeof(one));
    (void)unused;
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<Worker> workers;
  {
    absl::MutexLock l(&mu_);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.thread.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

std::string Server::base_url() const { return base_url_; }

absl::StatusOr<std::string> Server::UrlFor(StreamRequest req) {
  if (base_url_.empty()) return absl::UnavailableError("streaming server is not running");
  const char* kind = KindPath(req.kind);
  ASSIGN_OR_RETURN(std::string token, cache_.Insert(std::move(req)));
  return absl::StrCat(base_url_, "/", kind, "/", token);
}

absl::StatusOr<v1::ExecResponse> Server::GetExec(const v1::ExecRequest& req) {
  if (req.tty() && req.stderr()) {
    return absl::InvalidArgumentError("Exec: tty and stderr cannot both be true");
  }
  if (!req.stdin() && !req.stdout() && !req.stderr()) {
    return absl::InvalidArgumentError("Exec: one of stdin, stdout, or stderr must be set");
  }
  StreamRequest r;
  r.kind = StreamRequest::Kind::kExec;
  r.exec = req;
  ASSIGN_OR_RETURN(std::string url, UrlFor(std::move(r)));
  v1::ExecResponse out;
  out.set_url(url);
  return out;
}

absl::StatusOr<v1::AttachResponse> Server::GetAttach(const v1::AttachRequest& req) {
  if (req.tty() && req.stderr()) {
    return absl::InvalidArgumentError("Attach: tty and stderr cannot both be true");
  }
  if (!req.stdin() && !req.stdout() && !req.stderr()) {
    return absl::InvalidArgumentError("Attach: one of stdin, stdout, and stderr must be set");
  }
  StreamRequest r;
  r.kind = StreamRequest::Kind::kAttach;
  r.attach = req;
  ASSIGN_OR_RETURN(std::string url, UrlFor(std::move(r)));
  v1::AttachResponse out;
  out.set_url(url);
  return out;
}

absl::StatusOr<v1::PortForwardResponse> Server::GetPortForward(const v1::PortForwardRequest& req) {
  StreamRequest r;
  r.kind = StreamRequest::Kind::kPortForward;
  r.port_forward = req;
  ASSIGN_OR_RETURN(std::string url, UrlFor(std::move(r)));
  v1::PortForwardResponse out;
  out.set_url(url);
  return out;
}

void Server::AcceptLoop() {
  for (;;) {
    struct pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int rc = poll(fds, 2, 1000);
    if (rc < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    // Join sessions that ended.
    {
      absl::MutexLock l(&mu_);
      for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->done->load()) {
          it->thread.join();
          it = workers_.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (rc <= 0 || !(fds[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto done = std::make_shared<std::atomic<bool>>(false);
    absl::MutexLock l(&mu_);
    workers_.push_back(Worker{std::thread([this, fd, done] {
                                pthread_setname_np(pthread_self(), "berth-stream");
                                ++active_;
                                Serve(fd);
                                close(fd);
                                --active_;
                                done->store(true);
                              }),
                              done});
  }
}

void Server::Serve(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // Read the request head (blocking, bounded by a receive timeout).
  struct timeval tv = {static_cast<time_t>(kRequestReadTimeout.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  http::request_parser<http::empty_body> parser;
  parser.header_limit(64 * 1024);
  std::string buf;
  size_t consumed = 0;
  const auto deadline = Clock::now() + kRequestReadTimeout;
  while (!parser.is_header_done()) {
    if (Clock::now() > deadline) return;
    char tmp[8192];
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    buf.append(tmp, static_cast<size_t>(n));
    boost::beast::error_code ec;
    for (;;) {
      size_t used = parser.put(boost::asio::buffer(buf.data() + consumed, buf.size() - consumed), ec);
      consumed += used;
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) {
        std::string resp = HttpError(400, "Bad Request", "malformed HTTP request");
        WriteAll(fd, resp, Clock::now() + std::chrono::seconds(2));
        return;
      }
      if (parser.is_header_done() || used == 0) break;
    }
  }
  std::string leftover = buf.substr(consumed);
  const auto& req = parser.get();
  std::string target(req.target().data(), req.target().size());
  if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
  std::vector<std::string> parts = absl::StrSplit(target, '/', absl::SkipEmpty());
  auto reply = [&](const std::string& resp) {
    WriteAll(fd, resp, Clock::now() + std::chrono::seconds(2));
  };
  if (parts.size() != 2) return reply(HttpError(404, "Not Found", "404 page not found"));
  std::optional<StreamRequest> sr = cache_.Consume(parts[1]);
  if (!sr || parts[0] != KindPath(sr->kind)) {
    // Unknown, expired, replayed, or a token of another kind: as kubelet's request cache.
    return reply(HttpError(404, "Not Found", "404 page not found"));
  }

  std::string upgrade = absl::AsciiStrToLower(
      std::string(req[http::field::upgrade].data(), req[http::field::upgrade].size()));
  bool portforward = sr->kind == StreamRequest::Kind::kPortForward;
  Client client;
  client.fd = fd;
  SetNonBlocking(fd);

  if (upgrade == "websocket") {
    std::vector<std::string> offered = HeaderValues(req, "Sec-WebSocket-Protocol");
    std::vector<std::string> supported =
        portforward ? std::vector<std::string>{"v4.portforward.k8s.io", "portforward.k8s.io"}
                    : std::vector<std::string>{"v5.channel.k8s.io", "v4.channel.k8s.io",
                                               "base64.channel.k8s.io", "channel.k8s.io"};
    std::string proto = Negotiate(offered, supported);
    std::string key(req["Sec-WebSocket-Key"].data(), req["Sec-WebSocket-Key"].size());
    if (key.empty()) return reply(HttpError(400, "Bad Request", "missing Sec-WebSocket-Key"));
    if (proto.empty() && !offered.empty()) {
      return reply(HttpError(
          400, "Bad Request",
          absl::StrCat("unable to negotiate protocol: client supports ", absl::StrJoin(offered, ","),
                       ", server accepts ", absl::StrJoin(supported, ","))));
    }
    std::string resp = absl::StrCat(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ",
        ws::AcceptKey(key), "\r\n",
        proto.empty() ? "" : absl::StrCat("Sec-WebSocket-Protocol: ", proto, "\r\n"), "\r\n");
    client.out = resp;
    if (portforward) {
      // Ports come from the query (?port=80&port=8080), else from the CRI request.
      std::vector<int32_t> ports;
      std::string full(req.target().data(), req.target().size());
      if (auto q = full.find('?'); q != std::string::npos) {
        for (absl::string_view kv : absl::StrSplit(full.substr(q + 1), '&')) {
          int32_t p = 0;
          if (absl::ConsumePrefix(&kv, "port=") && absl::SimpleAtoi(kv, &p)) ports.push_back(p);
        }
      }
      if (ports.empty()) ports.assign(sr->port_forward.port().begin(), sr->port_forward.port().end());
      RunPortForwardWebSocket(&client, leftover, sr->port_forward.pod_sandbox_id(), ports, wake_fd_,
                              runtime_);
      return;
    }
    CommandOptions o;
    if (sr->kind == StreamRequest::Kind::kExec) {
      o = {sr->exec.stdin(), sr->exec.stdout(), sr->exec.stderr(), sr->exec.tty()};
    } else {
      o = {sr->attach.stdin(), sr->attach.stdout(), sr->attach.stderr(), sr->attach.tty()};
    }
    o.legacy_status = proto == "channel.k8s.io" || proto == "base64.channel.k8s.io";
    std::array<bool, kNumChannels> open = {o.stdin, o.stdout, o.stderr && !o.tty, true, o.tty};
    WebSocketChannels t(&client.out, proto == "base64.channel.k8s.io", proto == "v5.channel.k8s.io",
                        open);
    RunRemoteCommand(&client, &t, leftover, o, false, Clock::now(), wake_fd_, [&] {
      return sr->kind == StreamRequest::Kind::kExec ? runtime_->StartExec(sr->exec)
                                                     : runtime_->StartAttach(sr->attach);
    });
    return;
  }

  if (upgrade != "spdy/3.1") {
    return reply(HttpError(400, "Bad Request", "unable to upgrade: missing upgrade headers in request"));
  }
  std::vector<std::string> offered = HeaderValues(req, "X-Stream-Protocol-Version");
  std::vector<std::string> supported =
      portforward ? std::vector<std::string>{"portforward.k8s.io"}
                  : std::vector<std::string>{"v5.channel.k8s.io", "v4.channel.k8s.io"};
  std::string proto = Negotiate(offered, supported);
  if (proto.empty()) {
    std::string accepted;
    for (const auto& s : supported) absl::StrAppend(&accepted, "X-Accepted-Stream-Protocol-Versions: ", s, "\r\n");
    return reply(HttpError(
        403, "Forbidden",
        absl::StrCat("unable to upgrade: unable to negotiate protocol: client supports ",
                     absl::StrJoin(offered, ","), ", server accepts ", absl::StrJoin(supported, ",")),
        accepted));
  }
  client.out = absl::StrCat(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
      "X-Stream-Protocol-Version: ",
      proto, "\r\n\r\n");
  if (portforward) {
    RunPortForwardSpdy(&client, leftover, sr->port_forward.pod_sandbox_id(), wake_fd_, runtime_);
    return;
  }
  CommandOptions o;
  if (sr->kind == StreamRequest::Kind::kExec) {
    o = {sr->exec.stdin(), sr->exec.stdout(), sr->exec.stderr(), sr->exec.tty()};
  } else {
    o = {sr->attach.stdin(), sr->attach.stdout(), sr->attach.stderr(), sr->attach.tty()};
  }
  SpdyChannels t(&client.out);
  RunRemoteCommand(&client, &t, leftover, o, true, Clock::now() + opts_.stream_creation_timeout,
                   wake_fd_, [&] {
                     return sr->kind == StreamRequest::Kind::kExec
                                ? runtime_->StartExec(sr->exec)
                                : runtime_->StartAttach(sr->attach);
                   });
}

}  // namespace berth::cri::streaming
