// CNI results (CNI SPEC section 5, "Result types"): parsing the result a plugin prints for
// ADD in any spec version and converting it to the version of the configuration, as
// libcni's types/100 and types/040 converters do. Pure functions, thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::cni {

// A result in the 1.0.0 shape (the 0.3.x/0.4.0 shape differs only by ips[].version).
// Interfaces, routes and dns are kept as JSON so that fields this client does not use
// (mac, sandbox, mtu, ...) survive chaining and caching unchanged.
struct Result {
  std::string cni_version;  // version the result was printed in
  nlohmann::json interfaces = nlohmann::json::array();
  nlohmann::json ips = nlohmann::json::array();  // objects with "address" (CIDR), ...
  nlohmann::json routes = nlohmann::json::array();
  nlohmann::json dns = nlohmann::json::object();
};

// Parses a plugin's ADD output. Accepts 0.1.0/0.2.0 ("ip4"/"ip6"), 0.3.x/0.4.0 and
// 1.x results; a missing "cniVersion" is taken as `default_version` (libcni does the same
// for plugins that omit it). Errors: InvalidArgument when the output is not a result.
absl::StatusOr<Result> ParseResult(const std::string& bytes, const std::string& default_version);
absl::StatusOr<Result> ParseResultJson(const nlohmann::json& j, const std::string& default_version);

// Serializes `r` as a result of `version` (>= 0.3.0): ips[].version is added for 0.3.x/0.4.0
// and dropped for 1.x. Versions below 0.3.0 are serialized in the 0.3.1 shape.
nlohmann::json ResultToJson(const Result& r, const std::string& version);

// The addresses of `r` without prefix length, IPv4 before IPv6 (CRI PodSandboxNetworkStatus).
std::vector<std::string> ResultIPs(const Result& r);

}  // namespace berth::cni
