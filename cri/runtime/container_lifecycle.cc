// The lifecycle of a created container: StartContainer, StopContainer (stop signal, then
// SIGKILL), RemoveContainer, ContainerStatus, ListContainers, ExecSync and
// UpdateContainerResources.

#include "cri/runtime/runtime_records.h"  // first: before <signal.h> (runtime.h)

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "cri/image/snapshotter.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/oci_spec.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {
using nlohmann::json;

namespace {

int SignalNumber(const std::string& name) {
  static const std::map<std::string, int> kSignals = {
      {"SIGTERM", SIGTERM}, {"SIGKILL", SIGKILL}, {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},
      {"SIGHUP", SIGHUP},   {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH},
      {"SIGSTOP", SIGSTOP}, {"SIGPWR", SIGPWR}};
  std::string n = name;
  if (!absl::StartsWith(n, "SIG")) n = "SIG" + n;
  auto it = kSignals.find(n);
  if (it != kSignals.end()) return it->second;
  int v;
  if (absl::SimpleAtoi(name, &v)) return v;
  return SIGTERM;
}

// CRI Signal enum value -> signal number (the enum values are the Linux numbers).
int CriSignal(v1::Signal s) { return s == v1::RUNTIME_DEFAULT ? 0 : static_cast<int>(s); }

}  // namespace

absl::StatusOr<v1::StartContainerResponse> Runtime::StartContainer(
    const v1::StartContainerRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c)
    return absl::NotFoundError("StartContainer: container " + req.container_id() + " not found");
  absl::MutexLock ol(&c->op_mu);
  {
    absl::MutexLock l(&mu_);
    if (!c->created)
      return absl::NotFoundError("StartContainer: container " + c->id + " not found");
    if (c->state != v1::CONTAINER_CREATED) {
      return absl::FailedPreconditionError(
          absl::StrCat("StartContainer: container ", c->id, " is in state ",
                       v1::ContainerState_Name(c->state), ", not CONTAINER_CREATED"));
    }
  }
  RETURN_IF_ERROR(Annotate(RuntimeOf(*c)->Start(c->id), "StartContainer " + c->id));
  {
    absl::MutexLock l(&mu_);
    c->started_at = NowNs();
    if (c->state == v1::CONTAINER_CREATED) c->state = v1::CONTAINER_RUNNING;
    if (c->finished_at != 0 && c->finished_at < c->started_at) c->finished_at = c->started_at;
    RETURN_IF_ERROR(SaveContainer(*c));
  }
  EmitEvent(v1::CONTAINER_STARTED_EVENT, c->id, c->sandbox_id);
  return v1::StartContainerResponse();
}

absl::StatusOr<v1::StopContainerResponse> Runtime::StopContainer(
    const v1::StopContainerRequest& req) {
  auto c = FindContainer(req.container_id());
  // CRI: idempotent; a container that does not exist (any more) is stopped.
  if (!c) return v1::StopContainerResponse();
  absl::MutexLock ol(&c->op_mu);
  RETURN_IF_ERROR(StopContainerLocked(c.get(), req.timeout()));
  return v1::StopContainerResponse();
}

