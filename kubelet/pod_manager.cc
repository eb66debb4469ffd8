#include "kubelet/pod_manager.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "kubelet/pod_util.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

namespace {

constexpr int64_t kDefaultGracePeriodSeconds = 30;
constexpr char kDefaultTerminationMessagePath[] = "/dev/termination-log";
constexpr int64_t kMinShares = 2;
constexpr int64_t kCpuPeriod = 100000;
constexpr int64_t kMinQuota = 1000;
// Upper bound of a postStart hook (upstream has none; a pod worker must not hang forever).
constexpr absl::Duration kPostStartTimeout = absl::Minutes(2);
// Upstream minimumGracePeriodInSeconds: what StopContainer gets at least after a preStop
// hook, and each sidecar at pod termination.
constexpr int64_t kMinGracePeriodSeconds = 2;

const Json& Spec(const Json& pod) {
  static const Json kEmpty = Json::object();
  auto it = pod.find("spec");
  return it != pod.end() && it->is_object() ? *it : kEmpty;
}

Json SpecList(const Json& pod, const char* list) {
  const Json& spec = Spec(pod);
  auto it = spec.find(list);
  return it != spec.end() && it->is_array() ? *it : Json::array();
}

std::string RestartPolicy(const Json& pod) {
  std::string p = Spec(pod).value("restartPolicy", std::string());
  return p.empty() ? "Always" : p;
}

struct ResolvConf {
  std::vector<std::string> servers, searches, options;
};

ResolvConf ReadResolvConf(const std::string& path) {
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

int64_t NodeMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

int64_t CurrentOomScoreAdj() {
  std::ifstream in("/proc/self/oom_score_adj");
  int64_t v = 0;
  in >> v;
  return v;
}

// imagePullPolicy default: Always for ":latest" or untagged images, else IfNotPresent.
std::string PullPolicy(const Json& c) {
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

const Json* FieldOr(const Json& obj, const char* a) {
  auto it = obj.find(a);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

// The pod-level groups of its sandbox and every container: supplementalGroups, then fsGroup
// (the kubelet's determineEffectiveSecurityContext).
template <typename SecurityContext>
void AddPodSupplementalGroups(const Json& pod_security_context, SecurityContext* sc) {
  for (const auto& g : pod_security_context.value("supplementalGroups", Json::array())) {
    sc->add_supplemental_groups(g.get<int64_t>());
  }
  auto fs_group = pod_security_context.find("fsGroup");
  if (fs_group != pod_security_context.end() && fs_group->is_number_integer()) {
    sc->add_supplemental_groups(fs_group->get<int64_t>());
  }
}

v1::NamespaceOption NamespaceOptions(const Json& pod) {
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

}  // namespace

PodManager::PodManager(ApiClient* api, cri::RuntimeService* runtime, cri::ImageService* images,
                       PodManagerOptions options)
    : api_(api),
      runtime_(runtime),
      images_(images),
      opts_(std::move(options)),
      volumes_(api, opts_.root_dir, opts_.clock),
      sysctls_(SysctlAllowlist::Create(opts_.allowed_unsafe_sysctls).value_or(*SysctlAllowlist::Create({}))),
      status_(api) {
  ProbeRunner* runner = opts_.probe_runner;
  if (runner == nullptr) {
    default_probe_runner_ = std::make_unique<DefaultProbeRunner>(runtime_);
    runner = default_probe_runner_.get();
  }
  ProberOptions popts;
  popts.clock = opts_.clock;
  popts.on_change = [this](const std::string& uid) { Enqueue(uid); };
  popts.record_event = opts_.record_event;
  popts.registry = opts_.probe_metrics;
  prober_ = std::make_unique<Prober>(runner, std::move(popts));
  hooks_ = std::make_unique<LifecycleHandlerRunner>(runner);
}

PodManager::~PodManager() { Stop(); }

void PodManager::Start() {
  absl::MutexLock l(&mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  status_.Start();
  for (int i = 0; i < std::max(1, opts_.workers); ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  threads_.emplace_back([this] { TimerLoop(); });
}

void PodManager::Stop() {
  prober_->Stop();
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    work_cv_.SignalAll();
    timer_cv_.SignalAll();
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  status_.Stop();
}

namespace {
// True when `a` and `b` differ at most in status and bookkeeping metadata.
bool OnlyStatusChanged(const Json& a, const Json& b) {
  if (!a.is_object() || !b.is_object() || a.empty()) return false;
  auto strip = [](Json p) {
    p.erase("status");
    if (p.contains("metadata") && p["metadata"].is_object()) {
      p["metadata"].erase("resourceVersion");
      p["metadata"].erase("managedFields");
      p["metadata"].erase("generation");
    }
    return p;
  };
  return strip(a) == strip(b);
}
}  // namespace

void PodManager::HandlePodEvent(const std::string& type, const Json& pod) {
  std::string uid = GetString(pod, "metadata.uid");
  if (uid.empty()) {
    LOG(WARNING) << "pod event " << type << " without metadata.uid ignored";
    return;
  }
  {
    absl::MutexLock l(&mu_);
    auto it = pods_.find(uid);
    if (type == "DELETED") {
      if (it == pods_.end()) return;
      it->second->pod = pod;
      it->second->removed = true;
    } else if (type == "ADDED" || type == "MODIFIED" || type == "SYNC") {
      if (it == pods_.end()) it = pods_.emplace(uid, std::make_shared<PodState>()).first;
      if (it->second->removed) return;  // a late update of a pod that is gone
      // As kubelet's pod config (RECONCILE vs UPDATE): an update that changes only the
      // status (typically our own status write coming back) needs no sync.
      bool status_only = type == "MODIFIED" && OnlyStatusChanged(it->second->pod, pod);
      it->second->pod = pod;
      if (status_only) return;
    } else {
      return;
    }
  }
  Enqueue(uid);
}

void PodManager::HandlePodsSynced() {
  v1::ListPodSandboxRequest req;
  auto sandboxes = runtime_->ListPodSandbox(req);
  if (!sandboxes.ok()) {
    LOG(WARNING) << "orphan cleanup: ListPodSandbox: " << sandboxes.status().message();
    return;
  }
  std::vector<std::string> orphans;
  {
    absl::MutexLock l(&mu_);
    for (const auto& sb : sandboxes->items()) {
      auto uid = sb.labels().find(kPodUidLabel);
      if (uid == sb.labels().end() || pods_.count(uid->second)) continue;
      // A removed pod built from the sandbox's metadata: the worker kills and forgets it.
      auto st = std::make_shared<PodState>();
      st->pod = {{"metadata",
                  {{"name", sb.metadata().name()}, {"namespace", sb.metadata().namespace_()}, {"uid", uid->second}}},
                 {"spec", Json::object()}};
      st->removed = true;
      pods_.emplace(uid->second, st);
      orphans.push_back(uid->second);
    }
  }
  for (const auto& uid : orphans) {
    LOG(INFO) << "removing orphaned pod " << uid;
    Enqueue(uid);
  }
  // Pod directories of pods neither bound here nor with a sandbox (deleted while berth was
  // down, after their sandbox went): their volumes are torn down (tmpfs unmounted) and the
  // directory removed, as upstream cleanupOrphanedPodDirs.
  std::set<std::string> sandbox_uids;
  for (const auto& sb : sandboxes->items()) {
    if (auto uid = sb.labels().find(kPodUidLabel); uid != sb.labels().end()) sandbox_uids.insert(uid->second);
  }
  auto dirs = ListDir(JoinPath(volumes_.root_dir(), "pods"));
  if (!dirs.ok()) return;
  for (const std::string& uid : *dirs) {
    {
      absl::MutexLock l(&mu_);
      if (pods_.count(uid) || sandbox_uids.count(uid)) continue;
    }
    LOG(INFO) << "removing the directory of orphaned pod " << uid;
    absl::Status st = volumes_.TearDownPodVolumes(uid);
    if (st.ok()) st = RemoveAll(volumes_.PodDir(uid));
    if (!st.ok()) {
      LOG(WARNING) << "orphaned pod directory " << uid << ": " << st.message();
    }
  }
}

void PodManager::OnContainerEvent(const std::string& container_id) {
  std::string uid;
  {
    absl::MutexLock l(&mu_);
    auto it = container_to_pod_.find(container_id);
    if (it == container_to_pod_.end()) {
      LOG(DEBUG) << "container event for unknown container " << container_id;
      return;
    }
    uid = it->second;
  }
  Enqueue(uid);
}

std::optional<Json> PodManager::GetPodStatus(const std::string& uid) {
  return status_.GetPodStatus(uid);
}

std::vector<Json> PodManager::ActivePods() {
  absl::MutexLock l(&mu_);
  std::vector<Json> out;
  for (const auto& [uid, st] : pods_) {
    if (st->removed || !st->evicted.empty()) continue;
    const Json& meta = st->pod.value("metadata", Json::object());
    if (meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null()) continue;
    std::string phase = GetString(st->pod, "status.phase");
    if (phase == "Succeeded" || phase == "Failed") continue;
    out.push_back(st->pod);
  }
  return out;
}

void PodManager::EvictPod(const std::string& uid, const std::string& message) {
  {
    absl::MutexLock l(&mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end() || it->second->removed || !it->second->evicted.empty()) return;
    it->second->evicted = message;
  }
  Enqueue(uid);
}

std::vector<std::string> PodManager::PodUids() {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [uid, _] : pods_) out.push_back(uid);
  return out;
}

void PodManager::Enqueue(const std::string& uid) {
  absl::MutexLock l(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  PodState& st = *it->second;
  if (st.running) {
    st.dirty = true;
  } else if (!st.queued) {
    st.queued = true;
    queue_.push_back(uid);
    work_cv_.Signal();
  }
}

void PodManager::EnqueueAfter(const std::string& uid, absl::Duration delay) {
  absl::Time at = absl::Now() + std::max(delay, absl::ZeroDuration());
  absl::MutexLock l(&mu_);
  auto [it, inserted] = timers_.emplace(uid, at);
  if (!inserted) {
    if (it->second <= at) return;
    it->second = at;
  }
  timer_cv_.Signal();
}

void PodManager::WorkerLoop() {
  mu_.Lock();
  while (true) {
    while (!stopping_ && queue_.empty()) work_cv_.Wait(&mu_);
    if (stopping_) break;
    std::string uid = queue_.front();
    queue_.pop_front();
    auto it = pods_.find(uid);
    if (it == pods_.end()) continue;
    std::shared_ptr<PodState> st = it->second;
    st->queued = false;
    st->running = true;
    st->dirty = false;
    Json pod = st->pod;
    bool removed = st->removed;
    mu_.Unlock();
    bool forget = SyncPod(uid, st.get(), pod, removed);
    if (forget || st->terminated) prober_->RemovePod(uid);
    mu_.Lock();
    st->running = false;
    if (forget) {
      pods_.erase(uid);
      for (auto c = container_to_pod_.begin(); c != container_to_pod_.end();) {
        c = c->second == uid ? container_to_pod_.erase(c) : std::next(c);
      }
    } else if (st->dirty && !st->queued) {
      st->queued = true;
      queue_.push_back(uid);
      work_cv_.Signal();
    }
  }
  mu_.Unlock();
}

void PodManager::TimerLoop() {
  absl::Time next_resync = absl::Now() + opts_.resync_period;
  mu_.Lock();
  while (!stopping_) {
    absl::Time now = absl::Now();
    std::vector<std::string> due;
    absl::Time deadline = next_resync;
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->second <= now) {
        due.push_back(it->first);
        it = timers_.erase(it);
      } else {
        deadline = std::min(deadline, it->second);
        ++it;
      }
    }
    if (now >= next_resync) {
      for (const auto& [uid, _] : pods_) due.push_back(uid);
      next_resync = now + opts_.resync_period;
    }
    if (!due.empty()) {
      mu_.Unlock();
      for (const auto& uid : due) Enqueue(uid);
      mu_.Lock();
      continue;
    }
    timer_cv_.WaitWithDeadline(&mu_, deadline);
  }
  mu_.Unlock();
}

absl::StatusOr<PodRuntimeStatus> PodManager::GetRuntimeStatus(const std::string& uid) {
  PodRuntimeStatus out;
  v1::ListPodSandboxRequest lsreq;
  (*lsreq.mutable_filter()->mutable_label_selector())[kPodUidLabel] = uid;
  ASSIGN_OR_RETURN(v1::ListPodSandboxResponse sandboxes, runtime_->ListPodSandbox(lsreq));
  for (const auto& sb : sandboxes.items()) {
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(sb.id());
    auto st = runtime_->PodSandboxStatus(req);
    if (!st.ok()) {
      if (absl::IsNotFound(st.status())) continue;
      return Annotate(st.status(), absl::StrCat("PodSandboxStatus ", sb.id()));
    }
    out.sandboxes.push_back(st->status());
  }
  std::sort(out.sandboxes.begin(), out.sandboxes.end(),
            [](const auto& a, const auto& b) { return a.created_at() > b.created_at(); });
  v1::ListContainersRequest lcreq;
  (*lcreq.mutable_filter()->mutable_label_selector())[kPodUidLabel] = uid;
  ASSIGN_OR_RETURN(v1::ListContainersResponse containers, runtime_->ListContainers(lcreq));
  std::vector<std::string> ids;
  for (const auto& c : containers.containers()) {
    v1::ContainerStatusRequest req;
    req.set_container_id(c.id());
    auto st = runtime_->ContainerStatus(req);
    if (!st.ok()) {
      if (absl::IsNotFound(st.status())) continue;
      return Annotate(st.status(), absl::StrCat("ContainerStatus ", c.id()));
    }
    out.containers.push_back(st->status());
    ids.push_back(c.id());
  }
  std::sort(out.containers.begin(), out.containers.end(),
            [](const auto& a, const auto& b) { return a.created_at() > b.created_at(); });
  absl::MutexLock l(&mu_);
  for (const auto& id : ids) container_to_pod_[id] = uid;
  return out;
}

absl::Status PodManager::KillPod(const std::string& uid, const Json& pod, int64_t grace_seconds,
                                 bool remove) {
  ASSIGN_OR_RETURN(PodRuntimeStatus rt, GetRuntimeStatus(uid));
  // Upstream killContainersWithSyncResult: the regular (and ephemeral) containers are
  // stopped in parallel, each with the grace period; then the sidecars one at a time in
  // reverse spec order with what is left of it (at least 2 s, as upstream's minimum).
  std::map<std::string, int> sidecar_index;
  Json init = SpecList(pod, "initContainers");
  for (size_t i = 0; i < init.size(); ++i) {
    if (IsRestartableInitContainer(init[i])) sidecar_index[init[i].value("name", std::string())] = static_cast<int>(i);
  }
  std::vector<const v1::ContainerStatus*> first;
  std::vector<std::pair<int, const v1::ContainerStatus*>> sidecars;
  for (const auto& c : rt.containers) {
    if (c.state() == v1::CONTAINER_EXITED) continue;
    auto s = sidecar_index.find(c.metadata().name());
    if (s == sidecar_index.end()) {
      first.push_back(&c);
    } else {
      sidecars.emplace_back(s->second, &c);
    }
  }
  std::stable_sort(sidecars.begin(), sidecars.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string pod_ip = Spec(pod).value("hostNetwork", false) ? opts_.node_ip : "";
  if (pod_ip.empty() && !rt.sandboxes.empty()) pod_ip = rt.sandboxes[0].network().ip();
  absl::Time deadline = absl::Now() + absl::Seconds(grace_seconds);
  std::vector<std::vector<const v1::ContainerStatus*>> waves;
  if (!first.empty()) waves.push_back(first);
  for (const auto& [_, c] : sidecars) waves.push_back({c});
  for (const auto& wave : waves) {
    int64_t left = grace_seconds;
    if (&wave != &waves.front()) {
      left = std::max<int64_t>(absl::ToInt64Seconds(deadline - absl::Now()),
                              grace_seconds > 0 ? kMinGracePeriodSeconds : 0);
    }
    std::vector<std::thread> stoppers;
    std::vector<absl::Status> results(wave.size());
    for (size_t i = 0; i < wave.size(); ++i) {
      stoppers.emplace_back([this, &results, &pod, &pod_ip, i, c = wave[i], left] {
        results[i] = StopOne(pod, c->metadata().name(), c->id(), left, pod_ip);
      });
    }
    for (auto& t : stoppers) t.join();
    for (const auto& s : results) RETURN_IF_ERROR(s);
  }
  for (const auto& sb : rt.sandboxes) {
    if (sb.state() != v1::SANDBOX_READY && !remove) continue;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(sb.id());
    auto r = runtime_->StopPodSandbox(req);
    if (!r.ok() && !absl::IsNotFound(r.status())) {
      return Annotate(r.status(), absl::StrCat("StopPodSandbox ", sb.id(), " of pod ", PodKey(pod)));
    }
  }
  if (!remove) return absl::OkStatus();
  for (const auto& c : rt.containers) {
    v1::RemoveContainerRequest req;
    req.set_container_id(c.id());
    auto r = runtime_->RemoveContainer(req);
    if (!r.ok() && !absl::IsNotFound(r.status())) {
      return Annotate(r.status(), absl::StrCat("RemoveContainer ", c.id()));
    }
  }
  for (const auto& sb : rt.sandboxes) {
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(sb.id());
    auto r = runtime_->RemovePodSandbox(req);
    if (!r.ok() && !absl::IsNotFound(r.status())) {
      return Annotate(r.status(), absl::StrCat("RemovePodSandbox ", sb.id()));
    }
  }
  return absl::OkStatus();
}

absl::Status PodManager::StopOne(const Json& pod, const std::string& name, const std::string& id,
                                 int64_t grace_seconds, const std::string& pod_ip) {
  Json spec_c;
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : SpecList(pod, list)) {
      if (spec_c.is_null() && c.value("name", std::string()) == name) spec_c = c;
    }
  }
  Json pre_stop;
  if (spec_c.is_object() && spec_c.contains("lifecycle") && spec_c["lifecycle"].is_object()) {
    pre_stop = spec_c["lifecycle"].value("preStop", Json());
  }
  if (pre_stop.is_object() && grace_seconds > 0) {
    // Upstream executePreStopHook: the hook's time counts against the grace period.
    absl::Time start = absl::Now();
    absl::Status h = hooks_->Run(pre_stop, spec_c, id, pod_ip, absl::Seconds(grace_seconds));
    if (!h.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": preStop hook of " << name << ": " << h.message();
      Event(pod, "Warning", "FailedPreStopHook", std::string(h.message()), name);
    }
    grace_seconds = std::max(grace_seconds - absl::ToInt64Seconds(absl::Now() - start), kMinGracePeriodSeconds);
  }
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(grace_seconds);
  auto r = runtime_->StopContainer(req);
  if (!r.ok() && !absl::IsNotFound(r.status())) {
    return Annotate(r.status(), absl::StrCat("StopContainer ", id, " of pod ", PodKey(pod)));
  }
  return absl::OkStatus();
}

v1::PodSandboxConfig PodManager::MakeSandboxConfig(const Json& pod, uint32_t attempt) {
  const Json& spec = Spec(pod);
  const Json& meta = pod.value("metadata", Json::object());
  std::string name = GetString(pod, "metadata.name");
  std::string ns = GetString(pod, "metadata.namespace");
  std::string uid = GetString(pod, "metadata.uid");
  bool host_network = spec.value("hostNetwork", false);
  v1::PodSandboxConfig cfg;
  auto* md = cfg.mutable_metadata();
  md->set_name(name);
  md->set_namespace_(ns);
  md->set_uid(uid);
  md->set_attempt(attempt);

  auto [hostname, domain] = PodHostnameAndDomain(pod);
  if (host_network) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof(buf) - 1) == 0) hostname = buf;
  } else if (spec.value("setHostnameAsFQDN", false) && !domain.empty()) {
    hostname = absl::StrCat(hostname, ".", domain);  // the kernel's hostname is the FQDN
  }
  cfg.set_hostname(hostname);
  cfg.set_log_directory(JoinPath(opts_.log_root, absl::StrCat(ns, "_", name, "_", uid)));

