// The kubelet's volume manager for the in-tree volume types: emptyDir, hostPath, configMap,
// secret, downwardAPI, projected (serviceAccountToken, configMap, secret, downwardAPI
// sources), and persistentVolumeClaim / generic ephemeral volumes bound to hostPath or local
// PersistentVolumes (used in place, as upstream's hostPath plugin does). A pod's fsGroup is
// applied to the volumes upstream manages ownership of (SetVolumeOwnership). Volume directories
// live under
// `<root>/pods/<uid>/volumes/<plugin>/<name>` (plugin "kubernetes.io~empty-dir",
// "kubernetes.io~projected", ... as upstream). Files are written with the AtomicWriter (..data
// symlink swap) with the volume's defaultMode (or the item's mode). As upstream, secret,
// downwardAPI and projected volumes and emptyDirs of medium "Memory" are tmpfs mounts (sized by the
// pod's memory limit, an emptyDir's sizeLimit, at most the node's memory); configMap volumes and
// other emptyDirs are plain directories on the kubelet root's filesystem.
//
// Service account tokens come from the TokenRequest API (POST
// /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token) bound to the pod, and are rewritten
// once 80% of their lifetime has passed (upstream token manager's rule).
//
// Thread safety: all methods may be called from many threads; calls for one pod are expected
// to be serialized by the caller (the pod worker), calls for different pods run in parallel.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kubelet/api_client.h"

namespace berth::csi {
class CsiVolumes;
struct VolumeUsage;
}  // namespace berth::csi

namespace berth::kubelet {

// A volume ready for containers.
struct MountedVolume {
  std::string host_path;   // directory (or file, for hostPath) to bind into containers
  bool read_only = false;  // configMap/secret/projected/downwardAPI are always read-only
  // A persistentVolumeClaim or generic ephemeral volume: its claim.
  std::string claim_namespace;
  std::string claim_name;
  // The volume plugin reports stats of the filesystem holding host_path (upstream local
  // PVs' MetricsStatFS); false for hostPath PVs (MetricsNil upstream).
  bool filesystem_stats = false;
  // The pod's fsGroup applies (SetVolumeOwnership): emptyDir, configMap, secret, downwardAPI,
  // projected and local PVs; not hostPath (as upstream's plugins).
  bool ownership_managed = false;
  // A PV's pv.beta.kubernetes.io/gid annotation: a supplemental group of the pod's containers.
  std::optional<int64_t> supplemental_gid;
  // A CSI volume: its driver and volume handle (stats come from the driver, CsiVolumeStats).
  std::string csi_driver;
  std::string csi_handle;
};

// The kubelet's volume.SetVolumeOwnership for a pod's fsGroup: every file and directory under
// `dir` (itself included; symlinks not followed) gets group `fs_group` and the group bits
// rw (r when `read_only`), directories also x and setgid. `on_root_mismatch`
// (fsGroupChangePolicy OnRootMismatch): nothing is done when `dir` already has that group and
// those bits. Errors: the first chown/chmod that failed.
absl::Status SetVolumeOwnership(const std::string& dir, int64_t fs_group, bool read_only,
                                bool on_root_mismatch);

// A set-up volume of a pod that comes from a PersistentVolumeClaim (see ClaimVolumes).
struct ClaimVolume {
  std::string pod_uid;
  std::string volume_name;  // the pod's volume name
  MountedVolume volume;
};

class VolumeManager {
 public:
  // `api` is not owned and must outlive this object. `root_dir` is the kubelet root
  // (e.g. /var/lib/berth/kubelet). `clock` returns the current time (for token refresh).
  VolumeManager(ApiClient* api, std::string root_dir,
                std::function<absl::Time()> clock = absl::Now);

  // Sets up every volume of `pod` (idempotent). Volumes already set up that the kubelet
  // writes (configMap, secret, downwardAPI, projected) are brought up to date with their
  // sources through the AtomicWriter (kubelet/atomic_writer.h): changed objects, the pod's
  // labels and annotations, service account tokens that are due; an update that fails is
  // logged and leaves the old content. Returns volume name -> mounted volume. `pod_ip`/`host_ip`
  // feed downward API fields. Errors: the first volume that failed, annotated with the volume's
  // name (an optional configMap/secret that is missing is not an error).
  absl::StatusOr<std::map<std::string, MountedVolume>> SetUpPodVolumes(const Json& pod,
                                                                       const std::string& host_ip);

