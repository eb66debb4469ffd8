// CreateContainer: the container's rootfs snapshot (cri/image/snapshotter.h), its OCI spec
// (oci_spec.h) in a bundle directory, and `runc create` under conmon.

#include "cri/runtime/runtime_records.h"  // first: before <signal.h> (runtime.h)

#include <unistd.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "cri/image/snapshotter.h"
#include "cri/runtime/oci_spec.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {
using nlohmann::json;

absl::StatusOr<v1::CreateContainerResponse> Runtime::CreateContainer(
    const v1::CreateContainerRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb)
    return absl::NotFoundError("CreateContainer: pod sandbox " + req.pod_sandbox_id() +
                               " not found");
  const auto& md = req.config().metadata();
  if (md.name().empty())
    return absl::InvalidArgumentError("CreateContainer: metadata.name is required");
  std::string key = ContainerNameKey(sb->id, md);
  // Shared hold of the sandbox: containers of one pod are created in parallel, but not while
  // the sandbox is being created, stopped or removed. Lock order: sandbox op_mu -> container
  // op_mu -> mu_.
  absl::ReaderMutexLock sbl(&sb->op_mu);
  auto c = std::make_shared<ContainerRec>();
  c->op_mu.Lock();  // before mu_: lock order is op_mu -> mu_
  {
    mu_.Lock();
    if (!sb->created || sb->state != v1::SANDBOX_READY) {
      mu_.Unlock();
      c->op_mu.Unlock();
      return absl::FailedPreconditionError("CreateContainer: pod sandbox " + sb->id +
                                           " is not ready");
    }
    auto it = container_names_.find(key);
    if (it != container_names_.end()) {
      auto existing = containers_.at(it->second);
      mu_.Unlock();
      c->op_mu.Unlock();
      absl::MutexLock ol(&existing->op_mu);
      if (!existing->created) return Annotate(existing->create_status, "CreateContainer " + key);
      v1::CreateContainerResponse r;
      r.set_container_id(existing->id);
      return r;
    }
    c->id = NewId();
    c->sandbox_id = sb->id;
    c->name_key = key;
    c->config = req.config();
    c->created_at = NowNs();
    c->runtime_handler = sb->runtime_handler;
    container_names_[key] = c->id;
    containers_[c->id] = c;
    mu_.Unlock();
  }
  absl::Status s = CreateContainerLocked(c.get(), sb.get());
  if (!s.ok()) {
    RuntimeOf(*c)->Delete(c->id).IgnoreError();
    if (!c->bundle.empty()) {
      image::RemoveSnapshot(c->bundle).IgnoreError();
      RemoveAll(c->bundle).IgnoreError();
    }
    unlink(JoinPath(ExitDir(), c->id).c_str());
    c->create_status = s;
    {
      absl::MutexLock l(&mu_);
      containers_.erase(c->id);
      container_names_.erase(key);
    }
    c->op_mu.Unlock();
    return Annotate(s, "CreateContainer " + md.name() + " in pod sandbox " + sb->id);
  }
  c->op_mu.Unlock();
  EmitEvent(v1::CONTAINER_CREATED_EVENT, c->id, c->sandbox_id);
  v1::CreateContainerResponse r;
  r.set_container_id(c->id);
  return r;
}

