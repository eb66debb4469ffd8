// The kubelet's CSI node side in one object, for main(): the CSINode initialization, the
// plugin watcher on `<kubelet-root>/plugins_registry` with the CSI handler, the registry of
// drivers and the volume operations (see plugin_watcher.h, node_info_manager.h,
// csi_plugin.h, csi_volume.h).
//
// Threads: Start() launches the CSINode initialization thread; once the CSINode exists, the
// plugin watcher's thread starts (so that drivers are only published into an existing
// CSINode, as upstream's RegisterPlugin waits for the node info manager). Stop() joins
// both. NotReady() and volumes() are safe from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "base/kube_api.h"
#include "csi/csi_plugin.h"
#include "csi/csi_volume.h"
#include "csi/node_info_manager.h"
#include "csi/plugin_watcher.h"

namespace berth::csi {

class CsiManager {
 public:
  // `api` is not owned and must outlive the manager. `kubelet_root` e.g. /var/lib/kubelet.
  CsiManager(KubeApi* api, const std::string& node_name, const std::string& kubelet_root);
  ~CsiManager();  // Stop()s

  void Start();
  void Stop();

  // "" once the CSINode is initialized, else the reason the Node is not Ready (upstream's
  // "CSINode is not yet initialized").
  std::string NotReady() const;

  CsiVolumes& volumes() { return volumes_; }

 private:
  DriverRegistry registry_;
  NodeInfoManager nim_;
  CsiPluginHandler handler_;
  PluginWatcher watcher_;
  CsiVolumes volumes_;
  std::mutex mu_;
  bool stopped_ = false;  // guarded by mu_: no watcher start after Stop()
};

}  // namespace berth::csi
