// The infra process that holds a pod sandbox's namespaces (berth-pause), behind a small
// interface so the runtime can be unit-tested with a fake. The default implementation
// (PauseInfra) wraps cri/pause.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::cri::runtime {

// What namespaces the infra process creates, and where it goes.
struct InfraRequest {
  bool net = true, ipc = true, uts = true, pid = false;  // new namespaces to unshare
  std::string hostname;                                  // set in the new UTS namespace
  std::vector<std::string> cgroup_procs_files;           // cgroup.procs files to join
  // A new user namespace owning the others, with these /proc/<pid>/uid_map and gid_map
  // contents ("<container id> <host id> <length>\n"); both empty: the host's.
  std::string uid_map, gid_map;
};

// Starts/stops sandbox infra processes and pins their network namespace. Thread-safe.
class SandboxInfra {
 public:
  virtual ~SandboxInfra() = default;
  // Starts the infra process; returns its PID (host PID namespace) once its namespaces exist.
  virtual absl::StatusOr<pid_t> Start(const InfraRequest& req) = 0;
  // Bind-mounts /proc/<pid>/ns/net at `path` (created if needed).
  virtual absl::Status BindNetns(pid_t pid, const std::string& path) = 0;
  // Unmounts and removes `path`; OK when it does not exist.
  virtual absl::Status UnbindNetns(const std::string& path) = 0;
  // Kills the infra process (SIGKILL) and waits until it is gone; OK when already gone.
  virtual absl::Status Stop(pid_t pid) = 0;
};

// The real infra: berth-pause at `pause_binary` (cri/pause). When berth was built without
// cri/pause, Start returns Unimplemented.
std::unique_ptr<SandboxInfra> NewPauseInfra(const std::string& pause_binary);

// Kills `pid` with SIGKILL and waits (reaping it when it is our child) until it no longer
// exists, up to `timeout_ms`. OK when it is already gone; DeadlineExceeded otherwise.
absl::Status KillAndWait(pid_t pid, int timeout_ms = 10000);

}  // namespace berth::cri::runtime
