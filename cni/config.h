// CNI network configuration: loading and validating a network configuration list
// (CNI SPEC section 1, "Network configuration format"), and picking the network of a
// configuration directory the way libcni/containerd do (first valid file in lexical order).
// All functions are pure (no shared state) and thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::cni {

// One plugin entry of a configuration list ("plugins"[i]), kept as raw JSON so that every
// plugin-specific key reaches the plugin unchanged.
struct PluginConfig {
  std::string type;                                  // "type": the plugin binary name
  nlohmann::json raw;                                // the whole object as written in the file
  bool HasCapability(const std::string& cap) const;  // "capabilities": {cap: true}
};

// A validated network configuration list.
struct NetworkConfigList {
  std::string name;            // "name": network name (also the cache key prefix)
  std::string cni_version;     // "cniVersion", e.g. "1.0.0"
  bool disable_check = false;  // "disableCheck"
  std::vector<PluginConfig> plugins;
  std::string source_path;  // file it was loaded from (empty when parsed from bytes)
  nlohmann::json raw;       // the list as a JSON object (single .conf files wrapped)
};

// Serializes `j` compactly without throwing: invalid UTF-8 is replaced by U+FFFD.
std::string DumpJson(const nlohmann::json& j);

// CNI spec versions this client speaks (0.1.0 ... 1.1.0).
bool IsSupportedVersion(const std::string& version);

// Compares dotted versions "a.b.c": <0, 0, >0. Missing parts count as 0.
int CompareVersions(const std::string& a, const std::string& b);

// True for names made of [a-zA-Z0-9_.-] starting with an alphanumeric: the syntax the CNI
// SPEC requires of network names and container IDs (libcni ValidateNetworkName /
// ValidateContainerID).
bool IsValidCniName(const std::string& name);

// Validates an interface name as libcni's ValidateInterfaceName: 1..15 bytes, not "." or
// "..", no '/', ':' or whitespace. Errors: InvalidArgument.
absl::Status ValidateInterfaceName(const std::string& ifname);

// Parses a configuration list (an object with "plugins") or a single plugin configuration
// (a .conf: an object with "type"), which is wrapped into a one-plugin list as libcni's
// ConfListFromConf does. Errors: InvalidArgument naming the missing/invalid field.
absl::StatusOr<NetworkConfigList> ParseNetworkConfig(const std::string& bytes);

// Loads the first valid configuration among the *.conflist, *.conf and *.json files of
// `dir`, in lexical order; invalid files are skipped (logged at WARNING). Errors:
// FailedPrecondition "no network config found in <dir>" (with the reasons files were skipped).
absl::StatusOr<NetworkConfigList> LoadDefaultNetwork(const std::string& dir);

}  // namespace berth::cni
