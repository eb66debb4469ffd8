// The CRI streaming server: the URLs that the CRI Exec, Attach and PortForward RPCs return,
// as containerd's CRI plugin serves them (k8s.io/kubelet/pkg/cri/streaming semantics).
//
// Flow: the RPC validates its request and calls GetExec/GetAttach/GetPortForward, which
// stores it under a single-use token (RequestCache: one minute) and returns
// `http://<address>/{exec,attach,portforward}/<token>`. The client (crictl, or the kubelet
// server proxying kubectl) connects there and upgrades the connection:
//   - `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version` v5.channel.k8s.io /
//     v4.channel.k8s.io (exec, attach) or portforward.k8s.io (port-forward). Streams are
//     created by the client and typed by their `streamType` header (error, stdin, stdout,
//     stderr, resize; data/error + port + requestID for port-forward).
//   - `Upgrade: websocket` with `Sec-WebSocket-Protocol` v5/v4.channel.k8s.io,
//     base64.channel.k8s.io (exec, attach) or v4.portforward.k8s.io / portforward.k8s.io
//     (port-forward): one byte channel prefix per message (0 stdin, 1 stdout, 2 stderr,
//     3 error, 4 resize; 255 close in v5).
// The exit status goes to the error stream as metav1.Status JSON (status.h).
// Unknown, replayed or expired tokens get 404; a token of another kind gets 404 too.
//
// Threads: one accept thread; one thread per streaming session that polls the client
// connection and the process/socket descriptors (no thread per stream). Sessions end when
// the command exits or the client goes away (an attach also when the client closed its
// stdin, once the container's answer went out: containerd's behaviour; the container's
// stdin stays open unless it is stdin_once); then the exec'd process is killed, every
// descriptor closed and the thread exits. Shutdown() ends all sessions and joins them.
// Session threads are named "berth-stream" (/proc/<pid>/task/<tid>/comm).
//
// Parts: this server (accept loop, routing by token, upgrade negotiation); remote command
// (remote_command.h: exec/attach sessions); port-forward (port_forward.h); channel framing
// (channels.h: channels on SPDY streams and WebSocket messages); framings (spdy.h; and
// websocket.h, RFC 6455 by Boost.Beast).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cri/runtime_service.h"
#include "cri/streaming/request_cache.h"

namespace berth::cri::streaming {

// A running exec'd process or an attach to a container's console, as descriptors the
// session polls. Owned by the session; the destructor releases everything (kills and reaps
// an exec'd process that is still running; an attach just detaches).
class StreamProcess {
 public:
  virtual ~StreamProcess() = default;
  // Non-blocking descriptors owned by the object; -1 when absent. With a TTY stdout is the
  // pty master and stderr is -1.
  virtual int stdin_fd() const = 0;
  virtual int stdout_fd() const = 0;
  virtual int stderr_fd() const = 0;
  // True when stdout_fd is conmon's attach socket (SOCK_SEQPACKET): each message starts
  // with a pipe byte (2 stdout, 3 stderr) and stdin is written to the same socket.
  virtual bool conmon_framed() const { return false; }
  // Readable when the process has exited (a pidfd); -1 when the session ends at EOF of
  // the output instead (attach).
  virtual int exit_fd() const = 0;
  // After exit_fd became readable: reaps and returns the exit code, or an error when the
  // command could not be started at all (message for the error stream).
  virtual absl::StatusOr<int> Wait() = 0;
  // Terminal size change (columns, rows).
  virtual void Resize(uint16_t width, uint16_t height) = 0;
  // The client closed its stdin.
  virtual void CloseStdin() = 0;
  // True when the client's stdin EOF ends the session (an attach to a container that is not
  // stdin_once, as containerd detaches it): output still arriving within the drain grace
  // (2 s) after the EOF is delivered, then the session ends with success.
  virtual bool DetachOnStdinEof() const { return false; }
};

// What the server needs from the runtime. Called on session threads, concurrently.
class StreamingRuntime {
 public:
  virtual ~StreamingRuntime() = default;
  // Starts req.cmd in the container (stdin/tty as requested). FailedPrecondition when the
  // container is not running any more.
  virtual absl::StatusOr<std::unique_ptr<StreamProcess>> StartExec(const v1::ExecRequest& req) = 0;
  // Attaches to the container's console (conmon's attach socket and ctl fifo).
  virtual absl::StatusOr<std::unique_ptr<StreamProcess>> StartAttach(
      const v1::AttachRequest& req) = 0;
  // A TCP connection (blocking fd, owned by the caller) to `port` on localhost inside the
  // pod sandbox's network namespace.
  virtual absl::StatusOr<int> DialPort(const std::string& sandbox_id, int32_t port) = 0;
};

struct ServerOptions {
  // host:port to listen on; port 0 picks a free port. Loopback by default (as containerd).
  std::string address = "127.0.0.1:0";
  std::chrono::milliseconds token_ttl = std::chrono::minutes(1);
  // How long a client may take to create its streams after the upgrade.
  std::chrono::milliseconds stream_creation_timeout = std::chrono::seconds(30);
};

class Server {
 public:
  // `runtime` is not owned and must outlive the server.
  Server(StreamingRuntime* runtime, ServerOptions opts);
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the accept thread. Errors: InvalidArgument for a bad address,
  // the bind/listen errno otherwise.
  absl::Status Start();
  // Stops accepting, ends every session (exec'd processes are killed) and joins threads.
  void Shutdown();

  // "http://127.0.0.1:<port>" once started.
  std::string base_url() const;

  // Store a validated request and return its single-use URL (ResourceExhausted when too
  // many requests are pending).
  absl::StatusOr<v1::ExecResponse> GetExec(const v1::ExecRequest& req);
  absl::StatusOr<v1::AttachResponse> GetAttach(const v1::AttachRequest& req);
  absl::StatusOr<v1::PortForwardResponse> GetPortForward(const v1::PortForwardRequest& req);

  // Sessions currently running (for tests and metrics).
  int active_sessions() const { return active_.load(); }

 private:
  void AcceptLoop();
  void Serve(int fd);
  absl::StatusOr<std::string> UrlFor(StreamRequest req);

  StreamingRuntime* const runtime_;
  const ServerOptions opts_;
  RequestCache cache_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop the accept loop and all sessions
  std::string base_url_;
  std::thread accept_thread_;
  std::atomic<int> active_{0};
  absl::Mutex mu_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Worker> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::cri::streaming
