// RunPodSandbox: the sandbox's /etc files and /dev/shm, its pod cgroup, the infra (pause)
// process with the pod's namespaces, and its CNI network; TeardownSandbox undoes them.

#include "cri/runtime/runtime_records.h"  // first: before <signal.h> (runtime.h)

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mount.h"
#include "base/status.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/oci_spec.h"

namespace berth::cri::runtime {

namespace {

// User-namespaced pods: the mapped users (not the host's root) resolve the rootfs paths under
// the root dir, so `dir` and every directory above it must be searchable by others (o+x).
// FailedPrecondition naming the first one that is not, with its mode.
absl::Status CheckSearchableByOthers(const std::string& dir) {
  std::string p = dir;
  while (!p.empty()) {
    struct stat st;
    if (stat(p.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + p);
    if ((st.st_mode & S_IXOTH) == 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "user namespaces: %s (mode %04o) is not searchable by the pod's mapped users; every "
          "directory above --root-dir %s needs o+x (e.g. chmod 0711 %s)",
          p, st.st_mode & 07777, dir, p));
    }
    if (p == "/") break;
    size_t slash = p.rfind('/');
    if (slash == std::string::npos) break;  // relative: its top
    p = slash == 0 ? "/" : p.substr(0, slash);
  }
  return absl::OkStatus();
}

std::string HostsFile() {
  return "127.0.0.1\tlocalhost\n"
         "::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\n"
         "ff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n";
}

}  // namespace

absl::StatusOr<v1::RunPodSandboxResponse> Runtime::RunPodSandbox(
    const v1::RunPodSandboxRequest& req) {
  const auto& md = req.config().metadata();
  if (md.name().empty() || md.namespace_().empty() || md.uid().empty()) {
    return absl::InvalidArgumentError(
        "RunPodSandbox: metadata name, namespace and uid are required");
  }
  ASSIGN_OR_RETURN(oci::OciRuntime * rt, RuntimeFor(req.runtime_handler()));
  (void)rt;
  if (auto u = PodUserns(req.config()); !u.ok()) {
    return Annotate(u.status(), "RunPodSandbox");
  } else if (u->enabled()) {
    RETURN_IF_ERROR(Annotate(CheckSearchableByOthers(opts_.root_dir), "RunPodSandbox"));
  }
  std::string key = SandboxNameKey(md);
  // The new record's op_mu is taken before mu_ (never under it): lock order is op_mu -> mu_.
  auto sb = std::make_shared<SandboxRec>();
  sb->op_mu.Lock();
  {
    mu_.Lock();
    auto it = sandbox_names_.find(key);
    if (it != sandbox_names_.end()) {
      auto existing = sandboxes_.at(it->second);
      mu_.Unlock();
      sb->op_mu.Unlock();
      absl::MutexLock ol(&existing->op_mu);  // waits for an in-flight creation
      if (!existing->created) {
        return Annotate(existing->create_status,
                        "RunPodSandbox " + key + " (retried while in flight)");
      }
      v1::RunPodSandboxResponse r;
      r.set_pod_sandbox_id(existing->id);
      return r;
    }
    sb->id = NewId();
    sb->name_key = key;
    sb->config = req.config();
    sb->runtime_handler = req.runtime_handler();
    sb->created_at = NowNs();
    sandbox_names_[key] = sb->id;
    sandboxes_[sb->id] = sb;
    mu_.Unlock();
  }
  absl::Status s = SetupSandbox(sb.get());
  if (!s.ok()) {
    TeardownSandbox(sb.get());
    if (!sb->cgroup_path.empty()) {
      absl::Status cs = RemoveCgroup(HostCgroupMounts(), sb->cgroup_path);
      if (!cs.ok()) {
        LOG(WARNING) << "runtime: undo sandbox " << sb->id << ": " << cs;
      }
    }
    if (!sb->dir.empty()) RemoveAll(sb->dir).IgnoreError();
    sb->create_status = s;
    {
      absl::MutexLock l(&mu_);
      sandbox_names_.erase(key);
      sandboxes_.erase(sb->id);
    }
    sb->op_mu.Unlock();
    return Annotate(s, "RunPodSandbox " + key);
  }
  sb->op_mu.Unlock();
  LOG(INFO) << "runtime: sandbox " << sb->id << " (" << key << ") ready, ip " << sb->ip;
  EmitEvent(v1::CONTAINER_CREATED_EVENT, sb->id, sb->id);
  EmitEvent(v1::CONTAINER_STARTED_EVENT, sb->id, sb->id);
  v1::RunPodSandboxResponse r;
  r.set_pod_sandbox_id(sb->id);
  return r;
}

