#include "kubelet/pull_secrets.h"

#include <fnmatch.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace berth::kubelet {
namespace {

using Json = nlohmann::json;

// host[:port] and path of a schemeless location ("registry:5000/team").
struct Location {
  std::string host, port, path;
};

Location ParseSchemeless(std::string s) {
  Location l;
  size_t slash = s.find('/');
  std::string hostport = s.substr(0, slash);
  l.path = slash == std::string::npos ? "" : s.substr(slash);
  size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    l.host = hostport.substr(0, colon);
    l.port = hostport.substr(colon + 1);
  } else {
    l.host = hostport;
  }
  return l;
}

// As the kubelet's URLsMatch: same port, same number of host labels each matching the glob,
// and the glob's path a prefix of the target's.
bool LocationsMatch(const std::string& glob, const std::string& target) {
  Location g = ParseSchemeless(glob), t = ParseSchemeless(target);
  if (g.port != t.port || !absl::StartsWith(t.path, g.path)) return false;
  std::vector<std::string> gp = absl::StrSplit(g.host, '.'), tp = absl::StrSplit(t.host, '.');
  if (gp.size() != tp.size()) return false;
  for (size_t i = 0; i < gp.size(); ++i) {
    if (fnmatch(gp[i].c_str(), tp[i].c_str(), 0) != 0) return false;
  }
  return true;
}

// The keyring key of a docker config location, as the kubelet's BasicDockerKeyring.Add.
std::string KeyOf(std::string loc) {
  for (const char* scheme : {"https://", "http://"}) {
    if (absl::StartsWith(loc, scheme)) loc = loc.substr(strlen(scheme));
  }
  Location l = ParseSchemeless(loc);
  std::string path = l.path;
  if (absl::StartsWith(path, "/v2/") || absl::StartsWith(path, "/v1/")) path = path.substr(3);
  std::string host = l.port.empty() ? l.host : absl::StrCat(l.host, ":", l.port);
  return path.empty() || path == "/" ? host : host + path;
}

// As the kubelet's isDefaultRegistryMatch, on a normalized repository.
bool IsDockerHub(const std::string& repo) { return absl::StartsWith(repo, "docker.io/"); }

}  // namespace

std::string NormalizedRepository(const std::string& image) {
  std::string name = image.substr(0, image.find('@'));
  size_t last_slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash)) {
    name = name.substr(0, colon);
  }
  size_t slash = name.find('/');
  std::string first = name.substr(0, slash);
  std::string domain = "docker.io", path = name;
  if (slash != std::string::npos &&
      (absl::StrContains(first, ".") || absl::StrContains(first, ":") || first == "localhost")) {
    domain = first;
    path = name.substr(slash + 1);
  }
  if (domain == "index.docker.io") domain = "docker.io";
  if (domain == "docker.io" && !absl::StrContains(path, "/")) path = "library/" + path;
  return absl::StrCat(domain, "/", path);
}

absl::Status DockerKeyring::AddSecret(const Json& secret) {
  std::string name = secret.value("metadata", Json::object()).value("name", std::string());
  std::string type = secret.value("type", std::string());
  const char* field = type == "kubernetes.io/dockerconfigjson" ? ".dockerconfigjson"
                      : type == "kubernetes.io/dockercfg"      ? ".dockercfg"
                                                               : nullptr;
  if (field == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret ", name, " has type \"", type,
                     "\", not kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg"));
  }
  const Json& data = secret.value("data", Json::object());
  if (!data.contains(field) || !data[field].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret ", name, " has no data[\"", field, "\"]"));
  }
  std::string raw;
  if (!absl::Base64Unescape(data[field].get<std::string>(), &raw)) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret ", name, ": data[\"", field, "\"] is not base64"));
  }
  Json cfg = Json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded() || !cfg.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret ", name, ": ", field, " is not a JSON object"));
  }
  if (std::string(field) == ".dockerconfigjson") {
    if (!cfg.contains("auths") || !cfg["auths"].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("secret ", name, ": .dockerconfigjson has no \"auths\""));
    }
    cfg = cfg["auths"];
  }
  for (const auto& [loc, entry] : cfg.items()) {
    if (!entry.is_object()) continue;
    RegistryCredential c;
    c.username = entry.value("username", std::string());
    c.password = entry.value("password", std::string());
    c.identity_token = entry.value("identitytoken", std::string());
    std::string auth = entry.value("auth", std::string()), decoded;
    if (!auth.empty()) {
      // "auth" (base64 "user:password") wins over the separate fields, as in the kubelet.
      if (!absl::Base64Unescape(auth, &decoded) || !absl::StrContains(decoded, ":")) {
        return absl::InvalidArgumentError(absl::StrCat("secret ", name, ": the \"auth\" of ", loc,
                                                       " is not base64 of user:password"));
      }
      size_t colon = decoded.find(':');
      c.username = decoded.substr(0, colon);
      c.password = decoded.substr(colon + 1);
    }
    c.key = KeyOf(loc);
    creds_[c.key].push_back(std::move(c));
  }
  return absl::OkStatus();
}

std::vector<RegistryCredential> DockerKeyring::Lookup(const std::string& image) const {
  std::string repo = NormalizedRepository(image);
  std::vector<RegistryCredential> out;
  // Reverse lexicographic order of keys: the longer (more specific) of two related keys first.
  for (auto it = creds_.rbegin(); it != creds_.rend(); ++it) {
    if (LocationsMatch(it->first, repo))
      out.insert(out.end(), it->second.begin(), it->second.end());
  }
  if (out.empty() && IsDockerHub(repo)) {
    if (auto it = creds_.find("index.docker.io"); it != creds_.end()) return it->second;
  }
  return out;
}

}  // namespace berth::kubelet
