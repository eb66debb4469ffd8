// Runtime: construction, Start, lookups shared by the handler files, and the runtime-level
// RPCs (Version, Status, RuntimeConfig, UpdateRuntimeConfig). The RPCs of each resource live
// in their own file: sandbox_run.cc, sandbox_stop.cc, sandbox_status.cc, container_create.cc,
// container_lifecycle.cc; restart recovery in recovery.cc; container exits in exit_monitor.cc.

#include "cri/runtime/runtime.h"

#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "cri/runtime/runtime_records.h"
#include "metrics/fs_usage.h"
#include "nlohmann/json.hpp"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::cri::runtime {
using nlohmann::json;

namespace {

// Recursive read-only mounts need Linux >= 5.12 (mount_setattr) and an OCI runtime whose
// `features` lists the "rro" mount option (runc >= 1.1).
bool DetectRecursiveReadOnly(const std::string& runtime_path) {
  struct utsname u;
  if (uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (sscanf(u.release, "%d.%d", &major, &minor) != 2 || major < 5 || (major == 5 && minor < 12))
    return false;
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

const char kRuntimeSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS runtime_sandboxes (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runtime_containers (id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, data TEXT NOT NULL);
)sql";

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
    return absl::InvalidArgumentError(
        "Runtime: db, images, network and oci dependencies are required");
  }
  for (const auto& d :
       {JoinPath(opts_.root_dir, "containers"), JoinPath(opts_.root_dir, "sandboxes"),
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

// ---------------------------------------------------------------- lookup

std::shared_ptr<Runtime::SandboxRec> Runtime::FindSandbox(const std::string& id) {
  if (id.empty()) return nullptr;
  absl::MutexLock l(&mu_);
  auto it = sandboxes_.find(id);
  if (it != sandboxes_.end()) return it->second;
  std::shared_ptr<SandboxRec> found;
  for (auto i = sandboxes_.lower_bound(id); i != sandboxes_.end() && absl::StartsWith(i->first, id);
       ++i) {
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
  for (auto i = containers_.lower_bound(id);
       i != containers_.end() && absl::StartsWith(i->first, id); ++i) {
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
    o.runtime_root =
        JoinPath(opts_.state_dir, "runtime-" + (handler.empty() ? "default" : handler));
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
    h->mutable_features()->set_recursive_read_only_mounts(rro_supported_ &&
                                                          bin == deps_.oci->options().runtime_path);
    h->mutable_features()->set_user_namespaces(true);
  }
  if (req.verbose()) {
    std::string pod_cidr;
    {
      absl::MutexLock l(&mu_);
      pod_cidr = absl::StrJoin(pod_cidrs_, ",");
    }
    json info = {{"rootDir", opts_.root_dir},
                 {"stateDir", opts_.state_dir},
                 {"cgroupRoot", opts_.cgroup_root},
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

}  // namespace berth::cri::runtime
