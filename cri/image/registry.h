// A client for the OCI distribution spec / Docker Registry HTTP API v2: manifests and blobs
// of one repository, with anonymous, basic and bearer-token auth.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cri/image/reference.h"

namespace berth::cri::image {

// Where and how registries are reached.
struct RegistryConfig {
  // host[:port] of registries served over plain HTTP. Every other registry is HTTPS with
  // certificate verification, except that loopback ones (IsLoopbackRegistry) fall back to
  // plain HTTP when HTTPS cannot connect, as containerd does.
  std::vector<std::string> insecure_registries;
  // Registry host -> endpoint URL used instead of it, e.g. "docker.io" -> "http://127.0.0.1:5000".
  std::map<std::string, std::string> mirrors;
};

// Credentials for one pull (the CRI AuthConfig fields).
struct RegistryAuth {
  std::string username;
  std::string password;
  std::string auth;            // base64("user:password"), used when username is empty
  std::string registry_token;  // a bearer token used as is
};

// A manifest (or index) as the registry served it.
struct FetchedManifest {
  std::string media_type;  // Content-Type, or mediaType of the body
  std::string digest;      // "sha256:<hex>" of `body`
  std::string body;
};

// Media types.
inline constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";

// Client for one repository (reference domain + path). Not thread-safe (it caches the bearer
// token); use one per pull. Errors: NotFound for unknown manifests/blobs (with the
// registry's message), Unauthenticated/PermissionDenied for 401/403, Unavailable when the
// registry cannot be reached or answers 429/5xx, DataLoss for a digest mismatch.
class RegistryClient {
 public:
  RegistryClient(const Reference& ref, const RegistryConfig& config, const RegistryAuth& auth);

  // The base URL requests go to, e.g. "https://registry-1.docker.io".
  const std::string& endpoint() const { return endpoint_; }

  // GET /v2/<path>/manifests/<tag_or_digest> accepting OCI and Docker schema 2 manifests and
  // indexes. When `tag_or_digest` is a digest, the body is verified against it.
  absl::StatusOr<FetchedManifest> GetManifest(const std::string& tag_or_digest);

  // GET /v2/<path>/blobs/<digest>, streamed into `dest_path` (created/truncated) while hashing;
  // DataLoss naming the digest when the content does not match (the file is removed).
  // Follows redirects (without sending credentials to the new host). Returns the size.
  absl::StatusOr<int64_t> FetchBlob(const std::string& digest, const std::string& dest_path);

 private:
  struct Response {
    int status = 0;
    std::multimap<std::string, std::string> headers;
    std::string body;  // for non-200 responses, or when no sink is given
  };
  using Sink = std::function<bool(const char*, size_t)>;

  // GET `path` on the endpoint with auth handling and redirects. `sink` receives the body of
  // a 200 response (when set).
  absl::StatusOr<Response> Get(const std::string& path, const std::string& accept,
                               const Sink& sink);
  absl::Status Authorize(const std::string& challenge);
  absl::Status ErrorFromResponse(const std::string& what, const Response& r) const;

  Reference ref_;
  RegistryAuth auth_;
  std::string endpoint_;
  std::string authorization_;  // value of the Authorization header, once known
  // A loopback registry not listed as insecure: HTTPS first, plain HTTP when HTTPS cannot
  // connect (containerd's localhost fallback). Cleared once the fallback happened.
  bool http_fallback_ = false;
};

// True for "localhost", 127.0.0.0/8 and [::1] (with or without a port): registries that
// containerd reaches over plain HTTP when HTTPS fails, with no configuration.
bool IsLoopbackRegistry(const std::string& host_port);

// Fetches `url` with GET. Exposed for the token handshake and tests.
// Returns Unavailable when the connection fails.
absl::StatusOr<int> HttpGet(const std::string& url,
                            const std::multimap<std::string, std::string>& headers,
                            std::multimap<std::string, std::string>* resp_headers,
                            std::string* body,
                            const std::function<bool(const char*, size_t)>& sink);

}  // namespace berth::cri::image
