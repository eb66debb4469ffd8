// Pure builders of the CRI configs of a pod (upstream kuberuntime_sandbox.go
// generatePodSandboxConfig, kuberuntime_container.go generateContainerConfig and
// kuberuntime_container_linux.go, pkg/kubelet/network/dns GetPodDNS, the kubelet's
// managed /etc/hosts and its container environment). Everything the node contributes (its
// resolv.conf, hostname, memory, the services' variables, ConfigMaps and Secrets, prepared
// volumes) is an explicit input; no function here does I/O or reads a clock. Thread-safe.
//
// Example:
//   SandboxConfigResult sb = MakePodSandboxConfig(pod, attempt, {.cluster_dns = {"10.96.0.10"},
//                                                 .host_dns = ParseResolvConf(file)});
//   auto env = MakeContainerEnv(pod, c, env_inputs);            // CreateContainerConfigError
//   auto sc = MakeContainerSecurityContext(pod, c, {...});      // on error
//   v1::ContainerConfig cfg = MakeContainerConfig(pod, c, {.image_ref = ref, .env = *env, ...});
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cri/runtime_service.h"
#include "kubelet/api/pod.h"
#include "kubelet/pod_util.h"
#include "kubelet/volume_manager.h"

namespace berth::kubelet {

// The DNS part of a resolv.conf: nameserver lines, the last search (or domain) line, every
// options line.
struct ResolvConf {
  std::vector<std::string> servers, searches, options;
};

// Parses resolv.conf content; comments ('#', ';') and unknown lines are ignored.
ResolvConf ParseResolvConf(const std::string& content);

// The pod's hostname and domain (upstream GeneratePodHostNameAndDomain): spec.hostnameOverride
// alone when set; else spec.hostname or the pod name (at most 63 characters, no trailing '-'
// or '.'), with "<subdomain>.<namespace>.svc.<cluster_domain>" when spec.subdomain is set.
std::pair<std::string, std::string> PodHostnameAndDomain(const api::Pod& pod,
                                                         const std::string& cluster_domain);

// What the node contributes to a sandbox config.
struct SandboxConfigInputs {
  // Pod log directories: <log_root>/<namespace>_<name>_<uid>.
  std::string log_root = "/var/log/pods";
  // Cgroup root of pods (cgroupfs naming; QoS classes below it).
  std::string cgroup_root = "/kubepods";
  // --cluster-dns and --cluster-domain.
  std::vector<std::string> cluster_dns;
  std::string cluster_domain;
  // The node's resolv.conf (--resolv-conf), the base of Default and ClusterFirst DNS.
  ResolvConf host_dns;
  // The node's hostname: a host-network pod's hostname.
  std::string node_hostname;
};

struct SandboxConfigResult {
  cri::v1::PodSandboxConfig config;
  // A ClusterFirst pod fell back to Default because no cluster DNS is configured: the
  // kubelet records a MissingClusterDNS Warning event (see MissingClusterDnsMessage).
  bool missing_cluster_dns = false;
};

// The PodSandboxConfig of attempt `attempt` of `pod` (upstream generatePodSandboxConfig):
// metadata, hostname (the FQDN with setHostnameAsFQDN), log directory, DNS (GetPodDNS:
// ClusterFirst replaces servers and options with the cluster DNS and puts the cluster search
// domains first, None starts empty, the pod's dnsConfig is appended and merged, the result
// cut to 3 servers, 32 searches, 2048 characters), host ports, labels and annotations,
// cgroup parent, namespaces, pod-level user, groups, sysctls and privileged.
SandboxConfigResult MakePodSandboxConfig(const api::Pod& pod, uint32_t attempt,
                                         const SandboxConfigInputs& in);

// The message of the MissingClusterDNS event (upstream dns.go).
std::string MissingClusterDnsMessage(const api::Pod& pod);

// The kubelet-managed /etc/hosts of a pod (upstream managedHostsFileContent): the host's
// `host_hosts` under a header for a host-network pod; else localhost entries and the pod's
// IP with its hostname (FQDN first when it has a subdomain); then spec.hostAliases.
std::string MakeHostsFile(const api::Pod& pod, const std::string& pod_ip,
                          const std::string& host_hosts, const std::string& cluster_domain);

// What a container's environment is built from.
struct EnvInputs {
  // The service environment (service links, KUBERNETES_SERVICE_*), in order; set first, so
  // that the container's own variables override and may refer to them.
  std::vector<std::pair<std::string, std::string>> service_env;
  // Returns the object `kind` ("configmaps" or "secrets") named `name` in the pod's
  // namespace (an API GET); NotFound when it does not exist.
  std::function<absl::StatusOr<Json>(const std::string& kind, const std::string& name)> lookup;
  // status.podIP / status.hostIP for fieldRefs (not yet in the pod object).
  std::string pod_ip;
  std::string node_ip;
  // Node allocatable, the value of a resourceFieldRef to an unset limit.
  NodeResources node;
};

// The environment of container `c` (upstream makeEnvironmentVariables), in order: service
// variables, envFrom (prefix + key of each ConfigMap / Secret, Secrets base64-decoded), then
// env with $(VAR) expanded against earlier entries and valueFrom resolved (fieldRef,
// resourceFieldRef, configMapKeyRef, secretKeyRef; optional refs to missing objects or keys are
// skipped). A later entry of the same name replaces the value in place. Errors (the
// container's CreateContainerConfigError): a missing non-optional object or key, an
// unsupported fieldPath, a resourceFieldRef to an unknown container or resource; the last
// error is returned after every entry was tried.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> MakeContainerEnv(
    const api::Pod& pod, const api::Container& c, const EnvInputs& in);