absl::Status Runtime::CreateContainerLocked(ContainerRec* c, SandboxRec* sb) {
  const auto& cfg = c->config;
  c->image_name = cfg.image().image();
  ASSIGN_OR_RETURN(image::ResolvedImage img, deps_.images->Resolve(c->image_name));
  c->image_id = img.id;
  c->image_ref = !img.repo_digests.empty() ? img.repo_digests[0] : img.id;
  c->stop_signal = img.config.stop_signal;
  c->bundle = JoinPath(JoinPath(opts_.root_dir, "containers"), c->id);
  c->rootfs = image::SnapshotPathsIn(c->bundle).rootfs;
  if (img.layer_dirs.empty())
    return absl::FailedPreconditionError("image " + img.id + " has no layers");
  PodUsernsMaps userns;
  pid_t pause_pid = 0;
  {
    absl::MutexLock l(&mu_);
    userns = PodUserns(sb->config).value_or(PodUsernsMaps{});
    pause_pid = sb->pause_pid;
  }
  // A user-namespaced pod: the layers are seen through the pod's user namespace and the
  // writable layer is owned by the pod's root, so the image's root-owned files are root's
  // inside the pod.
  std::optional<image::SnapshotIdmap> idmap;
  if (userns.enabled()) {
    if (pause_pid <= 0)
      return absl::FailedPreconditionError("pod sandbox " + sb->id + " has no infra process");
    idmap = image::SnapshotIdmap{.userns_path = absl::StrCat("/proc/", pause_pid, "/ns/user"),
                                 .host_uid = static_cast<uid_t>(userns.host_uid),
                                 .host_gid = static_cast<gid_t>(userns.host_gid)};
  }
  RETURN_IF_ERROR(image::PrepareSnapshot(c->bundle, img.layer_dirs, idmap).status());
  // CRI mounts: kubelet normally creates the host paths; create missing ones like containerd.
  for (const auto& m : cfg.mounts()) {
    if (!m.host_path().empty() && !PathExists(m.host_path()))
      RETURN_IF_ERROR(MkdirAll(m.host_path(), 0755));
  }
  SpecInput in;
  in.container_id = c->id;
  in.config = &cfg;
  in.image = &img;
  in.image_name = c->image_name;
  in.rootfs = c->rootfs;
  {
    absl::MutexLock l(&mu_);
    in.sandbox.id = sb->id;
    in.sandbox.pause_pid = sb->pause_pid;
    in.sandbox.netns_path = sb->netns_path;
    in.sandbox.host_network = sb->host_network;
    in.sandbox.host_ipc = sb->host_ipc;
    in.sandbox.pid_mode_pod =
        sb->config.linux().security_context().namespace_options().pid() == v1::POD;
    in.sandbox.hostname = sb->config.hostname();
    in.sandbox.hosts_path = JoinPath(sb->dir, "hosts");
    in.sandbox.hostname_path = JoinPath(sb->dir, "hostname");
    in.sandbox.resolv_conf_path = JoinPath(sb->dir, "resolv.conf");
    in.sandbox.shm_path = sb->shm_path;
    in.sandbox.sandbox_name = sb->config.metadata().name();
    in.sandbox.sandbox_namespace = sb->config.metadata().namespace_();
    in.sandbox.sandbox_uid = sb->config.metadata().uid();
    in.sandbox.sysctls.insert(sb->config.linux().sysctls().begin(),
                              sb->config.linux().sysctls().end());
    in.sandbox.userns = userns;
    const auto& pid_ns = cfg.linux().security_context().namespace_options();
    if (pid_ns.pid() == v1::TARGET) {
      // The target must be a running container of the same sandbox (as containerd).
      auto t = containers_.find(pid_ns.target_id());
      if (t == containers_.end() || t->second->sandbox_id != sb->id) {
        return absl::NotFoundError(absl::StrCat("CreateContainer: PID namespace target container ",
                                                pid_ns.target_id(), " not found in pod sandbox ",
                                                sb->id));
      }
      if (t->second->state != v1::CONTAINER_RUNNING || t->second->pid <= 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("CreateContainer: PID namespace target container ", pid_ns.target_id(),
                         " is not running"));
      }
      in.target_pid = t->second->pid;
    }
    c->cgroups_path = sb->cgroup_path + "/" + c->id;
    if (!sb->config.log_directory().empty() && !cfg.log_path().empty()) {
      c->log_path = JoinPath(sb->config.log_directory(), cfg.log_path());
    }
  }
  in.cgroups_path = c->cgroups_path;
  in.passwd = ReadFile(JoinPath(c->rootfs, "etc/passwd")).value_or("");
  in.group = ReadFile(JoinPath(c->rootfs, "etc/group")).value_or("");
  in.current_oom_score_adj = current_oom_score_adj_;
  in.cap_bounding = cap_bounding_;
  ASSIGN_OR_RETURN(json spec, GenerateSpec(in));
  if (const json& u = spec["process"]["user"]; u.is_object()) {
    c->user_known = true;
    c->uid = u.value("uid", int64_t{0});
    c->gid = u.value("gid", int64_t{0});
    c->supplemental_groups = u.value("additionalGids", std::vector<int64_t>{});
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(c->bundle, "config.json"), spec.dump(2)));
  if (!c->log_path.empty()) {
    std::string dir = c->log_path.substr(0, c->log_path.rfind('/'));
    if (!dir.empty()) RETURN_IF_ERROR(MkdirAll(dir, 0755));
  }
  oci::CreateOptions co;
  co.id = c->id;
  co.bundle = c->bundle;
  co.log_path = c->log_path;
  co.exit_dir = ExitDir();
  co.stdin_open = cfg.stdin();
  co.stdin_once = cfg.stdin_once();
  co.tty = cfg.tty();
  ASSIGN_OR_RETURN(oci::CreateResult cr, RuntimeOf(*c)->Create(co));
  absl::MutexLock l(&mu_);
  c->pid = cr.pid;
  c->created = true;
  if (c->state != v1::CONTAINER_EXITED) c->state = v1::CONTAINER_CREATED;
  return SaveContainer(*c);
}

}  // namespace berth::cri::runtime
