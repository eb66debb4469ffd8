#include "kubelet/sysctl.h"

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::kubelet {
namespace {

// Safe on every kernel this node can run (upstream's kernel-version gates are all older than
// the 5.x kernels berth supports).
constexpr const char* kSafeSysctls[] = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
};

absl::Status CheckHostNamespaces(const std::string& name, const std::string& ns, bool host_network,
                                 bool host_ipc) {
  if ((ns == "IPC" && host_ipc) || (ns == "Net" && host_network)) {
    return absl::FailedPreconditionError(absl::StrCat("\"", name, "\" not allowed with host ",
                                                      ns == "IPC" ? "ipc" : "net", " enabled"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string NormalizeSysctlName(const std::string& name) {
  size_t sep = name.find_first_of("./");
  if (sep == std::string::npos || name[sep] == '.') return name;
  std::string out = name;
  for (char& c : out) {
    if (c == '.')
      c = '/';
    else if (c == '/')
      c = '.';
  }
  return out;
}

std::string SysctlNamespace(const std::string& name) {
  static const char* kIpc[] = {
      "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
      "kernel.shm", "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.msg"};
  for (const char* n : kIpc) {
    if (name == n) return "IPC";
  }
  if (absl::StartsWith(name, "net.")) return "Net";
  if (absl::StartsWith(name, "fs.mqueue.")) return "IPC";
  return "";
}

absl::StatusOr<SysctlAllowlist> SysctlAllowlist::Create(
    const std::vector<std::string>& allowed_unsafe) {
  static const std::regex kPattern(
      R"(^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\*)?$)");
  SysctlAllowlist list;
  for (const char* s : kSafeSysctls) list.sysctls_[s] = SysctlNamespace(s);
  for (const auto& raw : allowed_unsafe) {
    if (raw.empty()) continue;
    if (raw.size() > 253 || !std::regex_match(raw, kPattern)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sysctl \"", raw,
                       "\" must have at most 253 characters and "
                       "be a dot- or slash-separated name, optionally ending in *"));
    }
    std::string name = NormalizeSysctlName(raw);
    bool prefixed = false;
    if (size_t star = name.find('*'); star != std::string::npos) {
      name.resize(star);
      prefixed = true;
    }
    std::string ns = SysctlNamespace(name);
    if (ns.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the sysctls \"", name, "\" are not known to be namespaced"));
    }
    (prefixed ? list.prefixes_ : list.sysctls_)[name] = ns;
  }
  return list;
}

absl::Status SysctlAllowlist::Validate(const std::string& raw, bool host_network,
                                       bool host_ipc) const {
  const std::string name = NormalizeSysctlName(raw);
  if (auto it = sysctls_.find(name); it != sysctls_.end()) {
    return CheckHostNamespaces(name, it->second, host_network, host_ipc);
  }
  for (const auto& [prefix, ns] : prefixes_) {
    if (absl::StartsWith(name, prefix))
      return CheckHostNamespaces(name, ns, host_network, host_ipc);
  }
  return absl::FailedPreconditionError(absl::StrCat("\"", name, "\" not allowlisted"));
}

}  // namespace berth::kubelet
