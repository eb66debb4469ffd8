#include "kubelet/container_config.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "kubelet/sysctl.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

namespace {

constexpr int64_t kMinShares = 2;
constexpr int64_t kCpuPeriod = 100000;
constexpr int64_t kMinQuota = 1000;

// The pod-level groups of its sandbox and every container: supplementalGroups, then fsGroup
// (the kubelet's determineEffectiveSecurityContext).
template <typename SecurityContext>
void AddPodSupplementalGroups(const api::PodSecurityContext& psc, SecurityContext* sc) {
  for (int64_t g : psc.supplemental_groups) sc->add_supplemental_groups(g);
  if (psc.fs_group) sc->add_supplemental_groups(*psc.fs_group);
}

v1::NamespaceOption NamespaceOptions(const api::Pod& pod) {
  const api::PodSpec& spec = pod.spec;
  v1::NamespaceOption ns;
  ns.set_network(spec.host_network ? v1::NODE : v1::POD);
  ns.set_ipc(spec.host_ipc ? v1::NODE : v1::POD);
  if (spec.host_pid) {
    ns.set_pid(v1::NODE);
  } else {
    ns.set_pid(spec.share_process_namespace.value_or(false) ? v1::POD : v1::CONTAINER);
  }
  return ns;
}

std::map<std::string, std::string> EnvMap(
    const std::vector<std::pair<std::string, std::string>>& env) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : env) m[k] = v;
  return m;
}

}  // namespace

ResolvConf ParseResolvConf(const std::string& content) {
  ResolvConf rc;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.empty() || f[0][0] == '#' || f[0][0] == ';') continue;
    if (f[0] == "nameserver" && f.size() > 1) rc.servers.push_back(f[1]);
    if (f[0] == "search" || f[0] == "domain") rc.searches.assign(f.begin() + 1, f.end());
    if (f[0] == "options") rc.options.insert(rc.options.end(), f.begin() + 1, f.end());
  }
  return rc;
}

std::pair<std::string, std::string> PodHostnameAndDomain(const api::Pod& pod,
                                                         const std::string& cluster_domain) {
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
    domain = absl::StrCat(spec.subdomain, ".", pod.metadata.namespace_, ".svc.", cluster_domain);
  }
  return {truncate(hostname), domain};
}

std::string MissingClusterDnsMessage(const api::Pod& pod) {
  return absl::StrCat("pod: \"", pod.metadata.name, "_", pod.metadata.namespace_, "(",
                      pod.metadata.uid,
                      ")\". kubelet does not have ClusterDNS IP "
                      "configured and cannot create Pod using \"ClusterFirst\" policy. Falling "
                      "back to \"Default\" policy.");
}

