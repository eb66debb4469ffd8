// CSI volumes of pods on this node, as the kubelet's csi volume plugin does them
// (pkg/volume/csi: csi_attacher.go MountDevice/UnmountDevice, csi_mounter.go SetUpAt/TearDownAt):
//
//  * Persistent volumes are staged once per node: NodeStageVolume at the global mount
//    `<kubelet-root>/plugins/kubernetes.io/csi/<driver>/<hex sha256(volumeHandle)>/globalmount`
//    (created 0750; `vol_data.json` {volumeHandle, driverName} beside it, written even when
//    the driver lacks STAGE_UNSTAGE_VOLUME, then nothing is staged), and unstaged when the
//    last pod using it on this node is torn down (NodeUnstageVolume, then globalmount,
//    vol_data.json and the sha directory are removed).
//  * Each pod's volume is published at
//    `<kubelet-root>/pods/<uid>/volumes/kubernetes.io~csi/<escaped spec name>/mount` (the
//    parent created 0750, `mount` left to the driver; `vol_data.json` {specVolID,
//    volumeHandle, driverName, nodeName, attachmentID, volumeLifecycleMode} in the parent),
//    with staging_target_path when the driver stages. The spec name is the PV's name, or the
//    pod's volume name for inline volumes, '/' escaped as '~'.
//  * Inline ephemeral volumes (`pod.spec.volumes[].csi`) are published only, with volume ID
//    `csi-<hex sha256(podUID + volumeName)>`.
//  * NodeGetCapabilities is asked before each operation (not cached). Access modes map as
//    upstream: with SINGLE_NODE_MULTI_WRITER, ReadWriteOnce -> SINGLE_NODE_MULTI_WRITER and
//    ReadWriteOncePod -> SINGLE_NODE_SINGLE_WRITER; without it both -> SINGLE_NODE_WRITER;
//    ReadOnlyMany -> MULTI_NODE_READER_ONLY; ReadWriteMany -> MULTI_NODE_MULTI_WRITER.
//    With VOLUME_MOUNT_GROUP the pod's fsGroup goes to the driver as volume_mount_group
//    and the kubelet does not change ownership.
//  * podInfoOnMount adds `csi.storage.k8s.io/{pod.name,pod.namespace,pod.uid,
//    serviceAccount.name,ephemeral}` to the volume context.
//  * Errors that are not final (csi_client.h IsFinalError) leave vol_data.json in place: the
//    operation may have happened and teardown will undo it. Final errors clean up the
//    directories the kubelet made.
//  * Teardown finds a pod's CSI volumes from their vol_data.json files on disk, so volumes
//    published before a restart are unpublished and unstaged too.
//  * Attachable volumes (CSIDriver attachRequired, true without a CSIDriver object) are
//    controller-attached, as upstream's VerifyControllerAttachedVolume + WaitForAttach: their
//    unique name `kubernetes.io/csi/<driver>^<handle>` is in VolumesInUse() from the moment a
//    pod wants them until they are unstaged (so the attach/detach controller does not detach
//    them while mounted); the mount waits until a Node status write reported it in use
//    (MarkVolumesReportedInUse), until `Node.status.volumesAttached` lists it, and until the
//    VolumeAttachment `csi-<sha256(handle+driver+node)>` has `status.attached`.
//
//  * Volume stats (upstream metricsCsi): NodeGetVolumeStats(volume_id, volume_path = the pod's
//    target path) when the driver has GET_VOLUME_STATS, BYTES -> capacity/available/used,
//    INODES -> inodes/free/used; results (also failures) are kept for a while, as the
//    kubelet's volume stat calculator refreshes them periodically rather than per scrape.
//
// Not done yet (issue 17): raw block volumes, SA tokens (tokenRequests, requiresRepublish),
// NodeExpandVolume, SELinux mount options.
//
// Thread safety: all methods may be called from any thread. Operations on one volume
// (driver + handle) are serialized, others run in parallel. Each RPC blocks the calling
// thread for at most the configured timeout (2 min, as upstream's csiTimeout).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/kube_api.h"
#include "csi/csi_plugin.h"

