// Pod sysctls as the kubelet admits them (pkg/kubelet/sysctl, component-helpers
// node/util/sysctl): the safe set, plus the node's --allowed-unsafe-sysctls patterns; names
// with "/" as separator normalized to dots; namespaced sysctls refused when the pod shares
// that namespace with the host.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::kubelet {

// Reason of a pod rejected for its sysctls (status.reason, event reason).
inline constexpr char kSysctlForbiddenReason[] = "SysctlForbidden";

// "kernel/shm_rmid_forced" -> "kernel.shm_rmid_forced": when the first separator is '/',
// '/' and '.' are swapped (upstream NormalizeName); otherwise the name is returned as is.
std::string NormalizeSysctlName(const std::string& name);

// The kernel namespace a sysctl (or prefix) belongs to: "IPC", "Net", or "" (not namespaced).
std::string SysctlNamespace(const std::string& name);

// The sysctls a pod may set. Thread-safe after construction (const methods only).
class SysctlAllowlist {
 public:
  // The safe sysctls (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, ...) and the
  // `allowed_unsafe` patterns (an exact name, or a prefix ending in "*"). Errors:
  // InvalidArgument for a pattern that is malformed or not namespaced (upstream refuses
  // those: a non-namespaced sysctl would change the host).
  static absl::StatusOr<SysctlAllowlist> Create(const std::vector<std::string>& allowed_unsafe);

  // OK when the pod may set `name` (normalized first); FailedPrecondition with upstream's
  // message ("\"x\" not allowlisted", "\"x\" not allowed with host net enabled") otherwise.
  absl::Status Validate(const std::string& name, bool host_network, bool host_ipc) const;

 private:
  std::map<std::string, std::string> sysctls_;   // name -> namespace
  std::map<std::string, std::string> prefixes_;  // prefix (without '*') -> namespace
};

}  // namespace berth::kubelet
