#include "kubelet/node_status.h"

#include <sched.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::kubelet {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) i++;
  return s.substr(i);
}

std::string ReadTrimmed(const std::string& path) {
  auto s = ReadFile(path);
  return s.ok() ? Trim(*s) : std::string();
}

std::string GoArch(const std::string& machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64" || machine == "arm64") return "arm64";
  if (machine == "i386" || machine == "i686") return "386";
  if (machine.rfind("armv", 0) == 0) return "arm";
  if (machine == "ppc64le") return "ppc64le";
  if (machine == "s390x") return "s390x";
  if (machine == "riscv64") return "riscv64";
  return machine;
}

// cgroup v2 cpu.max or v1 cfs quota of the root of each hierarchy ("max" / -1 = no limit).
int64_t CgroupCpuLimit() {
  std::string v2 = ReadTrimmed("/sys/fs/cgroup/cpu.max");
  if (!v2.empty()) {
    std::istringstream in(v2);
    std::string quota;
    int64_t period = 0;
    in >> quota >> period;
    if (quota != "max" && period > 0) {
      return std::max<int64_t>(1, (std::stoll(quota) + period - 1) / period);
    }
    return 0;
  }
  std::string q = ReadTrimmed("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us");
  std::string p = ReadTrimmed("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us");
  if (!q.empty() && !p.empty() && q[0] != '-') {
    int64_t quota = std::stoll(q), period = std::stoll(p);
    if (period > 0) return std::max<int64_t>(1, (quota + period - 1) / period);
  }
  return 0;
}

Json Condition(const std::string& type, const std::string& status, const std::string& reason,
               const std::string& message, const std::string& heartbeat,
               const std::string& transition) {
  return Json{{"type", type},
              {"status", status},
              {"reason", reason},
              {"message", message},
              {"lastHeartbeatTime", heartbeat},
              {"lastTransitionTime", transition}};
}

}  // namespace

std::string FormatTime(std::chrono::system_clock::time_point t) {
  time_t secs = std::chrono::system_clock::to_time_t(t);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatMicroTime(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[48];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof(buf) - n, ".%06lldZ", static_cast<long long>(us % 1000000));
  return buf;
}

absl::StatusOr<int64_t> ParseMemTotalKib(const std::string& meminfo) {
  std::istringstream in(meminfo);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemTotal:", 0) != 0) continue;
    std::istringstream f(line.substr(9));
    int64_t kib = 0;
    std::string unit;
    if (f >> kib && kib > 0) return kib;
  }
  return absl::NotFoundError("/proc/meminfo: no MemTotal line");
}

std::string ParseOsReleasePrettyName(const std::string& os_release) {
  std::istringstream in(os_release);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
    std::string v = Trim(line.substr(12));
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
      v = v.substr(1, v.size() - 2);
    }
    return v;
  }
  return "Linux";
}

absl::StatusOr<MachineInfo> ReadMachineInfo(const std::string& root_dir) {
  MachineInfo m;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return ErrnoStatus(errno, "gethostname");
  m.hostname = host;
  std::transform(m.hostname.begin(), m.hostname.end(), m.hostname.begin(),
                 [](unsigned char c) { return static_cast<char>(tolower(c)); });

  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    m.cpu_count = CPU_COUNT(&set);
  } else {
    m.cpu_count = sysconf(_SC_NPROCESSORS_ONLN);
  }
  if (int64_t limit = CgroupCpuLimit(); limit > 0 && limit < m.cpu_count) m.cpu_count = limit;
  if (m.cpu_count <= 0) return absl::InternalError("cannot determine the number of CPUs");

  auto meminfo = ReadFile("/proc/meminfo");
  if (!meminfo.ok()) return meminfo.status();
  ASSIGN_OR_RETURN(m.memory_kib, ParseMemTotalKib(*meminfo));

  struct statvfs vfs;
  if (statvfs(root_dir.c_str(), &vfs) == 0) {
    m.root_fs_kib = static_cast<int64_t>(vfs.f_blocks) * static_cast<int64_t>(vfs.f_frsize) / 1024;
  } else {
    LOG(WARNING) << "statvfs " << root_dir << ": " << strerror(errno)
                 << "; ephemeral-storage reported as 0";
  }
  m.machine_id = ReadTrimmed("/etc/machine-id");
  m.system_uuid = ReadTrimmed("/sys/class/dmi/id/product_uuid");
  m.boot_id = ReadTrimmed("/proc/sys/kernel/random/boot_id");
  struct utsname u;
  if (uname(&u) == 0) {
    m.kernel_version = u.release;
    m.architecture = GoArch(u.machine);
  }
  auto os = ReadFile("/etc/os-release");
  m.os_image = ParseOsReleasePrettyName(os.ok() ? *os : "");
  return m;
}