// The CNI request of a sandbox: IDs, K8S_POD_* args, hostPorts and DNS from its config
// (bandwidth and ipRanges are the caller's).
static cni::AttachRequest CniAttachRequest(const Runtime::SandboxRec& sb) {
  const auto& cfg = sb.config;
  cni::AttachRequest ar;
  ar.container_id = sb.id;
  ar.netns_path = sb.netns_path;
  ar.pod_name = cfg.metadata().name();
  ar.pod_namespace = cfg.metadata().namespace_();
  ar.pod_uid = cfg.metadata().uid();
  for (const auto& pm : cfg.port_mappings()) {
    if (pm.host_port() <= 0) continue;
    cni::PortMapping m;
    m.host_port = pm.host_port();
    m.container_port = pm.container_port();
    m.protocol = pm.protocol() == v1::UDP ? "udp" : pm.protocol() == v1::SCTP ? "sctp" : "tcp";
    m.host_ip = pm.host_ip();
    ar.port_mappings.push_back(m);
  }
  const auto& dns = cfg.dns_config();
  ar.dns.servers.assign(dns.servers().begin(), dns.servers().end());
  ar.dns.searches.assign(dns.searches().begin(), dns.searches().end());
  ar.dns.options.assign(dns.options().begin(), dns.options().end());
  return ar;
}

