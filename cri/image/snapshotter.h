// Container root filesystems over the image store's unpacked layers, prepared as containerd's
// overlayfs snapshotter prepares them: the image's layers are the read-only lowerdirs of an
// overlay mount whose upperdir takes the container's writes. For a user-namespaced pod the
// layers are first seen through idmapped mounts (Linux >= 5.19 lets overlayfs stack on
// them), so that the image's root-owned files are owned by the pod's root, as containerd does.
//
// A snapshot lives in a directory the caller owns (the runtime uses the container's bundle
// directory); the snapshotter creates and removes only the entries named in SnapshotPaths.
//
// Thread safety: the functions hold no state; concurrent calls on different directories are
// safe. They need CAP_SYS_ADMIN (mount) and, for idmapped layers, a kernel with
// mount_setattr(MOUNT_ATTR_IDMAP) on the layers' filesystem.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::cri::image {

// The entries of the snapshot in directory `dir`.
struct SnapshotPaths {
  std::string rootfs;  // <dir>/rootfs: the overlay mount, the container's root
  std::string upper;   // <dir>/upper: the writable layer (ContainerStats.writable_layer)
  std::string work;    // <dir>/work: overlayfs' work directory
  std::string idmap;   // <dir>/idmap/<n>: idmapped layers, mounted only while preparing
};
SnapshotPaths SnapshotPathsIn(const std::string& dir);

// How a user-namespaced pod sees the layers.
struct SnapshotIdmap {
  // A user namespace to map the layers through, e.g. /proc/<pause>/ns/user: a file owned by
  // UID u on disk is seen as owned by the host ID u maps to.
  std::string userns_path;
  // Host IDs of the pod's root; the upper and work directories are chowned to them.
  uid_t host_uid = 0;
  gid_t host_gid = 0;
};

// Prepares a writable root filesystem in `dir` (created if missing): mounts an overlay of
// `layer_dirs` (absolute directories of unpacked layers, BOTTOM-most first, as
// ResolvedImage::layer_dirs) with upper and work directories of its own at
// SnapshotPathsIn(dir).rootfs. With `idmap`, the layers are mounted idmapped under
// <dir>/idmap/<n> first and detached again once the overlay holds them.
// Errors: InvalidArgument for no layers; errno-based errors naming the failing step (mkdir,
// "idmap mount <layer> through <userns>: open_tree|mount_setattr|move_mount", chown, "mount
// overlay rootfs at <rootfs>"). On error, what was created stays for RemoveSnapshot.
absl::StatusOr<SnapshotPaths> PrepareSnapshot(const std::string& dir,
                                              const std::vector<std::string>& layer_dirs,
                                              const std::optional<SnapshotIdmap>& idmap);

// Unmounts the snapshot's root filesystem in `dir` (every mount stacked there) and removes
// the snapshot's entries (the writable layer included). OK when there is nothing to remove.
// The directory `dir` itself and other entries in it stay.
absl::Status RemoveSnapshot(const std::string& dir);

// Mounts an idmapped copy of directory `path` at `target` (an existing directory), mapped
// through the user namespace at `userns_path` (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) +
// move_mount). Errors name the failing call.
absl::Status IdmapMount(const std::string& path, const std::string& target,
                        const std::string& userns_path);

}  // namespace berth::cri::image
