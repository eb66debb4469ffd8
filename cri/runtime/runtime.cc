#include "cri/runtime/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/oci_spec.h"
#include "cri/runtime/runtime_records.h"
#include "metrics/fs_usage.h"
#include "nlohmann/json.hpp"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::cri::runtime {
using nlohmann::json;

const char kRuntimeSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS runtime_sandboxes (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runtime_containers (id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, data TEXT NOT NULL);
)sql";

namespace {

std::string ToB64(const google::protobuf::Message& m) {
  std::string bin;
  m.SerializeToString(&bin);
  return absl::Base64Escape(bin);
}

bool FromB64(const std::string& s, google::protobuf::Message* m) {
  std::string bin;
  return absl::Base64Unescape(s, &bin) && m->ParseFromString(bin);
}

int SignalNumber(const std::string& name) {
  static const std::map<std::string, int> kSignals = {
      {"SIGTERM", SIGTERM}, {"SIGKILL", SIGKILL}, {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},
      {"SIGHUP", SIGHUP},   {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH},
      {"SIGSTOP", SIGSTOP}, {"SIGPWR", SIGPWR}};
  std::string n = name;
  if (!absl::StartsWith(n, "SIG")) n = "SIG" + n;
  auto it = kSignals.find(n);
  if (it != kSignals.end()) return it->second;
  int v;
  if (absl::SimpleAtoi(name, &v)) return v;
  return SIGTERM;
}

// CRI Signal enum value -> signal number (the enum values are the Linux numbers).
int CriSignal(v1::Signal s) { return s == v1::RUNTIME_DEFAULT ? 0 : static_cast<int>(s); }

// User-namespaced pods: the mapped users (not the host's root) resolve the rootfs paths under
// the root dir, so `dir` and every directory above it must be searchable by others (o+x).
// FailedPrecondition naming the first one that is not, with its mode.
absl::Status CheckSearchableByOthers(const std::string& dir) {
  std::string p = dir;
  while (!p.empty()) {
    struct stat st;
    if (stat(p.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + p);
    if ((st.st_mode & S_IXOTH) == 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "user namespaces: %s (mode %04o) is not searchable by the pod's mapped users; every "
          "directory above --root-dir %s needs o+x (e.g. chmod 0711 %s)",
          p, st.st_mode & 07777, dir, p));
    }
    if (p == "/") break;
    size_t slash = p.rfind('/');
    if (slash == std::string::npos) break;  // relative: its top
    p = slash == 0 ? "/" : p.substr(0, slash);
  }
  return absl::OkStatus();
}

// Unmounts every mount stacked at `path` (an idmapped rootfs sits on its overlay).
absl::Status Unmount(const std::string& path) {
  while (umount2(path.c_str(), MNT_DETACH) == 0) {}
  if (errno != EINVAL && errno != ENOENT) return ErrnoStatus(errno, "unmount " + path);
  return absl::OkStatus();
}

// Mounts an idmapped copy of `path` at `target` (an existing directory), mapped through the
// user namespace `userns_path` (/proc/<pause>/ns/user): a file owned by UID u on disk is seen
// as owned by the host ID that u maps to (u + host_id), hence as u inside the pod. Used for
// the image layers of a user-namespaced pod's overlay rootfs, as containerd does (overlayfs
// takes idmapped layers since Linux 5.19; it cannot be idmapped itself).
absl::Status IdmapMount(const std::string& path, const std::string& target, const std::string& userns_path) {
  const std::string what = "idmap mount " + path + " through " + userns_path;
  int userns = open(userns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (userns < 0) return ErrnoStatus(errno, what);
  int tree = open_tree(AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) {
    int e = errno;
    close(userns);
    return ErrnoStatus(e, what + ": open_tree");
  }
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns);
  int rc = mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr));
  int e = errno;
  close(userns);
  if (rc != 0) {
    close(tree);
    return ErrnoStatus(e, what + ": mount_setattr");
  }
  rc = move_mount(tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH);
  e = errno;
  close(tree);
  if (rc != 0) return ErrnoStatus(e, what + ": move_mount");
  return absl::OkStatus();
}

bool ProcessAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

std::string HostsFile() {
  return "127.0.0.1\tlocalhost\n"
         "::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\n"
         "ff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n";
}

// True when the memory cgroup at `cgroups_path` recorded an OOM kill (v1 or v2).
bool SawOomKill(const std::vector<CgroupMount>& mounts, const std::string& cgroups_path) {
  for (const auto& m : mounts) {
    bool mem = m.v2 || std::find(m.controllers.begin(), m.controllers.end(), "memory") != m.controllers.end();
    if (!mem) continue;
    std::string dir = JoinPath(m.mount_point, std::string(absl::StripPrefix(cgroups_path, "/")));
    auto s = ReadFile(JoinPath(dir, m.v2 ? "memory.events" : "memory.oom_control"));
    if (!s.ok()) continue;
    for (absl::string_view line : absl::StrSplit(*s, '\n')) {
      if (absl::ConsumePrefix(&line, "oom_kill ")) {
        int64_t n = 0;
        if (absl::SimpleAtoi(line, &n) && n > 0) return true;
      }
    }
  }
  return false;
}

// Recursive read-only mounts need Linux >= 5.12 (mount_setattr) and an OCI runtime whose
// `features` lists the "rro" mount option (runc >= 1.1).
bool DetectRecursiveReadOnly(const std::string& runtime_path) {
  struct utsname u;
  if (uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (sscanf(u.release, "%d.%d", &major, &minor) != 2 || major < 5 || (major == 5 && minor < 12)) return false;
  auto r = Run({runtime_path, "features"}, "", std::chrono::seconds(10));
  if (!r.ok() || r->exit_code != 0) return false;
  json f = json::parse(r->out, nullptr, false);
  if (!f.is_object() || !f.contains("mountOptions") || !f["mountOptions"].is_array()) return false;
  for (const auto& o : f["mountOptions"]) {
    if (o == "rro") return true;
  }
  return false;
}

}  // namespace

std::string NewId() {
  unsigned char buf[32];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);
    if (n > 0) got += n;
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(buf), sizeof(buf)));
}

bool MatchLabels(const google::protobuf::Map<std::string, std::string>& labels,
                 const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::string SandboxNameKey(const v1::PodSandboxMetadata& m) {
  return absl::StrCat(m.name(), "_", m.namespace_(), "_", m.uid(), "_", m.attempt());
}

std::string ContainerNameKey(const std::string& sandbox_id, const v1::ContainerMetadata& m) {
  return absl::StrCat(sandbox_id, "_", m.name(), "_", m.attempt());
}

std::string ResolvConf(const v1::DNSConfig& dns) {
  std::string out;
  if (dns.searches_size() > 0) out += "search " + absl::StrJoin(dns.searches(), " ") + "\n";
  for (const auto& s : dns.servers()) out += "nameserver " + s + "\n";
  if (dns.options_size() > 0) out += "options " + absl::StrJoin(dns.options(), " ") + "\n";
  return out;
}

Runtime::Runtime(RuntimeOptions opts, RuntimeDeps deps) : opts_(std::move(opts)), deps_(deps) {
  if (deps_.infra == nullptr) {
    own_infra_ = NewPauseInfra(opts_.pause_binary);
    deps_.infra = own_infra_.get();
  }
  if (deps_.fs_usage == nullptr) {
    own_fs_usage_ = std::make_unique<metrics::FsUsageCache>(metrics::FsUsageCache::Options{});
    deps_.fs_usage = own_fs_usage_.get();
  }
  if (auto st = ReadFile("/proc/self/status"); st.ok()) {
    for (absl::string_view line : absl::StrSplit(*st, '\n')) {
      if (absl::ConsumePrefix(&line, "CapBnd:")) {
        uint64_t v;
        if (absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line), &v)) cap_bounding_ = v;
      }
    }
  }
  auto adj = ReadFile("/proc/self/oom_score_adj");
  if (adj.ok()) absl::SimpleAtoi(absl::StripAsciiWhitespace(*adj), &current_oom_score_adj_);
}

