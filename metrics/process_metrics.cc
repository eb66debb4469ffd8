#include "metrics/process_metrics.h"

#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::metrics {
namespace {

absl::StatusOr<double> BootTimeSeconds(const std::string& proc_root) {
  const std::string path = JoinPath(proc_root, "stat");
  ASSIGN_OR_RETURN(std::string stat, ReadFile(path));
  for (absl::string_view line : absl::StrSplit(stat, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      double btime;
      if (absl::SimpleAtod(line, &btime)) return btime;
    }
  }
  return absl::DataLossError(path + ": no btime line");
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& pid,
                                              const std::string& proc_root) {
  const std::string dir = JoinPath(proc_root, pid);
  const std::string stat_path = JoinPath(dir, "stat");
  ASSIGN_OR_RETURN(std::string stat, ReadFile(stat_path));
  // Fields after the command, which is in parentheses and may contain spaces.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) {
    return absl::DataLossError(stat_path + ": no ')' after the command name");
  }
  std::vector<std::string> f =
      absl::StrSplit(absl::string_view(stat).substr(close + 1), ' ', absl::SkipWhitespace());
  // f[0] is field 3 (state); field N of proc(5) is f[N - 3].
  if (f.size() < 22) return absl::DataLossError(stat_path + ": too few fields");
  auto field = [&](int n, double* v) -> absl::Status {
    if (!absl::SimpleAtod(f[n - 3], v)) {
      return absl::DataLossError(stat_path + ": field " + std::to_string(n) + " is not a number");
    }
    return absl::OkStatus();
  };
  double utime, stime, starttime, vsize, rss;
  RETURN_IF_ERROR(field(14, &utime));
  RETURN_IF_ERROR(field(15, &stime));
  RETURN_IF_ERROR(field(22, &starttime));
  RETURN_IF_ERROR(field(23, &vsize));
  RETURN_IF_ERROR(field(24, &rss));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcessStats s;
  s.cpu_seconds_total = (utime + stime) / ticks;
  s.virtual_memory_bytes = vsize;
  s.resident_memory_bytes = rss * page;
  ASSIGN_OR_RETURN(double btime, BootTimeSeconds(proc_root));
  s.start_time_seconds = btime + starttime / ticks;

  ASSIGN_OR_RETURN(std::vector<std::string> fds, ListDir(JoinPath(dir, "fd")));
  s.open_fds = static_cast<double>(fds.size());

  const std::string limits_path = JoinPath(dir, "limits");
  ASSIGN_OR_RETURN(std::string limits, ReadFile(limits_path));
  bool found = false;
  for (absl::string_view line : absl::StrSplit(limits, '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    std::vector<absl::string_view> cols = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (cols.empty()) break;
    if (cols[0] == "unlimited") {
      s.max_fds = static_cast<double>(std::numeric_limits<uint64_t>::max());
      found = true;
    } else {
      found = absl::SimpleAtod(cols[0], &s.max_fds);
    }
    break;
  }
  if (!found) return absl::DataLossError(limits_path + ": no parsable \"Max open files\" line");
  return s;
}

void RegisterProcessMetrics(Registry* registry) {
  registry->AddCollector([](std::vector<FamilySnapshot>* out) {
    absl::StatusOr<ProcessStats> s = ReadProcessStats();
    if (!s.ok()) {
      LOG(WARNING) << "process metrics: " << s.status().message();
      return;
    }
    auto add = [out](const char* name, const char* help, MetricType type, double v) {
      out->push_back(FamilySnapshot{name, help, type, {Sample{"", {}, v}}});
    };
    add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
        MetricType::kCounter, s->cpu_seconds_total);
    add("process_max_fds", "Maximum number of open file descriptors.", MetricType::kGauge,
        s->max_fds);
    add("process_open_fds", "Number of open file descriptors.", MetricType::kGauge, s->open_fds);
    add("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::kGauge,
        s->resident_memory_bytes);
    add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        MetricType::kGauge, s->start_time_seconds);
    add("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::kGauge,
        s->virtual_memory_bytes);
  });
}

void RegisterBuildInfo(Registry* registry, const std::string& version) {
  registry
      ->AddGauge("berth_build_info",
                 "A metric with a constant '1' value labeled by the berth version.", {"version"})
      ->WithLabelValues({version})
      ->Set(1);
}

}  // namespace berth::metrics
