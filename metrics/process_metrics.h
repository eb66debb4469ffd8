// Process metrics of the berth daemon, named and computed like Prometheus client_golang's
// process collector, plus berth_build_info.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace berth::metrics {

// Values of the process collector, read from /proc/<pid>/{stat,fd,limits} and /proc/stat.
struct ProcessStats {
  double cpu_seconds_total = 0;      // user + system CPU time, seconds
  double resident_memory_bytes = 0;  // RSS, bytes
  double virtual_memory_bytes = 0;   // VSZ, bytes
  double open_fds = 0;               // entries of /proc/<pid>/fd
  double max_fds = 0;                // soft RLIMIT_NOFILE
  double start_time_seconds = 0;     // process start, seconds since the Unix epoch
};

// Reads the stats of process `pid` ("self" for this process) under `proc_root` (normally
// "/proc"; tests may pass a fake tree). Errors name the file that could not be read/parsed.
absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& pid = "self",
                                              const std::string& proc_root = "/proc");

// Adds a collector to `registry` exposing process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds and process_start_time_seconds of this process, read at scrape time.
// A failed read is logged and the families are omitted from that scrape.
void RegisterProcessMetrics(Registry* registry);

// Registers the gauge berth_build_info{version="<version>"} = 1.
void RegisterBuildInfo(Registry* registry, const std::string& version);

}  // namespace berth::metrics
