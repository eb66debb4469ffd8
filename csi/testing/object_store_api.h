// An in-memory API server for unit tests: objects by path; POST to a collection creates
// `<collection>/<metadata.name>` (AlreadyExists if present), PUT replaces, PATCH applies a
// JSON merge patch (the resourceVersion is ignored), DELETE removes. Every write is recorded.
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kubelet/api_client.h"

namespace berth::csi::testing {

class ObjectStoreApi : public kubelet::ApiClient {
 public:
  struct Request {
    std::string verb, path;
    kubelet::Json body;
  };
  void Set(const std::string& path, const kubelet::Json& obj) {
    std::lock_guard<std::mutex> l(mu_);
    objects_[path] = obj;
  }
  std::optional<kubelet::Json> Object(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<Request> Requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

  absl::StatusOr<kubelet::Json> Get(const std::string& path) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return absl::NotFoundError("GET " + path + ": not found");
    return it->second;
  }
  absl::StatusOr<kubelet::Json> Post(const std::string& path, const kubelet::Json& body) override {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({"POST", path, body});
    std::string p = path + "/" + body["metadata"].value("name", std::string());
    if (objects_.count(p)) return absl::AlreadyExistsError("POST " + path + ": exists");
    objects_[p] = body;
    return body;
  }
  absl::StatusOr<kubelet::Json> Put(const std::string& path, const kubelet::Json& body) override {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({"PUT", path, body});
    if (!objects_.count(path)) return absl::NotFoundError("PUT " + path + ": not found");
    objects_[path] = body;
    return body;
  }
  absl::StatusOr<kubelet::Json> Patch(const std::string& path, const kubelet::Json& body,
                                      kubelet::PatchType) override {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({"PATCH", path, body});
    auto it = objects_.find(path);
    if (it == objects_.end()) return absl::NotFoundError("PATCH " + path + ": not found");
    kubelet::Json patch = body;
    if (patch.contains("metadata")) patch["metadata"].erase("resourceVersion");
    it->second.merge_patch(patch);
    return it->second;
  }
  absl::Status Delete(const std::string& path, const kubelet::Json&) override {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({"DELETE", path, nullptr});
    if (!objects_.erase(path)) return absl::NotFoundError("DELETE " + path + ": not found");
    return absl::OkStatus();
  }
  absl::Status Watch(const std::string&,
                     const std::function<bool(const std::string&, const kubelet::Json&)>&,
                     const std::atomic<bool>&) override {
    return absl::UnimplementedError("no watch");
  }
  std::string Server() const override { return "https://fake:6443"; }

 private:
  std::mutex mu_;
  std::map<std::string, kubelet::Json> objects_;
  std::vector<Request> requests_;
};

}  // namespace berth::csi::testing
