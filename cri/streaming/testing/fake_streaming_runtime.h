// A StreamingRuntime for unit tests of the streaming server: exec and attach run a
// `Script` on a thread of the test process instead of a container process, with pipes as
// the process' stdin/stdout/stderr and an eventfd as its exit descriptor; DialPort connects
// to a TCP port on 127.0.0.1 of the test process.
//
// Thread safety: the runtime may be used from any thread (the server calls it from session
// threads); the recorded values are read with the accessors.
#pragma once

#include "cri/streaming/server.h"  // first: the CRI protos clash with macros of system headers

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace berth::cri::streaming::testing {

// The fake command: reads its stdin from `in` (-1 without stdin), writes to `out` and `err`
// (`err` is -1 with a tty), returns the exit code. Blocking I/O; `in` reaches EOF when the
// client closed stdin or the session ended.
using Script = std::function<int(int in, int out, int err)>;

// Writes all of `s` to a blocking descriptor (false when the reader went away).
inline bool WriteString(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads a blocking descriptor to EOF.
inline std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return s;
    s.append(buf, static_cast<size_t>(n));
  }
}

class FakeProcess : public StreamProcess {
 public:
  // `with_stdin`, `tty` as the request says. `on_resize` and `on_close_stdin` report to the
  // runtime.
  FakeProcess(Script script, bool with_stdin, bool tty, bool detach_on_stdin_eof,
              std::function<void(uint16_t, uint16_t)> on_resize)
      : detach_(detach_on_stdin_eof), on_resize_(std::move(on_resize)) {
    int in[2] = {-1, -1}, out[2], err[2] = {-1, -1};
    if (with_stdin) pipe2(in, O_CLOEXEC);
    pipe2(out, O_CLOEXEC);
    if (!tty) pipe2(err, O_CLOEXEC);
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
    for (int fd : {stdin_, stdout_, stderr_}) {
      if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    exit_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread(
        [this, script = std::move(script), in_r = in[0], out_w = out[1], err_w = err[1]] {
          code_ = script(in_r, out_w, err_w);
          for (int fd : {in_r, out_w, err_w}) {
            if (fd >= 0) close(fd);
          }
          uint64_t one = 1;
          ssize_t unused = write(exit_, &one, sizeof(one));
          (void)unused;
        });
  }
  ~FakeProcess() override {
    CloseStdin();
    // The session is over: nobody reads the output any more (the script sees EPIPE).
    for (int* fd : {&stdout_, &stderr_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
    thread_.join();
    close(exit_);
  }

  int stdin_fd() const override { return stdin_; }
  int stdout_fd() const override { return stdout_; }
  int stderr_fd() const override { return stderr_; }
  int exit_fd() const override { return exit_; }
  absl::StatusOr<int> Wait() override { return code_.load(); }
  void Resize(uint16_t width, uint16_t height) override { on_resize_(width, height); }
  void CloseStdin() override {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }
  bool DetachOnStdinEof() const override { return detach_; }

 private:
  int stdin_ = -1, stdout_ = -1, stderr_ = -1, exit_ = -1;
  bool detach_;
  std::function<void(uint16_t, uint16_t)> on_resize_;
  std::atomic<int> code_{-1};
  std::thread thread_;
};

class FakeStreamingRuntime : public StreamingRuntime {
 public:
  FakeStreamingRuntime() { signal(SIGPIPE, SIG_IGN); }  // scripts write to closed pipes

  // What exec and attach run; an error from start_error instead when set.
  void set_script(Script s) {
    absl::MutexLock l(&mu_);
    script_ = std::move(s);
  }
  void set_start_error(absl::Status s) {
    absl::MutexLock l(&mu_);
    start_error_ = std::move(s);
  }
  // DialPort(sandbox, port) connects to 127.0.0.1:port_map(port) (identity by default).
  void set_port_map(std::function<int(int32_t)> m) {
    absl::MutexLock l(&mu_);
    port_map_ = std::move(m);
  }

  std::vector<std::pair<uint16_t, uint16_t>> resizes() const {
    absl::MutexLock l(&mu_);
    return resizes_;
  }
  std::vector<std::string> exec_commands() const {
    absl::MutexLock l(&mu_);
    return commands_;
  }

  absl::StatusOr<std::unique_ptr<StreamProcess>> StartExec(const v1::ExecRequest& req) override {
    Script s;
    {
      absl::MutexLock l(&mu_);
      if (!start_error_.ok()) return start_error_;
      for (const auto& c : req.cmd()) commands_.push_back(c);
      s = script_;
    }
    return std::unique_ptr<StreamProcess>(std::make_unique<FakeProcess>(
        s, req.stdin(), req.tty(), false, [this](uint16_t w, uint16_t h) { Record(w, h); }));
  }
  absl::StatusOr<std::unique_ptr<StreamProcess>> StartAttach(
      const v1::AttachRequest& req) override {
    Script s;
    {
      absl::MutexLock l(&mu_);
      if (!start_error_.ok()) return start_error_;
      s = script_;
    }
    return std::unique_ptr<StreamProcess>(std::make_unique<FakeProcess>(
        s, req.stdin(), req.tty(), req.stdin(), [this](uint16_t w, uint16_t h) { Record(w, h); }));
  }
  absl::StatusOr<int> DialPort(const std::string& sandbox_id, int32_t port) override {
    int target;
    {
      absl::MutexLock l(&mu_);
      target = port_map_ ? port_map_(port) : port;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(target));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      int err = errno;
      close(fd);
      return absl::UnavailableError(
          absl::StrCat("dial tcp4 127.0.0.1:", port, ": ", strerror(err)));
    }
    return fd;
  }

 private:
  void Record(uint16_t w, uint16_t h) {
    absl::MutexLock l(&mu_);
    resizes_.emplace_back(w, h);
  }

  mutable absl::Mutex mu_;
  Script script_ ABSL_GUARDED_BY(mu_);
  absl::Status start_error_ ABSL_GUARDED_BY(mu_);
  std::function<int(int32_t)> port_map_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint16_t, uint16_t>> resizes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> commands_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::cri::streaming::testing
