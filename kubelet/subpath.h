// Safe subPath mounts, as the kubelet's pkg/volume/util/subpath (subpath_linux.go:
// SafeMakeDir, PrepareSafeSubpath, CleanSubPaths).
//
// A volumeMount's subPath names a path inside a volume that a container of the same pod may
// write to. Checking the path and then handing it to the runtime by name is a race: between
// the check and the runtime's bind mount, a container can swap a directory for a symlink to
// anywhere on the host. So, as upstream:
//  - missing directories are created one component at a time with mkdirat/openat relative to
//    an fd of the volume root, refusing symlinks (SafeMakeDir);
//  - the subpath is opened the same way (O_PATH | O_NOFOLLOW per component, a symlink anywhere
//    refused), and the opened object itself is bind-mounted through /proc/self/fd/<n> onto
//    `<pod-dir>/volume-subpaths/<volume>/<container>/<mount-index>`; the container gets that
//    bind mount, which can no longer be redirected. Symlinks the volume holds that resolve
//    inside it are allowed: the path is resolved first and the resolved path opened safely.
//
// Thread safety: the functions hold no state; calls for one pod are serialised by its pod
// worker (two calls preparing the same target race on it).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::kubelet {

// Creates the directory `sub_path` (relative, no "..") inside `volume_path` with `mode` for
// every missing component, through fds relative to the volume root. The existing part may
// contain symlinks that resolve inside the volume; a component that is (or becomes, during
// the walk) a symlink, or that resolves outside the volume, fails the call. Errors:
// InvalidArgument (absolute path, "..", escape, symlink), the filesystem's otherwise.
absl::Status SafeMakeDir(const std::string& volume_path, const std::string& sub_path, int mode);

// Where one container mount's subPath gets bound.
struct SubPathMount {
  std::string volume_path;  // host path of the volume (its root; may itself be a symlink)
  std::string sub_path;     // the mount's subPath (after subPathExpr expansion)
  std::string pod_dir;      // <kubelet-root>/pods/<uid>
  std::string volume_name;  // the pod volume's name
  std::string container_name;
  int mount_index = 0;  // the volumeMount's index in the container's volumeMounts
};

// Bind-mounts the object `m.sub_path` names inside `m.volume_path` (opened safely, see above)
// onto `<pod_dir>/volume-subpaths/<volume>/<container>/<index>` and returns that path, which
// the container mount must use. A bind mount already there is kept when it still shows the
// same object (a restarted container), replaced otherwise. The subpath must exist (callers
// create missing directories with SafeMakeDir first, as the kubelet's makeMounts does).
// Errors: InvalidArgument (absolute, "..", resolves outside the volume, a symlink appeared in
// the path), NotFound (missing subpath), the kernel's for the mount.
absl::StatusOr<std::string> PrepareSafeSubPath(const SubPathMount& m);

// Unmounts and removes `<pod_dir>/volume-subpaths` (all of the pod's subPath bind mounts). OK
// when absent. Errors: an unmount or removal that failed (the caller retries later).
absl::Status CleanSubPaths(const std::string& pod_dir);

}  // namespace berth::kubelet
