// berth: a Kubernetes node agent — the kubelet role and the CRI runtime in one process.
// main() parses the flags, builds every subsystem (registries are filled here, never by static
// initializers), starts them, and stops them in reverse order on SIGTERM/SIGINT. Stopping
// berth never stops pods: containers run under conmon and are adopted by the next berth.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/cgroup_mounts.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "cni/cni_manager.h"
#include "cri/image/image_store.h"
#include "cri/oci/oci_runtime.h"
#include "cri/runtime/runtime.h"
#include "cri/server/cri_server.h"
#include "cri/store/db.h"
#include "csi/csi_manager.h"
#include "ebpf/collectors.h"
#include "kubelet/api_client.h"
#include "kubelet/certificate/bootstrap.h"
#include "kubelet/certificate/metrics.h"
#include "kubelet/cri_metrics.h"
#include "kubelet/event_recorder.h"
#include "kubelet/eviction.h"
#include "kubelet/flags.h"
#include "kubelet/garbage_collector.h"
#include "kubelet/kubelet_config.h"
#include "kubelet/lease.h"
#include "kubelet/list_watch.h"
#include "kubelet/node_eviction.h"
#include "kubelet/node_status.h"
#include "kubelet/pod_cni_config.h"
#include "kubelet/pod_manager.h"
#include "kubelet/server/auth.h"
#include "kubelet/server/container_log_manager.h"
#include "kubelet/server/kubelet_server.h"
#include "kubelet/server/tls.h"
#include "kubelet/static_pods.h"
#include "kubelet/stats_source.h"
#include "kubelet/sysctl.h"
#include "metrics/cadvisor.h"
#include "metrics/cgroup_stats.h"
#include "metrics/fs_usage.h"
#include "metrics/kubelet_metrics.h"
#include "metrics/metrics_server.h"
#include "metrics/process_metrics.h"
#include "metrics/registry.h"
#include "metrics/summary.h"

// After the CRI headers: <signal.h> macros (SIGABRT, ...) clash with the CRI Signal enum.
#include <fcntl.h>
#include <unistd.h>

#include <signal.h>

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth {
namespace {

std::atomic<bool> g_stop{false};
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int) {
  g_stop.store(true);
  char c = 1;
  ssize_t unused = write(g_signal_pipe[1], &c, 1);
  (void)unused;
}

// berth-pause is found next to the berth binary (installed layout), in the build tree
// (cri/pause/ beside kubelet/), or in PATH.
std::string FindPause(const std::string& flag) {
  if (!flag.empty()) return flag;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = self.parent_path();
    for (auto cand : {dir / "berth-pause", dir.parent_path() / "cri" / "pause" / "berth-pause",
                      dir.parent_path() / "libexec" / "berth" / "berth-pause"}) {
      if (access(cand.c_str(), X_OK) == 0) return cand.string();
    }
  }
  auto p = LookPath("berth-pause");
  return p.ok() ? *p : "berth-pause";
}

std::string Hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  std::string h = buf;
  for (auto& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return h;
}