absl::StatusOr<std::map<std::string, std::string>> ParseNodeLabels(const std::string& flag) {
  std::map<std::string, std::string> out;
  for (absl::string_view entry : absl::StrSplit(flag, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    size_t eq = entry.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--node-labels: \"", entry, "\" is not key=value"));
    }
    out[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  }
  return out;
}

absl::StatusOr<Json> ParseTaints(const std::string& flag) {
  Json out = Json::array();
  for (absl::string_view entry : absl::StrSplit(flag, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    size_t colon = entry.rfind(':');
    std::string effect =
        colon == absl::string_view::npos ? "" : std::string(entry.substr(colon + 1));
    if (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--register-with-taints: \"", entry,
          "\" is not key[=value]:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute"));
    }
    absl::string_view kv = entry.substr(0, colon);
    size_t eq = kv.find('=');
    std::string key(kv.substr(0, eq));
    if (key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--register-with-taints: \"", entry, "\" has no key"));
    }
    Json t = {{"key", key}, {"effect", effect}};
    if (eq != absl::string_view::npos) t["value"] = std::string(kv.substr(eq + 1));
    out.push_back(t);
  }
  return out;
}

Json BuildNode(const NodeStatusOptions& opts, const MachineInfo& machine,
               std::chrono::system_clock::time_point now, const std::string& not_ready) {
  std::string arch = machine.architecture.empty() ? "amd64" : machine.architecture;
  Json labels = {
      {"kubernetes.io/hostname", machine.hostname.empty() ? opts.node_name : machine.hostname},
      {"kubernetes.io/os", "linux"},
      {"kubernetes.io/arch", arch},
      {"beta.kubernetes.io/os", "linux"},
      {"beta.kubernetes.io/arch", arch},
  };
  for (const auto& [k, v] : opts.labels) labels[k] = v;

  Json capacity = {
      {"cpu", std::to_string(machine.cpu_count)},
      {"memory", absl::StrCat(machine.memory_kib, "Ki")},
      {"ephemeral-storage", absl::StrCat(machine.root_fs_kib, "Ki")},
      {"pods", std::to_string(opts.max_pods)},
      {"hugepages-1Gi", "0"},
      {"hugepages-2Mi", "0"},
  };
  std::string hb = FormatTime(now);
  std::string tt = hb;
  Json conditions = Json::array({
      Condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available", hb, tt),
      Condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
                hb, tt),
      Condition("PIDPressure", "False", "KubeletHasSufficientPID",
                "kubelet has sufficient PID available", hb, tt),
      not_ready.empty()
          ? Condition("Ready", "True", "KubeletReady", "berth is posting ready status", hb, tt)
          : Condition("Ready", "False", "KubeletNotReady", not_ready, hb, tt),
  });
  Json addresses = Json::array();
  if (!opts.node_ip.empty())
    addresses.push_back({{"type", "InternalIP"}, {"address", opts.node_ip}});
  addresses.push_back({{"type", "Hostname"},
                       {"address", machine.hostname.empty() ? opts.node_name : machine.hostname}});
  Json node_info = {
      {"machineID", machine.machine_id},
      {"systemUUID", machine.system_uuid.empty() ? machine.machine_id : machine.system_uuid},
      {"bootID", machine.boot_id},
      {"kernelVersion", machine.kernel_version},
      {"osImage", machine.os_image},
      {"containerRuntimeVersion", opts.runtime_version},
      {"kubeletVersion", opts.kubelet_version},
      {"kubeProxyVersion", ""},
      {"operatingSystem", "linux"},
      {"architecture", arch},
  };
  return Json{
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", opts.node_name},
        {"labels", labels},
        {"annotations", {{"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}}}},
      {"spec", opts.taints.empty() ? Json::object() : Json{{"taints", opts.taints}}},
      {"status",
       {{"capacity", capacity},
        {"allocatable", capacity},
        {"conditions", conditions},
        {"addresses", addresses},
        {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", opts.kubelet_port}}}}},
        {"nodeInfo", node_info}}},
  };
}

NodeStatusManager::NodeStatusManager(ApiClient* client, NodeStatusOptions options,
                                     MachineInfo machine)
    : client_(client),
      options_(std::move(options)),
      machine_(std::move(machine)),
      ready_since_(std::chrono::system_clock::now()) {}

NodeStatusManager::~NodeStatusManager() { Stop(); }

void NodeStatusManager::SetPodCidrCallback(
    std::function<void(const std::string&, const std::vector<std::string>&)> cb) {
  std::lock_guard<std::mutex> lock(mu_);
  cidr_cb_ = std::move(cb);
}

void NodeStatusManager::SetReadinessCheck(std::function<std::string()> check) {
  std::lock_guard<std::mutex> lock(mu_);
  readiness_check_ = std::move(check);
}

std::string NodeStatusManager::NodeUid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return uid_;
}

std::string NodeStatusManager::PodCidr() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pod_cidr_;
}

void NodeStatusManager::Observe(const Json& node) {
  if (!node.is_object()) return;
  std::string uid;
  if (node.contains("metadata") && node["metadata"].is_object()) {
    uid = node["metadata"].value("uid", "");
  }
  std::string cidr;
  std::vector<std::string> cidrs;
  if (node.contains("spec") && node["spec"].is_object()) {
    const Json& spec = node["spec"];
    cidr = spec.value("podCIDR", "");
    if (spec.contains("podCIDRs") && spec["podCIDRs"].is_array()) {
      for (const auto& c : spec["podCIDRs"]) {
        if (c.is_string()) cidrs.push_back(c.get<std::string>());
      }
    }
  }
  std::function<void(const std::string&, const std::vector<std::string>&)> cb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!uid.empty()) uid_ = uid;
    if (!cidr.empty() && (cidr != pod_cidr_ || cidrs != pod_cidrs_)) {
      pod_cidr_ = cidr;
      pod_cidrs_ = cidrs;
      cb = cidr_cb_;
      LOG(INFO) << "node " << options_.node_name << ": podCIDR " << cidr;
    }
  }
  if (cb) cb(cidr, cidrs);
}