Runtime::~Runtime() {
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (monitor_.joinable()) monitor_.join();
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

std::string Runtime::ExitDir() const { return JoinPath(opts_.state_dir, "exits"); }

absl::Status Runtime::Start() {
  if (!deps_.db || !deps_.images || !deps_.network || !deps_.oci) {
    return absl::InvalidArgumentError("Runtime: db, images, network and oci dependencies are required");
  }
  for (const auto& d : {JoinPath(opts_.root_dir, "containers"), JoinPath(opts_.root_dir, "sandboxes"),
                        JoinPath(opts_.state_dir, "netns"), ExitDir()}) {
    RETURN_IF_ERROR(MkdirAll(d, 0711));
  }
  for (absl::string_view stmt : absl::StrSplit(kRuntimeSchema, ';')) {
    std::string s(absl::StripAsciiWhitespace(stmt));
    if (!s.empty()) RETURN_IF_ERROR(deps_.db->Exec(s));
  }
  // Watch before loading so no exit file is missed between the two.
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd_ < 0) return ErrnoStatus(errno, "inotify_init1");
  if (inotify_add_watch(inotify_fd_, ExitDir().c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    return ErrnoStatus(errno, "inotify watch " + ExitDir());
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) return ErrnoStatus(errno, "eventfd");
  RETURN_IF_ERROR(Load());
  // CNI attachments of sandboxes the store does not know (berth died between CNI ADD and
  // saving the sandbox) are released, as containerd's CNI GC does.
  std::vector<cni::AttachRequest> valid;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, sb] : sandboxes_) {
      if (!sb->network_attached) continue;
      cni::AttachRequest ar;
      ar.container_id = id;
      valid.push_back(std::move(ar));
    }
  }
  if (absl::Status s = deps_.network->Gc(valid); !s.ok()) {
    LOG(WARNING) << "runtime: CNI GC: " << s;
  }
  rro_supported_ = DetectRecursiveReadOnly(deps_.oci->options().runtime_path);
  monitor_ = std::thread([this] { MonitorLoop(); });
  return absl::OkStatus();
}

void Runtime::OnContainerExit(std::function<void(const std::string&)> cb) {
  absl::MutexLock l(&mu_);
  exit_cbs_.push_back(std::move(cb));
}

// ---------------------------------------------------------------- persistence

absl::Status Runtime::SaveSandbox(const SandboxRec& sb) {
  json j = {{"name_key", sb.name_key},     {"config", ToB64(sb.config)},
            {"state", static_cast<int>(sb.state)}, {"created_at", sb.created_at},
            {"ip", sb.ip},                 {"additional_ips", sb.additional_ips},
            {"pause_pid", sb.pause_pid},   {"netns_path", sb.netns_path},
            {"cgroup_path", sb.cgroup_path}, {"runtime_handler", sb.runtime_handler},
            {"dir", sb.dir},               {"shm_path", sb.shm_path},
            {"host_network", sb.host_network}, {"host_ipc", sb.host_ipc},
            {"network_attached", sb.network_attached}};
  return deps_.db->Transaction([&]() -> absl::Status {
    return deps_.db->Exec("INSERT OR REPLACE INTO runtime_sandboxes (id, data) VALUES (?1, ?2)",
                          {sb.id, j.dump()});
  });
}

absl::Status Runtime::SaveContainer(const ContainerRec& c) {
  json j = {{"name_key", c.name_key},   {"config", ToB64(c.config)},
            {"state", static_cast<int>(c.state)}, {"created_at", c.created_at},
            {"started_at", c.started_at}, {"finished_at", c.finished_at},
            {"exit_code", c.exit_code}, {"reason", c.reason},
            {"message", c.message},     {"pid", c.pid},
            {"image_name", c.image_name}, {"image_ref", c.image_ref},
            {"image_id", c.image_id},   {"stop_signal", c.stop_signal},
            {"log_path", c.log_path},   {"bundle", c.bundle},
            {"rootfs", c.rootfs},       {"cgroups_path", c.cgroups_path},
            {"runtime_handler", c.runtime_handler}};
  if (c.user_known) j["user"] = {{"uid", c.uid}, {"gid", c.gid}, {"groups", c.supplemental_groups}};
  return deps_.db->Transaction([&]() -> absl::Status {
    return deps_.db->Exec(
        "INSERT OR REPLACE INTO runtime_containers (id, sandbox_id, data) VALUES (?1, ?2, ?3)",
        {c.id, c.sandbox_id, j.dump()});
  });
}

