// Test helpers for OCI runtime integration tests: a busybox rootfs and a minimal OCI
// runtime-spec 1.0 config.json (config.md, config-linux.md). Not for production specs.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace berth::testing {

// Inputs of MinimalSpec.
struct TestSpecOptions {
  std::vector<std::string> args;  // process.args
  std::string rootfs;             // root.path (absolute, or relative to the bundle)
  std::string netns_path;         // join this network namespace; empty: a new one
  std::string cgroups_path;       // linux.cgroupsPath, e.g. /berth-oci-test/<id>
  std::string hostname = "berth-test";
};

// Creates `dir` with bin/busybox (a copy of /bin/busybox, busybox-static) and hard links
// sh, echo, sleep, cat, true, ls, ps to it.
absl::Status MakeBusyboxRootfs(const std::string& dir);

// A minimal valid config: root user, cwd /, PATH env, runc's default capabilities, mounts
// /proc, /dev (tmpfs), /dev/pts, /dev/shm, /sys; namespaces pid, mount, ipc, uts, network;
// root writable; no oomScoreAdj (root here lacks CAP_SYS_RESOURCE to lower it).
nlohmann::json MinimalSpec(const TestSpecOptions& o);

// Writes `spec` as <bundle>/config.json, creating the bundle directory.
absl::Status WriteBundle(const std::string& bundle, const nlohmann::json& spec);

}  // namespace berth::testing
