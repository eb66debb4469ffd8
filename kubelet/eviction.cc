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

std::optional<Limit> ParseLimit(const Json& q) {
  if (!q.is_string() && !q.is_number()) return std::nullopt;
  std::string text = q.is_string() ? q.get<std::string>() : q.dump();
  absl::StatusOr<Quantity> v = Quantity::Parse(text);
  if (!v.ok() || v->Sign() <= 0) return std::nullopt;
  return Limit{static_cast<uint64_t>(v->Value()), absl::EndsWith(text, "i")};
}

std::optional<Limit> ContainerLimit(const Json& c) {
  const Json* limits = nullptr;
  if (auto r = c.find("resources"); r != c.end() && r->is_object()) {
    if (auto l = r->find("limits"); l != r->end() && l->is_object()) limits = &*l;
  }
  if (limits == nullptr) return std::nullopt;
  auto q = limits->find(kEphemeralStorage);
  if (q == limits->end()) return std::nullopt;
  return ParseLimit(*q);
}

const Json& Array(const Json& obj, const char* key) {
  static const Json kEmpty = Json::array();
  auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : kEmpty;
}

// resourcehelper.PodLimits for ephemeral-storage: the sum over containers, at least any one
// init container's, plus the pod overhead; nullopt when no container has the limit.
std::optional<Limit> PodLimit(const Json& spec) {
  std::optional<Limit> sum;
  for (const Json& c : Array(spec, "containers")) {
    std::optional<Limit> l = ContainerLimit(c);
    if (!l) continue;
    if (!sum) {
      sum = *l;
    } else {
      sum->bytes += l->bytes;
    }
  }
  for (const Json& c : Array(spec, "initContainers")) {
    std::optional<Limit> l = ContainerLimit(c);
    if (!l) continue;
    if (!sum || l->bytes > sum->bytes) sum = *l;
  }
  if (sum) {
    if (auto o = spec.find("overhead"); o != spec.end() && o->is_object()) {
      if (auto q = o->find(kEphemeralStorage); q != o->end()) {
        if (std::optional<Limit> l = ParseLimit(*q)) sum->bytes += l->bytes;
      }
    }
  }
  return sum;
}

bool IsMemoryMedium(const Json& empty_dir) { return empty_dir.value("medium", "") == "Memory"; }

// kubelettypes.IsCriticalPod: mirror pods and pods at system-critical priority or above are
// never evicted (berth runs no static pods).
bool IsCriticalPod(const Json& pod) {
  const Json& meta = pod.value("metadata", Json::object());
  if (auto a = meta.find("annotations"); a != meta.end() && a->is_object() &&
                                         a->contains("kubernetes.io/config.mirror")) {
    return true;
  }
  const Json& spec = pod.value("spec", Json::object());
  auto p = spec.find("priority");
  return p != spec.end() && p->is_number_integer() && p->get<int64_t>() >= 2000000000;
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

std::optional<std::string> LocalStorageEvictionMessage(const Json& pod, const PodStorageUsage& usage) {
  const Json& spec = pod.value("spec", Json::object());
  // emptyDirLimitEviction
  for (const Json& v : Array(spec, "volumes")) {
    auto ed = v.find("emptyDir");
    if (ed == v.end() || !ed->is_object()) continue;
    auto size = ed->find("sizeLimit");
    if (size == ed->end()) continue;
    std::optional<Limit> limit = ParseLimit(*size);
    const std::string name = v.value("name", "");
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
  for (const Json& c : Array(spec, "containers")) {
    std::optional<Limit> limit = ContainerLimit(c);
    const std::string name = c.value("name", "");
    auto used = usage.containers.find(name);
    if (!limit || used == usage.containers.end() || used->second <= limit->bytes) continue;
    return absl::StrCat("Container ", name, " exceeded its local ephemeral storage limit \"",
                        FormatQuantity(limit->bytes, limit->binary), "\". ");
  }
  return std::nullopt;
}

LocalStorageEvictor::LocalStorageEvictor(Deps deps) : deps_(std::move(deps)) {}

std::vector<std::string> LocalStorageEvictor::Check() {
  std::vector<Json> pods = deps_.pods();
  std::map<std::string, metrics::SummaryPod> running;
  bool listed_running = false;
  std::set<std::string> paths;
  std::set<std::string> listed;
  std::vector<std::string> out;
  for (const Json& pod : pods) {
    const Json& meta = pod.value("metadata", Json::object());
    const Json& spec = pod.value("spec", Json::object());
    const std::string uid = meta.value("uid", "");
    if (uid.empty()) continue;
    listed.insert(uid);
    if (evicted_.count(uid) || IsCriticalPod(pod)) continue;
    // Only pods with a limit are measured for eviction.
    bool has_limit = PodLimit(spec).has_value();
    std::vector<std::pair<std::string, bool>> empty_dirs;  // name, memory medium
    std::vector<std::string> config_maps;  // local ephemeral too (IsLocalEphemeralVolume)
    for (const Json& v : Array(spec, "volumes")) {
      if (v.contains("configMap")) config_maps.push_back(v.value("name", ""));
      auto ed = v.find("emptyDir");
      if (ed == v.end() || !ed->is_object()) continue;
      empty_dirs.emplace_back(v.value("name", ""), IsMemoryMedium(*ed));
      if (ed->contains("sizeLimit")) has_limit = true;
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
      if (std::optional<uint64_t> used = measure(JoinPath(config_map_dir, name))) usage.total += *used;
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
    LOG(INFO) << "eviction: pod " << meta.value("namespace", "") << "/" << meta.value("name", "")
              << ": " << *message;
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