SandboxConfigResult MakePodSandboxConfig(const api::Pod& pod, uint32_t attempt,
                                         const SandboxConfigInputs& in) {
  SandboxConfigResult out;
  const api::PodSpec& spec = pod.spec;
  const std::string& name = pod.metadata.name;
  const std::string& ns = pod.metadata.namespace_;
  const std::string& uid = pod.metadata.uid;
  const bool host_network = spec.host_network;
  v1::PodSandboxConfig& cfg = out.config;
  auto* md = cfg.mutable_metadata();
  md->set_name(name);
  md->set_namespace_(ns);
  md->set_uid(uid);
  md->set_attempt(attempt);

  auto [hostname, domain] = PodHostnameAndDomain(pod, in.cluster_domain);
  if (host_network) {
    if (!in.node_hostname.empty()) hostname = in.node_hostname;
  } else if (spec.set_hostname_as_fqdn && !domain.empty()) {
    hostname = absl::StrCat(hostname, ".", domain);  // the kernel's hostname is the FQDN
  }
  cfg.set_hostname(hostname);
  cfg.set_log_directory(JoinPath(in.log_root, absl::StrCat(ns, "_", name, "_", uid)));

  // DNS, as the kubelet's dns.Configurer.GetPodDNS.
  std::string policy = spec.dns_policy;
  if (policy == "ClusterFirstWithHostNet")
    policy = "ClusterFirst";
  else if (policy == "ClusterFirst" && host_network)
    policy = "Default";
  std::vector<std::string> servers, searches, options;
  if (policy != "None") {
    servers = in.host_dns.servers;
    searches = in.host_dns.searches;
    options = in.host_dns.options;
  }
  if (policy == "ClusterFirst") {
    if (!in.cluster_dns.empty()) {
      servers = in.cluster_dns;
      if (const std::string& d = in.cluster_domain; !d.empty()) {
        searches.insert(searches.begin(),
                        {absl::StrCat(ns, ".svc.", d), absl::StrCat("svc.", d), d});
      }
      options = {"ndots:5"};
    } else {
      out.missing_cluster_dns = true;
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
  linux->set_cgroup_parent(PodCgroupParent(pod, in.cgroup_root));
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
  return out;
}

std::string MakeHostsFile(const api::Pod& pod, const std::string& pod_ip,
                          const std::string& host_hosts, const std::string& cluster_domain) {
  std::string hosts;
  if (pod.spec.host_network) {
    hosts = absl::StrCat("# Kubernetes-managed hosts file (host network).\n", host_hosts);
  } else {
    hosts =
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
        "ip6-loopback\n"
        "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-"
        "allrouters\n";
    auto [host_name, host_domain] = PodHostnameAndDomain(pod, cluster_domain);
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
  return hosts;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> MakeContainerEnv(
    const api::Pod& pod, const api::Container& c, const EnvInputs& in) {
  const std::string& ns = pod.metadata.namespace_;
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
  auto lookup = [&](const std::string& kind, const std::string& name) -> absl::StatusOr<Json> {
    if (!in.lookup) return absl::NotFoundError(absl::StrCat(kind, " ", ns, "/", name));
    return in.lookup(kind, name);
  };
  auto get_key = [&](const std::string& kind,
                     const api::KeySelector& ref) -> absl::StatusOr<std::optional<std::string>> {
    const std::string& obj = ref.name;
    const std::string& key = ref.key;
    auto r = lookup(kind, obj);
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
    if (kind == "secrets") {
      std::string decoded;
      absl::Base64Unescape(v, &decoded);
      v = decoded;
    }
    return std::optional<std::string>(v);
  };
  absl::Status env_error;
  for (const auto& [k, v] : in.service_env) set_env(k, v);
  for (const api::EnvFromSource& from : c.env_from) {
    const std::string& prefix = from.prefix;
    bool is_secret = from.secret_ref.has_value();
    const api::LocalRef ref =
        is_secret ? *from.secret_ref : from.config_map_ref.value_or(api::LocalRef{});
    auto r = lookup(is_secret ? "secrets" : "configmaps", ref.name);
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
      auto v = ResolveFieldRef(pod, vf.field_ref->field_path, in.pod_ip, in.node_ip);
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
          target.empty() || target == c.name ? &c : api::FindContainer(pod, target);
      if (of == nullptr) {
        env_error =
            absl::InvalidArgumentError(absl::StrCat("env ", k, ": no container \"", target, "\""));
        continue;
      }
      auto v = ResolveResourceFieldRef(*of, ref, in.node);
      if (!v.ok()) {
        env_error = v.status();
        continue;
      }
      set_env(k, *v);
    } else {
      LOG(WARNING) << "pod " << pod.Key() << " container " << c.name << ": env " << k
                   << ": unsupported valueFrom skipped";
    }
  }
  if (!env_error.ok()) return env_error;
  return env;
}

absl::StatusOr<std::vector<v1::Mount>> MakeVolumeMounts(
    const api::Container& c, const std::map<std::string, MountedVolume>& volumes,
    const std::vector<std::pair<std::string, std::string>>& env,
    const std::function<absl::StatusOr<std::string>(
        const std::string& host_path, const std::string& sub_path, const std::string& volume_name,
        int mount_index)>& prepare_subpath) {
  std::vector<v1::Mount> mounts;
  std::map<std::string, std::string> env_map = EnvMap(env);
  for (size_t index = 0; index < c.volume_mounts.size(); ++index) {
    const api::VolumeMount& vm = c.volume_mounts[index];
    const std::string& vname = vm.name;
    auto v = volumes.find(vname);
    if (v == volumes.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("volumeMount \"", vname, "\" refers to a volume that is not set up"));
    }
    v1::Mount m;
    m.set_container_path(vm.mount_path);
    std::string host = v->second.host_path;
    std::string sub = vm.sub_path;
    // subPathExpr: $(VAR) references to the container's env, expanded as the kubelet's
    // expandSubpath does.
    if (!vm.sub_path_expr.empty()) sub = ExpandEnvRefs(vm.sub_path_expr, env_map);
    if (!sub.empty()) {
      absl::StatusOr<std::string> resolved =
          prepare_subpath(host, sub, vname, static_cast<int>(index));
      if (!resolved.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("failed to prepare subPath for volumeMount \"", vname,
                         "\" of container \"", c.name, "\": ", resolved.status().message()));
      }
      host = *resolved;
    }
    m.set_host_path(host);
    m.set_readonly(vm.read_only || v->second.read_only);
    const std::string prop = vm.mount_propagation.value_or("");
    if (prop == "HostToContainer") m.set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
    if (prop == "Bidirectional") m.set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

v1::LinuxContainerResources MakeContainerResources(const api::Pod& pod, const api::Container& c,
                                                   int64_t node_memory_bytes,
                                                   int64_t min_oom_score_adj) {
  v1::LinuxContainerResources res;
  auto resource = [&](const api::ResourceList& list, const char* r) -> std::optional<Quantity> {
    auto it = list.find(r);
    if (it == list.end()) return std::nullopt;
    return it->second;
  };
  auto cpu_req = resource(c.resources.requests, "cpu");
  auto cpu_lim = resource(c.resources.limits, "cpu");
  if (!cpu_req) cpu_req = cpu_lim;
  int64_t milli_req = cpu_req ? cpu_req->MilliValue() : 0;
  res.set_cpu_shares(std::max(kMinShares, milli_req * 1024 / 1000));
  if (cpu_lim) {
    int64_t milli_lim = cpu_lim->MilliValue();
    res.set_cpu_period(kCpuPeriod);
    res.set_cpu_quota(std::max(kMinQuota, milli_lim * kCpuPeriod / 1000));
  }
  if (auto mem = resource(c.resources.limits, "memory"))
    res.set_memory_limit_in_bytes(mem->Value());
  std::string qos = PodQosClass(pod);
  int64_t oom = 1000;
  if (qos == "Guaranteed") {
    oom = -997;
  } else if (qos == "Burstable") {
    auto mem_req = resource(c.resources.requests, "memory");
    int64_t req = mem_req ? mem_req->Value() : 0;
    oom = node_memory_bytes > 0 ? 1000 - (1000 * req) / node_memory_bytes : 999;
    if (oom < 3) oom = 3;
    if (oom == 1000) oom = 999;
  }
  // Without CAP_SYS_RESOURCE a lower value than ours fails in runc: clamp (as containerd's
  // restrict_oom_score_adj does).
  res.set_oom_score_adj(std::max(oom, min_oom_score_adj));
  return res;
}

v1::LinuxContainerSecurityContext MakeContainerSecurityContext(const api::Pod& pod,
                                                               const api::Container& c,
                                                               const SecurityContextInputs& in) {
  v1::LinuxContainerSecurityContext out;
  v1::LinuxContainerSecurityContext* sc = &out;
  *sc->mutable_namespace_options() = NamespaceOptions(pod);
  if (!in.pid_target_id.empty() && sc->namespace_options().pid() == v1::CONTAINER) {
    sc->mutable_namespace_options()->set_pid(v1::TARGET);
    sc->mutable_namespace_options()->set_target_id(in.pid_target_id);
  }
  const api::PodSecurityContext& psc = pod.spec.security_context;
  const api::SecurityContext csc = c.security_context.value_or(api::SecurityContext{});
  // The container's field wins over the pod's (determineEffectiveSecurityContext).
  if (auto u = csc.run_as_user ? csc.run_as_user : psc.run_as_user)
    sc->mutable_run_as_user()->set_value(*u);
  if (auto g = csc.run_as_group ? csc.run_as_group : psc.run_as_group)
    sc->mutable_run_as_group()->set_value(*g);
  AddPodSupplementalGroups(psc, sc);
  // Then the GIDs of the pod's PersistentVolumes, each once (GetExtraSupplementalGroupsForPod).
  for (int64_t gid : in.volume_gids) {
    const auto& groups = sc->supplemental_groups();
    if (std::find(groups.begin(), groups.end(), gid) == groups.end()) {
      sc->add_supplemental_groups(gid);
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
  switch (in.seccomp.type) {
    case SeccompProfile::Type::kUnconfined:
      sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
      break;
    case SeccompProfile::Type::kRuntimeDefault:
      sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
      break;
    case SeccompProfile::Type::kLocalhost:
      sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
      sc->mutable_seccomp()->set_localhost_ref(in.seccomp.localhost_path);
      break;
  }
  // TODO: apparmor, SELinux, procMount, masked/readonly paths.
  return out;
}

bool RunAsNonRoot(const api::Pod& pod, const api::Container& c) {
  const std::optional<bool> own =
      c.security_context ? c.security_context->run_as_non_root : std::nullopt;
  return (own ? own : pod.spec.security_context.run_as_non_root).value_or(false);
}

absl::Status VerifyRunAsNonRoot(const api::Pod& pod, const api::Container& c,
                                const v1::LinuxContainerSecurityContext& sc,
                                const v1::Image* image) {
  const std::string where =
      absl::StrCat("(pod: \"", pod.metadata.name, "_", pod.metadata.namespace_, "(",
                   pod.metadata.uid, ")\", container: ", c.name, ")");
  std::string violation;
  if (sc.has_run_as_user()) {
    if (sc.run_as_user().value() == 0)
      violation = absl::StrCat("container's runAsUser breaks non-root policy ", where);
  } else if (image != nullptr) {
    if (image->has_uid()) {
      if (image->uid().value() == 0)
        violation = absl::StrCat("container has runAsNonRoot and image will run as root ", where);
    } else if (!image->username().empty()) {
      violation = absl::StrCat("container has runAsNonRoot and image has non-numeric user (",
                               image->username(), "), cannot verify user is non-root ", where);
    } else {
      violation = absl::StrCat("container has runAsNonRoot and image will run as root ", where);
    }
  }
  if (violation.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(violation);
}

v1::ContainerConfig MakeContainerConfig(const api::Pod& pod, const api::Container& c,
                                        const ContainerConfigInputs& in) {
  const std::string& name = c.name;
  v1::ContainerConfig cfg;
  cfg.mutable_metadata()->set_name(name);
  cfg.mutable_metadata()->set_attempt(static_cast<uint32_t>(in.restart_count));
  cfg.mutable_image()->set_image(in.image_ref);
  cfg.mutable_image()->set_user_specified_image(c.image);
  for (const auto& [k, v] : in.env) {
    auto* kv = cfg.add_envs();
    kv->set_key(k);
    kv->set_value(v);
  }
  std::map<std::string, std::string> env_map = EnvMap(in.env);
  for (const std::string& a : c.command) cfg.add_command(ExpandEnvRefs(a, env_map));
  for (const std::string& a : c.args) cfg.add_args(ExpandEnvRefs(a, env_map));
  cfg.set_working_dir(c.working_dir);
  for (const v1::Mount& m : in.mounts) *cfg.add_mounts() = m;
  if (!in.hosts_path.empty()) {
    auto* m = cfg.add_mounts();
    m->set_container_path("/etc/hosts");
    m->set_host_path(in.hosts_path);
  }
  const std::string& term_path = c.termination_message_path;
  if (!in.termination_log_path.empty()) {
    auto* m = cfg.add_mounts();
    m->set_container_path(term_path);
    m->set_host_path(in.termination_log_path);
  }
  cfg.set_log_path(absl::StrCat(name, "/", in.restart_count, ".log"));
  cfg.set_stdin(c.stdin);
  cfg.set_stdin_once(c.stdin_once);
  cfg.set_tty(c.tty);
  auto& labels = *cfg.mutable_labels();
  labels[kContainerNameLabel] = name;
  labels[kPodNameLabel] = pod.metadata.name;
  labels[kPodNamespaceLabel] = pod.metadata.namespace_;
  labels[kPodUidLabel] = pod.metadata.uid;
  auto& annotations = *cfg.mutable_annotations();
  annotations[kRestartCountAnnotation] = std::to_string(in.restart_count);
  annotations[kTerminationMessagePathAnnotation] = term_path;
  annotations[kTerminationMessagePolicyAnnotation] = c.termination_message_policy;
  annotations[kGracePeriodAnnotation] = std::to_string(pod.spec.termination_grace_period_seconds);
  *cfg.mutable_linux()->mutable_resources() = in.resources;
  *cfg.mutable_linux()->mutable_security_context() = in.security_context;
  return cfg;
}

}  // namespace berth::kubelet
