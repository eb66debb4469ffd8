// Container log rotation, as the upstream kubelet's ContainerLogManager
// (pkg/kubelet/logs/container_log_manager.go) does with containerLogMaxSize /
// containerLogMaxFiles: every period, each running container whose log file is larger than
// the maximum has it renamed to "<path>.<YYYYMMDD-hhmmss>" and the runtime is asked to
// reopen the path (CRI ReopenContainerLog), so conmon writes a fresh file. Rotated files
// beyond max_files - 1 are removed, oldest first. (Rotated files are kept uncompressed.)
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/runtime_service.h"

namespace berth::kubelet::server {

// Parses --container-log-max-size as upstream parseMaxSize: a resource.Quantity ("10Mi",
// "2M", "4096") whose value is a whole, non-negative number of bytes. Errors:
// InvalidArgument for anything else. (Upstream's AsInt64 also refuses a whole value written
// with a fraction and a binary suffix, "1.5Mi", for how it stores it; berth takes it.)
absl::StatusOr<int64_t> ParseQuantityBytes(const std::string& s);

struct ContainerLogManagerOptions {
  int64_t max_size_bytes = 10 * 1024 * 1024;  // --container-log-max-size
  int max_files = 5;                          // --container-log-max-files (current included)
  absl::Duration period = absl::Seconds(10);  // how often logs are checked
};

class ContainerLogManager {
 public:
  // `runtime` is not owned and must outlive the manager.
  ContainerLogManager(cri::RuntimeService* runtime, const ContainerLogManagerOptions& options);
  ~ContainerLogManager();  // Stop()s.

  // Starts the background thread (one check per period). Stop() joins it; both from one
  // thread.
  void Start();
  void Stop();

  // One pass over the running containers (what the thread does each period). Errors of
  // single containers are logged and skipped; the error is a failing ListContainers.
  absl::Status RotateOnce(absl::Time now);

 private:
  absl::Status RotateLog(const std::string& container_id, const std::string& path, absl::Time now);

  cri::RuntimeService* const runtime_;
  const ContainerLogManagerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace berth::kubelet::server
