// Generation of the OCI runtime spec (runtime-spec v1.1 config.json) for a CRI container.
// Pure functions: every input (image config, /etc/passwd contents, the current
// oom_score_adj, ...) is passed in, so the rules are unit-testable without root.
// The rules follow containerd's CRI plugin (internal/cri/opts/spec_linux*.go) and kubelet's
// expectations: process args, env merge, user resolution, default mounts, namespaces,
// capabilities, masked/readonly paths and linux resources.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cri/api/api.pb.h"
#include "cri/image/resolver.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {

// The container's process arguments per containerd's rules: CRI command replaces the image
// Entrypoint (and then the image Cmd is not used); CRI args replace the image Cmd.
// InvalidArgument when the result is empty ("no command specified").
absl::StatusOr<std::vector<std::string>> ProcessArgs(const ::runtime::v1::ContainerConfig& config,
                                                     const image::ImageConfig& image);

// Environment "K=V" list: `base` (e.g. HOSTNAME), then image env, then CRI envs; a later
// entry with the same key replaces the earlier one in place. PATH gets the default value
// when nobody set it.
std::vector<std::string> MergeEnv(const std::vector<std::string>& base,
                                  const std::vector<std::string>& image_env,
                                  const ::runtime::v1::ContainerConfig& config);

// Resolved process user (OCI `process.user`).
struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
};

// Resolves the container user from the CRI security context (run_as_user, run_as_group,
// run_as_username, supplemental_groups) or else the image `User` ("uid", "uid:gid", "name",
// "name:group"), names looked up in `passwd` / `group` (contents of the rootfs's /etc/passwd
// and /etc/group, may be empty). The primary gid comes from the passwd entry when no group
// is given; additional gids are the gid, the groups listing the user name, then the
// supplemental groups (deduplicated). InvalidArgument when a name is not found.
absl::StatusOr<ResolvedUser> ResolveUser(const ::runtime::v1::LinuxContainerSecurityContext& sc,
                                         const std::string& image_user, const std::string& passwd,
                                         const std::string& group);

// Clamps a requested oom_score_adj to at least `current` (berth's own
// /proc/self/oom_score_adj), as containerd's restrict_oom_score_adj does, because lowering
// it needs CAP_SYS_RESOURCE.
int ClampOomScoreAdj(int64_t requested, int current);

// A pod's user namespace mappings, as /proc/<pid>/uid_map and gid_map take them: one
// "<container id> <host id> <length>\n" line each. Both empty: the host's user namespace.
struct PodUsernsMaps {
  std::string uid_map, gid_map;
  uint32_t host_uid = 0, host_gid = 0, length = 0;  // the one range (when not empty)
  bool enabled() const { return !uid_map.empty(); }
};

// Checks PodSandboxConfig.linux.security_context.namespace_options.userns_options as
// containerd does (kubelet's user namespaces, KEP-127): absent or NODE: the host's (NODE
// with mappings is InvalidArgument); POD: exactly one UID and one GID range, each mapping
// container ID 0, length > 0, and no host network/PID/IPC; CONTAINER and TARGET:
// InvalidArgument (CRI: only POD and NODE exist for user namespaces).
absl::StatusOr<PodUsernsMaps> PodUserns(const ::runtime::v1::PodSandboxConfig& cfg);

// Everything about the sandbox a container joins.
struct SandboxSpecInfo {
  std::string id;
  pid_t pause_pid = 0;     // pause process; its /proc/<pid>/ns/{ipc,uts,pid} are joined
  std::string netns_path;  // bind-mounted netns; empty with host network
  bool host_network = false;
  bool host_ipc = false;
  bool host_pid = false;
  bool pid_mode_pod = false;  // sandbox pid NamespaceMode POD: the pause holds a pod PID ns
                              // (/proc/<pause>/ns/pid_for_children) that POD-mode containers join
  std::string hostname;
  std::string hosts_path, hostname_path, resolv_conf_path;  // files bound into /etc
  std::string shm_path;  // the sandbox's /dev/shm (empty: private tmpfs)
  std::string sandbox_name, sandbox_namespace, sandbox_uid;
  std::map<std::string, std::string> sysctls;  // PodSandboxConfig.linux.sysctls (linux.sysctl)
  // The pod's user namespace (PodUserns): the containers join /proc/<pause>/ns/user and
  // runc gets the same mappings. Empty: the host's user namespace.
  PodUsernsMaps userns;
};

// Inputs of GenerateSpec.
struct SpecInput {
  std::string container_id;
  const ::runtime::v1::ContainerConfig* config = nullptr;  // required
  const image::ResolvedImage* image = nullptr;             // required
  std::string image_name;                                  // as requested (annotation)
  SandboxSpecInfo sandbox;
  std::string rootfs;        // absolute path of the mounted rootfs
  std::string cgroups_path;  // e.g. /berth-e2e/kubepods/pod1/<id> (cgroupfs driver)
  // PID namespace mode TARGET (ephemeral containers): the init PID of the target container,
  // whose /proc/<pid>/ns/pid is joined. 0 otherwise.
  pid_t target_pid = 0;
  std::string passwd, group;  // contents of the rootfs's /etc/passwd and /etc/group
  int current_oom_score_adj = 0;
  // The capability bounding set of berth itself (bit i = capability number i, as CapBnd in
  // /proc/self/status). Privileged and "ALL" containers get every capability in it; others
  // their set intersected with it, as containerd does with the runtime's own capabilities.
  uint64_t cap_bounding = ~uint64_t{0};
};

// containerd's default capability set.
const std::vector<std::string>& DefaultCapabilities();

// Builds config.json. Seccomp as cri/runtime/seccomp.h describes.
// Errors: InvalidArgument for an empty command, unknown user, unknown capability name.
absl::StatusOr<nlohmann::json> GenerateSpec(const SpecInput& in);

// OCI `linux.resources` object for CRI resources (cpu shares/quota/period/cpuset, memory
// limit and swap, hugepages, unified). Used by GenerateSpec and UpdateContainerResources.
// Hugepage limits are left out when the host has no hugetlb controller (HasHugetlbController).
nlohmann::json ResourcesJson(const ::runtime::v1::LinuxContainerResources& r);

}  // namespace berth::cri::runtime