void NodeStatusManager::SetPressureCheck(std::function<std::set<std::string>()> check) {
  std::lock_guard<std::mutex> lock(mu_);
  pressure_check_ = std::move(check);
}

absl::Status NodeStatusManager::RegisterOnce() {
  std::function<std::string()> check;
  {
    std::lock_guard<std::mutex> lock(mu_);
    check = readiness_check_;
  }
  Json node = BuildNode(options_, machine_, std::chrono::system_clock::now(), check ? check() : "");
  auto created = client_->Post("/api/v1/nodes", node);
  if (created.ok()) {
    Observe(*created);
    registered_ = true;
    LOG(INFO) << "registered node " << options_.node_name;
    return absl::OkStatus();
  }
  if (!absl::IsAlreadyExists(created.status())) return created.status();
  // The Node exists (an earlier run of berth, or an admin): adopt it, merging our labels.
  std::string path = "/api/v1/nodes/" + options_.node_name;
  ASSIGN_OR_RETURN(Json existing, client_->Get(path));
  Observe(existing);
  Json patch = {
      {"metadata",
       {{"labels", node["metadata"]["labels"]}, {"annotations", node["metadata"]["annotations"]}}}};
  ASSIGN_OR_RETURN(Json patched, client_->Patch(path, patch, PatchType::kStrategicMerge));
  Observe(patched);
  registered_ = true;
  LOG(INFO) << "node " << options_.node_name << " already registered; adopted it";
  return absl::OkStatus();
}