absl::Status Runtime::Load() {
  ASSIGN_OR_RETURN(auto srows, deps_.db->Query("SELECT id, data FROM runtime_sandboxes"));
  ASSIGN_OR_RETURN(auto crows, deps_.db->Query("SELECT id, sandbox_id, data FROM runtime_containers"));
  absl::MutexLock l(&mu_);
  for (const auto& r : srows) {
    json j = json::parse(store::AsString(r[1]), nullptr, false);
    if (j.is_discarded()) {
      LOG(WARNING) << "runtime: sandbox " << store::AsString(r[0]) << ": unreadable record, skipped";
      continue;
    }
    auto sb = std::make_shared<SandboxRec>();
    sb->id = store::AsString(r[0]);
    sb->name_key = j.value("name_key", "");
    FromB64(j.value("config", ""), &sb->config);
    sb->state = static_cast<v1::PodSandboxState>(j.value("state", 1));
    sb->created_at = j.value("created_at", int64_t{0});
    sb->ip = j.value("ip", "");
    sb->additional_ips = j.value("additional_ips", std::vector<std::string>{});
    sb->pause_pid = j.value("pause_pid", 0);
    sb->netns_path = j.value("netns_path", "");
    sb->cgroup_path = j.value("cgroup_path", "");
    sb->runtime_handler = j.value("runtime_handler", "");
    sb->dir = j.value("dir", "");
    sb->shm_path = j.value("shm_path", "");
    sb->host_network = j.value("host_network", false);
    sb->host_ipc = j.value("host_ipc", false);
    sb->network_attached = j.value("network_attached", false);
    sb->created = true;
    if (sb->state == v1::SANDBOX_READY && !ProcessAlive(sb->pause_pid)) {
      LOG(WARNING) << "runtime: sandbox " << sb->id << ": pause process " << sb->pause_pid
                   << " is gone; marking NOTREADY";
      sb->state = v1::SANDBOX_NOTREADY;
      (void)SaveSandbox(*sb);
    }
    sandbox_names_[sb->name_key] = sb->id;
    sandboxes_[sb->id] = sb;
  }
  for (const auto& r : crows) {
    json j = json::parse(store::AsString(r[2]), nullptr, false);
    if (j.is_discarded()) continue;
    auto c = std::make_shared<ContainerRec>();
    c->id = store::AsString(r[0]);
    c->sandbox_id = store::AsString(r[1]);
    c->name_key = j.value("name_key", "");
    FromB64(j.value("config", ""), &c->config);
    c->state = static_cast<v1::ContainerState>(j.value("state", 0));
    c->created_at = j.value("created_at", int64_t{0});
    c->started_at = j.value("started_at", int64_t{0});
    c->finished_at = j.value("finished_at", int64_t{0});
    c->exit_code = j.value("exit_code", 0);
    c->reason = j.value("reason", "");
    c->message = j.value("message", "");
    c->pid = j.value("pid", 0);
    c->image_name = j.value("image_name", "");
    c->image_ref = j.value("image_ref", "");
    c->image_id = j.value("image_id", "");
    c->stop_signal = j.value("stop_signal", "");
    c->log_path = j.value("log_path", "");
    c->bundle = j.value("bundle", "");
    c->rootfs = j.value("rootfs", "");
    c->cgroups_path = j.value("cgroups_path", "");
    c->runtime_handler = j.value("runtime_handler", "");
    if (j.contains("user") && j["user"].is_object()) {
      c->user_known = true;
      c->uid = j["user"].value("uid", int64_t{0});
      c->gid = j["user"].value("gid", int64_t{0});
      c->supplemental_groups = j["user"].value("groups", std::vector<int64_t>{});
    }
    c->created = true;
    container_names_[c->name_key] = c->id;
    containers_[c->id] = c;
  }
  // Reconcile containers: exits that happened while berth was down.
  auto mounts = HostCgroupMounts();
  for (auto& [id, c] : containers_) {
    if (c->state != v1::CONTAINER_RUNNING && c->state != v1::CONTAINER_CREATED) continue;
    auto code = oci::OciRuntime::ReadExitFile(ExitDir(), id);
    if (code.ok()) {
      struct stat st;
      c->finished_at = stat(JoinPath(ExitDir(), id).c_str(), &st) == 0
                           ? int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec
                           : NowNs();
      c->exit_code = *code;
      c->state = v1::CONTAINER_EXITED;
      c->reason = SawOomKill(mounts, c->cgroups_path) ? "OOMKilled" : (*code == 0 ? "Completed" : "Error");
    } else if (c->state == v1::CONTAINER_RUNNING && !ProcessAlive(c->pid)) {
      c->state = v1::CONTAINER_EXITED;
      c->finished_at = NowNs();
      c->exit_code = 255;
      c->reason = "Unknown";
      c->message = "container process disappeared while berth was down (no exit file)";
    } else {
      continue;
    }
    LOG(INFO) << "runtime: container " << id << " exited while berth was down (code " << c->exit_code << ")";
    (void)SaveContainer(*c);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- lookup

std::shared_ptr<Runtime::SandboxRec> Runtime::FindSandbox(const std::string& id) {
  if (id.empty()) return nullptr;
  absl::MutexLock l(&mu_);
  auto it = sandboxes_.find(id);
  if (it != sandboxes_.end()) return it->second;
  std::shared_ptr<SandboxRec> found;
  for (auto i = sandboxes_.lower_bound(id); i != sandboxes_.end() && absl::StartsWith(i->first, id); ++i) {
    if (found) return nullptr;  // ambiguous prefix
    found = i->second;
  }
  return found;
}

std::shared_ptr<Runtime::ContainerRec> Runtime::FindContainer(const std::string& id) {
  if (id.empty()) return nullptr;
  absl::MutexLock l(&mu_);
  auto it = containers_.find(id);
  if (it != containers_.end()) return it->second;
  std::shared_ptr<ContainerRec> found;
  for (auto i = containers_.lower_bound(id); i != containers_.end() && absl::StartsWith(i->first, id); ++i) {
    if (found) return nullptr;
    found = i->second;
  }
  return found;
}

absl::StatusOr<oci::OciRuntime*> Runtime::RuntimeFor(const std::string& handler) {
  auto it = opts_.runtime_handlers.find(handler);
  if (it == opts_.runtime_handlers.end()) {
    if (handler.empty() || handler == "runc") return deps_.oci;
    return absl::InvalidArgumentError("unknown runtime handler \"" + handler + "\"");
  }
  if (it->second == deps_.oci->options().runtime_path) return deps_.oci;
  absl::MutexLock l(&mu_);
  auto& rt = handler_runtimes_[handler];
  if (!rt) {
    oci::OciRuntimeOptions o = deps_.oci->options();
    o.runtime_path = it->second;
    o.runtime_root = JoinPath(opts_.state_dir, "runtime-" + (handler.empty() ? "default" : handler));
    rt = std::make_unique<oci::OciRuntime>(o);
  }
  return rt.get();
}

oci::OciRuntime* Runtime::RuntimeOf(const ContainerRec& c) {
  auto rt = RuntimeFor(c.runtime_handler);
  return rt.ok() ? *rt : deps_.oci;
}

// ---------------------------------------------------------------- version / status

absl::StatusOr<v1::VersionResponse> Runtime::Version(const v1::VersionRequest&) {
  v1::VersionResponse r;
  r.set_version("0.1.0");
  r.set_runtime_name("berth");
  r.set_runtime_version(BERTH_VERSION);
  r.set_runtime_api_version("v1");
  return r;
}

absl::StatusOr<v1::StatusResponse> Runtime::Status(const v1::StatusRequest& req) {
  v1::StatusResponse r;
  auto* rc = r.mutable_status()->add_conditions();
  rc->set_type("RuntimeReady");
  absl::Status rs = deps_.oci->Ready();
  rc->set_status(rs.ok());
  if (!rs.ok()) {
    rc->set_reason("OCIRuntimeNotReady");
    rc->set_message(std::string(rs.message()));
  }
  auto* nc = r.mutable_status()->add_conditions();
  nc->set_type("NetworkReady");
  absl::Status ns = deps_.network->Ready();
  nc->set_status(ns.ok());
  if (!ns.ok()) {
    nc->set_reason("NetworkPluginNotReady");
    nc->set_message(std::string(ns.message()));
  }
  // Features (cri-api RuntimeFeatures / RuntimeHandlerFeatures).
  r.mutable_features()->set_supplemental_groups_policy(true);
  auto* def = r.add_runtime_handlers();
  def->mutable_features()->set_recursive_read_only_mounts(rro_supported_);
  // User namespaces: the pause creates the pod's (PodUserns), berth idmaps the rootfs; any
  // OCI runtime only has to join it.
  def->mutable_features()->set_user_namespaces(true);
  for (const auto& [name, bin] : opts_.runtime_handlers) {
    if (name.empty()) continue;
    auto* h = r.add_runtime_handlers();
    h->set_name(name);
    h->mutable_features()->set_recursive_read_only_mounts(rro_supported_ && bin == deps_.oci->options().runtime_path);
    h->mutable_features()->set_user_namespaces(true);
  }
  if (req.verbose()) {
    std::string pod_cidr;
    {
      absl::MutexLock l(&mu_);
      pod_cidr = absl::StrJoin(pod_cidrs_, ",");
    }
    json info = {{"rootDir", opts_.root_dir}, {"stateDir", opts_.state_dir}, {"cgroupRoot", opts_.cgroup_root},
                 {"podCIDR", pod_cidr}};
    (*r.mutable_info())["config"] = info.dump();
  }
  return r;
}

absl::StatusOr<v1::RuntimeConfigResponse> Runtime::RuntimeConfig(const v1::RuntimeConfigRequest&) {
  v1::RuntimeConfigResponse r;
  r.mutable_linux()->set_cgroup_driver(v1::CGROUPFS);
  return r;
}

// ---------------------------------------------------------------- sandboxes

absl::StatusOr<v1::RunPodSandboxResponse> Runtime::RunPodSandbox(const v1::RunPodSandboxRequest& req) {
  const auto& md = req.config().metadata();
  if (md.name().empty() || md.namespace_().empty() || md.uid().empty()) {
    return absl::InvalidArgumentError("RunPodSandbox: metadata name, namespace and uid are required");
  }
  ASSIGN_OR_RETURN(oci::OciRuntime * rt, RuntimeFor(req.runtime_handler()));
  (void)rt;
  if (auto u = PodUserns(req.config()); !u.ok()) {
    return Annotate(u.status(), "RunPodSandbox");
  } else if (u->enabled()) {
    RETURN_IF_ERROR(Annotate(CheckSearchableByOthers(opts_.root_dir), "RunPodSandbox"));
  }
  std::string key = SandboxNameKey(md);
  // The new record's op_mu is taken before mu_ (never under it): lock order is op_mu -> mu_.
  auto sb = std::make_shared<SandboxRec>();
  sb->op_mu.Lock();
  {
    mu_.Lock();
    auto it = sandbox_names_.find(key);
    if (it != sandbox_names_.end()) {
      auto existing = sandboxes_.at(it->second);
      mu_.Unlock();
      sb->op_mu.Unlock();
      absl::MutexLock ol(&existing->op_mu);  // waits for an in-flight creation
      if (!existing->created) {
        return Annotate(existing->create_status, "RunPodSandbox " + key + " (retried while in flight)");
      }
      v1::RunPodSandboxResponse r;
      r.set_pod_sandbox_id(existing->id);
      return r;
    }
    sb->id = NewId();
    sb->name_key = key;
    sb->config = req.config();
    sb->runtime_handler = req.runtime_handler();
    sb->created_at = NowNs();
    sandbox_names_[key] = sb->id;
    sandboxes_[sb->id] = sb;
    mu_.Unlock();
  }
  absl::Status s = SetupSandbox(sb.get());
  if (!s.ok()) {
    TeardownSandbox(sb.get());
    if (!sb->cgroup_path.empty()) {
      absl::Status cs = RemoveCgroup(HostCgroupMounts(), sb->cgroup_path);
      if (!cs.ok()) {
        LOG(WARNING) << "runtime: undo sandbox " << sb->id << ": " << cs;
      }
    }
    if (!sb->dir.empty()) RemoveAll(sb->dir).IgnoreError();
    sb->create_status = s;
    {
      absl::MutexLock l(&mu_);
      sandbox_names_.erase(key);
      sandboxes_.erase(sb->id);
    }
    sb->op_mu.Unlock();
    return Annotate(s, "RunPodSandbox " + key);
  }
  sb->op_mu.Unlock();
  LOG(INFO) << "runtime: sandbox " << sb->id << " (" << key << ") ready, ip " << sb->ip;
  EmitEvent(v1::CONTAINER_CREATED_EVENT, sb->id, sb->id);
  EmitEvent(v1::CONTAINER_STARTED_EVENT, sb->id, sb->id);
  v1::RunPodSandboxResponse r;
  r.set_pod_sandbox_id(sb->id);
  return r;
}

// The CNI request of a sandbox: IDs, K8S_POD_* args, hostPorts and DNS from its config
// (bandwidth and ipRanges are the caller's).
static cni::AttachRequest CniAttachRequest(const Runtime::SandboxRec& sb) {
  const auto& cfg = sb.config;
  cni::AttachRequest ar;
  ar.container_id = sb.id;
  ar.netns_path = sb.netns_path;
  ar.pod_name = cfg.metadata().name();
  ar.pod_namespace = cfg.metadata().namespace_();
  ar.pod_uid = cfg.metadata().uid();
  for (const auto& pm : cfg.port_mappings()) {
    if (pm.host_port() <= 0) continue;
    cni::PortMapping m;
    m.host_port = pm.host_port();
    m.container_port = pm.container_port();
    m.protocol = pm.protocol() == v1::UDP ? "udp" : pm.protocol() == v1::SCTP ? "sctp" : "tcp";
    m.host_ip = pm.host_ip();
    ar.port_mappings.push_back(m);
  }
  const auto& dns = cfg.dns_config();
  ar.dns.servers.assign(dns.servers().begin(), dns.servers().end());
  ar.dns.searches.assign(dns.searches().begin(), dns.searches().end());
  ar.dns.options.assign(dns.options().begin(), dns.options().end());
  return ar;
}

absl::Status Runtime::SetupSandbox(SandboxRec* sb) {
  const auto& cfg = sb->config;
  const auto& nso = cfg.linux().security_context().namespace_options();
  sb->host_network = nso.network() == v1::NODE;
  sb->host_ipc = nso.ipc() == v1::NODE;
  sb->dir = JoinPath(JoinPath(opts_.root_dir, "sandboxes"), sb->id);
  RETURN_IF_ERROR(MkdirAll(sb->dir, 0755));

  // /etc files.
  std::string hostname = cfg.hostname();
  if (sb->host_network || hostname.empty()) {
    char buf[256] = {};
    gethostname(buf, sizeof(buf) - 1);
    if (sb->host_network || hostname.empty()) hostname = buf;
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(sb->dir, "hostname"), hostname + "\n"));
  std::string hosts = HostsFile();
  if (sb->host_network) {
    auto h = ReadFile("/etc/hosts");
    if (h.ok()) hosts = *h;
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(sb->dir, "hosts"), hosts));
  std::string resolv = ResolvConf(cfg.dns_config());
  if (resolv.empty()) {
    auto h = ReadFile("/etc/resolv.conf");
    resolv = h.ok() ? *h : "";
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(sb->dir, "resolv.conf"), resolv));

  // /dev/shm shared by the pod's containers.
  if (sb->host_ipc) {
    sb->shm_path = "/dev/shm";
  } else {
    std::string shm = JoinPath(sb->dir, "shm");
    RETURN_IF_ERROR(MkdirAll(shm, 0755));
    if (mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") != 0) {
      return ErrnoStatus(errno, "mount tmpfs for sandbox /dev/shm at " + shm);
    }
    sb->shm_path = shm;
  }

  // Pod cgroup.
  std::string parent = cfg.linux().cgroup_parent();
  if (parent.empty()) parent = "/berth/" + sb->id;
  if (!absl::StartsWith(parent, "/")) parent = "/" + parent;
  sb->cgroup_path = opts_.cgroup_root + parent;
  auto mounts = HostCgroupMounts();
  ASSIGN_OR_RETURN(auto leaves, CreateCgroup(mounts, sb->cgroup_path));

  // Infra process.
  InfraRequest ir;
  ir.net = !sb->host_network;
  ir.ipc = !sb->host_ipc;
  ir.uts = !sb->host_network;
  ir.pid = nso.pid() == v1::POD;
  ir.hostname = sb->host_network ? "" : hostname;
  for (const auto& leaf : leaves) ir.cgroup_procs_files.push_back(JoinPath(leaf, "cgroup.procs"));
  ASSIGN_OR_RETURN(PodUsernsMaps userns, PodUserns(cfg));
  ir.uid_map = userns.uid_map;
  ir.gid_map = userns.gid_map;
  ASSIGN_OR_RETURN(sb->pause_pid, deps_.infra->Start(ir));

  // Network.
  if (!sb->host_network) {
    sb->netns_path = JoinPath(JoinPath(opts_.state_dir, "netns"), sb->id);
    RETURN_IF_ERROR(deps_.infra->BindNetns(sb->pause_pid, sb->netns_path));
    cni::AttachRequest ar = CniAttachRequest(*sb);
    std::vector<std::pair<std::string, std::string>> annotations(cfg.annotations().begin(),
                                                                 cfg.annotations().end());
    {
      absl::MutexLock l(&mu_);
      ar.ip_range_subnets = pod_cidrs_;
    }
    ASSIGN_OR_RETURN(ar.bandwidth, cni::BandwidthFromAnnotations(annotations));
    sb->network_attached = true;  // so teardown runs DEL even after a partial ADD
    ASSIGN_OR_RETURN(cni::AttachResult res, deps_.network->Add(ar));
    if (!res.ips.empty()) {
      sb->ip = res.ips[0];
      sb->additional_ips.assign(res.ips.begin() + 1, res.ips.end());
    }
  }
  absl::MutexLock l(&mu_);
  sb->state = v1::SANDBOX_READY;
  sb->created = true;
  return SaveSandbox(*sb);
}