// The volume mounts of container `c` (its volumeMounts over the pod's set-up volumes
// `volumes`, by volume name): read-only when the mount or the volume is, propagation
// HostToContainer / Bidirectional, subPath (or subPathExpr expanded against `env`) resolved
// by `prepare_subpath(volume_host_path, sub_path, volume_name, mount_index)` (which checks
// and prepares it on the host: kubelet/subpath.h; mount_index is the mount's index in the
// container's volumeMounts). Errors (CreateContainerConfigError): a mount of a volume that is not
// set up, a subPath that cannot be prepared.
absl::StatusOr<std::vector<cri::v1::Mount>> MakeVolumeMounts(
    const api::Container& c, const std::map<std::string, MountedVolume>& volumes,
    const std::vector<std::pair<std::string, std::string>>& env,
    const std::function<absl::StatusOr<std::string>(
        const std::string& host_path, const std::string& sub_path, const std::string& volume_name,
        int mount_index)>& prepare_subpath);

// The Linux resources of container `c` (upstream generateLinuxContainerResources, cgroupfs):
// CPU shares from the request (the limit when no request; at least 2), CFS quota over a
// 100 ms period from the limit (at least 1 ms), memory limit, and the OOM score adjustment
// of the pod's QoS class (Guaranteed -997, BestEffort 1000, Burstable 1000 - 1000 x request /
// `node_memory_bytes` in [3, 999]), raised to `min_oom_score_adj` (berth's own value: a lower
// one fails in runc without CAP_SYS_RESOURCE).
cri::v1::LinuxContainerResources MakeContainerResources(const api::Pod& pod,
                                                        const api::Container& c,
                                                        int64_t node_memory_bytes,
                                                        int64_t min_oom_score_adj);

// The inputs of a container's security context.
struct SecurityContextInputs {
  // An ephemeral container's target instance, whose PID namespace it joins (CRI TARGET)
  // when the pod shares none; "" otherwise.
  std::string pid_target_id;
  // Extra supplemental groups (the pod's PersistentVolumes' pv.beta.kubernetes.io/gid), each
  // added once after the pod's.
  std::vector<int64_t> volume_gids;
  // The resolved seccomp profile (ResolveSeccompProfile).
  SeccompProfile seccomp;
};

// The container's Linux security context (upstream determineEffectiveSecurityContext):
// namespaces, runAsUser / runAsGroup (the container's over the pod's), the pod's
// supplementalGroups and fsGroup, privileged, readOnlyRootFilesystem, no_new_privs when
// allowPrivilegeEscalation is false, capabilities, seccomp.
cri::v1::LinuxContainerSecurityContext MakeContainerSecurityContext(
    const api::Pod& pod, const api::Container& c, const SecurityContextInputs& in);

// Whether runAsNonRoot applies to `c` (its own field, else the pod's).
bool RunAsNonRoot(const api::Pod& pod, const api::Container& c);

// Upstream verifyRunAsNonRoot for a container with runAsNonRoot: an error naming the
// violation when the user it will run as is root or cannot be known to be non-root: its
// runAsUser in `sc`, else the image's user (`image`, the runtime's ImageStatus; nullptr when
// unknown: no verdict). Ok when the user is non-root.
absl::Status VerifyRunAsNonRoot(const api::Pod& pod, const api::Container& c,
                                const cri::v1::LinuxContainerSecurityContext& sc,
                                const cri::v1::Image* image);

// The rest of a ContainerConfig, resolved by the caller.
struct ContainerConfigInputs {
  std::string image_ref;                                 // the runtime's image ID (ImagePuller)
  int restart_count = 0;                                 // the instance's attempt
  std::vector<std::pair<std::string, std::string>> env;  // MakeContainerEnv
  // The volume mounts (host paths prepared, subPaths resolved), then /etc/hosts and the
  // termination-log file when not empty.
  std::vector<cri::v1::Mount> mounts;
  std::string hosts_path;
  std::string termination_log_path;
  cri::v1::LinuxContainerResources resources;
  cri::v1::LinuxContainerSecurityContext security_context;
};

// The ContainerConfig of container `c` (upstream generateContainerConfig): metadata, image,
// command and args with $(VAR) expanded against the env, working dir, env, mounts, log path
// <name>/<restart>.log, stdin/tty, the kubelet's labels and annotations (restart count,
// termination message path and policy, grace period), resources and security context.
cri::v1::ContainerConfig MakeContainerConfig(const api::Pod& pod, const api::Container& c,
                                             const ContainerConfigInputs& in);

}  // namespace berth::kubelet
