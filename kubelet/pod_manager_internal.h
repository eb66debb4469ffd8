// Helpers shared by the pod manager's translation units (pod_manager.cc: workers and sync;
// pod_config.cc: container start and status): constants and the node facts the pure
// builders of container_config.h take as inputs. Internal to kubelet_pods.
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

// Upper bound of a postStart hook (upstream has none; a pod worker must not hang forever).
inline constexpr absl::Duration kPostStartTimeout = absl::Minutes(2);
// Upstream minimumGracePeriodInSeconds: what StopContainer gets at least after a preStop
// hook, and each sidecar at pod termination.
inline constexpr int64_t kMinGracePeriodSeconds = 2;

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

}  // namespace berth::kubelet::pod_internal
