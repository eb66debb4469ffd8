// The typed v1.Pod the kubelet reasons on: the fields berth uses, parsed once per update
// from the API server's JSON with the API server's defaulting applied
// (k8s.io/kubernetes pkg/apis/core/v1/defaults.go and zz_generated.defaults.go).
//
// Example:
//   absl::StatusOr<api::Pod> pod = api::ParsePod(json_from_watch);
//   if (!pod.ok()) { /* "spec.containers[0].ports[1].containerPort: want an integer, ..." */ }
//   for (const api::Container& c : pod->spec.containers) { ... c.image_pull_policy ... }
//
// Field names follow the API's JSON names in snake_case. Optional API fields without a
// default are std::optional; fields with a default hold the defaulted value. A JSON null is
// the same as an absent field (as Go's decoder treats it). Fields berth does not read are
// not modelled; `Pod::raw` keeps the whole object as received (status patches and
// round-trips use it, so nothing is lost). All types are plain values: copyable,
// thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/quantity.h"

namespace berth::kubelet::api {

using Json = nlohmann::json;

// intstr.IntOrString (probe and hook ports: a number or a named container port).
struct IntOrString {
  bool is_int = true;
  int32_t int_value = 0;
  std::string str_value;
  bool operator==(const IntOrString&) const = default;
};

// metav1.OwnerReference.
struct OwnerReference {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string uid;
  bool controller = false;
};

// metav1.ObjectMeta: the fields berth uses.
struct ObjectMeta {
  std::string name;
  std::string namespace_;  // "namespace"
  std::string uid;
  std::string resource_version;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::optional<absl::Time> creation_timestamp;
  // Set once the pod is being deleted (graceful deletion).
  std::optional<absl::Time> deletion_timestamp;
  std::optional<int64_t> deletion_grace_period_seconds;
  std::vector<OwnerReference> owner_references;
};

// v1.ObjectFieldSelector (downward API fieldRef); api_version defaults to "v1".
struct ObjectFieldSelector {
  std::string api_version = "v1";
  std::string field_path;
};

// v1.ResourceFieldSelector (downward API resourceFieldRef). The divisor the API server stores
// for an absent one is 0, which ExtractContainerResourceValue reads as 1: `divisor` holds 1
// then, so readers divide by it as is.
struct ResourceFieldSelector {
  std::string container_name;
  std::string resource;  // "limits.cpu", "requests.memory", ...
  Quantity divisor = Quantity::FromScaled(1, 0);
};

// v1.ConfigMapKeySelector / v1.SecretKeySelector.
struct KeySelector {
  std::string name;
  std::string key;
  bool optional = false;
};

// v1.EnvVarSource: exactly one member is set in a valid pod.
struct EnvVarSource {
  std::optional<ObjectFieldSelector> field_ref;
  std::optional<ResourceFieldSelector> resource_field_ref;
  std::optional<KeySelector> config_map_key_ref;
  std::optional<KeySelector> secret_key_ref;
};

// v1.EnvVar.
struct EnvVar {
  std::string name;
  std::string value;
  std::optional<EnvVarSource> value_from;
};

// v1.ConfigMapEnvSource / v1.SecretEnvSource.
struct LocalRef {
  std::string name;
  bool optional = false;
};

// v1.EnvFromSource.
struct EnvFromSource {
  std::string prefix;
  std::optional<LocalRef> config_map_ref;
  std::optional<LocalRef> secret_ref;
};

// v1.VolumeMount.
struct VolumeMount {
  std::string name;
  std::string mount_path;
  bool read_only = false;
  std::string sub_path;
  std::string sub_path_expr;
  // "None" (also for an absent field, as the kubelet reads it), "HostToContainer",
  // "Bidirectional".
  std::optional<std::string> mount_propagation;
};

// v1.VolumeDevice (raw block volumes).
struct VolumeDevice {
  std::string name;
  std::string device_path;
};

// v1.ContainerPort; protocol defaults to "TCP"; with hostNetwork host_port defaults to
// container_port.
struct ContainerPort {
  std::string name;
  int32_t container_port = 0;
  int32_t host_port = 0;
  std::string protocol = "TCP";
  std::string host_ip;
};

// v1.ExecAction.
struct ExecAction {
  std::vector<std::string> command;
};

// v1.HTTPHeader.
struct HttpHeader {
  std::string name;
  std::string value;
};

// v1.HTTPGetAction; path defaults to "/", scheme to "HTTP".
struct HttpGetAction {
  std::string path = "/";
  IntOrString port;
  std::string host;
  std::string scheme = "HTTP";
  std::vector<HttpHeader> http_headers;
};

// v1.TCPSocketAction.
struct TcpSocketAction {
  IntOrString port;
  std::string host;
};

// v1.GRPCAction; service defaults to "".
struct GrpcAction {
  int32_t port = 0;
  std::string service;
};

// v1.SleepAction.
struct SleepAction {
  int64_t seconds = 0;
};

// v1.LifecycleHandler (postStart / preStop): one member set in a valid pod.
struct LifecycleHandler {
  std::optional<ExecAction> exec;
  std::optional<HttpGetAction> http_get;
  std::optional<TcpSocketAction> tcp_socket;
  std::optional<SleepAction> sleep;
};

// v1.Lifecycle.
struct Lifecycle {
  std::optional<LifecycleHandler> post_start;
  std::optional<LifecycleHandler> pre_stop;
};

// v1.Probe with SetDefaults_Probe applied.
struct Probe {
  std::optional<ExecAction> exec;
  std::optional<HttpGetAction> http_get;
  std::optional<TcpSocketAction> tcp_socket;
  std::optional<GrpcAction> grpc;
  int32_t initial_delay_seconds = 0;
  int32_t timeout_seconds = 1;
  int32_t period_seconds = 10;
  int32_t success_threshold = 1;
  int32_t failure_threshold = 3;
  std::optional<int64_t> termination_grace_period_seconds;
};

// v1.Capabilities.
struct Capabilities {
  std::vector<std::string> add;
  std::vector<std::string> drop;
};

// v1.SeccompProfile.
struct SeccompProfile {
  std::string type;  // "RuntimeDefault", "Unconfined", "Localhost"
  std::string localhost_profile;
};

// v1.SecurityContext (container level).
struct SecurityContext {
  std::optional<bool> privileged;
  std::optional<bool> run_as_non_root;
  std::optional<bool> read_only_root_filesystem;
  std::optional<bool> allow_privilege_escalation;
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  std::optional<Capabilities> capabilities;
  std::optional<SeccompProfile> seccomp_profile;
  std::optional<std::string> proc_mount;
};

// v1.Sysctl.
struct Sysctl {
  std::string name;
  std::string value;
};

// v1.PodSecurityContext (always present after defaulting).
struct PodSecurityContext {
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  std::optional<bool> run_as_non_root;
  std::vector<int64_t> supplemental_groups;
  std::optional<int64_t> fs_group;
  std::optional<std::string> fs_group_change_policy;
  std::vector<Sysctl> sysctls;
  std::optional<SeccompProfile> seccomp_profile;
};

// A v1.ResourceList: resource name -> quantity, each rounded up to milli scale as
// SetDefaults_ResourceList does.
using ResourceList = std::map<std::string, Quantity>;

// v1.ResourceRequirements; for init and regular containers, requests default to the limits
// of the resources that have no request (SetDefaults_Pod).
struct ResourceRequirements {
  ResourceList limits;
  ResourceList requests;
};

// v1.Container, also for init containers (a native sidecar is an init container with
// restart_policy "Always") and ephemeral containers (target_container_name).
struct Container {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string working_dir;
  std::vector<ContainerPort> ports;
  std::vector<EnvFromSource> env_from;
  std::vector<EnvVar> env;
  ResourceRequirements resources;
  std::vector<VolumeMount> volume_mounts;
  std::vector<VolumeDevice> volume_devices;
  std::optional<Probe> liveness_probe;
  std::optional<Probe> readiness_probe;
  std::optional<Probe> startup_probe;
  std::optional<Lifecycle> lifecycle;
  std::string termination_message_path = "/dev/termination-log";
  std::string termination_message_policy = "File";
  // "Always" for an image tagged :latest or untagged (and not pinned by digest), else
  // "IfNotPresent" (SetDefaults_Container).
  std::string image_pull_policy;
  std::optional<SecurityContext> security_context;
  bool stdin = false;
  bool stdin_once = false;
  bool tty = false;
  // Init containers: "Always" makes a native sidecar.
  std::optional<std::string> restart_policy;
  // Ephemeral containers: the container whose namespaces it targets.
  std::string target_container_name;
  // The object as received, for readers of fields not modelled.
  Json raw;
};

// v1.KeyToPath (configMap / secret items).
struct KeyToPath {
  std::string key;
  std::string path;
  std::optional<int32_t> mode;
};

// v1.DownwardAPIVolumeFile.
struct DownwardApiFile {
  std::string path;
  std::optional<ObjectFieldSelector> field_ref;
  std::optional<ResourceFieldSelector> resource_field_ref;
  std::optional<int32_t> mode;
};

// v1.HostPathVolumeSource; type defaults to "" (no check).
struct HostPathSource {
  std::string path;
  std::string type;
};

// v1.EmptyDirVolumeSource.
struct EmptyDirSource {
  std::string medium;  // "" (node disk) or "Memory"
  std::optional<Quantity> size_limit;
};

// v1.SecretVolumeSource; default_mode defaults to 0644.
struct SecretSource {
  std::string secret_name;
  std::vector<KeyToPath> items;
  int32_t default_mode = 0644;
  bool optional = false;
};

// v1.ConfigMapVolumeSource; default_mode defaults to 0644.
struct ConfigMapSource {
  std::string name;
  std::vector<KeyToPath> items;
  int32_t default_mode = 0644;
  bool optional = false;
};

// v1.DownwardAPIVolumeSource; default_mode defaults to 0644.
struct DownwardApiSource {
  std::vector<DownwardApiFile> items;
  int32_t default_mode = 0644;
};

// v1.ServiceAccountTokenProjection; expiration defaults to one hour.
struct ServiceAccountTokenProjection {
  std::string audience;
  int64_t expiration_seconds = 3600;
  std::string path;
};

// v1.VolumeProjection: one member set.
struct VolumeProjection {
  std::optional<SecretSource> secret;         // default_mode unused
  std::optional<ConfigMapSource> config_map;  // default_mode unused
  std::optional<DownwardApiSource> downward_api;
  std::optional<ServiceAccountTokenProjection> service_account_token;
};

// v1.ProjectedVolumeSource; default_mode defaults to 0644.
struct ProjectedSource {
  std::vector<VolumeProjection> sources;
  int32_t default_mode = 0644;
};

// v1.PersistentVolumeClaimVolumeSource.
struct PvcSource {
  std::string claim_name;
  bool read_only = false;
};

// v1.Volume with the sources berth supports typed; `raw` is the whole object (for ephemeral,
// csi and other sources read elsewhere). A volume with no source defaults to emptyDir.
struct Volume {
  std::string name;
  std::optional<HostPathSource> host_path;
  std::optional<EmptyDirSource> empty_dir;
  std::optional<SecretSource> secret;
  std::optional<ConfigMapSource> config_map;
  std::optional<DownwardApiSource> downward_api;
  std::optional<ProjectedSource> projected;
  std::optional<PvcSource> persistent_volume_claim;
  bool ephemeral = false;  // an ephemeral (generic) volume: a PVC <pod>-<volume>
  Json raw;
};

// v1.Toleration.
struct Toleration {
  std::string key;
  std::string op;  // "operator": "Equal" or "Exists"
  std::string value;
  std::string effect;
  std::optional<int64_t> toleration_seconds;
};

// v1.PodDNSConfigOption.
struct PodDnsConfigOption {
  std::string name;
  std::optional<std::string> value;
};

// v1.PodDNSConfig.
struct PodDnsConfig {
  std::vector<std::string> nameservers;
  std::vector<std::string> searches;
  std::vector<PodDnsConfigOption> options;
};

// v1.HostAlias.
struct HostAlias {
  std::string ip;
  std::vector<std::string> hostnames;
};

// v1.PodSpec with SetDefaults_PodSpec / SetDefaults_Pod applied.
struct PodSpec {
  std::vector<Volume> volumes;
  std::vector<Container> init_containers;
  std::vector<Container> containers;
  std::vector<Container> ephemeral_containers;
  std::string restart_policy = "Always";
  int64_t termination_grace_period_seconds = 30;
  std::optional<int64_t> active_deadline_seconds;
  std::string dns_policy = "ClusterFirst";
  std::map<std::string, std::string> node_selector;
  std::string service_account_name;
  std::optional<bool> automount_service_account_token;
  std::string node_name;
  bool host_network = false;
  bool host_pid = false;
  bool host_ipc = false;
  std::optional<bool> share_process_namespace;
  PodSecurityContext security_context;
  std::vector<std::string> image_pull_secrets;  // LocalObjectReference names
  std::string hostname;
  std::string subdomain;
  std::optional<std::string> hostname_override;
  std::string scheduler_name = "default-scheduler";
  std::vector<Toleration> tolerations;
  std::vector<HostAlias> host_aliases;
  std::optional<int32_t> priority;
  std::string priority_class_name;
  std::optional<PodDnsConfig> dns_config;
  std::vector<std::string> readiness_gates;  // conditionType of each gate
  std::optional<std::string> runtime_class_name;
  bool enable_service_links = true;
  ResourceList overhead;
  std::optional<std::string> os;  // os.name
  bool set_hostname_as_fqdn = false;
};

// v1.ContainerState (one member set).
struct ContainerStateWaiting {
  std::string reason;
  std::string message;
};
struct ContainerStateRunning {
  std::optional<absl::Time> started_at;
};
struct ContainerStateTerminated {
  int32_t exit_code = 0;
  int32_t signal = 0;
  std::string reason;
  std::string message;
  std::optional<absl::Time> started_at;
  std::optional<absl::Time> finished_at;
  std::string container_id;
};
struct ContainerState {
  std::optional<ContainerStateWaiting> waiting;
  std::optional<ContainerStateRunning> running;
  std::optional<ContainerStateTerminated> terminated;
};

// v1.ContainerStatus: the fields berth reads back.
struct ContainerStatus {
  std::string name;
  ContainerState state;
  ContainerState last_state;
  bool ready = false;
  int32_t restart_count = 0;
  std::string image;
  std::string image_id;
  std::string container_id;
  std::optional<bool> started;
};

// v1.PodCondition.
struct PodCondition {
  std::string type;
  std::string status;
  std::string reason;
  std::string message;
  std::optional<absl::Time> last_transition_time;
};

// v1.PodStatus: the fields berth reads back.
struct PodStatus {
  std::string phase;
  std::string reason;
  std::string message;
  std::string host_ip;
  std::string pod_ip;
  std::vector<std::string> pod_ips;
  std::optional<absl::Time> start_time;
  std::string qos_class;
  std::vector<PodCondition> conditions;
  std::vector<ContainerStatus> init_container_statuses;
  std::vector<ContainerStatus> container_statuses;
  std::vector<ContainerStatus> ephemeral_container_statuses;
};

// v1.Pod.
struct Pod {
  ObjectMeta metadata;
  PodSpec spec;
  PodStatus status;
  // The object exactly as the API server sent it (no defaults added): what status patches
  // and other writers echo, and the reader of fields not modelled here.
  Json raw;

  // "<namespace>/<name>", for log messages.
  std::string Key() const { return metadata.namespace_ + "/" + metadata.name; }
};

// Parses a v1.Pod from the API server's JSON and applies the API server's defaulting.
// Errors: InvalidArgument "<field path>: <reason>" for a value of the wrong JSON type
// ("spec.containers[1].ports[0].containerPort: want an integer, got string"), a quantity
// that does not parse, an unparsable time, or an object that is not a pod (no metadata.uid).
absl::StatusOr<Pod> ParsePod(const Json& pod);

// The image pull policy the API server gives a container with none set (SetDefaults_Container):
// "Always" when the image's tag is "latest" or it has neither tag nor digest, else
// "IfNotPresent".
std::string DefaultImagePullPolicy(const std::string& image);

// True for a native sidecar: an init container whose restartPolicy is "Always" (upstream
// types.IsRestartableInitContainer).
bool IsRestartableInitContainer(const Container& c);

// The container named `name` among spec.containers, then spec.initContainers, then
// spec.ephemeralContainers; nullptr when none. Points into `pod`.
const Container* FindContainer(const Pod& pod, const std::string& name);

}  // namespace berth::kubelet::api
