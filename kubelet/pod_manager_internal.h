// Helpers shared by the pod manager's translation units (pod_manager.cc: workers and sync;
// pod_config.cc: CRI sandbox and container configs). Internal to kubelet_pods.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cri/runtime_service.h"
#include "kubelet/api_client.h"

namespace berth::kubelet::pod_internal {

namespace v1 = cri::v1;


inline constexpr int64_t kDefaultGracePeriodSeconds = 30;
inline constexpr char kDefaultTerminationMessagePath[] = "/dev/termination-log";
inline constexpr int64_t kMinShares = 2;
inline constexpr int64_t kCpuPeriod = 100000;
inline constexpr int64_t kMinQuota = 1000;
// Upper bound of a postStart hook (upstream has none; a pod worker must not hang forever).
inline constexpr absl::Duration kPostStartTimeout = absl::Minutes(2);
// Upstream minimumGracePeriodInSeconds: what StopContainer gets at least after a preStop
// hook, and each sidecar at pod termination.
inline constexpr int64_t kMinGracePeriodSeconds = 2;

inline const Json& Spec(const Json& pod) {
  static const Json kEmpty = Json::object();
  auto it = pod.find("spec");
  return it != pod.end() && it->is_object() ? *it : kEmpty;
}

inline Json SpecList(const Json& pod, const char* list) {
  const Json& spec = Spec(pod);
  auto it = spec.find(list);
  return it != spec.end() && it->is_array() ? *it : Json::array();
}

inline std::string RestartPolicy(const Json& pod) {
  std::string p = Spec(pod).value("restartPolicy", std::string());
  return p.empty() ? "Always" : p;
}

struct ResolvConf {
  std::vector<std::string> servers, searches, options;
};

inline ResolvConf ReadResolvConf(const std::string& path) {
  ResolvConf rc;
  auto data = ReadFile(path);
  if (!data.ok()) return rc;
  for (absl::string_view line : absl::StrSplit(*data, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.empty() || f[0][0] == '#' || f[0][0] == ';') continue;
    if (f[0] == "nameserver" && f.size() > 1) rc.servers.push_back(f[1]);
    if (f[0] == "search" || f[0] == "domain") rc.searches.assign(f.begin() + 1, f.end());
    if (f[0] == "options") rc.options.insert(rc.options.end(), f.begin() + 1, f.end());
  }
  return rc;
}

inline int64_t NodeMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

inline int64_t CurrentOomScoreAdj() {
  std::ifstream in("/proc/self/oom_score_adj");
  int64_t v = 0;
  in >> v;
  return v;
}

// imagePullPolicy default: Always for ":latest" or untagged images, else IfNotPresent.
inline std::string PullPolicy(const Json& c) {
  std::string p = c.value("imagePullPolicy", std::string());
  if (!p.empty()) return p;
  std::string image = c.value("image", std::string());
  if (image.find('@') != std::string::npos) return "IfNotPresent";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!tagged || image.substr(colon + 1) == "latest") return "Always";
  return "IfNotPresent";
}

inline const Json* FieldOr(const Json& obj, const char* a) {
  auto it = obj.find(a);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

// The pod-level groups of its sandbox and every container: supplementalGroups, then fsGroup
// (the kubelet's determineEffectiveSecurityContext).
template <typename SecurityContext>
inline void AddPodSupplementalGroups(const Json& pod_security_context, SecurityContext* sc) {
  for (const auto& g : pod_security_context.value("supplementalGroups", Json::array())) {
    sc->add_supplemental_groups(g.get<int64_t>());
  }
  auto fs_group = pod_security_context.find("fsGroup");
  if (fs_group != pod_security_context.end() && fs_group->is_number_integer()) {
    sc->add_supplemental_groups(fs_group->get<int64_t>());
  }
}

inline v1::NamespaceOption NamespaceOptions(const Json& pod) {
  const Json& spec = Spec(pod);
  v1::NamespaceOption ns;
  ns.set_network(spec.value("hostNetwork", false) ? v1::NODE : v1::POD);
  ns.set_ipc(spec.value("hostIPC", false) ? v1::NODE : v1::POD);
  if (spec.value("hostPID", false)) {
    ns.set_pid(v1::NODE);
  } else {
    ns.set_pid(spec.value("shareProcessNamespace", false) ? v1::POD : v1::CONTAINER);
  }
  return ns;
}


}  // namespace berth::kubelet::pod_internal
