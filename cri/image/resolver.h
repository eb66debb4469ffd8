// What the runtime needs from the image store to create a container: the unpacked layers
// of a pulled image and its OCI image config. Implemented by cri/image's ImageStore.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::cri::image {

// The parts of the OCI image config (image-spec config.md, `config` object) a container uses.
struct ImageConfig {
  std::vector<std::string> env;         // "K=V"
  std::vector<std::string> entrypoint;  // Entrypoint
  std::vector<std::string> cmd;         // Cmd
  std::string working_dir;              // WorkingDir
  std::string user;                     // User ("uid", "uid:gid", "name", ...)
  std::string stop_signal;              // StopSignal, e.g. "SIGTERM"
  std::map<std::string, std::string> labels;
};

// A pulled image, ready to back a container rootfs.
struct ResolvedImage {
  std::string id;                         // image ID: digest of the config blob, "sha256:<hex>"
  std::vector<std::string> repo_tags;     // e.g. "127.0.0.1:5000/busybox:latest"
  std::vector<std::string> repo_digests;  // e.g. "127.0.0.1:5000/busybox@sha256:..."
  std::vector<std::string> layer_dirs;    // absolute dirs of unpacked layers, BOTTOM-most first
  ImageConfig config;
};

// Looks up pulled images. Thread-safe.
class ImageResolver {
 public:
  virtual ~ImageResolver() = default;
  // Resolves a reference as the CRI accepts it (tag "busybox", "reg/x:tag", digest
  // "reg/x@sha256:..", or an image ID "sha256:<hex>" or its hex prefix). NotFound when the
  // image is not present locally (no pull happens here).
  virtual absl::StatusOr<ResolvedImage> Resolve(const std::string& ref) = 0;
};

}  // namespace berth::cri::image
