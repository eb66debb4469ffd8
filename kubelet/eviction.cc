#include "kubelet/eviction.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "kubelet/pod_util.h"

namespace berth::kubelet {
namespace {

constexpr char kEphemeralStorage[] = "ephemeral-storage";
constexpr char kConsumer[] = "eviction";

// A limit and how resource.Quantity would print it.
struct Limit {
  uint64_t bytes = 0;
  bool binary = false;  // written with a binary suffix (Ki, Mi, ...)
};

std::optional<Limit> LimitOf(const Quantity& q) {
  if (q.Sign() <= 0) return std::nullopt;
  return Limit{static_cast<uint64_t>(q.Value()), q.format() == Quantity::Format::kBinarySI};
}

std::optional<Limit> ContainerLimit(const api::Container& c) {
  auto q = c.resources.limits.find(kEphemeralStorage);
  if (q == c.resources.limits.end()) return std::nullopt;
  return LimitOf(q->second);
}

// resourcehelper.PodLimits for ephemeral-storage: the sum over containers, at least any one
// init container's, plus the pod overhead; nullopt when no container has the limit.
std::optional<Limit> PodLimit(const api::PodSpec& spec) {
  std::optional<Limit> sum;
  for (const api::Container& c : spec.containers) {
    std::optional<Limit> l = ContainerLimit(c);
    if (!l) continue;
    if (!sum) {
      sum = *l;
    } else {
      sum->bytes += l->bytes;
    }
  }
  for (const api::Container& c : spec.init_containers) {
    std::optional<Limit> l = ContainerLimit(c);
    if (!l) continue;
    if (!sum || l->bytes > sum->bytes) sum = *l;
  }
  if (sum) {
    if (auto o = spec.overhead.find(kEphemeralStorage); o != spec.overhead.end()) {
      if (std::optional<Limit> l = LimitOf(o->second)) sum->bytes += l->bytes;
    }
  }
  return sum;
}

// kubelettypes.IsCriticalPod: mirror pods and pods at system-critical priority or above are
// never evicted (berth runs no static pods).
bool IsCriticalPod(const api::Pod& pod) {
  if (pod.metadata.annotations.count("kubernetes.io/config.mirror")) return true;
  return pod.spec.priority.value_or(0) >= 2000000000;
}

}  // namespace

std::string FormatQuantity(uint64_t bytes, bool binary) {
  if (bytes == 0) return "0";
  static const char* const kBinary[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  static const char* const kDecimal[] = {"", "k", "M", "G", "T", "P", "E"};
  const uint64_t base = binary ? 1024 : 1000;
  int exp = 0;
  while (exp < 6 && bytes % base == 0) {
    bytes /= base;
    ++exp;
  }
  return absl::StrCat(bytes, binary ? kBinary[exp] : kDecimal[exp]);
}

std::optional<std::string> LocalStorageEvictionMessage(const api::Pod& pod,
                                                       const PodStorageUsage& usage) {
  const api::PodSpec& spec = pod.spec;
  // emptyDirLimitEviction
  for (const api::Volume& v : spec.volumes) {
    if (!v.empty_dir || !v.empty_dir->size_limit) continue;
    std::optional<Limit> limit = LimitOf(*v.empty_dir->size_limit);
    const std::string& name = v.name;
    auto used = usage.volumes.find(name);
    if (!limit || used == usage.volumes.end() || used->second <= limit->bytes) continue;
    return absl::StrCat("Usage of EmptyDir volume \"", name, "\" exceeds the limit \"",
                        FormatQuantity(limit->bytes, limit->binary), "\". ");
  }
  // podEphemeralStorageLimitEviction
  if (std::optional<Limit> limit = PodLimit(spec); limit && usage.total > limit->bytes) {
    return absl::StrCat("Pod ephemeral local storage usage exceeds the total limit of containers ",
                        FormatQuantity(limit->bytes, limit->binary), ". ");
  }
  // containerEphemeralStorageLimitEviction
  for (const api::Container& c : spec.containers) {
    std::optional<Limit> limit = ContainerLimit(c);
    const std::string& name = c.name;
    auto used = usage.containers.find(name);
    if (!limit || used == usage.containers.end() || used->second <= limit->bytes) continue;
    return absl::StrCat("Container ", name, " exceeded its local ephemeral storage limit \"",
                        FormatQuantity(limit->bytes, limit->binary), "\". ");
  }
  return std::nullopt;
}

LocalStorageEvictor::LocalStorageEvictor(Deps deps) : deps_(std::move(deps)) {}

std::vector<std::string> LocalStorageEvictor::Check() {
  std::vector<api::Pod> pods = deps_.pods();
  std::map<std::string, metrics::SummaryPod> running;
  bool listed_running = false;
  std::set<std::string> paths;
  std::set<std::string> listed;
  std::vector<std::string> out;
  for (const api::Pod& pod : pods) {
    const api::PodSpec& spec = pod.spec;
    const std::string& uid = pod.metadata.uid;
    if (uid.empty()) continue;
    listed.insert(uid);
    if (evicted_.count(uid) || IsCriticalPod(pod)) continue;
    // Only pods with a limit are measured for eviction.
    bool has_limit = PodLimit(spec).has_value();
    std::vector<std::pair<std::string, bool>> empty_dirs;  // name, memory medium
    std::vector<std::string> config_maps;  // local ephemeral too (IsLocalEphemeralVolume)
    for (const api::Volume& v : spec.volumes) {
      if (v.config_map) config_maps.push_back(v.name);
      if (!v.empty_dir) continue;
      empty_dirs.emplace_back(v.name, v.empty_dir->medium == "Memory");
      if (v.empty_dir->size_limit) has_limit = true;
    }
    if (!has_limit) continue;
    if (!listed_running) {
      for (metrics::SummaryPod& p : deps_.running()) running[p.uid] = std::move(p);
      listed_running = true;
    }
    PodStorageUsage usage;
    auto measure = [&](const std::string& path) -> std::optional<uint64_t> {
      if (path.empty()) return std::nullopt;
      paths.insert(path);
      std::optional<metrics::FsStats> fs = deps_.fs->Get(path);
      if (!fs) return std::nullopt;
      return fs->used_bytes;
    };
    const std::string volumes_dir =
        JoinPath(JoinPath(JoinPath(deps_.pods_dir, uid), "volumes"), "kubernetes.io~empty-dir");
    for (const auto& [name, memory] : empty_dirs) {
      std::optional<uint64_t> used = measure(JoinPath(volumes_dir, name));
      if (!used) continue;
      usage.volumes[name] = *used;
      if (!memory) usage.total += *used;
    }
    const std::string config_map_dir =
        JoinPath(JoinPath(JoinPath(deps_.pods_dir, uid), "volumes"), "kubernetes.io~configmap");
    for (const std::string& name : config_maps) {
      if (std::optional<uint64_t> used = measure(JoinPath(config_map_dir, name)))
        usage.total += *used;
    }
    if (auto r = running.find(uid); r != running.end()) {
      for (const metrics::SummaryContainer& c : r->second.containers) {
        std::optional<uint64_t> rootfs = measure(c.rootfs_dir);
        std::optional<uint64_t> logs = measure(c.log_path);
        if (!rootfs && !logs) continue;
        uint64_t used = rootfs.value_or(0) + logs.value_or(0);
        usage.containers[c.name] += used;
        usage.total += used;
      }
    }
    std::optional<std::string> message = LocalStorageEvictionMessage(pod, usage);
    if (!message) continue;
    LOG(INFO) << "eviction: pod " << pod.Key() << ": " << *message;
    evicted_.insert(uid);
    deps_.evict(uid, *message);
    out.push_back(uid);
  }
  for (auto it = evicted_.begin(); it != evicted_.end();) {
    it = listed.count(*it) ? std::next(it) : evicted_.erase(it);
  }
  deps_.fs->Want(kConsumer, paths);
  return out;
}

}  // namespace berth::kubelet
