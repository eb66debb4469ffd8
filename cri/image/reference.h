// Image references as the CRI and the Docker/OCI distribution spec write them:
// "busybox", "library/busybox:1.36", "127.0.0.1:5000/busybox:latest",
// "reg.example.com/a/b@sha256:<hex>". Normalized like the Docker CLI and containerd
// (docker.io/library defaults, "latest" when neither tag nor digest is given).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace berth::cri::image {

// A parsed, normalized image reference. Plain value type.
struct Reference {
  std::string domain;  // registry host[:port], e.g. "docker.io", "127.0.0.1:5000"
  std::string path;    // repository path, e.g. "library/busybox"
  std::string tag;     // e.g. "latest"; empty when only a digest was given
  std::string digest;  // "sha256:<64 hex>" or empty

  // "domain/path", e.g. "docker.io/library/busybox".
  std::string Name() const;
  // "domain/path:tag", or "" when there is no tag.
  std::string TagString() const;
  // "domain/path@digest" when a digest is set, else TagString().
  std::string String() const;
};

// Parses and normalizes `ref`. Errors: InvalidArgument naming the reference and the part
// that is malformed (empty, upper-case repository, bad tag, bad digest, ...).
absl::StatusOr<Reference> ParseReference(const std::string& ref);

// True when `s` is "sha256:" followed by exactly 64 lower-case hex digits.
bool IsSha256Digest(const std::string& s);

}  // namespace berth::cri::image
