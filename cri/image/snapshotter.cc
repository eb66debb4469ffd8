#include "cri/image/snapshotter.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/mount.h"
#include "base/status.h"

namespace berth::cri::image {

SnapshotPaths SnapshotPathsIn(const std::string& dir) {
  return SnapshotPaths{.rootfs = JoinPath(dir, "rootfs"),
                       .upper = JoinPath(dir, "upper"),
                       .work = JoinPath(dir, "work"),
                       .idmap = JoinPath(dir, "idmap")};
}

absl::Status IdmapMount(const std::string& path, const std::string& target,
                        const std::string& userns_path) {
  const std::string what = "idmap mount " + path + " through " + userns_path;
  int userns = open(userns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (userns < 0) return ErrnoStatus(errno, what);
  int tree = open_tree(AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) {
    int e = errno;
    close(userns);
    return ErrnoStatus(e, what + ": open_tree");
  }
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns);
  int rc = mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr));
  int e = errno;
  close(userns);
  if (rc != 0) {
    close(tree);
    return ErrnoStatus(e, what + ": mount_setattr");
  }
  rc = move_mount(tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH);
  e = errno;
  close(tree);
  if (rc != 0) return ErrnoStatus(e, what + ": move_mount");
  return absl::OkStatus();
}

absl::StatusOr<SnapshotPaths> PrepareSnapshot(const std::string& dir,
                                              const std::vector<std::string>& layer_dirs,
                                              const std::optional<SnapshotIdmap>& idmap) {
  if (layer_dirs.empty()) return absl::InvalidArgumentError("snapshot " + dir + ": no layers");
  SnapshotPaths p = SnapshotPathsIn(dir);
  for (const auto& d : {p.rootfs, p.upper, p.work}) RETURN_IF_ERROR(MkdirAll(d, 0755));
  // overlayfs lists lowerdirs top-most first.
  std::vector<std::string> lower(layer_dirs.rbegin(), layer_dirs.rend());
  std::vector<std::string> idmapped;
  auto detach_idmapped = [&idmapped]() {
    for (const auto& d : idmapped) UnmountStack(d).IgnoreError();
  };
  if (idmap.has_value()) {
    for (size_t i = 0; i < lower.size(); ++i) {
      std::string d = JoinPath(p.idmap, std::to_string(i));
      RETURN_IF_ERROR(MkdirAll(d, 0700));
      absl::Status s = IdmapMount(lower[i], d, idmap->userns_path);
      if (!s.ok()) {
        detach_idmapped();
        return s;
      }
      idmapped.push_back(d);
      lower[i] = d;
    }
    for (const auto& d : {p.upper, p.work}) {
      if (chown(d.c_str(), idmap->host_uid, idmap->host_gid) != 0) {
        int e = errno;
        detach_idmapped();
        return ErrnoStatus(e, "chown " + d);
      }
    }
  }
  std::string data = absl::StrCat("lowerdir=", absl::StrJoin(lower, ":"), ",upperdir=", p.upper,
                                  ",workdir=", p.work);
  int mrc = mount("overlay", p.rootfs.c_str(), "overlay", 0, data.c_str());
  int merr = errno;
  detach_idmapped();  // the overlay keeps its own references to the layers
  if (mrc != 0) return ErrnoStatus(merr, "mount overlay rootfs at " + p.rootfs);
  return p;
}

absl::Status RemoveSnapshot(const std::string& dir) {
  SnapshotPaths p = SnapshotPathsIn(dir);
  RETURN_IF_ERROR(UnmountStack(p.rootfs));
  if (PathExists(p.idmap)) {
    // Left mounted only if a preparation was interrupted.
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(p.idmap));
    for (const auto& n : names) RETURN_IF_ERROR(UnmountStack(JoinPath(p.idmap, n)));
  }
  for (const auto& d : {p.rootfs, p.upper, p.work, p.idmap}) RETURN_IF_ERROR(RemoveAll(d));
  return absl::OkStatus();
}

}  // namespace berth::cri::image
