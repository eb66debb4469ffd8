// Starts berth-pause, the infra process that holds a pod sandbox's namespaces, and pins its
// namespaces on the file system. Like the upstream pause container, but run directly on the
// host without an image (DESIGN.md "Pod sandbox without an image").
// Thread-safe: no shared state.
//
// Example:
//   PauseOptions o{.binary = "/usr/lib/berth/berth-pause", .hostname = "web-0",
//                  .cgroup_procs_files = {"/sys/fs/cgroup/memory/kubepods/pod<uid>/cgroup.procs"}};
//   ASSIGN_OR_RETURN(PauseProcess p, StartPause(o));
//   RETURN_IF_ERROR(BindNamespace(p.pid, "net", "/run/berth/netns/<sandbox id>"));
//   ... CNI ADD on /run/berth/netns/<sandbox id> ...
//   UnbindNamespace("/run/berth/netns/<sandbox id>"); StopPause(p.pid);
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::cri::pause {

// What berth-pause creates.
struct PauseOptions {
  std::string binary = "berth-pause";  // path of the berth-pause executable (or a PATH name)
  bool net = true;                     // new network namespace (CLONE_NEWNET)
  bool ipc = true;                     // new IPC namespace (CLONE_NEWIPC)
  bool uts = true;                     // new UTS namespace (CLONE_NEWUTS)
  bool pid = false;                    // new PID namespace; the pause's child is its PID 1
  // New user namespace (CLONE_NEWUSER, unshared together with the others so that it owns
  // them) with these ID mappings, each "<container id> <host id> <length>\n" lines as
  // /proc/<pid>/uid_map takes them; StartPause writes them before it returns. Empty: none.
  std::string uid_map, gid_map;
  std::string hostname;  // set in the new UTS namespace (needs uts); empty: keep
  // cgroup.procs files (one per v1 controller and/or the v2 cgroup) the pause writes its PID
  // to before it unshares, so it is accounted to the pod cgroup from its first instruction.
  std::vector<std::string> cgroup_procs_files;
  // How long to wait for the pause to report that its namespaces exist.
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(10);
};

// A running berth-pause. Namespace paths are empty for namespaces that were not requested
// (the pause then shares berth's).
struct PauseProcess {
  pid_t pid = 0;        // host PID of berth-pause, a child of the caller (reap it after Stop)
  std::string net_ns;   // /proc/<pid>/ns/net
  std::string ipc_ns;   // /proc/<pid>/ns/ipc
  std::string uts_ns;   // /proc/<pid>/ns/uts
  std::string pid_ns;   // /proc/<pid>/ns/pid_for_children (the namespace whose PID 1 is its child)
  std::string user_ns;  // /proc/<pid>/ns/user (with uid_map/gid_map)
};

// Spawns berth-pause in a new session and waits until its namespaces exist. Errors: NotFound
// when the binary is missing; Internal with the pause's stderr (e.g. "write pid to
// <cgroup.procs>: No such file or directory") when it exits early; DeadlineExceeded after
// `ready_timeout` (the pause is then killed and reaped); the error of writing uid_map/gid_map
// (e.g. InvalidArgument for overlapping ranges; the pause is then killed and reaped).
absl::StatusOr<PauseProcess> StartPause(const PauseOptions& opts);

// Stops a pause: SIGTERM, then SIGKILL after `grace`; waits until the process is gone
// (reaping it when it is the caller's child). OK when it is already gone.
absl::Status StopPause(pid_t pid, std::chrono::milliseconds grace = std::chrono::seconds(2));

// Bind-mounts /proc/<pid>/ns/<ns> (ns: "net", "ipc", "uts", "pid", ...) onto `target`,
// creating the file and its parent directories, so the namespace stays reachable by a stable
// path (e.g. /run/berth/netns/<sandbox id> for CNI) independent of the process and of berth
// restarts. OK when `target` already has that namespace mounted.
absl::Status BindNamespace(pid_t pid, const std::string& ns, const std::string& target);

// Undoes BindNamespace: umount2(MNT_DETACH) and unlink. OK when `target` does not exist.
absl::Status UnbindNamespace(const std::string& target);

}  // namespace berth::cri::pause