int RealMain(int argc, char** argv) {
  Flags f;
  CLI::App app{"berth: Kubernetes node agent (kubelet + CRI runtime)"};
  app.set_version_flag("--version", std::string("berth ") + BERTH_VERSION);
  AddFlags(&app, &f);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (f.cri_socket.empty()) f.cri_socket = JoinPath(f.state_dir, "berth.sock");
  // Before `kubeadm init/join` none of the files the kubeadm drop-in names exists: the kubelet
  // exits then (systemd restarts it every 10 s). berth is the node's CRI runtime too, which
  // kubeadm's preflight checks before it writes those files and restarts the service: until
  // then berth serves the CRI only.
  if (!f.runtime_only && !f.config.empty() && !f.bootstrap_kubeconfig.empty() &&
      !f.kubeconfig.empty() && !PathExists(f.config) && !PathExists(f.bootstrap_kubeconfig) &&
      !PathExists(f.kubeconfig)) {
    LOG(WARNING) << "berth: " << f.config << ", " << f.bootstrap_kubeconfig << " and "
                 << f.kubeconfig << " do not exist (not joined yet): serving the CRI only, on "
                 << f.cri_socket << "; `kubeadm join` writes them and restarts berth";
    f.runtime_only = true;
  }
  if (!f.config.empty() && !f.runtime_only) {
    // The file fills in the flags the command line left unset (kubeletConfigFlagPrecedence).
    kubelet::KubeletConfigContext cctx;
    cctx.cri_socket = f.cri_socket;
    absl::StatusOr<kubelet::KubeletConfig> config = kubelet::LoadKubeletConfig(f.config, cctx);
    if (!config.ok()) {
      LOG(ERROR) << "berth: " << config.status().message();
      return 2;
    }
    for (const std::string& w : config->warnings) LOG(WARNING) << "berth: " << w;
    if (auto s = kubelet::ApplyKubeletConfig(*config, &app); !s.ok()) {
      LOG(ERROR) << "berth: kubelet config file " << f.config << ": " << s.message();
      return 2;
    }
  }
  SetLogLevel(f.verbosity > 0 ? LogLevel::kDebug : LogLevel::kInfo);
  if (!f.hostname_override.empty()) {
    // As the kubelet's nodeutil.GetHostname: trimmed, lower-cased, never empty; it names the
    // Node (berth's own --node-name may only repeat it).
    std::string h(absl::StripAsciiWhitespace(f.hostname_override));
    absl::AsciiStrToLower(&h);
    if (h.empty()) {
      LOG(ERROR) << "--hostname-override: empty hostname is invalid";
      return 2;
    }
    if (!f.node_name.empty() && f.node_name != h) {
      LOG(ERROR) << "--node-name " << f.node_name << " and --hostname-override " << h
                 << " disagree; give one of them";
      return 2;
    }
    f.hostname_override = h;
    f.node_name = h;
  }
  if (f.node_name.empty()) f.node_name = Hostname();
  if (f.cert_dir.empty()) f.cert_dir = JoinPath(f.root_dir, "pki");
  if (!f.runtime_only && f.kubeconfig.empty()) {
    LOG(ERROR) << "--kubeconfig is required unless --runtime-only is given "
                  "(deploy/run.sh starts a local control plane when you have none)";
    return 2;
  }
  if (auto sysctls = kubelet::SysctlAllowlist::Create(f.allowed_unsafe_sysctls); !sysctls.ok()) {
    LOG(ERROR) << "--allowed-unsafe-sysctls: " << sysctls.status().message();
    return 2;
  }

  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return 1;
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  for (const auto& d : {f.root_dir, f.state_dir}) {
    if (auto s = MkdirAll(d, 0711); !s.ok()) {
      LOG(ERROR) << "berth: " << s;
      return 1;
    }
  }

  // --- metrics ---
  metrics::Registry registry;
  // The certificate managers (kubelet role) outlive everything that reads them: the API client,
  // the kubelet server's handshakes and the metrics servers' scrapes (destroyed first).
  std::unique_ptr<kubelet::certificate::CertificateManager> client_certs;
  std::unique_ptr<kubelet::certificate::CertificateManager> serving_certs;
  metrics::RegisterProcessMetrics(&registry);
  metrics::RegisterBuildInfo(&registry, BERTH_VERSION);
  // Pod-start, pod-worker and runtime-operation metrics (upstream names) and berth's phases.
  const metrics::KubeletMetrics kubelet_metrics = metrics::RegisterKubeletMetrics(&registry);

  // --- eBPF collectors (before the CRI server: ListPodSandboxMetrics reads them) ---
  metrics::GaugeFamily* ebpf_up = registry.AddGauge(
      "berth_ebpf_up", "1 if the eBPF collectors are loaded, 0 if not (the log says why).");
  std::unique_ptr<ebpf::Collectors> collectors;
  ebpf::Options ebpf_options;
  // Only pods are counted: the hot paths skip every other task of the host in the kernel.
  // Pod cgroups are <cgroup-root><parent>: "/kubepods/..." from berth's kubelet; CRI clients
  // choose their own parents, tracked as their sandboxes are created or adopted (below).
  // (A bare --runtime-only berth does not create /kubepods on the host for that.)
  if (!f.runtime_only || !f.cgroup_root.empty()) {
    ebpf_options.tracked_cgroups = {f.cgroup_root + "/kubepods"};
  }
  absl::StatusOr<std::unique_ptr<ebpf::Collectors>> loaded =
      f.ebpf ? ebpf::Collectors::Load(ebpf_options)
             : absl::StatusOr<std::unique_ptr<ebpf::Collectors>>(
                   absl::FailedPreconditionError("disabled by --ebpf=false"));
  if (!loaded.ok()) {
    LOG(WARNING) << "berth: eBPF collectors not loaded, berth_cgroup_* metrics disabled: "
                 << loaded.status();
    ebpf_up->WithLabelValues({})->Set(0);
  } else {
    collectors = *std::move(loaded);
    ebpf_up->WithLabelValues({})->Set(1);
  }

  // Writable layers, logs, emptyDirs and the image store: measured in the background (once a
  // minute by default, cAdvisor's and the kubelet's period), never on a scrape or CRI call.
  metrics::FsUsageCache fs_usage(
      {std::chrono::milliseconds(static_cast<int64_t>(f.fs_usage_period_s * 1000))});

  // --- runtime ---
  std::string schema = cri::image::ImageStore::Schema() + cri::runtime::kRuntimeSchema;
  auto db = cri::store::Db::Open(JoinPath(f.root_dir, "berth.db"), schema);
  if (!db.ok()) {
    LOG(ERROR) << "berth: " << db.status();
    return 1;
  }
  cri::image::ImageStoreOptions iopts;
  iopts.root_dir = JoinPath(f.root_dir, "image");
  iopts.db = db->get();
  iopts.registry.insecure_registries = f.insecure_registries;
  iopts.pinned_images = f.pinned_images;
  iopts.fs_usage = &fs_usage;
  for (const auto& m : f.registry_mirrors) {
    std::pair<std::string, std::string> kv = absl::StrSplit(m, absl::MaxSplits('=', 1));
    if (kv.second.empty()) {
      LOG(ERROR) << "--registry-mirror " << m << ": want host=endpoint";
      return 2;
    }
    iopts.registry.mirrors[kv.first] = kv.second;
  }
  cri::image::ImageStore images(iopts);
  if (auto s = images.Init(); !s.ok()) {
    LOG(ERROR) << "berth: image store: " << s;
    return 1;
  }

  cni::CniManagerOptions copts;
  copts.conf_dir = f.cni_conf_dir;
  copts.bin_dirs = absl::StrSplit(f.cni_bin_dir, ',', absl::SkipEmpty());
  copts.cache_dir = JoinPath(f.root_dir, "cni/results");
  copts.plugin_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(f.cni_plugin_timeout_s * 1000));
  cni::CniManager network(copts);

  cri::oci::OciRuntimeOptions oopts;
  oopts.runtime_path = f.runtime;
  oopts.runtime_root = JoinPath(f.state_dir, "runc");
  oopts.conmon_path = f.conmon;
  oopts.conmon_state_dir = JoinPath(f.state_dir, "conmon");
  cri::oci::OciRuntime oci(oopts);

  cri::runtime::RuntimeOptions ropts;
  ropts.root_dir = f.root_dir;
  ropts.state_dir = f.state_dir;
  ropts.pause_binary = FindPause(f.pause_binary);
  ropts.cgroup_root = f.cgroup_root;
  ropts.exec_mode = f.exec_mode;
  cri::runtime::RuntimeDeps rdeps;
  rdeps.db = db->get();
  rdeps.images = &images;
  rdeps.network = &network;
  rdeps.oci = &oci;
  rdeps.fs_usage = &fs_usage;
  rdeps.kubelet_metrics = &kubelet_metrics;
  cri::runtime::Runtime runtime(ropts, rdeps);
  if (auto s = runtime.Start(); !s.ok()) {
    LOG(ERROR) << "berth: runtime: " << s;
    return 1;
  }

  cri::streaming::ServerOptions stream_opts;
  stream_opts.address = f.streaming_address;
  cri::streaming::Server streaming_server(&runtime, stream_opts);
  if (auto s = streaming_server.Start(); !s.ok()) {
    LOG(ERROR) << "berth: streaming server: " << s;
    return 1;
  }
  runtime.SetStreamingServer(&streaming_server);

  cri::server::CriServerOptions sopts;
  sopts.socket_path = f.cri_socket;
  sopts.registry = &registry;
  // ListMetricDescriptors / ListPodSandboxMetrics from the eBPF counters; the rest is the
  // runtime's.
  std::function<std::optional<ebpf::StatsSnapshot>()> cri_snapshot;
  if (collectors != nullptr) {
    cri_snapshot = [c = collectors.get()] {
      return std::optional<ebpf::StatsSnapshot>(c->Snapshot());
    };
  }
  std::function<void(const std::string&)> track_sandbox;
  if (collectors != nullptr) {
    track_sandbox = [c = collectors.get()](const std::string& pod_cgroup) {
      std::string subtree = kubelet::TrackedSubtreeOf(pod_cgroup);
      if (subtree.empty()) return;
      if (auto s = c->Track(subtree); !s.ok()) {
        LOG(WARNING) << "berth: eBPF counters of pod cgroup " << pod_cgroup << ": " << s;
      }
    };
    // Sandboxes adopted from an earlier run.
    if (absl::StatusOr<kubelet::StatsTargets> t = kubelet::ListStatsTargets(&runtime); t.ok()) {
      for (const metrics::SummaryPod& pod : t->pods) track_sandbox(pod.cgroup_path);
    }
  }
  // Verbose-status facts (cgroup, pid, image, paths) per sandbox/container id, asked once per
  // id by every stats path (CRI metrics, /metrics/cadvisor, /stats/summary ...).
  kubelet::StatsInfoCache stats_info;
  kubelet::CriMetricsService cri_service(&runtime, std::move(cri_snapshot), track_sandbox,
                                         &stats_info);
  cri::server::CriServer cri_server(&cri_service, &images, sopts);
  if (auto s = cri_server.Start(); !s.ok()) {
    LOG(ERROR) << "berth: CRI server: " << s;
    return 1;
  }
  LOG(INFO) << "berth " << BERTH_VERSION << ": CRI serving on " << f.cri_socket;

  // --- stats: /metrics/cadvisor, /metrics/resource, /stats/summary, eBPF families ---
  // What to report comes from the runtime on every scrape (ListStatsTargets).
  auto list_targets = [&runtime, &stats_info]() -> kubelet::StatsTargets {
    absl::StatusOr<kubelet::StatsTargets> t = kubelet::ListStatsTargets(&runtime, &stats_info);
    if (!t.ok()) {
      LOG(WARNING) << "berth: stats: " << t.status();
      return {};
    }
    return *std::move(t);
  };
  // The pods' PersistentVolumeClaim volumes (set once the pod manager exists): pvcRef
  // volumes in /stats/summary and kubelet_volume_stats_* on /metrics.
  std::atomic<kubelet::VolumeManager*> claim_volume_source{nullptr};
  auto claim_volumes = [&claim_volume_source](const std::string& uid) {
    std::vector<metrics::SummaryVolume> out;
    kubelet::VolumeManager* vm = claim_volume_source.load();
    if (vm == nullptr) return out;
    for (const kubelet::ClaimVolume& c : vm->ClaimVolumes()) {
      const bool csi = !c.volume.csi_driver.empty();  // stats from the driver
      if ((!c.volume.filesystem_stats && !csi) || (!uid.empty() && c.pod_uid != uid)) continue;
      metrics::SummaryVolume v{c.volume_name, c.volume.host_path, false};
      v.pvc_name = c.volume.claim_name;
      v.pvc_namespace = c.volume.claim_namespace;
      v.filesystem = !csi;
      if (csi) {
        v.measure = [vm, mounted = c.volume]() -> absl::StatusOr<metrics::FsStats> {
          ASSIGN_OR_RETURN(csi::VolumeUsage u, vm->CsiVolumeStats(mounted));
          metrics::FsStats fs;
          fs.time_seconds = absl::ToDoubleSeconds(u.time - absl::UnixEpoch());
          fs.capacity_bytes = u.capacity_bytes;
          fs.available_bytes = u.available_bytes;
          fs.used_bytes = u.used_bytes;
          fs.inodes = u.inodes;
          fs.inodes_free = u.inodes_free;
          fs.inodes_used = u.inodes_used;
          return fs;
        };
      }
      out.push_back(std::move(v));
    }
    return out;
  };
  registry.AddCollector([claim_volumes](std::vector<metrics::FamilySnapshot>* out) {
    std::vector<std::pair<metrics::SummaryVolume, metrics::FsStats>> measured;
    for (metrics::SummaryVolume& v : claim_volumes("")) {
      absl::StatusOr<metrics::FsStats> fs =
          v.measure ? v.measure() : metrics::MeasureFilesystem(v.path);
      if (fs.ok()) measured.emplace_back(std::move(v), *fs);
    }
    if (measured.empty()) return;
    for (metrics::FamilySnapshot& f : metrics::VolumeStatsFamilies(measured))
      out->push_back(std::move(f));
  });
  metrics::Registry cadvisor_registry;
  metrics::Registry resource_registry;
  metrics::Registry probes_registry;  // prober_probe_total ... (filled by the prober)
  std::unique_ptr<metrics::SummaryProvider> summary;
  absl::StatusOr<metrics::CgroupReader> cgroup_reader = metrics::CgroupReader::Create();
  if (cgroup_reader.ok()) {
    // v1 blkio counters stay 0 on a disk whose throttle layer was never configured (Linux
    // >= 6.10 sets it up lazily): a no-op rule per disk makes container_fs_* count.
    if (int disks = cgroup_reader->EnableV1BlkioStats(); disks > 0) {
      LOG(INFO) << "berth: blkio accounting enabled on " << disks
                << " disk(s) (no-op throttle rule)";
    }
    metrics::CadvisorOptions cadvisor_opts;
    cadvisor_opts.fs_usage = &fs_usage;
    cadvisor_opts.root_fs_dir = f.root_dir;
    metrics::RegisterCadvisorMetrics(
        &cadvisor_registry, *cgroup_reader, [list_targets] { return list_targets().cadvisor; },
        cadvisor_opts);
    resource_registry.AddCollector(
        [reader = *cgroup_reader, list_targets](std::vector<metrics::FamilySnapshot>* out) {
          kubelet::CollectResourceMetrics(reader, list_targets(), out);
        });
    metrics::SummaryOptions sum_opts;
    sum_opts.fs_usage = &fs_usage;
    if (!f.runtime_only) sum_opts.pods_dir = JoinPath(f.root_dir, "kubelet/pods");
    sum_opts.root_dir = f.root_dir;
    sum_opts.claim_volumes = claim_volumes;
    sum_opts.image_dir = iopts.root_dir;
    summary = std::make_unique<metrics::SummaryProvider>(*cgroup_reader, f.node_name, sum_opts);
  } else {
    LOG(WARNING) << "berth: cgroup stats unavailable, /metrics/cadvisor, /metrics/resource "
                    "and /stats/summary stay empty: "
                 << cgroup_reader.status();
  }
  if (collectors != nullptr) {
    if (cgroup_reader.ok()) {
      std::string pods_cgroup = f.cgroup_root + "/kubepods";
      if (auto s = kubelet::AttachPodNetworkCounters(collectors.get(), *cgroup_reader, pods_cgroup);
          !s.ok()) {
        LOG(WARNING) << "berth: eBPF network counters of pods under " << pods_cgroup
                     << " disabled: " << s;
      }
    }
    registry.AddCollector(
        [c = collectors.get(), list_targets](std::vector<metrics::FamilySnapshot>* out) {
          std::vector<metrics::FamilySnapshot> families =
              kubelet::BuildEbpfFamilies(c->Snapshot(), kubelet::CgroupOwners(list_targets()));
          out->insert(out->end(), std::make_move_iterator(families.begin()),
                      std::make_move_iterator(families.end()));
        });
  }

  metrics::MetricsServer metrics_server(&registry, f.metrics_bind_address);
  metrics_server.AddRegistry("/metrics/cadvisor", &cadvisor_registry);
  metrics_server.AddRegistry("/metrics/resource", &resource_registry);
  metrics_server.AddRegistry("/metrics/probes", &probes_registry);
  metrics_server.AddHandler(
      "/stats/summary",
      [&runtime, &summary, &stats_info]() -> absl::StatusOr<std::string> {
        if (summary == nullptr) return absl::UnavailableError("cgroup stats unavailable");
        ASSIGN_OR_RETURN(kubelet::StatsTargets t, kubelet::ListStatsTargets(&runtime, &stats_info));
        return summary->Summary(t.pods);
      },
      "application/json");
  if (auto s = metrics_server.Start(); !s.ok()) {
    LOG(ERROR) << "berth: metrics server on " << f.metrics_bind_address << ": " << s;
    return 1;
  }

  // Node-pressure eviction thresholds and GC policies (checked before anything starts acting).
  std::vector<kubelet::Threshold> thresholds;
  kubelet::ImageGcPolicy image_gc_policy;
  kubelet::ContainerGcPolicy container_gc_policy;
  absl::Duration pressure_transition, image_gc_period, container_gc_period;
  {
    absl::Status bad;
    auto map_flag = [&bad](const char* name, const std::string& v, char sep) {
      absl::StatusOr<std::map<std::string, std::string>> m = kubelet::ParseMapFlag(v, sep);
      if (!m.ok() && bad.ok())
        bad = absl::InvalidArgumentError(absl::StrCat(name, ": ", m.status().message()));
      return m.ok() ? *m : std::map<std::string, std::string>();
    };
    auto hard = map_flag("--eviction-hard", f.eviction_hard, '<');
    auto soft = map_flag("--eviction-soft", f.eviction_soft, '<');
    auto grace = map_flag("--eviction-soft-grace-period", f.eviction_soft_grace_period, '=');
    auto reclaim = map_flag("--eviction-minimum-reclaim", f.eviction_minimum_reclaim, '=');
    if (bad.ok()) {
      auto t = kubelet::ParseThresholdConfig(hard, soft, grace, reclaim);
      if (t.ok()) {
        thresholds = *t;
      } else {
        bad = absl::InvalidArgumentError(absl::StrCat("--eviction-*: ", t.status().message()));
      }
    }
    image_gc_policy.high_threshold_percent = f.image_gc_high_threshold;
    image_gc_policy.low_threshold_percent = f.image_gc_low_threshold;
    // (durations validated by the flags' checks)
    image_gc_policy.min_age = *kubelet::ParseGoDuration(f.minimum_image_ttl_duration);
    if (absl::Status s = kubelet::ValidateImageGcPolicy(image_gc_policy); !s.ok() && bad.ok()) {
      bad = absl::InvalidArgumentError(absl::StrCat("--image-gc-*: ", s.message()));
    }
    container_gc_policy.min_age = *kubelet::ParseGoDuration(f.minimum_container_ttl_duration);
    container_gc_policy.max_per_pod_container = f.maximum_dead_containers_per_container;
    container_gc_policy.max_containers = f.maximum_dead_containers;
    pressure_transition = *kubelet::ParseGoDuration(f.eviction_pressure_transition_period);
    image_gc_period = *kubelet::ParseGoDuration(f.image_gc_period);
    container_gc_period = *kubelet::ParseGoDuration(f.container_gc_period);
    if ((image_gc_period <= absl::ZeroDuration() || container_gc_period <= absl::ZeroDuration()) &&
        bad.ok()) {
      bad = absl::InvalidArgumentError("--image-gc-period and --container-gc-period must be > 0");
    }
    if (!bad.ok()) {
      LOG(ERROR) << "berth: " << bad.message();
      return 2;
    }
  }

  // --- kubelet role ---
  std::unique_ptr<kubelet::ApiClient> api;
  std::unique_ptr<kubelet::NodeStatusManager> node_status;
  std::unique_ptr<kubelet::LeaseController> lease;
  std::unique_ptr<kubelet::EventRecorder> events;
  // Static pods (--pod-manifest-path): mirror pods outlive the pod manager that asks them
  // for mirror UIDs; the file source, which feeds both, goes first.
  std::unique_ptr<kubelet::MirrorPodManager> mirrors;
  std::unique_ptr<kubelet::PodManager> pods;
  std::unique_ptr<kubelet::FilePodSource> static_pods;
  std::unique_ptr<csi::CsiManager> csi_manager;  // CSINode, plugins_registry watcher, CSI volumes
  std::unique_ptr<kubelet::ListWatch> pod_watch;
  kubelet::ServiceEnv services;
  std::unique_ptr<kubelet::ListWatch> service_watch;
  std::unique_ptr<kubelet::server::Auth> server_auth;
  std::unique_ptr<kubelet::server::KubeletServer> kubelet_server;
  std::unique_ptr<kubelet::server::ContainerLogManager> log_manager;
  std::unique_ptr<kubelet::LocalStorageEvictor> evictor;
  std::unique_ptr<kubelet::ImageGcManager> image_gc;
  std::unique_ptr<kubelet::ContainerGc> container_gc;
  std::unique_ptr<kubelet::GcLoop> gc_loop;
  std::unique_ptr<kubelet::NodeEvictionManager> node_eviction;
  std::unique_ptr<kubelet::MemoryThresholdNotifier> memory_notifier;
  auto pods_synced = std::make_shared<std::atomic<bool>>(false);
  std::unique_ptr<metrics::MetricsServer> healthz_server;
  if (!f.runtime_only) {
    kubelet::certificate::NodeCredentialsOptions copts;
    copts.kubeconfig = f.kubeconfig;
    copts.bootstrap_kubeconfig = f.bootstrap_kubeconfig;
    copts.cert_dir = f.cert_dir;
    copts.node_name = f.node_name;
    copts.rotate = f.rotate_certificates;
    auto creds = kubelet::certificate::SetUpNodeCredentials(copts, g_stop);
    if (!creds.ok()) {
      if (g_stop.load()) return 0;
      LOG(ERROR) << "berth: " << creds.status();
      return 1;
    }
    auto client = kubelet::ApiClient::Create(creds->config, creds->api_options);
    if (!client.ok()) {
      LOG(ERROR) << "berth: " << client.status();
      return 1;
    }
    api = std::move(*client);
    client_certs = std::move(creds->client_manager);
    if (client_certs != nullptr) {
      kubelet::certificate::RegisterTtlGauge(
          &registry, "kubelet_certificate_manager_client_ttl_seconds", client_certs.get());
      client_certs->Start();
      if (client_certs->Current() == nullptr) {
        LOG(INFO) << "berth: waiting for the node's client certificate (TLS bootstrap)";
        if (!client_certs->WaitForCertificate(g_stop, absl::InfiniteDuration())) return 0;
      }
    }
    auto machine = kubelet::ReadMachineInfo(f.root_dir);
    if (!machine.ok()) {
      LOG(ERROR) << "berth: machine info: " << machine.status();
      return 1;
    }
    if (!f.hostname_override.empty()) machine->hostname = f.hostname_override;
    kubelet::NodeStatusOptions nopts;
    nopts.node_name = f.node_name;
    nopts.node_ip = f.node_ip;
    nopts.runtime_version = std::string("berth://") + BERTH_VERSION;
    nopts.kubelet_port = f.port;
    nopts.max_pods = f.max_pods;
    auto labels = kubelet::ParseNodeLabels(f.node_labels);
    auto taints = kubelet::ParseTaints(f.register_with_taints);
    for (const absl::Status& s : {labels.status(), taints.status()}) {
      if (!s.ok()) {
        LOG(ERROR) << "berth: " << s.message();
        return 2;
      }
    }
    nopts.labels = *labels;
    nopts.taints = *taints;
    node_status = std::make_unique<kubelet::NodeStatusManager>(api.get(), nopts, *machine);
    {
      // As kubelet's updatePodCIDR: the runtime learns the node's pod CIDRs (CNI ipRanges).
      std::string conf_dir = f.cni_conf_dir;
      std::string ipam_dir = JoinPath(f.root_dir, "cni/networks");
      bool write_conf = f.pod_cidr_from_node;
      cri::runtime::Runtime* rt = &runtime;
      node_status->SetPodCidrCallback(
          [conf_dir, ipam_dir, write_conf, rt](const std::string& cidr,
                                               const std::vector<std::string>& cidrs) {
            cri::v1::UpdateRuntimeConfigRequest req;
            req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(
                cidrs.empty() ? cidr : absl::StrJoin(cidrs, ","));
            (void)rt->UpdateRuntimeConfig(req);
            if (!write_conf) return;
            if (auto s = kubelet::WriteDefaultCniConfig(conf_dir, cidr, ipam_dir); !s.ok()) {
              LOG(WARNING) << "pod CIDR " << cidr << ": " << s;
            }
          });
    }
    {
      // As kubelet's runtimeState: the node is Ready only while the runtime reports
      // RuntimeReady and NetworkReady (through the CRI, like any runtime).
      cri::RuntimeService* rs = &runtime;
      // As the kubelet: the CSINode exists before the Node is Ready.
      csi_manager = std::make_unique<csi::CsiManager>(api.get(), f.node_name,
                                                      JoinPath(f.root_dir, "kubelet"));
      csi::CsiManager* cm = csi_manager.get();
      // Attachable CSI volumes in Node.status.volumesInUse; a mount waits until reported.
      kubelet::NodeStatusManager* nsm = node_status.get();
      node_status->SetVolumesInUse(
          [cm] { return cm->volumes().VolumesInUse(); },
          [cm](const std::vector<std::string>& v) { cm->volumes().MarkVolumesReportedInUse(v); });
      cm->volumes().SetVolumesInUseChanged([nsm] { nsm->RequestUpdate(); });
      node_status->SetReadinessCheck([rs, cm]() -> std::string {
        auto st = rs->Status(cri::v1::StatusRequest());
        if (!st.ok()) return absl::StrCat("container runtime is down: ", st.status().ToString());
        std::string why;
        for (const auto& c : st->status().conditions()) {
          if (c.status()) continue;
          bool net = c.type() == "NetworkReady";
          if (!net && c.type() != "RuntimeReady") continue;
          absl::StrAppend(
              &why, why.empty() ? "" : "; ",
              net ? "container runtime network not ready: " : "container runtime not ready: ",
              c.type(), "=false reason:", c.reason(), " message:", c.message());
        }
        if (std::string csi_why = cm->NotReady(); !csi_why.empty())
          absl::StrAppend(&why, why.empty() ? "" : "; ", csi_why);
        return why;
      });
    }
    kubelet::LeaseOptions lopts;
    lopts.node_name = f.node_name;
    kubelet::NodeStatusManager* ns = node_status.get();
    lopts.node_uid = [ns] { return ns->NodeUid(); };
    lease = std::make_unique<kubelet::LeaseController>(api.get(), lopts);

    kubelet::PodManagerOptions popts;
    popts.node_name = f.node_name;
    popts.node_ip = f.node_ip;
    popts.root_dir = JoinPath(f.root_dir, "kubelet");
    popts.seccomp_default = f.seccomp_default;
    popts.log_root = f.log_root;
    popts.cluster_dns = f.cluster_dns;
    popts.cluster_domain = f.cluster_domain;
    popts.resolv_conf = f.resolv_conf;
    popts.allowed_unsafe_sysctls = f.allowed_unsafe_sysctls;
    events = std::make_unique<kubelet::EventRecorder>(api.get(), f.node_name);
    kubelet::EventRecorder* er = events.get();
    popts.record_event = [er](const kubelet::Json& pod, const std::string& type,
                              const std::string& reason, const std::string& message,
                              const std::string& field_path) {
      er->Record(pod, type, reason, message, field_path);
    };
    popts.probe_metrics = &probes_registry;
    popts.kubelet_metrics = &kubelet_metrics;
    popts.service_env = &services;
    if (!f.pod_manifest_path.empty()) {
      kubelet::MirrorPodManagerOptions mopts;
      mopts.node_name = f.node_name;
      mopts.node_uid = [ns] { return ns->NodeUid(); };
      mopts.on_mirror_changed = [&pods](const std::string& uid) {
        if (pods) pods->MirrorPodChanged(uid);
      };
      mirrors = std::make_unique<kubelet::MirrorPodManager>(api.get(), mopts);
      kubelet::MirrorPodManager* mm = mirrors.get();
      popts.on_mirror_pod = [mm](const std::string& type, const kubelet::Json& mirror) {
        mm->HandleMirrorPodEvent(type, mirror);
      };
      popts.mirror_uid_of = [mm](const std::string& uid) { return mm->MirrorUidOf(uid); };
    }
    pods = std::make_unique<kubelet::PodManager>(api.get(), &runtime, &images, popts);
    kubelet::PodManager* pm = pods.get();
    if (mirrors) {
      kubelet::FilePodSourceOptions sopts;
      sopts.path = f.pod_manifest_path;
      sopts.node_name = f.node_name;
      sopts.file_check_frequency = *kubelet::ParseGoDuration(f.file_check_frequency);
      kubelet::MirrorPodManager* mm = mirrors.get();
      static_pods = std::make_unique<kubelet::FilePodSource>(
          sopts, [pm, mm](const std::string& type, const kubelet::Json& pod) {
            pm->HandlePodEvent(type, pod);
            mm->HandleStaticPodEvent(type, pod);
          });
    }
    claim_volume_source.store(&pm->volumes());
    pm->volumes().SetCsi(&csi_manager->volumes());
    csi_manager->Start();
    runtime.OnContainerExit([pm](const std::string& id) { pm->OnContainerEvent(id); });

    kubelet::ListWatchOptions wopts;
    wopts.path = "/api/v1/pods";
    wopts.field_selector = "spec.nodeName=" + f.node_name;
    kubelet::ListWatchHandlers h;
    h.on_add = [pm](const kubelet::Json& o) { pm->HandlePodEvent("ADDED", o); };
    h.on_update = [pm](const kubelet::Json&, const kubelet::Json& o) {
      pm->HandlePodEvent("MODIFIED", o);
    };
    h.on_delete = [pm](const kubelet::Json& o) { pm->HandlePodEvent("DELETED", o); };
    // After the first full list: sandboxes of pods that no longer exist (deleted while berth
    // was down) are stopped and removed.
    kubelet::MirrorPodManager* mm = mirrors.get();
    h.on_synced = [pm, mm, pods_synced] {
      pm->HandlePodsSynced();
      if (mm != nullptr) mm->HandleMirrorPodsSynced();
      pods_synced->store(true);
    };
    pod_watch = std::make_unique<kubelet::ListWatch>(api.get(), wopts, h);
    // The cluster's services, for the containers' service links (as the kubelet's informer).
    kubelet::ListWatchOptions sopts;
    sopts.path = "/api/v1/services";
    service_watch = std::make_unique<kubelet::ListWatch>(api.get(), sopts, services.Handlers());

    if (f.port != 0) {
      kubelet::server::KubeletServerOptions kopts;
      kopts.address = f.address;
      kopts.port = f.port;
      kopts.tls_cert_file = f.tls_cert_file;
      kopts.tls_private_key_file = f.tls_private_key_file;
      kopts.client_ca_file = f.client_ca_file;
      kopts.node_name = f.node_name;
      kopts.checkpoints_dir =
          JoinPath(f.root_dir, "checkpoints");  // as kubelet's <root-dir>/checkpoints
      if (kopts.tls_cert_file.empty() != kopts.tls_private_key_file.empty()) {
        LOG(ERROR) << "--tls-cert-file and --tls-private-key-file go together";
        return 2;
      }
      if (kopts.tls_cert_file.empty()) {
        kopts.tls_cert_file = JoinPath(f.cert_dir, "kubelet.crt");
        kopts.tls_private_key_file = JoinPath(f.cert_dir, "kubelet.key");
        std::vector<std::string> ips;
        if (!f.node_ip.empty()) ips.push_back(f.node_ip);
        if (auto s = kubelet::server::EnsureSelfSignedCert(
                kopts.tls_cert_file, kopts.tls_private_key_file, f.node_name, ips);
            !s.ok()) {
          LOG(ERROR) << "berth: self-signed serving certificate: " << s;
          return 1;
        }
      }
      if (f.rotate_server_certificates) {
        // serverTLSBootstrap: a kubelet-serving CSR with the node's addresses; the self-signed
        // pair above serves until it is approved.
        std::vector<kubelet::certificate::NodeAddress> addrs;
        if (!f.node_ip.empty()) addrs.push_back({"InternalIP", f.node_ip});
        addrs.push_back({"Hostname", machine->hostname.empty() ? f.node_name : machine->hostname});
        auto m = kubelet::certificate::NewServingCertificateManager(
            api.get(), f.node_name, f.cert_dir, [addrs] { return addrs; });
        if (!m.ok()) {
          LOG(ERROR) << "berth: serving certificate manager: " << m.status();
          return 1;
        }
        serving_certs = std::move(*m);
        kubelet::certificate::RegisterTtlGauge(
            &registry, "kubelet_certificate_manager_server_ttl_seconds", serving_certs.get());
        kubelet::certificate::CertificateManager* sc = serving_certs.get();
        kopts.serving_certificate = [sc] { return sc->Current(); };
        serving_certs->Start();
      }
      if (f.client_ca_file.empty()) {
        LOG(WARNING) << "berth: no --client-ca-file: client certificates are refused (401), so the "
                        "API server's calls for kubectl logs/exec/attach/port-forward fail; give "
                        "the CA that signs its kubelet client certificate (kubeadm: "
                        "/etc/kubernetes/pki/ca.crt)";
      }
      kubelet::server::AuthOptions aopts;
      aopts.anonymous = f.anonymous_auth;
      aopts.token_webhook = f.authentication_token_webhook;
      aopts.authorize_webhook = f.authorization_mode == "Webhook";
      // (validated by the flags' checks)
      aopts.token_ttl = *kubelet::ParseGoDuration(f.authentication_token_webhook_cache_ttl);
      aopts.allowed_ttl = *kubelet::ParseGoDuration(f.authorization_webhook_cache_authorized_ttl);
      aopts.denied_ttl = *kubelet::ParseGoDuration(f.authorization_webhook_cache_unauthorized_ttl);
      server_auth = std::make_unique<kubelet::server::Auth>(api.get(), aopts);
      kubelet_server =
          std::make_unique<kubelet::server::KubeletServer>(kopts, &runtime, server_auth.get());
      // The Prometheus registries, served as on --metrics-bind-address.
      for (auto [path, reg] :
           {std::pair{"/metrics", &registry}, std::pair{"/metrics/cadvisor", &cadvisor_registry},
            std::pair{"/metrics/resource", &resource_registry},
            std::pair{"/metrics/probes", &probes_registry}}) {
        kubelet_server->AddHandler(
            path, [reg]() -> absl::StatusOr<std::string> { return reg->Expose(); },
            "text/plain; version=0.0.4");
      }
      kubelet_server->AddHandler(
          "/stats/summary",
          [&runtime, &summary, &stats_info]() -> absl::StatusOr<std::string> {
            if (summary == nullptr) return absl::UnavailableError("cgroup stats unavailable");
            ASSIGN_OR_RETURN(kubelet::StatsTargets t,
                             kubelet::ListStatsTargets(&runtime, &stats_info));
            return summary->Summary(t.pods);
          },
          "application/json");
      // The pods bound to this node (the upstream kubelet serves its pod manager's copy).
      kubelet::ApiClient* client_ptr = api.get();
      std::string pods_path = "/api/v1/pods?fieldSelector=spec.nodeName%3D" + f.node_name;
      kubelet_server->AddHandler(
          "/pods",
          [client_ptr, pods_path]() -> absl::StatusOr<std::string> {
            ASSIGN_OR_RETURN(kubelet::Json list, client_ptr->Get(pods_path));
            return list.dump();
          },
          "application/json");
      if (auto s = kubelet_server->Start(); !s.ok()) {
        LOG(ERROR) << "berth: " << s;
        return 1;
      }
      LOG(INFO) << "berth: kubelet server on " << f.address << ":" << kubelet_server->port();
    }
    kubelet::server::ContainerLogManagerOptions lmopts;
    absl::StatusOr<int64_t> max_size =
        kubelet::server::ParseQuantityBytes(f.container_log_max_size);
    if (!max_size.ok() || f.container_log_max_files < 2) {
      LOG(ERROR) << "--container-log-max-size must be a size like 10Mi and "
                    "--container-log-max-files at least 2";
      return 2;
    }
    lmopts.max_size_bytes = *max_size;
    lmopts.max_files = f.container_log_max_files;
    log_manager = std::make_unique<kubelet::server::ContainerLogManager>(&runtime, lmopts);
    log_manager->Start();

    events->Start();
    node_status->Start();
    lease->Start();
    pods->Start();
    if (static_pods) {
      // The first read is synchronous: static pods are known before the first LIST of API
      // pods, whose orphan cleanup would otherwise stop their (adopted) containers.
      static_pods->Start();
      mirrors->Start();
      LOG(INFO) << "berth: static pods from " << f.pod_manifest_path;
    }
    service_watch->Start();
    pod_watch->Start();
    // Local ephemeral-storage eviction (emptyDir sizeLimit, ephemeral-storage limits), checked
    // after every background filesystem pass.
    kubelet::LocalStorageEvictor::Deps edeps;
    edeps.fs = &fs_usage;
    edeps.pods = [pm] { return pm->ActivePods(); };
    edeps.running = [list_targets] { return list_targets().pods; };
    edeps.evict = [pm](const std::string& uid, const std::string& message) {
      pm->EvictPod(uid, message);
    };
    edeps.pods_dir = JoinPath(f.root_dir, "kubelet/pods");
    evictor = std::make_unique<kubelet::LocalStorageEvictor>(edeps);
    fs_usage.OnRefresh([e = evictor.get()] { e->Check(); });

    // Image and dead-container GC; node-pressure eviction reclaims through them first.
    const std::string image_dir = iopts.root_dir;
    image_gc = std::make_unique<kubelet::ImageGcManager>(
        &images, &runtime, image_gc_policy, [image_dir]() -> absl::StatusOr<kubelet::FsCapacity> {
          ASSIGN_OR_RETURN(kubelet::NodeStats::Fs fs, kubelet::ReadFsStats(image_dir));
          return kubelet::FsCapacity{fs.capacity_bytes, fs.available_bytes};
        });
    container_gc = std::make_unique<kubelet::ContainerGc>(
        &runtime, container_gc_policy, [pm, pods_synced](const std::string& uid) {
          // Until the first pod list, no pod counts as deleted (upstream allSourcesReady).
          for (const kubelet::api::Pod& p : pm->ActivePods()) {
            if (p.metadata.uid == uid) return kubelet::PodGcState::kActive;
          }
          std::vector<std::string> known = pm->PodUids();
          if (std::find(known.begin(), known.end(), uid) != known.end())
            return kubelet::PodGcState::kTerminated;
          return pods_synced->load() ? kubelet::PodGcState::kDeleted : kubelet::PodGcState::kActive;
        });
    {
      kubelet::ImageGcManager* ig = image_gc.get();
      kubelet::ContainerGc* cg = container_gc.get();
      kubelet::EventRecorder* er = events.get();
      gc_loop = std::make_unique<kubelet::GcLoop>(
          image_gc_period,
          [ig, er] {
            absl::StatusOr<int64_t> freed = ig->GarbageCollect();
            if (!freed.ok()) {
              LOG(WARNING) << "image gc: " << freed.status();
              er->RecordNode("Warning", "ImageGCFailed", std::string(freed.status().message()));
            }
          },
          container_gc_period,
          [cg] {
            if (auto r = cg->GarbageCollect(false); !r.ok()) {
              LOG(WARNING) << "container gc: " << r.status();
            }
          });
      gc_loop->Start();
    }

    kubelet::NodeEvictionManager::Config ecfg;
    ecfg.thresholds = thresholds;
    ecfg.pressure_transition_period = pressure_transition;
    ecfg.max_pod_grace_period_s = f.eviction_max_pod_grace_period;
    kubelet::NodeEvictionManager::Deps ndeps;
    const int64_t memory_capacity = machine->memory_kib * 1024;
    std::optional<metrics::CgroupReader> reader;
    if (cgroup_reader.ok()) reader = *cgroup_reader;
    // The memory threshold notifier (cgroup v1: memory.usage_in_bytes + cgroup.event_control)
    // wakes the eviction manager as soon as memory.available crosses its threshold.
    std::optional<kubelet::Threshold> memory_threshold;
    for (const kubelet::Threshold& t : thresholds) {
      if (t.signal == kubelet::Signal::kMemoryAvailable && (!memory_threshold || t.hard()))
        memory_threshold = t;
    }
    std::string memcg = V1CgroupMount(HostCgroupMounts(), "memory");
    auto notifier_armed = std::make_shared<absl::Time>(absl::InfinitePast());
    ndeps.node_stats = [root = f.root_dir, image_dir, memory_capacity, reader, memory_threshold,
                        notifier = &memory_notifier,
                        notifier_armed]() -> absl::StatusOr<kubelet::NodeStats> {
      kubelet::NodeStats st;
      st.memory_capacity = memory_capacity;
      if (reader) {
        absl::StatusOr<metrics::CgroupStats> root_cg = reader->Read("/");
        if (root_cg.ok() && root_cg->has_memory) {
          st.memory_working_set = static_cast<int64_t>(root_cg->memory_working_set_bytes);
          // upstream refreshes the notifier's threshold every 10 s (notifierRefreshInterval).
          if (*notifier != nullptr && memory_threshold &&
              absl::Now() - *notifier_armed >= absl::Seconds(10)) {
            *notifier_armed = absl::Now();
            std::optional<int64_t> at = kubelet::MemoryNotifierThreshold(
                *memory_threshold, memory_capacity,
                static_cast<int64_t>(root_cg->memory_inactive_file_bytes));
            if (at) {
              if (absl::Status s = (*notifier)->UpdateThreshold(*at); !s.ok()) {
                LOG(WARNING) << "eviction: memory threshold notifier: " << s;
                notifier->reset();
              }
            }
          }
        }
      }
      ASSIGN_OR_RETURN(st.nodefs, kubelet::ReadFsStats(root));
      ASSIGN_OR_RETURN(st.imagefs, kubelet::ReadFsStats(image_dir));
      kubelet::ReadPidStats("/proc", &st);
      return st;
    };
    ndeps.pods = [pm] { return pm->ActivePods(); };
    ndeps.usage = [list_targets, reader, fs = &fs_usage,
                   pods_dir = JoinPath(f.root_dir, "kubelet/pods")] {
      std::map<std::string, kubelet::PodUsage> out;
      std::set<std::string> paths;
      auto measure = [&](const std::string& path) -> std::optional<int64_t> {
        if (path.empty()) return std::nullopt;
        paths.insert(path);
        std::optional<metrics::FsStats> s = fs->Get(path);
        if (!s) return std::nullopt;
        return static_cast<int64_t>(s->used_bytes);
      };
      for (const metrics::SummaryPod& p : list_targets().pods) {
        kubelet::PodUsage& u = out[p.uid];
        if (reader) {
          if (auto st = reader->Read(p.cgroup_path); st.ok()) {
            if (st->has_memory) u.memory = static_cast<int64_t>(st->memory_working_set_bytes);
            if (st->has_pids) u.processes = static_cast<int64_t>(st->pids_current);
          }
        }
        int64_t disk = 0;
        bool measured = false;
        for (const metrics::SummaryContainer& c : p.containers) {
          if (reader) {
            if (auto st = reader->Read(c.cgroup_path); st.ok() && st->has_memory) {
              u.container_memory[c.name] = static_cast<int64_t>(st->memory_working_set_bytes);
            }
          }
          std::optional<int64_t> rootfs = measure(c.rootfs_dir), logs = measure(c.log_path);
          if (!rootfs && !logs) continue;
          u.container_disk[c.name] = rootfs.value_or(0) + logs.value_or(0);
          disk += u.container_disk[c.name];
          measured = true;
        }
        std::error_code ec;
        std::filesystem::path dirs =
            std::filesystem::path(pods_dir) / p.uid / "volumes" / "kubernetes.io~empty-dir";
        for (const auto& e : std::filesystem::directory_iterator(dirs, ec)) {
          if (std::optional<int64_t> used = measure(e.path().string())) {
            disk += *used;
            measured = true;
          }
        }
        if (measured) u.disk = disk;
      }
      fs->Want("node-eviction", paths);
      return out;
    };
    ndeps.pod_cleaned_up = [pods_dir =
                                JoinPath(f.root_dir, "kubelet/pods")](const std::string& uid) {
      std::error_code ec;
      return !std::filesystem::exists(std::filesystem::path(pods_dir) / uid / "volumes", ec);
    };
    ndeps.evict = [pm](const kubelet::api::Pod& pod, const kubelet::EvictionMessage& m,
                       int64_t /*grace: EvictPod kills at once*/) {
      pm->EvictPod(pod.metadata.uid, m.message);
      return true;
    };
    {
      kubelet::ContainerGc* cg = container_gc.get();
      kubelet::ImageGcManager* ig = image_gc.get();
      ndeps.disk_reclaim.push_back([cg]() { return cg->GarbageCollect(true).status(); });
      ndeps.disk_reclaim.push_back([ig]() { return ig->DeleteUnusedImages().status(); });
    }
    ndeps.node_event = [er = events.get()](const std::string& reason, const std::string& message) {
      er->RecordNode("Warning", reason, message);
    };
    node_eviction = std::make_unique<kubelet::NodeEvictionManager>(ecfg, ndeps);
    if (memory_threshold && !memcg.empty()) {
      kubelet::NodeEvictionManager* em = node_eviction.get();
      memory_notifier =
          std::make_unique<kubelet::MemoryThresholdNotifier>(memcg, [em] { em->Trigger(); });
    }
    {
      kubelet::NodeEvictionManager* em = node_eviction.get();
      node_status->SetPressureCheck([em] { return em->Conditions(); });
    }
    node_eviction->Start();
    if (f.healthz_port != 0) {
      // As the kubelet's healthz server: GET /healthz -> "ok". A bind failure is logged and
      // berth runs on (upstream logs it too and does not exit).
      const std::string& host = f.healthz_bind_address;
      healthz_server = std::make_unique<metrics::MetricsServer>(
          nullptr,
          absl::StrCat(absl::StrContains(host, ':') ? absl::StrCat("[", host, "]") : host, ":",
                       f.healthz_port),
          "healthz server");
      if (auto s = healthz_server->Start(); !s.ok()) {
        LOG(ERROR) << "berth: " << s;
      }
    }
    LOG(INFO) << "berth: node " << f.node_name << " joining " << api->Server();
  }

  // Wait for SIGTERM/SIGINT.
  while (!g_stop.load()) {
    char c;
    ssize_t n = read(g_signal_pipe[0], &c, 1);
    if (n < 0 && errno != EINTR) break;
  }
  LOG(INFO) << "berth: stopping (pods keep running)";
  fs_usage.Stop();  // its eviction checks use the pod manager
  if (healthz_server) healthz_server->Stop();
  if (kubelet_server) kubelet_server->Stop();
  if (log_manager) log_manager->Stop();
  if (pod_watch) pod_watch->Stop();
  if (service_watch) service_watch->Stop();
  if (static_pods) static_pods->Stop();
  if (mirrors) mirrors->Stop();
  if (node_eviction) node_eviction->Stop();
  if (memory_notifier) memory_notifier->Stop();
  if (gc_loop) gc_loop->Stop();
  if (pods) pods->Stop();
  if (csi_manager) csi_manager->Stop();
  if (events) events->Stop();
  if (lease) lease->Stop();
  if (node_status) node_status->Stop();
  if (serving_certs) serving_certs->Stop();
  if (client_certs) client_certs->Stop();
  metrics_server.Stop();
  cri_server.Shutdown();
  return 0;
}

}  // namespace
}  // namespace berth

int main(int argc, char** argv) { return berth::RealMain(argc, argv); }
