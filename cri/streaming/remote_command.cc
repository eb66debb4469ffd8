#include "cri/streaming/remote_command.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include "base/log.h"
#include "cri/streaming/status.h"
#include "nlohmann/json.hpp"

namespace berth::cri::streaming::internal {

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

void RunRemoteCommand(Client* c, ChannelTransport* t, const std::string& leftover,
                      const CommandOptions& o, bool wait_for_streams, Clock::time_point deadline,
                      int wake_fd, const StartFn& start) {
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
      if (e.channel == kConnectionClosed) {
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
      if (now - std::max(last_output, *detach_at) > kAttachStdinEofQuiet ||
          now - *detach_at > kDrainGrace)
        break;
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
    if (proc && !stdin_closed && !stdin_buf.empty())
      fds[i_in = n++] = {proc->stdin_fd(), POLLOUT, 0};
    if (proc && !exited && proc->exit_fd() >= 0) fds[i_exit = n++] = {proc->exit_fd(), POLLIN, 0};
    int timeout_ms = -1;
    if (!started) {
      timeout_ms = static_cast<int>(std::max<int64_t>(
          0,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
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
      final_status = code.ok() ? ExitStatusJson(*code)
                               : InternalErrorStatusJson(std::string(code.status().message()));
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

}  // namespace berth::cri::streaming::internal
