#include "cri/runtime/native_exec.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/cgroup_mounts.h"
#include "base/file.h"
#include "base/status.h"

#include <signal.h>
#include <sys/wait.h>

namespace berth::cri::runtime {
namespace {

// The message that carries the pty master from the exec'd child to berth: one byte and room
// for one SCM_RIGHTS descriptor. Points into itself: not copyable.
struct FdMessage {
  char byte = 'm';
  char cbuf[CMSG_SPACE(sizeof(int))] = {};
  struct iovec iov = {&byte, 1};
  struct msghdr msg = {};
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
};

using nlohmann::json;

constexpr const char* kCapNames[] = {"CAP_CHOWN",
                                     "CAP_DAC_OVERRIDE",
                                     "CAP_DAC_READ_SEARCH",
                                     "CAP_FOWNER",
                                     "CAP_FSETID",
                                     "CAP_KILL",
                                     "CAP_SETGID",
                                     "CAP_SETUID",
                                     "CAP_SETPCAP",
                                     "CAP_LINUX_IMMUTABLE",
                                     "CAP_NET_BIND_SERVICE",
                                     "CAP_NET_BROADCAST",
                                     "CAP_NET_ADMIN",
                                     "CAP_NET_RAW",
                                     "CAP_IPC_LOCK",
                                     "CAP_IPC_OWNER",
                                     "CAP_SYS_MODULE",
                                     "CAP_SYS_RAWIO",
                                     "CAP_SYS_CHROOT",
                                     "CAP_SYS_PTRACE",
                                     "CAP_SYS_PACCT",
                                     "CAP_SYS_ADMIN",
                                     "CAP_SYS_BOOT",
                                     "CAP_SYS_NICE",
                                     "CAP_SYS_RESOURCE",
                                     "CAP_SYS_TIME",
                                     "CAP_SYS_TTY_CONFIG",
                                     "CAP_MKNOD",
                                     "CAP_LEASE",
                                     "CAP_AUDIT_WRITE",
                                     "CAP_AUDIT_CONTROL",
                                     "CAP_SETFCAP",
                                     "CAP_MAC_OVERRIDE",
                                     "CAP_MAC_ADMIN",
                                     "CAP_SYSLOG",
                                     "CAP_WAKE_ALARM",
                                     "CAP_BLOCK_SUSPEND",
                                     "CAP_AUDIT_READ",
                                     "CAP_PERFMON",
                                     "CAP_BPF",
                                     "CAP_CHECKPOINT_RESTORE"};

const std::map<std::string, int>& RlimitNames() {
  static const auto* m = new std::map<std::string, int>{{"RLIMIT_AS", RLIMIT_AS},
                                                        {"RLIMIT_CORE", RLIMIT_CORE},
                                                        {"RLIMIT_CPU", RLIMIT_CPU},
                                                        {"RLIMIT_DATA", RLIMIT_DATA},
                                                        {"RLIMIT_FSIZE", RLIMIT_FSIZE},
                                                        {"RLIMIT_LOCKS", RLIMIT_LOCKS},
                                                        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
                                                        {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
                                                        {"RLIMIT_NICE", RLIMIT_NICE},
                                                        {"RLIMIT_NOFILE", RLIMIT_NOFILE},
                                                        {"RLIMIT_NPROC", RLIMIT_NPROC},
                                                        {"RLIMIT_RSS", RLIMIT_RSS},
                                                        {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
                                                        {"RLIMIT_RTTIME", RLIMIT_RTTIME},
                                                        {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
                                                        {"RLIMIT_STACK", RLIMIT_STACK}};
  return *m;
}

absl::StatusOr<uint64_t> CapMask(const json& caps, const char* set) {
  uint64_t mask = 0;
  auto it = caps.find(set);
  if (it == caps.end() || it->is_null()) return mask;
  for (const auto& n : *it) {
    std::string name = n.is_string() ? n.get<std::string>() : "";
    bool found = false;
    for (size_t i = 0; i < std::size(kCapNames); ++i) {
      if (name == kCapNames[i]) {
        mask |= uint64_t{1} << i;
        found = true;
      }
    }
    if (!found) return absl::InvalidArgumentError(absl::StrCat("unknown capability ", name));
  }
  return mask;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool Present(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

// cgroup.procs of every hierarchy the process `pid` is in, from /proc/<pid>/cgroup and
// berth's cgroup mounts (base/cgroup_mounts.h).
absl::StatusOr<std::vector<std::string>> CgroupProcsFiles(pid_t pid) {
  std::map<std::string, std::string> v1;  // one controller (or name=x) -> mount point
  std::string v2;
  for (const CgroupMount& m : HostCgroupMounts()) {
    if (m.root != "/") continue;  // hierarchy roots only
    if (m.v2) {
      v2 = m.mount_point;
    } else {
      for (const auto& c : m.controllers) v1.emplace(c, m.mount_point);
    }
  }
  ASSIGN_OR_RETURN(std::string cg, ReadFile(absl::StrCat("/proc/", pid, "/cgroup")));
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (absl::string_view line : absl::StrSplit(cg, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    std::string mnt;
    if (f[0] == "0" && f[1].empty()) {
      mnt = v2;
    } else {
      for (absl::string_view c : absl::StrSplit(f[1], ',', absl::SkipEmpty())) {
        if (auto it = v1.find(std::string(c)); it != v1.end()) mnt = it->second;
      }
    }
    if (mnt.empty()) continue;  // a hierarchy berth does not see mounted
    std::string file = absl::StrCat(mnt, f[2] == "/" ? "" : std::string(f[2]), "/cgroup.procs");
    if (seen.insert(file).second) out.push_back(file);
  }
  return out;
}

// ---- in the children (CLONE_VM, berth's memory): async-signal-safe calls only ----

// Writes "exec failed: unable to start container process: <what>: <errno text>\n" to fd 2
// and exits 255, as runc does.
[[noreturn]] void Die(const char* what, int err) {
  const char* pre = "exec failed: unable to start container process: ";
  (void)!write(2, pre, strlen(pre));
  (void)!write(2, what, strlen(what));
  if (err != 0) {
    (void)!write(2, ": ", 2);
    const char* e = strerrordesc_np(err);
    if (e != nullptr) (void)!write(2, e, strlen(e));
  }
  (void)!write(2, "\n", 1);
  _exit(255);
}

int WriteDecimal(int fd, long v) {
  char buf[24];
  int i = sizeof(buf);
  bool neg = v < 0;
  unsigned long u = neg ? static_cast<unsigned long>(-v) : static_cast<unsigned long>(v);
  do {
    buf[--i] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (neg) buf[--i] = '-';
  return static_cast<int>(write(fd, buf + i, sizeof(buf) - i));
}

struct ChildArgs {
  const NativeExecPlan* plan;
  int pidfd, pid_pipe, null_fd;
  int stdio[3];
  bool tty;
  int console_sock;  // tty: the command sends the master of its new pty here
  const int* cg_fds;
  size_t n_cg;
  const char* const* argv;
  const char* const* envp;
  const char* const* paths;
  int last_cap;
  char* command_stack_top;  // the command's stack until it execs (CLONE_VM)
  sigset_t old_mask;        // berth's thread's signal mask
};

// The command's process, in the container's namespaces and cgroups.
[[noreturn]] void RunCommand(const ChildArgs& a) {
  const NativeExecPlan& p = *a.plan;
  int stdio[3] = {a.stdio[0], a.stdio[1], a.stdio[2]};
  if (a.tty) {
    // A pty of the container's devpts (as runc's console), its master sent to berth.
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) Die("open /dev/ptmx in the container", errno);
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) Die("unlockpt", errno);
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) Die("open the pty slave", errno);
    FdMessage m;
    struct cmsghdr* cm = CMSG_FIRSTHDR(&m.msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &master, sizeof(int));
    if (sendmsg(a.console_sock, &m.msg, MSG_NOSIGNAL) < 0) Die("send the pty master", errno);
    close(master);
    stdio[0] = stdio[1] = stdio[2] = slave;
  }
  // Stdio first, so that errors are reported on the command's stderr.
  int tmp[3];
  for (int i = 0; i < 3; ++i) {
    int src = stdio[i] >= 0 ? stdio[i] : a.null_fd;
    tmp[i] = fcntl(src, F_DUPFD_CLOEXEC, 10);
    if (tmp[i] < 0) _exit(255);
  }
  for (int i = 0; i < 3; ++i) {
    if (dup2(tmp[i], i) < 0) _exit(255);
  }
  if (setsid() < 0) Die("setsid", errno);
  if (a.tty && ioctl(0, TIOCSCTTY, 0) < 0) Die("setctty", errno);
  for (const auto& r : p.rlimits) {
    struct rlimit rl = {static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
    if (setrlimit(r.resource, &rl) < 0) Die("error setting rlimit", errno);
  }
  if (p.has_umask) umask(p.umask);
  bool cwd_done = chdir(p.cwd.c_str()) == 0;
  for (int c = 0; c <= a.last_cap; ++c) {
    if (c < 64 && (p.cap_bounding >> c & 1)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) Die("drop bounding set", errno);
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) Die("set keep caps", errno);
  // Raw system calls: glibc's wrappers would try to sync berth's (absent) other threads.
  if (syscall(SYS_setgroups, p.groups.size(), p.groups.data()) < 0) Die("setgroups", errno);
  if (syscall(SYS_setresgid, p.gid, p.gid, p.gid) < 0) Die("setgid", errno);
  if (syscall(SYS_setresuid, p.uid, p.uid, p.uid) < 0) Die("setuid", errno);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) Die("clear keep caps", errno);
  if (!cwd_done && chdir(p.cwd.c_str()) < 0) {
    Die("chdir to cwd set in config.json failed", errno);
  }
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(p.cap_effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(p.cap_permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(p.cap_inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) < 0) Die("capset", errno);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
    Die("clear ambient capabilities", errno);
  }
  for (int c = 0; c < 64 && c <= a.last_cap; ++c) {
    if ((p.cap_ambient >> c & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) {
      Die("raise ambient capability", errno);
    }
  }
  if (p.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) Die("set no_new_privs", errno);
  // Default dispositions and no signal blocked, as runc's (all were blocked around the
  // clones, so that no berth handler runs on berth's memory in these children).
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Nothing of berth's but stdio reaches the command.
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) Die("close_range", errno);
  int err = ENOENT;
  bool denied = false;
  for (const char* const* path = a.paths; *path != nullptr; ++path) {
    execve(*path, const_cast<char* const*>(a.argv), const_cast<char* const*>(a.envp));
    if (errno == EACCES) denied = true;
    if (errno != ENOENT && errno != ENOTDIR && errno != EACCES) {
      err = errno;
      break;
    }
    err = errno;
  }
  if (err == ENOENT || err == ENOTDIR) {
    if (denied) Die(p.not_found_msg.c_str(), EACCES);
    Die(p.not_found_msg.c_str(), 0);
  }
  Die(p.argv[0].c_str(), err);
}

int CommandEntry(void* arg) { RunCommand(*static_cast<const ChildArgs*>(arg)); }

// The intermediate child: joins cgroups and namespaces, forks the command as berth's child,
// reports its PID on the pipe and exits.
[[noreturn]] void RunIntermediate(const ChildArgs& a) {
  const NativeExecPlan& p = *a.plan;
  pid_t self = getpid();
  for (size_t i = 0; i < a.n_cg; ++i) {
    if (WriteDecimal(a.cg_fds[i], self) < 0) _exit(2);
  }
  if (p.has_oom_score_adj) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      // Lowering needs CAP_SYS_RESOURCE, which berth may lack: clamped, as berth's runc path.
      (void)WriteDecimal(fd, p.oom_score_adj);
      close(fd);
    }
  }
  if (setns(a.pidfd, CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP |
                         CLONE_NEWNS) < 0) {
    _exit(3);
  }
  // The command: berth's child (CLONE_PARENT), sharing memory until it execs (CLONE_VM |
  // CLONE_VFORK: no copy of berth's page tables), then on its own.
  int pid = clone(CommandEntry, a.command_stack_top, CLONE_VM | CLONE_VFORK | CLONE_PARENT,
                  const_cast<ChildArgs*>(&a));
  if (pid < 0) _exit(4);
  if (WriteDecimal(a.pid_pipe, pid) < 0) _exit(5);
  _exit(0);
}

int IntermediateEntry(void* arg) { RunIntermediate(*static_cast<const ChildArgs*>(arg)); }

}  // namespace

absl::StatusOr<NativeExecPlan> PrepareNativeExec(const json& config, pid_t init_pid,
                                                 const std::vector<std::string>& args, bool tty) {
  if (args.empty()) return absl::InvalidArgumentError("native exec: no command");
  const json process = config.value("process", json::object());
  const json linux = config.value("linux", json::object());
  auto unsupported = [](const std::string& what) {
    return absl::UnimplementedError(absl::StrCat("native exec: ", what));
  };
  if (!Str(process, "apparmorProfile").empty()) return unsupported("AppArmor profile");
  if (!Str(process, "selinuxLabel").empty()) return unsupported("SELinux label");
  if (Present(process, "scheduler") || Present(process, "ioPriority")) {
    return unsupported("scheduler or I/O priority");
  }
  if (Present(linux, "seccomp")) return unsupported("seccomp filter");
  if (Present(linux, "personality")) return unsupported("personality");
  for (const auto& ns : linux.value("namespaces", json::array())) {
    if (ns.value("type", "") == "user" || ns.value("type", "") == "time") {
      return unsupported(absl::StrCat(ns.value("type", ""), " namespace"));
    }
  }
  NativeExecPlan p;
  p.init_pid = init_pid;
  ASSIGN_OR_RETURN(p.cgroup_procs, CgroupProcsFiles(init_pid));
  p.argv = args;
  for (const auto& e : process.value("env", json::array())) {
    if (e.is_string()) p.envp.push_back(e.get<std::string>());
  }
  if (tty) p.envp.push_back("TERM=xterm");
  std::string cwd = Str(process, "cwd");
  p.cwd = cwd.empty() ? std::string("/") : std::move(cwd);
  const json user = process.value("user", json::object());
  p.uid = user.value("uid", 0u);
  p.gid = user.value("gid", 0u);
  for (const auto& g : user.value("additionalGids", json::array())) {
    if (g.is_number_unsigned()) p.groups.push_back(g.get<gid_t>());
  }
  if (Present(user, "umask")) {
    p.has_umask = true;
    p.umask = user["umask"].get<mode_t>();
  }
  p.no_new_privs = process.value("noNewPrivileges", false);
  if (Present(process, "oomScoreAdj")) {
    p.has_oom_score_adj = true;
    p.oom_score_adj = process["oomScoreAdj"].get<int>();
  }
  const json caps = process.value("capabilities", json::object());
  ASSIGN_OR_RETURN(p.cap_bounding, CapMask(caps, "bounding"));
  ASSIGN_OR_RETURN(p.cap_effective, CapMask(caps, "effective"));
  ASSIGN_OR_RETURN(p.cap_permitted, CapMask(caps, "permitted"));
  ASSIGN_OR_RETURN(p.cap_inheritable, CapMask(caps, "inheritable"));
  ASSIGN_OR_RETURN(p.cap_ambient, CapMask(caps, "ambient"));
  for (const auto& r : process.value("rlimits", json::array())) {
    auto it = RlimitNames().find(r.value("type", ""));
    if (it == RlimitNames().end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown rlimit ", r.value("type", "")));
    }
    p.rlimits.push_back({it->second, r.value("soft", uint64_t{0}), r.value("hard", uint64_t{0})});
  }
  // argv[0] as Go's exec.LookPath in runc init: a name with '/' as is, else each PATH entry
  // of the process's environment.
  const std::string& name = args[0];
  if (name.find('/') != std::string::npos) {
    p.exec_paths.push_back(name);
    p.not_found_msg = absl::StrCat("exec: \"", name, "\": stat ", name);
  } else {
    std::string path_env;
    for (const auto& e : p.envp) {
      if (e.rfind("PATH=", 0) == 0) path_env = e.substr(5);
    }
    for (absl::string_view dir : absl::StrSplit(path_env, ':')) {
      p.exec_paths.push_back(absl::StrCat(dir.empty() ? "." : dir, "/", name));
    }
    p.not_found_msg = absl::StrCat("exec: \"", name, "\": executable file not found in $PATH");
  }
  return p;
}

absl::StatusOr<pid_t> StartNativeExec(const NativeExecPlan& plan, int stdin_fd, int stdout_fd,
                                      int stderr_fd, bool tty, int* pty_master) {
  std::vector<int> fds;  // closed on return
  auto close_all = [&] {
    for (int fd : fds) close(fd);
  };
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, plan.init_pid, 0));
  if (pidfd < 0) {
    return ErrnoStatus(errno, absl::StrCat("native exec: pidfd of container init ", plan.init_pid));
  }
  fds.push_back(pidfd);
  std::vector<int> cg_fds;
  for (const auto& f : plan.cgroup_procs) {
    int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      absl::Status st = ErrnoStatus(errno, absl::StrCat("native exec: open ", f));
      close_all();
      for (int c : cg_fds) close(c);
      return st;
    }
    cg_fds.push_back(fd);
  }
  for (int c : cg_fds) fds.push_back(c);
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) {
    close_all();
    return ErrnoStatus(errno, "native exec: /dev/null");
  }
  fds.push_back(null_fd);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    close_all();
    return ErrnoStatus(errno, "native exec: pipe");
  }
  fds.push_back(pipefd[0]);
  int console[2] = {-1, -1};
  if (tty) {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, console) != 0) {
      close(pipefd[1]);
      close_all();
      return ErrnoStatus(errno, "native exec: socketpair");
    }
    fds.push_back(console[0]);
    fds.push_back(console[1]);
  }
  int last_cap = CAP_LAST_CAP;
  if (auto s = ReadFile("/proc/sys/kernel/cap_last_cap"); s.ok()) {
    int v = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*s), &v)) last_cap = v;
  }
  std::vector<const char*> argv, envp, paths;
  for (const auto& s : plan.argv) argv.push_back(s.c_str());
  argv.push_back(nullptr);
  for (const auto& s : plan.envp) envp.push_back(s.c_str());
  envp.push_back(nullptr);
  for (const auto& s : plan.exec_paths) paths.push_back(s.c_str());
  paths.push_back(nullptr);
  // Stacks of the two children, which share berth's memory (CLONE_VM) until they exit or exec.
  constexpr size_t kStack = 256 * 1024;
  std::vector<char> stacks(2 * kStack);
  ChildArgs a{&plan,
              pidfd,
              pipefd[1],
              null_fd,
              {stdin_fd, stdout_fd, stderr_fd},
              tty,
              console[1],
              cg_fds.data(),
              cg_fds.size(),
              argv.data(),
              envp.data(),
              paths.data(),
              last_cap,
              stacks.data() + 2 * kStack,
              {}};
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &a.old_mask);
  // CLONE_VFORK: returns once the intermediate child exited (after the command exec'd or
  // failed), so the stacks and everything `a` points to stay valid while they are used.
  pid_t mid =
      clone(IntermediateEntry, stacks.data() + kStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
  int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &a.old_mask, nullptr);
  close(pipefd[1]);
  if (mid < 0) {
    close_all();
    return ErrnoStatus(fork_err, "native exec: clone");
  }
  int st = 0;
  while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
  }
  std::string got;
  char buf[32];
  for (;;) {
    ssize_t n = read(pipefd[0], buf, sizeof(buf));
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  int master = -1;
  if (tty) {
    FdMessage m;
    if (recvmsg(console[0], &m.msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) > 0) {
      struct cmsghdr* cm = CMSG_FIRSTHDR(&m.msg);
      if (cm != nullptr && cm->cmsg_type == SCM_RIGHTS) memcpy(&master, CMSG_DATA(cm), sizeof(int));
    }
  }
  close_all();
  int pid = 0;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !absl::SimpleAtoi(got, &pid) || pid <= 0) {
    static const char* kSteps[] = {"",
                                   "",
                                   "join cgroups",
                                   "join namespaces (setns)",
                                   "fork in the PID namespace",
                                   "report the PID"};
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return absl::InternalError(absl::StrCat(
        "native exec: could not ", code >= 2 && code <= 5 ? kSteps[code] : "start the command",
        " (status ", st, ")"));
  }
  if (tty) {
    // None when the command failed before making its pty (its error went to berth's log).
    if (master < 0) master = open("/dev/null", O_RDWR | O_CLOEXEC);
    *pty_master = master;
  }
  return static_cast<pid_t>(pid);
}

}  // namespace berth::cri::runtime