  // DNS, as the kubelet's dns.Configurer.GetPodDNS: the host's resolv.conf as the base;
  // ClusterFirst replaces servers and options with the cluster DNS and puts the cluster
  // search domains first (or falls back to Default with a MissingClusterDNS event when no
  // cluster DNS is configured); None starts empty; the pod's dnsConfig is appended; the
  // result is cut to the API's limits (3 servers, 32 searches, 2048 characters).
  std::string policy = spec.value("dnsPolicy", std::string("ClusterFirst"));
  if (policy == "ClusterFirstWithHostNet") policy = "ClusterFirst";
  else if (policy == "ClusterFirst" && host_network) policy = "Default";
  std::vector<std::string> servers, searches, options;
  if (policy != "None") {
    ResolvConf host = ReadResolvConf(opts_.resolv_conf);
    servers = host.servers;
    searches = host.searches;
    options = host.options;
  }
  if (policy == "ClusterFirst") {
    if (!opts_.cluster_dns.empty()) {
      servers = opts_.cluster_dns;
      if (const std::string& d = opts_.cluster_domain; !d.empty()) {
        searches.insert(searches.begin(), {absl::StrCat(ns, ".svc.", d), absl::StrCat("svc.", d), d});
      }
      options = {"ndots:5"};
    } else {
      Event(pod, "Warning", "MissingClusterDNS",
                  absl::StrCat("pod: \"", name, "_", ns, "(", uid, ")\". kubelet does not have ClusterDNS IP "
                               "configured and cannot create Pod using \"ClusterFirst\" policy. Falling "
                               "back to \"Default\" policy."));
    }
  }
  auto append_unique = [](std::vector<std::string>* list, const std::string& v) {
    if (std::find(list->begin(), list->end(), v) == list->end()) list->push_back(v);
  };
  if (const Json* dc = FieldOr(spec, "dnsConfig")) {
    for (const auto& s : dc->value("nameservers", Json::array())) {
      if (s.is_string()) servers.push_back(s.get<std::string>());
    }
    for (const auto& s : dc->value("searches", Json::array())) {
      if (s.is_string()) searches.push_back(s.get<std::string>());
    }
    for (const auto& o : dc->value("options", Json::array())) {
      std::string opt_name = o.value("name", std::string());
      std::string opt = opt_name;
      if (o.contains("value") && o["value"].is_string()) opt += ":" + o["value"].get<std::string>();
      // A pod option replaces the base option of the same name (mergeDNSOptions).
      std::erase_if(options, [&](const std::string& e) { return e.substr(0, e.find(':')) == opt_name; });
      options.push_back(opt);
    }
  }
  std::vector<std::string> unique_servers, unique_searches;
  for (const auto& v : servers) append_unique(&unique_servers, v);
  for (const auto& v : searches) {
    if (v.size() <= 253) append_unique(&unique_searches, v);
  }
  if (unique_servers.size() > 3) unique_servers.resize(3);
  if (unique_searches.size() > 32) unique_searches.resize(32);
  while (!unique_searches.empty() && absl::StrJoin(unique_searches, " ").size() > 2048) unique_searches.pop_back();
  auto* dns = cfg.mutable_dns_config();
  for (const auto& v : unique_servers) dns->add_servers(v);
  for (const auto& v : unique_searches) dns->add_searches(v);
  for (const auto& v : options) dns->add_options(v);

