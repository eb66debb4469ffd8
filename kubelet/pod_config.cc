// PodManager: the CRI configs of a pod (upstream kuberuntime_sandbox.go and
// kuberuntime_container.go), its admission, container start and the pod status it reports.
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
#include "kubelet/pod_manager.h"
#include "kubelet/pod_manager_internal.h"
#include "kubelet/pod_util.h"
#include "kubelet/subpath.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

using namespace pod_internal;  // NOLINT(google-build-using-namespace): shared helpers

v1::PodSandboxConfig PodManager::MakeSandboxConfig(const api::Pod& pod, uint32_t attempt) {
  SandboxConfigInputs in;
  in.log_root = opts_.log_root;
  in.cgroup_root = opts_.cgroup_root;
  in.cluster_dns = opts_.cluster_dns;
  in.cluster_domain = opts_.cluster_domain;
  if (auto data = ReadFile(opts_.resolv_conf); data.ok()) in.host_dns = ParseResolvConf(*data);
  if (pod.spec.host_network) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof(buf) - 1) == 0) in.node_hostname = buf;
  }
  SandboxConfigResult r = MakePodSandboxConfig(pod, attempt, in);
  if (r.missing_cluster_dns) {
    Event(pod, "Warning", "MissingClusterDNS", MissingClusterDnsMessage(pod));
  }
  return std::move(r.config);
}

std::optional<absl::Duration> PodManager::ActiveDeadlineLeft(const api::Pod& pod,
                                                             const PodState& state) {
  if (!pod.spec.active_deadline_seconds) return std::nullopt;
  std::optional<absl::Time> started;
  if (std::string ours = state.last_status.value("startTime", std::string()); !ours.empty()) {
    started = ParseRfc3339(ours);
  } else {
    started = pod.status.start_time;
  }
  if (!started) return std::nullopt;
  return *started + absl::Seconds(*pod.spec.active_deadline_seconds) - opts_.clock();
}

std::optional<std::pair<std::string, std::string>> PodManager::AdmitPod(const api::Pod& pod) {
  const api::PodSpec& spec = pod.spec;
  const bool host_network = spec.host_network;
  const bool host_ipc = spec.host_ipc;
  // The OS the pod asks for (upstream lifecycle predicate admission): its
  // kubernetes.io/os node selector, then spec.os.name, must be this node's (linux).
  if (auto os = spec.node_selector.find("kubernetes.io/os");
      os != spec.node_selector.end() && os->second != "linux") {
    return std::make_pair(
        std::string("PodOSSelectorNodeLabelDoesNotMatch"),
        std::string(
            "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"));
  }
  if (spec.os && !spec.os->empty() && *spec.os != "linux") {
    return std::make_pair(std::string("PodOSNotSupported"),
                          std::string("Failed to admit pod as the OS field doesn't match node OS"));
  }
  for (const api::Sysctl& sc : spec.security_context.sysctls) {
    absl::Status s = sysctls_.Validate(sc.name, host_network, host_ipc);
    if (!s.ok())
      return std::make_pair(std::string(kSysctlForbiddenReason),
                            absl::StrCat("forbidden sysctl: ", s.message()));
  }
  return std::nullopt;
}

void PodManager::Event(const Json& pod, const std::string& type, const std::string& reason,
                       const std::string& message, const std::string& container) {
  if (!opts_.record_event) return;
  opts_.record_event(pod, type, reason, message,
                     container.empty() ? "" : absl::StrCat("spec.containers{", container, "}"));
}

void PodManager::Event(const api::Pod& pod, const std::string& type, const std::string& reason,
                       const std::string& message, const std::string& container) {
  if (!opts_.record_event) return;
  // involvedObject.fieldPath names the list the container is in (as upstream's ref).
  std::string list = "containers";
  for (const auto& [l, containers] :
       {std::pair{"initContainers", &pod.spec.init_containers},
        std::pair{"ephemeralContainers", &pod.spec.ephemeral_containers}}) {
    for (const api::Container& c : *containers) {
      if (c.name == container) list = l;
    }
  }
  opts_.record_event(pod.raw, type, reason, message,
                     container.empty() ? "" : absl::StrCat("spec.", list, "{", container, "}"));
}