absl::Status Runtime::SetupSandbox(SandboxRec* sb) {
  const auto& cfg = sb->config;
  const auto& nso = cfg.linux().security_context().namespace_options();
  sb->host_network = nso.network() == v1::NODE;
  sb->host_ipc = nso.ipc() == v1::NODE;
  sb->dir = JoinPath(JoinPath(opts_.root_dir, "sandboxes"), sb->id);
  RETURN_IF_ERROR(MkdirAll(sb->dir, 0755));

  // /etc files.
  std::string hostname = cfg.hostname();
  if (sb->host_network || hostname.empty()) {
    char buf[256] = {};
    gethostname(buf, sizeof(buf) - 1);
    if (sb->host_network || hostname.empty()) hostname = buf;
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(sb->dir, "hostname"), hostname + "\n"));
  std::string hosts = HostsFile();
  if (sb->host_network) {
    auto h = ReadFile("/etc/hosts");
    if (h.ok()) hosts = *h;
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(sb->dir, "hosts"), hosts));
  std::string resolv = ResolvConf(cfg.dns_config());
  if (resolv.empty()) {
    auto h = ReadFile("/etc/resolv.conf");
    resolv = h.ok() ? *h : "";
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(sb->dir, "resolv.conf"), resolv));

  // /dev/shm shared by the pod's containers.
  if (sb->host_ipc) {
    sb->shm_path = "/dev/shm";
  } else {
    std::string shm = JoinPath(sb->dir, "shm");
    RETURN_IF_ERROR(MkdirAll(shm, 0755));
    if (mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=1777,size=65536k") != 0) {
      return ErrnoStatus(errno, "mount tmpfs for sandbox /dev/shm at " + shm);
    }
    sb->shm_path = shm;
  }

  // Pod cgroup.
  std::string parent = cfg.linux().cgroup_parent();
  if (parent.empty()) parent = "/berth/" + sb->id;
  if (!absl::StartsWith(parent, "/")) parent = "/" + parent;
  sb->cgroup_path = opts_.cgroup_root + parent;
  auto mounts = HostCgroupMounts();
  ASSIGN_OR_RETURN(auto leaves, CreateCgroup(mounts, sb->cgroup_path));

  // Infra process.
  InfraRequest ir;
  ir.net = !sb->host_network;
  ir.ipc = !sb->host_ipc;
  ir.uts = !sb->host_network;
  ir.pid = nso.pid() == v1::POD;
  ir.hostname = sb->host_network ? "" : hostname;
  for (const auto& leaf : leaves) ir.cgroup_procs_files.push_back(JoinPath(leaf, "cgroup.procs"));
  ASSIGN_OR_RETURN(PodUsernsMaps userns, PodUserns(cfg));
  ir.uid_map = userns.uid_map;
  ir.gid_map = userns.gid_map;
  ASSIGN_OR_RETURN(sb->pause_pid, deps_.infra->Start(ir));

  // Network.
  if (!sb->host_network) {
    sb->netns_path = JoinPath(JoinPath(opts_.state_dir, "netns"), sb->id);
    RETURN_IF_ERROR(deps_.infra->BindNetns(sb->pause_pid, sb->netns_path));
    cni::AttachRequest ar = CniAttachRequest(*sb);
    std::vector<std::pair<std::string, std::string>> annotations(cfg.annotations().begin(),
                                                                 cfg.annotations().end());
    {
      absl::MutexLock l(&mu_);
      ar.ip_range_subnets = pod_cidrs_;
    }
    ASSIGN_OR_RETURN(ar.bandwidth, cni::BandwidthFromAnnotations(annotations));
    sb->network_attached = true;  // so teardown runs DEL even after a partial ADD
    ASSIGN_OR_RETURN(cni::AttachResult res, deps_.network->Add(ar));
    if (!res.ips.empty()) {
      sb->ip = res.ips[0];
      sb->additional_ips.assign(res.ips.begin() + 1, res.ips.end());
    }
  }
  absl::MutexLock l(&mu_);
  sb->state = v1::SANDBOX_READY;
  sb->created = true;
  return SaveSandbox(*sb);
}

void Runtime::TeardownSandbox(SandboxRec* sb) {
  const auto& cfg = sb->config;
  if (sb->network_attached && !sb->netns_path.empty()) {
    // The same arguments as ADD (portmap's DEL needs the port mappings to remove its rules).
    cni::AttachRequest ar = CniAttachRequest(*sb);
    ar.netns_path = PathExists(sb->netns_path) ? sb->netns_path : "";
    std::vector<std::pair<std::string, std::string>> annotations(cfg.annotations().begin(),
                                                                 cfg.annotations().end());
    ar.bandwidth = cni::BandwidthFromAnnotations(annotations).value_or(cni::Bandwidth{});
    absl::Status s = deps_.network->Del(ar);
    if (!s.ok()) {
      LOG(WARNING) << "runtime: sandbox " << sb->id << ": CNI DEL: " << s;
    } else {
      sb->network_attached = false;
    }
  }
  if (sb->pause_pid > 0) {
    absl::Status s = deps_.infra->Stop(sb->pause_pid);
    if (!s.ok()) {
      LOG(WARNING) << "runtime: sandbox " << sb->id << ": stop pause: " << s;
    } else {
      sb->pause_pid = 0;
    }
  }
  if (!sb->netns_path.empty()) {
    absl::Status s = deps_.infra->UnbindNetns(sb->netns_path);
    if (!s.ok()) {
      LOG(WARNING) << "runtime: sandbox " << sb->id << ": unbind netns: " << s;
    }
  }
  if (!sb->shm_path.empty() && sb->shm_path != "/dev/shm") {
    UnmountStack(sb->shm_path).IgnoreError();
  }
}

}  // namespace berth::cri::runtime
