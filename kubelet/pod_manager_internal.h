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
#include "kubelet/api/pod.h"
#include "kubelet/api_client.h"

namespace berth::kubelet::pod_internal {

namespace v1 = cri::v1;

inline constexpr int64_t kMinShares = 2;
inline constexpr int64_t kCpuPeriod = 100000;
inline constexpr int64_t kMinQuota = 1000;
// Upper bound of a postStart hook (upstream has none; a pod worker must not hang forever).
inline constexpr absl::Duration kPostStartTimeout = absl::Minutes(2);
// Upstream minimumGracePeriodInSeconds: what StopContainer gets at least after a preStop
// hook, and each sidecar at pod termination.
inline constexpr int64_t kMinGracePeriodSeconds = 2;

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

// The pod-level groups of its sandbox and every container: supplementalGroups, then fsGroup
// (the kubelet's determineEffectiveSecurityContext).
template <typename SecurityContext>
inline void AddPodSupplementalGroups(const api::PodSecurityContext& psc, SecurityContext* sc) {
  for (int64_t g : psc.supplemental_groups) sc->add_supplemental_groups(g);
  if (psc.fs_group) sc->add_supplemental_groups(*psc.fs_group);
}

inline v1::NamespaceOption NamespaceOptions(const api::Pod& pod) {
  const api::PodSpec& spec = pod.spec;
  v1::NamespaceOption ns;
  ns.set_network(spec.host_network ? v1::NODE : v1::POD);
  ns.set_ipc(spec.host_ipc ? v1::NODE : v1::POD);
  if (spec.host_pid) {
    ns.set_pid(v1::NODE);
  } else {
    ns.set_pid(spec.share_process_namespace.value_or(false) ? v1::POD : v1::CONTAINER);
  }
  return ns;
}

}  // namespace berth::kubelet::pod_internal
