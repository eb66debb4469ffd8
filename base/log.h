// Minimal leveled logging to stderr: `LOG(INFO) << "pod " << name << " started";`.
// Thread-safe: each statement is written with one write(2). Level set by SetLogLevel.
#pragma once

#include <sstream>
#include <string_view>

namespace berth {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Sets the lowest level that is printed (default kInfo). Thread-safe.
void SetLogLevel(LogLevel level);
// True when a message of `level` would be printed.
bool LogEnabled(LogLevel level);

// One log statement; the destructor writes the line.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return os_; }

 private:
  LogLevel level_;
  std::ostringstream os_;
};

}  // namespace berth

#define BERTH_LOG_DEBUG ::berth::LogLevel::kDebug
#define BERTH_LOG_INFO ::berth::LogLevel::kInfo
#define BERTH_LOG_WARNING ::berth::LogLevel::kWarning
#define BERTH_LOG_ERROR ::berth::LogLevel::kError
#define LOG(level)                               \
  if (!::berth::LogEnabled(BERTH_LOG_##level)) { \
  } else                                         \
    ::berth::LogMessage(BERTH_LOG_##level, __FILE__, __LINE__).stream()
