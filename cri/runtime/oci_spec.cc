#include "cri/runtime/oci_spec.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/seccomp.h"

namespace berth::cri::runtime {
namespace v1 = ::runtime::v1;
using nlohmann::json;

absl::StatusOr<PodUsernsMaps> PodUserns(const v1::PodSandboxConfig& cfg) {
  const auto& nso = cfg.linux().security_context().namespace_options();
  PodUsernsMaps out;
  if (!nso.has_userns_options()) return out;
  const v1::UserNamespace& u = nso.userns_options();
  switch (u.mode()) {
    case v1::NODE:
      if (u.uids_size() != 0 || u.gids_size() != 0) {
        return absl::InvalidArgumentError("user namespace mode NODE takes no ID mappings");
      }
      return out;
    case v1::POD:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported user namespace mode ",
                                                     v1::NamespaceMode_Name(u.mode()),
                                                     " (only POD and NODE)"));
  }
  if (u.uids_size() != 1 || u.gids_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("user namespace: exactly one UID and one GID mapping supported, got ",
                     u.uids_size(), " and ", u.gids_size()));
  }
  const v1::IDMapping& m = u.uids(0);
  const v1::IDMapping& g = u.gids(0);
  if (m.container_id() != 0 || g.container_id() != 0) {
    return absl::InvalidArgumentError("user namespace: container ID 0 must be mapped");
  }
  if (m.length() == 0 || g.length() == 0 || m.length() != g.length()) {
    return absl::InvalidArgumentError(
        "user namespace: UID and GID ranges must be non-empty and of equal length");
  }
  if (nso.network() == v1::NODE || nso.pid() == v1::NODE || nso.ipc() == v1::NODE) {
    return absl::InvalidArgumentError(
        "user namespace POD cannot be combined with host network, PID or IPC");
  }
  out.host_uid = m.host_id();
  out.host_gid = g.host_id();
  out.length = m.length();
  out.uid_map = absl::StrCat("0 ", m.host_id(), " ", m.length(), "\n");
  out.gid_map = absl::StrCat("0 ", g.host_id(), " ", g.length(), "\n");
  return out;
}

namespace {

constexpr char kDefaultPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string EnvKey(const std::string& kv) {
  auto pos = kv.find('=');
  return pos == std::string::npos ? kv : kv.substr(0, pos);
}

void SetEnv(std::vector<std::string>* env, const std::string& kv) {
  std::string key = EnvKey(kv);
  for (auto& e : *env) {
    if (EnvKey(e) == key) {
      e = kv;
      return;
    }
  }
  env->push_back(kv);
}

// One parsed line of /etc/passwd or /etc/group.
struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
};
struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

std::vector<PasswdEntry> ParsePasswd(const std::string& s) {
  std::vector<PasswdEntry> out;
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() < 4 || f[0].empty() || f[0][0] == '#') continue;
    PasswdEntry e;
    e.name = f[0];
    if (!absl::SimpleAtoi(f[2], &e.uid) || !absl::SimpleAtoi(f[3], &e.gid)) continue;
    out.push_back(e);
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(const std::string& s) {
  std::vector<GroupEntry> out;
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() < 3 || f[0].empty() || f[0][0] == '#') continue;
    GroupEntry e;
    e.name = f[0];
    if (!absl::SimpleAtoi(f[2], &e.gid)) continue;
    if (f.size() >= 4 && !f[3].empty()) e.members = absl::StrSplit(f[3], ',', absl::SkipEmpty());
    out.push_back(e);
  }
  return out;
}

std::string CapName(std::string c) {
  c = absl::AsciiStrToUpper(c);
  if (!absl::StartsWith(c, "CAP_")) c = "CAP_" + c;
  return c;
}