absl::Status Runtime::StopContainerLocked(ContainerRec* c, int64_t timeout_s) {
  v1::ContainerState state;
  {
    absl::MutexLock l(&mu_);
    if (!c->created) return absl::OkStatus();
    state = c->state;
  }
  if (state == v1::CONTAINER_EXITED || state == v1::CONTAINER_UNKNOWN) return absl::OkStatus();
  oci::OciRuntime* rt = RuntimeOf(*c);
  auto exited = [c]() { return c->state == v1::CONTAINER_EXITED; };
  if (state == v1::CONTAINER_RUNNING && timeout_s > 0) {
    int sig = CriSignal(c->config.stop_signal());
    if (sig == 0) sig = c->stop_signal.empty() ? SIGTERM : SignalNumber(c->stop_signal);
    RETURN_IF_ERROR(Annotate(rt->Kill(c->id, sig), "StopContainer " + c->id));
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&exited), absl::Seconds(timeout_s));
    if (c->state == v1::CONTAINER_EXITED) return absl::OkStatus();
  }
  RETURN_IF_ERROR(Annotate(rt->Kill(c->id, SIGKILL, /*all=*/true), "StopContainer " + c->id));
  if (state == v1::CONTAINER_CREATED) {
    // A never-started container has no exit to wait for from conmon in every case: ask runc.
    absl::MutexLock l(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&exited), absl::Seconds(5))) {
      c->state = v1::CONTAINER_EXITED;
      c->finished_at = NowNs();
      c->exit_code = 137;
      c->reason = "Error";
      RETURN_IF_ERROR(SaveContainer(*c));
    }
    return absl::OkStatus();
  }
  absl::MutexLock l(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&exited), absl::Minutes(2))) {
    return absl::DeadlineExceededError("StopContainer " + c->id +
                                       ": no exit within 2 minutes after SIGKILL");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::RemoveContainerResponse> Runtime::RemoveContainer(
    const v1::RemoveContainerRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c) return v1::RemoveContainerResponse();
  absl::MutexLock ol(&c->op_mu);
  RETURN_IF_ERROR(RemoveContainerLocked(c.get()));
  return v1::RemoveContainerResponse();
}

absl::Status Runtime::RemoveContainerLocked(ContainerRec* c) {
  {
    absl::MutexLock l(&mu_);
    if (!c->created) return absl::OkStatus();
  }
  RETURN_IF_ERROR(StopContainerLocked(c, 0));
  RETURN_IF_ERROR(Annotate(RuntimeOf(*c)->Delete(c->id), "RemoveContainer " + c->id));
  if (!c->bundle.empty()) RETURN_IF_ERROR(image::RemoveSnapshot(c->bundle));
  if (!c->bundle.empty())
    RETURN_IF_ERROR(Annotate(RemoveAll(c->bundle), "RemoveContainer " + c->id));
  unlink(JoinPath(ExitDir(), c->id).c_str());
  if (!c->cgroups_path.empty()) RemoveCgroup(HostCgroupMounts(), c->cgroups_path).IgnoreError();
  RETURN_IF_ERROR(deps_.db->Transaction([&]() -> absl::Status {
    return deps_.db->Exec("DELETE FROM runtime_containers WHERE id = ?1", {c->id});
  }));
  {
    absl::MutexLock l(&mu_);
    containers_.erase(c->id);
    container_names_.erase(c->name_key);
    c->created = false;
    c->create_status = absl::NotFoundError("container " + c->id + " was removed");
  }
  {
    absl::MutexLock l(&cpu_samples_mu_);
    cpu_samples_.erase(c->id);
  }
  EmitEvent(v1::CONTAINER_DELETED_EVENT, c->id, c->sandbox_id);
  return absl::OkStatus();
}

absl::StatusOr<v1::ListContainersResponse> Runtime::ListContainers(
    const v1::ListContainersRequest& req) {
  v1::ListContainersResponse r;
  const auto& f = req.filter();
  absl::MutexLock l(&mu_);
  for (const auto& [id, c] : containers_) {
    if (!c->created) continue;
    if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
    if (!f.pod_sandbox_id().empty() && !absl::StartsWith(c->sandbox_id, f.pod_sandbox_id()))
      continue;
    if (f.has_state() && f.state().state() != c->state) continue;
    if (!MatchLabels(c->config.labels(), f.label_selector())) continue;
    auto* x = r.add_containers();
    x->set_id(id);
    x->set_pod_sandbox_id(c->sandbox_id);
    *x->mutable_metadata() = c->config.metadata();
    x->mutable_image()->set_image(c->image_name);
    x->set_image_ref(c->image_ref);
    x->set_image_id(c->image_id);
    x->set_state(c->state);
    x->set_created_at(c->created_at);
    *x->mutable_labels() = c->config.labels();
    *x->mutable_annotations() = c->config.annotations();
  }
  return r;
}