namespace berth::csi {

// One pod volume to publish, in plain terms (what the kubelet resolved from the pod, the
// PV, the CSIDriver object, the secrets and the VolumeAttachment).
struct VolumeRequest {
  std::string driver;         // CSI driver name
  std::string volume_handle;  // the CSI volume ID
  std::string spec_name;      // the PV's name, or the pod's volume name (inline)
  bool ephemeral = false;     // an inline ephemeral volume: no staging, lifecycle "Ephemeral"
  std::string pod_uid, pod_name, pod_namespace, service_account;
  std::map<std::string, std::string> attributes;            // volume_context (volumeAttributes)
  std::string access_mode = "ReadWriteOnce";                // PV accessModes[0]; inline: RWO
  std::string fs_type;                                      // empty: the driver's default
  std::vector<std::string> mount_options;                   // PV mountOptions
  bool read_only = false;                                   // NodePublish readonly
  std::map<std::string, std::string> stage_secrets;         // nodeStageSecretRef's data
  std::map<std::string, std::string> publish_secrets;       // nodePublishSecretRef's data
  std::map<std::string, std::string> publish_context;       // VolumeAttachment attachmentMetadata
  std::string attachment_id;                                // the VolumeAttachment's name, if any
  bool pod_info_on_mount = false;                           // CSIDriver podInfoOnMount
  std::optional<int64_t> fs_group;                          // the pod's fsGroup
  std::string fs_group_policy = "ReadWriteOnceWithFSType";  // CSIDriver fsGroupPolicy
};

// A published volume.
struct PublishedVolume {
  std::string target_path;  // `<...>/mount`, to bind into containers
  // The kubelet must apply the pod's fsGroup itself (upstream supportsFSGroup and no
  // VOLUME_MOUNT_GROUP delegation).
  bool kubelet_applies_fs_group = false;
};

// A volume's usage as its driver reports it (NodeGetVolumeStats); 0 where it gave none.
struct VolumeUsage {
  absl::Time time;  // when it was measured
  int64_t capacity_bytes = 0, available_bytes = 0, used_bytes = 0;
  int64_t inodes = 0, inodes_free = 0, inodes_used = 0;
};

// The access mode's CSI value (csi.v1 VolumeCapability.AccessMode.Mode numbers), given
// whether the node has SINGLE_NODE_MULTI_WRITER. Unknown modes map to 0 (UNKNOWN).
int CsiAccessMode(const std::string& k8s_mode, bool single_node_multi_writer);

// Lower-case hex SHA-256 of `s`.
std::string Sha256Hex(const std::string& s);

// The unique volume name of a CSI volume, as in Node.status.volumesInUse/volumesAttached:
// `kubernetes.io/csi/<driver>^<handle>` (upstream GetVolumeName).
std::string UniqueVolumeName(const std::string& driver, const std::string& handle);

class CsiVolumes {
 public:
  // `registry` is not owned and must outlive this object; `api` (not owned, may be null in
  // tests that call SetUp directly) is used by SetUpInline/SetUpPersistent to read CSIDriver
  // objects, secrets and VolumeAttachments. `kubelet_root` e.g. /var/lib/kubelet.
  CsiVolumes(const DriverRegistry* registry, KubeApi* api, std::string kubelet_root,
             std::string node_name, absl::Duration timeout = absl::Minutes(2));

  // `<root>/plugins/kubernetes.io/csi/<driver>/<sha256(handle)>/globalmount`.
  std::string StagingPath(const std::string& driver, const std::string& handle) const;
  // `<root>/pods/<uid>/volumes/kubernetes.io~csi/<escaped spec name>/mount`.
  std::string TargetPath(const std::string& pod_uid, const std::string& spec_name) const;

  // Stages (persistent volumes, once per node) and publishes the volume for the pod.
  // Errors: NotFound (driver not registered), the driver's (with the RPC's name), the
  // filesystem's.
  absl::StatusOr<PublishedVolume> SetUp(const VolumeRequest& req);

  // Builds the request of an inline `csi` volume of `pod` (the CSIDriver must list the
  // Ephemeral lifecycle mode) and sets it up. Errors: as SetUp, InvalidArgument, the API's.
  absl::StatusOr<PublishedVolume> SetUpInline(const nlohmann::json& pod,
                                              const nlohmann::json& volume);
  // Builds the request of PersistentVolume `pv` (a `csi` source) bound to a claim of `pod`
  // and sets it up. When the driver requires attachment (CSIDriver attachRequired, true when
  // there is no CSIDriver object) the VolumeAttachment `csi-<sha256(handle+driver+node)>`
  // must be attached; its attachmentMetadata is the publish context. Errors: Unavailable
  // while not attached, as SetUp, the API's.
  absl::StatusOr<PublishedVolume> SetUpPersistent(const nlohmann::json& pod,
                                                  const nlohmann::json& pv, bool read_only);

