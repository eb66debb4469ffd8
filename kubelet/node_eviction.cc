#include "kubelet/node_eviction.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/quantity.h"
#include "base/status.h"
#include "kubelet/eviction.h"
#include "kubelet/kubelet_config.h"

namespace berth::kubelet {
namespace {

struct SignalInfo {
  Signal signal;
  const char* name;
  const char* condition;
  const char* resource;
};
constexpr SignalInfo kSignals[] = {
    {Signal::kMemoryAvailable, "memory.available", "MemoryPressure", "memory"},
    {Signal::kNodeFsAvailable, "nodefs.available", "DiskPressure", "ephemeral-storage"},
    {Signal::kNodeFsInodesFree, "nodefs.inodesFree", "DiskPressure", "inodes"},
    {Signal::kImageFsAvailable, "imagefs.available", "DiskPressure", "ephemeral-storage"},
    {Signal::kImageFsInodesFree, "imagefs.inodesFree", "DiskPressure", "inodes"},
    {Signal::kPidAvailable, "pid.available", "PIDPressure", "pids"},
};

const SignalInfo& Info(Signal s) {
  for (const SignalInfo& i : kSignals) {
    if (i.signal == s) return i;
  }
  return kSignals[0];
}

bool IsDiskSignal(Signal s) { return s != Signal::kMemoryAvailable && s != Signal::kPidAvailable; }
// Byte-valued signals print as BinarySI quantities, counts as DecimalSI.
bool IsBytes(Signal s) {
  return s == Signal::kMemoryAvailable || s == Signal::kNodeFsAvailable ||
         s == Signal::kImageFsAvailable;
}

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

// parseThresholdStatement; nullopt for 0% and 100% (ignored).
absl::StatusOr<std::optional<ThresholdValue>> ParseValue(const std::string& signal,
                                                         const std::string& val, bool allow_zero) {
  if (absl::EndsWith(val, "%")) {
    if (!allow_zero && (val == "0%" || val == "100%")) return std::nullopt;
    double pct = 0;
    if (!absl::SimpleAtod(absl::StripSuffix(val, "%"), &pct)) {
      return Invalid(
          absl::StrCat("eviction threshold ", signal, ": \"", val, "\" is not a percentage"));
    }
    if (pct < 0) {
      return Invalid(
          absl::StrCat("eviction percentage threshold ", signal, " must be >= 0%: ", val));
    }
    if (pct > 100) {
      return Invalid(
          absl::StrCat("eviction percentage threshold ", signal, " must be <= 100%: ", val));
    }
    ThresholdValue v;
    v.percentage = static_cast<float>(pct / 100);
    return v;
  }
  absl::StatusOr<Quantity> q = Quantity::Parse(val);
  if (!q.ok()) {
    return Invalid(absl::StrCat("eviction threshold ", signal, ": ", q.status().message()));
  }
  if (q->Sign() < 0 || (!allow_zero && q->Sign() == 0)) {
    return Invalid(absl::StrCat("eviction threshold ", signal, " must be positive: ", val));
  }
  ThresholdValue v;
  v.quantity = q->Value();
  v.binary = q->format() == Quantity::Format::kBinarySI;
  return v;
}

std::string FormatAmount(int64_t v, bool bytes) {
  if (v < 0) return absl::StrCat("-", FormatQuantity(static_cast<uint64_t>(-v), bytes));
  return FormatQuantity(static_cast<uint64_t>(v), bytes);
}

int64_t PriorityOf(const api::Pod& pod) { return pod.spec.priority.value_or(0); }

std::optional<int64_t> UsageFor(Signal s, const PodUsage& u) {
  if (s == Signal::kMemoryAvailable) return u.memory;
  if (s == Signal::kPidAvailable) return u.processes;
  return u.disk;
}

bool IsCritical(const api::Pod& pod) {
  return pod.metadata.annotations.count("kubernetes.io/config.mirror") ||
         PriorityOf(pod) >= 2000000000;
}

}  // namespace

const char* SignalName(Signal s) { return Info(s).name; }
const char* SignalCondition(Signal s) { return Info(s).condition; }
const char* SignalResource(Signal s) { return Info(s).resource; }

std::optional<Signal> ParseSignal(const std::string& name) {
  for (const SignalInfo& i : kSignals) {
    if (name == i.name) return i.signal;
  }
  return std::nullopt;
}

int64_t ThresholdQuantity(const ThresholdValue& v, int64_t capacity) {
  if (v.quantity) return *v.quantity;
  return static_cast<int64_t>(static_cast<double>(capacity) * static_cast<double>(v.percentage));
}

const std::map<std::string, std::string>& DefaultEvictionHard() {
  static const auto* const kDefault = new std::map<std::string, std::string>{
      {"memory.available", "100Mi"}, {"nodefs.available", "10%"},  {"nodefs.inodesFree", "5%"},
      {"imagefs.available", "15%"},  {"imagefs.inodesFree", "5%"},
  };
  return *kDefault;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMapFlag(const std::string& flag, char sep) {
  std::map<std::string, std::string> out;
  for (absl::string_view entry : absl::StrSplit(flag, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    size_t at = entry.find(sep);
    if (at == absl::string_view::npos || at == 0) {
      return Invalid(
          absl::StrCat("\"", entry, "\": want <signal>", std::string(1, sep), "<value>"));
    }
    out[std::string(absl::StripAsciiWhitespace(entry.substr(0, at)))] =
        std::string(absl::StripAsciiWhitespace(entry.substr(at + 1)));
  }
  return out;
}

absl::StatusOr<std::vector<Threshold>> ParseThresholdConfig(
    const std::map<std::string, std::string>& hard, const std::map<std::string, std::string>& soft,
    const std::map<std::string, std::string>& grace_periods,
    const std::map<std::string, std::string>& min_reclaim) {
  std::vector<Threshold> out;
  auto statements = [&](const std::map<std::string, std::string>& m, bool is_soft) -> absl::Status {
    for (const auto& [name, val] : m) {
      std::optional<Signal> s = ParseSignal(name);
      if (!s) return Invalid(absl::StrCat("unsupported eviction signal ", name));
      ASSIGN_OR_RETURN(std::optional<ThresholdValue> v, ParseValue(name, val, false));
      if (!v) continue;
      Threshold t{.signal = *s, .value = *v};
      if (is_soft) {
        auto g = grace_periods.find(name);
        if (g == grace_periods.end()) {
          return Invalid(absl::StrCat(
              "grace period must be specified for the soft eviction threshold ", name));
        }
        absl::StatusOr<absl::Duration> d = ParseGoDuration(g->second);
        if (!d.ok()) {
          return Invalid(absl::StrCat("eviction soft grace period ", name, ": \"", g->second,
                                      "\" is not a duration"));
        }
        if (*d < absl::ZeroDuration()) {
          return Invalid(absl::StrCat("invalid eviction grace period specified: ", g->second,
                                      ", must be a positive value"));
        }
        t.grace_period = *d;
      }
      out.push_back(t);
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(statements(hard, false));
  RETURN_IF_ERROR(statements(soft, true));
  for (const auto& [name, val] : grace_periods) {
    if (!ParseSignal(name)) return Invalid(absl::StrCat("unsupported eviction signal ", name));
  }
  for (const auto& [name, val] : min_reclaim) {
    std::optional<Signal> s = ParseSignal(name);
    if (!s) return Invalid(absl::StrCat("unsupported eviction signal ", name));
    ASSIGN_OR_RETURN(std::optional<ThresholdValue> v, ParseValue(name, val, true));
    for (Threshold& t : out) {
      if (t.signal == *s) t.min_reclaim = v;
    }
  }
  return out;
}

absl::StatusOr<NodeStats::Fs> ReadFsStats(const std::string& path) {
  struct statvfs st;
  if (statvfs(path.c_str(), &st) != 0) return absl::ErrnoToStatus(errno, "statvfs " + path);
  NodeStats::Fs fs;
  fs.capacity_bytes = static_cast<int64_t>(st.f_blocks) * static_cast<int64_t>(st.f_frsize);
  fs.available_bytes = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  fs.inodes = static_cast<int64_t>(st.f_files);
  fs.inodes_free = static_cast<int64_t>(st.f_ffree);
  return fs;
}

void ReadPidStats(const std::string& proc_root, NodeStats* stats) {
  std::optional<int64_t> max;
  for (const char* f : {"/sys/kernel/pid_max", "/sys/kernel/threads-max"}) {
    absl::StatusOr<std::string> text = ReadFile(proc_root + f);
    int64_t v = 0;
    if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v)) {
      max = max ? std::min(*max, v) : v;
    }
  }
  stats->max_pids = max;
  absl::StatusOr<std::string> loadavg = ReadFile(proc_root + "/loadavg");
  if (!loadavg.ok()) return;
  std::vector<absl::string_view> fields = absl::StrSplit(*loadavg, ' ', absl::SkipWhitespace());
  if (fields.size() < 5) return;
  std::pair<absl::string_view, absl::string_view> running_total =
      absl::StrSplit(fields[3], absl::MaxSplits('/', 1));
  int64_t total = 0;
  if (absl::SimpleAtoi(running_total.second, &total)) stats->running_pids = total;
}

Observations MakeObservations(const NodeStats& stats) {
  Observations out;
  auto put = [&](Signal s, int64_t available, int64_t capacity) {
    out[s] = {std::max<int64_t>(available, 0), capacity};
  };
  if (stats.memory_capacity && stats.memory_working_set) {
    put(Signal::kMemoryAvailable, *stats.memory_capacity - *stats.memory_working_set,
        *stats.memory_capacity);
  }
  if (stats.nodefs) {
    put(Signal::kNodeFsAvailable, stats.nodefs->available_bytes, stats.nodefs->capacity_bytes);
    put(Signal::kNodeFsInodesFree, stats.nodefs->inodes_free, stats.nodefs->inodes);
  }
  if (stats.imagefs) {
    put(Signal::kImageFsAvailable, stats.imagefs->available_bytes, stats.imagefs->capacity_bytes);
    put(Signal::kImageFsInodesFree, stats.imagefs->inodes_free, stats.imagefs->inodes);
  }
  if (stats.max_pids && stats.running_pids) {
    put(Signal::kPidAvailable, *stats.max_pids - *stats.running_pids, *stats.max_pids);
  }
  return out;
}

std::vector<Threshold> ThresholdsMet(const std::vector<Threshold>& thresholds,
                                     const Observations& observations, bool enforce_min_reclaim) {
  std::vector<Threshold> out;
  for (const Threshold& t : thresholds) {
    auto o = observations.find(t.signal);
    if (o == observations.end()) continue;
    int64_t q = ThresholdQuantity(t.value, o->second.capacity);
    if (enforce_min_reclaim && t.min_reclaim)
      q += ThresholdQuantity(*t.min_reclaim, o->second.capacity);
    if (q > o->second.available) out.push_back(t);
  }
  return out;
}

int64_t PodRequest(const api::PodSpec& spec, const std::string& resource) {
  auto of = [&](const api::Container& c) -> int64_t {
    auto q = c.resources.requests.find(resource);
    return q == c.resources.requests.end() ? 0 : q->second.Value();
  };
  int64_t sum = 0;
  for (const api::Container& c : spec.containers) sum += of(c);
  for (const api::Container& c : spec.init_containers) sum = std::max(sum, of(c));
  if (auto o = spec.overhead.find(resource); o != spec.overhead.end()) sum += o->second.Value();
  return sum;
}

void RankPods(Signal signal, const std::map<std::string, PodUsage>& usage,
              std::vector<api::Pod>* pods) {
  const std::string resource = signal == Signal::kMemoryAvailable ? "memory" : "ephemeral-storage";
  auto used = [&](const api::Pod& p) -> std::optional<int64_t> {
    auto it = usage.find(p.metadata.uid);
    if (it == usage.end()) return std::nullopt;
    return UsageFor(signal, it->second);
  };
  std::stable_sort(pods->begin(), pods->end(), [&](const api::Pod& a, const api::Pod& b) {
    std::optional<int64_t> ua = used(a), ub = used(b);
    if (signal == Signal::kPidAvailable) {
      if (PriorityOf(a) != PriorityOf(b)) return PriorityOf(a) < PriorityOf(b);
      return ua.value_or(0) > ub.value_or(0);
    }
    // exceedMemoryRequests / exceedDiskRequests: unmeasured pods first, then those above.
    if (!ua || !ub) return !ua && ub;
    int64_t ra = PodRequest(a.spec, resource), rb = PodRequest(b.spec, resource);
    bool ea = *ua > ra, eb = *ub > rb;
    if (ea != eb) return ea;
    if (PriorityOf(a) != PriorityOf(b)) return PriorityOf(a) < PriorityOf(b);
    return *ua - ra > *ub - rb;
  });
}

EvictionMessage MakeEvictionMessage(Signal signal, const api::Pod& pod, const PodUsage* usage,
                                    const std::vector<Threshold>& thresholds,
                                    const Observations& observations) {
  EvictionMessage out;
  const std::string resource = SignalResource(signal);
  out.message = absl::StrCat("The node was low on resource: ", resource, ". ");
  // getThresholdMetInfo: the first met threshold of the same resource.
  for (const Threshold& t : thresholds) {
    if (SignalResource(t.signal) != resource) continue;
    auto o = observations.find(t.signal);
    if (o == observations.end()) continue;
    absl::StrAppend(&out.message, "Threshold quantity: ",
                    t.value.quantity
                        ? FormatAmount(*t.value.quantity, IsBytes(t.signal))
                        : FormatAmount(ThresholdQuantity(t.value, o->second.capacity), true),
                    ", available: ", FormatAmount(o->second.available, IsBytes(t.signal)), ". ");
    break;
  }
  if (usage == nullptr) return out;
  std::vector<std::string> names, usages;
  const bool memory = signal == Signal::kMemoryAvailable;
  if (memory || resource == "ephemeral-storage") {
    const auto& per_container = memory ? usage->container_memory : usage->container_disk;
    std::vector<const api::Container*> containers;
    for (const api::Container& c : pod.spec.containers) containers.push_back(&c);
    for (const api::Container& c : pod.spec.init_containers) containers.push_back(&c);
    for (const api::Container* c : containers) {
      auto u = per_container.find(c->name);
      if (u == per_container.end()) continue;
      auto r = c->resources.requests.find(resource);
      int64_t request = r == c->resources.requests.end() ? 0 : r->second.Value();
      if (u->second <= request) continue;
      std::string used = FormatAmount(u->second, true);
      absl::StrAppend(&out.message, "Container ", c->name, " was using ", used, ", request is ",
                      r == c->resources.requests.end() ? "0" : r->second.String(),
                      ", has larger consumption of ", resource, ". ");
      names.push_back(c->name);
      usages.push_back(used);
    }
  }
  out.annotations["offending_containers"] = absl::StrJoin(names, ",");
  out.annotations["offending_containers_usage"] = absl::StrJoin(usages, ",");
  out.annotations["starved_resource"] = resource;
  return out;
}

// ---------------------------------------------------------------- NodeEvictionManager

NodeEvictionManager::NodeEvictionManager(Config config, Deps deps)
    : config_(std::move(config)), deps_(std::move(deps)) {}

NodeEvictionManager::~NodeEvictionManager() { Stop(); }

std::set<std::string> NodeEvictionManager::Conditions() const {
  absl::MutexLock l(&mu_);
  return conditions_;
}

Observations NodeEvictionManager::LastObservations() const {
  absl::MutexLock l(&mu_);
  return last_observations_;
}

absl::StatusOr<std::string> NodeEvictionManager::Synchronize() {
  absl::MutexLock serial(&sync_mu_);
  if (config_.thresholds.empty()) return std::string();
  ASSIGN_OR_RETURN(NodeStats stats, deps_.node_stats());
  Observations observations = MakeObservations(stats);
  std::map<std::string, PodUsage> usage = deps_.usage();
  const absl::Time now = Now();
  std::vector<Threshold> met = ThresholdsMet(config_.thresholds, observations, false);
  std::vector<Threshold> to_reclaim;
  {
    absl::MutexLock l(&mu_);
    // Thresholds met before whose min-reclaim is not yet satisfied stay met.
    for (const Threshold& t : ThresholdsMet(thresholds_met_, observations, true)) {
      if (std::find(met.begin(), met.end(), t) == met.end()) met.push_back(t);
    }
    // thresholdsFirstObservedAt
    std::vector<std::pair<Threshold, absl::Time>> first;
    for (const Threshold& t : met) {
      absl::Time at = now;
      for (const auto& [old, when] : first_observed_) {
        if (old == t) at = when;
      }
      first.emplace_back(t, at);
    }
    first_observed_ = first;
    // Node conditions: observed now, or within the transition period.
    for (const Threshold& t : met) condition_last_observed_[SignalCondition(t.signal)] = now;
    std::set<std::string> conditions;
    for (auto it = condition_last_observed_.begin(); it != condition_last_observed_.end();) {
      if (now - it->second < config_.pressure_transition_period) {
        conditions.insert(it->first);
        ++it;
      } else {
        it = condition_last_observed_.erase(it);
      }
    }
    if (conditions != conditions_) {
      LOG(INFO) << "eviction: node conditions now: "
                << (conditions.empty() ? "none" : absl::StrJoin(conditions, ", "));
    }
    conditions_ = std::move(conditions);
    // thresholdsMetGracePeriod
    for (const auto& [t, at] : first) {
      if (now - at >= t.grace_period) to_reclaim.push_back(t);
    }
    thresholds_met_ = to_reclaim;
    last_observations_ = observations;
  }
  if (to_reclaim.empty()) return std::string();
  // byEvictionPriority: memory first.
  std::stable_sort(
      to_reclaim.begin(), to_reclaim.end(), [](const Threshold& a, const Threshold& b) {
        return a.signal == Signal::kMemoryAvailable && b.signal != Signal::kMemoryAvailable;
      });
  const Threshold& threshold = to_reclaim.front();
  const std::string resource = SignalResource(threshold.signal);
  LOG(INFO) << "eviction: attempting to reclaim " << resource << " ("
            << SignalName(threshold.signal) << ")";
  if (deps_.node_event)
    deps_.node_event("EvictionThresholdMet", "Attempting to reclaim " + resource);
  if (IsDiskSignal(threshold.signal) && !deps_.disk_reclaim.empty()) {
    for (const auto& reclaim : deps_.disk_reclaim) {
      if (absl::Status s = reclaim(); !s.ok()) {
        LOG(WARNING) << "eviction: reclaiming " << resource << ": " << s;
      }
    }
    absl::StatusOr<NodeStats> after = deps_.node_stats();
    if (after.ok()) {
      Observations again = MakeObservations(*after);
      if (ThresholdsMet(config_.thresholds, again, true).empty()) {
        LOG(INFO) << "eviction: reduced " << resource << " pressure without evicting pods";
        absl::MutexLock l(&mu_);
        last_observations_ = again;
        return std::string();
      }
      observations = std::move(again);
    }
  }
  std::vector<api::Pod> pods = deps_.pods();
  if (pods.empty()) {
    LOG(WARNING) << "eviction: thresholds met, but no pods are active to evict";
    return std::string();
  }
  RankPods(threshold.signal, usage, &pods);
  for (const api::Pod& pod : pods) {
    if (IsCritical(pod)) continue;  // upstream evictPod refuses critical pods
    int64_t grace = 1;
    if (!threshold.hard()) {
      grace = config_.max_pod_grace_period_s;
      grace = std::min<int64_t>(grace, pod.spec.termination_grace_period_seconds);
    }
    auto u = usage.find(pod.metadata.uid);
    EvictionMessage m = MakeEvictionMessage(
        threshold.signal, pod, u == usage.end() ? nullptr : &u->second, to_reclaim, observations);
    LOG(INFO) << "eviction: evicting pod " << pod.Key() << ": " << m.message;
    if (!deps_.evict(pod, m, grace)) continue;
    if (deps_.pod_cleaned_up) {
      const absl::Time deadline = absl::Now() + absl::Seconds(30);
      while (!deps_.pod_cleaned_up(pod.metadata.uid) && absl::Now() < deadline) {
        absl::MutexLock l(&mu_);
        auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_; };
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Seconds(1))) break;
      }
    }
    return pod.metadata.uid;
  }
  LOG(WARNING) << "eviction: unable to evict any pods from the node";
  return std::string();
}

