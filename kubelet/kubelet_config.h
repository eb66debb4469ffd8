// The kubelet's configuration file (`--config`): a KubeletConfiguration of
// kubelet.config.k8s.io/v1beta1, in YAML or JSON, read as upstream kubelet v1.36 reads it
// (cmd/kubelet/app loadConfigFile, pkg/kubelet/kubeletconfig/configfiles) and turned into
// values of berth's own flags, so that the file and the command line take one path.
//
// Upstream behaviour kept:
//  - apiVersion and kind must be kubelet.config.k8s.io/v1beta1 KubeletConfiguration.
//  - Go's zero values mean "unset": a non-pointer field that is 0, "", "0s", false or absent
//    takes the upstream default (port: 0 is 10250, cacheTTL: 0s is 2m0s). Pointer fields
//    (healthzPort, seccompDefault, containerLogMaxFiles, resolvConf, the *.enabled booleans,
//    enableServer) take an explicit zero as given (healthzPort: 0 disables the server).
//  - Relative paths (tlsCertFile, tlsPrivateKeyFile, authentication.x509.clientCAFile,
//    resolvConf, podLogsDir) are resolved against the file's directory.
//  - Unknown fields do not fail the load (v1beta1's lenient decoding): they are named in a
//    warning. Flags given on the command line win over the file
//    (kubeletConfigFlagPrecedence).
// berth's flag defaults are the upstream KubeletConfiguration defaults, so a field the file
// leaves unset keeps the flag's default.
//
// Example (main):
//   ASSIGN_OR_RETURN(KubeletConfig cfg, LoadKubeletConfig(path, {.cri_socket = sock}));
//   for (const std::string& w : cfg.warnings) LOG(WARNING) << w;
//   RETURN_IF_ERROR(ApplyKubeletConfig(cfg, &app));  // after app.parse(argc, argv)
//
// Thread-safety: no shared state; every function may be called from any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace CLI {
class App;
}

namespace berth::kubelet {

// Parses a Go duration (time.ParseDuration, the format of metav1.Duration and of the
// kubelet's duration flags): "2m0s", "1h30m", "300ms", "1.5h", "0"; units ns, us (µs), ms,
// s, m, h; a sign is allowed. InvalidArgument for anything else (also "inf", which abseil
// alone would accept).
absl::StatusOr<absl::Duration> ParseGoDuration(absl::string_view text);

// One berth flag set by a field of the file.
struct KubeletConfigSetting {
  std::string field;                // path in the file, e.g. "authentication.webhook.cacheTTL"
  std::string flag;                 // berth's flag, e.g. "--authentication-token-webhook-cache-ttl"
  std::vector<std::string> values;  // as on the command line; several for list flags
};

// What the parser must know of the running berth to judge some fields.
struct KubeletConfigContext {
  // berth's own CRI socket (--cri-socket after defaulting): a containerRuntimeEndpoint or
  // imageServiceEndpoint naming it is accepted silently.
  std::string cri_socket = "/run/berth/berth.sock";
};

// A parsed configuration file.
struct KubeletConfig {
  // Flag values in file order; a field berth maps appears only when the file sets it.
  std::vector<KubeletConfigSetting> settings;
  // Human-readable warnings, one log line each: at most one naming the fields berth does not
  // implement (ignored), one naming unknown fields, one naming duplicated fields.
  std::vector<std::string> warnings;
};

// Parses the text of a KubeletConfiguration (YAML, or JSON, which is YAML). `base_dir`
// resolves relative paths. Errors (InvalidArgument, the message names the field): malformed
// YAML (with line and column), an empty file, a document that is not an object, a missing or
// different apiVersion/kind, a mapped field of the wrong type (port: "abc", clusterDNS: 3), a
// malformed duration, port or healthzPort out of range, a negative maxPods, a taint without
// key or with an effect other than NoSchedule, PreferNoSchedule or NoExecute.
absl::StatusOr<KubeletConfig> ParseKubeletConfig(const std::string& text,
                                                 const std::string& base_dir,
                                                 const KubeletConfigContext& ctx = {});

// Reads the file at `path` (relative to the working directory, as upstream) and parses it;
// relative paths inside resolve against its directory. Errors: NotFound or another errno code
// when the file cannot be read, InvalidArgument as ParseKubeletConfig; every message starts
// with "kubelet config file <path>: ".
absl::StatusOr<KubeletConfig> LoadKubeletConfig(const std::string& path,
                                                const KubeletConfigContext& ctx = {});

// Gives every option of `app` named by a setting the setting's values, unless the command
// line already set it (count() > 0): the file is the base, explicit flags win. Runs the
// option's validators and stores the value, as parsing would. Call after app->parse().
// Errors: InvalidArgument naming field, flag and value when a validator or conversion refuses
// it; Internal when a setting names an option `app` does not have.
absl::Status ApplyKubeletConfig(const KubeletConfig& config, CLI::App* app);

}  // namespace berth::kubelet
