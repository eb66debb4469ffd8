// PodSandboxStatus and ListPodSandbox, served from the in-memory records.

#include "cri/runtime/runtime_records.h"  // first: before <signal.h> (runtime.h)

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {
using nlohmann::json;

absl::StatusOr<v1::PodSandboxStatusResponse> Runtime::PodSandboxStatus(
    const v1::PodSandboxStatusRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb) return absl::NotFoundError("pod sandbox " + req.pod_sandbox_id() + " not found");
  v1::PodSandboxStatusResponse r;
  absl::MutexLock l(&mu_);
  if (!sb->created)
    return absl::NotFoundError("pod sandbox " + req.pod_sandbox_id() + " is being created");
  auto* st = r.mutable_status();
  st->set_id(sb->id);
  *st->mutable_metadata() = sb->config.metadata();
  st->set_state(sb->state);
  st->set_created_at(sb->created_at);
  st->mutable_network()->set_ip(sb->ip);
  for (const auto& ip : sb->additional_ips) st->mutable_network()->add_additional_ips()->set_ip(ip);
  *st->mutable_linux()->mutable_namespaces()->mutable_options() =
      sb->config.linux().security_context().namespace_options();
  *st->mutable_labels() = sb->config.labels();
  *st->mutable_annotations() = sb->config.annotations();
  st->set_runtime_handler(sb->runtime_handler);
  if (req.verbose()) {
    json info = {{"pid", sb->pause_pid},
                 {"netnsPath", sb->netns_path},
                 {"cgroupPath", sb->cgroup_path},
                 {"sandboxDir", sb->dir},
                 {"runtimeHandler", sb->runtime_handler}};
    (*r.mutable_info())["info"] = info.dump();
  }
  return r;
}

absl::StatusOr<v1::ListPodSandboxResponse> Runtime::ListPodSandbox(
    const v1::ListPodSandboxRequest& req) {
  v1::ListPodSandboxResponse r;
  const auto& f = req.filter();
  absl::MutexLock l(&mu_);
  for (const auto& [id, sb] : sandboxes_) {
    if (!sb->created) continue;
    if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
    if (f.has_state() && f.state().state() != sb->state) continue;
    if (!MatchLabels(sb->config.labels(), f.label_selector())) continue;
    auto* p = r.add_items();
    p->set_id(id);
    *p->mutable_metadata() = sb->config.metadata();
    p->set_state(sb->state);
    p->set_created_at(sb->created_at);
    *p->mutable_labels() = sb->config.labels();
    *p->mutable_annotations() = sb->config.annotations();
    p->set_runtime_handler(sb->runtime_handler);
  }
  return r;
}

}  // namespace berth::cri::runtime
