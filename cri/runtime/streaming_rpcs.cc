// CRI Exec, Attach and PortForward (api.proto RuntimeService), and the processes behind the
// streaming sessions: `runc exec` (in the foreground; for a TTY runc's stdio is a pty of
// ours and runc relays it to the container's pty, resizing on SIGWINCH), conmon's
// attach socket + ctl fifo (as CRI-O uses them), and a TCP connection made inside the pod
// sandbox's network namespace. Container and sandbox facts come from the public status RPCs
// (verbose info), so this file does not depend on the runtime's record layout.
#include "cri/runtime/runtime.h"  // first: the CRI Signal enum clashes with <signal.h> macros

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "cri/runtime/native_exec.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct ContainerFacts {
  std::string id, bundle, runtime_handler;
  v1::ContainerState state = v1::CONTAINER_UNKNOWN;
  bool stdin_once = false;  // ContainerConfig.stdin_once
  pid_t pid = 0;            // the container's init process
};

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

void SetNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

pid_t ReadPid(const std::string& path) {
  auto data = ReadFile(path);
  int pid = 0;
  if (!data.ok() || !absl::SimpleAtoi(std::string(absl::StripAsciiWhitespace(*data)), &pid))
    return 0;
  return pid;
}

// Waits for `pid` (a child) up to `timeout` using its pidfd; true when reaped.
bool WaitChild(pid_t pid, int pidfd, std::chrono::milliseconds timeout, int* status) {
  struct pollfd p = {pidfd, POLLIN, 0};
  if (pidfd >= 0) poll(&p, 1, static_cast<int>(timeout.count()));
  pid_t r;
  do {
    r = waitpid(pid, status, pidfd >= 0 ? WNOHANG : 0);
  } while (r < 0 && errno == EINTR);
  return r == pid;
}

