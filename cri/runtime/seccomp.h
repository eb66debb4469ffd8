// Seccomp for containers (OCI runtime-spec config-linux.md "Seccomp"), chosen from the CRI
// security context as containerd and CRI-O do:
//   - privileged containers: no filter, whatever the profile says;
//   - SecurityProfile Unconfined, or no profile at all (nil `seccomp` and empty deprecated
//     seccomp_profile_path): no filter;
//   - RuntimeDefault ("runtime/default", "docker/default"): berth's default profile;
//   - Localhost <path> ("localhost/<path>"): the JSON profile file on the node, in the
//     Docker/containerd/CRI-O format (defaultAction, architectures or archMap, syscalls with
//     names/action/errnoRet/args and includes/excludes by capability).
//
// berth's default profile follows the intent of containerd's and Docker's default (block
// what lets a container reach the kernel or the host beyond its namespaces, unless the
// container holds the capability that grants it): it allows everything except those
// syscalls, which fail with EPERM. It is written as a deny list rather than the upstream
// allow list.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cri/api/api.pb.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {

// berth's RuntimeDefault profile for a container holding `caps` ("CAP_SYS_ADMIN", ...), as an
// OCI linux.seccomp object.
nlohmann::json DefaultSeccompProfile(const std::vector<std::string>& caps);

// Converts a Docker/containerd-format profile to an OCI linux.seccomp object, keeping the
// rules that apply to a container holding `caps` on x86-64. InvalidArgument when `profile`
// is not such a profile.
absl::StatusOr<nlohmann::json> ConvertSeccompProfile(const nlohmann::json& profile,
                                                     const std::vector<std::string>& caps);

// The linux.seccomp object for a container (null json: no filter). `caps` is the final
// capability set. Reads Localhost profiles from the node's filesystem. Errors:
// InvalidArgument for an unknown profile type or a malformed profile, NotFound when a
// Localhost profile file is missing.
absl::StatusOr<nlohmann::json> ContainerSeccomp(
    const ::runtime::v1::LinuxContainerSecurityContext& sc, const std::vector<std::string>& caps);

}  // namespace berth::cri::runtime
