// The CNI client interface used by the runtime for pod sandboxes (CNI SPEC: ADD/DEL/CHECK).
// Implemented by cni::CniManager (real plugins) and by fakes in unit tests.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
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

// runtimeConfig "bandwidth" (CNI conventions, capability bandwidth; the bandwidth plugin).
// Rates in bits per second, bursts in bits; 0 = no limit in that direction.
struct Bandwidth {
  int64_t ingress_rate = 0, ingress_burst = 0;
  int64_t egress_rate = 0, egress_burst = 0;
  bool empty() const { return ingress_rate == 0 && egress_rate == 0; }
};

// runtimeConfig "dns" (CNI conventions, capability dns): the pod's DNS settings from CRI
// PodSandboxConfig.dns_config.
struct DnsConfig {
  std::vector<std::string> servers, searches, options;
  bool empty() const { return servers.empty() && searches.empty() && options.empty(); }
};

// Reads the pod annotations kubernetes.io/ingress-bandwidth and kubernetes.io/egress-bandwidth
// (Kubernetes quantities such as "10M" = 10^7 bit/s, "1Gi"), as kubelet's
// ExtractPodBandwidthResources does: each must lie in [1k, 1P]. Bursts are set to
// 2147483647 bits (no burst limit), as dockershim and containerd do. InvalidArgument with the
// annotation and value otherwise.
absl::StatusOr<Bandwidth> BandwidthFromAnnotations(
    const std::vector<std::pair<std::string, std::string>>& annotations);

// One attachment request: a pod sandbox's network namespace.
struct AttachRequest {
  std::string container_id;                      // CNI_CONTAINERID: the sandbox ID
  std::string netns_path;                        // CNI_NETNS, e.g. /run/berth/netns/<id>
  std::string ifname = "eth0";                   // CNI_IFNAME
  std::string pod_name, pod_namespace, pod_uid;  // K8S_POD_* CNI_ARGS
  std::vector<PortMapping> port_mappings;
  Bandwidth bandwidth;  // passed to plugins declaring capability "bandwidth" when set
  DnsConfig dns;        // passed to plugins declaring capability "dns" when set
  // runtimeConfig "ipRanges" (capability ipRanges): one range set per entry, each holding one
  // subnet (the node's pod CIDRs, one per address family, as containerd passes them).
  std::vector<std::string> ip_range_subnets;
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
  // Garbage collection: releases whatever is attached but not in `valid` (CNI 1.1 GC).
  // The default does nothing.
  virtual absl::Status Gc(const std::vector<AttachRequest>& valid) {
    (void)valid;
    return absl::OkStatus();
  }
};

}  // namespace berth::cni
