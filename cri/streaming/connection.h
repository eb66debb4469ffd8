// The client connection of a streaming session, shared by the server (server.cc: accept loop
// and upgrade), remote command (remote_command.cc) and port-forward (port_forward.cc):
// a non-blocking socket with the bytes queued for it, and small socket helpers.
// Thread safety: a Client belongs to one session thread.
#pragma once

// clang-format off
// First: the CRI protos' Signal enum (SIGABRT, ...) clashes with <signal.h>'s macros, which
// Boost.Asio includes.
#include "cri/runtime_service.h"
// clang-format on

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "cri/streaming/server.h"  // first: the CRI protos clash with macros of system headers

namespace berth::cri::streaming::internal {

namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;

// Above this many bytes queued towards one side, stop reading from the other (backpressure).
inline constexpr size_t kHighWater = 1 << 20;
inline constexpr size_t kReadChunk = 32 * 1024;
// How long the final frames of a session may take to reach the client.
inline constexpr auto kFinalFlushTimeout = std::chrono::seconds(10);

inline void SetNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

inline std::string HttpError(int code, const std::string& reason, const std::string& body,
                             const std::string& extra_headers = "") {
  return absl::StrCat(
      "HTTP/1.1 ", code, " ", reason,
      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ", body.size() + 1,
      "\r\nConnection: close\r\n", extra_headers, "\r\n", body, "\n");
}

// Blocking write of all of `data` to a (possibly non-blocking) socket, within `deadline`.
inline bool WriteAll(int fd, absl::string_view data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      struct pollfd p = {fd, POLLOUT, 0};
      poll(&p, 1, static_cast<int>(left.count()));
      continue;
    }
    return false;
  }
  return true;
}

// The client side of a session: a non-blocking socket and what is queued for it.
struct Client {
  int fd = -1;
  std::string out;
  size_t out_off = 0;
  bool gone = false;  // EOF, reset or write error

  size_t pending() const { return out.size() - out_off; }
  // Writes what the socket takes now.
  void Flush() {
    while (pending() > 0 && !gone) {
      ssize_t n = send(fd, out.data() + out_off, pending(), MSG_NOSIGNAL);
      if (n > 0) {
        out_off += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        gone = true;
      }
    }
    if (out_off == out.size()) {
      out.clear();
      out_off = 0;
    } else if (out_off > (1 << 20)) {
      out.erase(0, out_off);
      out_off = 0;
    }
  }
  // Reads what is available, up to about kHighWater bytes (the rest stays in the socket for
  // the next poll: a fast client cannot make one call read without bound); false when the
  // client went away.
  bool Read(std::string* into) {
    char buf[64 * 1024];
    for (size_t total = 0; total < kHighWater;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        into->append(buf, static_cast<size_t>(n));
        total += static_cast<size_t>(n);
        if (static_cast<size_t>(n) < sizeof(buf)) return true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      gone = true;
      return false;
    }
    return true;
  }
  // Blocks until everything queued is written (or the deadline passes), then half-closes
  // and discards what the client still sends until it closes too: closing with unread
  // input would reset the connection and could destroy our last frames in flight.
  void FlushAll(Clock::time_point deadline) {
    if (gone) return;
    if (pending() > 0) WriteAll(fd, absl::string_view(out).substr(out_off), deadline);
    out.clear();
    out_off = 0;
    shutdown(fd, SHUT_WR);
    auto linger_end = std::min(deadline, Clock::now() + std::chrono::seconds(2));
    char buf[16 * 1024];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(linger_end - Clock::now());
      if (left.count() <= 0) return;
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
    }
  }
};

}  // namespace berth::cri::streaming::internal
