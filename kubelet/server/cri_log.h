// Reading container logs in the CRI log format (what conmon writes), as the kubelet's
// /containerLogs endpoint and `kubectl logs` expect them.
//
// One record per line: "<RFC3339Nano timestamp> <stdout|stderr> <P|F> <content>\n". Tag P
// (partial) means the content continues in the next record without a newline; F (full) ends
// a line. The reader joins partial records, applies the kubelet's log options (tailLines,
// sinceTime/sinceSeconds, timestamps, limitBytes) and, with follow, waits for new records
// (inotify) and for a rotation (the path renamed away and re-created by ReopenContainerLog)
// until the container stops or the caller cancels.
// Follows the upstream kubelet's pkg/kubelet/kuberuntime/logs semantics.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace berth::kubelet::server {

// One parsed CRI log record.
struct CriLogRecord {
  absl::Time timestamp;
  std::string_view stream;   // "stdout" or "stderr"
  bool partial = false;      // tag P
  std::string_view content;  // without the trailing newline
};

// Parses one line (without its '\n'). Errors: InvalidArgument naming what is malformed.
absl::StatusOr<CriLogRecord> ParseCriLogLine(std::string_view line);

// The /containerLogs query options (v1.PodLogOptions). Unset optionals mean "no limit".
struct LogOptions {
  std::optional<int64_t> tail_lines;   // last N records of the current file
  std::optional<int64_t> limit_bytes;  // stop after this many bytes of output
  std::optional<absl::Time> since;     // skip records older than this
  bool timestamps = false;             // prefix each record with its RFC3339Nano timestamp
  bool follow = false;                 // keep reading until the container stops
};

// Parses the query parameters of /containerLogs (follow, tailLines, sinceSeconds, sinceTime,
// timestamps, limitBytes; previous is handled by the caller). `get(name)` returns the raw
// value or nullopt. `now` anchors sinceSeconds. Errors: InvalidArgument for a bad value.
absl::StatusOr<LogOptions> ParseLogOptions(
    const std::function<std::optional<std::string>(const std::string&)>& get, absl::Time now);

// Callbacks of ReadContainerLog. All run on the calling thread.
struct LogSink {
  // Writes output; returns false when the client is gone (reading stops, OK is returned).
  std::function<bool(std::string_view)> write;
  // Follow only: true while the container may still write (checked when no data arrives
  // for `poll_interval`); when false, the remaining data is read and the call returns.
  std::function<bool()> container_running = [] { return false; };
  // Follow only: true when the caller wants to stop (client disconnected, server stopping).
  std::function<bool()> cancelled = [] { return false; };
  absl::Duration poll_interval = absl::Seconds(1);
};

// Reads the log file at `path` with `opts` into `sink`. Errors: NotFound when the file does
// not exist, Internal on read errors. Malformed lines are skipped (as the kubelet does).
absl::Status ReadContainerLog(const std::string& path, const LogOptions& opts, const LogSink& sink);

}  // namespace berth::kubelet::server
