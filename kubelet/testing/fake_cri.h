// Fakes of cri::RuntimeService and cri::ImageService for kubelet unit tests: in-memory
// sandboxes/containers/images, a log of calls, injectable failures and exits. Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cri/runtime_service.h"

namespace berth::kubelet::testing {

namespace v1 = ::runtime::v1;

class FakeRuntimeService : public cri::RuntimeService {
 public:
  struct Sandbox {
    v1::PodSandboxConfig config;
    v1::PodSandboxState state = v1::SANDBOX_READY;
    int64_t created_at = 0;
    std::string ip;
  };
  struct Container {
    std::string sandbox_id;
    v1::ContainerConfig config;
    v1::ContainerState state = v1::CONTAINER_CREATED;
    int64_t created_at = 0, started_at = 0, finished_at = 0;
    int32_t exit_code = 0;
  };

  // Containers named here exit with the given code as soon as they start.
  void ExitOnStart(const std::string& name, int code) {
    std::lock_guard<std::mutex> l(mu_);
    exit_on_start_[name] = code;
  }
  // Called (outside the fake's lock) with the ID of a container that exited.
  void SetExitListener(std::function<void(const std::string&)> fn) {
    std::lock_guard<std::mutex> l(mu_);
    listener_ = std::move(fn);
  }
  // Makes a running container exit with `code` and notifies the listener.
  void ExitContainer(const std::string& id, int code) {
    std::function<void(const std::string&)> fn;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto& c = containers_.at(id);
      c.state = v1::CONTAINER_EXITED;
      c.exit_code = code;
      c.finished_at = Tick();
      fn = listener_;
    }
    if (fn) fn(id);
  }
  // The newest container with metadata name `name` ("" when none).
  std::string LatestContainer(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
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
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  // Waits until `pred(calls)` holds (10 s at most).
  bool WaitForCalls(const std::function<bool(const std::vector<std::string>&)>& pred) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return pred(calls_); });
  }
  std::map<std::string, Sandbox> Sandboxes() {
    std::lock_guard<std::mutex> l(mu_);
    return sandboxes_;
  }
  std::map<std::string, Container> Containers() {
    std::lock_guard<std::mutex> l(mu_);
    return containers_;
  }

  absl::StatusOr<v1::RunPodSandboxResponse> RunPodSandbox(const v1::RunPodSandboxRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    std::string id = absl::StrCat("sb", ++next_id_);
    Sandbox sb;
    sb.config = r.config();
    sb.created_at = Tick();
    sb.ip = absl::StrCat("10.88.0.", next_id_);
    sandboxes_[id] = sb;
    Log(absl::StrCat("RunPodSandbox ", r.config().metadata().name()));
    v1::RunPodSandboxResponse resp;
    resp.set_pod_sandbox_id(id);
    return resp;
  }
  absl::StatusOr<v1::StopPodSandboxResponse> StopPodSandbox(const v1::StopPodSandboxRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
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
  absl::StatusOr<v1::RemovePodSandboxResponse> RemovePodSandbox(const v1::RemovePodSandboxRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!sandboxes_.erase(r.pod_sandbox_id())) return absl::NotFoundError("no sandbox " + r.pod_sandbox_id());
    Log(absl::StrCat("RemovePodSandbox ", r.pod_sandbox_id()));
    return v1::RemovePodSandboxResponse();
  }
  absl::StatusOr<v1::PodSandboxStatusResponse> PodSandboxStatus(const v1::PodSandboxStatusRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = sandboxes_.find(r.pod_sandbox_id());
    if (it == sandboxes_.end()) return absl::NotFoundError("no sandbox " + r.pod_sandbox_id());
    v1::PodSandboxStatusResponse resp;
    auto* s = resp.mutable_status();
    s->set_id(it->first);
    *s->mutable_metadata() = it->second.config.metadata();
    s->set_state(it->second.state);
    s->set_created_at(it->second.created_at);
    if (it->second.state == v1::SANDBOX_READY) s->mutable_network()->set_ip(it->second.ip);
    *s->mutable_labels() = it->second.config.labels();
    return resp;
  }
  absl::StatusOr<v1::ListPodSandboxResponse> ListPodSandbox(const v1::ListPodSandboxRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    v1::ListPodSandboxResponse resp;
    for (const auto& [id, sb] : sandboxes_) {
      if (!Matches(sb.config.labels(), r.filter().label_selector())) continue;
      auto* item = resp.add_items();
      item->set_id(id);
      *item->mutable_metadata() = sb.config.metadata();
      item->set_state(sb.state);
      item->set_created_at(sb.created_at);
      *item->mutable_labels() = sb.config.labels();
    }
    return resp;
  }
  absl::StatusOr<v1::CreateContainerResponse> CreateContainer(const v1::CreateContainerRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!sandboxes_.count(r.pod_sandbox_id())) return absl::NotFoundError("no sandbox " + r.pod_sandbox_id());
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
  absl::StatusOr<v1::StartContainerResponse> StartContainer(const v1::StartContainerRequest& r) override {
    std::function<void(const std::string&)> fn;
    {
      std::lock_guard<std::mutex> l(mu_);
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
  absl::StatusOr<v1::StopContainerResponse> StopContainer(const v1::StopContainerRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = containers_.find(r.container_id());
    if (it == containers_.end()) return absl::NotFoundError("no container " + r.container_id());
    if (it->second.state == v1::CONTAINER_RUNNING) {
      it->second.state = v1::CONTAINER_EXITED;
      it->second.exit_code = 137;
      it->second.finished_at = Tick();
    }
    Log(absl::StrCat("StopContainer ", it->second.config.metadata().name(), " timeout=", r.timeout()));
    return v1::StopContainerResponse();
  }
  absl::StatusOr<v1::RemoveContainerResponse> RemoveContainer(const v1::RemoveContainerRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = containers_.find(r.container_id());
    if (it == containers_.end()) return absl::NotFoundError("no container " + r.container_id());
    Log(absl::StrCat("RemoveContainer ", it->second.config.metadata().name()));
    containers_.erase(it);
    return v1::RemoveContainerResponse();
  }
  absl::StatusOr<v1::ListContainersResponse> ListContainers(const v1::ListContainersRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    v1::ListContainersResponse resp;
    for (const auto& [id, c] : containers_) {
      if (!Matches(c.config.labels(), r.filter().label_selector())) continue;
      auto* item = resp.add_containers();
      item->set_id(id);
      item->set_pod_sandbox_id(c.sandbox_id);
      *item->mutable_metadata() = c.config.metadata();
      item->set_state(c.state);
      item->set_created_at(c.created_at);
      *item->mutable_labels() = c.config.labels();
    }
    return resp;
  }
  absl::StatusOr<v1::ContainerStatusResponse> ContainerStatus(const v1::ContainerStatusRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
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
    s->set_image_ref(c.config.image().image());
    *s->mutable_labels() = c.config.labels();
    *s->mutable_annotations() = c.config.annotations();
    *s->mutable_mounts() = c.config.mounts();
    s->set_log_path(c.config.log_path());
    return resp;
  }

 private:
  static bool Matches(const google::protobuf::Map<std::string, std::string>& labels,
                      const google::protobuf::Map<std::string, std::string>& selector) {
    for (const auto& [k, v] : selector) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    }
    return true;
  }
  // A strictly increasing fake timestamp in nanoseconds (1 ms apart, from 2024-01-01).
  int64_t Tick() { return 1704067200LL * 1000000000LL + ++clock_ * 1000000LL; }
  void Log(const std::string& call) {
    calls_.push_back(call);
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int next_id_ = 0;
  int64_t clock_ = 0;
  std::map<std::string, Sandbox> sandboxes_;
  std::map<std::string, Container> containers_;
  std::map<std::string, int> exit_on_start_;
  std::function<void(const std::string&)> listener_;
  std::vector<std::string> calls_;
};

class FakeImageService : public cri::ImageService {
 public:
  // Makes pulls of `image` fail with `status` (OkStatus() clears).
  void FailPull(const std::string& image, absl::Status status) {
    std::lock_guard<std::mutex> l(mu_);
    if (status.ok()) {
      pull_errors_.erase(image);
    } else {
      pull_errors_[image] = status;
    }
  }
  // Blocks pulls until Release() (to observe the state before a pull completes).
  void HoldPulls() {
    std::lock_guard<std::mutex> l(mu_);
    hold_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    hold_ = false;
    cv_.notify_all();
  }
  int PullCount(const std::string& image) {
    std::lock_guard<std::mutex> l(mu_);
    return pulls_[image];
  }
  // Makes pulls of `image` succeed only with username `user` (others: Unauthenticated).
  void RequireUser(const std::string& image, const std::string& user) {
    std::lock_guard<std::mutex> l(mu_);
    required_user_[image] = user;
  }
  // "user:password" of each pull of `image` in order ("" for an anonymous pull).
  std::vector<std::string> PullAuths(const std::string& image) {
    std::lock_guard<std::mutex> l(mu_);
    return pull_auths_[image];
  }
  static std::string RefOf(const std::string& image) {
    return absl::StrCat("sha256:", std::hash<std::string>()(image));
  }

  absl::StatusOr<v1::ImageStatusResponse> ImageStatus(const v1::ImageStatusRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    v1::ImageStatusResponse resp;
    if (present_.count(r.image().image())) {
      resp.mutable_image()->set_id(RefOf(r.image().image()));
      resp.mutable_image()->add_repo_tags(r.image().image());
    }
    return resp;
  }
  absl::StatusOr<v1::PullImageResponse> PullImage(const v1::PullImageRequest& r) override {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !hold_; });
    const std::string& image = r.image().image();
    ++pulls_[image];
    pull_auths_[image].push_back(r.has_auth() ? r.auth().username() + ":" + r.auth().password() : "");
    auto it = pull_errors_.find(image);
    if (it != pull_errors_.end()) return it->second;
    if (auto req = required_user_.find(image);
        req != required_user_.end() && (!r.has_auth() || r.auth().username() != req->second)) {
      return absl::UnauthenticatedError(
          absl::StrCat("pull of ", image, " as \"", r.has_auth() ? r.auth().username() : "", "\": 401"));
    }
    present_.insert(image);
    v1::PullImageResponse resp;
    resp.set_image_ref(RefOf(image));
    return resp;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  std::set<std::string> present_;
  std::map<std::string, absl::Status> pull_errors_;
  std::map<std::string, int> pulls_;
  std::map<std::string, std::string> required_user_;
  std::map<std::string, std::vector<std::string>> pull_auths_;
};

}  // namespace berth::kubelet::testing
