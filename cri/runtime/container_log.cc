// ReopenContainerLog: kubelet's container log rotation renames the log file, then asks the
// runtime to make the container's log writer (conmon) open a new file at the CRI log path.

#include <chrono>
#include <thread>

#include "base/file.h"
#include "base/status.h"
#include "cri/runtime/runtime_records.h"

namespace berth::cri::runtime {

absl::StatusOr<v1::ReopenContainerLogResponse> Runtime::ReopenContainerLog(
    const v1::ReopenContainerLogRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c)
    return absl::NotFoundError("ReopenContainerLog: container " + req.container_id() +
                               " not found");
  std::string bundle, log_path;
  {
    absl::MutexLock l(&mu_);
    if (!c->created)
      return absl::NotFoundError("ReopenContainerLog: container " + req.container_id() +
                                 " not found");
    if (c->state != v1::CONTAINER_RUNNING) {
      return absl::FailedPreconditionError("ReopenContainerLog: container " + c->id +
                                           " is not running");
    }
    bundle = c->bundle;
    log_path = c->log_path;
  }
  if (log_path.empty()) return v1::ReopenContainerLogResponse();  // no log to reopen
  RETURN_IF_ERROR(Annotate(oci::OciRuntime::ReopenLog(bundle), "ReopenContainerLog " + c->id));
  // conmon handles the request on its own loop: the caller (kubelet, critest) expects the
  // new file to exist when the RPC returns.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!PathExists(log_path)) {
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("ReopenContainerLog " + c->id +
                                         ": conmon did not reopen " + log_path + " within 10s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return v1::ReopenContainerLogResponse();
}

}  // namespace berth::cri::runtime
