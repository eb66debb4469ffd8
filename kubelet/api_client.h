// Kubernetes API client: JSON over HTTPS/1.1 (cpp-httplib + OpenSSL), configured from a
// kubeconfig (server, CA, client certificate/key or bearer token).
// Thread safety: all methods may be called from many threads; each call uses its own
// connection (watches hold theirs for the duration).
// Errors map HTTP status codes: 404 NotFound, 409 AlreadyExists (create) / Aborted
// (conflict), 410 OutOfRange ("Gone": the resourceVersion is too old), 401 Unauthenticated,
// 403 PermissionDenied, 422/400 InvalidArgument, 5xx and connection failures Unavailable.
// The message carries the verb, path and the API server's Status message.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::kubelet {

using Json = nlohmann::json;

// PATCH content types.
enum class PatchType { kMerge, kStrategicMerge, kJson };

class ApiClient {
 public:
  // Loads the kubeconfig's current context. Errors: NotFound (file), InvalidArgument (content).
  static absl::StatusOr<std::unique_ptr<ApiClient>> FromKubeconfig(const std::string& path);
  virtual ~ApiClient() = default;

  virtual absl::StatusOr<Json> Get(const std::string& path) = 0;
  virtual absl::StatusOr<Json> Post(const std::string& path, const Json& body) = 0;
  virtual absl::StatusOr<Json> Put(const std::string& path, const Json& body) = 0;
  virtual absl::StatusOr<Json> Patch(const std::string& path, const Json& body, PatchType type) = 0;
  virtual absl::Status Delete(const std::string& path, const Json& options = Json()) = 0;

  // One watch request: GET `path` with watch=1 and allowWatchBookmarks (path may carry a
  // query string). Calls `on_event(type, object)` for each event ("ADDED", "MODIFIED",
  // "DELETED", "BOOKMARK", "ERROR") until `on_event` returns false, `stop` becomes true, the
  // server ends the stream (returns OK) or an error occurs. Blocks the calling thread.
  virtual absl::Status Watch(const std::string& path,
                             const std::function<bool(const std::string&, const Json&)>& on_event,
                             const std::atomic<bool>& stop) = 0;

  // The API server URL, e.g. "https://127.0.0.1:6443".
  virtual std::string Server() const = 0;
};

}  // namespace berth::kubelet
