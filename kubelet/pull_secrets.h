// Registry credentials from a pod's imagePullSecrets, matched to an image the way the
// upstream kubelet's credential keyring does (pkg/credentialprovider: BasicDockerKeyring).
#ifndef BERTH_KUBELET_PULL_SECRETS_H_
#define BERTH_KUBELET_PULL_SECRETS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth::kubelet {

// One credential of a docker config: user name and password (from "username"/"password" or
// the base64 "auth" = "user:password"), plus the identity token when given.
struct RegistryCredential {
  std::string username;
  std::string password;
  std::string identity_token;
  std::string key;  // the keyring key it was stored under, e.g. "registry.example.com/team"
};

// Credentials from docker config files, indexed as the kubelet indexes them. Not
// thread-safe; cheap to build per pull.
class DockerKeyring {
 public:
  // Adds the entries of a Secret object (JSON as served by the API server) of type
  // kubernetes.io/dockerconfigjson (data[".dockerconfigjson"], {"auths": {loc: entry}}) or
  // kubernetes.io/dockercfg (data[".dockercfg"], {loc: entry}). A location without scheme
  // gets "https://"; a "/v1/" or "/v2/" path prefix is dropped; the key is host[:port][path].
  // InvalidArgument for another type, missing or undecodable data, or malformed JSON.
  absl::Status AddSecret(const nlohmann::json& secret);

  // The credentials for `image` (a reference as in a pod spec, tag/digest allowed), most
  // specific key first: every key whose host matches the image's registry host part by part
  // (glob as filepath.Match: `*.example.com`), with the same port, and whose path is a
  // prefix of the image's repository path. Images of Docker Hub also get the credentials of
  // "index.docker.io" (as for "https://index.docker.io/v1/"). Empty when none matches.
  std::vector<RegistryCredential> Lookup(const std::string& image) const;

  bool empty() const { return creds_.empty(); }

 private:
  std::map<std::string, std::vector<RegistryCredential>> creds_;  // key -> credentials
};

// "docker.io/library/busybox" for "busybox:1.36": the registry host and repository path of
// an image reference, without tag or digest (docker.io and library/ defaults applied).
std::string NormalizedRepository(const std::string& image);

}  // namespace berth::kubelet

#endif  // BERTH_KUBELET_PULL_SECRETS_H_
