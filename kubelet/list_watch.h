// ListWatch: keeps a local view of one API collection current, in the manner of client-go's
// reflector + informer. LIST (remembering resourceVersion), then WATCH from it; after
// "410 Gone" (HTTP 410 or a watch ERROR event with code 410) it relists and reconciles the
// cache (synthesizing deletes for objects that vanished); other errors are retried with
// exponential backoff with jitter (200 ms doubling to 30 s; reset after a successful watch).
//
// Example:
//   ListWatch lw(client, {.path = "/api/v1/pods",
//                         .field_selector = "spec.nodeName=" + node},
//                {.on_add = ..., .on_update = ..., .on_delete = ..., .on_synced = ...});
//   lw.Start();  ...  lw.Stop();
//
// Threading: handlers run on the ListWatch's own thread, one at a time, in event order.
// Start/Stop/HasSynced may be called from any thread. Stop() joins the thread; it must not be
// called from a handler.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "kubelet/api_client.h"

namespace berth::kubelet {

// What to list and watch.
struct ListWatchOptions {
  std::string path;            // collection path, e.g. "/api/v1/pods" (no query string)
  std::string field_selector;  // e.g. "spec.nodeName=node-1"; empty = none
  std::string label_selector;  // empty = none
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30000};
};

// Callbacks; any may be empty. Objects are full API objects (with apiVersion/kind filled from
// the list when the server omits them on items).
struct ListWatchHandlers {
  std::function<void(const Json& obj)> on_add;
  std::function<void(const Json& old_obj, const Json& new_obj)> on_update;
  std::function<void(const Json& obj)> on_delete;
  // After the first LIST has been delivered (as adds). Called once per ListWatch lifetime.
  std::function<void()> on_synced;
};

class ListWatch {
 public:
  // `client` must outlive this object.
  ListWatch(ApiClient* client, ListWatchOptions options, ListWatchHandlers handlers);
  ~ListWatch();  // calls Stop()

  // Starts the thread. Call at most once.
  void Start();
  // Stops the thread (interrupting a blocked watch) and joins it. Idempotent.
  void Stop();
  // True once the initial LIST has been delivered.
  bool HasSynced() const { return synced_.load(); }
  // Number of LIST calls made so far (the initial one and relists); for tests and metrics.
  int ListCount() const { return list_count_.load(); }
  // resourceVersion the next watch resumes from.
  std::string ResourceVersion() const;

  // Key of an object in the cache: "<namespace>/<name>" or "<name>".
  static std::string KeyOf(const Json& obj);

 private:
  void Run();
  absl::Status List();
  // Returns OK when the watch ended normally, OutOfRange on 410 Gone, else the error.
  absl::Status WatchOnce();
  bool HandleEvent(const std::string& type, const Json& obj, absl::Status* out);
  std::string Query(bool watch) const;
  // Sleeps `d` unless stopped; returns false when stopped.
  bool SleepUnlessStopped(std::chrono::milliseconds d);

  ApiClient* const client_;
  const ListWatchOptions options_;
  const ListWatchHandlers handlers_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  std::atomic<int> list_count_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string resource_version_;       // guarded by mu_
  std::map<std::string, Json> cache_;  // only touched by thread_
};

// Percent-encodes `s` for use as a URL query value.
std::string UrlQueryEscape(const std::string& s);

}  // namespace berth::kubelet