  for (const auto& c : SpecList(pod, "containers")) {
    for (const auto& p : c.value("ports", Json::array())) {
      int host_port = p.value("hostPort", 0);
      if (host_port <= 0) continue;
      auto* pm = cfg.add_port_mappings();
      std::string proto = p.value("protocol", std::string("TCP"));
      pm->set_protocol(proto == "UDP" ? v1::UDP : proto == "SCTP" ? v1::SCTP : v1::TCP);
      pm->set_container_port(p.value("containerPort", 0));
      pm->set_host_port(host_port);
      pm->set_host_ip(p.value("hostIP", std::string()));
    }
  }

  auto& labels = *cfg.mutable_labels();
  const Json pod_labels = meta.value("labels", Json::object());
  for (const auto& [k, v] : pod_labels.items()) {
    if (v.is_string()) labels[k] = v.get<std::string>();
  }
  labels[kPodNameLabel] = name;
  labels[kPodNamespaceLabel] = ns;
  labels[kPodUidLabel] = uid;
  auto& annotations = *cfg.mutable_annotations();
  const Json pod_annotations = meta.value("annotations", Json::object());
  for (const auto& [k, v] : pod_annotations.items()) {
    if (v.is_string()) annotations[k] = v.get<std::string>();
  }

  auto* linux = cfg.mutable_linux();
  linux->set_cgroup_parent(PodCgroupParent(pod, opts_.cgroup_root));
  auto* sc = linux->mutable_security_context();
  *sc->mutable_namespace_options() = NamespaceOptions(pod);
  const Json psc = spec.value("securityContext", Json::object());
  if (psc.contains("runAsUser")) sc->mutable_run_as_user()->set_value(psc["runAsUser"].get<int64_t>());
  if (psc.contains("runAsGroup")) sc->mutable_run_as_group()->set_value(psc["runAsGroup"].get<int64_t>());
  AddPodSupplementalGroups(psc, sc);
  for (const auto& s : psc.value("sysctls", Json::array())) {
    (*linux->mutable_sysctls())[NormalizeSysctlName(s.value("name", std::string()))] = s.value("value", std::string());
  }
  for (const char* list : {"initContainers", "containers"}) {
    for (const auto& c : SpecList(pod, list)) {
      if (c.value("securityContext", Json::object()).value("privileged", false)) sc->set_privileged(true);
    }
  }
  // TODO: seccomp/apparmor profiles, SELinux options, pod overhead/resources.
  return cfg;
}

std::pair<std::string, std::string> PodManager::PodHostnameAndDomain(const Json& pod) const {
  const Json& spec = Spec(pod);
  auto truncate = [](std::string h) {
    if (h.size() > 63) h.resize(63);
    while (!h.empty() && (h.back() == '-' || h.back() == '.')) h.pop_back();
    return h;
  };
  if (auto o = spec.find("hostnameOverride"); o != spec.end() && o->is_string()) {
    return {truncate(o->get<std::string>()), ""};
  }
  std::string hostname = spec.value("hostname", std::string());
  if (hostname.empty()) hostname = GetString(pod, "metadata.name");
  std::string domain;
  if (std::string sub = spec.value("subdomain", std::string()); !sub.empty()) {
    domain = absl::StrCat(sub, ".", GetString(pod, "metadata.namespace"), ".svc.", opts_.cluster_domain);
  }
  return {truncate(hostname), domain};
}

std::optional<absl::Duration> PodManager::ActiveDeadlineLeft(const Json& pod, const PodState& state) {
  const Json& spec = Spec(pod);
  auto deadline = spec.find("activeDeadlineSeconds");
  if (deadline == spec.end() || !deadline->is_number_integer()) return std::nullopt;
  std::string start = state.last_status.value("startTime", std::string());
  if (start.empty()) start = GetString(pod, "status.startTime");
  absl::Time started;
  std::string err;
  if (start.empty() || !absl::ParseTime(absl::RFC3339_full, start, &started, &err)) return std::nullopt;
  return started + absl::Seconds(deadline->get<int64_t>()) - opts_.clock();
}

