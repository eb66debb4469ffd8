// StopPodSandbox and RemovePodSandbox: stop the pod's containers, tear the sandbox down
// (CNI DEL, pause, netns, /dev/shm), then remove its containers, cgroup, directory and record.

#include "cri/runtime/runtime_records.h"  // first: before <signal.h> (runtime.h)

#include "base/file.h"
#include "base/mount.h"
#include "base/status.h"
#include "cri/runtime/cgroups.h"

namespace berth::cri::runtime {

absl::StatusOr<v1::StopPodSandboxResponse> Runtime::StopPodSandbox(
    const v1::StopPodSandboxRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb) return v1::StopPodSandboxResponse();  // CRI: idempotent, resources already reclaimed
  {
    absl::MutexLock ol(&sb->op_mu);
    RETURN_IF_ERROR(StopSandboxLocked(sb.get()));
  }
  EmitEvent(v1::CONTAINER_STOPPED_EVENT, sb->id, sb->id);
  return v1::StopPodSandboxResponse();
}

absl::Status Runtime::StopSandboxLocked(SandboxRec* sb) {
  if (!sb->created) return absl::OkStatus();
  std::vector<std::shared_ptr<ContainerRec>> cs;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, c] : containers_) {
      if (c->sandbox_id == sb->id) cs.push_back(c);
    }
  }
  for (auto& c : cs) {
    absl::MutexLock ol(&c->op_mu);
    RETURN_IF_ERROR(Annotate(StopContainerLocked(c.get(), 0), "stop pod sandbox " + sb->id));
  }
  TeardownSandbox(sb);
  absl::MutexLock l(&mu_);
  sb->state = v1::SANDBOX_NOTREADY;
  return SaveSandbox(*sb);
}

absl::StatusOr<v1::RemovePodSandboxResponse> Runtime::RemovePodSandbox(
    const v1::RemovePodSandboxRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb) return v1::RemovePodSandboxResponse();
  absl::MutexLock ol(&sb->op_mu);
  if (!sb->created) return v1::RemovePodSandboxResponse();
  RETURN_IF_ERROR(StopSandboxLocked(sb.get()));
  std::vector<std::shared_ptr<ContainerRec>> cs;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, c] : containers_) {
      if (c->sandbox_id == sb->id) cs.push_back(c);
    }
  }
  for (auto& c : cs) {
    absl::MutexLock ol2(&c->op_mu);
    RETURN_IF_ERROR(Annotate(RemoveContainerLocked(c.get()), "remove pod sandbox " + sb->id));
  }
  if (!sb->cgroup_path.empty()) {
    RETURN_IF_ERROR(Annotate(RemoveCgroup(HostCgroupMounts(), sb->cgroup_path),
                             "remove pod sandbox " + sb->id));
  }
  if (!sb->shm_path.empty() && sb->shm_path != "/dev/shm")
    RETURN_IF_ERROR(UnmountStack(sb->shm_path));
  RETURN_IF_ERROR(Annotate(RemoveAll(sb->dir), "remove pod sandbox " + sb->id));
  RETURN_IF_ERROR(deps_.db->Transaction([&]() -> absl::Status {
    return deps_.db->Exec("DELETE FROM runtime_sandboxes WHERE id = ?1", {sb->id});
  }));
  {
    absl::MutexLock l(&mu_);
    sandboxes_.erase(sb->id);
    sandbox_names_.erase(sb->name_key);
    sb->created = false;
    sb->create_status = absl::NotFoundError("pod sandbox " + sb->id + " was removed");
  }
  {
    absl::MutexLock l(&cpu_samples_mu_);
    cpu_samples_.erase("pod:" + sb->id);
  }
  EmitEvent(v1::CONTAINER_DELETED_EVENT, sb->id, sb->id);
  return v1::RemovePodSandboxResponse();
}

}  // namespace berth::cri::runtime
