// The node's default pod network when the operator configured none: like kubenet, a CNI
// conflist for the Node's spec.podCIDR (bridge "cni0" + host-local IPAM + portmap +
// bandwidth + loopback), written only when the CNI conf dir holds no configuration.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace berth::kubelet {

// Returns the conflist JSON (cniVersion 1.0.0) for pod subnet `pod_cidr`, e.g. "10.244.1.0/24".
// host-local keeps its leases in `ipam_data_dir` (berth passes <root-dir>/cni/networks, so two
// nodes on one machine never share leases); empty = host-local's default /var/lib/cni/networks.
std::string DefaultCniConfig(const std::string& pod_cidr, const std::string& ipam_data_dir = "");

// Writes `<conf_dir>/10-berth.conflist` from DefaultCniConfig unless the directory already
// holds a *.conflist, *.conf or *.json file (then OK, nothing written). Creates conf_dir.
absl::Status WriteDefaultCniConfig(const std::string& conf_dir, const std::string& pod_cidr,
                                   const std::string& ipam_data_dir = "");

}  // namespace berth::kubelet
