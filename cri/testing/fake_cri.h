// The fake CRI for unit tests: in-memory implementations of cri::RuntimeService and
// cri::ImageService, shared by every test that needs a runtime without runc (the kubelet's
// pod workers, stats, log rotation and server; the CRI gRPC server). Not for production use.
//
// What it models (as berth's runtime and containerd do, simplified):
//   - Pod sandboxes and containers with their CRI states. RunPodSandbox -> SANDBOX_READY;
//     CreateContainer -> CONTAINER_CREATED (NotFound for an unknown sandbox); StartContainer
//     -> RUNNING; StopContainer and StopPodSandbox -> EXITED with code 137;
//     Remove* deletes. List* apply the CRI filters (id prefix, sandbox, state, labels).
//   - Images: PullImage makes an image present (id RefOf(image)), ImageStatus finds it by tag
//     or id, ListImages/RemoveImage/ImageFsInfo work on the same set.
// What tests control:
//   - Seeded objects with fixed IDs and any field (AddSandbox, AddContainer, AddImage).
//   - Errors: SetError("ListPodSandbox", status) makes every call of that RPC fail.
//   - Hooks: OnExec(fn), OnReopenContainerLog(fn), ... replace any unary RPC's behaviour (the
//     hook runs without the fake's lock; it may call the fake).
//   - Exits: ExitOnStart(name, code), ExitContainer(id, code), with a listener
//     (SetExitListener) called as berth's runtime calls its exit callbacks.
//   - Pulls: FailPull, RequireUser (Unauthenticated unless that user), HoldPulls/Release.
// What tests observe: Calls() (a log of mutating calls, e.g. "StartContainer main"),
// WaitForCalls(pred), CallCount("ContainerStatus") (every call of any RPC), LastRequest<T>(),
// and snapshots of the state (Sandboxes(), Containers()).
// RPCs neither modelled nor hooked return the interface's default (Unimplemented).
//
// Timestamps are fake and strictly increasing (1 ms apart from 2024-01-01), so ordering by
// created_at is deterministic. IDs are "sb<n>" and "ctr<n>" unless seeded.
//
// Example (a scenario class seeds the fake; hooks cover RPCs it does not model):
//   class OnePod : public cri::testing::FakeRuntimeService {
//    public:
//     OnePod() {
//       AddSandbox("sb1", {.state = v1::SANDBOX_READY});
//       AddContainer("c1", {.sandbox_id = "sb1", .state = v1::CONTAINER_RUNNING});
//       OnExec([](const v1::ExecRequest&) -> absl::StatusOr<v1::ExecResponse> { ... });
//     }
//   };
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cri/runtime_service.h"

namespace berth::cri::testing {

class FakeRuntimeService : public RuntimeService {
 public:
  struct Sandbox {
    v1::PodSandboxConfig config;
    v1::PodSandboxState state = v1::SANDBOX_READY;
    int64_t created_at = 0;  // 0 when seeded: set to the fake clock
    std::string ip;          // PodSandboxStatus network.ip while READY
    std::string runtime_handler;
    // JSON for PodSandboxStatus(verbose).info["info"] (berth's runtime: pid, cgroupPath, ...);
    // "" for no verbose info.
    std::string info;
  };
  struct Container {
    std::string sandbox_id;
    v1::ContainerConfig config;
    v1::ContainerState state = v1::CONTAINER_CREATED;
    int64_t created_at = 0, started_at = 0, finished_at = 0;  // created_at 0: the fake clock
    int32_t exit_code = 0;
    std::string image_ref;  // ContainerStatus.image_ref; "" = config.image().image()
    std::string log_path;   // ContainerStatus.log_path; "" = config.log_path()
    std::string info;       // JSON for ContainerStatus(verbose).info["info"]; "" for none
  };

