// The CSI plugin's side of registration (upstream pkg/volume/csi/csi_plugin.go
// RegistrationHandler): validates a "CSIPlugin"'s versions (one must be 1.x), calls
// NodeGetInfo on its endpoint (2 min timeout) and publishes the driver through the
// NodeInfoManager; the driver's endpoint is then known to the DriverRegistry, where volume
// operations look it up.
//
// Thread safety: DriverRegistry is safe from any thread. CsiPluginHandler is called on the
// plugin watcher's thread.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "csi/node_info_manager.h"
#include "csi/plugin_watcher.h"

namespace berth::csi {

inline constexpr char kCsiPluginType[] = "CSIPlugin";

// Registered CSI drivers: name -> endpoint (a unix socket path).
class DriverRegistry {
 public:
  void Add(const std::string& name, const std::string& endpoint);
  void Remove(const std::string& name);
  // The driver's endpoint. Errors: NotFound "driver name X not found in the list of
  // registered CSI drivers" (upstream's message).
  absl::StatusOr<std::string> Endpoint(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> drivers_;
};

// Whether `versions` (e.g. ["1.0.0"]) holds a supported CSI version: major 1 (a leading 'v'
// is accepted). Errors: InvalidArgument naming the versions.
absl::Status ValidateCsiVersions(const std::string& driver,
                                 const std::vector<std::string>& versions);

class CsiPluginHandler : public PluginHandler {
 public:
  // Neither is owned; both must outlive the handler. `nim` may be null (no API server:
  // drivers are only recorded in `registry`).
  CsiPluginHandler(DriverRegistry* registry, NodeInfoManager* nim,
                   absl::Duration timeout = absl::Minutes(2));

  absl::Status ValidatePlugin(const PluginInfo& info) override;
  // NodeGetInfo, then NodeInfoManager::InstallDriver; on failure the driver is unregistered
  // again (upstream unregisterDriver).
  absl::Status RegisterPlugin(const PluginInfo& info) override;
  // Removes the driver from the registry and UninstallDriver (a failure is logged).
  void DeregisterPlugin(const PluginInfo& info) override;

 private:
  DriverRegistry* const registry_;
  NodeInfoManager* const nim_;
  const absl::Duration timeout_;
};

}  // namespace berth::csi
