#include "kubelet/server/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace berth::kubelet::server {
namespace {

// upstream isSubpath: `path` equals `prefix` or continues it after a '/'.
bool IsSubpath(const std::string& path, std::string prefix) {
  if (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return path == prefix || (absl::StartsWith(path, prefix) && path.size() > prefix.size() &&
                            path[prefix.size()] == '/');
}

UserInfo UserFromJson(const Json& u) {
  UserInfo info;
  info.name = u.value("username", "");
  info.uid = u.value("uid", "");
  if (auto g = u.find("groups"); g != u.end() && g->is_array()) {
    for (const auto& v : *g) {
      if (v.is_string()) info.groups.push_back(v.get<std::string>());
    }
  }
  if (auto e = u.find("extra"); e != u.end() && e->is_object()) {
    for (auto it = e->begin(); it != e->end(); ++it) {
      if (!it->is_array()) continue;
      for (const auto& v : *it) {
        if (v.is_string()) info.extra[it.key()].push_back(v.get<std::string>());
      }
    }
  }
  return info;
}

std::string DecisionKey(const UserInfo& u, const RequestAttributes& a) {
  std::string key = absl::StrCat(u.name, "\n", u.uid, "\n", absl::StrJoin(u.groups, ","), "\n");
  for (const auto& [k, vs] : u.extra) absl::StrAppend(&key, k, "=", absl::StrJoin(vs, ","), ";");
  absl::StrAppend(&key, "\n", a.verb, "\n", a.subresource, "\n", a.node_name);
  return key;
}

}  // namespace

std::vector<RequestAttributes> AttributesFor(const std::string& method, const std::string& path,
                                             const std::string& node_name) {
  std::string verb;
  if (method == "POST") {
    verb = "create";
  } else if (method == "GET" || method == "HEAD") {
    verb = "get";
  } else if (method == "PUT") {
    verb = "update";
  } else if (method == "PATCH") {
    verb = "patch";
  } else if (method == "DELETE") {
    verb = "delete";
  }
  std::vector<std::string> subs;
  if (IsSubpath(path, "/pods") || IsSubpath(path, "/runningpods/")) {
    subs.push_back("pods");
  } else if (IsSubpath(path, "/healthz")) {
    subs.push_back("healthz");
  } else if (IsSubpath(path, "/configz")) {
    subs.push_back("configz");
  }
  if (IsSubpath(path, "/stats/")) {
    subs.push_back("stats");
  } else if (IsSubpath(path, "/metrics")) {
    subs.push_back("metrics");
  } else if (IsSubpath(path, "/logs/")) {
    subs.push_back("log");
  } else if (IsSubpath(path, "/checkpoint")) {
    subs.push_back("checkpoint");
  } else {
    subs.push_back("proxy");
  }
  std::vector<RequestAttributes> out;
  for (auto& s : subs) out.push_back({verb, std::move(s), node_name});
  return out;
}

Auth::Auth(ApiClient* api, const AuthOptions& options) : api_(api), options_(options) {}

absl::StatusOr<UserInfo> Auth::Authenticate(const std::optional<UserInfo>& cert_user,
                                            const std::string& authorization) {
  if (cert_user) return *cert_user;
  std::string token;
  if (absl::StartsWithIgnoreCase(authorization, "bearer ")) {
    token = std::string(absl::StripAsciiWhitespace(authorization.substr(7)));
  }
  if (!token.empty() && options_.token_webhook && api_ != nullptr) {
    absl::StatusOr<UserInfo> u = ReviewToken(token);
    // A rejected token falls through to anonymous, as in the upstream union authenticator.
    if (u.ok() || !absl::IsUnauthenticated(u.status())) return u;
  }
  if (options_.anonymous) {
    return UserInfo{"system:anonymous", "", {"system:unauthenticated"}, {}};
  }
  return absl::UnauthenticatedError("Unauthorized");
}

absl::StatusOr<UserInfo> Auth::ReviewToken(const std::string& token) {
  absl::Time now = Now();
  {
    absl::MutexLock l(&mu_);
    auto it = tokens_.find(token);
    if (it != tokens_.end() && it->second.expires > now) {
      if (it->second.value) return *it->second.value;
      return absl::UnauthenticatedError("Unauthorized");
    }
  }
  Json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", token}}}};
  absl::StatusOr<Json> resp = api_->Post("/apis/authentication.k8s.io/v1/tokenreviews", review);
  if (!resp.ok()) {
    return absl::UnavailableError(absl::StrCat("TokenReview: ", resp.status().message()));
  }
  std::optional<UserInfo> user;
  const Json status = resp->value("status", Json::object());
  if (status.value("authenticated", false)) {
    user = UserFromJson(status.value("user", Json::object()));
  }
  // Accepted and rejected tokens alike, as upstream's delegating authenticator (one TTL).
  if (options_.token_ttl > absl::ZeroDuration()) {
    absl::MutexLock l(&mu_);
    if (tokens_.size() > 4096) tokens_.clear();  // bounded; entries are cheap to re-review
    tokens_[token] = {user, now + options_.token_ttl};
  }
  if (!user) return absl::UnauthenticatedError("Unauthorized");
  return *user;
}

absl::StatusOr<bool> Auth::Review(const UserInfo& user, const RequestAttributes& a) {
  absl::Time now = Now();
  std::string key = DecisionKey(user, a);
  {
    absl::MutexLock l(&mu_);
    auto it = decisions_.find(key);
    if (it != decisions_.end() && it->second.expires > now) return it->second.value;
  }
  Json spec = {{"user", user.name},
               {"groups", user.groups},
               {"resourceAttributes",
                {{"verb", a.verb},
                 {"group", ""},
                 {"version", "v1"},
                 {"resource", "nodes"},
                 {"subresource", a.subresource},
                 {"name", a.node_name}}}};
  if (!user.uid.empty()) spec["uid"] = user.uid;
  if (!user.extra.empty()) spec["extra"] = user.extra;
  Json review = {
      {"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
  absl::StatusOr<Json> resp =
      api_->Post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review);
  if (!resp.ok()) {
    return absl::UnavailableError(absl::StrCat("SubjectAccessReview: ", resp.status().message()));
  }
  bool allowed = resp->value("status", Json::object()).value("allowed", false);
  if (absl::Duration ttl = allowed ? options_.allowed_ttl : options_.denied_ttl;
      ttl > absl::ZeroDuration()) {
    absl::MutexLock l(&mu_);
    if (decisions_.size() > 4096) decisions_.clear();
    decisions_[key] = {allowed, now + ttl};
  }
  return allowed;
}

absl::Status Auth::Authorize(const UserInfo& user, const std::vector<RequestAttributes>& attrs) {
  if (attrs.empty()) return absl::PermissionDeniedError("Authorization error: no attributes");
  if (!options_.authorize_webhook) return absl::OkStatus();
  if (api_ == nullptr) return absl::UnavailableError("SubjectAccessReview: no API client");
  std::vector<std::string> subs;
  for (const auto& a : attrs) {
    subs.push_back(a.subresource);
    absl::StatusOr<bool> allowed = Review(user, a);
    if (!allowed.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "Authorization error (user=", user.name, ", verb=", a.verb,
          ", resource=nodes, subresource=", a.subresource, "): ", allowed.status().message()));
    }
    if (*allowed) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("Forbidden (user=", user.name, ", verb=", attrs[0].verb,
                   ", resource=nodes, subresource(s)=[", absl::StrJoin(subs, " "), "])"));
}

}  // namespace berth::kubelet::server
