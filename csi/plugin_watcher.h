// The kubelet's plugin watcher and registration reconciler (pkg/kubelet/pluginmanager): every
// unix socket under the registration directory (`<kubelet-root>/plugins_registry`, searched
// recursively; names starting with '.' are ignored) is a plugin's Registration service
// (gRPC `pluginregistration.Registration`). A new socket is registered: GetInfo (1 s timeout),
// the handler for its type ("CSIPlugin", ...) validates and registers it (an empty endpoint
// means the registration socket itself), then NotifyRegistrationStatus(true); any failure is
// reported with NotifyRegistrationStatus(false, error) and retried later with backoff (1 s
// doubling to 2 min), as long as the socket is there. A socket that is recreated (another
// inode or modification time) is deregistered and registered again; a removed socket is
// deregistered.
//
// Threads: Start() launches one thread that rescans the directory every `rescan_period` (1 s,
// as upstream's reconciler loop); handlers are called on that thread only, one at a time.
// AddHandler must be called before Start(). ReconcileOnce() (tests) must not run concurrently
// with the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace berth::csi {

// What a plugin said about itself in GetInfo.
struct PluginInfo {
  std::string socket_path;  // the registration socket
  std::string type;         // "CSIPlugin", "DevicePlugin", "DRAPlugin"
  std::string name;         // e.g. the CSI driver name
  std::string endpoint;     // the service socket; the registration socket when GetInfo had none
  std::vector<std::string> supported_versions;
};

// A plugin type's handler (upstream PluginHandler). Called on the watcher's thread.
class PluginHandler {
 public:
  virtual ~PluginHandler() = default;
  // Checks the plugin before registration (e.g. its versions). Errors are reported to it.
  virtual absl::Status ValidatePlugin(const PluginInfo& info) = 0;
  // Registers the plugin. Errors are reported to it and registration is retried later.
  virtual absl::Status RegisterPlugin(const PluginInfo& info) = 0;
  // The plugin's registration socket was removed or recreated.
  virtual void DeregisterPlugin(const PluginInfo& info) = 0;
};

class PluginWatcher {
 public:
  // `dir` is created (0750) by Start() or ReconcileOnce() if missing.
  explicit PluginWatcher(std::string dir, absl::Duration rescan_period = absl::Seconds(1));
  ~PluginWatcher();  // Stop()s

  // Handler for plugins of `type`; not owned, must outlive the watcher.
  void AddHandler(const std::string& type, PluginHandler* handler);

  void Start();
  // Stops and joins the thread. Registered plugins stay registered (as when the kubelet
  // exits). Idempotent.
  void Stop();

  // One rescan: deregistrations first, then registrations. For tests and the thread.
  void ReconcileOnce();

  // The registration sockets currently registered, sorted. Thread-safe.
  std::vector<std::string> RegisteredSockets() const;

 private:
  struct Identity {
    unsigned long dev = 0, ino = 0;
    long mtime_ns = 0;
    bool operator==(const Identity&) const = default;
  };
  struct Registered {
    Identity identity;
    PluginInfo info;
    PluginHandler* handler;
  };
  struct Failed {
    Identity identity;
    absl::Time retry_at;
    absl::Duration backoff;
  };
  // Unix sockets under dir_ (recursively, skipping names that start with '.').
  std::map<std::string, Identity> Scan() const;
  // GetInfo, validate, register, notify. Returns the outcome (also reported to the plugin).
  absl::Status Register(const std::string& socket, const Identity& id);
  void Run();

  const std::string dir_;
  const absl::Duration rescan_period_;
  std::map<std::string, PluginHandler*> handlers_;  // set before Start()
  std::map<std::string, Failed> failed_;            // watcher thread only
  mutable std::mutex mu_;
  std::map<std::string, Registered> registered_;  // guarded by mu_ (written by the thread)
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace berth::csi
