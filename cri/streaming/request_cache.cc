#include "cri/streaming/request_cache.h"

#include <sys/random.h>

#include <cerrno>

#include "absl/strings/escaping.h"

namespace berth::cri::streaming {

const char* KindPath(StreamRequest::Kind kind) {
  switch (kind) {
    case StreamRequest::Kind::kExec:
      return "exec";
    case StreamRequest::Kind::kAttach:
      return "attach";
    case StreamRequest::Kind::kPortForward:
      return "portforward";
  }
  return "";
}

RequestCache::RequestCache(std::chrono::milliseconds ttl, size_t max_entries, Clock clock)
    : ttl_(ttl),
      max_entries_(max_entries),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

void RequestCache::GcLocked(std::chrono::steady_clock::time_point now) {
  while (!entries_.empty() && entries_.front().expires <= now) {
    by_token_.erase(entries_.front().token);
    entries_.pop_front();
  }
}

absl::StatusOr<std::string> RequestCache::Insert(StreamRequest req) {
  unsigned char raw[16];
  size_t got = 0;
  while (got < sizeof(raw)) {
    ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError("streaming token: getrandom failed");
    }
    got += static_cast<size_t>(n);
  }
  std::string token;
  absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<char*>(raw), sizeof(raw)), &token);
  auto now = clock_();
  absl::MutexLock l(&mu_);
  GcLocked(now);
  if (entries_.size() >= max_entries_) {
    return absl::ResourceExhaustedError(
        "streaming: too many pending exec/attach/port-forward requests, retry later");
  }
  entries_.push_back(Entry{token, std::move(req), now + ttl_});
  by_token_[token] = std::prev(entries_.end());
  return token;
}

std::optional<StreamRequest> RequestCache::Consume(const std::string& token) {
  auto now = clock_();
  absl::MutexLock l(&mu_);
  GcLocked(now);
  auto it = by_token_.find(token);
  if (it == by_token_.end()) return std::nullopt;
  StreamRequest r = std::move(it->second->req);
  entries_.erase(it->second);
  by_token_.erase(it);
  return r;
}

size_t RequestCache::size() {
  auto now = clock_();
  absl::MutexLock l(&mu_);
  GcLocked(now);
  return entries_.size();
}

}  // namespace berth::cri::streaming