// `runc exec` of one command. The exec'd process is not runc's child for long (runc
// forks it into the container and waits), so the pid file names it for killing.
// With `native_` (native_exec.h), `runc_pid_` is the command itself, berth's child.
class ExecProcess : public streaming::StreamProcess {
 public:
  ~ExecProcess() override {
    if (!reaped_ && runc_pid_ > 0 && native_) {
      int st = 0;
      kill(runc_pid_, SIGKILL);  // the client went away (or the server stops)
      while (waitpid(runc_pid_, &st, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
    }
    if (!reaped_ && runc_pid_ > 0) {
      // The client went away (or the server stops): kill the command, then reap runc.
      for (int i = 0; i < 20; ++i) {
        pid_t p = ReadPid(pid_file_);
        if (p > 0) {
          kill(p, SIGKILL);
          break;
        }
        int st = 0;
        if (WaitChild(runc_pid_, pidfd_, std::chrono::milliseconds(100), &st)) {
          reaped_ = true;
          break;
        }
      }
      int st = 0;
      if (!reaped_ && !WaitChild(runc_pid_, pidfd_, std::chrono::seconds(5), &st)) {
        kill(runc_pid_, SIGKILL);
        while (waitpid(runc_pid_, &st, 0) < 0 && errno == EINTR) {
        }
      }
    }
    unlink(pid_file_.c_str());
    CloseFd(&stdin_);
    CloseFd(&stdout_);
    CloseFd(&stderr_);
    CloseFd(&pidfd_);
  }
  int stdin_fd() const override { return stdin_; }
  int stdout_fd() const override { return stdout_; }
  int stderr_fd() const override { return stderr_; }
  int exit_fd() const override { return pidfd_; }
  absl::StatusOr<int> Wait() override {
    int st = 0;
    while (waitpid(runc_pid_, &st, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (code != 0 && !native_ && !PathExists(pid_file_)) {
      return absl::InternalError(absl::StrCat("runc exec in container ", container_,
                                              " failed to start the command (exit ", code, ")"));
    }
    return code;
  }
  // runc (foreground, --tty) copies the size of its stdin terminal (our pty) to the
  // container's pty when it gets SIGWINCH.
  void Resize(uint16_t width, uint16_t height) override {
    if (!tty_ || stdout_ < 0) return;
    struct winsize ws = {};
    ws.ws_col = width;
    ws.ws_row = height;
    ioctl(stdout_, TIOCSWINSZ, &ws);  // native: the kernel signals the foreground group
    if (!reaped_ && !native_) kill(runc_pid_, SIGWINCH);
  }
  void CloseStdin() override {
    if (!tty_) CloseFd(&stdin_);
  }

  std::string container_, pid_file_;
  pid_t runc_pid_ = 0;
  int pidfd_ = -1, stdin_ = -1, stdout_ = -1, stderr_ = -1;
  bool tty_ = false, reaped_ = false, native_ = false;
};

// An attach to conmon's console socket.
class AttachProcess : public streaming::StreamProcess {
 public:
  ~AttachProcess() override {
    CloseFd(&stdin_);
    CloseFd(&sock_);
  }
  int stdin_fd() const override { return stdin_; }
  int stdout_fd() const override { return sock_; }
  int stderr_fd() const override { return -1; }
  bool conmon_framed() const override { return true; }
  int exit_fd() const override { return -1; }
  absl::StatusOr<int> Wait() override { return 0; }
  void Resize(uint16_t width, uint16_t height) override {
    // conmon's ctl fifo: "<type> <height> <width>\n", type 1 = resize.
    int fd = open(ctl_path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    std::string msg = absl::StrCat("1 ", height, " ", width, "\n");
    ssize_t unused = write(fd, msg.data(), msg.size());
    (void)unused;
    close(fd);
  }
  // The client's stdin ended (containerd's attach semantics). stdin_once: half-close the
  // socket; conmon closes the container's stdin and output keeps flowing until the
  // container exits. Otherwise the client detaches (DetachOnStdinEof): the session ends
  // after the drain grace and the container's stdin stays open for the next attach (conmon
  // runs with --leave-stdin-open).
  void CloseStdin() override {
    CloseFd(&stdin_);
    if (stdin_once_ && sock_ >= 0) shutdown(sock_, SHUT_WR);
  }
  bool DetachOnStdinEof() const override { return !stdin_once_; }

  std::string ctl_path_;
  int sock_ = -1, stdin_ = -1;
  bool stdin_once_ = false;
};

}  // namespace

// Facts of a container from ContainerStatus(verbose).
static absl::StatusOr<ContainerFacts> Facts(Runtime* rt, const std::string& id, const char* what) {
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(true);
  auto st = rt->ContainerStatus(req);
  if (!st.ok()) return Annotate(st.status(), what);
  ContainerFacts f;
  f.id = st->status().id();
  f.state = st->status().state();
  auto it = st->info().find("info");
  if (it != st->info().end()) {
    auto j = json::parse(it->second, nullptr, false);
    if (j.is_object()) {
      f.bundle = j.value("bundle", "");
      f.runtime_handler = j.value("runtimeHandler", "");
      f.stdin_once = j.value("stdinOnce", false);
      f.pid = j.value("pid", 0);
    }
  }
  return f;
}

static absl::Status RequireRunning(const ContainerFacts& f, const char* what) {
  if (f.state != v1::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": container ", f.id,
                                                      " is not running (state ",
                                                      v1::ContainerState_Name(f.state), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ExecResponse> Runtime::Exec(const v1::ExecRequest& req) {
  ASSIGN_OR_RETURN(ContainerFacts f, Facts(this, req.container_id(), "Exec"));
  RETURN_IF_ERROR(RequireRunning(f, "Exec"));
  if (req.cmd().empty()) return absl::InvalidArgumentError("Exec: empty command");
  streaming::Server* server = streaming_.load();
  if (server == nullptr) return absl::UnavailableError("Exec: the streaming server is not running");
  v1::ExecRequest r = req;
  r.set_container_id(f.id);  // a prefix becomes the full ID
  return server->GetExec(r);
}

absl::StatusOr<v1::AttachResponse> Runtime::Attach(const v1::AttachRequest& req) {
  ASSIGN_OR_RETURN(ContainerFacts f, Facts(this, req.container_id(), "Attach"));
  RETURN_IF_ERROR(RequireRunning(f, "Attach"));
  streaming::Server* server = streaming_.load();
  if (server == nullptr)
    return absl::UnavailableError("Attach: the streaming server is not running");
  v1::AttachRequest r = req;
  r.set_container_id(f.id);
  return server->GetAttach(r);
}

absl::StatusOr<v1::PortForwardResponse> Runtime::PortForward(const v1::PortForwardRequest& req) {
  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(req.pod_sandbox_id());
  auto st = PodSandboxStatus(sreq);
  if (!st.ok()) return Annotate(st.status(), "PortForward");
  if (st->status().state() != v1::SANDBOX_READY) {
    return absl::FailedPreconditionError(
        absl::StrCat("PortForward: pod sandbox ", st->status().id(), " is not ready"));
  }
  for (int32_t p : req.port()) {
    if (p <= 0 || p > 65535)
      return absl::InvalidArgumentError(absl::StrCat("PortForward: invalid port ", p));
  }
  streaming::Server* server = streaming_.load();
  if (server == nullptr)
    return absl::UnavailableError("PortForward: the streaming server is not running");
  v1::PortForwardRequest r = req;
  r.set_pod_sandbox_id(st->status().id());
  return server->GetPortForward(r);
}

absl::StatusOr<std::unique_ptr<streaming::StreamProcess>> Runtime::StartExec(
    const v1::ExecRequest& req) {
  const std::string what = absl::StrCat("exec in container ", req.container_id());
  ASSIGN_OR_RETURN(ContainerFacts f, Facts(this, req.container_id(), what.c_str()));
  RETURN_IF_ERROR(RequireRunning(f, what.c_str()));
  ASSIGN_OR_RETURN(oci::OciRuntime * oci, RuntimeFor(f.runtime_handler));
  const oci::OciRuntimeOptions& o = oci->options();
  static std::atomic<uint64_t> counter{0};
  // Pid files of exec sessions.
  const std::string dir = JoinPath(opts_.state_dir, "exec");
  RETURN_IF_ERROR(Annotate(MkdirAll(dir), what));
  const std::string tag = absl::StrCat(f.id.substr(0, 12), "-", getpid(), "-", counter++);

  auto p = std::make_unique<ExecProcess>();
  p->container_ = f.id;
  p->pid_file_ = JoinPath(dir, tag + ".pid");
  p->tty_ = req.tty();
  // Native exec unless this container needs what only runc gives (native_exec.h).
  std::optional<NativeExecPlan> plan;
  if (opts_.exec_mode == "native" && f.pid > 0) {
    absl::StatusOr<std::string> config = ReadFile(JoinPath(f.bundle, "config.json"));
    json spec = config.ok() ? json::parse(*config, nullptr, false) : json();
    absl::StatusOr<NativeExecPlan> pl =
        spec.is_object()
            ? PrepareNativeExec(spec, f.pid,
                                std::vector<std::string>(req.cmd().begin(), req.cmd().end()),
                                req.tty())
            : absl::StatusOr<NativeExecPlan>(
                  absl::UnimplementedError(absl::StrCat("no OCI config in ", f.bundle)));
    if (pl.ok()) {
      plan = *std::move(pl);
    } else {
      LOG(DEBUG) << what << ": runc exec: " << pl.status();
    }
  }
  p->native_ = plan.has_value();
  std::vector<std::string> argv = {o.runtime_path};
  if (!o.runtime_root.empty()) argv.insert(argv.end(), {"--root", o.runtime_root});
  argv.insert(argv.end(), {"exec", "--pid-file", p->pid_file_});

  SpawnOptions so;
  int child_in = -1, child_out = -1, child_err = -1;
  auto cleanup_child_ends = [&] {
    CloseFd(&child_in);
    CloseFd(&child_out);
    CloseFd(&child_err);
  };
  if (req.tty() && p->native_) {
    // The command's pty is made in the container by StartNativeExec.
  } else if (req.tty()) {
    // A raw pty of ours as runc's stdio; runc relays it to the container's own pty.
    int master = -1, slave = -1;
    if (openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) {
      return ErrnoStatus(errno, absl::StrCat(what, ": openpty"));
    }
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
    struct termios t;
    if (tcgetattr(slave, &t) == 0) {
      cfmakeraw(&t);
      tcsetattr(slave, TCSANOW, &t);
    }
    p->stdout_ = master;
    if (req.stdin()) p->stdin_ = fcntl(master, F_DUPFD_CLOEXEC, 0);
    child_in = slave;
    so.stdin_fd = so.stdout_fd = so.stderr_fd = slave;
    argv.insert(argv.end(), {"--tty", "--env", "TERM=xterm"});
  } else {
    int fds[2];
    if (req.stdin()) {
      if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, what);
      child_in = fds[0];
      p->stdin_ = fds[1];
    }
    if (req.stdout()) {
      if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, what);
      p->stdout_ = fds[0];
      child_out = fds[1];
    }
    if (req.stderr()) {
      if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, what);
      p->stderr_ = fds[0];
      child_err = fds[1];
    }
    so.stdin_fd = child_in;
    so.stdout_fd = child_out;
    so.stderr_fd = child_err;
  }
  argv.push_back(f.id);
  argv.insert(argv.end(), req.cmd().begin(), req.cmd().end());
  int pty_master = -1;
  auto pid =
      plan ? StartNativeExec(*plan, so.stdin_fd, so.stdout_fd, so.stderr_fd, req.tty(), &pty_master)
           : Spawn(argv, so);
  cleanup_child_ends();
  if (pty_master >= 0) {
    p->stdout_ = pty_master;
    if (req.stdin()) p->stdin_ = fcntl(pty_master, F_DUPFD_CLOEXEC, 0);
  }
  if (!pid.ok()) return Annotate(pid.status(), what);
  p->runc_pid_ = *pid;
  p->pidfd_ = PidfdOpen(*pid);
  if (p->pidfd_ < 0)
    return ErrnoStatus(errno, absl::StrCat(what, ": pidfd_open"));  // ~ExecProcess reaps
  for (int fd : {p->stdin_, p->stdout_, p->stderr_}) {
    if (fd >= 0) SetNonBlocking(fd);
  }
  return std::unique_ptr<streaming::StreamProcess>(std::move(p));
}

absl::StatusOr<std::unique_ptr<streaming::StreamProcess>> Runtime::StartAttach(
    const v1::AttachRequest& req) {
  const std::string what = absl::StrCat("attach to container ", req.container_id());
  ASSIGN_OR_RETURN(ContainerFacts f, Facts(this, req.container_id(), what.c_str()));
  RETURN_IF_ERROR(RequireRunning(f, what.c_str()));
  ASSIGN_OR_RETURN(oci::OciRuntime * oci, RuntimeFor(f.runtime_handler));
  // conmon (--socket-dir-path <conmon>/attach) links <dir>/<id> to the bundle and listens on
  // <bundle>/attach (SOCK_SEQPACKET). Connect through an O_PATH fd of the directory: the
  // full path may exceed sun_path.
  const std::string link = JoinPath(JoinPath(oci->options().conmon_state_dir, "attach"), f.id);
  int dfd = open(link.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoStatus(errno, absl::StrCat(what, ": conmon attach directory ", link));
  auto p = std::make_unique<AttachProcess>();
  p->ctl_path_ = JoinPath(f.bundle, "ctl");
  p->stdin_once_ = f.stdin_once;
  p->sock_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  std::string path = absl::StrCat("/proc/self/fd/", dfd, "/attach");
  strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
  int rc = p->sock_ < 0 ? -1 : connect(p->sock_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  int err = errno;
  close(dfd);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat(what, ": connect ", link, "/attach"));
  if (req.stdin()) p->stdin_ = fcntl(p->sock_, F_DUPFD_CLOEXEC, 0);
  SetNonBlocking(p->sock_);
  if (p->stdin_ >= 0) SetNonBlocking(p->stdin_);
  return std::unique_ptr<streaming::StreamProcess>(std::move(p));
}

absl::StatusOr<int> Runtime::DialPort(const std::string& sandbox_id, int32_t port) {
  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(sandbox_id);
  sreq.set_verbose(true);
  ASSIGN_OR_RETURN(v1::PodSandboxStatusResponse st, PodSandboxStatus(sreq));
  if (st.status().state() != v1::SANDBOX_READY) {
    return absl::FailedPreconditionError(absl::StrCat("pod sandbox ", sandbox_id, " is not ready"));
  }
  std::string netns;
  if (auto it = st.info().find("info"); it != st.info().end()) {
    auto j = json::parse(it->second, nullptr, false);
    if (j.is_object()) netns = j.value("netnsPath", "");
  }
  bool host_network =
      st.status().linux().namespaces().options().network() == v1::NamespaceMode::NODE;
  // A thread of our own enters the pod's netns, creates and connects the socket, and ends:
  // the socket stays in the namespace it was created in; no other thread changes namespace.
  absl::Status result = absl::OkStatus();
  int fd = -1;
  std::thread t([&] {
    pthread_setname_np(pthread_self(), "berth-stream-ns");
    if (!host_network && !netns.empty()) {
      int ns = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0) {
        result = ErrnoStatus(errno, absl::StrCat("open netns ", netns));
        return;
      }
      int rc = setns(ns, CLONE_NEWNET);
      int err = errno;
      close(ns);
      if (rc != 0) {
        result = ErrnoStatus(err, absl::StrCat("setns ", netns));
        return;
      }
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      int err = errno;
      if (fd >= 0) close(fd);
      fd = -1;
      // Then IPv6 localhost, as kubelet's "localhost" does.
      int fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
      struct sockaddr_in6 sa6 = {};
      sa6.sin6_family = AF_INET6;
      sa6.sin6_port = htons(static_cast<uint16_t>(port));
      sa6.sin6_addr = in6addr_loopback;
      if (fd6 >= 0 && connect(fd6, reinterpret_cast<sockaddr*>(&sa6), sizeof(sa6)) == 0) {
        fd = fd6;
        return;
      }
      if (fd6 >= 0) close(fd6);
      result = ErrnoStatus(err, absl::StrCat("dial tcp4 127.0.0.1:", port));
    }
  });
  t.join();
  if (!result.ok()) return result;
  return fd;
}

}  // namespace berth::cri::runtime
