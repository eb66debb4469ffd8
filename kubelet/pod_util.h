// Pod helpers shared by the pod manager, status manager, prober and volume manager: QoS
// class, cgroup parents, seccomp resolution, downward-API field and resource references,
// $(VAR) expansion, timestamps. They take the typed pod (kubelet/api/pod.h); the JSON forms
// left (GetString, PodKey, FindContainer, ContainerResource and the JSON ResolveFieldRef /
// ResolveResourceFieldRef) serve the volume manager until it moves onto the typed model.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/quantity.h"
#include "kubelet/api/pod.h"

namespace berth::kubelet {

using Json = nlohmann::json;

// CRI labels and annotations the kubelet puts on sandboxes and containers (the same keys as
// upstream's pkg/kubelet/types/labels.go and kuberuntime/labels.go).
inline constexpr char kPodNameLabel[] = "io.kubernetes.pod.name";
inline constexpr char kPodNamespaceLabel[] = "io.kubernetes.pod.namespace";
inline constexpr char kPodUidLabel[] = "io.kubernetes.pod.uid";
inline constexpr char kContainerNameLabel[] = "io.kubernetes.container.name";
inline constexpr char kRestartCountAnnotation[] = "io.kubernetes.container.restartCount";
inline constexpr char kTerminationMessagePathAnnotation[] =
    "io.kubernetes.container.terminationMessagePath";
inline constexpr char kTerminationMessagePolicyAnnotation[] =
    "io.kubernetes.container.terminationMessagePolicy";
inline constexpr char kGracePeriodAnnotation[] = "io.kubernetes.pod.terminationGracePeriod";

// Quantity of `resource` ("cpu", "memory") in container.resources.<kind> (kind "requests" or
// "limits"); nullopt when absent or unparsable.
std::optional<Quantity> ContainerResource(const Json& container, const std::string& kind,
                                          const std::string& resource);

// A container's seccomp profile, as the kubelet resolves it (kuberuntime getSeccompProfile):
// the container's securityContext.seccompProfile, else the pod's, else RuntimeDefault when
// the node defaults to it (--seccomp-default), else Unconfined.
struct SeccompProfile {
  enum class Type { kUnconfined, kRuntimeDefault, kLocalhost };
  Type type = Type::kUnconfined;
  // kLocalhost: <profile_root>/<localhostProfile>, an absolute path on the node.
  std::string localhost_path;
};

// Resolves the seccomp profile of `container` in `pod`; profile_root is the
// kubelet's <root-dir>/seccomp. Errors: InvalidArgument for type Localhost without
// localhostProfile, or an unknown type (the kubelet's CreateContainerConfigError).
absl::StatusOr<SeccompProfile> ResolveSeccompProfile(const api::Pod& pod,
                                                     const api::Container& container,
                                                     bool seccomp_default,
                                                     const std::string& profile_root);

// The pod's QoS class per upstream GetPodQOS: "Guaranteed", "Burstable" or "BestEffort".
std::string PodQosClass(const api::Pod& pod);

// The pod cgroup parent: "<root>/pod<uid>" for Guaranteed, "<root>/burstable/pod<uid>" and
// "<root>/besteffort/pod<uid>" otherwise. `root` is e.g. "/kubepods".
std::string PodCgroupParent(const api::Pod& pod, const std::string& root);

// RFC 3339 UTC time with second precision, as metav1.Time marshals ("2024-01-02T03:04:05Z").
std::string FormatRfc3339(absl::Time t);
// Parses RFC 3339 (with or without fractional seconds). nullopt when invalid.
std::optional<absl::Time> ParseRfc3339(const std::string& s);

// String field at a JSON pointer-like dotted path ("metadata.name"), or "" when absent.
std::string GetString(const Json& obj, const std::string& dotted_path);

// Resolves a downward-API fieldRef.fieldPath for the pod: metadata.name, metadata.namespace,
// metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.nodeName,
// spec.serviceAccountName, status.podIP, status.hostIP, status.podIPs, status.hostIPs.
// `pod_ip`/`host_ip` supply the status fields not yet in the object. Errors: InvalidArgument
// for an unsupported path.
absl::StatusOr<std::string> ResolveFieldRef(const Json& pod, const std::string& field_path,
                                            const std::string& pod_ip, const std::string& host_ip);
absl::StatusOr<std::string> ResolveFieldRef(const api::Pod& pod, const std::string& field_path,
                                            const std::string& pod_ip, const std::string& host_ip);

// The node's resources that a container without a limit may use (the kubelet merges node
// allocatable into unset limits): CPU cores online, memory (MemTotal) and ephemeral storage
// (the capacity of the filesystem of `root_dir`) in bytes; 0 when unknown.
struct NodeResources {
  double cpu = 0;
  double memory = 0;
  double ephemeral_storage = 0;
};
NodeResources NodeAllocatable(const std::string& root_dir);

// The container named `name` among pod.spec.containers then pod.spec.initContainers (a
// pointer into `pod`, valid while it is); nullptr when none has that name.
const Json* FindContainer(const Json& pod, const std::string& name);

// Resolves a downward-API resourceFieldRef (v1.ResourceFieldSelector: resource "limits.cpu",
// "limits.memory", "limits.ephemeral-storage", "requests.*" of the same; divisor, default
// "1", a zero divisor, as the API server stores an absent one, also 1) of `container` (a
// v1.Container), as upstream ExtractContainerResourceValue: the quantity divided by the divisor,
// rounded up (CPU in millicores over the divisor's), an unset limit being the node's allocatable
// `node`, an unset request 0. Errors: InvalidArgument for another resource or a bad divisor.
absl::StatusOr<std::string> ResolveResourceFieldRef(const Json& container, const Json& ref,
                                                    const NodeResources& node);
absl::StatusOr<std::string> ResolveResourceFieldRef(const api::Container& container,
                                                    const api::ResourceFieldSelector& ref,
                                                    const NodeResources& node);

// The downward-API value of `resource` ("cpu", "memory", "ephemeral-storage") of a container
// over a (non-zero) `divisor`, as upstream convertResource*ToString: ceil(MilliValue /
// divisor.MilliValue) for CPU, ceil(Value / divisor.Value) otherwise. An absent `value` is
// the node's allocatable `node` when `is_limit`, else 0.
std::string ResourceValueOverDivisor(const std::string& resource, std::optional<Quantity> value,
                                     bool is_limit, const Quantity& divisor,
                                     const NodeResources& node);

// Expands $(VAR) references in `in` with `env` (kubelet's expansion.Expand): "$$" is an
// escaped "$", unknown references are kept as written.
std::string ExpandEnvRefs(const std::string& in, const std::map<std::string, std::string>& env);

// Pod "<namespace>/<name>" for log messages.
std::string PodKey(const Json& pod);

}  // namespace berth::kubelet
