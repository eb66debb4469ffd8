// Native exec: starts a command in a running container without `runc exec` (two Go process
// starts, ~40 ms here), as crun does in C: berth forks a child that joins the container's
// cgroups (every v1 hierarchy and the unified one, from /proc/<init>/cgroup) and namespaces
// (setns on a pidfd of the container's init: ipc, uts, net, pid, mount, cgroup), which forks
// (CLONE_PARENT: berth's child) the command's process in the container's PID namespace. That
// one applies the container's OCI process (config.json "process"), as `runc exec` does
// without --process: a new session (controlling terminal when tty), rlimits, oom_score_adj,
// umask, cwd, capabilities (bounding, then user/groups with kept caps, then effective/
// permitted/inheritable and ambient), no_new_privs, env (plus TERM=xterm with a tty), and
// execs args[0] looked up in the process's PATH. A failure after the fork is reported as
// runc does: "exec failed: unable to start container process: ..." on the command's stderr
// and exit status 255.
//
// Cases the native path does not serve (PrepareNativeExec returns Unimplemented and the caller
// runs `runc exec`): a seccomp filter, an AppArmor profile or SELinux label, a user namespace,
// scheduler / ioPriority / personality settings.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {

// Everything the children need, computed up front (after fork only async-signal-safe calls).
struct NativeExecPlan {
  pid_t init_pid = 0;
  std::vector<std::string> cgroup_procs;  // cgroup.procs files to join
  std::vector<std::string> argv, envp;
  std::vector<std::string> exec_paths;  // candidate paths of argv[0], in PATH order
  std::string not_found_msg;            // message when none of exec_paths exists
  std::string cwd;
  uint32_t uid = 0, gid = 0;
  std::vector<gid_t> groups;
  bool has_umask = false;
  mode_t umask = 022;
  bool no_new_privs = false;
  bool has_oom_score_adj = false;
  int oom_score_adj = 0;
  uint64_t cap_bounding = 0, cap_effective = 0, cap_permitted = 0, cap_inheritable = 0,
           cap_ambient = 0;
  struct Rlimit {
    int resource;
    uint64_t soft, hard;
  };
  std::vector<Rlimit> rlimits;
};

// Plans an exec of `args` in the container of OCI config `config` (its config.json) whose
// init process is `init_pid`. `tty` adds TERM=xterm to the environment. Errors: Unimplemented
// when the native path cannot give `runc exec`'s semantics for this container (see above);
// InvalidArgument for an unknown capability/rlimit name; NotFound when init is gone.
absl::StatusOr<NativeExecPlan> PrepareNativeExec(const nlohmann::json& config, pid_t init_pid,
                                                 const std::vector<std::string>& args, bool tty);

// Starts a planned exec with the given stdio (-1: /dev/null). With `tty` the stdio fds are
// ignored: the command opens a pty of the container's devpts (/dev/ptmx, as runc's console),
// makes it its controlling terminal and stdio, and its master (owned by the caller, CLOEXEC)
// is stored in `*pty_master`. Returns the command's PID, a child of berth that the caller
// must reap. Returns once the command exec'd or failed (a few ms).
absl::StatusOr<pid_t> StartNativeExec(const NativeExecPlan& plan, int stdin_fd, int stdout_fd,
                                      int stderr_fd, bool tty, int* pty_master);

}  // namespace berth::cri::runtime