const std::vector<std::string>& AllCapabilities() {
  static const std::vector<std::string> kAll = {"CAP_CHOWN",
                                                "CAP_DAC_OVERRIDE",
                                                "CAP_DAC_READ_SEARCH",
                                                "CAP_FOWNER",
                                                "CAP_FSETID",
                                                "CAP_KILL",
                                                "CAP_SETGID",
                                                "CAP_SETUID",
                                                "CAP_SETPCAP",
                                                "CAP_LINUX_IMMUTABLE",
                                                "CAP_NET_BIND_SERVICE",
                                                "CAP_NET_BROADCAST",
                                                "CAP_NET_ADMIN",
                                                "CAP_NET_RAW",
                                                "CAP_IPC_LOCK",
                                                "CAP_IPC_OWNER",
                                                "CAP_SYS_MODULE",
                                                "CAP_SYS_RAWIO",
                                                "CAP_SYS_CHROOT",
                                                "CAP_SYS_PTRACE",
                                                "CAP_SYS_PACCT",
                                                "CAP_SYS_ADMIN",
                                                "CAP_SYS_BOOT",
                                                "CAP_SYS_NICE",
                                                "CAP_SYS_RESOURCE",
                                                "CAP_SYS_TIME",
                                                "CAP_SYS_TTY_CONFIG",
                                                "CAP_MKNOD",
                                                "CAP_LEASE",
                                                "CAP_AUDIT_WRITE",
                                                "CAP_AUDIT_CONTROL",
                                                "CAP_SETFCAP",
                                                "CAP_MAC_OVERRIDE",
                                                "CAP_MAC_ADMIN",
                                                "CAP_SYSLOG",
                                                "CAP_WAKE_ALARM",
                                                "CAP_BLOCK_SUSPEND",
                                                "CAP_AUDIT_READ",
                                                "CAP_PERFMON",
                                                "CAP_BPF",
                                                "CAP_CHECKPOINT_RESTORE"};
  return kAll;
}

bool KnownCap(const std::string& c) {
  const auto& all = AllCapabilities();
  return std::find(all.begin(), all.end(), c) != all.end();
}

json Mount(const std::string& dst, const std::string& type, const std::string& src,
           std::vector<std::string> options) {
  return json{{"destination", dst}, {"type", type}, {"source", src}, {"options", options}};
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ProcessArgs(const v1::ContainerConfig& config,
                                                     const image::ImageConfig& image) {
  std::vector<std::string> command(config.command().begin(), config.command().end());
  std::vector<std::string> args(config.args().begin(), config.args().end());
  if (command.empty()) {
    if (args.empty()) args = image.cmd;
    command = image.entrypoint;
  }
  if (command.empty() && args.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("container ", config.metadata().name(),
                     ": no command specified (neither CRI command/args nor image Entrypoint/Cmd)"));
  }
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

std::vector<std::string> MergeEnv(const std::vector<std::string>& base,
                                  const std::vector<std::string>& image_env,
                                  const v1::ContainerConfig& config) {
  std::vector<std::string> env;
  for (const auto& e : base) SetEnv(&env, e);
  for (const auto& e : image_env) SetEnv(&env, e);
  for (const auto& kv : config.envs()) SetEnv(&env, kv.key() + "=" + kv.value());
  bool has_path =
      std::any_of(env.begin(), env.end(), [](const std::string& e) { return EnvKey(e) == "PATH"; });
  if (!has_path) env.insert(env.begin(), kDefaultPath);
  return env;
}

absl::StatusOr<ResolvedUser> ResolveUser(const v1::LinuxContainerSecurityContext& sc,
                                         const std::string& image_user, const std::string& passwd,
                                         const std::string& group) {
  auto users = ParsePasswd(passwd);
  auto groups = ParseGroup(group);
  ResolvedUser out;
  std::string user_part, group_part;
  bool have_uid = false;
  std::string username;  // for group membership lookup
  if (sc.has_run_as_group() && !sc.has_run_as_user() && sc.run_as_username().empty()) {
    return absl::InvalidArgumentError("run_as_group is set without run_as_user or run_as_username");
  }
  if (sc.has_run_as_user()) {
    out.uid = static_cast<uint32_t>(sc.run_as_user().value());
    have_uid = true;
  } else if (!sc.run_as_username().empty()) {
    user_part = sc.run_as_username();
  } else if (!image_user.empty()) {
    auto pos = image_user.find(':');
    user_part = image_user.substr(0, pos);
    if (pos != std::string::npos) group_part = image_user.substr(pos + 1);
  }
  bool gid_known = false;
  if (!have_uid && !user_part.empty()) {
    uint32_t n;
    if (absl::SimpleAtoi(user_part, &n)) {
      out.uid = n;
    } else {
      auto it = std::find_if(users.begin(), users.end(),
                             [&](const PasswdEntry& e) { return e.name == user_part; });
      if (it == users.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("user \"", user_part, "\" not found in the image's /etc/passwd"));
      }
      out.uid = it->uid;
      out.gid = it->gid;
      gid_known = true;
      username = it->name;
    }
  }
  // Name and primary gid from the passwd entry of the uid, when there is one.
  for (const auto& e : users) {
    if (e.uid == out.uid) {
      if (username.empty()) username = e.name;
      if (!gid_known) out.gid = e.gid;
      break;
    }
  }
  if (sc.has_run_as_group()) {
    out.gid = static_cast<uint32_t>(sc.run_as_group().value());
  } else if (!group_part.empty()) {
    uint32_t n;
    if (absl::SimpleAtoi(group_part, &n)) {
      out.gid = n;
    } else {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const GroupEntry& g) { return g.name == group_part; });
      if (it == groups.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("group \"", group_part, "\" not found in the image's /etc/group"));
      }
      out.gid = it->gid;
    }
  }
  auto add = [&](uint32_t g) {
    if (std::find(out.additional_gids.begin(), out.additional_gids.end(), g) ==
        out.additional_gids.end()) {
      out.additional_gids.push_back(g);
    }
  };
  add(out.gid);
  // SupplementalGroupsPolicy Merge (default) adds the image's /etc/group memberships;
  // Strict uses only the primary and the requested supplemental groups.
  if (!username.empty() &&
      sc.supplemental_groups_policy() != v1::SupplementalGroupsPolicy::Strict) {
    for (const auto& g : groups) {
      if (std::find(g.members.begin(), g.members.end(), username) != g.members.end()) add(g.gid);
    }
  }
  for (int64_t g : sc.supplemental_groups()) add(static_cast<uint32_t>(g));
  return out;
}

