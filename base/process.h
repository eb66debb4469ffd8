// Child processes, started with posix_spawn (vfork semantics: never a fork() of the large
// berth process). Thread-safe; no global state except the inherited environment.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth {

// How to start a child.
struct SpawnOptions {
  // Full environment "K=V" entries; when unset the child inherits berth's environment.
  std::optional<std::vector<std::string>> env;
  // Extra "K=V" entries added to (or replacing in) the environment above.
  std::vector<std::string> extra_env;
  // Descriptors for the child's stdin/stdout/stderr; -1 means /dev/null.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Further descriptors handed to the child as fds 3, 4, ... in order (e.g. a sync pipe).
  // They may be O_CLOEXEC in berth: dup2 clears the flag in the child only, so concurrent
  // spawns never inherit them.
  std::vector<int> extra_fds;
  // Start the child in a new session (setsid), detached from berth's terminal/process group.
  bool new_session = false;
  // Working directory of the child; empty keeps berth's.
  std::string cwd;
};

// Starts argv[0] (looked up in PATH when it has no '/') and returns its PID. The caller owns
// the child and must reap it (waitpid). Errors: NotFound when the binary is missing.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& opts = {});

// Result of Run().
struct RunResult {
  int exit_code = -1;  // exit status, or 128+signal when killed by a signal
  std::string out;     // captured stdout
  std::string err;     // captured stderr
  bool timed_out = false;
};

// Runs argv to completion, feeding `input` on stdin and capturing stdout and stderr. After
// `timeout` the child gets SIGKILL and timed_out is set. A non-zero exit is not an error
// here: the caller inspects exit_code. Errors: spawn failures only.
absl::StatusOr<RunResult> Run(const std::vector<std::string>& argv, const std::string& input = "",
                              std::chrono::milliseconds timeout = std::chrono::minutes(2),
                              const SpawnOptions& opts = {});

// Like Run() but returns an error (with the command, exit code and stderr) unless it exits 0;
// the value is stdout.
absl::StatusOr<std::string> RunOk(const std::vector<std::string>& argv,
                                  const std::string& input = "",
                                  std::chrono::milliseconds timeout = std::chrono::minutes(2),
                                  const SpawnOptions& opts = {});

// Finds `name` in PATH (or returns it when it contains '/' and exists). NotFound otherwise.
absl::StatusOr<std::string> LookPath(const std::string& name);

}  // namespace berth
