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
#include "cri/streaming/channels.h"
#include "cri/streaming/connection.h"
#include "cri/streaming/port_forward.h"
#include "cri/streaming/remote_command.h"
#include "cri/streaming/websocket.h"

namespace berth::cri::streaming {

using namespace internal;  // NOLINT(google-build-using-namespace): shared internals

namespace {

inline constexpr auto kRequestReadTimeout = std::chrono::seconds(15);

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
      size_t used =
          parser.put(boost::asio::buffer(buf.data() + consumed, buf.size() - consumed), ec);
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
        portforward ? std::vector<std::string>{"v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                                               "v4.portforward.k8s.io", "portforward.k8s.io"}
                    : std::vector<std::string>{"v5.channel.k8s.io", "v4.channel.k8s.io",
                                               "v4.base64.channel.k8s.io", "base64.channel.k8s.io",
                                               "channel.k8s.io"};
    // Upstream's names (k8s.io/cri-streaming remotecommand and portforward websocket.go), v5,
    // and berth's earlier port-forward names. The base64 variants use text frames.
    std::string proto = Negotiate(offered, supported);
    bool base64 = proto == "v4.base64.channel.k8s.io" || proto == "base64.channel.k8s.io";
    if (proto.empty() && !offered.empty()) {
      return reply(HttpError(400, "Bad Request",
                             absl::StrCat("unable to negotiate protocol: client supports ",
                                          absl::StrJoin(offered, ","), ", server accepts ",
                                          absl::StrJoin(supported, ","))));
    }
    ws::Connection conn(&client.out);
    if (auto s = conn.Accept(req, proto); !s.ok()) {
      // Beast's error response (400, or 426 for another WebSocket version) is in client.out.
      LOG(WARNING) << "streaming: " << s;
      WriteAll(fd, client.out, Clock::now() + std::chrono::seconds(2));
      return;
    }
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
      if (ports.empty())
        ports.assign(sr->port_forward.port().begin(), sr->port_forward.port().end());
      RunPortForwardWebSocket(&client, &conn, leftover, sr->port_forward.pod_sandbox_id(), ports,
                              base64, wake_fd_, runtime_);
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
    WebSocketChannels t(&conn, base64, proto == "v5.channel.k8s.io", open);
    RunRemoteCommand(&client, &t, leftover, o, false, Clock::now(), wake_fd_, [&] {
      return sr->kind == StreamRequest::Kind::kExec ? runtime_->StartExec(sr->exec)
                                                    : runtime_->StartAttach(sr->attach);
    });
    return;
  }

  if (upgrade != "spdy/3.1") {
    return reply(
        HttpError(400, "Bad Request", "unable to upgrade: missing upgrade headers in request"));
  }
  std::vector<std::string> offered = HeaderValues(req, "X-Stream-Protocol-Version");
  std::vector<std::string> supported =
      portforward ? std::vector<std::string>{"portforward.k8s.io"}
                  : std::vector<std::string>{"v5.channel.k8s.io", "v4.channel.k8s.io"};
  std::string proto = Negotiate(offered, supported);
  if (proto.empty()) {
    std::string accepted;
    for (const auto& s : supported)
      absl::StrAppend(&accepted, "X-Accepted-Stream-Protocol-Versions: ", s, "\r\n");
    return reply(
        HttpError(403, "Forbidden",
                  absl::StrCat("unable to upgrade: unable to negotiate protocol: client supports ",
                               absl::StrJoin(offered, ","), ", server accepts ",
                               absl::StrJoin(supported, ",")),
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
  RunRemoteCommand(
      &client, &t, leftover, o, true, Clock::now() + opts_.stream_creation_timeout, wake_fd_, [&] {
        return sr->kind == StreamRequest::Kind::kExec ? runtime_->StartExec(sr->exec)
                                                      : runtime_->StartAttach(sr->attach);
      });
}

}  // namespace berth::cri::streaming
