#include "kubelet/server/container_log_manager.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/quantity.h"
#include "base/status.h"

namespace berth::kubelet::server {

absl::StatusOr<int64_t> ParseQuantityBytes(const std::string& s) {
  absl::StatusOr<Quantity> q = Quantity::Parse(s);
  std::optional<int64_t> n;
  if (q.ok()) n = q->AsInt64();
  if (!n || *n < 0)
    return absl::InvalidArgumentError(absl::StrCat("not a byte quantity: \"", s, "\""));
  return *n;
}

ContainerLogManager::ContainerLogManager(cri::RuntimeService* runtime,
                                         const ContainerLogManagerOptions& options)
    : runtime_(runtime), options_(options) {}

ContainerLogManager::~ContainerLogManager() { Stop(); }

void ContainerLogManager::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      cv_.wait_for(l, absl::ToChronoMilliseconds(options_.period), [this] { return stop_; });
      if (stop_) break;
      l.unlock();
      if (absl::Status s = RotateOnce(absl::Now()); !s.ok()) {
        LOG(WARNING) << "container log rotation: " << s;
      }
      l.lock();
    }
  });
}

void ContainerLogManager::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status ContainerLogManager::RotateOnce(absl::Time now) {
  runtime::v1::ListContainersRequest req;
  req.mutable_filter()->mutable_state()->set_state(runtime::v1::CONTAINER_RUNNING);
  ASSIGN_OR_RETURN(runtime::v1::ListContainersResponse list, runtime_->ListContainers(req));
  for (const auto& c : list.containers()) {
    runtime::v1::ContainerStatusRequest sreq;
    sreq.set_container_id(c.id());
    absl::StatusOr<runtime::v1::ContainerStatusResponse> st = runtime_->ContainerStatus(sreq);
    if (!st.ok()) continue;  // removed meanwhile
    const std::string& path = st->status().log_path();
    if (path.empty()) continue;
    struct stat sb;
    if (stat(path.c_str(), &sb) != 0 || sb.st_size < options_.max_size_bytes) continue;
    if (absl::Status s = RotateLog(c.id(), path, now); !s.ok()) {
      LOG(WARNING) << "rotate log of container " << c.id() << ": " << s;
    }
  }
  return absl::OkStatus();
}

absl::Status ContainerLogManager::RotateLog(const std::string& container_id,
                                            const std::string& path, absl::Time now) {
  // Rotated files of this log, oldest first (the timestamp suffix sorts by time).
  std::filesystem::path p(path);
  std::string prefix = p.filename().string() + ".";
  std::vector<std::string> rotated;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(p.parent_path(), ec)) {
    std::string name = e.path().filename().string();
    if (absl::StartsWith(name, prefix) && !absl::EndsWith(name, ".tmp")) {
      rotated.push_back(e.path().string());
    }
  }
  std::sort(rotated.begin(), rotated.end());
  // After this rotation: the current file + (max_files - 1) rotated ones.
  size_t keep = options_.max_files > 2 ? options_.max_files - 2 : 0;
  while (rotated.size() > keep) {
    std::filesystem::remove(rotated.front(), ec);
    rotated.erase(rotated.begin());
  }
  std::string target =
      absl::StrCat(path, ".", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()));
  if (std::filesystem::exists(target, ec)) return absl::OkStatus();  // rotated this second
  if (std::rename(path.c_str(), target.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", path));
  }
  runtime::v1::ReopenContainerLogRequest req;
  req.set_container_id(container_id);
  absl::StatusOr<runtime::v1::ReopenContainerLogResponse> r = runtime_->ReopenContainerLog(req);
  if (!r.ok()) {
    // The runtime keeps writing to the renamed file: put it back, as the kubelet does.
    std::rename(target.c_str(), path.c_str());
    return Annotate(r.status(), "ReopenContainerLog");
  }
  return absl::OkStatus();
}

}  // namespace berth::kubelet::server