  // Unpublishes every CSI volume of pod `pod_uid` found on disk, and unstages those no other
  // pod uses. OK when there are none. Errors: the first failure (the caller retries).
  // The pod no longer wants its volumes either.
  absl::Status TearDownPod(const std::string& pod_uid);

  // The usage of volume `handle` of `driver` published at `volume_path`, at most
  // `stats_max_age` old (measured now when older). Errors: NotFound (driver not
  // registered), Unimplemented (the driver lacks GET_VOLUME_STATS), the driver's, or a reply
  // without usage. Blocks for at most `stats_timeout` per RPC.
  absl::StatusOr<VolumeUsage> VolumeStats(const std::string& driver, const std::string& handle,
                                          const std::string& volume_path);
  void SetStatsMaxAge(absl::Duration d) { stats_max_age_ = d; }

  // Node.status.volumesInUse: the unique names of attachable volumes that a pod wants, that
  // are published (from vol_data.json on disk, so also after a restart) or still staged;
  // sorted, without duplicates (upstream GetVolumesInUse).
  std::vector<std::string> VolumesInUse() const;
  // The Node status written last listed `names` in volumesInUse (upstream
  // MarkVolumesAsReportedInUse): mounts of those may go on. Replaces the previous set.
  void MarkVolumesReportedInUse(const std::vector<std::string>& names);
  // `cb` runs (on the caller's thread, no lock held) while a wanted volume is not yet
  // reported in use, so that the Node status is written without waiting for its period (it
  // must be cheap and coalesce calls). Call before the first SetUp.
  void SetVolumesInUseChanged(std::function<void()> cb) { in_use_changed_ = std::move(cb); }

 private:
  // A pod wants attachable volume `name`: it is in use from now on (the callback runs when
  // it is new). Then the checks of upstream VerifyControllerAttachedVolume and WaitForAttach;
  // fills req->publish_context. Errors: Unavailable while not reported in use, not in the
  // Node's volumesAttached, or the VolumeAttachment is missing, not attached or deleted.
  absl::Status WaitForAttach(VolumeRequest* req);
  std::shared_ptr<std::mutex> VolumeLock(const std::string& key);
  absl::Status Stage(const VolumeRequest& req, const std::set<int>& caps);
  absl::Status Unstage(const std::string& driver, const std::string& handle);
  // Unpublishes the volume whose directory (holding vol_data.json and mount) is `dir`.
  absl::Status TearDownVolume(const std::string& dir);
  // Whether any pod other than `except_dir`'s volume dir has driver+handle published.
  bool UsedByOtherPods(const std::string& driver, const std::string& handle,
                       const std::string& except_dir) const;
  // NodeGetCapabilities, then NodeGetVolumeStats (errors as VolumeStats).
  absl::StatusOr<VolumeUsage> MeasureVolume(const std::string& driver, const std::string& handle,
                                            const std::string& volume_path);
  // NodeGetCapabilities of `driver`'s endpoint.
  absl::StatusOr<std::set<int>> NodeCapabilities(const std::string& endpoint);

  const DriverRegistry* const registry_;
  KubeApi* const api_;
  const std::string root_;
  const std::string node_name_;
  const absl::Duration timeout_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> locks_;  // guarded by mu_
  std::set<std::string> staged_;                              // guarded by mu_: driver^handle
  // Attachable volumes: unique name -> uids of the pods that want it; names reported in use
  // by the last Node status write; staged names (until NodeUnstageVolume succeeded).
  std::map<std::string, std::set<std::string>> wanted_;  // guarded by mu_
  std::set<std::string> reported_in_use_;                // guarded by mu_
  std::set<std::string> attached_staged_;                // guarded by mu_
  std::function<void()> in_use_changed_;
  absl::Duration stats_max_age_ = absl::Minutes(1);  // upstream volumeStatsAggPeriod
  const absl::Duration stats_timeout_ = absl::Seconds(10);
  struct StatsEntry {
    absl::Time at;
    absl::StatusOr<VolumeUsage> result;
  };
  std::map<std::string, StatsEntry> stats_;  // guarded by mu_: by volume_path
};

}  // namespace berth::csi
