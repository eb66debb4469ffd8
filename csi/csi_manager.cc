#include "csi/csi_manager.h"

#include "base/file.h"

namespace berth::csi {

CsiManager::CsiManager(KubeApi* api, const std::string& node_name, const std::string& kubelet_root)
    : nim_(api, node_name),
      handler_(&registry_, &nim_),
      watcher_(JoinPath(kubelet_root, "plugins_registry")),
      volumes_(&registry_, api, kubelet_root, node_name) {
  watcher_.AddHandler(kCsiPluginType, &handler_);
}

CsiManager::~CsiManager() { Stop(); }

void CsiManager::Start() {
  nim_.StartInitialization([this] {
    std::lock_guard<std::mutex> l(mu_);
    if (!stopped_) watcher_.Start();
  });
}

void CsiManager::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;
  }
  nim_.StopInitialization();
  watcher_.Stop();
}

std::string CsiManager::NotReady() const {
  return nim_.Initialized() ? "" : "CSINode is not yet initialized";
}

}  // namespace berth::csi