void Runtime::TeardownSandbox(SandboxRec* sb) {
  const auto& cfg = sb->config;
  if (sb->network_attached && !sb->netns_path.empty()) {
    // The same arguments as ADD (portmap's DEL needs the port mappings to remove its rules).
    cni::AttachRequest ar = CniAttachRequest(*sb);
    ar.netns_path = PathExists(sb->netns_path) ? sb->netns_path : "";
    std::vector<std::pair<std::string, std::string>> annotations(cfg.annotations().begin(),
                                                                 cfg.annotations().end());
    ar.bandwidth = cni::BandwidthFromAnnotations(annotations).value_or(cni::Bandwidth{});
    absl::Status s = deps_.network->Del(ar);
    if (!s.ok()) {
      LOG(WARNING) << "runtime: sandbox " << sb->id << ": CNI DEL: " << s;
    } else {
      sb->network_attached = false;
    }
  }
  if (sb->pause_pid > 0) {
    absl::Status s = deps_.infra->Stop(sb->pause_pid);
    if (!s.ok()) {
      LOG(WARNING) << "runtime: sandbox " << sb->id << ": stop pause: " << s;
    } else {
      sb->pause_pid = 0;
    }
  }
  if (!sb->netns_path.empty()) {
    absl::Status s = deps_.infra->UnbindNetns(sb->netns_path);
    if (!s.ok()) {
      LOG(WARNING) << "runtime: sandbox " << sb->id << ": unbind netns: " << s;
    }
  }
  if (!sb->shm_path.empty() && sb->shm_path != "/dev/shm") {
    Unmount(sb->shm_path).IgnoreError();
  }
}

