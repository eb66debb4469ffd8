// The Kubernetes REST verbs on JSON objects: what a module below the kubelet (csi/) needs
// of the API server, without depending on the kubelet's client. kubelet::ApiClient (HTTPS,
// kubeconfig, watches) implements it; unit tests implement it in memory.
// Thread safety: implementations may be called from many threads.
// Errors (as kubelet::ApiClient maps HTTP codes): NotFound (404), AlreadyExists (409 on
// create), Aborted (409 conflict), InvalidArgument (400/422), PermissionDenied (403),
// Unauthenticated (401), Unavailable (5xx, connection failures); messages name verb and path.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth {

// PATCH content types: merge (RFC 7386), strategic merge, JSON patch (RFC 6902).
enum class PatchType { kMerge, kStrategicMerge, kJson };

class KubeApi {
 public:
  virtual ~KubeApi() = default;
  // `path` is the API path with an optional query, e.g. "/api/v1/nodes/n1".
  virtual absl::StatusOr<nlohmann::json> Get(const std::string& path) = 0;
  virtual absl::StatusOr<nlohmann::json> Post(const std::string& path,
                                              const nlohmann::json& body) = 0;
  virtual absl::StatusOr<nlohmann::json> Put(const std::string& path,
                                             const nlohmann::json& body) = 0;
  virtual absl::StatusOr<nlohmann::json> Patch(const std::string& path, const nlohmann::json& body,
                                               PatchType type) = 0;
  // `options`: a DeleteOptions object, or null for none.
  virtual absl::Status Delete(const std::string& path,
                              const nlohmann::json& options = nlohmann::json()) = 0;
};

}  // namespace berth
