// The kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go) for configMap, secret,
// downwardAPI and projected volumes: a volume's files are replaced all at once, so a
// container never reads a mix of old and new content.
//
// Layout in the volume directory (as upstream, so tools and containers that know it work):
//   ..<UTC timestamp>.<random>/<path>   the files of one payload, with their modes
//   ..data -> ..<timestamp>.<random>    swapped by rename(2) of a new symlink "..data_tmp"
//   <first path component> -> ..data/<first path component>   the user-visible names
// A payload equal to what is on disk (same paths and contents) writes nothing.
//
// Thread safety: none; one writer per directory at a time (the pod worker of its pod).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::kubelet {

// One file of a payload: its content and permission bits (e.g. 0644).
struct FileProjection {
  std::string data;
  int mode = 0644;
  bool operator==(const FileProjection&) const = default;
};

// Relative path -> file, e.g. {"key": ..., "dir/nested": ...}.
using Payload = std::map<std::string, FileProjection>;

// Writes `payload` into `dir` (created 0755 when missing) as described above. Paths must be
// relative, without "..", not starting with "..", at most 4096 bytes; InvalidArgument
// otherwise, before anything is written. `set_perms`, when given, runs on the new
// timestamped directory before it becomes visible (the pod's fsGroup ownership). Regular
// files left by an older, non-atomic layout at a user-visible name are replaced. Returns
// whether anything changed. Errors: the filesystem's, naming the path; on error the previous
// content stays visible.
absl::StatusOr<bool> WriteAtomically(
    const std::string& dir, const Payload& payload,
    const std::function<absl::Status(const std::string&)>& set_perms = nullptr);

}  // namespace berth::kubelet