  // ---- state set-up
  // Adds (or replaces) a sandbox / container under a fixed ID.
  void AddSandbox(const std::string& id, Sandbox sandbox);
  void AddContainer(const std::string& id, Container container);
  // Makes every call of RPC `method` (its name, e.g. "ListPodSandbox") return `status`;
  // OkStatus() clears it. Checked before hooks and state.
  void SetError(const std::string& method, absl::Status status);
  // Containers whose metadata name is `name` exit with `code` as soon as they start.
  void ExitOnStart(const std::string& name, int code);
  // Called (outside the fake's lock) with the ID of each container that exits.
  void SetExitListener(std::function<void(const std::string&)> fn);
  // Makes container `id` exit with `code` now and notifies the listener. The container must
  // exist (std::out_of_range otherwise).
  void ExitContainer(const std::string& id, int code);

  // ---- hooks: `fn` replaces the RPC's behaviour (nullptr restores it).
#define BERTH_FAKE_CRI_HOOK_SETTER_(name, req, resp) \
  void On##name(std::function<absl::StatusOr<v1::resp>(const v1::req&)> fn);
  BERTH_CRI_RUNTIME_RPCS(BERTH_FAKE_CRI_HOOK_SETTER_)

  // ---- observation
  // Mutating calls in order: "RunPodSandbox <pod name>", "StopPodSandbox <id>",
  // "RemovePodSandbox <id>", "CreateContainer <name>", "StartContainer <name>",
  // "StopContainer <name> timeout=<s>", "RemoveContainer <name>".
  std::vector<std::string> Calls();
  // Waits until `pred(Calls())` holds; false after `timeout`.
  bool WaitForCalls(const std::function<bool(const std::vector<std::string>&)>& pred,
                    absl::Duration timeout = absl::Seconds(10));
  // How many times RPC `method` was called (failed and hooked calls included).
  int CallCount(const std::string& method);
  // The last request of RPC type `Req` (default-constructed when there was none).
  template <typename Req>
  Req LastRequest() {
    absl::MutexLock l(&mu_);
    Req r;
    auto it = last_requests_.find(Req::descriptor()->full_name());
    if (it != last_requests_.end()) r.ParseFromString(it->second);
    return r;
  }
  // The newest container (by created_at) whose metadata name is `name`; "" when none.
  std::string LatestContainer(const std::string& name);
  std::map<std::string, Sandbox> Sandboxes();
  std::map<std::string, Container> Containers();

  // ---- RuntimeService
#define BERTH_FAKE_CRI_OVERRIDE_(name, req, resp) \
  absl::StatusOr<v1::resp> name(const v1::req& request) override;
  BERTH_CRI_RUNTIME_RPCS(BERTH_FAKE_CRI_OVERRIDE_)

 private:
  // Each RPC's behaviour after errors and hooks: the model (fake_cri.cc) or, for RPCs not
  // modelled, RuntimeService's default. Called without mu_.
#define BERTH_FAKE_CRI_MODEL_(name, req, resp) \
  absl::StatusOr<v1::resp> Model##name(const v1::req& request);
  BERTH_CRI_RUNTIME_RPCS(BERTH_FAKE_CRI_MODEL_)