std::optional<std::pair<std::string, std::string>> PodManager::AdmitPod(const Json& pod) {
  const Json& spec = Spec(pod);
  const bool host_network = spec.value("hostNetwork", false);
  const bool host_ipc = spec.value("hostIPC", false);
  // The OS the pod asks for (upstream lifecycle predicate admission): its
  // kubernetes.io/os node selector, then spec.os.name, must be this node's (linux).
  const Json selector = spec.value("nodeSelector", Json::object());
  if (auto os = selector.find("kubernetes.io/os"); os != selector.end() && os->is_string() && *os != "linux") {
    return std::make_pair(std::string("PodOSSelectorNodeLabelDoesNotMatch"),
                          std::string("Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"));
  }
  if (auto os = spec.value("os", Json::object()).value("name", std::string()); !os.empty() && os != "linux") {
    return std::make_pair(std::string("PodOSNotSupported"),
                          std::string("Failed to admit pod as the OS field doesn't match node OS"));
  }
  const Json psc = spec.value("securityContext", Json::object());
  for (const auto& sc : psc.value("sysctls", Json::array())) {
    absl::Status s = sysctls_.Validate(sc.value("name", std::string()), host_network, host_ipc);
    if (!s.ok()) return std::make_pair(std::string(kSysctlForbiddenReason), absl::StrCat("forbidden sysctl: ", s.message()));
  }
  return std::nullopt;
}

void PodManager::Event(const Json& pod, const std::string& type, const std::string& reason,
                       const std::string& message, const std::string& container) {
  if (!opts_.record_event) return;
  // involvedObject.fieldPath names the list the container is in (as upstream's ref).
  std::string list = "containers";
  for (const char* l : {"initContainers", "ephemeralContainers"}) {
    for (const auto& c : SpecList(pod, l)) {
      if (c.value("name", std::string()) == container) list = l;
    }
  }
  opts_.record_event(pod, type, reason, message,
                     container.empty() ? "" : absl::StrCat("spec.", list, "{", container, "}"));
}

DockerKeyring PodManager::PullSecretsKeyring(const Json& pod) {
  DockerKeyring keyring;
  std::string ns = GetString(pod, "metadata.namespace");
  std::vector<std::string> missing;
  for (const auto& ref : Spec(pod).value("imagePullSecrets", Json::array())) {
    std::string name = ref.value("name", std::string());
    if (name.empty()) continue;
    auto secret = api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/secrets/", name));
    absl::Status s = secret.ok() ? keyring.AddSecret(*secret) : secret.status();
    if (!s.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": image pull secret " << name << ": " << s;
      missing.push_back(name);
    }
  }
  if (!missing.empty()) {
    Event(pod, "Warning", "FailedToRetrieveImagePullSecret",
          absl::StrCat("Unable to retrieve some image pull secrets (", absl::StrJoin(missing, ", "),
                       "); attempting to pull the image may not succeed."),
          "");
  }
  return keyring;
}

absl::StatusOr<std::string> PodManager::EnsureImage(PodState* state, const Json& pod, const Json& c,
                                                    const v1::PodSandboxConfig& sandbox,
                                                    std::string* reason) {
  std::string image = c.value("image", std::string());
  std::string policy = PullPolicy(c);
  absl::Time now = opts_.clock();
  if (policy != "Always") {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    auto st = images_->ImageStatus(req);
    if (st.ok() && st->has_image() && !st->image().id().empty()) return st->image().id();
    if (policy == "Never") {
      *reason = "ErrImageNeverPull";
      return absl::FailedPreconditionError(
          absl::StrCat("Container image \"", image, "\" is not present with pull policy of Never"));
    }
  }
  auto b = state->pull_backoff.find(image);
  if (b != state->pull_backoff.end() && now < b->second.until) {
    *reason = "ImagePullBackOff";
    std::string cname = c.value("name", std::string());
    Event(pod, "Normal", "BackOff", absl::StrCat("Back-off pulling image \"", image, "\""), cname);
    Event(pod, "Warning", "Failed", "Error: ImagePullBackOff", cname);
    EnqueueAfter(GetString(pod, "metadata.uid"), b->second.until - now);
    return absl::UnavailableError(absl::StrCat("Back-off pulling image \"", image,
                                               "\": ErrImagePull: ", state->last_pull_error[image]));
  }
  v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  *req.mutable_sandbox_config() = sandbox;
  LOG(INFO) << "pod " << PodKey(pod) << ": pulling image " << image;
  const std::string cname = c.value("name", std::string());
  Event(pod, "Normal", "Pulling", absl::StrCat("Pulling image \"", image, "\""), cname);
  // As the kubelet: with credentials from the pod's imagePullSecrets that match the image,
  // each is tried in turn (most specific first) until one pull succeeds; without any, the
  // pull is anonymous.
  std::vector<RegistryCredential> creds = PullSecretsKeyring(pod).Lookup(image);
  absl::StatusOr<v1::PullImageResponse> pulled = absl::UnknownError("no pull attempted");
  std::vector<std::string> errors;
  for (size_t i = 0; i < std::max<size_t>(creds.size(), 1); ++i) {
    if (i < creds.size()) {
      auto* auth = req.mutable_auth();
      auth->set_username(creds[i].username);
      auth->set_password(creds[i].password);
      auth->set_identity_token(creds[i].identity_token);
      auth->set_server_address(creds[i].key);
    }
    pulled = images_->PullImage(req);
    if (pulled.ok()) break;
    errors.push_back(std::string(pulled.status().message()));
  }
  if (!pulled.ok() && errors.size() > 1) {
    pulled = absl::Status(pulled.status().code(), absl::StrJoin(errors, "; "));
  }
  if (!pulled.ok()) {
    absl::Duration d = opts_.backoff_initial;
    if (b != state->pull_backoff.end()) d = std::min(b->second.duration * 2, opts_.image_backoff_max);
    state->pull_backoff[image] = Backoff{now + d, d};
    std::string msg = absl::StrCat("failed to pull image \"", image, "\": ", pulled.status().message());
    state->last_pull_error[image] = msg;
    // As kubelet: ErrImagePull stays until the next sync, which (half-way through the
    // back-off) reports ImagePullBackOff; the pull is retried when the back-off ends.
    EnqueueAfter(GetString(pod, "metadata.uid"), d / 2);
    EnqueueAfter(GetString(pod, "metadata.uid"), d);
    *reason = "ErrImagePull";
    Event(pod, "Warning", "Failed",
          absl::StrCat("Failed to pull image \"", image, "\": ", pulled.status().message()), cname);
    Event(pod, "Warning", "Failed", "Error: ErrImagePull", cname);
    return absl::Status(pulled.status().code(), msg);
  }
  Event(pod, "Normal", "Pulled", absl::StrCat("Successfully pulled image \"", image, "\""), cname);
  state->pull_backoff.erase(image);
  state->last_pull_error.erase(image);
  return pulled->image_ref().empty() ? image : pulled->image_ref();
}

