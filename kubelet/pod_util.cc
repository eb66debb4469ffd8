#include "kubelet/pod_util.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"

namespace berth::kubelet {

std::optional<Quantity> ContainerResource(const Json& container, const std::string& kind,
                                          const std::string& resource) {
  auto res = container.find("resources");
  if (res == container.end() || !res->is_object()) return std::nullopt;
  auto k = res->find(kind);
  if (k == res->end() || !k->is_object()) return std::nullopt;
  auto q = k->find(resource);
  if (q == k->end()) return std::nullopt;
  std::string text = q->is_string() ? q->get<std::string>() : q->dump();
  absl::StatusOr<Quantity> v = Quantity::Parse(text);
  if (!v.ok()) return std::nullopt;
  return *v;
}

NodeResources NodeAllocatable(const std::string& root_dir) {
  NodeResources n;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus > 0) n.cpu = static_cast<double>(cpus);
  if (auto meminfo = ReadFile("/proc/meminfo"); meminfo.ok()) {
    for (absl::string_view line : absl::StrSplit(*meminfo, '\n')) {
      uint64_t kib;
      if (absl::ConsumePrefix(&line, "MemTotal:") &&
          absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(line), " kB"), &kib)) {
        n.memory = static_cast<double>(kib) * 1024;
      }
    }
  }
  struct statvfs fs;
  if (!root_dir.empty() && statvfs(root_dir.c_str(), &fs) == 0) {
    n.ephemeral_storage = static_cast<double>(fs.f_blocks) * static_cast<double>(fs.f_frsize);
  }
  return n;
}

const Json* FindContainer(const Json& pod, const std::string& name) {
  auto spec = pod.find("spec");
  if (spec == pod.end() || !spec->is_object()) return nullptr;
  for (const char* kind : {"containers", "initContainers"}) {
    auto list = spec->find(kind);
    if (list == spec->end() || !list->is_array()) continue;
    for (const Json& c : *list) {
      if (c.is_object() && c.value("name", "") == name) return &c;
    }
  }
  return nullptr;
}

absl::StatusOr<std::string> ResolveResourceFieldRef(const Json& container, const Json& ref,
                                                    const NodeResources& node) {
  const std::string resource = ref.value("resource", "");
  std::vector<std::string> parts = absl::StrSplit(resource, absl::MaxSplits('.', 1));
  if (parts.size() != 2 || (parts[0] != "limits" && parts[0] != "requests") ||
      (parts[1] != "cpu" && parts[1] != "memory" && parts[1] != "ephemeral-storage")) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported resourceFieldRef resource \"", resource, "\""));
  }
  // The API server stores an absent divisor as "0"; ExtractContainerResourceValue takes a
  // zero divisor as 1.
  Quantity divisor = Quantity::FromScaled(1, 0);
  if (auto d = ref.find("divisor"); d != ref.end() && !d->is_null()) {
    absl::StatusOr<Quantity> q =
        Quantity::Parse(d->is_string() ? d->get<std::string>() : d->dump());
    if (!q.ok() || q->Sign() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("resourceFieldRef ", resource, ": bad divisor ", d->dump()));
    }
    if (!q->IsZero()) divisor = *q;
  }
  return ResourceValueOverDivisor(parts[1], ContainerResource(container, parts[0], parts[1]),
                                  parts[0] == "limits", divisor, node);
}

absl::StatusOr<std::string> ResolveResourceFieldRef(const api::Container& container,
                                                    const api::ResourceFieldSelector& ref,
                                                    const NodeResources& node) {
  std::vector<std::string> parts = absl::StrSplit(ref.resource, absl::MaxSplits('.', 1));
  if (parts.size() != 2 || (parts[0] != "limits" && parts[0] != "requests") ||
      (parts[1] != "cpu" && parts[1] != "memory" && parts[1] != "ephemeral-storage")) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported resourceFieldRef resource \"", ref.resource, "\""));
  }
  const api::ResourceList& list =
      parts[0] == "limits" ? container.resources.limits : container.resources.requests;
  std::optional<Quantity> value;
  if (auto it = list.find(parts[1]); it != list.end()) value = it->second;
  return ResourceValueOverDivisor(parts[1], value, parts[0] == "limits", ref.divisor, node);
}

