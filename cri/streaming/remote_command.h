// Remote command: one exec or attach session over an upgraded connection, on either channel
// framing (channels.h), as k8s.io/kubelet/pkg/cri/streaming/remotecommand serves it:
//   - the session starts once the client created its streams (SPDY: error, plus stdin,
//     stdout, stderr unless tty, resize if tty) or at once (WebSocket);
//   - stdin goes to the process, stdout/stderr (or the tty) to the client, resize messages
//     ({"Width":w,"Height":h} JSON) to StreamProcess::Resize;
//   - at the end the error channel carries the result: a metav1.Status (status.h) for
//     v4.channel.k8s.io and v5.channel.k8s.io (SPDY and WebSocket), and for the protocols
//     before v4 (WebSocket channel.k8s.io, base64.channel.k8s.io) nothing on success and the
//     error's text otherwise (upstream's v1WriteStatusFunc); then the channels are closed
//     (v5: CLOSE signals) and the connection is finished.
//
// Thread safety: RunRemoteCommand runs on the session's thread and blocks until the end.
#pragma once

#include "cri/streaming/server.h"  // first: the CRI protos clash with macros of system headers

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cri/streaming/channels.h"
#include "cri/streaming/connection.h"

namespace berth::cri::streaming::internal {

// After the command exited, output is drained until EOF or until it stays silent this long
// (a background child may hold the pipes open).
inline constexpr auto kDrainGrace = std::chrono::seconds(2);
// An attach whose client closed stdin ends (as containerd's): what the container still
// writes in answer is forwarded until output stays silent this long, at most kDrainGrace.
inline constexpr auto kAttachStdinEofQuiet = std::chrono::milliseconds(300);

// Options of a remote command (exec or attach), from the stored CRI request.
struct CommandOptions {
  bool stdin = false, stdout = false, stderr = false, tty = false;
  // Protocols before v4 (WebSocket channel.k8s.io, base64.channel.k8s.io): the error channel
  // carries nothing on success and the error's text otherwise, not a Status object.
  bool legacy_status = false;
  // Streams a SPDY client creates for these options: error, stdin, stdout, stderr unless
  // tty, resize if tty.
  int ExpectedStreams() const { return 1 + stdin + stdout + (stderr && !tty) + tty; }
};

// Parses the complete {"Width":w,"Height":h} objects at the front of `*buf` (consumed) and
// resizes `proc`; nothing is consumed while `proc` is null (the process does not exist yet).
// Malformed objects are dropped.
void HandleResize(std::string* buf, StreamProcess* proc);

// Starts the command.
using StartFn = std::function<absl::StatusOr<std::unique_ptr<StreamProcess>>()>;

// Runs one exec/attach session on the upgraded connection `c` with framing `t` until the
// command ends or the client goes away; then the process is released (an exec'd process
// still running is killed). `leftover`: bytes read past the HTTP request.
// `wait_for_streams`: start only once t->streams() reaches o.ExpectedStreams(), giving up
// (without a status) at `deadline`. `wake_fd` readable means the server shuts down.
void RunRemoteCommand(Client* c, ChannelTransport* t, const std::string& leftover,
                      const CommandOptions& o, bool wait_for_streams, Clock::time_point deadline,
                      int wake_fd, const StartFn& start);

}  // namespace berth::cri::streaming::internal
