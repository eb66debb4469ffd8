// Internal to cri/runtime (not a public header): the in-memory records of sandboxes and
// containers, and small helpers, shared by the RuntimeService handler files (runtime.cc,
// sandbox_*.cc, container_*.cc, recovery.cc, exit_monitor.cc, stats.cc, events.cc,
// container_log.cc, runtime_config.cc). Fields are guarded by Runtime::mu_ unless noted.
#pragma once

#include "cri/runtime/runtime.h"  // first: before <signal.h>

#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "cri/runtime/cgroups.h"

namespace berth::cri::runtime {

struct Runtime::SandboxRec {
  std::string id, name_key;
  v1::PodSandboxConfig config;
  v1::PodSandboxState state = v1::SANDBOX_NOTREADY;
  int64_t created_at = 0;
  std::string ip;
  std::vector<std::string> additional_ips;
  pid_t pause_pid = 0;
  std::string netns_path, cgroup_path, runtime_handler, dir, shm_path;
  bool host_network = false, host_ipc = false;
  bool network_attached = false;
  bool created = false;  // setup finished (record is persisted)
  absl::Status create_status;
  absl::Mutex op_mu;  // serializes blocking operations on this sandbox
};

struct Runtime::ContainerRec {
  std::string id, sandbox_id, name_key;
  v1::ContainerConfig config;
  v1::ContainerState state = v1::CONTAINER_CREATED;
  int64_t created_at = 0, started_at = 0, finished_at = 0;
  int exit_code = 0;
  std::string reason, message;
  pid_t pid = 0;
  std::string image_name, image_ref, image_id, stop_signal;
  std::string log_path, bundle, rootfs, cgroups_path, runtime_handler;
  // The process identity of the container's first process (ContainerStatus.user).
  bool user_known = false;
  int64_t uid = 0, gid = 0;
  std::vector<int64_t> supplemental_groups;
  bool created = false;
  absl::Status create_status;
  absl::Mutex op_mu;
};

// Wall-clock time in nanoseconds since the epoch (CRI timestamps).
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// True when process `pid` exists (signal 0 is deliverable, or only denied).
inline bool ProcessAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

// True when the memory cgroup at `cgroups_path` recorded an OOM kill (v1 memory.oom_control
// or v2 memory.events `oom_kill`). exit_monitor.cc.
bool SawOomKill(const std::vector<CgroupMount>& mounts, const std::string& cgroups_path);

}  // namespace berth::cri::runtime
