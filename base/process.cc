#include "base/process.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

#include <csignal>
#include <sys/wait.h>

extern char** environ;

namespace berth {

absl::StatusOr<std::string> LookPath(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return name;
    return absl::NotFoundError(absl::StrCat("executable ", name, " not found"));
  }
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (absl::string_view dir : absl::StrSplit(p, ':')) {
    if (dir.empty()) continue;
    std::string full = absl::StrCat(dir, "/", name);
    struct stat st;
    if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(full.c_str(), X_OK) == 0)
      return full;
  }
  return absl::NotFoundError(absl::StrCat("executable ", name, " not found in PATH"));
}

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  if (argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  auto bin = LookPath(argv[0]);
  if (!bin.ok()) return bin.status();

  std::vector<std::string> env;
  if (opts.env) {
    env = *opts.env;
  } else {
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
  }
  for (const auto& kv : opts.extra_env) {
    std::string key = kv.substr(0, kv.find('='));
    std::erase_if(
        env, [&](const std::string& e) { return e.compare(0, key.size() + 1, key + "=") == 0; });
    env.push_back(kv);
  }
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  int fds[3] = {opts.stdin_fd, opts.stdout_fd, opts.stderr_fd};
  for (int i = 0; i < 3; ++i) {
    if (fds[i] >= 0) {
      posix_spawn_file_actions_adddup2(&fa, fds[i], i);
    } else {
      posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
  }
  for (size_t i = 0; i < opts.extra_fds.size(); ++i) {
    posix_spawn_file_actions_adddup2(&fa, opts.extra_fds[i], static_cast<int>(3 + i));
  }
  // Nothing else is inherited: a listening socket or pipe of berth held open by a conmon
  // (which outlives berth) would block a restarted berth from binding its ports again.
  posix_spawn_file_actions_addclosefrom_np(&fa, static_cast<int>(3 + opts.extra_fds.size()));
  if (!opts.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, opts.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (opts.new_session) flags |= POSIX_SPAWN_SETSID;
  posix_spawnattr_setflags(&attr, flags);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  pid_t pid;
  int rc = posix_spawn(&pid, bin->c_str(), &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoStatus(rc, absl::StrCat("spawn ", argv[0]));
  return pid;
}

absl::StatusOr<RunResult> Run(const std::vector<std::string>& argv, const std::string& input,
                              std::chrono::milliseconds timeout, const SpawnOptions& base_opts) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return ErrnoStatus(errno, "pipe");
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    return ErrnoStatus(errno, "pipe");
  }
  SpawnOptions opts = base_opts;
  opts.stdin_fd = in[0];
  opts.stdout_fd = out[1];
  opts.stderr_fd = err[1];
  auto pid = Spawn(argv, opts);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (!pid.ok()) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return pid.status();
  }
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  RunResult r;
  size_t written = 0;
  int in_fd = in[1];
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int open_fds = 2;
  int out_fd = out[0], err_fd = err[0];
  while (open_fds > 0) {
    struct pollfd p[3];
    int n = 0;
    if (out_fd >= 0) p[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) p[n++] = {err_fd, POLLIN, 0};
    if (in_fd >= 0) p[n++] = {in_fd, POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      kill(*pid, SIGKILL);
      r.timed_out = true;
      break;
    }
    int rc = poll(p, n, static_cast<int>(left));
    if (rc < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (!p[i].revents) continue;
      if (p[i].fd == in_fd) {
        ssize_t w = write(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += w;
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
        if (written >= input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      char buf[16384];
      ssize_t k = read(p[i].fd, buf, sizeof(buf));
      if (k > 0) {
        (p[i].fd == out_fd ? r.out : r.err).append(buf, k);
      } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(p[i].fd);
        if (p[i].fd == out_fd)
          out_fd = -1;
        else
          err_fd = -1;
        --open_fds;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    r.exit_code = 128 + WTERMSIG(status);
  return r;
}

absl::StatusOr<std::string> RunOk(const std::vector<std::string>& argv, const std::string& input,
                                  std::chrono::milliseconds timeout, const SpawnOptions& opts) {
  auto r = Run(argv, input, timeout, opts);
  if (!r.ok()) return r.status();
  if (r->timed_out)
    return absl::DeadlineExceededError(absl::StrCat(absl::StrJoin(argv, " "), ": timed out"));
  if (r->exit_code != 0) {
    std::string msg = r->err.empty() ? r->out : r->err;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return absl::InternalError(
        absl::StrCat(absl::StrJoin(argv, " "), ": exit status ", r->exit_code, ": ", msg));
  }
  return std::move(r->out);
}

}  // namespace berth
