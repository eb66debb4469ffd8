#include "ebpf/skeleton.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

#include "base/log.h"

namespace berth::ebpf::internal {
namespace {

// Lines libbpf printed on this thread while a capture is active; the last few are kept.
constexpr size_t kMaxCapturedLines = 12;
thread_local bool capturing = false;
thread_local std::deque<std::string> captured;

int PrintLibbpf(enum libbpf_print_level level, const char* format, va_list args) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), format, args);
  if (n < 0) return n;
  std::string line(buf);
  if (line.rfind("libbpf: ", 0) == 0) line.erase(0, 8);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  if (line.empty()) return n;
  // libbpf's debug output is very chatty (every relocation); only warnings are kept.
  if (capturing && level != LIBBPF_DEBUG) {
    captured.push_back(line);
    if (captured.size() > kMaxCapturedLines) captured.pop_front();
  }
  if (level == LIBBPF_DEBUG) {
    LOG(DEBUG) << "libbpf: " << line;
  } else if (!capturing) {
    LOG(WARNING) << "libbpf: " << line;
  }
  return n;
}

}  // namespace

void BeginLibbpfCapture() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(PrintLibbpf); });
  captured.clear();
  capturing = true;
}

std::string EndLibbpfCapture() {
  capturing = false;
  std::string out;
  for (const std::string& l : captured) {
    if (!out.empty()) out += "; ";
    out += l;
  }
  captured.clear();
  return out;
}

absl::Status LibbpfError(const std::string& name, const std::string& what, int err,
                         const std::string& libbpf_log) {
  int e = err < 0 ? -err : err;
  if (e == 0) e = EINVAL;
  std::string msg = absl::StrCat(what, " BPF object ", name);
  if (e == EPERM) msg += " (needs root or CAP_BPF+CAP_PERFMON)";
  absl::Status s;
  if (e >= __LIBBPF_ERRNO__START) {
    // libbpf's own codes (bad ELF, CO-RE relocation failure, ...) have no errno equivalent.
    char text[256];
    libbpf_strerror(e, text, sizeof(text));
    s = absl::FailedPreconditionError(absl::StrCat(msg, ": ", text));
  } else {
    s = ErrnoStatus(e, msg);
  }
  if (libbpf_log.empty()) return s;
  return absl::Status(s.code(), absl::StrCat(s.message(), "; libbpf: ", libbpf_log));
}

}  // namespace berth::ebpf::internal
