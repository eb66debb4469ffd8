// The Node and CSINode objects a node's CSI drivers are published through (upstream
// pkg/volume/csi/nodeinfomanager):
//  * at start, the CSINode named like the Node, owned by it (ownerReference to the Node's
//    UID; a CSINode owned by another UID is deleted and recreated), with `spec.drivers: []`
//    and the `storage.alpha.kubernetes.io/migrated-plugins` annotation listing the in-tree
//    plugins migrated to CSI. The Node is not Ready until this is done (Initialized()).
//  * per registered driver: the Node annotation `csi.volume.kubernetes.io/nodeid` (a JSON map
//    driver -> node ID, merged with other drivers'), the topology segments as Node labels
//    (an existing label with another value is an error), and the CSINode entry
//    {name, nodeID, topologyKeys (sorted), allocatable.count (omitted when 0)}.
//  * when a driver goes: its CSINode entry and its key of the nodeid annotation are removed
//    (the annotation when it becomes empty); topology labels stay, as upstream.
// Updates retry on conflicts (the object is read again).
//
// Thread safety: all methods may be called from any thread; each is a short series of API
// calls. The initialization thread started by StartInitialization() is joined by the
// destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "base/kube_api.h"

namespace berth::csi {

using Json = nlohmann::json;

// The annotation value upstream writes for kubelet v1.36: the in-tree plugins with CSI
// migration, sorted and comma-joined.
inline constexpr char kMigratedPlugins[] =
    "kubernetes.io/aws-ebs,kubernetes.io/azure-disk,kubernetes.io/azure-file,kubernetes.io/cinder,"
    "kubernetes.io/gce-pd,kubernetes.io/portworx-volume,kubernetes.io/vsphere-volume";
inline constexpr char kMigratedPluginsAnnotation[] = "storage.alpha.kubernetes.io/migrated-plugins";
inline constexpr char kNodeIdAnnotation[] = "csi.volume.kubernetes.io/nodeid";

class NodeInfoManager {
 public:
  // `api` is not owned and must outlive this object.
  NodeInfoManager(KubeApi* api, std::string node_name);
  ~NodeInfoManager();

  // One attempt to create (or adopt) the CSINode. Errors: the API's; FailedPrecondition while
  // the Node does not exist yet.
  absl::Status InitializeCsiNode();
  // Calls InitializeCsiNode on a thread every second until it succeeds (the kubelet waits
  // for the API server forever), then `on_done` (on that thread).
  void StartInitialization(std::function<void()> on_done = nullptr);
  // Stops and joins the initialization thread. Idempotent.
  void StopInitialization();
  // True once the CSINode exists and is owned by the Node.
  bool Initialized() const { return initialized_.load(); }

  // Publishes driver `driver` (upstream InstallCSIDriver). `node_id` must not be empty;
  // `max_volumes` 0 means no limit; `topology` are NodeGetInfo's accessible segments.
  // Errors: InvalidArgument (empty node ID, a topology label collision), the API's.
  absl::Status InstallDriver(const std::string& driver, const std::string& node_id,
                             int64_t max_volumes,
                             const std::map<std::string, std::string>& topology);
  // Removes what InstallDriver published (upstream UninstallCSIDriver). Errors: the API's.
  absl::Status UninstallDriver(const std::string& driver);

 private:
  absl::Status UpdateNode(const std::string& driver, const std::string* node_id,
                          const std::map<std::string, std::string>& topology);
  absl::Status UpdateCsiNode(const std::string& driver, const Json* entry);

  KubeApi* const api_;
  const std::string node_name_;
  std::atomic<bool> initialized_{false};
  std::atomic<bool> stop_{false};
  std::thread init_thread_;
};

}  // namespace berth::csi
