// Drives an OCI runtime (runc by default, crun selectable) under conmon, CRI-O's container
// monitor: conmon runs `<runtime> create`, holds the container's stdio, writes the CRI log
// format to the log file and the exit code to `<exit_dir>/<id>` when the container exits.
// Containers outlive berth: nothing here is tied to berth's process lifetime.
// Thread safety: all methods may be called concurrently for different container IDs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::cri::oci {

struct OciRuntimeOptions {
  std::string runtime_path = "runc";   // OCI runtime binary (looked up in PATH)
  std::string runtime_root;            // --root for the runtime's state, e.g. /run/berth/runc
  std::string conmon_path = "conmon";  // conmon binary
  std::string conmon_state_dir;        // per-container conmon files live in <dir>/<id>/
  // Files conmon keeps (for attach/streaming): <conmon_state_dir>/<id>/conmon.pid (conmon's
  // PID), <conmon_state_dir>/<id>/pidfile (the container's), the attach socket
  // <conmon_state_dir>/attach/<id>/attach (a symlink to the bundle: the socket is
  // <bundle>/attach), and the fifos <bundle>/ctl and <bundle>/winsz.
};

// What Create needs for one container. The bundle dir holds config.json and rootfs (mounted).
struct CreateOptions {
  std::string id;
  std::string bundle;       // directory containing config.json
  std::string log_path;     // CRI log file (conmon -l k8s-file:<path>); empty: no log
  std::string exit_dir;     // conmon writes <exit_dir>/<id> with the exit code on exit
  bool stdin_open = false;  // keep stdin open (CRI ContainerConfig.stdin)
  // CRI ContainerConfig.stdin_once: the container's stdin is closed when the first attach
  // client closes its stdin (conmon without --leave-stdin-open); false keeps it open for the
  // next attach.
  bool stdin_once = false;
  bool tty = false;
};

// Outcome of Create.
struct CreateResult {
  pid_t pid = 0;         // the container's init process (host PID namespace)
  pid_t conmon_pid = 0;  // the conmon monitoring it
};

// `runc state` of a container.
struct OciState {
  std::string status;  // "created", "running", "stopped", "paused"
  pid_t pid = 0;
};

// Result of ExecSync.
struct ExecResult {
  int exit_code = -1;
  std::string stdout_data;
  std::string stderr_data;
  bool timed_out = false;
};

class OciRuntime {
 public:
  explicit OciRuntime(OciRuntimeOptions opts);

  // Checks that the runtime and conmon binaries exist and run. FailedPrecondition with the
  // missing binary's name otherwise (for CRI Status RuntimeReady=false).
  absl::Status Ready() const;

  // Creates the container (runtime create under a new conmon). Returns once the container
  // process exists in the "created" state. Errors carry the runtime's stderr.
  absl::StatusOr<CreateResult> Create(const CreateOptions& opts);
  // Starts a created container (`runtime start`).
  absl::Status Start(const std::string& id);
  // Sends `signal` to the container's init (or to all its processes when `all`).
  // OK when the container is already stopped.
  absl::Status Kill(const std::string& id, int signal, bool all = false);
  // Deletes the runtime state (`runtime delete --force`) and conmon's files under
  // conmon_state_dir (not the exit file or the log). OK when it does not exist.
  absl::Status Delete(const std::string& id);
  // Current state. NotFound when the runtime does not know the container.
  absl::StatusOr<OciState> State(const std::string& id);
  // Runs `cmd` in the container (`runtime exec`), capturing output, killed after `timeout`.
  absl::StatusOr<ExecResult> ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                      std::chrono::milliseconds timeout);
  // Applies a linux resources JSON object (OCI runtime-spec config-linux.md `resources`).
  absl::Status UpdateResources(const std::string& id, const std::string& resources_json);

  // Asks the conmon of the container whose bundle is `bundle` to reopen its log file (conmon's
  // control fifo <bundle>/ctl, message type 2 as CRI-O sends it). Returns once the message is
  // written; conmon reopens asynchronously. FailedPrecondition when no conmon reads the fifo.
  static absl::Status ReopenLog(const std::string& bundle);

  // Reads the exit code conmon wrote to `<exit_dir>/<id>`; NotFound while it is running.
  static absl::StatusOr<int> ReadExitFile(const std::string& exit_dir, const std::string& id);

  const OciRuntimeOptions& options() const { return opts_; }

 private:
  OciRuntimeOptions opts_;
};

}  // namespace berth::cri::oci
