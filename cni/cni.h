// The CNI client interface used by the runtime for pod sandboxes (CNI SPEC: ADD/DEL/CHECK).
// Implemented by cni::CniManager (real plugins) and by fakes in unit tests.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::cni {

// runtimeConfig "portMappings" entry (CNI conventions, capability portMappings).
struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";  // "tcp" | "udp" | "sctp"
  std::string host_ip;
};

// One attachment request: a pod sandbox's network namespace.
struct AttachRequest {
  std::string container_id;    // CNI_CONTAINERID: the sandbox ID
  std::string netns_path;      // CNI_NETNS, e.g. /run/berth/netns/<id>
  std::string ifname = "eth0";  // CNI_IFNAME
  std::string pod_name, pod_namespace, pod_uid;  // K8S_POD_* CNI_ARGS
  std::vector<PortMapping> port_mappings;
};

// The result of ADD, reduced to what the CRI reports (plus the raw JSON for caching).
struct AttachResult {
  std::vector<std::string> ips;  // addresses without prefix length, IPv4 first
  std::string raw_json;          // the final plugin's result, converted to the conflist's version
};

class NetworkPlugin {
 public:
  virtual ~NetworkPlugin() = default;
  // OK when a usable network configuration is loaded; FailedPrecondition with the reason
  // (for CRI Status NetworkReady=false) otherwise.
  virtual absl::Status Ready() = 0;
  // CNI ADD of every plugin in the conflist. On failure, DEL has been attempted and the
  // error carries the plugin's name, message and stderr.
  virtual absl::StatusOr<AttachResult> Add(const AttachRequest& req) = 0;
  // CNI DEL; idempotent (OK when nothing is attached, or after a restart of berth: uses
  // the result cached on disk by Add).
  virtual absl::Status Del(const AttachRequest& req) = 0;
  // CNI CHECK.
  virtual absl::Status Check(const AttachRequest& req) = 0;
};

}  // namespace berth::cni