absl::StatusOr<std::string> PodManager::StartContainer(
    PodState* state, const api::Pod& pod, const api::Container& c, int restart_count,
    const std::string& sandbox_id, const v1::PodSandboxConfig& sandbox, const std::string& pod_ip,
    const std::map<std::string, MountedVolume>& volumes, const std::string& pid_target_id) {
  const std::string& name = c.name;
  const std::string& uid = pod.metadata.uid;
  const std::string& ns = pod.metadata.namespace_;
  // The container's config (upstream generateContainerConfig) fails with
  // CreateContainerConfigError.
  auto config_error = [&](const absl::Status& s) {
    state->waiting[name] = {"CreateContainerConfigError", std::string(s.message())};
    return s;
  };
  auto phase_start = std::chrono::steady_clock::now();
  EnsureImageResult image = puller_.EnsureImage(pod, c, sandbox, &state->image_pulls);
  phase_start = ImageTime(state, phase_start);
  for (absl::Duration d : image.retry_after) EnqueueAfter(uid, d);
  if (!image.image_ref.ok()) {
    state->waiting[name] = {image.reason, std::string(image.image_ref.status().message())};
    return image.image_ref.status();
  }
  ContainerConfigInputs in;
  in.image_ref = *image.image_ref;
  in.restart_count = restart_count;

  // Environment: service links first, the container's own variables override them.
  EnvInputs env;
  if (opts_.service_env != nullptr) {
    auto services = opts_.service_env->For(ns, pod.spec.enable_service_links);
    if (!services.ok()) return config_error(services.status());
    env.service_env.assign(services->begin(), services->end());
  }
  env.lookup = [&](const std::string& kind, const std::string& obj) {
    return api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/", kind, "/", obj));
  };
  env.pod_ip = pod_ip;
  env.node_ip = opts_.node_ip;
  bool needs_node = false;
  for (const api::EnvVar& e : c.env) needs_node |= e.value_from && e.value_from->resource_field_ref;
  if (needs_node) env.node = NodeAllocatable(opts_.root_dir);
  auto env_vars = MakeContainerEnv(pod, c, env);
  if (!env_vars.ok()) return config_error(env_vars.status());
  in.env = *std::move(env_vars);

  // Mounts: volumes, then /etc/hosts unless a volume covers it, then the termination-log file.
  // subPaths: created if missing and bind-mounted from an opened fd (kubelet/subpath.h), so a
  // container swapping a path for a symlink cannot make the runtime mount the host.
  const std::string pod_dir = volumes_.PodDir(uid);
  auto prepare_subpath = [&](const std::string& host, const std::string& sub,
                             const std::string& volume_name,
                             int index) -> absl::StatusOr<std::string> {
    struct stat st;
    if (::lstat(JoinPath(host, sub).c_str(), &st) != 0 && errno == ENOENT) {
      // As the kubelet's makeMounts: a missing subPath is a directory with the volume's mode.
      struct stat vst;
      int mode = ::stat(host.c_str(), &vst) == 0 ? (vst.st_mode & 07777) : 0755;
      RETURN_IF_ERROR(SafeMakeDir(host, sub, mode));
    }
    return PrepareSafeSubPath({host, sub, pod_dir, volume_name, name, index});
  };
  auto mounts = MakeVolumeMounts(c, volumes, in.env, prepare_subpath);
  if (!mounts.ok()) return config_error(mounts.status());
  in.mounts = *std::move(mounts);
  bool hosts_mounted = false;
  for (const auto& m : in.mounts) hosts_mounted |= m.container_path() == "/etc/hosts";
  if (!hosts_mounted) {
    std::string host_hosts;
    if (pod.spec.host_network) {
      if (auto h = ReadFile("/etc/hosts"); h.ok()) host_hosts = *h;
    }
    std::string file = JoinPath(volumes_.PodDir(uid), "etc-hosts");
    absl::Status s = MkdirAll(volumes_.PodDir(uid), 0750);
    if (s.ok()) {
      s = WriteFileAtomic(file, MakeHostsFile(pod, pod_ip, host_hosts, opts_.cluster_domain), 0644);
    }
    if (s.ok()) {
      in.hosts_path = file;
    } else {
      LOG(WARNING) << "pod " << pod.Key() << ": no /etc/hosts file: " << s.message();
    }
  }
  {
    std::string dir = JoinPath(JoinPath(volumes_.PodDir(uid), "containers"), name);
    std::string file = JoinPath(dir, absl::StrCat("termination-log-", restart_count));
    absl::Status s = MkdirAll(dir, 0755);
    if (s.ok()) s = WriteFileAtomic(file, "", 0666);
    // Writable by any user of the container, whatever berth's umask (upstream chmods 0666).
    if (s.ok() && ::chmod(file.c_str(), 0666) != 0)
      s = ErrnoStatus(errno, absl::StrCat("chmod ", file));
    if (s.ok()) {
      in.termination_log_path = file;
    } else {
      LOG(WARNING) << "pod " << pod.Key() << " container " << name
                   << ": no termination-log file: " << s.message();
    }
  }

  // Resources (upstream kuberuntime_container_linux.go, cgroupfs semantics).
  in.resources = MakeContainerResources(
      pod, c, PodQosClass(pod) == "Burstable" ? NodeMemoryBytes() : 0, CurrentOomScoreAdj());

  // Security context: the container's fields win over the pod's.
  SecurityContextInputs sec;
  sec.pid_target_id = pid_target_id;
  for (const auto& [_, mv] : volumes) {
    if (mv.supplemental_gid) sec.volume_gids.push_back(*mv.supplemental_gid);
  }
  auto seccomp =
      ResolveSeccompProfile(pod, c, opts_.seccomp_default, JoinPath(opts_.root_dir, "seccomp"));
  if (seccomp.ok()) sec.seccomp = *seccomp;
  in.security_context = MakeContainerSecurityContext(pod, c, sec);
  // runAsNonRoot (upstream verifyRunAsNonRoot): the user the container will run as, from
  // runAsUser or else the image's config, must be known and not 0.
  if (RunAsNonRoot(pod, c)) {
    std::optional<v1::Image> image_status;
    if (!in.security_context.has_run_as_user()) {
      v1::ImageStatusRequest ireq;
      ireq.mutable_image()->set_image(in.image_ref);
      auto ist = images_->ImageStatus(ireq);
      if (ist.ok() && ist->has_image()) image_status = ist->image();
    }
    absl::Status v =
        VerifyRunAsNonRoot(pod, c, in.security_context, image_status ? &*image_status : nullptr);
    if (!v.ok()) return config_error(v);
  }
  if (!seccomp.ok()) return config_error(seccomp.status());
  v1::ContainerConfig cfg = MakeContainerConfig(pod, c, in);

  v1::CreateContainerRequest creq;
  creq.set_pod_sandbox_id(sandbox_id);
  *creq.mutable_config() = cfg;
  *creq.mutable_sandbox_config() = sandbox;
  Phase(*state, metrics::kPhaseContainerConfig, phase_start);
  phase_start = std::chrono::steady_clock::now();
  Phase(*state, metrics::kPhaseContainerConfig, phase_start);
  phase_start = std::chrono::steady_clock::now();
  auto created = runtime_->CreateContainer(creq);
  Phase(*state, metrics::kPhaseContainerCreate, phase_start);
  Phase(*state, metrics::kPhaseContainerCreate, phase_start);
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
  phase_start = std::chrono::steady_clock::now();
  phase_start = std::chrono::steady_clock::now();
  auto started = runtime_->StartContainer(sreq);
  Phase(*state, metrics::kPhaseContainerStart, phase_start);
  Phase(*state, metrics::kPhaseContainerStart, phase_start);
  if (!started.ok()) {
    state->waiting[name] = {"RunContainerError", std::string(started.status().message())};
    Event(pod, "Warning", "Failed", absl::StrCat("Error: ", started.status().message()), name);
    return Annotate(started.status(), absl::StrCat("StartContainer ", name, " (", id, ")"));
  }
  LOG(INFO) << "pod " << pod.Key() << ": started container " << name << " (" << id << ")";
  Event(pod, "Normal", "Started", absl::StrCat("Started container ", name), name);
  // lifecycle.postStart: the container counts as started only once it returns (upstream
  // startContainer step 4); a failure kills the container.
  if (c.lifecycle && c.lifecycle->post_start) {
    absl::Status h = hooks_->Run(c, LifecycleHook::kPostStart, id, pod_ip, kPostStartTimeout);
    if (!h.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": postStart hook of " << name << ": " << h.message();
      Event(pod, "Warning", "FailedPostStartHook", std::string(h.message()), name);
      absl::Status k = StopOne(pod, name, id, pod.spec.termination_grace_period_seconds, pod_ip);
      if (!k.ok()) {
        LOG(WARNING) << "pod " << pod.Key() << ": " << k.message();
      }
      state->waiting[name] = {"PostStartHookError", std::string(h.message())};
      EnqueueAfter(uid, absl::ZeroDuration());  // restarted per the restart policy and back-off
      return absl::UnknownError(absl::StrCat("PostStartHookError: ", h.message()));
    }
  }
  return id;
}

void PodManager::UpdateStatus(const std::string& uid, PodState* state, const api::Pod& pod,
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
  if (old.empty()) old = pod.raw.value("status", Json::object());
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
  if (!state->start_recorded && status.value("phase", "") == "Running") {
    // kubelet_pod_start_duration_seconds: first seen -> the status says Running (once).
    state->start_recorded = true;
    absl::MutexLock l(&mu_);
    if (km_ && km_->pod_start) {
      km_->pod_start->WithLabelValues({})->Observe(metrics::SecondsSince(state->first_seen));
    }
  }
  state->last_status = status;
  status_.SetPodStatus(pod, status);
}

}  // namespace berth::kubelet