void NodeEvictionManager::Start() {
  absl::MutexLock l(&mu_);
  if (thread_.joinable() || config_.thresholds.empty()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void NodeEvictionManager::Trigger() {
  absl::MutexLock l(&mu_);
  triggered_ = true;
}

void NodeEvictionManager::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void NodeEvictionManager::Run() {
  while (true) {
    {
      absl::MutexLock l(&mu_);
      auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || triggered_; };
      mu_.AwaitWithTimeout(absl::Condition(&wake), config_.monitoring_interval);
      if (stop_) return;
      triggered_ = false;
    }
    absl::StatusOr<std::string> r = Synchronize();
    if (!r.ok()) {
      LOG(WARNING) << "eviction: " << r.status();
    }
  }
}

// ---------------------------------------------------------------- MemoryThresholdNotifier

std::optional<int64_t> MemoryNotifierThreshold(const Threshold& threshold, int64_t capacity,
                                               int64_t inactive_file) {
  int64_t v = capacity - ThresholdQuantity(threshold.value, capacity) + inactive_file;
  if (v <= 0) return std::nullopt;
  return v;
}

MemoryThresholdNotifier::MemoryThresholdNotifier(std::string memory_cgroup,
                                                 std::function<void()> on_crossed)
    : memory_cgroup_(std::move(memory_cgroup)), on_crossed_(std::move(on_crossed)) {}

MemoryThresholdNotifier::~MemoryThresholdNotifier() { Stop(); }

absl::Status MemoryThresholdNotifier::UpdateThreshold(int64_t threshold_bytes) {
  Stop();
  const std::string usage_path = memory_cgroup_ + "/memory.usage_in_bytes";
  const std::string control_path = memory_cgroup_ + "/cgroup.event_control";
  int usage_fd = open(usage_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (usage_fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", usage_path));
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    int e = errno;
    close(usage_fd);
    return absl::ErrnoToStatus(e, "eventfd");
  }
  int control_fd = open(control_path.c_str(), O_WRONLY | O_CLOEXEC);
  std::string line = absl::StrCat(efd, " ", usage_fd, " ", threshold_bytes);
  if (control_fd < 0 || write(control_fd, line.data(), line.size()) < 0) {
    int e = errno;
    if (control_fd >= 0) close(control_fd);
    close(efd);
    close(usage_fd);
    return absl::ErrnoToStatus(
        e, absl::StrCat("register threshold ", threshold_bytes, " in ", control_path));
  }
  close(control_fd);
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    int e = errno;
    close(efd);
    close(usage_fd);
    return absl::ErrnoToStatus(e, "pipe2");
  }
  {
    absl::MutexLock l(&mu_);
    efd_ = efd;
    usage_fd_ = usage_fd;
  }
  thread_ = std::thread([this, efd, stop = stop_pipe_[0]] { Run(efd, stop); });
  return absl::OkStatus();
}

void MemoryThresholdNotifier::Run(int efd, int stop_fd) {
  while (true) {
    pollfd fds[2] = {{efd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    uint64_t n = 0;
    if (read(efd, &n, sizeof n) == sizeof n) on_crossed_();
  }
}

void MemoryThresholdNotifier::Stop() {
  if (stop_pipe_[1] >= 0) {
    char c = 0;
    (void)!write(stop_pipe_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int& fd : stop_pipe_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  absl::MutexLock l(&mu_);
  if (efd_ >= 0) close(efd_);
  if (usage_fd_ >= 0) close(usage_fd_);
  efd_ = usage_fd_ = -1;
}

}  // namespace berth::kubelet
