// A fake ApiClient for unit tests: objects served by path, every write recorded, and waits
// on recorded requests (no sleeps). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kubelet/api_client.h"

namespace berth::kubelet::testing {

class FakeApiClient : public ApiClient {
 public:
  // One recorded request.
  struct Request {
    std::string verb;  // "POST", "PUT", "PATCH", "DELETE"
    std::string path;
    Json body;
  };

  // Serves `obj` for GET `path`.
  void SetObject(const std::string& path, const Json& obj) {
    std::lock_guard<std::mutex> l(mu_);
    objects_[path] = obj;
  }
  // GET `path` answers NotFound from now on.
  void RemoveObject(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    objects_.erase(path);
  }
  // Answers POST `path` with `fn(body)`.
  void OnPost(const std::string& path, std::function<absl::StatusOr<Json>(const Json&)> fn) {
    std::lock_guard<std::mutex> l(mu_);
    post_handlers_[path] = std::move(fn);
  }

  absl::StatusOr<Json> Get(const std::string& path) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return absl::NotFoundError("GET " + path + ": not found");
    return it->second;
  }
  absl::StatusOr<Json> Post(const std::string& path, const Json& body) override {
    std::function<absl::StatusOr<Json>(const Json&)> fn;
    {
      std::lock_guard<std::mutex> l(mu_);
      Record("POST", path, body);
      auto it = post_handlers_.find(path);
      if (it == post_handlers_.end()) return absl::NotFoundError("POST " + path + ": not found");
      fn = it->second;
    }
    return fn(body);
  }
  absl::StatusOr<Json> Put(const std::string& path, const Json& body) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("PUT", path, body);
    return body;
  }
  // Makes every PATCH fail with `s` (OkStatus: succeed again). PATCHes are recorded either way.
  void SetPatchError(absl::Status s) {
    std::lock_guard<std::mutex> l(mu_);
    patch_error_ = std::move(s);
  }
  absl::StatusOr<Json> Patch(const std::string& path, const Json& body, PatchType) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("PATCH", path, body);
    if (!patch_error_.ok()) return patch_error_;
    return body;
  }
  absl::Status Delete(const std::string& path, const Json& options) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("DELETE", path, options);
    return absl::OkStatus();
  }
  absl::Status Watch(const std::string&,
                     const std::function<bool(const std::string&, const Json&)>&,
                     const std::atomic<bool>&) override {
    return absl::UnimplementedError("FakeApiClient has no watch");
  }
  std::string Server() const override { return "https://fake-apiserver:6443"; }

  // All recorded requests, in order.
  std::vector<Request> Requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }
  // Waits until a recorded request satisfies `pred`; returns it, or nullopt after `timeout`.
  std::optional<Request> WaitFor(const std::function<bool(const Request&)>& pred,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> l(mu_);
    std::optional<Request> found;
    cv_.wait_for(l, timeout, [&] {
      for (const auto& r : requests_) {
        if (pred(r)) {
          found = r;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // Waits for a status PATCH whose body satisfies `pred(status)`.
  std::optional<Json> WaitForStatus(const std::function<bool(const Json&)>& pred,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto r = WaitFor(
        [&](const Request& r) {
          return r.verb == "PATCH" && r.body.contains("status") && pred(r.body["status"]);
        },
        timeout);
    if (!r) return std::nullopt;
    return r->body["status"];
  }

 private:
  void Record(const std::string& verb, const std::string& path, const Json& body) {
    requests_.push_back({verb, path, body});
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Json> objects_;
  std::map<std::string, std::function<absl::StatusOr<Json>(const Json&)>> post_handlers_;
  absl::Status patch_error_;
  std::vector<Request> requests_;
};

}  // namespace berth::kubelet::testing