absl::StatusOr<v1::UpdateRuntimeConfigResponse> Runtime::UpdateRuntimeConfig(
    const v1::UpdateRuntimeConfigRequest& req) {
  const std::string& cidr = req.runtime_config().network_config().pod_cidr();
  if (cidr.empty()) return v1::UpdateRuntimeConfigResponse();
  std::vector<std::string> cidrs = absl::StrSplit(cidr, ',', absl::SkipEmpty());
  absl::MutexLock l(&mu_);
  if (cidrs != pod_cidrs_) {
    LOG(INFO) << "runtime: pod CIDRs " << cidr;
  }
  pod_cidrs_ = std::move(cidrs);
  return v1::UpdateRuntimeConfigResponse();
}

absl::StatusOr<v1::StopPodSandboxResponse> Runtime::StopPodSandbox(const v1::StopPodSandboxRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb) return v1::StopPodSandboxResponse();  // CRI: idempotent, resources already reclaimed
  {
    absl::MutexLock ol(&sb->op_mu);
    RETURN_IF_ERROR(StopSandboxLocked(sb.get()));
  }
  EmitEvent(v1::CONTAINER_STOPPED_EVENT, sb->id, sb->id);
  return v1::StopPodSandboxResponse();
}

absl::Status Runtime::StopSandboxLocked(SandboxRec* sb) {
  if (!sb->created) return absl::OkStatus();
  std::vector<std::shared_ptr<ContainerRec>> cs;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, c] : containers_) {
      if (c->sandbox_id == sb->id) cs.push_back(c);
    }
  }
  for (auto& c : cs) {
    absl::MutexLock ol(&c->op_mu);
    RETURN_IF_ERROR(Annotate(StopContainerLocked(c.get(), 0), "stop pod sandbox " + sb->id));
  }
  TeardownSandbox(sb);
  absl::MutexLock l(&mu_);
  sb->state = v1::SANDBOX_NOTREADY;
  return SaveSandbox(*sb);
}

absl::StatusOr<v1::RemovePodSandboxResponse> Runtime::RemovePodSandbox(const v1::RemovePodSandboxRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb) return v1::RemovePodSandboxResponse();
  absl::MutexLock ol(&sb->op_mu);
  if (!sb->created) return v1::RemovePodSandboxResponse();
  RETURN_IF_ERROR(StopSandboxLocked(sb.get()));
  std::vector<std::shared_ptr<ContainerRec>> cs;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, c] : containers_) {
      if (c->sandbox_id == sb->id) cs.push_back(c);
    }
  }
  for (auto& c : cs) {
    absl::MutexLock ol2(&c->op_mu);
    RETURN_IF_ERROR(Annotate(RemoveContainerLocked(c.get()), "remove pod sandbox " + sb->id));
  }
  if (!sb->cgroup_path.empty()) {
    RETURN_IF_ERROR(Annotate(RemoveCgroup(HostCgroupMounts(), sb->cgroup_path),
                             "remove pod sandbox " + sb->id));
  }
  if (!sb->shm_path.empty() && sb->shm_path != "/dev/shm") RETURN_IF_ERROR(Unmount(sb->shm_path));
  RETURN_IF_ERROR(Annotate(RemoveAll(sb->dir), "remove pod sandbox " + sb->id));
  RETURN_IF_ERROR(deps_.db->Transaction([&]() -> absl::Status {
    return deps_.db->Exec("DELETE FROM runtime_sandboxes WHERE id = ?1", {sb->id});
  }));
  {
    absl::MutexLock l(&mu_);
    sandboxes_.erase(sb->id);
    sandbox_names_.erase(sb->name_key);
    sb->created = false;
    sb->create_status = absl::NotFoundError("pod sandbox " + sb->id + " was removed");
  }
  {
    absl::MutexLock l(&cpu_samples_mu_);
    cpu_samples_.erase("pod:" + sb->id);
  }
  EmitEvent(v1::CONTAINER_DELETED_EVENT, sb->id, sb->id);
  return v1::RemovePodSandboxResponse();
}

absl::StatusOr<v1::PodSandboxStatusResponse> Runtime::PodSandboxStatus(const v1::PodSandboxStatusRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb) return absl::NotFoundError("pod sandbox " + req.pod_sandbox_id() + " not found");
  v1::PodSandboxStatusResponse r;
  absl::MutexLock l(&mu_);
  if (!sb->created) return absl::NotFoundError("pod sandbox " + req.pod_sandbox_id() + " is being created");
  auto* st = r.mutable_status();
  st->set_id(sb->id);
  *st->mutable_metadata() = sb->config.metadata();
  st->set_state(sb->state);
  st->set_created_at(sb->created_at);
  st->mutable_network()->set_ip(sb->ip);
  for (const auto& ip : sb->additional_ips) st->mutable_network()->add_additional_ips()->set_ip(ip);
  *st->mutable_linux()->mutable_namespaces()->mutable_options() =
      sb->config.linux().security_context().namespace_options();
  *st->mutable_labels() = sb->config.labels();
  *st->mutable_annotations() = sb->config.annotations();
  st->set_runtime_handler(sb->runtime_handler);
  if (req.verbose()) {
    json info = {{"pid", sb->pause_pid},         {"netnsPath", sb->netns_path},
                 {"cgroupPath", sb->cgroup_path}, {"sandboxDir", sb->dir},
                 {"runtimeHandler", sb->runtime_handler}};
    (*r.mutable_info())["info"] = info.dump();
  }
  return r;
}

absl::StatusOr<v1::ListPodSandboxResponse> Runtime::ListPodSandbox(const v1::ListPodSandboxRequest& req) {
  v1::ListPodSandboxResponse r;
  const auto& f = req.filter();
  absl::MutexLock l(&mu_);
  for (const auto& [id, sb] : sandboxes_) {
    if (!sb->created) continue;
    if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
    if (f.has_state() && f.state().state() != sb->state) continue;
    if (!MatchLabels(sb->config.labels(), f.label_selector())) continue;
    auto* p = r.add_items();
    p->set_id(id);
    *p->mutable_metadata() = sb->config.metadata();
    p->set_state(sb->state);
    p->set_created_at(sb->created_at);
    *p->mutable_labels() = sb->config.labels();
    *p->mutable_annotations() = sb->config.annotations();
    p->set_runtime_handler(sb->runtime_handler);
  }
  return r;
}

// ---------------------------------------------------------------- containers

