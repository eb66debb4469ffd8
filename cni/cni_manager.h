// CniManager: the CNI client of berth (what libcni is to containerd and CRI-O). It loads the
// default network from a configuration directory, executes the plugins of its list for
// ADD/DEL/CHECK following the CNI SPEC 1.0/1.1 (sections 3 "Execution protocol" and
// 4 "Plugin delegation / chaining"), and caches each attachment's result on disk so that
// DEL and CHECK after a restart of berth still get prevResult.
//
// Example:
//   CniManager cni({.conf_dir = "/etc/cni/net.d", .bin_dirs = {"/usr/lib/cni"},
//                   .cache_dir = "/var/lib/berth/cni/results"});
//   if (cni.Ready().ok()) ASSIGN_OR_RETURN(AttachResult r, cni.Add(req));
//
// Thread-safety: all methods may be called concurrently; the configuration is guarded by a
// mutex, plugins run outside it. Calls for the same (container_id, ifname) must be
// serialized by the caller (the pod worker does), as with libcni.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cni/cni.h"
#include "cni/config.h"
#include "cni/result.h"

namespace berth::cni {

struct CniManagerOptions {
  std::string conf_dir = "/etc/cni/net.d";                               // *.conflist/*.conf/*.json
  std::vector<std::string> bin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};  // CNI_PATH
  std::string cache_dir = "/var/lib/berth/cni/results";                  // cached ADD results
  std::chrono::milliseconds plugin_timeout = std::chrono::seconds(60);   // per plugin call
};

class CniManager : public NetworkPlugin {
 public:
  explicit CniManager(CniManagerOptions opts);

  // OK when conf_dir holds a valid network configuration whose plugin binaries all exist in
  // bin_dirs; FailedPrecondition otherwise ("no network config found in <dir>", "network
  // <name>: plugin <type> not found in <dirs>"). Re-reads the directory when it changed.
  // For cniVersion >= 1.1.0 lists it also runs CNI STATUS of every plugin (SPEC 1.1) and
  // returns FailedPrecondition with the first plugin error.
  absl::Status Ready() override;

  // Add and Del log (INFO) their wall time and the part spent in plugin processes, e.g.
  // "CNI ADD for sandbox <id>: 14.2 ms (plugins 13.1 ms)"; tests/bench/cni_bench.sh reads it.
  //
  // Add, Del and Check return InvalidArgument when container_id is not a valid CNI
  // container ID ([a-zA-Z0-9][a-zA-Z0-9_.-]*) or ifname is not a valid interface name.
  //
  // CNI ADD of every plugin in order, each plugin's result being the next one's prevResult.
  // The final result (converted to the list's cniVersion) and the configuration used are
  // cached in <cache_dir>/<network>-<container_id>-<ifname>. On failure, DEL of the whole
  // list has been attempted (best effort) and the error is
  // "CNI ADD plugin <type> for sandbox <id>: <msg>: <details>" (plus the plugin's stderr).
  absl::StatusOr<AttachResult> Add(const AttachRequest& req) override;

  // CNI DEL of every plugin in reverse order, with the cached configuration, result and
  // capability arguments (portMappings, bandwidth, ...) of the ADD when present (the current
  // configuration and the request's arguments otherwise). Every plugin is called even if an
  // earlier one failed; the first error is returned. Idempotent; removes the cache on success.
  absl::Status Del(const AttachRequest& req) override;

  // CNI CHECK of every plugin in order with the cached result as prevResult. OK without
  // running anything when the list sets disableCheck. Errors: NotFound without a cached
  // result, FailedPrecondition for lists older than 0.4.0, else the plugin's error.
  absl::Status Check(const AttachRequest& req) override;

  // Garbage collection (CNI SPEC 1.1 "GC"), e.g. when berth starts: every attachment in the
  // result cache that is not in `valid` (matched by container_id and ifname) gets DEL with
  // its cached configuration, result and capability arguments; then, for cniVersion >= 1.1.0
  // lists, every plugin runs GC with "cni.dev/valid-attachments" listing `valid`. All steps
  // run even if one fails; the first error is returned.
  absl::Status Gc(const std::vector<AttachRequest>& valid) override;

  // The network configuration currently in use (reloaded if conf_dir changed).
  absl::StatusOr<NetworkConfigList> CurrentNetwork();

  // Path of the result cache file for an attachment on network `network`.
  std::string CachePath(const std::string& network, const AttachRequest& req) const;

 private:
  struct Cached {
    NetworkConfigList config;
    std::optional<Result> result;
    // The capability arguments ADD ran with (portMappings, bandwidth, dns, ipRanges), as
    // libcni caches them: DEL must undo what ADD set up (portmap's DEL does nothing without
    // the port mappings).
    std::optional<AttachRequest> capability_args;
  };

  // Re-reads conf_dir when its fingerprint (mtimes and sizes) changed.
  void MaybeReload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Fingerprint() const;
  absl::StatusOr<std::string> FindPlugin(const std::string& type) const;
  // Runs one plugin with `command`; returns its stdout. `prev` becomes prevResult. Adds the
  // plugin's wall time (spawn to exit) to *plugin_time when given.
  absl::StatusOr<std::string> ExecPlugin(const std::string& command, const NetworkConfigList& net,
                                         const PluginConfig& plugin, const AttachRequest& req,
                                         const std::optional<Result>& prev,
                                         std::chrono::nanoseconds* plugin_time = nullptr,
                                         const nlohmann::json* gc_attachments = nullptr) const;
  absl::Status DelList(const NetworkConfigList& net, const AttachRequest& req,
                       const std::optional<Result>& cached,
                       std::chrono::nanoseconds* plugin_time = nullptr) const;
  // Path of the cache file of `req` (under `network`, else under any network name); empty
  // when there is none.
  std::string FindCachePath(const std::string& network, const AttachRequest& req) const;
  // Reads a cache file. Errors: DataLoss when it is corrupt.
  absl::StatusOr<Cached> ReadCache(const std::string& path) const;
  absl::Status WriteCache(const NetworkConfigList& net, const AttachRequest& req,
                          const Result& result) const;

  const CniManagerOptions opts_;
  absl::Mutex mu_;
  std::string fingerprint_ ABSL_GUARDED_BY(mu_);
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  absl::StatusOr<NetworkConfigList> network_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::cni
