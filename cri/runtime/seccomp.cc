#include "cri/runtime/seccomp.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::cri::runtime {
namespace v1 = ::runtime::v1;
using nlohmann::json;

namespace {

bool HasCap(const std::vector<std::string>& caps, const std::string& cap) {
  return std::find(caps.begin(), caps.end(), cap) != caps.end();
}

const std::vector<std::string>& NativeArches() {
  static const std::vector<std::string> kArches = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                                   "SCMP_ARCH_X32"};
  return kArches;
}

// Syscalls the default profile blocks, each with the capability that lifts the block (""
// for none).
struct Blocked {
  const char* capability;
  std::vector<const char*> syscalls;
};

const std::vector<Blocked>& BlockedSyscalls() {
  static const std::vector<Blocked> kBlocked = {
      {"",
       {"create_module", "get_kernel_syms", "query_module", "nfsservctl", "uselib", "ustat",
        "sysfs", "_sysctl", "vm86", "vm86old", "kexec_file_load", "kexec_load", "add_key",
        "request_key", "keyctl", "userfaultfd", "open_by_handle_at"}},
      {"CAP_SYS_ADMIN",
       {"mount",         "umount",    "umount2",        "unshare",           "setns",
        "pivot_root",    "quotactl",  "lookup_dcookie", "name_to_handle_at", "bpf",
        "fanotify_init", "fsopen",    "fsconfig",       "fsmount",           "fspick",
        "move_mount",    "open_tree", "swapon",         "swapoff",           "perf_event_open"}},
      {"CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}},
      {"CAP_SYS_BOOT", {"reboot"}},
      {"CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_adjtime", "adjtimex"}},
      {"CAP_SYS_PTRACE", {"ptrace", "process_vm_readv", "process_vm_writev", "kcmp"}},
      {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
      {"CAP_SYS_PACCT", {"acct"}},
      {"CAP_SYS_NICE", {"mbind", "set_mempolicy", "move_pages", "get_mempolicy"}},
      {"CAP_SYSLOG", {"syslog"}},
  };
  return kBlocked;
}

// Docker's "includes"/"excludes" of a rule: caps and arches.
bool RuleApplies(const json& rule, const std::vector<std::string>& caps) {
  auto matches_arch = [](const json& arches) {
    for (const auto& a : arches) {
      std::string s = a.is_string() ? a.get<std::string>() : "";
      if (s == "amd64" || s == "x86_64" || s == "386" || s == "x32") return true;
    }
    return false;
  };
  if (rule.contains("includes") && rule["includes"].is_object()) {
    const json& inc = rule["includes"];
    if (inc.contains("caps") && inc["caps"].is_array()) {
      for (const auto& c : inc["caps"]) {
        if (!c.is_string() || !HasCap(caps, c.get<std::string>())) return false;
      }
    }
    if (inc.contains("arches") && inc["arches"].is_array() && !inc["arches"].empty() &&
        !matches_arch(inc["arches"])) {
      return false;
    }
  }
  if (rule.contains("excludes") && rule["excludes"].is_object()) {
    const json& exc = rule["excludes"];
    if (exc.contains("caps") && exc["caps"].is_array()) {
      for (const auto& c : exc["caps"]) {
        if (c.is_string() && HasCap(caps, c.get<std::string>())) return false;
      }
    }
    if (exc.contains("arches") && exc["arches"].is_array() && matches_arch(exc["arches"]))
      return false;
  }
  return true;
}

}  // namespace