absl::StatusOr<v1::CreateContainerResponse> Runtime::CreateContainer(const v1::CreateContainerRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb) return absl::NotFoundError("CreateContainer: pod sandbox " + req.pod_sandbox_id() + " not found");
  const auto& md = req.config().metadata();
  if (md.name().empty()) return absl::InvalidArgumentError("CreateContainer: metadata.name is required");
  std::string key = ContainerNameKey(sb->id, md);
  // Shared hold of the sandbox: containers of one pod are created in parallel, but not while
  // the sandbox is being created, stopped or removed. Lock order: sandbox op_mu -> container
  // op_mu -> mu_.
  absl::ReaderMutexLock sbl(&sb->op_mu);
  auto c = std::make_shared<ContainerRec>();
  c->op_mu.Lock();  // before mu_: lock order is op_mu -> mu_
  {
    mu_.Lock();
    if (!sb->created || sb->state != v1::SANDBOX_READY) {
      mu_.Unlock();
      c->op_mu.Unlock();
      return absl::FailedPreconditionError("CreateContainer: pod sandbox " + sb->id + " is not ready");
    }
    auto it = container_names_.find(key);
    if (it != container_names_.end()) {
      auto existing = containers_.at(it->second);
      mu_.Unlock();
      c->op_mu.Unlock();
      absl::MutexLock ol(&existing->op_mu);
      if (!existing->created) return Annotate(existing->create_status, "CreateContainer " + key);
      v1::CreateContainerResponse r;
      r.set_container_id(existing->id);
      return r;
    }
    c->id = NewId();
    c->sandbox_id = sb->id;
    c->name_key = key;
    c->config = req.config();
    c->created_at = NowNs();
    c->runtime_handler = sb->runtime_handler;
    container_names_[key] = c->id;
    containers_[c->id] = c;
    mu_.Unlock();
  }
  absl::Status s = CreateContainerLocked(c.get(), sb.get());
  if (!s.ok()) {
    RuntimeOf(*c)->Delete(c->id).IgnoreError();
    if (!c->rootfs.empty()) Unmount(c->rootfs).IgnoreError();
    if (!c->bundle.empty()) RemoveAll(c->bundle).IgnoreError();
    unlink(JoinPath(ExitDir(), c->id).c_str());
    c->create_status = s;
    {
      absl::MutexLock l(&mu_);
      containers_.erase(c->id);
      container_names_.erase(key);
    }
    c->op_mu.Unlock();
    return Annotate(s, "CreateContainer " + md.name() + " in pod sandbox " + sb->id);
  }
  c->op_mu.Unlock();
  EmitEvent(v1::CONTAINER_CREATED_EVENT, c->id, c->sandbox_id);
  v1::CreateContainerResponse r;
  r.set_container_id(c->id);
  return r;
}

absl::Status Runtime::CreateContainerLocked(ContainerRec* c, SandboxRec* sb) {
  const auto& cfg = c->config;
  c->image_name = cfg.image().image();
  ASSIGN_OR_RETURN(image::ResolvedImage img, deps_.images->Resolve(c->image_name));
  c->image_id = img.id;
  c->image_ref = !img.repo_digests.empty() ? img.repo_digests[0] : img.id;
  c->stop_signal = img.config.stop_signal;
  c->bundle = JoinPath(JoinPath(opts_.root_dir, "containers"), c->id);
  c->rootfs = JoinPath(c->bundle, "rootfs");
  std::string upper = JoinPath(c->bundle, "upper"), work = JoinPath(c->bundle, "work");
  for (const auto& d : {c->rootfs, upper, work}) RETURN_IF_ERROR(MkdirAll(d, 0755));
  if (img.layer_dirs.empty()) return absl::FailedPreconditionError("image " + img.id + " has no layers");
  std::vector<std::string> lower(img.layer_dirs.rbegin(), img.layer_dirs.rend());
  PodUsernsMaps userns;
  pid_t pause_pid = 0;
  {
    absl::MutexLock l(&mu_);
    userns = PodUserns(sb->config).value_or(PodUsernsMaps{});
    pause_pid = sb->pause_pid;
  }
  // A user-namespaced pod: the layers are seen through idmapped mounts (under
  // <bundle>/idmap/<n>, detached again once the overlay holds them) and the upper dir is owned
  // by the pod's root, so the image's root-owned files are root's inside the pod.
  std::vector<std::string> idmapped;
  auto detach_idmapped = [&idmapped]() {
    for (const auto& d : idmapped) Unmount(d).IgnoreError();
  };
  if (userns.enabled()) {
    if (pause_pid <= 0) return absl::FailedPreconditionError("pod sandbox " + sb->id + " has no infra process");
    const std::string ns = absl::StrCat("/proc/", pause_pid, "/ns/user");
    for (size_t i = 0; i < lower.size(); ++i) {
      std::string d = JoinPath(JoinPath(c->bundle, "idmap"), std::to_string(i));
      RETURN_IF_ERROR(MkdirAll(d, 0700));
      absl::Status s = IdmapMount(lower[i], d, ns);
      if (!s.ok()) {
        detach_idmapped();
        return s;
      }
      idmapped.push_back(d);
      lower[i] = d;
    }
    for (const auto& d : {upper, work}) {
      if (chown(d.c_str(), userns.host_uid, userns.host_gid) != 0) {
        int e = errno;
        detach_idmapped();
        return ErrnoStatus(e, "chown " + d);
      }
    }
  }
  std::string data = absl::StrCat("lowerdir=", absl::StrJoin(lower, ":"), ",upperdir=", upper, ",workdir=", work);
  int mrc = mount("overlay", c->rootfs.c_str(), "overlay", 0, data.c_str());
  int merr = errno;
  detach_idmapped();  // the overlay keeps its own references to the layers
  if (mrc != 0) return ErrnoStatus(merr, "mount overlay rootfs at " + c->rootfs);
  // CRI mounts: kubelet normally creates the host paths; create missing ones like containerd.
  for (const auto& m : cfg.mounts()) {
    if (!m.host_path().empty() && !PathExists(m.host_path())) RETURN_IF_ERROR(MkdirAll(m.host_path(), 0755));
  }
  SpecInput in;
  in.container_id = c->id;
  in.config = &cfg;
  in.image = &img;
  in.image_name = c->image_name;
  in.rootfs = c->rootfs;
  {
    absl::MutexLock l(&mu_);
    in.sandbox.id = sb->id;
    in.sandbox.pause_pid = sb->pause_pid;
    in.sandbox.netns_path = sb->netns_path;
    in.sandbox.host_network = sb->host_network;
    in.sandbox.host_ipc = sb->host_ipc;
    in.sandbox.pid_mode_pod = sb->config.linux().security_context().namespace_options().pid() == v1::POD;
    in.sandbox.hostname = sb->config.hostname();
    in.sandbox.hosts_path = JoinPath(sb->dir, "hosts");
    in.sandbox.hostname_path = JoinPath(sb->dir, "hostname");
    in.sandbox.resolv_conf_path = JoinPath(sb->dir, "resolv.conf");
    in.sandbox.shm_path = sb->shm_path;
    in.sandbox.sandbox_name = sb->config.metadata().name();
    in.sandbox.sandbox_namespace = sb->config.metadata().namespace_();
    in.sandbox.sandbox_uid = sb->config.metadata().uid();
    in.sandbox.sysctls.insert(sb->config.linux().sysctls().begin(), sb->config.linux().sysctls().end());
    in.sandbox.userns = userns;
    const auto& pid_ns = cfg.linux().security_context().namespace_options();
    if (pid_ns.pid() == v1::TARGET) {
      // The target must be a running container of the same sandbox (as containerd).
      auto t = containers_.find(pid_ns.target_id());
      if (t == containers_.end() || t->second->sandbox_id != sb->id) {
        return absl::NotFoundError(absl::StrCat("CreateContainer: PID namespace target container ",
                                                pid_ns.target_id(), " not found in pod sandbox ", sb->id));
      }
      if (t->second->state != v1::CONTAINER_RUNNING || t->second->pid <= 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("CreateContainer: PID namespace target container ", pid_ns.target_id(), " is not running"));
      }
      in.target_pid = t->second->pid;
    }
    c->cgroups_path = sb->cgroup_path + "/" + c->id;
    if (!sb->config.log_directory().empty() && !cfg.log_path().empty()) {
      c->log_path = JoinPath(sb->config.log_directory(), cfg.log_path());
    }
  }
  in.cgroups_path = c->cgroups_path;
  in.passwd = ReadFile(JoinPath(c->rootfs, "etc/passwd")).value_or("");
  in.group = ReadFile(JoinPath(c->rootfs, "etc/group")).value_or("");
  in.current_oom_score_adj = current_oom_score_adj_;
  in.cap_bounding = cap_bounding_;
  ASSIGN_OR_RETURN(json spec, GenerateSpec(in));
  if (const json& u = spec["process"]["user"]; u.is_object()) {
    c->user_known = true;
    c->uid = u.value("uid", int64_t{0});
    c->gid = u.value("gid", int64_t{0});
    c->supplemental_groups = u.value("additionalGids", std::vector<int64_t>{});
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(c->bundle, "config.json"), spec.dump(2)));
  if (!c->log_path.empty()) {
    std::string dir = c->log_path.substr(0, c->log_path.rfind('/'));
    if (!dir.empty()) RETURN_IF_ERROR(MkdirAll(dir, 0755));
  }
  oci::CreateOptions co;
  co.id = c->id;
  co.bundle = c->bundle;
  co.log_path = c->log_path;
  co.exit_dir = ExitDir();
  co.stdin_open = cfg.stdin();
  co.stdin_once = cfg.stdin_once();
  co.tty = cfg.tty();
  ASSIGN_OR_RETURN(oci::CreateResult cr, RuntimeOf(*c)->Create(co));
  absl::MutexLock l(&mu_);
  c->pid = cr.pid;
  c->created = true;
  if (c->state != v1::CONTAINER_EXITED) c->state = v1::CONTAINER_CREATED;
  return SaveContainer(*c);
}