absl::StatusOr<std::string> PodManager::StartContainer(
    PodState* state, const Json& pod, const Json& c, int restart_count, const std::string& sandbox_id,
    const v1::PodSandboxConfig& sandbox, const std::string& pod_ip,
    const std::map<std::string, MountedVolume>& volumes, const std::string& pid_target_id) {
  std::string name = c.value("name", std::string());
  std::string uid = GetString(pod, "metadata.uid");
  std::string ns = GetString(pod, "metadata.namespace");
  std::string reason;
  auto image_ref = EnsureImage(state, pod, c, sandbox, &reason);
  if (!image_ref.ok()) {
    state->waiting[name] = {reason, std::string(image_ref.status().message())};
    return image_ref.status();
  }
  v1::ContainerConfig cfg;
  cfg.mutable_metadata()->set_name(name);
  cfg.mutable_metadata()->set_attempt(static_cast<uint32_t>(restart_count));
  cfg.mutable_image()->set_image(*image_ref);
  cfg.mutable_image()->set_user_specified_image(c.value("image", std::string()));

  // Environment, in order, with $(VAR) expansion against earlier entries.
  std::vector<std::pair<std::string, std::string>> env;
  std::map<std::string, std::string> env_map;
  auto set_env = [&](const std::string& k, const std::string& v) {
    env_map[k] = v;
    for (auto& e : env) {
      if (e.first == k) {
        e.second = v;
        return;
      }
    }
    env.emplace_back(k, v);
  };
  auto get_key = [&](const char* kind, const Json& ref) -> absl::StatusOr<std::optional<std::string>> {
    std::string obj = ref.value("name", std::string());
    std::string key = ref.value("key", std::string());
    auto r = api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/", kind, "/", obj));
    if (!r.ok()) {
      if (ref.value("optional", false) && absl::IsNotFound(r.status())) return std::optional<std::string>();
      return Annotate(r.status(), absl::StrCat("env from ", kind, " ", ns, "/", obj));
    }
    std::string v = GetString(*r, absl::StrCat("data.", key));
    if (v.empty() && !(*r)["data"].contains(key)) {
      if (ref.value("optional", false)) return std::optional<std::string>();
      return absl::NotFoundError(absl::StrCat(kind, " ", ns, "/", obj, " has no key \"", key, "\""));
    }
    if (std::string(kind) == "secrets") {
      std::string decoded;
      absl::Base64Unescape(v, &decoded);
      v = decoded;
    }
    return std::optional<std::string>(v);
  };
  absl::Status env_error;
  // Service links first: the container's own variables override them and may refer to them.
  if (opts_.service_env != nullptr) {
    const Json& spec = pod.value("spec", Json::object());
    auto links = spec.find("enableServiceLinks");
    auto services = opts_.service_env->For(ns, links == spec.end() || !links->is_boolean() || links->get<bool>());
    if (!services.ok()) {
      state->waiting[name] = {"CreateContainerConfigError", std::string(services.status().message())};
      return services.status();
    }
    for (const auto& [k, v] : *services) set_env(k, v);
  }
  for (const auto& from : c.value("envFrom", Json::array())) {
    std::string prefix = from.value("prefix", std::string());
    bool is_secret = from.contains("secretRef");
    const Json ref = from.value(is_secret ? "secretRef" : "configMapRef", Json::object());
    std::string kind = is_secret ? "secrets" : "configmaps";
    auto r = api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/", kind, "/", ref.value("name", std::string())));
    if (!r.ok()) {
      if (!(ref.value("optional", false) && absl::IsNotFound(r.status()))) env_error = r.status();
      continue;
    }
    const Json data = r->value("data", Json::object());
    for (const auto& [k, v] : data.items()) {
      std::string val = v.is_string() ? v.get<std::string>() : "";
      if (is_secret) {
        std::string decoded;
        absl::Base64Unescape(val, &decoded);
        val = decoded;
      }
      set_env(prefix + k, val);
    }
  }
  for (const auto& e : c.value("env", Json::array())) {
    std::string k = e.value("name", std::string());
    if (e.contains("value")) {
      set_env(k, ExpandEnvRefs(e["value"].get<std::string>(), env_map));
      continue;
    }
    const Json vf = e.value("valueFrom", Json::object());
    if (vf.contains("fieldRef")) {
      auto v = ResolveFieldRef(pod, vf["fieldRef"].value("fieldPath", std::string()), pod_ip, opts_.node_ip);
      if (!v.ok()) {
        env_error = v.status();
        continue;
      }
      set_env(k, *v);
    } else if (vf.contains("configMapKeyRef") || vf.contains("secretKeyRef")) {
      bool is_secret = vf.contains("secretKeyRef");
      auto v = get_key(is_secret ? "secrets" : "configmaps", vf[is_secret ? "secretKeyRef" : "configMapKeyRef"]);
      if (!v.ok()) {
        env_error = v.status();
        continue;
      }
      if (v->has_value()) set_env(k, **v);
    } else if (vf.contains("resourceFieldRef")) {
      // The named container's resources (this one when no name is given).
      const Json& ref = vf["resourceFieldRef"];
      const std::string target = ref.value("containerName", "");
      const Json* of = target.empty() || target == name ? &c : FindContainer(pod, target);
      if (of == nullptr) {
        env_error = absl::InvalidArgumentError(absl::StrCat("env ", k, ": no container \"", target, "\""));
        continue;
      }
      auto v = ResolveResourceFieldRef(*of, ref, NodeAllocatable(opts_.root_dir));
      if (!v.ok()) {
        env_error = v.status();
        continue;
      }
      set_env(k, *v);
    } else {
      LOG(WARNING) << "pod " << PodKey(pod) << " container " << name << ": env " << k
                   << ": unsupported valueFrom skipped";
    }
  }
  if (!env_error.ok()) {
    state->waiting[name] = {"CreateContainerConfigError", std::string(env_error.message())};
    return env_error;
  }
  for (const auto& [k, v] : env) {
    auto* kv = cfg.add_envs();
    kv->set_key(k);
    kv->set_value(v);
  }
  for (const auto& a : c.value("command", Json::array())) cfg.add_command(ExpandEnvRefs(a.get<std::string>(), env_map));
  for (const auto& a : c.value("args", Json::array())) cfg.add_args(ExpandEnvRefs(a.get<std::string>(), env_map));
  cfg.set_working_dir(c.value("workingDir", std::string()));

  // Mounts: volumes, then the termination-log file.
  for (const auto& vm : c.value("volumeMounts", Json::array())) {
    std::string vname = vm.value("name", std::string());
    auto v = volumes.find(vname);
    if (v == volumes.end()) {
      std::string msg = absl::StrCat("volumeMount \"", vname, "\" refers to a volume that is not set up");
      state->waiting[name] = {"CreateContainerConfigError", msg};
      return absl::FailedPreconditionError(msg);
    }
    auto* m = cfg.add_mounts();
    m->set_container_path(vm.value("mountPath", std::string()));
    std::string host = v->second.host_path;
    std::string sub = vm.value("subPath", std::string());
    // subPathExpr: $(VAR) references to the container's env, expanded as the kubelet's
    // expandSubpath does.
    if (vm.contains("subPathExpr")) sub = ExpandEnvRefs(vm.value("subPathExpr", std::string()), env_map);
    if (!sub.empty()) {
      absl::StatusOr<std::string> resolved = PrepareSubPath(host, sub);
      if (!resolved.ok()) {
        std::string msg = absl::StrCat("failed to prepare subPath for volumeMount \"", vname, "\" of container \"",
                                       name, "\": ", resolved.status().message());
        state->waiting[name] = {"CreateContainerConfigError", msg};
        return absl::FailedPreconditionError(msg);
      }
      host = *resolved;
    }
    m->set_host_path(host);
    m->set_readonly(vm.value("readOnly", false) || v->second.read_only);
    std::string prop = vm.value("mountPropagation", std::string());
    if (prop == "HostToContainer") m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
    if (prop == "Bidirectional") m->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  }
  // The kubelet-managed /etc/hosts (upstream makeHostsMount), unless a volume covers it.
  bool hosts_mounted = false;
  for (const auto& m : cfg.mounts()) hosts_mounted |= m.container_path() == "/etc/hosts";
  if (!hosts_mounted) {
    std::string hosts;
    if (Spec(pod).value("hostNetwork", false)) {
      auto host = ReadFile("/etc/hosts");
      hosts = absl::StrCat("# Kubernetes-managed hosts file (host network).\n", host.ok() ? *host : "");
    } else {
      hosts = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";
      auto [host_name, host_domain] = PodHostnameAndDomain(pod);
      if (!pod_ip.empty()) {
        if (host_domain.empty()) {
          absl::StrAppend(&hosts, pod_ip, "\t", host_name, "\n");
        } else {
          absl::StrAppend(&hosts, pod_ip, "\t", host_name, ".", host_domain, "\t", host_name, "\n");
        }
      }
    }
    const Json aliases = Spec(pod).value("hostAliases", Json::array());
    if (!aliases.empty()) absl::StrAppend(&hosts, "\n# Entries added by HostAliases.\n");
    for (const auto& alias : aliases) {
      std::string line = alias.value("ip", std::string());
      for (const auto& h : alias.value("hostnames", Json::array())) absl::StrAppend(&line, "\t", h.get<std::string>());
      absl::StrAppend(&hosts, line, "\n");
    }
    std::string file = JoinPath(volumes_.PodDir(uid), "etc-hosts");
    absl::Status s = MkdirAll(volumes_.PodDir(uid), 0750);
    if (s.ok()) s = WriteFileAtomic(file, hosts, 0644);
    if (s.ok()) {
      auto* m = cfg.add_mounts();
      m->set_container_path("/etc/hosts");
      m->set_host_path(file);
    } else {
      LOG(WARNING) << "pod " << PodKey(pod) << ": no /etc/hosts file: " << s.message();
    }
  }
  std::string term_path = c.value("terminationMessagePath", std::string(kDefaultTerminationMessagePath));
  {
    std::string dir = JoinPath(JoinPath(volumes_.PodDir(uid), "containers"), name);
    std::string file = JoinPath(dir, absl::StrCat("termination-log-", restart_count));
    absl::Status s = MkdirAll(dir, 0755);
    if (s.ok()) s = WriteFileAtomic(file, "", 0666);
    // Writable by any user of the container, whatever berth's umask (upstream chmods 0666).
    if (s.ok() && ::chmod(file.c_str(), 0666) != 0) s = ErrnoStatus(errno, absl::StrCat("chmod ", file));
    if (s.ok()) {
      auto* m = cfg.add_mounts();
      m->set_container_path(term_path);
      m->set_host_path(file);
    } else {
      LOG(WARNING) << "pod " << PodKey(pod) << " container " << name
                   << ": no termination-log file: " << s.message();
    }
  }
  cfg.set_log_path(absl::StrCat(name, "/", restart_count, ".log"));
  cfg.set_stdin(c.value("stdin", false));
  cfg.set_stdin_once(c.value("stdinOnce", false));
  cfg.set_tty(c.value("tty", false));
  auto& labels = *cfg.mutable_labels();
  labels[kContainerNameLabel] = name;
  labels[kPodNameLabel] = GetString(pod, "metadata.name");
  labels[kPodNamespaceLabel] = ns;
  labels[kPodUidLabel] = uid;
  auto& annotations = *cfg.mutable_annotations();
  annotations[kRestartCountAnnotation] = std::to_string(restart_count);
  annotations[kTerminationMessagePathAnnotation] = term_path;
  annotations[kTerminationMessagePolicyAnnotation] = c.value("terminationMessagePolicy", std::string("File"));
  annotations[kGracePeriodAnnotation] =
      std::to_string(Spec(pod).value("terminationGracePeriodSeconds", kDefaultGracePeriodSeconds));

  // Resources (upstream kuberuntime_container_linux.go, cgroupfs semantics).
  auto* res = cfg.mutable_linux()->mutable_resources();
  auto cpu_req = ContainerResource(c, "requests", "cpu");
  auto cpu_lim = ContainerResource(c, "limits", "cpu");
  if (!cpu_req) cpu_req = cpu_lim;
  int64_t milli_req = cpu_req ? static_cast<int64_t>(*cpu_req * 1000 + 0.5) : 0;
  res->set_cpu_shares(std::max(kMinShares, milli_req * 1024 / 1000));
  if (cpu_lim) {
    int64_t milli_lim = static_cast<int64_t>(*cpu_lim * 1000 + 0.5);
    res->set_cpu_period(kCpuPeriod);
    res->set_cpu_quota(std::max(kMinQuota, milli_lim * kCpuPeriod / 1000));
  }
  if (auto mem = ContainerResource(c, "limits", "memory")) res->set_memory_limit_in_bytes(static_cast<int64_t>(*mem));
  std::string qos = PodQosClass(pod);
  int64_t oom = 1000;
  if (qos == "Guaranteed") {
    oom = -997;
  } else if (qos == "Burstable") {
    int64_t cap = NodeMemoryBytes();
    auto mem_req = ContainerResource(c, "requests", "memory");
    int64_t req = mem_req ? static_cast<int64_t>(*mem_req) : 0;
    oom = cap > 0 ? 1000 - (1000 * req) / cap : 999;
    if (oom < 3) oom = 3;
    if (oom == 1000) oom = 999;
  }
  // Without CAP_SYS_RESOURCE a lower value than ours fails in runc: clamp (as containerd's
  // restrict_oom_score_adj does).
  res->set_oom_score_adj(std::max(oom, CurrentOomScoreAdj()));

  // Security context: the container's fields win over the pod's.
  auto* sc = cfg.mutable_linux()->mutable_security_context();
  *sc->mutable_namespace_options() = NamespaceOptions(pod);
  if (!pid_target_id.empty() && sc->namespace_options().pid() == v1::CONTAINER) {
    sc->mutable_namespace_options()->set_pid(v1::TARGET);
    sc->mutable_namespace_options()->set_target_id(pid_target_id);
  }
  const Json psc = Spec(pod).value("securityContext", Json::object());
  const Json csc = c.value("securityContext", Json::object());
  auto pick = [&](const char* key) -> const Json* {
    if (csc.contains(key)) return &csc[key];
    if (psc.contains(key)) return &psc[key];
    return nullptr;
  };
  if (const Json* u = pick("runAsUser")) sc->mutable_run_as_user()->set_value(u->get<int64_t>());
  if (const Json* g = pick("runAsGroup")) sc->mutable_run_as_group()->set_value(g->get<int64_t>());
  // runAsNonRoot (upstream verifyRunAsNonRoot): the user the container will run as, from
  // runAsUser or else the image's config, must be known and not 0.
  if (const Json* nonroot = pick("runAsNonRoot"); nonroot != nullptr && nonroot->is_boolean() && nonroot->get<bool>()) {
    const std::string where = absl::StrCat("(pod: \"", GetString(pod, "metadata.name"), "_", ns, "(", uid,
                                           ")\", container: ", name, ")");
    std::string violation;
    if (sc->has_run_as_user()) {
      if (sc->run_as_user().value() == 0) violation = absl::StrCat("container's runAsUser breaks non-root policy ", where);
    } else {
      v1::ImageStatusRequest ireq;
      ireq.mutable_image()->set_image(*image_ref);
      auto ist = images_->ImageStatus(ireq);
      if (ist.ok() && ist->has_image()) {
        const v1::Image& img = ist->image();
        if (img.has_uid()) {
          if (img.uid().value() == 0) violation = absl::StrCat("container has runAsNonRoot and image will run as root ", where);
        } else if (!img.username().empty()) {
          violation = absl::StrCat("container has runAsNonRoot and image has non-numeric user (", img.username(),
                                   "), cannot verify user is non-root ", where);
        } else {
          violation = absl::StrCat("container has runAsNonRoot and image will run as root ", where);
        }
      }
    }
    if (!violation.empty()) {
      state->waiting[name] = {"CreateContainerConfigError", violation};
      return absl::FailedPreconditionError(violation);
    }
  }
  AddPodSupplementalGroups(psc, sc);
  // Then the GIDs of the pod's PersistentVolumes' pv.beta.kubernetes.io/gid annotations, each
  // once (the kubelet's GetExtraSupplementalGroupsForPod).
  for (const auto& [_, mv] : volumes) {
    if (!mv.supplemental_gid) continue;
    const auto& groups = sc->supplemental_groups();
    if (std::find(groups.begin(), groups.end(), *mv.supplemental_gid) == groups.end()) {
      sc->add_supplemental_groups(*mv.supplemental_gid);
    }
  }
  sc->set_privileged(csc.value("privileged", false));
  sc->set_readonly_rootfs(csc.value("readOnlyRootFilesystem", false));
  if (csc.contains("allowPrivilegeEscalation") && !csc["allowPrivilegeEscalation"].get<bool>()) {
    sc->set_no_new_privs(true);
  }
  const Json caps = csc.value("capabilities", Json::object());
  for (const auto& a : caps.value("add", Json::array())) sc->mutable_capabilities()->add_add_capabilities(a.get<std::string>());
  for (const auto& d : caps.value("drop", Json::array())) sc->mutable_capabilities()->add_drop_capabilities(d.get<std::string>());
  auto seccomp = ResolveSeccompProfile(pod, c, opts_.seccomp_default, JoinPath(opts_.root_dir, "seccomp"));
  if (!seccomp.ok()) {
    state->waiting[name] = {"CreateContainerConfigError", std::string(seccomp.status().message())};
    return seccomp.status();
  }
  switch (seccomp->type) {
    case SeccompProfile::Type::kUnconfined:
      sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
      break;
    case SeccompProfile::Type::kRuntimeDefault:
      sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
      break;
    case SeccompProfile::Type::kLocalhost:
      sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
      sc->mutable_seccomp()->set_localhost_ref(seccomp->localhost_path);
      break;
  }
  // TODO: apparmor, SELinux, procMount, masked/readonly paths.

  v1::CreateContainerRequest creq;
  creq.set_pod_sandbox_id(sandbox_id);
  *creq.mutable_config() = cfg;
  *creq.mutable_sandbox_config() = sandbox;
  auto created = runtime_->CreateContainer(creq);
  if (!created.ok()) {
    state->waiting[name] = {"CreateContainerError", std::string(created.status().message())};
    Event(pod, "Warning", "Failed", absl::StrCat("Error: ", created.status().message()), name);
    return Annotate(created.status(), absl::StrCat("CreateContainer ", name));
  }
  std::string id = created->container_id();
  Event(pod, "Normal", "Created", absl::StrCat("Created container: ", name), name);
  {
    absl::MutexLock l(&mu_);
    container_to_pod_[id] = uid;
  }
  v1::StartContainerRequest sreq;
  sreq.set_container_id(id);
  auto started = runtime_->StartContainer(sreq);
  if (!started.ok()) {
    state->waiting[name] = {"RunContainerError", std::string(started.status().message())};
    Event(pod, "Warning", "Failed", absl::StrCat("Error: ", started.status().message()), name);
    return Annotate(started.status(), absl::StrCat("StartContainer ", name, " (", id, ")"));
  }
  LOG(INFO) << "pod " << PodKey(pod) << ": started container " << name << " (" << id << ")";
  Event(pod, "Normal", "Started", absl::StrCat("Started container ", name), name);
  // lifecycle.postStart: the container counts as started only once it returns (upstream
  // startContainer step 4); a failure kills the container.
  Json post_start;
  if (c.contains("lifecycle") && c["lifecycle"].is_object()) post_start = c["lifecycle"].value("postStart", Json());
  if (post_start.is_object()) {
    absl::Status h = hooks_->Run(post_start, c, id, pod_ip, kPostStartTimeout);
    if (!h.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": postStart hook of " << name << ": " << h.message();
      Event(pod, "Warning", "FailedPostStartHook", std::string(h.message()), name);
      absl::Status k = StopOne(pod, name, id, Spec(pod).value("terminationGracePeriodSeconds", kDefaultGracePeriodSeconds),
                               pod_ip);
      if (!k.ok()) {
        LOG(WARNING) << "pod " << PodKey(pod) << ": " << k.message();
      }
      state->waiting[name] = {"PostStartHookError", std::string(h.message())};
      EnqueueAfter(uid, absl::ZeroDuration());  // restarted per the restart policy and back-off
      return absl::UnknownError(absl::StrCat("PostStartHookError: ", h.message()));
    }
  }
  return id;
}

