// Authentication and authorization of requests to the kubelet server, as the upstream
// kubelet's webhook mode does (pkg/kubelet/server/auth.go, apiserver's x509 and webhook
// token authenticators, the SubjectAccessReview authorizer):
//  - x509: a client certificate verified against --client-ca-file gives user = CN,
//    groups = O values;
//  - bearer tokens: a TokenReview (authentication.k8s.io/v1) through the API server;
//  - anonymous (only with --anonymous-auth): system:anonymous in system:unauthenticated;
//  - authorization: a SubjectAccessReview (authorization.k8s.io/v1) on nodes/<subresource>
//    of this node with the verb of the HTTP method, or AlwaysAllow.
// Webhook results are cached as the kubelet's delegating authenticator/authorizer do:
// TokenReview answers (accepted or rejected) for --authentication-token-webhook-cache-ttl
// (2 min), SubjectAccessReview decisions for --authorization-webhook-cache-authorized-ttl
// (5 min) when allowed and --authorization-webhook-cache-unauthorized-ttl (30 s) when denied;
// a TTL of zero disables that cache. Failed reviews (API server unreachable) are not cached.
// Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kubelet/api_client.h"

namespace berth::kubelet::server {

// An authenticated user (authentication.k8s.io/v1 UserInfo).
struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
};

// What a request asks for: verb on nodes/<subresource> named <node>.
struct RequestAttributes {
  std::string verb;         // get, create, update, patch, delete
  std::string subresource;  // proxy, log, stats, metrics
  std::string node_name;
};

// Maps a kubelet server request to the attributes to check, any of which allows it (upstream
// auth.go GetRequestAttributes with KubeletFineGrainedAuthz): POST -> create, GET -> get,
// PUT -> update, PATCH -> patch, DELETE -> delete; /pods and /runningpods -> pods then
// proxy, /healthz -> healthz then proxy, /stats* -> stats, /metrics* -> metrics,
// /logs* -> log, everything else -> proxy.
std::vector<RequestAttributes> AttributesFor(const std::string& method, const std::string& path,
                                             const std::string& node_name);

// Which authenticators/authorizer are on, and the caching TTLs of the webhooks.
struct AuthOptions {
  bool anonymous = false;         // --anonymous-auth
  bool token_webhook = false;     // --authentication-token-webhook
  bool authorize_webhook = true;  // --authorization-mode=Webhook (false: AlwaysAllow)
  // --authentication-token-webhook-cache-ttl: how long a TokenReview answer is reused.
  absl::Duration token_ttl = absl::Minutes(2);
  // --authorization-webhook-cache-authorized-ttl: how long an "allowed" decision is reused.
  absl::Duration allowed_ttl = absl::Minutes(5);
  // --authorization-webhook-cache-unauthorized-ttl: how long a "denied" decision is reused.
  absl::Duration denied_ttl = absl::Seconds(30);
  // The clock of the cache expiries (tests inject their own); absl::Now when empty.
  std::function<absl::Time()> now;
};

class Auth {
 public:
  // `api` (not owned, outlives this; may be null when neither webhook is enabled) posts the
  // TokenReviews and SubjectAccessReviews with the node's credentials.
  Auth(ApiClient* api, const AuthOptions& options);

  // Authenticates a request: `cert_user` is the verified client certificate's identity (if
  // any), `authorization` the Authorization header value ("" if none).
  // Errors: Unauthenticated (no valid credentials), Unavailable (TokenReview failed).
  absl::StatusOr<UserInfo> Authenticate(const std::optional<UserInfo>& cert_user,
                                        const std::string& authorization);

  // Decides whether `user` may do any of `attrs` (tried in order). OK when allowed;
  // PermissionDenied with the kubelet's message "Forbidden (user=..., verb=..., resource=nodes,
  // subresource(s)=[...])"; Unavailable when a SubjectAccessReview failed.
  absl::Status Authorize(const UserInfo& user, const std::vector<RequestAttributes>& attrs);

 private:
  template <typename T>
  struct Cached {
    T value;
    absl::Time expires;
  };
  absl::StatusOr<UserInfo> ReviewToken(const std::string& token);
  absl::StatusOr<bool> Review(const UserInfo& user, const RequestAttributes& attrs);
  absl::Time Now() const { return options_.now ? options_.now() : absl::Now(); }

  ApiClient* const api_;
  const AuthOptions options_;
  absl::Mutex mu_;
  // Keyed by token: the user, or nullopt for a rejected token.
  std::map<std::string, Cached<std::optional<UserInfo>>> tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Cached<bool>> decisions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::kubelet::server