int ClampOomScoreAdj(int64_t requested, int current) {
  int64_t v = std::max<int64_t>(requested, current);
  return static_cast<int>(std::clamp<int64_t>(v, -1000, 1000));
}

const std::vector<std::string>& DefaultCapabilities() {
  static const std::vector<std::string> kDefault = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return kDefault;
}

namespace {
// As containerd (tolerate_missing_hugetlb_controller): hugepage limits are dropped on a host
// without the hugetlb controller, where runc would fail the container. The kubelet sends a
// limit (0 unless requested) for every page size the machine supports.
bool HostHasHugetlbController() {
  static const bool has = HasHugetlbController(HostCgroupMounts());
  return has;
}
}  // namespace

json ResourcesJson(const v1::LinuxContainerResources& r) {
  json res = json::object();
  json cpu = json::object();
  if (r.cpu_shares() > 0) cpu["shares"] = r.cpu_shares();
  if (r.cpu_quota() != 0) cpu["quota"] = r.cpu_quota();
  if (r.cpu_period() > 0) cpu["period"] = r.cpu_period();
  if (!r.cpuset_cpus().empty()) cpu["cpus"] = r.cpuset_cpus();
  if (!r.cpuset_mems().empty()) cpu["mems"] = r.cpuset_mems();
  if (!cpu.empty()) res["cpu"] = cpu;
  json mem = json::object();
  if (r.memory_limit_in_bytes() > 0) mem["limit"] = r.memory_limit_in_bytes();
  if (r.memory_swap_limit_in_bytes() > 0) mem["swap"] = r.memory_swap_limit_in_bytes();
  if (!mem.empty()) res["memory"] = mem;
  if (r.hugepage_limits_size() > 0 && HostHasHugetlbController()) {
    json h = json::array();
    for (const auto& l : r.hugepage_limits()) {
      h.push_back({{"pageSize", l.page_size()}, {"limit", l.limit()}});
    }
    res["hugepageLimits"] = h;
  }
  if (!r.unified().empty()) {
    json u = json::object();
    for (const auto& [k, v] : r.unified()) u[k] = v;
    res["unified"] = u;
  }
  return res;
}

