// Single-use tokens for the CRI streaming URLs: Exec/Attach/PortForward store their request
// here and return `http://<server>/<kind>/<token>`; the streaming server consumes the token
// when the client connects. As in kubelet's CRI streaming server (request_cache.go): a token
// is valid once, for `ttl` (one minute), and the cache holds at most `max_entries` live
// requests (ResourceExhausted beyond that).
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cri/runtime_service.h"

namespace berth::cri::streaming {

// What a token stands for: exactly one of the three CRI requests, chosen by `kind`.
struct StreamRequest {
  enum class Kind { kExec, kAttach, kPortForward };
  Kind kind = Kind::kExec;
  v1::ExecRequest exec;
  v1::AttachRequest attach;
  v1::PortForwardRequest port_forward;
};

// URL path prefix of a kind: "exec", "attach" or "portforward".
const char* KindPath(StreamRequest::Kind kind);

class RequestCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `clock` defaults to steady_clock::now (tests inject a fake one).
  explicit RequestCache(std::chrono::milliseconds ttl = std::chrono::minutes(1),
                        size_t max_entries = 1000, Clock clock = nullptr);

  // Stores `req` under a new random token (22 URL-safe characters, 128 bits). Expired
  // entries are dropped first; ResourceExhausted when `max_entries` live requests remain.
  absl::StatusOr<std::string> Insert(StreamRequest req);

  // Returns and forgets the request of `token`; nullopt when unknown, used already or expired.
  std::optional<StreamRequest> Consume(const std::string& token);

  // Live (unexpired, unconsumed) entries.
  size_t size();

 private:
  struct Entry {
    std::string token;
    StreamRequest req;
    std::chrono::steady_clock::time_point expires;
  };
  void GcLocked(std::chrono::steady_clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::chrono::milliseconds ttl_;
  const size_t max_entries_;
  const Clock clock_;
  absl::Mutex mu_;
  std::list<Entry> entries_ ABSL_GUARDED_BY(mu_);  // oldest first (same ttl: expiry order)
  std::map<std::string, std::list<Entry>::iterator> by_token_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::cri::streaming
