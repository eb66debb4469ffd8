// The command-line flags of `berth`, with upstream kubelet names where one exists (README
// "Flags of berth" documents each). Registered on a CLI11 app by AddFlags; `--config` fills
// what the command line left unset (kubelet/kubelet_config.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace berth {

struct Flags {
  std::string config;  // --config: a KubeletConfiguration file, the base under these flags
  std::string kubeconfig;
  // TLS bootstrap and certificate rotation (kubelet/certificate/).
  std::string bootstrap_kubeconfig;
  std::string cert_dir;  // default <root-dir>/pki, as the kubelet's /var/lib/kubelet/pki
  bool rotate_certificates = false;
  bool rotate_server_certificates = false;
  std::string node_name;
  // --hostname-override (upstream kubelet; kubeadm writes it to kubeadm-flags.env when the
  // node name differs from the hostname): the node name and the Hostname address/label.
  std::string hostname_override;
  std::string node_ip;
  std::string root_dir = "/var/lib/berth";
  std::string state_dir = "/run/berth";
  std::string cri_socket;
  std::string cgroup_root;
  std::string cni_conf_dir = "/etc/cni/net.d";
  std::string cni_bin_dir = "/usr/lib/cni,/opt/cni/bin";
  bool pod_cidr_from_node = false;
  double cni_plugin_timeout_s = 60;
  std::vector<std::string> insecure_registries;
  std::vector<std::string> registry_mirrors;
  std::vector<std::string> pinned_images;
  std::string metrics_bind_address = "127.0.0.1:10249";
  std::string log_root = "/var/log/pods";
  std::string pause_binary;
  std::string runtime = "runc";
  std::string conmon = "conmon";
  std::string streaming_address = "127.0.0.1:0";
  bool runtime_only = false;
  bool ebpf = true;
  int verbosity = 0;
  // The kubelet server on :10250 (defaults of the upstream KubeletConfiguration file).
  std::string address = "0.0.0.0";
  int port = 10250;
  std::string tls_cert_file;
  std::string tls_private_key_file;
  std::string client_ca_file;
  std::string node_labels;
  std::string register_with_taints;
  int max_pods = 110;
  bool seccomp_default = false;
  bool anonymous_auth = false;
  bool authentication_token_webhook = true;
  std::string authorization_mode = "Webhook";
  std::string authentication_token_webhook_cache_ttl = "2m0s";
  std::string exec_mode = "native";
  std::string authorization_webhook_cache_authorized_ttl = "5m0s";
  std::string authorization_webhook_cache_unauthorized_ttl = "30s";
  std::string container_log_max_size = "10Mi";
  int container_log_max_files = 5;
  // Period of the background filesystem-usage walks (writable layers, logs, emptyDirs, image
  // store) behind /stats/summary, container_fs_*, CRI stats and local-storage eviction.
  double fs_usage_period_s = 60;
  std::vector<std::string> cluster_dns;
  std::string cluster_domain;
  std::string resolv_conf = "/etc/resolv.conf";
  std::vector<std::string> allowed_unsafe_sysctls;
  // The kubelet's plain-HTTP healthz server (kubeadm waits on 127.0.0.1:10248/healthz).
  int healthz_port = 10248;
  std::string healthz_bind_address = "127.0.0.1";
  // Static pods (kubelet/static_pods.h): the manifest directory or file (staticPodPath; ""
  // = none) and how often it is re-read besides inotify events (fileCheckFrequency).
  std::string pod_manifest_path;
  std::string file_check_frequency = "20s";
  // Node-pressure eviction (kubelet/node_eviction.h); the maps in upstream flag syntax.
  std::string eviction_hard =
      "imagefs.available<15%,imagefs.inodesFree<5%,memory.available<100Mi,nodefs.available<10%,"
      "nodefs.inodesFree<5%";
  std::string eviction_soft;
  std::string eviction_soft_grace_period;
  std::string eviction_minimum_reclaim;
  std::string eviction_pressure_transition_period = "5m0s";
  int eviction_max_pod_grace_period = 0;
  // Image and dead-container GC (kubelet/garbage_collector.h).
  int image_gc_high_threshold = 85;
  int image_gc_low_threshold = 80;
  std::string minimum_image_ttl_duration = "2m0s";
  std::string minimum_container_ttl_duration = "0s";
  int maximum_dead_containers_per_container = 1;
  int maximum_dead_containers = -1;
  // berth only: the GC periods (upstream constants ImageGCPeriod 5m, ContainerGCPeriod 1m).
  std::string image_gc_period = "5m0s";
  std::string container_gc_period = "1m0s";
};

// Registers every flag of `f` on `app` (f must outlive app's parse). Not thread-safe.
void AddFlags(CLI::App* app, Flags* f);

// Sorts the flags of `app` still in CLI11's default group into two groups for --help: the
// upstream kubelet's flags (same names and meanings) and berth's own (runtime, CNI, images,
// metrics). Called by AddFlags; call again after adding options elsewhere. Not thread-safe.
void GroupFlags(CLI::App* app);

}  // namespace berth