absl::StatusOr<json> GenerateSpec(const SpecInput& in) {
  const v1::ContainerConfig& cfg = *in.config;
  const image::ImageConfig& img = in.image->config;
  const v1::LinuxContainerSecurityContext& sc = cfg.linux().security_context();
  const bool privileged = sc.privileged();
  const bool ro_rootfs = sc.readonly_rootfs();

  ASSIGN_OR_RETURN(std::vector<std::string> args, ProcessArgs(cfg, img));
  ASSIGN_OR_RETURN(ResolvedUser user, ResolveUser(sc, img.user, in.passwd, in.group));

  json process;
  process["terminal"] = cfg.tty();
  process["args"] = args;
  std::vector<std::string> base_env;
  if (!in.sandbox.hostname.empty()) base_env.push_back("HOSTNAME=" + in.sandbox.hostname);
  process["env"] = MergeEnv(base_env, img.env, cfg);
  std::string cwd = !cfg.working_dir().empty() ? cfg.working_dir()
                    : !img.working_dir.empty() ? img.working_dir
                                               : "/";
  process["cwd"] = cwd;
  process["user"] = {
      {"uid", user.uid}, {"gid", user.gid}, {"additionalGids", user.additional_gids}};
  process["noNewPrivileges"] = sc.no_new_privs();
  process["rlimits"] = json::array();

  // Capabilities.
  std::vector<std::string> caps;
  if (privileged) {
    caps = AllCapabilities();
  } else {
    caps = DefaultCapabilities();
    const auto& c = sc.capabilities();
    for (const auto& raw : c.add_capabilities()) {
      std::string cap = CapName(raw);
      if (cap == "CAP_ALL") {
        caps = AllCapabilities();
        continue;
      }
      if (!KnownCap(cap)) return absl::InvalidArgumentError("unknown capability " + raw);
      if (std::find(caps.begin(), caps.end(), cap) == caps.end()) caps.push_back(cap);
    }
    for (const auto& raw : c.drop_capabilities()) {
      std::string cap = CapName(raw);
      if (cap == "CAP_ALL") {
        caps.clear();
        continue;
      }
      caps.erase(std::remove(caps.begin(), caps.end(), cap), caps.end());
    }
    // A capability both dropped via ALL and added explicitly is kept (containerd order:
    // drop ALL first, then add).
    bool drop_all = std::any_of(c.drop_capabilities().begin(), c.drop_capabilities().end(),
                                [](const std::string& s) { return CapName(s) == "CAP_ALL"; });
    if (drop_all) {
      for (const auto& raw : c.add_capabilities()) {
        std::string cap = CapName(raw);
        if (cap == "CAP_ALL") {
          caps = AllCapabilities();
        } else if (std::find(caps.begin(), caps.end(), cap) == caps.end()) {
          caps.push_back(cap);
        }
      }
    }
  }
  // Only what berth itself holds can be granted (runc fails with EPERM otherwise).
  std::erase_if(caps, [&](const std::string& cap) {
    const auto& all = AllCapabilities();
    size_t bit = std::find(all.begin(), all.end(), cap) - all.begin();
    return bit < 64 && !(in.cap_bounding & (uint64_t{1} << bit));
  });
  std::vector<std::string> ambient;
  for (const auto& raw : sc.capabilities().add_ambient_capabilities()) {
    std::string cap = CapName(raw);
    if (!KnownCap(cap)) return absl::InvalidArgumentError("unknown capability " + raw);
    ambient.push_back(cap);
    if (std::find(caps.begin(), caps.end(), cap) == caps.end()) caps.push_back(cap);
  }
  process["capabilities"] = {{"bounding", caps},
                             {"effective", caps},
                             {"permitted", caps},
                             {"inheritable", ambient},
                             {"ambient", ambient}};
  const auto& res = cfg.linux().resources();
  process["oomScoreAdj"] = ClampOomScoreAdj(res.oom_score_adj(), in.current_oom_score_adj);

  json spec;
  spec["ociVersion"] = "1.1.0";
  spec["process"] = process;
  spec["root"] = {{"path", in.rootfs}, {"readonly", ro_rootfs}};

  // Mounts: defaults first, then sandbox files, then CRI mounts; a CRI mount replaces a
  // default/sandbox mount with the same destination.
  std::set<std::string> cri_dsts;
  for (const auto& m : cfg.mounts()) cri_dsts.insert(m.container_path());
  json mounts = json::array();
  auto add_mount = [&](json m) {
    if (cri_dsts.count(m["destination"].get<std::string>())) return;
    mounts.push_back(std::move(m));
  };
  add_mount(Mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  add_mount(Mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  add_mount(Mount("/dev/pts", "devpts", "devpts",
                  {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  add_mount(Mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  std::vector<std::string> sys_opts = {"nosuid", "noexec", "nodev", privileged ? "rw" : "ro"};
  add_mount(Mount("/sys", "sysfs", "sysfs", sys_opts));
  add_mount(Mount("/sys/fs/cgroup", "cgroup", "cgroup",
                  {"nosuid", "noexec", "nodev", "relatime", privileged ? "rw" : "ro"}));
  if (!in.sandbox.shm_path.empty()) {
    add_mount(Mount("/dev/shm", "bind", in.sandbox.shm_path, {"rbind", "rprivate", "rw"}));
  } else {
    add_mount(Mount("/dev/shm", "tmpfs", "shm",
                    {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  }
  std::string etc_mode = ro_rootfs ? "ro" : "rw";
  if (!in.sandbox.hostname_path.empty())
    add_mount(
        Mount("/etc/hostname", "bind", in.sandbox.hostname_path, {"rbind", "rprivate", etc_mode}));
  if (!in.sandbox.hosts_path.empty())
    add_mount(Mount("/etc/hosts", "bind", in.sandbox.hosts_path, {"rbind", "rprivate", etc_mode}));
  if (!in.sandbox.resolv_conf_path.empty())
    add_mount(Mount("/etc/resolv.conf", "bind", in.sandbox.resolv_conf_path,
                    {"rbind", "rprivate", etc_mode}));
  // The container's root mount propagation, as containerd sets it: a bidirectional volume
  // needs the container's mounts shared (runc makes "/" rslave by default, which would stop a
  // mount made in the container from reaching the host); a host-to-container one needs slave.
  std::string rootfs_propagation;
  for (const auto& m : cfg.mounts()) {
    if (m.propagation() == v1::PROPAGATION_BIDIRECTIONAL) {
      rootfs_propagation = "rshared";
    } else if (m.propagation() == v1::PROPAGATION_HOST_TO_CONTAINER && rootfs_propagation.empty()) {
      rootfs_propagation = "rslave";
    }
    if (m.recursive_read_only()) {
      // As containerd: recursive read-only needs a read-only, private mount.
      if (!m.readonly()) {
        return absl::InvalidArgumentError("mount " + m.container_path() +
                                          ": recursive_read_only requires readonly");
      }
      if (m.propagation() != v1::PROPAGATION_PRIVATE) {
        return absl::InvalidArgumentError("mount " + m.container_path() +
                                          ": recursive_read_only requires PROPAGATION_PRIVATE");
      }
    }
    std::vector<std::string> opts = {"rbind"};
    switch (m.propagation()) {
      case v1::PROPAGATION_HOST_TO_CONTAINER:
        opts.push_back("rslave");
        break;
      case v1::PROPAGATION_BIDIRECTIONAL:
        opts.push_back("rshared");
        break;
      default:
        opts.push_back("rprivate");
        break;
    }
    opts.push_back(m.readonly() ? "ro" : "rw");
    if (m.recursive_read_only()) opts.push_back("rro");
    mounts.push_back(Mount(m.container_path(), "bind", m.host_path(), opts));
  }
  spec["mounts"] = mounts;

  // Linux section.
  json linux;
  json ns = json::array();
  ns.push_back({{"type", "mount"}});
  const auto& nso = sc.namespace_options();
  pid_t pause = in.sandbox.pause_pid;
  if (nso.pid() == v1::NODE) {
    // host pid namespace: no entry
  } else if (nso.pid() == v1::TARGET && in.target_pid > 0) {
    // CRI NamespaceMode TARGET: the PID namespace of container target_id (kubectl debug
    // --target), resolved by the runtime to its init process.
    ns.push_back({{"type", "pid"}, {"path", absl::StrCat("/proc/", in.target_pid, "/ns/pid")}});
  } else if (nso.pid() == v1::POD && in.sandbox.pid_mode_pod && pause > 0) {
    // The pause unshared a PID namespace for its children: the pod's shared PID namespace.
    ns.push_back(
        {{"type", "pid"}, {"path", absl::StrCat("/proc/", pause, "/ns/pid_for_children")}});
  } else {
    ns.push_back({{"type", "pid"}});
  }
  if (!in.sandbox.host_ipc && pause > 0) {
    ns.push_back({{"type", "ipc"}, {"path", absl::StrCat("/proc/", pause, "/ns/ipc")}});
  }
  if (!in.sandbox.host_network) {
    if (pause > 0)
      ns.push_back({{"type", "uts"}, {"path", absl::StrCat("/proc/", pause, "/ns/uts")}});
    if (!in.sandbox.netns_path.empty()) {
      ns.push_back({{"type", "network"}, {"path", in.sandbox.netns_path}});
    } else if (pause > 0) {
      ns.push_back({{"type", "network"}, {"path", absl::StrCat("/proc/", pause, "/ns/net")}});
    }
  }
  if (in.sandbox.userns.enabled() && pause > 0) {
    // The pod's user namespace, held by the pause; runc wants the mappings too.
    ns.push_back({{"type", "user"}, {"path", absl::StrCat("/proc/", pause, "/ns/user")}});
    linux["uidMappings"] = json::array({{{"containerID", 0},
                                         {"hostID", in.sandbox.userns.host_uid},
                                         {"size", in.sandbox.userns.length}}});
    linux["gidMappings"] = json::array({{{"containerID", 0},
                                         {"hostID", in.sandbox.userns.host_gid},
                                         {"size", in.sandbox.userns.length}}});
  }
  linux["namespaces"] = ns;
  json resources = ResourcesJson(res);
  if (privileged) {
    resources["devices"] = json::array({{{"allow", true}, {"access", "rwm"}}});
  } else {
    resources["devices"] = json::array({{{"allow", false}, {"access", "rwm"}}});
  }
  // CRI devices: the host node's major/minor, visible at container_path, allowed in the
  // device cgroup with the requested permissions.
  json devices = json::array();
  for (const auto& d : cfg.devices()) {
    struct stat st;
    if (stat(d.host_path().c_str(), &st) != 0) {
      return absl::InvalidArgumentError("device " + d.host_path() + ": " + strerror(errno));
    }
    const char* type = S_ISCHR(st.st_mode) ? "c" : S_ISBLK(st.st_mode) ? "b" : nullptr;
    if (type == nullptr)
      return absl::InvalidArgumentError("device " + d.host_path() + " is not a device node");
    std::string perms = d.permissions().empty() ? "rwm" : d.permissions();
    devices.push_back({{"path", d.container_path().empty() ? d.host_path() : d.container_path()},
                       {"type", type},
                       {"major", major(st.st_rdev)},
                       {"minor", minor(st.st_rdev)},
                       {"fileMode", st.st_mode & 07777},
                       {"uid", st.st_uid},
                       {"gid", st.st_gid}});
    if (!privileged) {
      resources["devices"].push_back({{"allow", true},
                                      {"type", type},
                                      {"major", major(st.st_rdev)},
                                      {"minor", minor(st.st_rdev)},
                                      {"access", perms}});
    }
  }
  if (!devices.empty()) linux["devices"] = devices;
  linux["resources"] = resources;
  if (!in.cgroups_path.empty()) linux["cgroupsPath"] = in.cgroups_path;
  if (!privileged) {
    std::vector<std::string> masked = {"/proc/acpi",          "/proc/asound",
                                       "/proc/kcore",         "/proc/keys",
                                       "/proc/latency_stats", "/proc/timer_list",
                                       "/proc/timer_stats",   "/proc/sched_debug",
                                       "/sys/firmware",       "/sys/devices/virtual/powercap",
                                       "/proc/scsi"};
    std::vector<std::string> ro = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                   "/proc/sysrq-trigger"};
    if (sc.masked_paths_size() > 0)
      masked.assign(sc.masked_paths().begin(), sc.masked_paths().end());
    if (sc.readonly_paths_size() > 0)
      ro.assign(sc.readonly_paths().begin(), sc.readonly_paths().end());
    linux["maskedPaths"] = masked;
    linux["readonlyPaths"] = ro;
  }
  ASSIGN_OR_RETURN(json seccomp, ContainerSeccomp(sc, caps));
  if (!seccomp.is_null()) linux["seccomp"] = std::move(seccomp);
  if (!in.sandbox.sysctls.empty()) linux["sysctl"] = in.sandbox.sysctls;
  if (!rootfs_propagation.empty()) linux["rootfsPropagation"] = rootfs_propagation;
  spec["linux"] = linux;

  json ann = json::object();
  for (const auto& [k, v] : cfg.annotations()) ann[k] = v;
  ann["io.kubernetes.cri.container-type"] = "container";
  ann["io.kubernetes.cri.container-name"] = cfg.metadata().name();
  ann["io.kubernetes.cri.sandbox-id"] = in.sandbox.id;
  ann["io.kubernetes.cri.sandbox-name"] = in.sandbox.sandbox_name;
  ann["io.kubernetes.cri.sandbox-namespace"] = in.sandbox.sandbox_namespace;
  ann["io.kubernetes.cri.sandbox-uid"] = in.sandbox.sandbox_uid;
  ann["io.kubernetes.cri.image-name"] = in.image_name;
  spec["annotations"] = ann;
  return spec;
}

}  // namespace berth::cri::runtime
