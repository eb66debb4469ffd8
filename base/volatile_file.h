// Files that describe only what dies with the machine (a pod sandbox's /etc files, an OCI
// bundle's config.json): replaced atomically like WriteFileAtomic (base/file.h), so a reader
// or a berth killed mid-write never sees a partial file, but without its two fsyncs, which
// cost a disk flush each on the pod start path and protect nothing here: after a power loss
// the sandboxes and containers these files belong to are gone too.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth {

// Writes `data` to a temp file beside `path` and renames it over `path` (no fsync). `mode`
// is the file mode. Errors name the file and the failed step; no temp file is left behind.
absl::Status WriteVolatileFile(const std::string& path, absl::string_view data, int mode = 0644);

}  // namespace berth
