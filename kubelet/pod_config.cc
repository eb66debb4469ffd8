// PodManager: the CRI configs of a pod (upstream kuberuntime_sandbox.go and
// kuberuntime_container.go), its admission, image pulls, container start and the pod
// status it reports.
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

namespace berth::kubelet {

namespace v1 = cri::v1;

using namespace pod_internal;  // NOLINT(google-build-using-namespace): shared helpers

v1::PodSandboxConfig PodManager::MakeSandboxConfig(const api::Pod& pod, uint32_t attempt) {
  const api::PodSpec& spec = pod.spec;
  const std::string& name = pod.metadata.name;
  const std::string& ns = pod.metadata.namespace_;
  const std::string& uid = pod.metadata.uid;
  const bool host_network = spec.host_network;
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
  } else if (spec.set_hostname_as_fqdn && !domain.empty()) {
    hostname = absl::StrCat(hostname, ".", domain);  // the kernel's hostname is the FQDN
  }
  cfg.set_hostname(hostname);
  cfg.set_log_directory(JoinPath(opts_.log_root, absl::StrCat(ns, "_", name, "_", uid)));

  // DNS, as the kubelet's dns.Configurer.GetPodDNS: the host's resolv.conf as the base;
  // ClusterFirst replaces servers and options with the cluster DNS and puts the cluster
  // search domains first (or falls back to Default with a MissingClusterDNS event when no
  // cluster DNS is configured); None starts empty; the pod's dnsConfig is appended; the
  // result is cut to the API's limits (3 servers, 32 searches, 2048 characters).
  std::string policy = spec.dns_policy;
  if (policy == "ClusterFirstWithHostNet")
    policy = "ClusterFirst";
  else if (policy == "ClusterFirst" && host_network)
    policy = "Default";
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
        searches.insert(searches.begin(),
                        {absl::StrCat(ns, ".svc.", d), absl::StrCat("svc.", d), d});
      }
      options = {"ndots:5"};
    } else {
      Event(pod, "Warning", "MissingClusterDNS",
            absl::StrCat("pod: \"", name, "_", ns, "(", uid,
                         ")\". kubelet does not have ClusterDNS IP "
                         "configured and cannot create Pod using \"ClusterFirst\" policy. Falling "
                         "back to \"Default\" policy."));
    }
  }
  auto append_unique = [](std::vector<std::string>* list, const std::string& v) {
    if (std::find(list->begin(), list->end(), v) == list->end()) list->push_back(v);
  };
  if (const auto& dc = spec.dns_config) {
    servers.insert(servers.end(), dc->nameservers.begin(), dc->nameservers.end());
    searches.insert(searches.end(), dc->searches.begin(), dc->searches.end());
    for (const api::PodDnsConfigOption& o : dc->options) {
      const std::string& opt_name = o.name;
      std::string opt = opt_name;
      if (o.value) opt += ":" + *o.value;
      // A pod option replaces the base option of the same name (mergeDNSOptions).
      std::erase_if(options,
                    [&](const std::string& e) { return e.substr(0, e.find(':')) == opt_name; });
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
  while (!unique_searches.empty() && absl::StrJoin(unique_searches, " ").size() > 2048)
    unique_searches.pop_back();
  auto* dns = cfg.mutable_dns_config();
  for (const auto& v : unique_servers) dns->add_servers(v);
  for (const auto& v : unique_searches) dns->add_searches(v);
  for (const auto& v : options) dns->add_options(v);

  for (const api::Container& c : spec.containers) {
    for (const api::ContainerPort& p : c.ports) {
      if (p.host_port <= 0) continue;
      auto* pm = cfg.add_port_mappings();
      const std::string& proto = p.protocol;
      pm->set_protocol(proto == "UDP" ? v1::UDP : proto == "SCTP" ? v1::SCTP : v1::TCP);
      pm->set_container_port(p.container_port);
      pm->set_host_port(p.host_port);
      pm->set_host_ip(p.host_ip);
    }
  }

  auto& labels = *cfg.mutable_labels();
  for (const auto& [k, v] : pod.metadata.labels) labels[k] = v;
  labels[kPodNameLabel] = name;
  labels[kPodNamespaceLabel] = ns;
  labels[kPodUidLabel] = uid;
  auto& annotations = *cfg.mutable_annotations();
  for (const auto& [k, v] : pod.metadata.annotations) annotations[k] = v;

  auto* linux = cfg.mutable_linux();
  linux->set_cgroup_parent(PodCgroupParent(pod, opts_.cgroup_root));
  auto* sc = linux->mutable_security_context();
  *sc->mutable_namespace_options() = NamespaceOptions(pod);
  const api::PodSecurityContext& psc = spec.security_context;
  if (psc.run_as_user) sc->mutable_run_as_user()->set_value(*psc.run_as_user);
  if (psc.run_as_group) sc->mutable_run_as_group()->set_value(*psc.run_as_group);
  AddPodSupplementalGroups(psc, sc);
  for (const api::Sysctl& s : psc.sysctls)
    (*linux->mutable_sysctls())[NormalizeSysctlName(s.name)] = s.value;
  for (const auto* list : {&spec.init_containers, &spec.containers}) {
    for (const api::Container& c : *list) {
      if (c.security_context && c.security_context->privileged.value_or(false))
        sc->set_privileged(true);
    }
  }
  // TODO: seccomp/apparmor profiles, SELinux options, pod overhead/resources.
  return cfg;
}

std::pair<std::string, std::string> PodManager::PodHostnameAndDomain(const api::Pod& pod) const {
  const api::PodSpec& spec = pod.spec;
  auto truncate = [](std::string h) {
    if (h.size() > 63) h.resize(63);
    while (!h.empty() && (h.back() == '-' || h.back() == '.')) h.pop_back();
    return h;
  };
  if (spec.hostname_override) return {truncate(*spec.hostname_override), ""};
  std::string hostname = spec.hostname;
  if (hostname.empty()) hostname = pod.metadata.name;
  std::string domain;
  if (!spec.subdomain.empty()) {
    domain =
        absl::StrCat(spec.subdomain, ".", pod.metadata.namespace_, ".svc.", opts_.cluster_domain);
  }
  return {truncate(hostname), domain};
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

DockerKeyring PodManager::PullSecretsKeyring(const api::Pod& pod) {
  DockerKeyring keyring;
  const std::string& ns = pod.metadata.namespace_;
  std::vector<std::string> missing;
  for (const std::string& name : pod.spec.image_pull_secrets) {
    if (name.empty()) continue;
    auto secret = api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/secrets/", name));
    absl::Status s = secret.ok() ? keyring.AddSecret(*secret) : secret.status();
    if (!s.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": image pull secret " << name << ": " << s;
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

absl::StatusOr<std::string> PodManager::EnsureImage(PodState* state, const api::Pod& pod,
                                                    const api::Container& c,
                                                    const v1::PodSandboxConfig& sandbox,
                                                    std::string* reason) {
  const std::string& image = c.image;
  const std::string& policy = c.image_pull_policy;
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
    const std::string& cname = c.name;
    Event(pod, "Normal", "BackOff", absl::StrCat("Back-off pulling image \"", image, "\""), cname);
    Event(pod, "Warning", "Failed", "Error: ImagePullBackOff", cname);
    EnqueueAfter(pod.metadata.uid, b->second.until - now);
    return absl::UnavailableError(absl::StrCat(
        "Back-off pulling image \"", image, "\": ErrImagePull: ", state->last_pull_error[image]));
  }
  v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  *req.mutable_sandbox_config() = sandbox;
  LOG(INFO) << "pod " << pod.Key() << ": pulling image " << image;
  const std::string& cname = c.name;
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
    if (b != state->pull_backoff.end())
      d = std::min(b->second.duration * 2, opts_.image_backoff_max);
    state->pull_backoff[image] = Backoff{now + d, d};
    std::string msg =
        absl::StrCat("failed to pull image \"", image, "\": ", pulled.status().message());
    state->last_pull_error[image] = msg;
    // As kubelet: ErrImagePull stays until the next sync, which (half-way through the
    // back-off) reports ImagePullBackOff; the pull is retried when the back-off ends.
    EnqueueAfter(pod.metadata.uid, d / 2);
    EnqueueAfter(pod.metadata.uid, d);
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
    PodState* state, const api::Pod& pod, const api::Container& c, int restart_count,
    const std::string& sandbox_id, const v1::PodSandboxConfig& sandbox, const std::string& pod_ip,
    const std::map<std::string, MountedVolume>& volumes, const std::string& pid_target_id) {
  const std::string& name = c.name;
  const std::string& uid = pod.metadata.uid;
  const std::string& ns = pod.metadata.namespace_;
  std::string reason;
  auto phase_start = std::chrono::steady_clock::now();
  auto image_ref = EnsureImage(state, pod, c, sandbox, &reason);
  phase_start = ImageTime(state, phase_start);
  if (!image_ref.ok()) {
    state->waiting[name] = {reason, std::string(image_ref.status().message())};
    return image_ref.status();
  }
  v1::ContainerConfig cfg;
  cfg.mutable_metadata()->set_name(name);
  cfg.mutable_metadata()->set_attempt(static_cast<uint32_t>(restart_count));
  cfg.mutable_image()->set_image(*image_ref);
  cfg.mutable_image()->set_user_specified_image(c.image);

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
  auto get_key = [&](const char* kind,
                     const api::KeySelector& ref) -> absl::StatusOr<std::optional<std::string>> {
    const std::string& obj = ref.name;
    const std::string& key = ref.key;
    auto r = api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/", kind, "/", obj));
    if (!r.ok()) {
      if (ref.optional && absl::IsNotFound(r.status())) return std::optional<std::string>();
      return Annotate(r.status(), absl::StrCat("env from ", kind, " ", ns, "/", obj));
    }
    std::string v = GetString(*r, absl::StrCat("data.", key));
    if (v.empty() && !(*r)["data"].contains(key)) {
      if (ref.optional) return std::optional<std::string>();
      return absl::NotFoundError(
          absl::StrCat(kind, " ", ns, "/", obj, " has no key \"", key, "\""));
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
    auto services = opts_.service_env->For(ns, pod.spec.enable_service_links);
    if (!services.ok()) {
      state->waiting[name] = {"CreateContainerConfigError",
                              std::string(services.status().message())};
      return services.status();
    }
    for (const auto& [k, v] : *services) set_env(k, v);
  }
  for (const api::EnvFromSource& from : c.env_from) {
    const std::string& prefix = from.prefix;
    bool is_secret = from.secret_ref.has_value();
    const api::LocalRef ref =
        is_secret ? *from.secret_ref : from.config_map_ref.value_or(api::LocalRef{});
    std::string kind = is_secret ? "secrets" : "configmaps";
    auto r = api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/", kind, "/", ref.name));
    if (!r.ok()) {
      if (!(ref.optional && absl::IsNotFound(r.status()))) env_error = r.status();
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
  for (const api::EnvVar& e : c.env) {
    const std::string& k = e.name;
    if (!e.value_from) {
      // An empty value arrives as no "value" at all (omitempty): the variable is set, empty.
      set_env(k, ExpandEnvRefs(e.value, env_map));
      continue;
    }
    const api::EnvVarSource& vf = *e.value_from;
    if (vf.field_ref) {
      auto v = ResolveFieldRef(pod, vf.field_ref->field_path, pod_ip, opts_.node_ip);
      if (!v.ok()) {
        env_error = v.status();
        continue;
      }
      set_env(k, *v);
    } else if (vf.config_map_key_ref || vf.secret_key_ref) {
      bool is_secret = vf.secret_key_ref.has_value();
      auto v = get_key(is_secret ? "secrets" : "configmaps",
                       is_secret ? *vf.secret_key_ref : *vf.config_map_key_ref);
      if (!v.ok()) {
        env_error = v.status();
        continue;
      }
      if (v->has_value()) set_env(k, **v);
    } else if (vf.resource_field_ref) {
      // The named container's resources (this one when no name is given).
      const api::ResourceFieldSelector& ref = *vf.resource_field_ref;
      const std::string& target = ref.container_name;
      const api::Container* of =
          target.empty() || target == name ? &c : api::FindContainer(pod, target);
      if (of == nullptr) {
        env_error =
            absl::InvalidArgumentError(absl::StrCat("env ", k, ": no container \"", target, "\""));
        continue;
      }
      auto v = ResolveResourceFieldRef(*of, ref, NodeAllocatable(opts_.root_dir));
      if (!v.ok()) {
        env_error = v.status();
        continue;
      }
      set_env(k, *v);
    } else {
      LOG(WARNING) << "pod " << pod.Key() << " container " << name << ": env " << k
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
  for (const std::string& a : c.command) cfg.add_command(ExpandEnvRefs(a, env_map));
  for (const std::string& a : c.args) cfg.add_args(ExpandEnvRefs(a, env_map));
  cfg.set_working_dir(c.working_dir);

  // Mounts: volumes, then the termination-log file.
  for (const api::VolumeMount& vm : c.volume_mounts) {
    const std::string& vname = vm.name;
    auto v = volumes.find(vname);
    if (v == volumes.end()) {
      std::string msg =
          absl::StrCat("volumeMount \"", vname, "\" refers to a volume that is not set up");
      state->waiting[name] = {"CreateContainerConfigError", msg};
      return absl::FailedPreconditionError(msg);
    }
    auto* m = cfg.add_mounts();
    m->set_container_path(vm.mount_path);
    std::string host = v->second.host_path;
    std::string sub = vm.sub_path;
    // subPathExpr: $(VAR) references to the container's env, expanded as the kubelet's
    // expandSubpath does.
    if (!vm.sub_path_expr.empty()) sub = ExpandEnvRefs(vm.sub_path_expr, env_map);
    if (!sub.empty()) {
      absl::StatusOr<std::string> resolved = PrepareSubPath(host, sub);
      if (!resolved.ok()) {
        std::string msg =
            absl::StrCat("failed to prepare subPath for volumeMount \"", vname,
                         "\" of container \"", name, "\": ", resolved.status().message());
        state->waiting[name] = {"CreateContainerConfigError", msg};
        return absl::FailedPreconditionError(msg);
      }
      host = *resolved;
    }
    m->set_host_path(host);
    m->set_readonly(vm.read_only || v->second.read_only);
    const std::string prop = vm.mount_propagation.value_or("");
    if (prop == "HostToContainer") m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
    if (prop == "Bidirectional") m->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  }
  // The kubelet-managed /etc/hosts (upstream makeHostsMount), unless a volume covers it.
  bool hosts_mounted = false;
  for (const auto& m : cfg.mounts()) hosts_mounted |= m.container_path() == "/etc/hosts";
  if (!hosts_mounted) {
    std::string hosts;
    if (pod.spec.host_network) {
      auto host = ReadFile("/etc/hosts");
      hosts =
          absl::StrCat("# Kubernetes-managed hosts file (host network).\n", host.ok() ? *host : "");
    } else {
      hosts =
          "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
          "ip6-loopback\n"
          "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-"
          "allrouters\n";
      auto [host_name, host_domain] = PodHostnameAndDomain(pod);
      if (!pod_ip.empty()) {
        if (host_domain.empty()) {
          absl::StrAppend(&hosts, pod_ip, "\t", host_name, "\n");
        } else {
          absl::StrAppend(&hosts, pod_ip, "\t", host_name, ".", host_domain, "\t", host_name, "\n");
        }
      }
    }
    const std::vector<api::HostAlias>& aliases = pod.spec.host_aliases;
    if (!aliases.empty()) absl::StrAppend(&hosts, "\n# Entries added by HostAliases.\n");
    for (const api::HostAlias& alias : aliases) {
      std::string line = alias.ip;
      for (const std::string& h : alias.hostnames) absl::StrAppend(&line, "\t", h);
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
      LOG(WARNING) << "pod " << pod.Key() << ": no /etc/hosts file: " << s.message();
    }
  }
  const std::string& term_path = c.termination_message_path;
  {
    std::string dir = JoinPath(JoinPath(volumes_.PodDir(uid), "containers"), name);
    std::string file = JoinPath(dir, absl::StrCat("termination-log-", restart_count));
    absl::Status s = MkdirAll(dir, 0755);
    if (s.ok()) s = WriteFileAtomic(file, "", 0666);
    // Writable by any user of the container, whatever berth's umask (upstream chmods 0666).
    if (s.ok() && ::chmod(file.c_str(), 0666) != 0)
      s = ErrnoStatus(errno, absl::StrCat("chmod ", file));
    if (s.ok()) {
      auto* m = cfg.add_mounts();
      m->set_container_path(term_path);
      m->set_host_path(file);
    } else {
      LOG(WARNING) << "pod " << pod.Key() << " container " << name
                   << ": no termination-log file: " << s.message();
    }
  }
  cfg.set_log_path(absl::StrCat(name, "/", restart_count, ".log"));
  cfg.set_stdin(c.stdin);
  cfg.set_stdin_once(c.stdin_once);
  cfg.set_tty(c.tty);
  auto& labels = *cfg.mutable_labels();
  labels[kContainerNameLabel] = name;
  labels[kPodNameLabel] = pod.metadata.name;
  labels[kPodNamespaceLabel] = ns;
  labels[kPodUidLabel] = uid;
  auto& annotations = *cfg.mutable_annotations();
  annotations[kRestartCountAnnotation] = std::to_string(restart_count);
  annotations[kTerminationMessagePathAnnotation] = term_path;
  annotations[kTerminationMessagePolicyAnnotation] = c.termination_message_policy;
  annotations[kGracePeriodAnnotation] = std::to_string(pod.spec.termination_grace_period_seconds);

  // Resources (upstream kuberuntime_container_linux.go, cgroupfs semantics).
  auto* res = cfg.mutable_linux()->mutable_resources();
  auto resource = [&](const api::ResourceList& list, const char* r) -> std::optional<Quantity> {
    auto it = list.find(r);
    if (it == list.end()) return std::nullopt;
    return it->second;
  };
  auto cpu_req = resource(c.resources.requests, "cpu");
  auto cpu_lim = resource(c.resources.limits, "cpu");
  if (!cpu_req) cpu_req = cpu_lim;
  int64_t milli_req = cpu_req ? cpu_req->MilliValue() : 0;
  res->set_cpu_shares(std::max(kMinShares, milli_req * 1024 / 1000));
  if (cpu_lim) {
    int64_t milli_lim = cpu_lim->MilliValue();
    res->set_cpu_period(kCpuPeriod);
    res->set_cpu_quota(std::max(kMinQuota, milli_lim * kCpuPeriod / 1000));
  }
  if (auto mem = resource(c.resources.limits, "memory"))
    res->set_memory_limit_in_bytes(mem->Value());
  std::string qos = PodQosClass(pod);
  int64_t oom = 1000;
  if (qos == "Guaranteed") {
    oom = -997;
  } else if (qos == "Burstable") {
    int64_t cap = NodeMemoryBytes();
    auto mem_req = resource(c.resources.requests, "memory");
    int64_t req = mem_req ? mem_req->Value() : 0;
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
  const api::PodSecurityContext& psc = pod.spec.security_context;
  const api::SecurityContext csc = c.security_context.value_or(api::SecurityContext{});
  // The container's field wins over the pod's (determineEffectiveSecurityContext).
  if (auto u = csc.run_as_user ? csc.run_as_user : psc.run_as_user)
    sc->mutable_run_as_user()->set_value(*u);
  if (auto g = csc.run_as_group ? csc.run_as_group : psc.run_as_group)
    sc->mutable_run_as_group()->set_value(*g);
  // runAsNonRoot (upstream verifyRunAsNonRoot): the user the container will run as, from
  // runAsUser or else the image's config, must be known and not 0.
  if ((csc.run_as_non_root ? csc.run_as_non_root : psc.run_as_non_root).value_or(false)) {
    const std::string where = absl::StrCat("(pod: \"", pod.metadata.name, "_", ns, "(", uid,
                                           ")\", container: ", name, ")");
    std::string violation;
    if (sc->has_run_as_user()) {
      if (sc->run_as_user().value() == 0)
        violation = absl::StrCat("container's runAsUser breaks non-root policy ", where);
    } else {
      v1::ImageStatusRequest ireq;
      ireq.mutable_image()->set_image(*image_ref);
      auto ist = images_->ImageStatus(ireq);
      if (ist.ok() && ist->has_image()) {
        const v1::Image& img = ist->image();
        if (img.has_uid()) {
          if (img.uid().value() == 0)
            violation =
                absl::StrCat("container has runAsNonRoot and image will run as root ", where);
        } else if (!img.username().empty()) {
          violation = absl::StrCat("container has runAsNonRoot and image has non-numeric user (",
                                   img.username(), "), cannot verify user is non-root ", where);
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
  sc->set_privileged(csc.privileged.value_or(false));
  sc->set_readonly_rootfs(csc.read_only_root_filesystem.value_or(false));
  if (csc.allow_privilege_escalation == false) sc->set_no_new_privs(true);
  if (csc.capabilities) {
    for (const std::string& a : csc.capabilities->add)
      sc->mutable_capabilities()->add_add_capabilities(a);
    for (const std::string& d : csc.capabilities->drop)
      sc->mutable_capabilities()->add_drop_capabilities(d);
  }
  auto seccomp =
      ResolveSeccompProfile(pod, c, opts_.seccomp_default, JoinPath(opts_.root_dir, "seccomp"));
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
  Phase(*state, metrics::kPhaseContainerConfig, phase_start);
  phase_start = std::chrono::steady_clock::now();
  auto created = runtime_->CreateContainer(creq);
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
  auto started = runtime_->StartContainer(sreq);
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