  // Counts the call and records the request; the injected error, if any.
  absl::Status Enter(const char* method, const google::protobuf::Message& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t Tick() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Log(std::string call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t clock_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Sandbox> sandboxes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Container> containers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> exit_on_start_ ABSL_GUARDED_BY(mu_);
  std::function<void(const std::string&)> listener_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> call_counts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> last_requests_ ABSL_GUARDED_BY(mu_);  // type -> bytes
#define BERTH_FAKE_CRI_HOOK_MEMBER_(name, req, resp) \
  std::function<absl::StatusOr<v1::resp>(const v1::req&)> name##_hook_ ABSL_GUARDED_BY(mu_);
  BERTH_CRI_RUNTIME_RPCS(BERTH_FAKE_CRI_HOOK_MEMBER_)
};

class FakeImageService : public ImageService {
 public:
  // The image ID PullImage gives `image` ("sha256:<hash of the name>").
  static std::string RefOf(const std::string& image);

  // Makes `image` present (ImageStatus/ListImages), e.g. with repo tags, digests and size.
  void AddImage(v1::Image image);
  // Makes pulls of `image` fail with `status` (OkStatus() clears).
  void FailPull(const std::string& image, absl::Status status);
  // Makes pulls of `image` succeed only with username `user` (others: Unauthenticated).
  void RequireUser(const std::string& image, const std::string& user);
  // Blocks pulls until Release() (to observe the state before a pull completes).
  void HoldPulls();
  void Release();
  // Pulls of `image` so far, and "user:password" of each ("" for an anonymous pull).
  int PullCount(const std::string& image);
  std::vector<std::string> PullAuths(const std::string& image);
  // Makes every call of RPC `method` (e.g. "ListImages") return `status`; OkStatus() clears.
  void SetError(const std::string& method, absl::Status status);

  // ImageStatus: the image whose ID or a repo tag is the requested image; an empty response
  // when none (CRI: not an error). ImageFsInfo: one filesystem at /var/lib/berth/images
  // using the images' total size, one inode each, timestamp 1700000000 s.
  absl::StatusOr<v1::ListImagesResponse> ListImages(const v1::ListImagesRequest& r) override;
  absl::StatusOr<v1::ImageStatusResponse> ImageStatus(const v1::ImageStatusRequest& r) override;
  absl::StatusOr<v1::PullImageResponse> PullImage(const v1::PullImageRequest& r) override;
  absl::StatusOr<v1::RemoveImageResponse> RemoveImage(const v1::RemoveImageRequest& r) override;
  absl::StatusOr<v1::ImageFsInfoResponse> ImageFsInfo(const v1::ImageFsInfoRequest& r) override;

 private:
  absl::Status ErrorOf(const char* method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::Image> images_ ABSL_GUARDED_BY(mu_);  // in the order they became present
  std::map<std::string, absl::Status> pull_errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> pulls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> required_user_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> pull_auths_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> errors_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------- implementation
// (header-only, so that any test target that links berth::cri_api can use the fake)

namespace fake_cri_internal {

inline bool MatchLabels(const google::protobuf::Map<std::string, std::string>& labels,
                        const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace fake_cri_internal

// ---------------------------------------------------------------- set-up and observation

inline void FakeRuntimeService::AddSandbox(const std::string& id, Sandbox sandbox) {
  absl::MutexLock l(&mu_);
  if (sandbox.created_at == 0) sandbox.created_at = Tick();
  sandboxes_[id] = std::move(sandbox);
}

inline void FakeRuntimeService::AddContainer(const std::string& id, Container container) {
  absl::MutexLock l(&mu_);
  if (container.created_at == 0) container.created_at = Tick();
  containers_[id] = std::move(container);
}

inline void FakeRuntimeService::SetError(const std::string& method, absl::Status status) {
  absl::MutexLock l(&mu_);
  if (status.ok()) {
    errors_.erase(method);
  } else {
    errors_[method] = std::move(status);
  }
}

inline void FakeRuntimeService::ExitOnStart(const std::string& name, int code) {
  absl::MutexLock l(&mu_);
  exit_on_start_[name] = code;
}

inline void FakeRuntimeService::SetExitListener(std::function<void(const std::string&)> fn) {
  absl::MutexLock l(&mu_);
  listener_ = std::move(fn);
}

inline void FakeRuntimeService::ExitContainer(const std::string& id, int code) {
  std::function<void(const std::string&)> fn;
  {
    absl::MutexLock l(&mu_);
    Container& c = containers_.at(id);  // throws for an unknown container: a test bug
    c.state = v1::CONTAINER_EXITED;
    c.exit_code = code;
    c.finished_at = Tick();
    fn = listener_;
  }
  if (fn) fn(id);
}

#define BERTH_FAKE_CRI_HOOK_SETTER_IMPL_(name, req, resp)           \
  inline void FakeRuntimeService::On##name(                         \
      std::function<absl::StatusOr<v1::resp>(const v1::req&)> fn) { \
    absl::MutexLock l(&mu_);                                        \
    name##_hook_ = std::move(fn);                                   \
  }
BERTH_CRI_RUNTIME_RPCS(BERTH_FAKE_CRI_HOOK_SETTER_IMPL_)

inline std::vector<std::string> FakeRuntimeService::Calls() {
  absl::MutexLock l(&mu_);
  return calls_;
}

inline bool FakeRuntimeService::WaitForCalls(
    const std::function<bool(const std::vector<std::string>&)>& pred, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred(calls_); };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

inline int FakeRuntimeService::CallCount(const std::string& method) {
  absl::MutexLock l(&mu_);
  auto it = call_counts_.find(method);
  return it == call_counts_.end() ? 0 : it->second;
}

inline std::string FakeRuntimeService::LatestContainer(const std::string& name) {
  absl::MutexLock l(&mu_);
  std::string id;
  int64_t best = -1;
  for (const auto& [cid, c] : containers_) {
    if (c.config.metadata().name() == name && c.created_at > best) {
      best = c.created_at;
      id = cid;
    }
  }
  return id;
}

inline std::map<std::string, FakeRuntimeService::Sandbox> FakeRuntimeService::Sandboxes() {
  absl::MutexLock l(&mu_);
  return sandboxes_;
}

inline std::map<std::string, FakeRuntimeService::Container> FakeRuntimeService::Containers() {
  absl::MutexLock l(&mu_);
  return containers_;
}

inline absl::Status FakeRuntimeService::Enter(const char* method,
                                              const google::protobuf::Message& request) {
  ++call_counts_[method];
  last_requests_[request.GetDescriptor()->full_name()] = request.SerializeAsString();
  auto it = errors_.find(method);
  return it == errors_.end() ? absl::OkStatus() : it->second;
}

inline int64_t FakeRuntimeService::Tick() {
  return 1704067200LL * 1000000000LL + ++clock_ * 1000000LL;
}

inline void FakeRuntimeService::Log(std::string call) { calls_.push_back(std::move(call)); }

// Every RPC: count, record, injected error, hook, then the model.
#define BERTH_FAKE_CRI_OVERRIDE_IMPL_(name, req, resp)                               \
  inline absl::StatusOr<v1::resp> FakeRuntimeService::name(const v1::req& request) { \
    std::function<absl::StatusOr<v1::resp>(const v1::req&)> hook;                    \
    {                                                                                \
      absl::MutexLock l(&mu_);                                                       \
      if (absl::Status s = Enter(#name, request); !s.ok()) return s;                 \
      hook = name##_hook_;                                                           \
    }                                                                                \
    if (hook) return hook(request);                                                  \
    return Model##name(request);                                                     \
  }
BERTH_CRI_RUNTIME_RPCS(BERTH_FAKE_CRI_OVERRIDE_IMPL_)

// RPCs the fake does not model: the interface's default (Unimplemented).
#define BERTH_FAKE_CRI_DEFAULT_(name, req, resp)                                            \
  inline absl::StatusOr<v1::resp> FakeRuntimeService::Model##name(const v1::req& request) { \
    return RuntimeService::name(request);                                                   \
  }
BERTH_FAKE_CRI_DEFAULT_(UpdateContainerResources, UpdateContainerResourcesRequest,
                        UpdateContainerResourcesResponse)
BERTH_FAKE_CRI_DEFAULT_(ReopenContainerLog, ReopenContainerLogRequest, ReopenContainerLogResponse)
BERTH_FAKE_CRI_DEFAULT_(ExecSync, ExecSyncRequest, ExecSyncResponse)
BERTH_FAKE_CRI_DEFAULT_(Exec, ExecRequest, ExecResponse)
BERTH_FAKE_CRI_DEFAULT_(Attach, AttachRequest, AttachResponse)
BERTH_FAKE_CRI_DEFAULT_(PortForward, PortForwardRequest, PortForwardResponse)
BERTH_FAKE_CRI_DEFAULT_(ContainerStats, ContainerStatsRequest, ContainerStatsResponse)
BERTH_FAKE_CRI_DEFAULT_(ListContainerStats, ListContainerStatsRequest, ListContainerStatsResponse)
BERTH_FAKE_CRI_DEFAULT_(PodSandboxStats, PodSandboxStatsRequest, PodSandboxStatsResponse)
BERTH_FAKE_CRI_DEFAULT_(ListPodSandboxStats, ListPodSandboxStatsRequest,
                        ListPodSandboxStatsResponse)
BERTH_FAKE_CRI_DEFAULT_(UpdateRuntimeConfig, UpdateRuntimeConfigRequest,
                        UpdateRuntimeConfigResponse)
BERTH_FAKE_CRI_DEFAULT_(Status, StatusRequest, StatusResponse)
BERTH_FAKE_CRI_DEFAULT_(CheckpointContainer, CheckpointContainerRequest,
                        CheckpointContainerResponse)
BERTH_FAKE_CRI_DEFAULT_(ListMetricDescriptors, ListMetricDescriptorsRequest,
                        ListMetricDescriptorsResponse)
BERTH_FAKE_CRI_DEFAULT_(ListPodSandboxMetrics, ListPodSandboxMetricsRequest,
                        ListPodSandboxMetricsResponse)
BERTH_FAKE_CRI_DEFAULT_(RuntimeConfig, RuntimeConfigRequest, RuntimeConfigResponse)
BERTH_FAKE_CRI_DEFAULT_(UpdatePodSandboxResources, UpdatePodSandboxResourcesRequest,
                        UpdatePodSandboxResourcesResponse)

// ---------------------------------------------------------------- the model

inline absl::StatusOr<v1::VersionResponse> FakeRuntimeService::ModelVersion(
    const v1::VersionRequest&) {
  v1::VersionResponse r;
  r.set_version("0.1.0");
  r.set_runtime_name("fake-berth");
  r.set_runtime_version("9.8.7");
  r.set_runtime_api_version("v1");
  return r;
}

inline absl::StatusOr<v1::RunPodSandboxResponse> FakeRuntimeService::ModelRunPodSandbox(
    const v1::RunPodSandboxRequest& r) {
  absl::MutexLock l(&mu_);
  std::string id = absl::StrCat("sb", ++next_id_);
  Sandbox sb;
  sb.config = r.config();
  sb.created_at = Tick();
  sb.ip = absl::StrCat("10.88.0.", next_id_);
  sb.runtime_handler = r.runtime_handler();
  sandboxes_[id] = sb;
  Log(absl::StrCat("RunPodSandbox ", r.config().metadata().name()));
  v1::RunPodSandboxResponse resp;
  resp.set_pod_sandbox_id(id);
  return resp;
}

inline absl::StatusOr<v1::StopPodSandboxResponse> FakeRuntimeService::ModelStopPodSandbox(
    const v1::StopPodSandboxRequest& r) {
  absl::MutexLock l(&mu_);
  auto it = sandboxes_.find(r.pod_sandbox_id());
  if (it == sandboxes_.end()) return absl::NotFoundError("no sandbox " + r.pod_sandbox_id());
  it->second.state = v1::SANDBOX_NOTREADY;
  for (auto& [id, c] : containers_) {
    if (c.sandbox_id == it->first && c.state == v1::CONTAINER_RUNNING) {
      c.state = v1::CONTAINER_EXITED;
      c.exit_code = 137;
      c.finished_at = Tick();
    }
  }
  Log(absl::StrCat("StopPodSandbox ", r.pod_sandbox_id()));
  return v1::StopPodSandboxResponse();
}

inline absl::StatusOr<v1::RemovePodSandboxResponse> FakeRuntimeService::ModelRemovePodSandbox(
    const v1::RemovePodSandboxRequest& r) {
  absl::MutexLock l(&mu_);
  if (!sandboxes_.erase(r.pod_sandbox_id()))
    return absl::NotFoundError("no sandbox " + r.pod_sandbox_id());
  Log(absl::StrCat("RemovePodSandbox ", r.pod_sandbox_id()));
  return v1::RemovePodSandboxResponse();
}

inline absl::StatusOr<v1::PodSandboxStatusResponse> FakeRuntimeService::ModelPodSandboxStatus(
    const v1::PodSandboxStatusRequest& r) {
  absl::MutexLock l(&mu_);
  auto it = sandboxes_.find(r.pod_sandbox_id());
  if (it == sandboxes_.end())
    return absl::NotFoundError("pod sandbox \"" + r.pod_sandbox_id() + "\" not found");
  const Sandbox& sb = it->second;
  v1::PodSandboxStatusResponse resp;
  auto* s = resp.mutable_status();
  s->set_id(it->first);
  *s->mutable_metadata() = sb.config.metadata();
  s->set_state(sb.state);
  s->set_created_at(sb.created_at);
  if (sb.state == v1::SANDBOX_READY) s->mutable_network()->set_ip(sb.ip);
  *s->mutable_labels() = sb.config.labels();
  *s->mutable_annotations() = sb.config.annotations();
  s->set_runtime_handler(sb.runtime_handler);
  if (r.verbose() && !sb.info.empty()) (*resp.mutable_info())["info"] = sb.info;
  return resp;
}

inline absl::StatusOr<v1::ListPodSandboxResponse> FakeRuntimeService::ModelListPodSandbox(
    const v1::ListPodSandboxRequest& r) {
  absl::MutexLock l(&mu_);
  const auto& f = r.filter();
  v1::ListPodSandboxResponse resp;
  for (const auto& [id, sb] : sandboxes_) {
    if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
    if (f.has_state() && f.state().state() != sb.state) continue;
    if (!fake_cri_internal::MatchLabels(sb.config.labels(), f.label_selector())) continue;
    auto* item = resp.add_items();
    item->set_id(id);
    *item->mutable_metadata() = sb.config.metadata();
    item->set_state(sb.state);
    item->set_created_at(sb.created_at);
    *item->mutable_labels() = sb.config.labels();
    *item->mutable_annotations() = sb.config.annotations();
    item->set_runtime_handler(sb.runtime_handler);
  }
  return resp;
}

inline absl::StatusOr<v1::CreateContainerResponse> FakeRuntimeService::ModelCreateContainer(
    const v1::CreateContainerRequest& r) {
  absl::MutexLock l(&mu_);
  if (!sandboxes_.count(r.pod_sandbox_id()))
    return absl::NotFoundError("no sandbox " + r.pod_sandbox_id());
  std::string id = absl::StrCat("ctr", ++next_id_);
  Container c;
  c.sandbox_id = r.pod_sandbox_id();
  c.config = r.config();
  c.created_at = Tick();
  containers_[id] = c;
  Log(absl::StrCat("CreateContainer ", r.config().metadata().name()));
  v1::CreateContainerResponse resp;
  resp.set_container_id(id);
  return resp;
}

inline absl::StatusOr<v1::StartContainerResponse> FakeRuntimeService::ModelStartContainer(
    const v1::StartContainerRequest& r) {
  std::function<void(const std::string&)> fn;
  {
    absl::MutexLock l(&mu_);
    auto it = containers_.find(r.container_id());
    if (it == containers_.end()) return absl::NotFoundError("no container " + r.container_id());
    it->second.state = v1::CONTAINER_RUNNING;
    it->second.started_at = Tick();
    Log(absl::StrCat("StartContainer ", it->second.config.metadata().name()));
    auto e = exit_on_start_.find(it->second.config.metadata().name());
    if (e != exit_on_start_.end()) {
      it->second.state = v1::CONTAINER_EXITED;
      it->second.exit_code = e->second;
      it->second.finished_at = Tick();
      fn = listener_;
    }
  }
  if (fn) fn(r.container_id());
  return v1::StartContainerResponse();
}

inline absl::StatusOr<v1::StopContainerResponse> FakeRuntimeService::ModelStopContainer(
    const v1::StopContainerRequest& r) {
  absl::MutexLock l(&mu_);
  auto it = containers_.find(r.container_id());
  if (it == containers_.end()) return absl::NotFoundError("no container " + r.container_id());
  if (it->second.state == v1::CONTAINER_RUNNING) {
    it->second.state = v1::CONTAINER_EXITED;
    it->second.exit_code = 137;
    it->second.finished_at = Tick();
  }
  Log(absl::StrCat("StopContainer ", it->second.config.metadata().name(),
                   " timeout=", r.timeout()));
  return v1::StopContainerResponse();
}

inline absl::StatusOr<v1::RemoveContainerResponse> FakeRuntimeService::ModelRemoveContainer(
    const v1::RemoveContainerRequest& r) {
  absl::MutexLock l(&mu_);
  auto it = containers_.find(r.container_id());
  if (it == containers_.end()) return absl::NotFoundError("no container " + r.container_id());
  Log(absl::StrCat("RemoveContainer ", it->second.config.metadata().name()));
  containers_.erase(it);
  return v1::RemoveContainerResponse();
}

inline absl::StatusOr<v1::ListContainersResponse> FakeRuntimeService::ModelListContainers(
    const v1::ListContainersRequest& r) {
  absl::MutexLock l(&mu_);
  const auto& f = r.filter();
  v1::ListContainersResponse resp;
  for (const auto& [id, c] : containers_) {
    if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
    if (!f.pod_sandbox_id().empty() && !absl::StartsWith(c.sandbox_id, f.pod_sandbox_id()))
      continue;
    if (f.has_state() && f.state().state() != c.state) continue;
    if (!fake_cri_internal::MatchLabels(c.config.labels(), f.label_selector())) continue;
    auto* item = resp.add_containers();
    item->set_id(id);
    item->set_pod_sandbox_id(c.sandbox_id);
    *item->mutable_metadata() = c.config.metadata();
    *item->mutable_image() = c.config.image();
    item->set_image_ref(c.image_ref.empty() ? c.config.image().image() : c.image_ref);
    item->set_state(c.state);
    item->set_created_at(c.created_at);
    *item->mutable_labels() = c.config.labels();
    *item->mutable_annotations() = c.config.annotations();
  }
  return resp;
}

inline absl::StatusOr<v1::ContainerStatusResponse> FakeRuntimeService::ModelContainerStatus(
    const v1::ContainerStatusRequest& r) {
  absl::MutexLock l(&mu_);
  auto it = containers_.find(r.container_id());
  if (it == containers_.end()) return absl::NotFoundError("no container " + r.container_id());
  const Container& c = it->second;
  v1::ContainerStatusResponse resp;
  auto* s = resp.mutable_status();
  s->set_id(it->first);
  *s->mutable_metadata() = c.config.metadata();
  s->set_state(c.state);
  s->set_created_at(c.created_at);
  s->set_started_at(c.started_at);
  s->set_finished_at(c.finished_at);
  s->set_exit_code(c.exit_code);
  *s->mutable_image() = c.config.image();
  s->set_image_ref(c.image_ref.empty() ? c.config.image().image() : c.image_ref);
  *s->mutable_labels() = c.config.labels();
  *s->mutable_annotations() = c.config.annotations();
  *s->mutable_mounts() = c.config.mounts();
  s->set_log_path(c.log_path.empty() ? c.config.log_path() : c.log_path);
  if (r.verbose() && !c.info.empty()) (*resp.mutable_info())["info"] = c.info;
  return resp;
}

// ---------------------------------------------------------------- images

inline std::string FakeImageService::RefOf(const std::string& image) {
  return absl::StrCat("sha256:", std::hash<std::string>()(image));
}

inline void FakeImageService::AddImage(v1::Image image) {
  absl::MutexLock l(&mu_);
  images_.push_back(std::move(image));
}

inline void FakeImageService::FailPull(const std::string& image, absl::Status status) {
  absl::MutexLock l(&mu_);
  if (status.ok()) {
    pull_errors_.erase(image);
  } else {
    pull_errors_[image] = std::move(status);
  }
}

inline void FakeImageService::RequireUser(const std::string& image, const std::string& user) {
  absl::MutexLock l(&mu_);
  required_user_[image] = user;
}

inline void FakeImageService::HoldPulls() {
  absl::MutexLock l(&mu_);
  hold_ = true;
}

inline void FakeImageService::Release() {
  absl::MutexLock l(&mu_);
  hold_ = false;
}

inline int FakeImageService::PullCount(const std::string& image) {
  absl::MutexLock l(&mu_);
  auto it = pulls_.find(image);
  return it == pulls_.end() ? 0 : it->second;
}

inline std::vector<std::string> FakeImageService::PullAuths(const std::string& image) {
  absl::MutexLock l(&mu_);
  auto it = pull_auths_.find(image);
  return it == pull_auths_.end() ? std::vector<std::string>{} : it->second;
}

inline void FakeImageService::SetError(const std::string& method, absl::Status status) {
  absl::MutexLock l(&mu_);
  if (status.ok()) {
    errors_.erase(method);
  } else {
    errors_[method] = std::move(status);
  }
}

inline absl::Status FakeImageService::ErrorOf(const char* method) {
  auto it = errors_.find(method);
  return it == errors_.end() ? absl::OkStatus() : it->second;
}

inline absl::StatusOr<v1::ListImagesResponse> FakeImageService::ListImages(
    const v1::ListImagesRequest&) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = ErrorOf("ListImages"); !s.ok()) return s;
  v1::ListImagesResponse r;
  for (const auto& i : images_) *r.add_images() = i;
  return r;
}

inline absl::StatusOr<v1::ImageStatusResponse> FakeImageService::ImageStatus(
    const v1::ImageStatusRequest& request) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = ErrorOf("ImageStatus"); !s.ok()) return s;
  v1::ImageStatusResponse r;  // CRI: a missing image is an empty response, not an error
  const std::string& want = request.image().image();
  for (const auto& i : images_) {
    bool match = i.id() == want;
    for (const auto& tag : i.repo_tags()) match = match || tag == want;
    if (match) *r.mutable_image() = i;
  }
  return r;
}

inline absl::StatusOr<v1::PullImageResponse> FakeImageService::PullImage(
    const v1::PullImageRequest& r) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = ErrorOf("PullImage"); !s.ok()) return s;
  mu_.Await(absl::Condition(
      +[](bool* hold) { return !*hold; }, &hold_));
  const std::string& image = r.image().image();
  ++pulls_[image];
  pull_auths_[image].push_back(r.has_auth() ? r.auth().username() + ":" + r.auth().password() : "");
  if (auto it = pull_errors_.find(image); it != pull_errors_.end()) return it->second;
  if (auto req = required_user_.find(image);
      req != required_user_.end() && (!r.has_auth() || r.auth().username() != req->second)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "pull of ", image, " as \"", r.has_auth() ? r.auth().username() : "", "\": 401"));
  }
  bool present = false;
  for (const auto& i : images_) {
    for (const auto& tag : i.repo_tags()) present = present || tag == image;
  }
  if (!present) {
    v1::Image i;
    i.set_id(RefOf(image));
    i.add_repo_tags(image);
    images_.push_back(std::move(i));
  }
  v1::PullImageResponse resp;
  resp.set_image_ref(RefOf(image));
  return resp;
}