std::string ResourceValueOverDivisor(const std::string& resource, std::optional<Quantity> value,
                                     bool is_limit, const Quantity& divisor,
                                     const NodeResources& node) {
  if (!value) {
    // An unset limit is the node's allocatable (the kubelet merges it in); an unset request 0.
    double v = 0;
    if (is_limit)
      v = resource == "cpu"      ? node.cpu
          : resource == "memory" ? node.memory
                                 : node.ephemeral_storage;
    value = resource == "cpu" ? Quantity::FromScaled(static_cast<int64_t>(v * 1000), -3)
                              : Quantity::FromScaled(static_cast<int64_t>(v), 0);
  }
  double out;
  if (resource == "cpu") {
    out = std::ceil(static_cast<double>(value->MilliValue()) /
                    static_cast<double>(divisor.MilliValue()));
  } else {
    out = std::ceil(static_cast<double>(value->Value()) / static_cast<double>(divisor.Value()));
  }
  return absl::StrCat(static_cast<int64_t>(out));
}

std::string PodQosClass(const api::Pod& pod) {
  bool any_set = false;
  bool guaranteed = true;
  for (const auto* list : {&pod.spec.init_containers, &pod.spec.containers}) {
    for (const api::Container& c : *list) {
      for (const char* r : {"cpu", "memory"}) {
        auto req = c.resources.requests.find(r);
        auto lim = c.resources.limits.find(r);
        bool has_req = req != c.resources.requests.end();
        bool has_lim = lim != c.resources.limits.end();
        if (has_req && req->second.Sign() > 0) any_set = true;
        if (has_lim && lim->second.Sign() > 0) any_set = true;
        if (!has_lim || (has_req && req->second != lim->second)) guaranteed = false;
      }
    }
  }
  if (!any_set) return "BestEffort";
  if (guaranteed) return "Guaranteed";
  return "Burstable";
}

std::string PodCgroupParent(const api::Pod& pod, const std::string& root) {
  const std::string qos = PodQosClass(pod);
  const std::string& uid = pod.metadata.uid;
  if (qos == "Guaranteed") return absl::StrCat(root, "/pod", uid);
  if (qos == "Burstable") return absl::StrCat(root, "/burstable/pod", uid);
  return absl::StrCat(root, "/besteffort/pod", uid);
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::optional<absl::Time> ParseRfc3339(const std::string& s) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, s, &t, &err)) return t;
  return std::nullopt;
}

std::string GetString(const Json& obj, const std::string& dotted_path) {
  const Json* cur = &obj;
  for (absl::string_view part : absl::StrSplit(dotted_path, '.')) {
    if (!cur->is_object()) return "";
    auto it = cur->find(std::string(part));
    if (it == cur->end()) return "";
    cur = &*it;
  }
  return cur->is_string() ? cur->get<std::string>() : "";
}

namespace {
// Parses "metadata.labels['key']" into ("metadata.labels", "key").
bool SplitSubscript(const std::string& path, std::string* prefix, std::string* key) {
  auto open = path.find("['");
  if (open == std::string::npos || path.size() < open + 4 || path.substr(path.size() - 2) != "']") {
    return false;
  }
  *prefix = path.substr(0, open);
  *key = path.substr(open + 2, path.size() - open - 4);
  return true;
}
}  // namespace

absl::StatusOr<std::string> ResolveFieldRef(const Json& pod, const std::string& field_path,
                                            const std::string& pod_ip, const std::string& host_ip) {
  if (field_path == "metadata.name" || field_path == "metadata.namespace" ||
      field_path == "metadata.uid" || field_path == "spec.nodeName" ||
      field_path == "spec.serviceAccountName") {
    return GetString(pod, field_path);
  }
  if (field_path == "status.podIP" || field_path == "status.podIPs") return pod_ip;
  if (field_path == "status.hostIP" || field_path == "status.hostIPs") return host_ip;
  std::string prefix, key;
  if (SplitSubscript(field_path, &prefix, &key) &&
      (prefix == "metadata.labels" || prefix == "metadata.annotations")) {
    const Json& meta = pod.value("metadata", Json::object());
    const Json& m =
        meta.value(prefix == "metadata.labels" ? "labels" : "annotations", Json::object());
    auto it = m.find(key);
    return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
  }
  if (field_path == "metadata.labels" || field_path == "metadata.annotations") {
    // Formatted as the downward API does: one key="value" per line, sorted by key.
    const Json& meta = pod.value("metadata", Json::object());
    const Json& m =
        meta.value(field_path == "metadata.labels" ? "labels" : "annotations", Json::object());
    std::string out;
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!out.empty()) out += "\n";
      out += absl::StrCat(it.key(), "=", Json(it.value()).dump());
    }
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported fieldRef \"", field_path, "\""));
}