json DefaultSeccompProfile(const std::vector<std::string>& caps) {
  json syscalls = json::array();
  for (const auto& b : BlockedSyscalls()) {
    if (b.capability[0] != '\0' && HasCap(caps, b.capability)) continue;
    json names = json::array();
    for (const char* n : b.syscalls) names.push_back(n);
    syscalls.push_back({{"names", names}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}});  // EPERM
  }
  // clone/clone3 creating namespaces needs CAP_SYS_ADMIN, as in the upstream profiles.
  if (!HasCap(caps, "CAP_SYS_ADMIN")) {
    // A deny rule per flag ((flags & bit) == bit): one MASKED_EQ against 0 over all the bits
    // would match (and refuse) every plain fork instead.
    for (uint64_t bit : {0x00020000ULL, 0x02000000ULL, 0x04000000ULL, 0x08000000ULL, 0x10000000ULL,
                         0x20000000ULL, 0x40000000ULL}) {
      // CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
      syscalls.push_back(
          {{"names", {"clone"}},
           {"action", "SCMP_ACT_ERRNO"},
           {"errnoRet", 1},
           {"args",
            {{{"index", 0}, {"value", bit}, {"valueTwo", bit}, {"op", "SCMP_CMP_MASKED_EQ"}}}}});
    }
    // The flags of clone3 live in memory seccomp cannot read: ENOSYS makes libcs fall back to
    // clone.
    syscalls.push_back({{"names", {"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}});
  }
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"architectures", NativeArches()},
          {"syscalls", syscalls}};
}

absl::StatusOr<json> ConvertSeccompProfile(const json& profile,
                                           const std::vector<std::string>& caps) {
  if (!profile.is_object() || !profile.contains("defaultAction") ||
      !profile["defaultAction"].is_string()) {
    return absl::InvalidArgumentError(
        "seccomp profile: an object with a string defaultAction is required");
  }
  json out = {{"defaultAction", profile["defaultAction"]}};
  if (profile.contains("defaultErrnoRet")) out["defaultErrnoRet"] = profile["defaultErrnoRet"];
  if (profile.contains("listenerPath")) out["listenerPath"] = profile["listenerPath"];
  if (profile.contains("flags")) out["flags"] = profile["flags"];
  json arches = json::array();
  if (profile.contains("architectures") && profile["architectures"].is_array()) {
    arches = profile["architectures"];
  } else if (profile.contains("archMap") && profile["archMap"].is_array()) {
    for (const auto& m : profile["archMap"]) {
      if (!m.is_object() || m.value("architecture", "") != "SCMP_ARCH_X86_64") continue;
      arches.push_back("SCMP_ARCH_X86_64");
      if (m.contains("subArchitectures") && m["subArchitectures"].is_array()) {
        for (const auto& s : m["subArchitectures"]) arches.push_back(s);
      }
    }
  }
  if (!arches.empty()) out["architectures"] = arches;
  json syscalls = json::array();
  if (profile.contains("syscalls")) {
    if (!profile["syscalls"].is_array())
      return absl::InvalidArgumentError("seccomp profile: syscalls must be an array");
    for (const auto& rule : profile["syscalls"]) {
      if (!rule.is_object() || !rule.contains("action")) {
        return absl::InvalidArgumentError("seccomp profile: every syscalls entry needs an action");
      }
      if (!RuleApplies(rule, caps)) continue;
      json r = {{"action", rule["action"]}};
      json names = json::array();
      if (rule.contains("names") && rule["names"].is_array()) names = rule["names"];
      if (rule.contains("name") && rule["name"].is_string()) names.push_back(rule["name"]);
      if (names.empty())
        return absl::InvalidArgumentError("seccomp profile: a syscalls entry has no names");
      r["names"] = names;
      for (const char* k : {"errnoRet", "args"}) {
        if (rule.contains(k) && !rule[k].is_null()) r[k] = rule[k];
      }
      syscalls.push_back(std::move(r));
    }
  }
  out["syscalls"] = syscalls;
  return out;
}

absl::StatusOr<json> ContainerSeccomp(const v1::LinuxContainerSecurityContext& sc,
                                      const std::vector<std::string>& caps) {
  if (sc.privileged()) return json();
  std::string type, localhost;
  if (sc.has_seccomp()) {
    switch (sc.seccomp().profile_type()) {
      case v1::SecurityProfile::RuntimeDefault:
        type = "default";
        break;
      case v1::SecurityProfile::Unconfined:
        type = "unconfined";
        break;
      case v1::SecurityProfile::Localhost:
        type = "localhost";
        localhost = sc.seccomp().localhost_ref();
        break;
      default:
        return absl::InvalidArgumentError("unknown seccomp profile type " +
                                          std::to_string(sc.seccomp().profile_type()));
    }
  } else {
    // The deprecated field is still what older kubelets send.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const std::string& p = sc.seccomp_profile_path();
#pragma GCC diagnostic pop
    if (p.empty() || p == "unconfined") {
      type = "unconfined";
    } else if (p == "runtime/default" || p == "docker/default") {
      type = "default";
    } else if (absl::StartsWith(p, "localhost/")) {
      type = "localhost";
      localhost = std::string(absl::StripPrefix(p, "localhost"));
    } else {
      return absl::InvalidArgumentError("unknown seccomp profile \"" + p + "\"");
    }
  }
  if (type == "unconfined") return json();
  if (type == "default") return DefaultSeccompProfile(caps);
  if (localhost.empty() || localhost[0] != '/') {
    return absl::InvalidArgumentError("seccomp Localhost profile \"" + localhost +
                                      "\" is not an absolute path");
  }
  auto content = ReadFile(localhost);
  if (!content.ok()) return Annotate(content.status(), "seccomp Localhost profile");
  json profile = json::parse(*content, nullptr, false);
  if (profile.is_discarded()) {
    return absl::InvalidArgumentError("seccomp Localhost profile " + localhost + " is not JSON");
  }
  auto out = ConvertSeccompProfile(profile, caps);
  if (!out.ok()) return Annotate(out.status(), "seccomp Localhost profile " + localhost);
  return out;
}

}  // namespace berth::cri::runtime