absl::Status NodeStatusManager::UpdateStatusOnce() {
  std::function<std::string()> check;
  {
    std::lock_guard<std::mutex> lock(mu_);
    check = readiness_check_;
  }
  std::string not_ready = check ? check() : "";
  auto now = std::chrono::system_clock::now();
  if (not_ready.empty() != last_not_ready_.empty()) {
    if (!not_ready.empty()) {
      LOG(WARNING) << "node " << options_.node_name << " not ready: " << not_ready;
    }
    ready_since_ = now;  // Ready flipped: a new transition time for it
  }
  last_not_ready_ = not_ready;
  std::function<std::set<std::string>()> pressure;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pressure = pressure_check_;
  }
  std::set<std::string> pressures = pressure ? pressure() : std::set<std::string>();
  Json node = BuildNode(options_, machine_, now, not_ready);
  if (volumes_in_use_) node["status"]["volumesInUse"] = volumes_in_use_();
  std::string since = FormatTime(ready_since_);
  for (Json& c : node["status"]["conditions"]) {
    c["lastTransitionTime"] = since;
    const std::string type = c.value("type", "");
    if (type == "Ready") continue;
    // The eviction manager's pressure conditions (upstream nodestatus MemoryPressureCondition,
    // DiskPressureCondition, PIDPressureCondition), each with its own transition time.
    const bool on = pressures.count(type) > 0;
    auto [it, fresh] = pressure_state_.try_emplace(type, on, ready_since_);
    if (!fresh && it->second.first != on) it->second = {on, now};
    c["lastTransitionTime"] = FormatTime(it->second.second);
    if (!on) continue;
    c["status"] = "True";
    if (type == "MemoryPressure") {
      c["reason"] = "KubeletHasInsufficientMemory";
      c["message"] = "kubelet has insufficient memory available";
    } else if (type == "DiskPressure") {
      c["reason"] = "KubeletHasDiskPressure";
      c["message"] = "kubelet has disk pressure";
    } else if (type == "PIDPressure") {
      c["reason"] = "KubeletHasInsufficientPID";
      c["message"] = "kubelet has insufficient PID available";
    }
  }
  // As the kubelet's tryUpdateNodeStatus: within nodeStatusReportFrequency of the last write,
  // a status that did not change apart from its heartbeat times is not written.
  Json comparable = node["status"];
  for (Json& c : comparable["conditions"]) c.erase("lastHeartbeatTime");
  if (comparable == last_reported_ && now - last_report_time_ < options_.report_frequency) {
    // Nothing to write, but the Node is still read, as the kubelet does each cycle: a
    // podCIDR assigned since the last write must reach the runtime (and the CNI conflist).
    ASSIGN_OR_RETURN(Json current, client_->Get("/api/v1/nodes/" + options_.node_name));
    Observe(current);
    return absl::OkStatus();
  }
  Json patch = {{"status", node["status"]}};
  ASSIGN_OR_RETURN(Json updated, client_->Patch("/api/v1/nodes/" + options_.node_name + "/status",
                                                patch, PatchType::kStrategicMerge));
  Observe(updated);
  if (volumes_reported_) {
    std::vector<std::string> in_use;
    const Json* status =
        updated.is_object() && updated.contains("status") ? &updated["status"] : nullptr;
    if (status != nullptr && status->is_object() && status->contains("volumesInUse") &&
        (*status)["volumesInUse"].is_array()) {
      for (const Json& v : (*status)["volumesInUse"])
        if (v.is_string()) in_use.push_back(v.get<std::string>());
    }
    volumes_reported_(in_use);
  }
  last_reported_ = std::move(comparable);
  last_report_time_ = now;
  status_updates_++;
  return absl::OkStatus();
}

void NodeStatusManager::SetVolumesInUse(
    std::function<std::vector<std::string>()> in_use,
    std::function<void(const std::vector<std::string>&)> reported) {
  volumes_in_use_ = std::move(in_use);
  volumes_reported_ = std::move(reported);
}

void NodeStatusManager::RequestUpdate() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    update_requested_ = true;
  }
  cv_.notify_all();
}

bool NodeStatusManager::SleepUnlessStopped(std::chrono::milliseconds d, bool wake_on_request) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this, wake_on_request] {
    return stop_.load() || (wake_on_request && update_requested_);
  });
  return !stop_.load();
}

void NodeStatusManager::Start() {
  thread_ = std::thread([this] { Run(); });
}

void NodeStatusManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void NodeStatusManager::Run() {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = options_.register_backoff_initial;
  int attempt = 0;
  while (!stop_ && !registered_) {
    absl::Status s = RegisterOnce();
    if (s.ok()) break;
    ++attempt;
    LOG(WARNING) << "register node " << options_.node_name << " (attempt " << attempt
                 << ") failed, retrying: " << s;
    auto half = backoff.count() / 2;
    std::chrono::milliseconds d(half + static_cast<long>(rng() % (half + 1)));
    backoff = std::min(backoff * 2, options_.register_backoff_max);
    if (!SleepUnlessStopped(d)) return;
  }
  while (!stop_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      update_requested_ = false;
    }
    absl::Status s = UpdateStatusOnce();
    if (!s.ok()) {
      LOG(WARNING) << "update status of node " << options_.node_name << ": " << s;
    }
    // On failure retry sooner (kubelet retries up to 5 times per period).
    auto wait = s.ok() ? options_.update_period
                       : std::min(options_.update_period, std::chrono::milliseconds(2000));
    auto until = std::chrono::steady_clock::now() + wait;
    // Not ready (e.g. no CNI configuration yet): report the change as soon as it happens.
    while (s.ok() && !last_not_ready_.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      if (!SleepUnlessStopped(std::min(left, options_.fast_update_period), true)) return;
      std::function<std::string()> check;
      bool requested = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        check = readiness_check_;
        requested = update_requested_;
      }
      if (requested) {
        until = std::chrono::steady_clock::now();
        break;
      }
      if (!check || check() != last_not_ready_) {
        until = std::chrono::steady_clock::now();
        break;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() > 0 && !SleepUnlessStopped(left, true)) return;
    if (stop_) return;
  }
}

}  // namespace berth::kubelet