absl::StatusOr<std::string> ResolveFieldRef(const api::Pod& pod, const std::string& field_path,
                                            const std::string& pod_ip, const std::string& host_ip) {
  if (field_path == "metadata.name") return pod.metadata.name;
  if (field_path == "metadata.namespace") return pod.metadata.namespace_;
  if (field_path == "metadata.uid") return pod.metadata.uid;
  if (field_path == "spec.nodeName") return pod.spec.node_name;
  if (field_path == "spec.serviceAccountName") return pod.spec.service_account_name;
  if (field_path == "status.podIP" || field_path == "status.podIPs") return pod_ip;
  if (field_path == "status.hostIP" || field_path == "status.hostIPs") return host_ip;
  std::string prefix, key;
  if (SplitSubscript(field_path, &prefix, &key) &&
      (prefix == "metadata.labels" || prefix == "metadata.annotations")) {
    const auto& m = prefix == "metadata.labels" ? pod.metadata.labels : pod.metadata.annotations;
    auto it = m.find(key);
    return it != m.end() ? it->second : std::string();
  }
  if (field_path == "metadata.labels" || field_path == "metadata.annotations") {
    // Formatted as the downward API does: one key="value" per line, sorted by key.
    const auto& m =
        field_path == "metadata.labels" ? pod.metadata.labels : pod.metadata.annotations;
    std::string out;
    for (const auto& [k, v] : m) {
      if (!out.empty()) out += "\n";
      out += absl::StrCat(k, "=", Json(v).dump());
    }
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported fieldRef \"", field_path, "\""));
}

std::string ExpandEnvRefs(const std::string& in, const std::map<std::string, std::string>& env) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$' || i + 1 >= in.size()) {
      out += in[i];
      continue;
    }
    if (in[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (in[i + 1] == '(') {
      auto close = in.find(')', i + 2);
      if (close != std::string::npos) {
        std::string name = in.substr(i + 2, close - i - 2);
        auto it = env.find(name);
        if (it != env.end()) {
          out += it->second;
        } else {
          out += in.substr(i, close - i + 1);
        }
        i = close;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

std::string PodKey(const Json& pod) {
  return absl::StrCat(GetString(pod, "metadata.namespace"), "/", GetString(pod, "metadata.name"));
}

absl::StatusOr<SeccompProfile> ResolveSeccompProfile(const api::Pod& pod,
                                                     const api::Container& container,
                                                     bool seccomp_default,
                                                     const std::string& profile_root) {
  const api::SeccompProfile* field = nullptr;
  if (container.security_context && container.security_context->seccomp_profile) {
    field = &*container.security_context->seccomp_profile;
  } else if (pod.spec.security_context.seccomp_profile) {
    field = &*pod.spec.security_context.seccomp_profile;
  }
  SeccompProfile out;
  if (field == nullptr) {
    if (seccomp_default) out.type = SeccompProfile::Type::kRuntimeDefault;
    return out;
  }
  if (field->type == "RuntimeDefault") {
    out.type = SeccompProfile::Type::kRuntimeDefault;
  } else if (field->type == "Unconfined") {
    out.type = SeccompProfile::Type::kUnconfined;
  } else if (field->type == "Localhost") {
    if (field->localhost_profile.empty()) {
      return absl::InvalidArgumentError(
          "localhostProfile must be set if seccompProfile type is Localhost.");
    }
    out.type = SeccompProfile::Type::kLocalhost;
    out.localhost_path = profile_root + "/" + field->localhost_profile;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown seccompProfile type \"", field->type, "\""));
  }
  return out;
}

}  // namespace berth::kubelet
