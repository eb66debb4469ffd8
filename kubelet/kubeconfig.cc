#include "kubelet/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::kubelet {
namespace {

std::string Str(const YAML::Node& n, const char* key) {
  if (!n.IsMap()) return "";
  YAML::Node v = n[key];
  if (!v || !v.IsScalar()) return "";
  return v.as<std::string>();
}

bool Bool(const YAML::Node& n, const char* key) {
  if (!n.IsMap()) return false;
  YAML::Node v = n[key];
  if (!v || !v.IsScalar()) return false;
  std::string s = v.as<std::string>();
  return s == "true" || s == "True" || s == "TRUE" || s == "yes";
}

// Finds `list[i]` whose "name" is `name` and returns its `field` member.
absl::StatusOr<YAML::Node> FindNamed(const YAML::Node& root, const char* list, const char* field,
                                     const std::string& name) {
  YAML::Node items = root[list];
  if (items && items.IsSequence()) {
    for (const YAML::Node& item : items) {
      if (Str(item, "name") == name) {
        YAML::Node v = item[field];
        if (!v || !v.IsMap()) {
          return absl::InvalidArgumentError(
              absl::StrCat(list, " entry \"", name, "\" has no ", field, " map"));
        }
        return v;
      }
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(field, " \"", name, "\" not found in ", list));
}

std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || base_dir.empty()) return p;
  return JoinPath(base_dir, p);
}

// The resolved path of file field `key` when `<key>-data` is not given, else "".
std::string FileRef(const YAML::Node& m, const std::string& key, const std::string& base_dir) {
  if (!Str(m, (key + "-data").c_str()).empty()) return std::string();
  std::string file = Str(m, key.c_str());
  return file.empty() ? std::string() : Resolve(base_dir, file);
}

// Loads `<key>-data` (base64) or `<key>` (file path) from `m`.
absl::StatusOr<std::string> DataOrFile(const YAML::Node& m, const std::string& key,
                                       const std::string& base_dir) {
  std::string data = Str(m, (key + "-data").c_str());
  if (!data.empty()) {
    auto decoded = Base64Decode(data);
    if (!decoded.ok()) return Annotate(decoded.status(), key + "-data");
    return decoded;
  }
  std::string file = Str(m, key.c_str());
  if (file.empty()) return std::string();
  auto content = ReadFile(Resolve(base_dir, file));
  if (!content.ok()) return Annotate(content.status(), key);
  return content;
}

}  // namespace

absl::StatusOr<std::string> Base64Decode(const std::string& in) {
  std::string compact;
  compact.reserve(in.size());
  for (char c : in) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') compact.push_back(c);
  }
  std::string out;
  if (!absl::Base64Unescape(compact, &out)) {
    return absl::InvalidArgumentError("invalid base64 data");
  }
  return out;
}

absl::StatusOr<Kubeconfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                           const std::string& context_override) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig: malformed YAML: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("kubeconfig: top level is not a map");
  Kubeconfig kc;
  try {
    kc.context = context_override.empty() ? Str(root, "current-context") : context_override;
    if (kc.context.empty()) {
      // A kubeconfig with exactly one context needs no current-context.
      YAML::Node contexts = root["contexts"];
      if (contexts && contexts.IsSequence() && contexts.size() == 1) {
        kc.context = Str(contexts[0], "name");
      }
    }
    if (kc.context.empty()) {
      return absl::InvalidArgumentError("kubeconfig: no current-context");
    }
    auto ctx = FindNamed(root, "contexts", "context", kc.context);
    if (!ctx.ok()) return Annotate(ctx.status(), "kubeconfig");
    std::string cluster_name = Str(*ctx, "cluster");
    std::string user_name = Str(*ctx, "user");

    auto cluster = FindNamed(root, "clusters", "cluster", cluster_name);
    if (!cluster.ok()) return Annotate(cluster.status(), "kubeconfig");
    kc.server = Str(*cluster, "server");
    if (kc.server.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig: cluster \"", cluster_name, "\" has no server"));
    }
    kc.tls_server_name = Str(*cluster, "tls-server-name");
    kc.insecure_skip_tls_verify = Bool(*cluster, "insecure-skip-tls-verify");
    auto ca = DataOrFile(*cluster, "certificate-authority", base_dir);
    if (!ca.ok()) return Annotate(ca.status(), "kubeconfig: cluster \"" + cluster_name + "\"");
    kc.ca_pem = *ca;
    kc.ca_file = FileRef(*cluster, "certificate-authority", base_dir);

    if (!user_name.empty()) {
      auto user = FindNamed(root, "users", "user", user_name);
      if (!user.ok()) return Annotate(user.status(), "kubeconfig");
      std::string what = "kubeconfig: user \"" + user_name + "\"";
      auto cert = DataOrFile(*user, "client-certificate", base_dir);
      if (!cert.ok()) return Annotate(cert.status(), what);
      kc.client_cert_pem = *cert;
      auto key = DataOrFile(*user, "client-key", base_dir);
      if (!key.ok()) return Annotate(key.status(), what);
      kc.client_key_pem = *key;
      kc.client_certificate_file = FileRef(*user, "client-certificate", base_dir);
      kc.client_key_file = FileRef(*user, "client-key", base_dir);
      if (kc.client_cert_pem.empty() != kc.client_key_pem.empty()) {
        return absl::InvalidArgumentError(what + ": client certificate and key must both be set");
      }
      kc.token = Str(*user, "token");
      std::string token_file = Str(*user, "tokenFile");
      if (kc.token.empty() && !token_file.empty()) {
        auto tok = ReadFile(Resolve(base_dir, token_file));
        if (!tok.ok()) return Annotate(tok.status(), what + ": tokenFile");
        kc.token = *tok;
        while (!kc.token.empty() &&
               (kc.token.back() == '\n' || kc.token.back() == '\r' || kc.token.back() == ' ')) {
          kc.token.pop_back();
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig: ", e.what()));
  }
  return kc;
}

absl::StatusOr<Kubeconfig> LoadKubeconfig(const std::string& path,
                                          const std::string& context_override) {
  auto text = ReadFile(path);
  if (!text.ok()) return Annotate(text.status(), "load kubeconfig");
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
  }
  auto kc = ParseKubeconfig(*text, dir, context_override);
  if (!kc.ok()) return Annotate(kc.status(), path);
  return kc;
}

}  // namespace berth::kubelet