absl::StatusOr<v1::ContainerStatusResponse> Runtime::ContainerStatus(
    const v1::ContainerStatusRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c)
    return absl::NotFoundError("ContainerStatus: container " + req.container_id() + " not found");
  v1::ContainerStatusResponse r;
  absl::MutexLock l(&mu_);
  if (!c->created)
    return absl::NotFoundError("ContainerStatus: container " + req.container_id() + " not found");
  auto* st = r.mutable_status();
  st->set_id(c->id);
  *st->mutable_metadata() = c->config.metadata();
  st->set_state(c->state);
  st->set_created_at(c->created_at);
  st->set_started_at(c->started_at);
  st->set_finished_at(c->finished_at);
  st->set_exit_code(c->exit_code);
  *st->mutable_image() = c->config.image();
  st->set_image_ref(c->image_ref);
  st->set_image_id(c->image_id);
  st->set_reason(c->reason);
  st->set_message(c->message);
  *st->mutable_labels() = c->config.labels();
  *st->mutable_annotations() = c->config.annotations();
  *st->mutable_mounts() = c->config.mounts();
  st->set_log_path(c->log_path);
  if (c->user_known) {
    auto* u = st->mutable_user()->mutable_linux();
    u->set_uid(c->uid);
    u->set_gid(c->gid);
    for (int64_t g : c->supplemental_groups) u->add_supplemental_groups(g);
  }
  *st->mutable_resources()->mutable_linux() = c->config.linux().resources();
  if (req.verbose()) {
    json info = {{"pid", c->pid},
                 {"sandboxID", c->sandbox_id},
                 {"bundle", c->bundle},
                 {"rootfs", c->rootfs},
                 {"cgroupsPath", c->cgroups_path},
                 {"cgroupPath", c->cgroups_path},
                 {"runtimeHandler", c->runtime_handler},
                 {"stdin", c->config.stdin()},
                 {"stdinOnce", c->config.stdin_once()}};
    (*r.mutable_info())["info"] = info.dump();
  }
  return r;
}

absl::StatusOr<v1::ExecSyncResponse> Runtime::ExecSync(const v1::ExecSyncRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c) return absl::NotFoundError("ExecSync: container " + req.container_id() + " not found");
  {
    absl::MutexLock l(&mu_);
    if (c->state != v1::CONTAINER_RUNNING) {
      return absl::FailedPreconditionError("ExecSync: container " + c->id + " is not running");
    }
  }
  std::vector<std::string> cmd(req.cmd().begin(), req.cmd().end());
  if (cmd.empty()) return absl::InvalidArgumentError("ExecSync: empty command");
  auto timeout =
      req.timeout() > 0 ? std::chrono::milliseconds(req.timeout() * 1000) : std::chrono::hours(24);
  ASSIGN_OR_RETURN(oci::ExecResult er, RuntimeOf(*c)->ExecSync(c->id, cmd, timeout));
  if (er.timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        "ExecSync in container ", c->id, ": command timed out after ", req.timeout(), "s"));
  }
  v1::ExecSyncResponse r;
  r.set_stdout(er.stdout_data);
  r.set_stderr(er.stderr_data);
  r.set_exit_code(er.exit_code);
  return r;
}

absl::StatusOr<v1::UpdateContainerResourcesResponse> Runtime::UpdateContainerResources(
    const v1::UpdateContainerResourcesRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c)
    return absl::NotFoundError("UpdateContainerResources: container " + req.container_id() +
                               " not found");
  absl::MutexLock ol(&c->op_mu);
  v1::LinuxContainerResources res = req.linux();
  res.set_oom_score_adj(0);  // not a cgroup setting
  json j = ResourcesJson(res);
  bool running;
  {
    absl::MutexLock l(&mu_);
    running = c->state == v1::CONTAINER_RUNNING || c->state == v1::CONTAINER_CREATED;
  }
  if (running)
    RETURN_IF_ERROR(Annotate(RuntimeOf(*c)->UpdateResources(c->id, j.dump()),
                             "UpdateContainerResources " + c->id));
  absl::MutexLock l(&mu_);
  int64_t adj = c->config.linux().resources().oom_score_adj();
  *c->config.mutable_linux()->mutable_resources() = req.linux();
  c->config.mutable_linux()->mutable_resources()->set_oom_score_adj(adj);
  RETURN_IF_ERROR(SaveContainer(*c));
  return v1::UpdateContainerResourcesResponse();
}

}  // namespace berth::cri::runtime