inline absl::StatusOr<v1::RemoveImageResponse> FakeImageService::RemoveImage(
    const v1::RemoveImageRequest& r) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = ErrorOf("RemoveImage"); !s.ok()) return s;
  const std::string& want = r.image().image();
  std::erase_if(images_, [&](const v1::Image& i) {
    if (i.id() == want) return true;
    for (const auto& tag : i.repo_tags()) {
      if (tag == want) return true;
    }
    return false;
  });
  return v1::RemoveImageResponse();  // CRI: removing a missing image is not an error
}

inline absl::StatusOr<v1::ImageFsInfoResponse> FakeImageService::ImageFsInfo(
    const v1::ImageFsInfoRequest&) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = ErrorOf("ImageFsInfo"); !s.ok()) return s;
  uint64_t used = 0;
  for (const auto& i : images_) used += i.size();
  v1::ImageFsInfoResponse r;
  auto* fs = r.add_image_filesystems();
  fs->set_timestamp(1700000000000000000);
  fs->mutable_fs_id()->set_mountpoint("/var/lib/berth/images");
  fs->mutable_used_bytes()->set_value(used);
  fs->mutable_inodes_used()->set_value(images_.size());
  return r;
}

#undef BERTH_FAKE_CRI_HOOK_SETTER_
#undef BERTH_FAKE_CRI_OVERRIDE_
#undef BERTH_FAKE_CRI_MODEL_
#undef BERTH_FAKE_CRI_HOOK_MEMBER_
#undef BERTH_FAKE_CRI_HOOK_SETTER_IMPL_
#undef BERTH_FAKE_CRI_OVERRIDE_IMPL_
#undef BERTH_FAKE_CRI_DEFAULT_

}  // namespace berth::cri::testing
