#include "cri/pause/pause.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/process.h"
#include "base/status.h"

#include <signal.h>
#include <sys/wait.h>

extern char** environ;

namespace berth::cri::pause {
namespace {

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  void Reset() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

// Spawns berth-pause in a new session with stderr on `err_fd` and `ready_fd` as its fd 3.
absl::StatusOr<pid_t> SpawnPause(const std::string& bin, const std::vector<std::string>& argv,
                                 int err_fd, int ready_fd) {
  std::vector<std::string> args = argv;
  args[0] = bin;
  SpawnOptions o;
  o.stderr_fd = err_fd;
  o.extra_fds = {ready_fd};
  o.new_session = true;
  return Spawn(args, o);
}

std::string ReadAllNonBlocking(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// glibc 2.36's <sys/pidfd.h> lacks extern "C": call the system calls directly.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

absl::StatusOr<PauseProcess> StartPause(const PauseOptions& opts) {
  ASSIGN_OR_RETURN(std::string bin, LookPath(opts.binary));
  std::vector<std::string> argv = {bin};
  const bool userns = !opts.uid_map.empty() || !opts.gid_map.empty();
  if (userns && (opts.uid_map.empty() || opts.gid_map.empty())) {
    return absl::InvalidArgumentError(
        "start pause: a user namespace needs both uid and gid mappings");
  }
  if (userns) argv.push_back("--user");
  if (opts.net) argv.push_back("--net");
  if (opts.ipc) argv.push_back("--ipc");
  if (opts.uts) argv.push_back("--uts");
  if (opts.pid) argv.push_back("--pid");
  if (!opts.hostname.empty()) {
    if (!opts.uts)
      return absl::InvalidArgumentError("start pause: a hostname needs a new UTS namespace");
    argv.insert(argv.end(), {"--hostname", opts.hostname});
  }
  for (const auto& f : opts.cgroup_procs_files) argv.insert(argv.end(), {"--cgroup-procs", f});
  argv.insert(argv.end(), {"--ready-fd", "3"});

  int ready[2], err[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return ErrnoStatus(errno, "start pause: pipe");
  Fd ready_r(ready[0]), ready_w(ready[1]);
  if (pipe2(err, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus(errno, "start pause: pipe");
  Fd err_r(err[0]), err_w(err[1]);
  ASSIGN_OR_RETURN(pid_t pid, SpawnPause(bin, argv, err_w.fd, ready_w.fd));
  ready_w.Reset();
  err_w.Reset();

  // One byte on the ready pipe: namespaces exist. EOF: the pause exited (or closed it early).
  struct pollfd p = {ready_r.fd, POLLIN, 0};
  int rc;
  do {
    rc = poll(&p, 1, static_cast<int>(opts.ready_timeout.count()));
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) {
    KillAndReap(pid);
    return absl::DeadlineExceededError(
        absl::StrCat("start pause ", bin, ": not ready after ", opts.ready_timeout.count(), "ms"));
  }
  char b = 0;
  ssize_t n = rc > 0 ? read(ready_r.fd, &b, 1) : -1;
  if (n != 1) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string msg = ReadAllNonBlocking(err_r.fd);
    return absl::InternalError(absl::StrCat("start pause ", bin, ": exited before ready (status ",
                                            status, "): ", msg.empty() ? "no message" : msg));
  }

  PauseProcess out;
  out.pid = pid;
  std::string proc = absl::StrCat("/proc/", pid, "/ns/");
  if (userns) {
    // The parent user namespace's root writes the mappings (no setgroups restriction).
    for (const auto& [file, map] :
         {std::pair{"uid_map", &opts.uid_map}, std::pair{"gid_map", &opts.gid_map}}) {
      std::string path = absl::StrCat("/proc/", pid, "/", file);
      Fd f(open(path.c_str(), O_WRONLY | O_CLOEXEC));
      if (f.fd < 0 || write(f.fd, map->data(), map->size()) != static_cast<ssize_t>(map->size())) {
        absl::Status s =
            ErrnoStatus(errno, absl::StrCat("start pause: write ", path, " \"", *map, "\""));
        KillAndReap(pid);
        return s;
      }
    }
    out.user_ns = proc + "user";
  }
  if (opts.net) out.net_ns = proc + "net";
  if (opts.ipc) out.ipc_ns = proc + "ipc";
  if (opts.uts) out.uts_ns = proc + "uts";
  if (opts.pid) out.pid_ns = proc + "pid_for_children";
  return out;
}

absl::Status StopPause(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return absl::InvalidArgumentError(absl::StrCat("stop pause: bad pid ", pid));
  Fd pidfd(PidfdOpen(pid));
  if (pidfd.fd < 0) {
    if (errno == ESRCH) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("stop pause ", pid, ": pidfd_open"));
  }
  // pidfd becomes readable when the process exits (also when it is a zombie).
  auto wait_exit = [&](std::chrono::milliseconds t) {
    struct pollfd p = {pidfd.fd, POLLIN, 0};
    int rc;
    do {
      rc = poll(&p, 1, static_cast<int>(t.count()));
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
  };
  PidfdSendSignal(pidfd.fd, SIGTERM);
  if (!wait_exit(grace)) {
    PidfdSendSignal(pidfd.fd, SIGKILL);
    if (!wait_exit(std::chrono::seconds(10)))
      return absl::DeadlineExceededError(
          absl::StrCat("stop pause ", pid, ": still alive after SIGKILL"));
  }
  waitpid(pid, nullptr, WNOHANG);  // reap when it is our child; ECHILD otherwise
  return absl::OkStatus();
}

absl::Status BindNamespace(pid_t pid, const std::string& ns, const std::string& target) {
  std::string src = absl::StrCat("/proc/", pid, "/ns/", ns);
  std::string what = absl::StrCat("bind namespace ", src, " to ", target);
  struct stat src_st, dst_st;
  if (stat(src.c_str(), &src_st) != 0) return ErrnoStatus(errno, what);
  if (stat(target.c_str(), &dst_st) == 0 && dst_st.st_dev == src_st.st_dev &&
      dst_st.st_ino == src_st.st_ino) {
    return absl::OkStatus();  // already bound
  }
  auto slash = target.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    RETURN_IF_ERROR(Annotate(MkdirAll(target.substr(0, slash)), what));
  }
  int fd = open(target.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat(what, ": create"));
  close(fd);
  if (mount(src.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    int e = errno;
    unlink(target.c_str());
    return ErrnoStatus(e, absl::StrCat(what, ": mount"));
  }
  return absl::OkStatus();
}

absl::Status UnbindNamespace(const std::string& target) {
  // A path may carry stacked mounts after a crash mid-bind: unmount until none is left.
  while (umount2(target.c_str(), MNT_DETACH) == 0) {
  }
  if (errno != EINVAL && errno != ENOENT)
    return ErrnoStatus(errno, absl::StrCat("unbind namespace ", target, ": umount"));
  if (unlink(target.c_str()) != 0 && errno != ENOENT)
    return ErrnoStatus(errno, absl::StrCat("unbind namespace ", target, ": unlink"));
  return absl::OkStatus();
}

}  // namespace berth::cri::pause
