#include "base/mount.h"

#include <sys/mount.h>

#include <cerrno>

#include "base/status.h"

namespace berth {

absl::Status UnmountStack(const std::string& path) {
  while (umount2(path.c_str(), MNT_DETACH) == 0) {
  }
  if (errno != EINVAL && errno != ENOENT) return ErrnoStatus(errno, "unmount " + path);
  return absl::OkStatus();
}

}  // namespace berth