absl::StatusOr<v1::StartContainerResponse> Runtime::StartContainer(const v1::StartContainerRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c) return absl::NotFoundError("StartContainer: container " + req.container_id() + " not found");
  absl::MutexLock ol(&c->op_mu);
  {
    absl::MutexLock l(&mu_);
    if (!c->created) return absl::NotFoundError("StartContainer: container " + c->id + " not found");
    if (c->state != v1::CONTAINER_CREATED) {
      return absl::FailedPreconditionError(
          absl::StrCat("StartContainer: container ", c->id, " is in state ", v1::ContainerState_Name(c->state),
                       ", not CONTAINER_CREATED"));
    }
  }
  RETURN_IF_ERROR(Annotate(RuntimeOf(*c)->Start(c->id), "StartContainer " + c->id));
  {
    absl::MutexLock l(&mu_);
    c->started_at = NowNs();
    if (c->state == v1::CONTAINER_CREATED) c->state = v1::CONTAINER_RUNNING;
    if (c->finished_at != 0 && c->finished_at < c->started_at) c->finished_at = c->started_at;
    RETURN_IF_ERROR(SaveContainer(*c));
  }
  EmitEvent(v1::CONTAINER_STARTED_EVENT, c->id, c->sandbox_id);
  return v1::StartContainerResponse();
}

absl::StatusOr<v1::StopContainerResponse> Runtime::StopContainer(const v1::StopContainerRequest& req) {
  auto c = FindContainer(req.container_id());
  // CRI: idempotent; a container that does not exist (any more) is stopped.
  if (!c) return v1::StopContainerResponse();
  absl::MutexLock ol(&c->op_mu);
  RETURN_IF_ERROR(StopContainerLocked(c.get(), req.timeout()));
  return v1::StopContainerResponse();
}

absl::Status Runtime::StopContainerLocked(ContainerRec* c, int64_t timeout_s) {
  v1::ContainerState state;
  {
    absl::MutexLock l(&mu_);
    if (!c->created) return absl::OkStatus();
    state = c->state;
  }
  if (state == v1::CONTAINER_EXITED || state == v1::CONTAINER_UNKNOWN) return absl::OkStatus();
  oci::OciRuntime* rt = RuntimeOf(*c);
  auto exited = [c]() { return c->state == v1::CONTAINER_EXITED; };
  if (state == v1::CONTAINER_RUNNING && timeout_s > 0) {
    int sig = CriSignal(c->config.stop_signal());
    if (sig == 0) sig = c->stop_signal.empty() ? SIGTERM : SignalNumber(c->stop_signal);
    RETURN_IF_ERROR(Annotate(rt->Kill(c->id, sig), "StopContainer " + c->id));
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&exited), absl::Seconds(timeout_s));
    if (c->state == v1::CONTAINER_EXITED) return absl::OkStatus();
  }
  RETURN_IF_ERROR(Annotate(rt->Kill(c->id, SIGKILL, /*all=*/true), "StopContainer " + c->id));
  if (state == v1::CONTAINER_CREATED) {
    // A never-started container has no exit to wait for from conmon in every case: ask runc.
    absl::MutexLock l(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&exited), absl::Seconds(5))) {
      c->state = v1::CONTAINER_EXITED;
      c->finished_at = NowNs();
      c->exit_code = 137;
      c->reason = "Error";
      RETURN_IF_ERROR(SaveContainer(*c));
    }
    return absl::OkStatus();
  }
  absl::MutexLock l(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&exited), absl::Minutes(2))) {
    return absl::DeadlineExceededError("StopContainer " + c->id + ": no exit within 2 minutes after SIGKILL");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::RemoveContainerResponse> Runtime::RemoveContainer(const v1::RemoveContainerRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c) return v1::RemoveContainerResponse();
  absl::MutexLock ol(&c->op_mu);
  RETURN_IF_ERROR(RemoveContainerLocked(c.get()));
  return v1::RemoveContainerResponse();
}

absl::Status Runtime::RemoveContainerLocked(ContainerRec* c) {
  {
    absl::MutexLock l(&mu_);
    if (!c->created) return absl::OkStatus();
  }
  RETURN_IF_ERROR(StopContainerLocked(c, 0));
  RETURN_IF_ERROR(Annotate(RuntimeOf(*c)->Delete(c->id), "RemoveContainer " + c->id));
  if (!c->rootfs.empty()) RETURN_IF_ERROR(Unmount(c->rootfs));
  if (!c->bundle.empty()) RETURN_IF_ERROR(Annotate(RemoveAll(c->bundle), "RemoveContainer " + c->id));
  unlink(JoinPath(ExitDir(), c->id).c_str());
  if (!c->cgroups_path.empty()) RemoveCgroup(HostCgroupMounts(), c->cgroups_path).IgnoreError();
  RETURN_IF_ERROR(deps_.db->Transaction([&]() -> absl::Status {
    return deps_.db->Exec("DELETE FROM runtime_containers WHERE id = ?1", {c->id});
  }));
  {
    absl::MutexLock l(&mu_);
    containers_.erase(c->id);
    container_names_.erase(c->name_key);
    c->created = false;
    c->create_status = absl::NotFoundError("container " + c->id + " was removed");
  }
  {
    absl::MutexLock l(&cpu_samples_mu_);
    cpu_samples_.erase(c->id);
  }
  EmitEvent(v1::CONTAINER_DELETED_EVENT, c->id, c->sandbox_id);
  return absl::OkStatus();
}

