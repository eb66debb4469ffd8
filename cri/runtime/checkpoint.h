// Container checkpoint archives (CRI CheckpointContainer), in the layout CRI-O, containerd
// and Podman write and checkpoint-restore/checkpointctl reads (lib/metadata.go):
//
//   checkpoint/        CRIU image directory (`runc checkpoint --image-path`)
//   dump.log           CRIU's log of the dump (`runc checkpoint --work-path` is the root)
//   config.dump        JSON: id, name, rootfsImage, rootfsImageRef, rootfsImageName, runtime,
//                      createdTime, checkpointedTime (checkpointctl's ContainerConfig)
//   spec.dump          the container's OCI runtime spec (bundle config.json)
//   rootfs-diff.tar    the container's writable layer (overlay upper dir) minus whiteouts
//   deleted.files      JSON array of paths the container deleted from its image (whiteouts);
//                      only present when there are any
//   container.log      the container's CRI log file, when it has one
//
// The archive itself is an uncompressed tar, as the kubelet names it `*.tar`.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::cri::runtime {

// Archive member names (checkpointctl lib/metadata.go; container.log as CRI-O's archive).
inline constexpr char kCheckpointDirectory[] = "checkpoint";
inline constexpr char kCheckpointConfigDump[] = "config.dump";
inline constexpr char kCheckpointSpecDump[] = "spec.dump";
inline constexpr char kCheckpointRootfsDiff[] = "rootfs-diff.tar";
inline constexpr char kCheckpointDeletedFiles[] = "deleted.files";
inline constexpr char kCheckpointContainerLog[] = "container.log";
inline constexpr char kCheckpointDumpLog[] = "dump.log";

// Writes an uncompressed tar (pax) of the tree under `src_dir` to `tar_path` (created or
// truncated, mode 0600). Entry names are relative to `src_dir` ("a", "a/b"); the root itself
// is not an entry. Symlinks are stored, not followed; ownership, modes, times and xattrs are
// kept. `skip(rel_path, st)`, when given, drops an entry (a skipped directory's content is
// still visited). Thread-safe (no chdir). Errors name the file that failed.
absl::Status WriteTarFromDir(
    const std::string& src_dir, const std::string& tar_path,
    const std::function<bool(const std::string&, const struct stat&)>& skip = {});

// True for an overlayfs whiteout (a character device 0/0): a file deleted from a lower layer.
bool IsOverlayWhiteout(const struct stat& st);

// Paths (relative, sorted) of the overlay whiteouts under `upper_dir`: the files a container
// deleted from its image. Errors: the directory cannot be read.
absl::StatusOr<std::vector<std::string>> OverlayWhiteouts(const std::string& upper_dir);

// The last `n` non-empty lines of the file at `path` that contain `needle` (every line when
// `needle` is empty), joined by "\n"; "" when unreadable or none match.
std::string LastLines(const std::string& path, int n, const std::string& needle = "");

// What an error message quotes from CRIU's dump.log at `path`: its last 6 "Error (" lines,
// or its last 6 lines when it has none; "" without a log.
std::string CriuLogSummary(const std::string& path);

}  // namespace berth::cri::runtime
