// Unpacking of image layers (OCI image-spec layer.md) into overlayfs lower directories.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace berth::cri::image {

// Unpacks the layer blob at `blob_path` (a tar stream, uncompressed or gzip/zstd compressed:
// detected from the content) into `dest_dir`, which must not exist yet and is created.
//
// - OCI whiteouts `.wh.<name>` become overlay whiteouts (character device 0/0 at <name>);
//   `.wh..wh..opq` sets the xattr trusted.overlay.opaque=y on its directory.
// - Ownership (numeric uid/gid from the tar), modes, times, symlinks, hard links and xattrs
//   are kept.
// - Path traversal is refused: entries with a ".." component, hard links whose target is
//   absolute or escapes the root, and any entry (or hard-link target) whose parent path
//   inside `dest_dir` goes through a symlink. Leading "/" and "./" are stripped.
// - The DiffID (sha256 of the uncompressed tar) is computed while unpacking; when
//   `expected_diff_id` is not empty a mismatch is an error.
//
// Returns the DiffID. On any error `dest_dir` is removed, so a failed unpack leaves nothing.
// `dest_dir` must be a path without symlinks (use a realpath'd root). Thread-safe (no
// shared state; does not chdir). Errors: InvalidArgument for a refused entry or a bad tar,
// DataLoss for a DiffID mismatch, errno-based codes for file system failures.
absl::StatusOr<std::string> UnpackLayer(const std::string& blob_path, const std::string& dest_dir,
                                        const std::string& expected_diff_id);

// Normalizes a tar entry path to a path relative to the layer root: strips leading "/" and
// "./" components and repeated slashes; "" means the root itself. InvalidArgument when a
// component is "..". Exposed for tests.
absl::StatusOr<std::string> CleanEntryPath(const std::string& name);

}  // namespace berth::cri::image