  // When the next token of pod `uid` must be refreshed; nullopt when it has no tokens.
  std::optional<absl::Time> NextRefresh(const std::string& uid);

  // The set-up volumes of every pod that come from PersistentVolumeClaims, in pod-uid and
  // volume-name order (for /stats/summary pvcRef and kubelet_volume_stats_*).
  std::vector<ClaimVolume> ClaimVolumes();

  // The usage of CSI volume `v` (csi_driver set) from its driver's NodeGetVolumeStats
  // (csi::CsiVolumes::VolumeStats, cached). Errors: as that; FailedPrecondition without CSI.
  absl::StatusOr<csi::VolumeUsage> CsiVolumeStats(const MountedVolume& v);

  // Unmounts the tmpfs volumes, removes `<root>/pods/<uid>/volumes` and forgets the pod's
  // tokens. OK when absent. Errors: an unmount or removal failed (the caller retries).
  absl::Status TearDownPodVolumes(const std::string& uid);

  // CSI volumes (inline `csi` sources and PVs with a `csi` source) go through `csi` (not
  // owned; csi/csi_volume.h). Without it they are Unimplemented. Call before the first pod.
  void SetCsi(csi::CsiVolumes* csi) { csi_ = csi; }

  // The kubelet root this manager was given.
  const std::string& root_dir() const { return root_dir_; }

  // `<root>/pods/<uid>`, the pod's directory (also used for termination-log files).
  std::string PodDir(const std::string& uid) const;

 private:
  struct TokenState {
    absl::Time refresh_at;
    std::string token;  // the current token, written again while fresh
  };
  struct PodVolumes {
    std::map<std::string, MountedVolume> mounted;  // set-up volumes by name
    std::map<std::string, TokenState> tokens;      // "<volume>/<path>" -> refresh time
  };

  // A hostPath source (of a volume or a PV): checks or creates the path per its type.
  absl::StatusOr<MountedVolume> SetUpHostPath(const Json& host_path, bool read_only);
  // The PersistentVolume bound to a persistentVolumeClaim or generic ephemeral volume of
  // `pod`, checked as the kubelet's desired-state populator does: the PVC is Bound, not being
  // deleted, owned by the pod (ephemeral), and the PV's claimRef is that PVC. Errors: the
  // API's (NotFound, ...), Unavailable while unbound (retried), FailedPrecondition.
  absl::StatusOr<Json> BoundPersistentVolume(const Json& pod, const Json& volume);
  // A PV's source: hostPath and local PVs are used in place; others are Unimplemented.
  absl::StatusOr<MountedVolume> SetUpPersistentVolume(const Json& pv, bool read_only);
  absl::StatusOr<MountedVolume> SetUpVolume(const Json& pod, const Json& volume,
                                            const std::string& host_ip, PodVolumes* state);
  // The files (relative path -> (content, mode)) of a configMap, secret, downwardAPI or
  // projected `volume` of `pod`, as they should be now; projected service account tokens are
  // requested when due (and kept while a refresh fails). Errors: a source that cannot be
  // read (a missing optional configMap/secret is no error: its files are left out).
  absl::StatusOr<std::map<std::string, std::pair<std::string, int>>> CollectPayload(
      const Json& pod, const Json& volume, const std::string& host_ip, PodVolumes* state);
  // Writes `files` into the volume directory `dir` with the AtomicWriter (the pod's fsGroup
  // applied before they become visible); *changed (when set) says whether anything changed.
  absl::Status WriteProjection(const Json& pod, const std::string& dir,
                               const std::map<std::string, std::pair<std::string, int>>& files,
                               bool* changed);
  // Collects a configMap or secret's keys into `files` per `source` (name, items,
  // defaultMode, optional). `kind` is "configmaps" or "secrets".
  absl::Status CollectObjectFiles(const std::string& ns, const Json& source,
                                  const std::string& kind, int default_mode,
                                  std::map<std::string, std::pair<std::string, int>>* files);
  // Requests a token for a serviceAccountToken projection; sets *refresh_at.
  absl::StatusOr<std::string> RequestToken(const Json& pod, const Json& source,
                                           absl::Time* refresh_at);

  ApiClient* api_;
  csi::CsiVolumes* csi_ = nullptr;
  const std::string root_dir_;
  const std::function<absl::Time()> clock_;
  absl::Mutex mu_;
  std::map<std::string, PodVolumes> pods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::kubelet
