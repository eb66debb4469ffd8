#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace berth {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
            1000000;
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%m%d %H:%M:%S", &tm);
  static const char kLetters[] = "DIWE";
  const char* base = strrchr(file, '/');
  char frac[8];
  snprintf(frac, sizeof(frac), "%06lld", static_cast<long long>(us));
  os_ << kLetters[static_cast<int>(level_)] << buf << '.' << frac << ' ' << (base ? base + 1 : file)
      << ':' << line << "] ";
}

LogMessage::~LogMessage() {
  os_ << '\n';
  std::string s = os_.str();
  ssize_t unused = write(STDERR_FILENO, s.data(), s.size());
  (void)unused;
}

}  // namespace berth
