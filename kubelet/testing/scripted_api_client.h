// Scriptable in-memory ApiClient for the kubelet_api unit tests: every request (including
// watches) is recorded and answered by one handler function; watch events are pushed by the
// test. Waits are on recorded requests (no sleeps). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "kubelet/api_client.h"

namespace berth::kubelet::testing {

// One recorded request; verb is "GET", "POST", "PUT", "PATCH", "DELETE" or "WATCH".
struct ScriptedRequest {
  std::string verb;
  std::string path;
  Json body;
  PatchType patch_type = PatchType::kMerge;
};

class ScriptedApiClient : public ApiClient {
 public:
  // Answers every non-watch request; default: NotFound.
  std::function<absl::StatusOr<Json>(const ScriptedRequest&)> handler =
      [](const ScriptedRequest& r) {
        return absl::StatusOr<Json>(absl::NotFoundError(r.verb + " " + r.path + ": 404 NotFound"));
      };

  absl::StatusOr<Json> Get(const std::string& path) override { return Do({"GET", path, {}}); }
  absl::StatusOr<Json> Post(const std::string& path, const Json& b) override {
    return Do({"POST", path, b});
  }
  absl::StatusOr<Json> Put(const std::string& path, const Json& b) override {
    return Do({"PUT", path, b});
  }
  absl::StatusOr<Json> Patch(const std::string& path, const Json& b, PatchType t) override {
    return Do({"PATCH", path, b, t});
  }
  absl::Status Delete(const std::string& path, const Json& o) override {
    return Do({"DELETE", path, o}).status();
  }

  // Queues an event for the current (or next) watch; type "" ends that watch with `end`.
  void PushEvent(const std::string& type, const Json& obj, absl::Status end = absl::OkStatus()) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({type, obj, end});
    cv_.notify_all();
  }

  absl::Status Watch(const std::string& path,
                     const std::function<bool(const std::string&, const Json&)>& on_event,
                     const std::atomic<bool>& stop) override {
    std::unique_lock<std::mutex> lock(mu_);
    requests_.push_back({"WATCH", path, {}});
    cv_.notify_all();
    while (true) {
      // `stop` has no notification: re-check it every 20 ms.
      cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return !events_.empty(); });
      if (stop.load()) return absl::OkStatus();
      if (events_.empty()) continue;
      Event ev = events_.front();
      events_.pop_front();
      if (ev.type.empty()) return ev.end;
      lock.unlock();
      bool more = on_event(ev.type, ev.obj);
      lock.lock();
      if (!more) return absl::OkStatus();
    }
  }

  std::string Server() const override { return "https://scripted.invalid"; }

  std::vector<ScriptedRequest> Requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // Waits until `pred(requests)` holds or 10 s pass; returns whether it held.
  bool WaitFor(const std::function<bool(const std::vector<ScriptedRequest>&)>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return pred(requests_); });
  }

 private:
  struct Event {
    std::string type;
    Json obj;
    absl::Status end;
  };
  absl::StatusOr<Json> Do(ScriptedRequest r) {
    auto result = handler(r);
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(std::move(r));
    cv_.notify_all();
    return result;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::vector<ScriptedRequest> requests_;
};

}  // namespace berth::kubelet::testing