absl::StatusOr<v1::ListContainersResponse> Runtime::ListContainers(const v1::ListContainersRequest& req) {
  v1::ListContainersResponse r;
  const auto& f = req.filter();
  absl::MutexLock l(&mu_);
  for (const auto& [id, c] : containers_) {
    if (!c->created) continue;
    if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
    if (!f.pod_sandbox_id().empty() && !absl::StartsWith(c->sandbox_id, f.pod_sandbox_id())) continue;
    if (f.has_state() && f.state().state() != c->state) continue;
    if (!MatchLabels(c->config.labels(), f.label_selector())) continue;
    auto* x = r.add_containers();
    x->set_id(id);
    x->set_pod_sandbox_id(c->sandbox_id);
    *x->mutable_metadata() = c->config.metadata();
    x->mutable_image()->set_image(c->image_name);
    x->set_image_ref(c->image_ref);
    x->set_image_id(c->image_id);
    x->set_state(c->state);
    x->set_created_at(c->created_at);
    *x->mutable_labels() = c->config.labels();
    *x->mutable_annotations() = c->config.annotations();
  }
  return r;
}

absl::StatusOr<v1::ContainerStatusResponse> Runtime::ContainerStatus(const v1::ContainerStatusRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c) return absl::NotFoundError("ContainerStatus: container " + req.container_id() + " not found");
  v1::ContainerStatusResponse r;
  absl::MutexLock l(&mu_);
  if (!c->created) return absl::NotFoundError("ContainerStatus: container " + req.container_id() + " not found");
  auto* st = r.mutable_status();
  st->set_id(c->id);
  *st->mutable_metadata() = c->config.metadata();
  st->set_state(c->state);
  st->set_created_at(c->created_at);
  st->set_started_at(c->started_at);
  st->set_finished_at(c->finished_at);
  st->set_exit_code(c->exit_code);
  *st->mutable_image() = c->config.image();
  st->set_image_ref(c->image_ref);
  st->set_image_id(c->image_id);
  st->set_reason(c->reason);
  st->set_message(c->message);
  *st->mutable_labels() = c->config.labels();
  *st->mutable_annotations() = c->config.annotations();
  *st->mutable_mounts() = c->config.mounts();
  st->set_log_path(c->log_path);
  if (c->user_known) {
    auto* u = st->mutable_user()->mutable_linux();
    u->set_uid(c->uid);
    u->set_gid(c->gid);
    for (int64_t g : c->supplemental_groups) u->add_supplemental_groups(g);
  }
  *st->mutable_resources()->mutable_linux() = c->config.linux().resources();
  if (req.verbose()) {
    json info = {{"pid", c->pid},          {"sandboxID", c->sandbox_id}, {"bundle", c->bundle},
                 {"rootfs", c->rootfs},     {"cgroupsPath", c->cgroups_path},
                 {"cgroupPath", c->cgroups_path},
                 {"runtimeHandler", c->runtime_handler},
                 {"stdin", c->config.stdin()},    {"stdinOnce", c->config.stdin_once()}};
    (*r.mutable_info())["info"] = info.dump();
  }
  return r;
}

absl::StatusOr<v1::ExecSyncResponse> Runtime::ExecSync(const v1::ExecSyncRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c) return absl::NotFoundError("ExecSync: container " + req.container_id() + " not found");
  {
    absl::MutexLock l(&mu_);
    if (c->state != v1::CONTAINER_RUNNING) {
      return absl::FailedPreconditionError("ExecSync: container " + c->id + " is not running");
    }
  }
  std::vector<std::string> cmd(req.cmd().begin(), req.cmd().end());
  if (cmd.empty()) return absl::InvalidArgumentError("ExecSync: empty command");
  auto timeout = req.timeout() > 0 ? std::chrono::milliseconds(req.timeout() * 1000) : std::chrono::hours(24);
  ASSIGN_OR_RETURN(oci::ExecResult er, RuntimeOf(*c)->ExecSync(c->id, cmd, timeout));
  if (er.timed_out) {
    return absl::DeadlineExceededError(absl::StrCat("ExecSync in container ", c->id, ": command timed out after ",
                                                    req.timeout(), "s"));
  }
  v1::ExecSyncResponse r;
  r.set_stdout(er.stdout_data);
  r.set_stderr(er.stderr_data);
  r.set_exit_code(er.exit_code);
  return r;
}

absl::StatusOr<v1::UpdateContainerResourcesResponse> Runtime::UpdateContainerResources(
    const v1::UpdateContainerResourcesRequest& req) {
  auto c = FindContainer(req.container_id());
  if (!c) return absl::NotFoundError("UpdateContainerResources: container " + req.container_id() + " not found");
  absl::MutexLock ol(&c->op_mu);
  v1::LinuxContainerResources res = req.linux();
  res.set_oom_score_adj(0);  // not a cgroup setting
  json j = ResourcesJson(res);
  bool running;
  {
    absl::MutexLock l(&mu_);
    running = c->state == v1::CONTAINER_RUNNING || c->state == v1::CONTAINER_CREATED;
  }
  if (running) RETURN_IF_ERROR(Annotate(RuntimeOf(*c)->UpdateResources(c->id, j.dump()),
                                        "UpdateContainerResources " + c->id));
  absl::MutexLock l(&mu_);
  int64_t adj = c->config.linux().resources().oom_score_adj();
  *c->config.mutable_linux()->mutable_resources() = req.linux();
  c->config.mutable_linux()->mutable_resources()->set_oom_score_adj(adj);
  RETURN_IF_ERROR(SaveContainer(*c));
  return v1::UpdateContainerResourcesResponse();
}

// ---------------------------------------------------------------- exit monitor

void Runtime::HandleExit(const std::string& id) {
  std::shared_ptr<ContainerRec> c;
  {
    absl::MutexLock l(&mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return;
    c = it->second;
    if (c->state == v1::CONTAINER_EXITED) return;
  }
  auto code = oci::OciRuntime::ReadExitFile(ExitDir(), id);
  if (!code.ok()) {
    LOG(WARNING) << "runtime: exit file of container " << id << ": " << code.status();
    return;
  }
  struct stat st;
  int64_t finished = stat(JoinPath(ExitDir(), id).c_str(), &st) == 0
                         ? int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec
                         : NowNs();
  bool oom = SawOomKill(HostCgroupMounts(), c->cgroups_path);
  std::vector<std::function<void(const std::string&)>> cbs;
  {
    absl::MutexLock l(&mu_);
    if (c->state == v1::CONTAINER_EXITED) return;
    c->state = v1::CONTAINER_EXITED;
    c->exit_code = *code;
    c->finished_at = std::max(finished, c->started_at);
    c->reason = oom ? "OOMKilled" : (*code == 0 ? "Completed" : "Error");
    absl::Status s = SaveContainer(*c);
    if (!s.ok()) {
      LOG(ERROR) << "runtime: record exit of container " << id << ": " << s;
    }
    cbs = exit_cbs_;
  }
  LOG(INFO) << "runtime: container " << id << " exited with code " << *code;
  EmitEvent(v1::CONTAINER_STOPPED_EVENT, id, c->sandbox_id);
  for (auto& cb : cbs) cb(id);
}

void Runtime::MonitorLoop() {
  alignas(struct inotify_event) char buf[16384];
  for (;;) {
    struct pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LOG(ERROR) << "runtime: exit monitor poll: " << strerror(errno);
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    ssize_t len = read(inotify_fd_, buf, sizeof(buf));
    if (len <= 0) continue;
    for (char* p = buf; p < buf + len;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      if (ev->mask & IN_Q_OVERFLOW) {
        // Missed events: rescan the exit dir for known containers.
        auto names = ListDir(ExitDir());
        if (names.ok()) for (const auto& name : *names) HandleExit(name);
      } else if (ev->len > 0) {
        HandleExit(ev->name);
      }
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
}

}  // namespace berth::cri::runtime
