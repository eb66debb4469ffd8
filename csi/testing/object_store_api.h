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

#include "base/kube_api.h"

namespace berth::csi::testing {

class ObjectStoreApi : public KubeApi {
 public:
  struct Request {
    std::string verb, path;
    nlohmann::json body;
  };
  void Set(const std::string& path, const nlohmann::json& obj) {
    std::lock_guard<std::mutex> l(mu_);
    objects_[path] = obj;
  }
  std::optional<nlohmann::json> Object(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<Request> Requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

  absl::StatusOr<nlohmann::json> Get(const std::string& path) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return absl::NotFoundError("GET " + path + ": not found");
    return it->second;
  }
  absl::StatusOr<nlohmann::json> Post(const std::string& path,
                                      const nlohmann::json& body) override {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({"POST", path, body});
    std::string p = path + "/" + body["metadata"].value("name", std::string());
    if (objects_.count(p)) return absl::AlreadyExistsError("POST " + path + ": exists");
    objects_[p] = body;
    return body;
  }
  absl::StatusOr<nlohmann::json> Put(const std::string& path, const nlohmann::json& body) override {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({"PUT", path, body});
    if (!objects_.count(path)) return absl::NotFoundError("PUT " + path + ": not found");
    objects_[path] = body;
    return body;
  }
  absl::StatusOr<nlohmann::json> Patch(const std::string& path, const nlohmann::json& body,
                                       PatchType) override {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({"PATCH", path, body});
    auto it = objects_.find(path);
    if (it == objects_.end()) return absl::NotFoundError("PATCH " + path + ": not found");
    nlohmann::json patch = body;
    if (patch.contains("metadata")) patch["metadata"].erase("resourceVersion");
    it->second.merge_patch(patch);
    return it->second;
  }
  absl::Status Delete(const std::string& path, const nlohmann::json&) override {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({"DELETE", path, nullptr});
    if (!objects_.erase(path)) return absl::NotFoundError("DELETE " + path + ": not found");
    return absl::OkStatus();
  }

 private:
  std::mutex mu_;
  std::map<std::string, nlohmann::json> objects_;
  std::vector<Request> requests_;
};

}  // namespace berth::csi::testing