void PodManager::UpdateStatus(const std::string& uid, PodState* state, const Json& pod,
                              const PodRuntimeStatus& runtime, bool terminal) {
  PodStatusContext ctx;
  ctx.node_ip = opts_.node_ip;
  ctx.now = opts_.clock();
  ctx.pod_is_terminal = terminal;
  ctx.waiting = state->waiting;
  for (const auto& c : runtime.containers) {
    if (c.state() != v1::CONTAINER_RUNNING) continue;
    Prober::ContainerProbeStatus p = prober_->Status(uid, c.metadata().name(), c.id());
    ctx.probes[c.id()] = {p.ready, p.started};
  }
  Json old = state->last_status;
  if (old.empty()) old = pod.value("status", Json::object());
  Json status = ComputePodStatus(pod, runtime, old, ctx);
  std::string evicted;
  {
    absl::MutexLock l(&mu_);
    evicted = state->evicted;
  }
  if (!evicted.empty() && terminal) {
    status["phase"] = "Failed";
    status["reason"] = state->rejected_reason.empty() ? "Evicted" : state->rejected_reason;
    status["message"] = evicted;
  }
  state->last_status = status;
  status_.SetPodStatus(pod, status);
}

bool PodManager::SyncPod(const std::string& uid, PodState* state, const Json& pod, bool removed) {
  const Json& spec = Spec(pod);
  const Json& meta = pod.value("metadata", Json::object());
  bool deleting = removed || (meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null());
  if (deleting) {
    prober_->RemovePod(uid);
    if (state->cleaned_up) {
      // Already killed and removed; the status manager deletes the object.
      if (removed) status_.RemovePod(uid);
      return removed;
    }
    int64_t grace = spec.value("terminationGracePeriodSeconds", kDefaultGracePeriodSeconds);
    if (meta.contains("deletionGracePeriodSeconds") && meta["deletionGracePeriodSeconds"].is_number()) {
      grace = meta["deletionGracePeriodSeconds"].get<int64_t>();
    }
    absl::Status s = KillPod(uid, pod, grace, /*remove=*/false);
    if (s.ok() && !removed) {
      auto rt = GetRuntimeStatus(uid);
      if (rt.ok()) {
        state->waiting.clear();
        UpdateStatus(uid, state, pod, *rt, /*terminal=*/true);
      }
    }
    if (s.ok()) s = KillPod(uid, pod, grace, /*remove=*/true);
    if (s.ok()) s = volumes_.TearDownPodVolumes(uid);
    if (!s.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": kill failed, retrying: " << s.message();
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
    state->terminated = true;
    state->cleaned_up = true;
    if (removed) {
      status_.RemovePod(uid);
      (void)RemoveAll(volumes_.PodDir(uid));
      LOG(INFO) << "pod " << PodKey(pod) << " removed";
      return true;
    }
    status_.MarkForDeletion(uid);
    return false;
  }
  if (state->terminated) return false;  // terminal pod: nothing runs any more
  std::string evicted;
  {
    absl::MutexLock l(&mu_);
    evicted = state->evicted;
  }
  if (auto left = ActiveDeadlineLeft(pod, *state); evicted.empty() && left) {
    // spec.activeDeadlineSeconds (upstream activeDeadlineHandler): measured from the pod's
    // startTime; once passed, the pod is killed and Failed with reason DeadlineExceeded.
    if (*left <= absl::ZeroDuration()) {
      evicted = "Pod was active on the node longer than the specified deadline";
      state->rejected_reason = "DeadlineExceeded";
      absl::MutexLock l(&mu_);
      state->evicted = evicted;
    } else {
      EnqueueAfter(uid, *left);
    }
  }
  if (!evicted.empty()) {
    // The eviction manager's evictPod (and the active deadline's kill): event first, then
    // kill with no grace period; the status (Failed/Evicted) is written by UpdateStatus.
    Event(pod, "Warning", state->rejected_reason.empty() ? "Evicted" : state->rejected_reason, evicted);
    prober_->RemovePod(uid);
    absl::Status k = KillPod(uid, pod, 0, /*remove=*/false);
    if (!k.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": evicting: " << k.message();
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
    state->terminated = true;
    state->waiting.clear();
    auto after = GetRuntimeStatus(uid);
    if (after.ok()) UpdateStatus(uid, state, pod, *after, /*terminal=*/true);
    LOG(INFO) << "pod " << PodKey(pod) << " evicted: " << evicted;
    return false;
  }
  std::string api_phase = GetString(pod, "status.phase");
  if (api_phase == "Succeeded" || api_phase == "Failed") {
    // Terminal before we saw it (e.g. berth restarted): never run it again.
    absl::Status k = KillPod(uid, pod, 0, /*remove=*/false);
    if (!k.ok()) {
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
    state->terminated = true;
    return false;
  }

  absl::Time now = opts_.clock();
  std::string policy = RestartPolicy(pod);
  state->waiting.clear();

  auto rt = GetRuntimeStatus(uid);
  if (!rt.ok()) {
    LOG(WARNING) << "pod " << PodKey(pod) << ": runtime status: " << rt.status().message();
    EnqueueAfter(uid, absl::Seconds(2));
    return false;
  }
  // Admission, once, for a pod that does not run here yet (upstream HandlePodAdditions ->
  // canAdmitPod; a rejected pod is Failed with the handler's reason and never runs).
  if (!state->admitted) {
    if (rt->sandboxes.empty()) {
      if (auto rejected = AdmitPod(pod)) {
        const std::string message = absl::StrCat("Pod was rejected: ", rejected->second);
        LOG(INFO) << "pod " << PodKey(pod) << " rejected: " << rejected->first << ": " << rejected->second;
        Event(pod, "Warning", rejected->first, message);
        {
          absl::MutexLock l(&mu_);
          state->evicted = message;
        }
        state->rejected_reason = rejected->first;
        state->terminated = true;
        UpdateStatus(uid, state, pod, *rt, /*terminal=*/true);
        return false;
      }
    }
    state->admitted = true;
  }
  // A first status (Pending, ContainerCreating) before anything slow happens.
  if (state->last_status.empty()) UpdateStatus(uid, state, pod, *rt, false);

  // Volumes first: containers cannot start without them.
  auto volumes = volumes_.SetUpPodVolumes(pod, opts_.node_ip);
  if (auto refresh = volumes_.NextRefresh(uid)) EnqueueAfter(uid, *refresh - now);
  if (!volumes.ok()) {
    LOG(WARNING) << "pod " << PodKey(pod) << ": " << volumes.status().message();
    // As the kubelet's operation executor reports it; once per distinct error, not per retry.
    std::string message = absl::StrCat("MountVolume.SetUp failed for ", volumes.status().message());
    if (message != state->volume_error) {
      Event(pod, "Warning", "FailedMount", message);
      state->volume_error = std::move(message);
    }
    UpdateStatus(uid, state, pod, *rt, false);
    state->volume_retry = state->volume_retry == absl::ZeroDuration()
                              ? absl::Milliseconds(200)
                              : std::min(state->volume_retry * 2, opts_.backoff_initial);
    EnqueueAfter(uid, state->volume_retry);
    return false;
  }
  state->volume_retry = absl::ZeroDuration();
  state->volume_error.clear();

  // The sandbox: the newest ready one, or a new one.
  const v1::PodSandboxStatus* sandbox = nullptr;
  if (!rt->sandboxes.empty() && rt->sandboxes[0].state() == v1::SANDBOX_READY) sandbox = &rt->sandboxes[0];
  std::string sandbox_id;
  v1::PodSandboxConfig sandbox_config;
  if (sandbox == nullptr) {
    uint32_t attempt = 0;
    for (const auto& sb : rt->sandboxes) attempt = std::max(attempt, sb.metadata().attempt() + 1);
    if (!rt->sandboxes.empty() || !rt->containers.empty()) {
      if (policy == "Never" && !rt->containers.empty()) {
        // The sandbox died after containers ran: a Never pod is not recreated.
        (void)KillPod(uid, pod, 0, false);
        auto after = GetRuntimeStatus(uid);
        state->terminated = true;
        UpdateStatus(uid, state, pod, after.ok() ? *after : *rt, /*terminal=*/true);
        return false;
      }
      absl::Status k = KillPod(uid, pod, spec.value("terminationGracePeriodSeconds", kDefaultGracePeriodSeconds), false);
      if (!k.ok()) {
        LOG(WARNING) << "pod " << PodKey(pod) << ": " << k.message();
      }
    }
    sandbox_config = MakeSandboxConfig(pod, attempt);
    (void)MkdirAll(sandbox_config.log_directory(), 0755);
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = sandbox_config;
    std::string handler = opts_.runtime_handler;
    std::string rc = spec.value("runtimeClassName", std::string());
    if (!rc.empty()) {
      auto obj = api_->Get(absl::StrCat("/apis/node.k8s.io/v1/runtimeclasses/", rc));
      if (obj.ok()) handler = obj->value("handler", handler);
    }
    req.set_runtime_handler(handler);
    LOG(INFO) << "pod " << PodKey(pod) << ": RunPodSandbox attempt " << attempt;
    auto run = runtime_->RunPodSandbox(req);
    if (!run.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": RunPodSandbox: " << run.status().message();
      // kubelet's reason and message for a sandbox that could not be created (events.go).
      Event(pod, "Warning", "FailedCreatePodSandBox",
            absl::StrCat("Failed to create pod sandbox: ", run.status().message()));
      UpdateStatus(uid, state, pod, *rt, false);
      EnqueueAfter(uid, opts_.backoff_initial);
      return false;
    }
    sandbox_id = run->pod_sandbox_id();
    rt = GetRuntimeStatus(uid);
    if (!rt.ok()) {
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
  } else {
    sandbox_id = sandbox->id();
    sandbox_config = MakeSandboxConfig(pod, sandbox->metadata().attempt());
  }
  std::string pod_ip;
  for (const auto& sb : rt->sandboxes) {
    if (sb.id() == sandbox_id) pod_ip = sb.network().ip();
  }
  if (spec.value("hostNetwork", false)) pod_ip = opts_.node_ip;

  // Container instances by name, newest first.
  std::map<std::string, std::vector<const v1::ContainerStatus*>> by_name;
  for (const auto& cs : rt->containers) by_name[cs.metadata().name()].push_back(&cs);
  auto restart_count_of = [](const v1::ContainerStatus& cs) {
    auto it = cs.annotations().find(kRestartCountAnnotation);
    if (it != cs.annotations().end()) {
      try {
        return std::stoi(it->second);
      } catch (...) {
      }
    }
    return static_cast<int>(cs.metadata().attempt());
  };
  bool changed = false;
  bool failed = false;
  // Starts container `c` after `latest` (nullptr: first start), honouring the crash-loop
  // back-off for restarts.
  auto start = [&](const Json& c, const v1::ContainerStatus* latest) {
    std::string name = c.value("name", std::string());
    int restart_count = 0;
    if (latest) {
      restart_count = restart_count_of(*latest) + 1;
      absl::Time finished = absl::FromUnixNanos(latest->finished_at());
      auto b = state->crash_backoff.find(name);
      if (b != state->crash_backoff.end()) {
        // Forget a back-off after a long healthy run (upstream: 2x the maximum).
        if (now - finished > 2 * opts_.crash_backoff_max) {
          state->crash_backoff.erase(b);
        } else if (now < finished + b->second.duration) {
          state->waiting[name] = {
              "CrashLoopBackOff",
              absl::StrCat("back-off ", absl::FormatDuration(b->second.duration), " restarting failed container=",
                           name, " pod=", GetString(pod, "metadata.name"), "_", GetString(pod, "metadata.namespace"),
                           "(", uid, ")")};
          EnqueueAfter(uid, finished + b->second.duration - now);
          return;
        }
      }
      b = state->crash_backoff.find(name);
      absl::Duration d = b == state->crash_backoff.end()
                             ? opts_.backoff_initial
                             : std::min(b->second.duration * 2, opts_.crash_backoff_max);
      state->crash_backoff[name] = Backoff{now + d, d};
      if (latest->state() != v1::CONTAINER_EXITED) {
        v1::RemoveContainerRequest rm;
        rm.set_container_id(latest->id());
        (void)runtime_->RemoveContainer(rm);
      }
    }
    auto id = StartContainer(state, pod, c, restart_count, sandbox_id, sandbox_config, pod_ip, *volumes);
    if (!id.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": " << id.status().message();
      if (state->waiting[name].reason == "CreateContainerConfigError") {
        // As upstream's startContainer when generateContainerConfig fails.
        Event(pod, "Warning", "Failed", absl::StrCat("Error: ", state->waiting[name].message), name);
      }
      if (state->waiting[name].reason != "ErrImagePull" && state->waiting[name].reason != "ImagePullBackOff") {
        EnqueueAfter(uid, opts_.backoff_initial);
      }
    }
    changed = true;
  };

  // A failed liveness / startup probe of a running instance: kill it; the next sync (the
  // exit event) restarts it per the restart policy (upstream computePodActions). Returns
  // true when the instance is being killed.
  int64_t pod_grace = spec.value("terminationGracePeriodSeconds", kDefaultGracePeriodSeconds);
  auto kill_if_probe_failed = [&](const std::string& name, const v1::ContainerStatus& latest) {
    auto kill = prober_->KillReason(uid, name, latest.id(), pod_grace);
    if (!kill) return false;
    std::string probe = absl::AsciiStrToLower(ProbeTypeName(kill->type));
    Event(pod, "Normal", "Killing",
          absl::StrCat("Container ", name, " failed ", probe, " probe, will be restarted"), name);
    LOG(INFO) << "pod " << PodKey(pod) << ": container " << name << " failed " << probe
              << " probe, stopping " << latest.id();
    absl::Status r = StopOne(pod, name, latest.id(), kill->grace_seconds, pod_ip);
    if (!r.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": " << r.message();
    }
    changed = true;
    EnqueueAfter(uid, absl::ZeroDuration());
    return true;
  };

  // Once regular containers were created, regular init containers are done for good
  // (upstream isPreviouslyInitialized).
  bool previously_initialized = false;
  for (const auto& c : SpecList(pod, "containers")) {
    if (!by_name[c.value("name", std::string())].empty()) previously_initialized = true;
  }
  // Init containers in order: a regular one runs to completion before the next starts; a
  // sidecar (restartPolicy Always) lets the next start once it is started (running, and its
  // startupProbe succeeded if it has one), and is restarted whenever it exits.
  bool initialized = true;
  for (const auto& c : SpecList(pod, "initContainers")) {
    std::string name = c.value("name", std::string());
    auto& inst = by_name[name];
    const v1::ContainerStatus* latest = inst.empty() ? nullptr : inst[0];
    if (IsRestartableInitContainer(c)) {
      if (latest && latest->state() == v1::CONTAINER_RUNNING) {
        if (kill_if_probe_failed(name, *latest)) {
          if (!previously_initialized) initialized = false;
          if (!previously_initialized) break;
          continue;
        }
        if (!prober_->Status(uid, name, latest->id()).started && !previously_initialized) {
          initialized = false;  // wait for its startupProbe
          break;
        }
        continue;
      }
      if (latest && latest->state() == v1::CONTAINER_CREATED && !previously_initialized) {
        initialized = false;
        break;
      }
      start(c, latest);  // first start, or a restart whatever the pod's restartPolicy
      if (!previously_initialized) {
        // Resync to go on with the next container once this one is started (upstream: the
        // PLEG ContainerStarted event).
        EnqueueAfter(uid, absl::ZeroDuration());
        initialized = false;
        break;
      }
      continue;
    }
    if (previously_initialized) continue;
    if (latest && latest->state() == v1::CONTAINER_EXITED && latest->exit_code() == 0) continue;
    initialized = false;
    if (latest && latest->state() == v1::CONTAINER_RUNNING) break;
    if (latest && latest->state() == v1::CONTAINER_EXITED && policy == "Never") {
      failed = true;
      break;
    }
    start(c, latest);
    break;
  }
  // With sidecars, the pod is done once every regular container has exited for good: the
  // sidecars are then stopped (upstream computePodActions kills the pod).
  bool regular_done = initialized && !SpecList(pod, "containers").empty();
  if (initialized) {
    for (const auto& c : SpecList(pod, "containers")) {
      std::string name = c.value("name", std::string());
      auto& inst = by_name[name];
      const v1::ContainerStatus* latest = inst.empty() ? nullptr : inst[0];
      if (latest && latest->state() == v1::CONTAINER_RUNNING) {
        regular_done = false;
        kill_if_probe_failed(name, *latest);
        continue;
      }
      if (latest && latest->state() == v1::CONTAINER_EXITED) {
        bool restart = policy == "Always" || (policy == "OnFailure" && latest->exit_code() != 0);
        if (!restart) continue;
      }
      regular_done = false;
      start(c, latest);
    }
  }

  // Ephemeral containers (kubectl debug, added through the ephemeralcontainers
  // subresource): each started once, never restarted (upstream EphemeralContainersToStart);
  // with targetContainerName in the PID namespace of that container's running instance.
  for (const auto& c : SpecList(pod, "ephemeralContainers")) {
    std::string name = c.value("name", std::string());
    if (!by_name[name].empty()) continue;
    std::string target = c.value("targetContainerName", std::string());
    std::string target_id;
    if (!target.empty()) {
      const auto& t = by_name[target];
      if (t.empty() || t[0]->state() != v1::CONTAINER_RUNNING) {
        state->waiting[name] = {"CreateContainerConfigError",
                                absl::StrCat("target container \"", target, "\" is not running")};
        continue;
      }
      target_id = t[0]->id();
    }
    auto id = StartContainer(state, pod, c, 0, sandbox_id, sandbox_config, pod_ip, *volumes, target_id);
    if (!id.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": ephemeral container " << name << ": " << id.status().message();
      if (state->waiting[name].reason != "ErrImagePull" && state->waiting[name].reason != "ImagePullBackOff") {
        EnqueueAfter(uid, opts_.backoff_initial);
      }
    }
    changed = true;
  }

  // Garbage: keep the two newest instances of each container (current + last state).
  for (const auto& [name, inst] : by_name) {
    for (size_t i = 2; i < inst.size(); ++i) {
      if (inst[i]->state() != v1::CONTAINER_EXITED) continue;
      v1::RemoveContainerRequest rm;
      rm.set_container_id(inst[i]->id());
      (void)runtime_->RemoveContainer(rm);
      changed = true;
    }
  }
  if (changed) {
    auto after = GetRuntimeStatus(uid);
    if (after.ok()) rt = std::move(after);
  }
  // The probe workers follow the newest instance of each container.
  {
    std::map<std::string, ProbedContainer> probed;
    for (const auto& cs : rt->containers) {  // newest first
      if (probed.count(cs.metadata().name())) continue;
      probed[cs.metadata().name()] = {cs.id(), absl::FromUnixNanos(cs.started_at()),
                                      cs.state() == v1::CONTAINER_RUNNING};
    }
    prober_->SyncPod(pod, pod_ip, probed);
  }
  UpdateStatus(uid, state, pod, *rt, false);
  std::string phase = state->last_status.value("phase", "");
  bool has_sidecars = false;
  for (const auto& c : SpecList(pod, "initContainers")) has_sidecars |= IsRestartableInitContainer(c);
  if (failed || phase == "Succeeded" || phase == "Failed" || (has_sidecars && regular_done)) {
    // Terminal: stop what is left (the sandbox), keep the exited containers for logs.
    absl::Status k = KillPod(uid, pod, spec.value("terminationGracePeriodSeconds", kDefaultGracePeriodSeconds), false);
    if (!k.ok()) {
      LOG(WARNING) << "pod " << PodKey(pod) << ": stopping terminal pod: " << k.message();
      EnqueueAfter(uid, absl::Seconds(2));
      return false;
    }
    state->terminated = true;
    auto after = GetRuntimeStatus(uid);
    UpdateStatus(uid, state, pod, after.ok() ? *after : *rt, /*terminal=*/true);
    LOG(INFO) << "pod " << PodKey(pod) << " is " << state->last_status.value("phase", "");
  }
  return false;
}

}  // namespace berth::kubelet
