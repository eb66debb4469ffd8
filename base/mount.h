// Mount helpers shared by the runtime's rootfs snapshotter and sandbox setup. Thread-safe
// (no state); errors are errno-based Statuses naming the path.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace berth {

// Unmounts every mount stacked at `path` (e.g. an idmapped mount over an overlay), each
// lazily (umount2 MNT_DETACH), until none is left. OK when nothing is mounted there or `path`
// does not exist (EINVAL / ENOENT); otherwise the failing umount2's errno ("unmount <path>").
absl::Status UnmountStack(const std::string& path);

}  // namespace berth
