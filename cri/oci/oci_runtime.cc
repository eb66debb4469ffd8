// OciRuntime: runc (or another OCI runtime CLI) under conmon 2.x.
//
// Create protocol (the one CRI-O uses with conmon --api-version 1): berth spawns conmon with
// a pipe as fd 3 and _OCI_SYNCPIPE=3. conmon forks once to daemonize (the spawned parent
// exits 0 at once), runs `<runtime> create`, and writes one JSON line on the pipe:
// {"data": <container pid>} on success, {"data": -1, "message": "<runtime stderr>"} on
// failure. It keeps the pipe open afterwards, so berth reads one line, never to EOF.
// EOF before a line means conmon died.
#include "cri/oci/oci_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

#include <signal.h>
#include <sys/wait.h>

extern char** environ;

namespace berth::cri::oci {
namespace {

constexpr auto kCreateTimeout = std::chrono::minutes(2);    // runc create (incl. hooks)
constexpr auto kCommandTimeout = std::chrono::seconds(60);  // start/kill/delete/state/update

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  void Reset() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

std::string Trim(std::string s) {
  absl::string_view v = absl::StripAsciiWhitespace(s);
  return std::string(v);
}

// runc logs errors as logrus text: `time="..." level=error msg="container does not exist"`.
// Returns the msg value (unescaped) when present, else the trimmed text.
std::string RuntimeMessage(const std::string& err) {
  std::string text = Trim(err);
  auto pos = text.rfind("msg=\"");
  if (pos == std::string::npos) return text;
  std::string out;
  for (size_t i = pos + 5; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      out.push_back(text[++i]);
    } else if (c == '"') {
      break;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool IsNotExist(const std::string& msg) { return absl::StrContains(msg, "does not exist"); }

// Spawns conmon in a new session with stdout on /dev/null, stderr on `stderr_fd` and
// `sync_fd` as fd 3 (conmon's _OCI_SYNCPIPE).
absl::StatusOr<pid_t> SpawnConmon(const std::string& bin, const std::vector<std::string>& argv,
                                  int stderr_fd, int sync_fd) {
  std::vector<std::string> args = argv;
  args[0] = bin;
  SpawnOptions o;
  o.stderr_fd = stderr_fd;
  o.extra_fds = {sync_fd};
  o.new_session = true;
  o.extra_env = {"_OCI_SYNCPIPE=3"};
  return Spawn(args, o);
}

// Reads one '\n'-terminated line from `fd` within `timeout`. Returns what was read before EOF
// (possibly empty) when the writer closes first; DeadlineExceeded on timeout.
absl::StatusOr<std::string> ReadLine(int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return absl::DeadlineExceededError("timed out");
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    if (rc == 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoStatus(errno, "read");
    }
    if (n == 0) return line;
    line.append(buf, n);
    if (auto nl = line.find('\n'); nl != std::string::npos) return line.substr(0, nl);
  }
}

// Reads a PID file ("1234" or "1234\n"); 0 when missing or malformed.
pid_t ReadPidFile(const std::string& path) {
  auto data = ReadFile(path);
  int pid = 0;
  if (!data.ok() || !absl::SimpleAtoi(Trim(*data), &pid)) return 0;
  return pid;
}

// True when `pid` is alive and is a conmon (guards against PID reuse).
bool IsConmon(pid_t pid) {
  if (pid <= 0) return false;
  auto comm = ReadFile(absl::StrCat("/proc/", pid, "/comm"));
  return comm.ok() && Trim(*comm) == "conmon";
}

}  // namespace

OciRuntime::OciRuntime(OciRuntimeOptions opts) : opts_(std::move(opts)) {}

// Every runtime command line starts with the binary and the global --root flag.
static std::vector<std::string> RuntimeArgv(const OciRuntimeOptions& o,
                                            std::initializer_list<std::string> args) {
  std::vector<std::string> argv = {o.runtime_path};
  if (!o.runtime_root.empty()) argv.insert(argv.end(), {"--root", o.runtime_root});
  argv.insert(argv.end(), args);
  return argv;
}

absl::Status OciRuntime::Ready() const {
  for (const std::string& bin : {opts_.runtime_path, opts_.conmon_path}) {
    auto path = LookPath(bin);
    if (!path.ok()) return absl::FailedPreconditionError(absl::StrCat(bin, ": not found"));
    auto r = Run({*path, "--version"}, "", std::chrono::seconds(10));
    if (!r.ok() || r->exit_code != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          *path, " --version failed: ", r.ok() ? RuntimeMessage(r->err) : r.status().ToString()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CreateResult> OciRuntime::Create(const CreateOptions& opts) {
  const std::string what = absl::StrCat("create container ", opts.id);
  if (opts.id.empty() || opts.id.find('/') != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(what, ": invalid container id"));
  if (opts.bundle.empty() || opts.exit_dir.empty() || opts_.conmon_state_dir.empty())
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": bundle, exit_dir and conmon_state_dir are required"));
  ASSIGN_OR_RETURN(std::string conmon, LookPath(opts_.conmon_path));
  ASSIGN_OR_RETURN(std::string runtime, LookPath(opts_.runtime_path));
  if (runtime[0] != '/') {  // conmon needs an absolute path
    char* abs = realpath(runtime.c_str(), nullptr);
    if (abs) runtime = abs;
    free(abs);
  }

  // Per-container conmon files; attach sockets get their own short directory because conmon
  // creates <socket dir>/<id> as a symlink to the bundle (sun_path is limited to 108 bytes).
  const std::string state = JoinPath(opts_.conmon_state_dir, opts.id);
  const std::string socket_dir = JoinPath(opts_.conmon_state_dir, "attach");
  RETURN_IF_ERROR(Annotate(MkdirAll(state), what));
  RETURN_IF_ERROR(Annotate(MkdirAll(socket_dir), what));
  RETURN_IF_ERROR(Annotate(MkdirAll(opts.exit_dir), what));
  if (auto slash = opts.log_path.rfind('/'); slash != std::string::npos && slash > 0)
    RETURN_IF_ERROR(Annotate(MkdirAll(opts.log_path.substr(0, slash)), what));
  const std::string conmon_pidfile = JoinPath(state, "conmon.pid");
  const std::string container_pidfile = JoinPath(state, "pidfile");
  const std::string stderr_path = JoinPath(state, "conmon.stderr");
  for (const std::string& stale : {conmon_pidfile, container_pidfile, JoinPath(socket_dir, opts.id),
                                   JoinPath(opts.exit_dir, opts.id)}) {
    unlink(stale.c_str());
  }

  std::vector<std::string> argv = {
      conmon,
      "--api-version",
      "1",
      "-c",
      opts.id,
      "-u",
      opts.id,
      "-n",
      opts.id,
      "-r",
      runtime,
      "-b",
      opts.bundle,
      "-p",
      container_pidfile,
      "-P",
      conmon_pidfile,
      "-l",
      opts.log_path.empty() ? std::string("none:") : absl::StrCat("k8s-file:", opts.log_path),
      "--exit-dir",
      opts.exit_dir,
      "--socket-dir-path",
      socket_dir,
      "--log-level",
      "error"};
  if (!opts_.runtime_root.empty())
    argv.push_back(absl::StrCat("--runtime-arg=--root=", opts_.runtime_root));
  if (opts.stdin_open) argv.push_back("--stdin");
  if (opts.stdin_open && !opts.stdin_once) argv.push_back("--leave-stdin-open");
  if (opts.tty) argv.push_back("--terminal");

  Fd err_file(open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (err_file.fd < 0) return ErrnoStatus(errno, absl::StrCat(what, ": open ", stderr_path));
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0) return ErrnoStatus(errno, absl::StrCat(what, ": pipe"));
  Fd sync_r(sync[0]), sync_w(sync[1]);
  ASSIGN_OR_RETURN(pid_t parent, SpawnConmon(conmon, argv, err_file.fd, sync_w.fd));
  sync_w.Reset();
  err_file.Reset();

  // Undo a failed create: no conmon, no runtime state left behind.
  auto cleanup = [&] {
    pid_t cpid = ReadPidFile(conmon_pidfile);
    if (IsConmon(cpid)) kill(cpid, SIGKILL);
    Run(RuntimeArgv(opts_, {"delete", "--force", opts.id}), "", kCommandTimeout).IgnoreError();
  };
  auto conmon_stderr = [&] {
    auto e = ReadFile(stderr_path);
    std::string msg = e.ok() ? Trim(*e) : "";
    return msg.empty() ? std::string("no message") : msg;
  };

  // The spawned conmon exits as soon as it has daemonized (or failed to start).
  int status = 0;
  while (waitpid(parent, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    cleanup();
    return absl::InternalError(
        absl::StrCat(what, ": conmon failed (status ", status, "): ", conmon_stderr()));
  }

  auto line = ReadLine(sync_r.fd, kCreateTimeout);
  if (!line.ok()) {
    cleanup();
    return Annotate(line.status(), absl::StrCat(what, ": waiting for conmon"));
  }
  if (line->empty()) {
    cleanup();
    return absl::InternalError(
        absl::StrCat(what, ": conmon exited without a result: ", conmon_stderr()));
  }
  auto j = nlohmann::json::parse(*line, nullptr, false);
  const char* key = j.is_object() && j.contains("data") ? "data" : "pid";
  if (j.is_discarded() || !j.is_object() || !j.contains(key) || !j[key].is_number_integer()) {
    cleanup();
    return absl::InternalError(absl::StrCat(what, ": bad message from conmon: ", *line));
  }
  int pid = j[key].get<int>();
  if (pid <= 0) {
    std::string msg = j.contains("message") && j["message"].is_string()
                          ? RuntimeMessage(j["message"].get<std::string>())
                          : std::string("no message");
    cleanup();
    return absl::InternalError(absl::StrCat(what, ": ", runtime, " create failed: ", msg));
  }
  CreateResult r;
  r.pid = pid;
  r.conmon_pid = ReadPidFile(conmon_pidfile);
  unlink(stderr_path.c_str());
  return r;
}

absl::Status OciRuntime::Start(const std::string& id) {
  ASSIGN_OR_RETURN(RunResult r, Run(RuntimeArgv(opts_, {"start", id}), "", kCommandTimeout));
  if (r.exit_code == 0) return absl::OkStatus();
  std::string msg = RuntimeMessage(r.err);
  std::string text = absl::StrCat("start container ", id, ": ", msg);
  if (IsNotExist(msg)) return absl::NotFoundError(text);
  return absl::InternalError(text);
}

absl::Status OciRuntime::Kill(const std::string& id, int signal, bool all) {
  std::vector<std::string> argv = RuntimeArgv(opts_, {"kill"});
  if (all) argv.push_back("--all");
  argv.insert(argv.end(), {id, std::to_string(signal)});
  ASSIGN_OR_RETURN(RunResult r, Run(argv, "", kCommandTimeout));
  if (r.exit_code == 0) return absl::OkStatus();
  std::string msg = RuntimeMessage(r.err);
  if (absl::StrContains(msg, "not running") || absl::StrContains(msg, "process already finished") ||
      IsNotExist(msg)) {
    return absl::OkStatus();
  }
  return absl::InternalError(
      absl::StrCat("kill container ", id, " with signal ", signal, ": ", msg));
}

absl::Status OciRuntime::Delete(const std::string& id) {
  ASSIGN_OR_RETURN(RunResult r,
                   Run(RuntimeArgv(opts_, {"delete", "--force", id}), "", kCommandTimeout));
  std::string msg = RuntimeMessage(r.err);
  if (r.exit_code != 0 && !IsNotExist(msg))
    return absl::InternalError(absl::StrCat("delete container ", id, ": ", msg));
  // conmon's per-container files are useless once the runtime forgot the container.
  if (!opts_.conmon_state_dir.empty() && !id.empty() && id.find('/') == std::string::npos) {
    unlink(JoinPath(JoinPath(opts_.conmon_state_dir, "attach"), id).c_str());
    RETURN_IF_ERROR(Annotate(RemoveAll(JoinPath(opts_.conmon_state_dir, id)),
                             absl::StrCat("delete container ", id)));
  }
  return absl::OkStatus();
}

absl::StatusOr<OciState> OciRuntime::State(const std::string& id) {
  ASSIGN_OR_RETURN(RunResult r, Run(RuntimeArgv(opts_, {"state", id}), "", kCommandTimeout));
  if (r.exit_code != 0) {
    std::string msg = RuntimeMessage(r.err);
    std::string text = absl::StrCat("state of container ", id, ": ", msg);
    if (IsNotExist(msg)) return absl::NotFoundError(text);
    return absl::InternalError(text);
  }
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("status") || !j["status"].is_string())
    return absl::InternalError(
        absl::StrCat("state of container ", id, ": bad runtime output: ", r.out));
  OciState s;
  s.status = j["status"].get<std::string>();
  if (j.contains("pid") && j["pid"].is_number_integer()) s.pid = j["pid"].get<int>();
  return s;
}

absl::StatusOr<ExecResult> OciRuntime::ExecSync(const std::string& id,
                                                const std::vector<std::string>& cmd,
                                                std::chrono::milliseconds timeout) {
  const std::string what = absl::StrCat("exec in container ", id);
  if (cmd.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty command"));
  ASSIGN_OR_RETURN(OciState st, State(id));
  if (st.status != "running")
    return absl::FailedPreconditionError(absl::StrCat(what, ": container is ", st.status));

  // The exec'd process is not a child of runc once started: remember its PID to kill it on
  // timeout (killing `runc exec` alone would leave it running in the container).
  static std::atomic<uint64_t> counter{0};
  std::string dir =
      opts_.conmon_state_dir.empty() ? std::string("/tmp") : JoinPath(opts_.conmon_state_dir, id);
  RETURN_IF_ERROR(Annotate(MkdirAll(dir), what));
  std::string pid_file = JoinPath(dir, absl::StrCat("exec-", getpid(), "-", counter++, ".pid"));
  std::vector<std::string> argv = RuntimeArgv(opts_, {"exec", "--pid-file", pid_file, id});
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  // On timeout the exec'd process is killed first, so that `runc exec` (its parent) reaps it
  // and exits: killing runc first would leave a zombie in the container (reparented to an
  // init that need not reap it). `runc exec` itself is killed only if it hangs afterwards.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false, fired = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> l(mu);
    if (cv.wait_for(l, timeout, [&] { return done; })) return;
    fired = true;
    pid_t pid = ReadPidFile(pid_file);
    if (pid > 0) kill(pid, SIGKILL);
  });
  auto r = Run(argv, "", timeout + std::chrono::seconds(10));
  {
    std::lock_guard<std::mutex> l(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  if (!r.ok()) {
    unlink(pid_file.c_str());
    return Annotate(r.status(), what);
  }
  if (r->timed_out) {
    pid_t pid = ReadPidFile(pid_file);
    if (pid > 0) kill(pid, SIGKILL);
  }
  unlink(pid_file.c_str());
  ExecResult out;
  out.timed_out = fired || r->timed_out;
  out.exit_code = out.timed_out ? -1 : r->exit_code;
  out.stdout_data = std::move(r->out);
  out.stderr_data = std::move(r->err);
  return out;
}

absl::Status OciRuntime::UpdateResources(const std::string& id, const std::string& resources_json) {
  ASSIGN_OR_RETURN(RunResult r, Run(RuntimeArgv(opts_, {"update", "--resources", "-", id}),
                                    resources_json, kCommandTimeout));
  if (r.exit_code == 0) return absl::OkStatus();
  std::string msg = RuntimeMessage(r.err);
  std::string text = absl::StrCat("update resources of container ", id, ": ", msg);
  if (IsNotExist(msg)) return absl::NotFoundError(text);
  return absl::InternalError(text);
}

absl::StatusOr<int> OciRuntime::ReadExitFile(const std::string& exit_dir, const std::string& id) {
  std::string path = JoinPath(exit_dir, id);
  auto data = ReadFile(path);
  if (!data.ok()) {
    if (absl::IsNotFound(data.status()))
      return absl::NotFoundError(absl::StrCat("container ", id, " has not exited (no ", path, ")"));
    return data.status();
  }
  std::string text = Trim(*data);
  // conmon creates the file and then writes it: an empty file is one being written.
  if (text.empty()) return absl::NotFoundError(absl::StrCat("exit file ", path, " is still empty"));
  int code = 0;
  if (!absl::SimpleAtoi(text, &code))
    return absl::DataLossError(
        absl::StrCat("exit file ", path, ": not an exit code: \"", text, "\""));
  return code;
}

absl::Status OciRuntime::ReopenLog(const std::string& bundle) {
  const std::string ctl = JoinPath(bundle, "ctl");
  // O_NONBLOCK: opening a fifo for writing fails with ENXIO instead of blocking when no
  // conmon has it open for reading.
  int fd = open(ctl.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENXIO || errno == ENOENT) {
      return absl::FailedPreconditionError("reopen log: no conmon listens on " + ctl);
    }
    return ErrnoStatus(errno, "reopen log: open " + ctl);
  }
  // conmon's control messages are "<type> <height> <width>\n"; type 2 = reopen the log.
  static constexpr char kReopenLogs[] = "2 0 0\n";
  ssize_t n = write(fd, kReopenLogs, sizeof(kReopenLogs) - 1);
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(sizeof(kReopenLogs) - 1))
    return ErrnoStatus(err, "reopen log: write " + ctl);
  return absl::OkStatus();
}

}  // namespace berth::cri::oci
