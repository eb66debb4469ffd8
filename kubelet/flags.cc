#include "kubelet/flags.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iterator>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kubelet/kubelet_config.h"

namespace berth {

void AddFlags(CLI::App* app, Flags* fp) {
  Flags& f = *fp;
  app->add_option("--config", f.config,
                  "KubeletConfiguration file (kubelet.config.k8s.io/v1beta1, YAML or JSON); "
                  "flags given on the command line override it");
  app->add_option("--kubeconfig", f.kubeconfig,
                  "kubeconfig with the node's credentials (written by the TLS bootstrap when "
                  "--bootstrap-kubeconfig is given and it is missing or invalid)");
  app->add_option("--bootstrap-kubeconfig", f.bootstrap_kubeconfig,
                  "kubeconfig (bootstrap token) used to request the node's client certificate "
                  "when --kubeconfig is missing or invalid");
  app->add_option("--cert-dir", f.cert_dir,
                  "directory of the TLS certificates (kubelet-client-current.pem, "
                  "kubelet-server-current.pem, self-signed kubelet.crt); default <root-dir>/pki");
  app->add_flag("--rotate-certificates", f.rotate_certificates,
                "renew the client certificate through CSRs as its expiration approaches");
  app->add_flag("--rotate-server-certificates", f.rotate_server_certificates,
                "request the serving certificate through a kubernetes.io/kubelet-serving CSR and "
                "renew it (self-signed until approved)");
  app->add_option("--node-name", f.node_name, "Node name (default: hostname)");
  app->add_option("--hostname-override", f.hostname_override,
                  "use this name (lower-cased) instead of the hostname: the Node's name, "
                  "Hostname address and kubernetes.io/hostname label");
  app->add_option("--node-ip", f.node_ip, "InternalIP reported for the Node");
  app->add_option("--root-dir", f.root_dir, "persistent state directory");
  app->add_option("--state-dir", f.state_dir, "volatile runtime state directory");
  app->add_option("--cri-socket", f.cri_socket, "CRI unix socket (default <state-dir>/berth.sock)");
  app->add_option("--cgroup-root", f.cgroup_root, "prefix of every pod cgroup");
  app->add_option("--cni-conf-dir", f.cni_conf_dir, "CNI configuration directory");
  app->add_option("--cni-bin-dir", f.cni_bin_dir, "comma-separated CNI plugin directories");
  app->add_option("--cni-plugin-timeout", f.cni_plugin_timeout_s,
                  "seconds one CNI plugin call may take before it is killed");
  app->add_flag("--pod-cidr-from-node", f.pod_cidr_from_node,
                "write a bridge conflist for Node.spec.podCIDR when the CNI conf dir is empty");
  app->add_option("--insecure-registry", f.insecure_registries,
                  "registry host:port over plain HTTP");
  app->add_option("--registry-mirror", f.registry_mirrors, "host=endpoint mirror for a registry");
  app->add_option("--pinned-image", f.pinned_images,
                  "image reference reported as pinned (never GC'd)");
  app->add_option("--metrics-bind-address", f.metrics_bind_address, "address of /metrics");
  app->add_option("--log-root", f.log_root, "pod log directory root");
  app->add_option("--pause-binary", f.pause_binary, "path of berth-pause");
  app->add_option("--runtime", f.runtime, "OCI runtime binary");
  app->add_option("--conmon", f.conmon, "conmon binary");
  app->add_option(
      "--streaming-address", f.streaming_address,
      "host:port of the CRI streaming server (exec/attach/port-forward URLs); port 0 = any");
  app->add_flag("--runtime-only", f.runtime_only, "serve only the CRI socket (no kubelet role)");
  app->add_option(
      "--ebpf", f.ebpf,
      "load the eBPF collectors (berth_cgroup_* metrics); false exports berth_ebpf_up 0");
  app->add_option("--node-labels", f.node_labels,
                  "labels of the Node, key=value[,key=value...] (as the kubelet's flag)");
  app->add_option("--register-with-taints", f.register_with_taints,
                  "taints of the Node when berth registers it, key[=value]:Effect[,...]");
  app->add_option("--max-pods", f.max_pods, "pods this node admits (Node capacity \"pods\")")
      ->check(CLI::PositiveNumber);
  app->add_flag("--seccomp-default", f.seccomp_default,
                "run containers without a seccompProfile under the runtime's default profile "
                "(RuntimeDefault) instead of Unconfined");
  app->add_option("--cluster-dns", f.cluster_dns,
                  "DNS server IPs of ClusterFirst pods (comma-separated, repeatable)")
      ->delimiter(',');
  app->add_option("--allowed-unsafe-sysctls", f.allowed_unsafe_sysctls,
                  "unsafe sysctls or patterns (ending in *) pods may set (comma-separated)")
      ->delimiter(',');
  app->add_option("--cluster-domain", f.cluster_domain,
                  "cluster domain: pods search <ns>.svc.<domain>, svc.<domain>, <domain>");
  app->add_option("--resolv-conf", f.resolv_conf,
                  "resolv.conf that Default-DNS pods (and ClusterFirst ones without --cluster-dns) "
                  "get; \"\" = none")
      ->capture_default_str();
  app->add_option("--healthz-port", f.healthz_port,
                  "port of the plain-HTTP /healthz server (0: no server)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app->add_option("--healthz-bind-address", f.healthz_bind_address,
                  "IP address the /healthz server binds")
      ->capture_default_str();
  app->add_option("--v", f.verbosity, "log verbosity (0 info, 1 debug)");
  app->add_option("--address", f.address, "IP address the kubelet server (--port) binds");
  app->add_option("--port", f.port, "port of the kubelet HTTPS server (0: no server)");
  app->add_option("--tls-cert-file", f.tls_cert_file,
                  "serving certificate (self-signed into --cert-dir when absent)");
  app->add_option("--tls-private-key-file", f.tls_private_key_file, "key of --tls-cert-file");
  app->add_option("--client-ca-file", f.client_ca_file,
                  "CA bundle that verifies client certificates (user = CN, groups = O)");
  app->add_option("--anonymous-auth", f.anonymous_auth,
                  "serve unauthenticated requests as system:anonymous")
      ->default_str("false");
  app->add_option("--authentication-token-webhook", f.authentication_token_webhook,
                  "authenticate bearer tokens with TokenReview")
      ->default_str("true");
  app->add_option("--authorization-mode", f.authorization_mode,
                  "Webhook (SubjectAccessReview) or AlwaysAllow")
      ->check(CLI::IsMember({"Webhook", "AlwaysAllow"}));
  app->add_option("--exec-mode", f.exec_mode,
                  "how streaming exec starts commands: native (berth joins the container; "
                  "runc exec for seccomp/AppArmor/SELinux/user-namespace containers) or runc")
      ->check(CLI::IsMember({"native", "runc"}))
      ->capture_default_str();
  // Go durations ("2m0s", "30s"), as the kubelet's flags; 0 turns that cache off.
  const auto go_duration = CLI::Validator(
      [](std::string& v) {
        absl::StatusOr<absl::Duration> d = kubelet::ParseGoDuration(v);
        return d.ok() && *d >= absl::ZeroDuration() ? std::string()
                                                    : absl::StrCat("not a duration: ", v);
      },
      "DURATION");
  app->add_option("--authentication-token-webhook-cache-ttl",
                  f.authentication_token_webhook_cache_ttl,
                  "how long TokenReview answers are cached")
      ->check(go_duration)
      ->capture_default_str();
  app->add_option("--authorization-webhook-cache-authorized-ttl",
                  f.authorization_webhook_cache_authorized_ttl,
                  "how long allowed SubjectAccessReview decisions are cached")
      ->check(go_duration)
      ->capture_default_str();
  app->add_option("--authorization-webhook-cache-unauthorized-ttl",
                  f.authorization_webhook_cache_unauthorized_ttl,
                  "how long denied SubjectAccessReview decisions are cached")
      ->check(go_duration)
      ->capture_default_str();
  app->add_option("--container-log-max-size", f.container_log_max_size,
                  "rotate a container's log when it grows past this size (e.g. 10Mi)");
  app->add_option("--container-log-max-files", f.container_log_max_files,
                  "log files kept per container, the current one included (>= 2)");
  app->add_option("--pod-manifest-path", f.pod_manifest_path,
                  "static pods: a directory of pod manifests (one pod per file, YAML or JSON; "
                  "names starting with '.' ignored) or one manifest file; mirror pods in the API "
                  "server");
  app->add_option("--file-check-frequency", f.file_check_frequency,
                  "how often the static pod manifests are re-read besides inotify events")
      ->check(go_duration)
      ->capture_default_str();
  app->add_option("--fs-usage-period", f.fs_usage_period_s,
                  "seconds between background measurements of disk usage (writable layers, logs, "
                  "emptyDirs, images); local ephemeral-storage eviction checks after each")
      ->check(CLI::PositiveNumber);
  app->add_option("--eviction-hard", f.eviction_hard,
                  "hard eviction thresholds (e.g. memory.available<1Gi); met, a pod is evicted")
      ->capture_default_str();
  app->add_option("--eviction-soft", f.eviction_soft,
                  "soft eviction thresholds (e.g. memory.available<1.5Gi), acting once met for "
                  "their grace period");
  app->add_option("--eviction-soft-grace-period", f.eviction_soft_grace_period,
                  "grace periods of the soft thresholds (e.g. memory.available=1m30s)");
  app->add_option("--eviction-minimum-reclaim", f.eviction_minimum_reclaim,
                  "minimum amounts reclaimed past a threshold (e.g. imagefs.available=2Gi)");
  app->add_option("--eviction-pressure-transition-period", f.eviction_pressure_transition_period,
                  "how long a pressure condition stays true after its threshold was last met")
      ->check(go_duration)
      ->capture_default_str();
  app->add_option("--eviction-max-pod-grace-period", f.eviction_max_pod_grace_period,
                  "grace period (s) of pods evicted for a soft threshold (capped by the pod's)")
      ->capture_default_str();
  app->add_option("--image-gc-high-threshold", f.image_gc_high_threshold,
                  "disk usage percent of the image filesystem at which image GC runs (100: never)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app->add_option("--image-gc-low-threshold", f.image_gc_low_threshold,
                  "disk usage percent image GC frees down to")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app->add_option("--minimum-image-ttl-duration", f.minimum_image_ttl_duration,
                  "minimum age of an unused image before GC removes it")
      ->check(go_duration)
      ->capture_default_str();
  app->add_option("--minimum-container-ttl-duration", f.minimum_container_ttl_duration,
                  "minimum age of a finished container before GC removes it")
      ->check(go_duration)
      ->capture_default_str();
  app->add_option("--maximum-dead-containers-per-container",
                  f.maximum_dead_containers_per_container,
                  "dead instances kept per container (< 0: no limit)")
      ->capture_default_str();
  app->add_option("--maximum-dead-containers", f.maximum_dead_containers,
                  "dead containers kept on the node (< 0: no limit)")
      ->capture_default_str();
  app->add_option("--image-gc-period", f.image_gc_period,
                  "berth: how often image GC runs (upstream's fixed 5m)")
      ->check(go_duration)
      ->capture_default_str();
  app->add_option("--container-gc-period", f.container_gc_period,
                  "berth: how often dead-container GC runs (upstream's fixed 1m)")
      ->check(go_duration)
      ->capture_default_str();
  GroupFlags(app);
}

void GroupFlags(CLI::App* app) {
  // berth's own flags: the container runtime, CNI, images and metrics that the kubelet leaves
  // to containerd or CRI-O, and berth's node agent knobs. Every other flag is the upstream
  // kubelet's, with its name and meaning.
  static constexpr const char* kBerthFlags[] = {
      "--cni-bin-dir",
      "--cni-conf-dir",
      "--cni-plugin-timeout",
      "--conmon",
      "--container-gc-period",
      "--cri-socket",
      "--ebpf",
      "--exec-mode",
      "--fs-usage-period",
      "--image-gc-period",
      "--insecure-registry",
      "--log-root",
      "--metrics-bind-address",
      "--node-name",
      "--pause-binary",
      "--pinned-image",
      "--pod-cidr-from-node",
      "--registry-mirror",
      "--runtime",
      "--runtime-only",
      "--state-dir",
      "--streaming-address",
  };
  for (CLI::Option* opt : app->get_options()) {
    if (opt->get_group() != "Options") continue;  // CLI11's default group; help, version
    if (opt == app->get_help_ptr() || opt == app->get_version_ptr()) continue;
    bool berth_only = std::find(std::begin(kBerthFlags), std::end(kBerthFlags),
                                opt->get_name(/*positional=*/false, /*all_options=*/false)) !=
                      std::end(kBerthFlags);
    opt->group(berth_only ? "berth flags (container runtime, CNI, images, metrics)"
                          : "Kubelet flags (the upstream kubelet's names and meanings)");
  }
}

}  // namespace berth
