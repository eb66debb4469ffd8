#include "kubelet/server/cri_log.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth::kubelet::server {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

// Closes an fd on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void Reset(int f = -1) {
    if (fd >= 0) close(fd);
    fd = f;
  }
};

// Offset of the first of the last `n` records of the file (0 if it has fewer).
absl::StatusOr<off_t> TailStart(int fd, off_t size, int64_t n) {
  if (n <= 0) return size;
  off_t end = size;
  int64_t seen = 0;
  std::vector<char> buf(kReadChunk);
  // A final '\n' terminates the last record; it does not start a new one.
  bool skip_last = true;
  while (end > 0) {
    off_t begin = end > static_cast<off_t>(buf.size()) ? end - buf.size() : 0;
    ssize_t got = pread(fd, buf.data(), end - begin, begin);
    if (got < 0) return ErrnoStatus(errno, "read log");
    for (off_t i = got - 1; i >= 0; --i) {
      if (buf[i] != '\n') {
        skip_last = false;
        continue;
      }
      if (skip_last) {
        skip_last = false;
        continue;
      }
      if (++seen == n) return begin + i + 1;
    }
    end = begin;
  }
  return 0;
}

class Reader {
 public:
  Reader(const LogOptions& opts, const LogSink& sink) : opts_(opts), sink_(sink) {
    if (opts_.limit_bytes) remaining_ = *opts_.limit_bytes;
  }

  // Emits every complete line in `pending_`; false when output must stop.
  bool EmitLines() {
    size_t start = 0;
    for (;;) {
      size_t nl = pending_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(pending_.data() + start, nl - start);
      start = nl + 1;
      if (!EmitRecord(line)) return false;
    }
    pending_.erase(0, start);
    return true;
  }

  bool EmitRecord(std::string_view line) {
    absl::StatusOr<CriLogRecord> r = ParseCriLogLine(line);
    if (!r.ok()) return true;  // skipped, as the kubelet does
    if (opts_.since && r->timestamp < *opts_.since) return true;
    out_.clear();
    if (opts_.timestamps) {
      absl::StrAppend(
          &out_, absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", r->timestamp, absl::UTCTimeZone()), " ");
    }
    out_.append(r->content.data(), r->content.size());
    if (!r->partial) out_.push_back('\n');
    return Write(out_);
  }

  bool Write(std::string_view s) {
    if (opts_.limit_bytes) {
      if (remaining_ <= 0) return false;
      if (static_cast<int64_t>(s.size()) > remaining_) s = s.substr(0, remaining_);
      remaining_ -= s.size();
    }
    if (!sink_.write(s)) return false;
    return !(opts_.limit_bytes && remaining_ <= 0);
  }

  // Reads `fd` to EOF; false when output must stop. Errors are reading failures.
  absl::StatusOr<bool> Drain(int fd) {
    char buf[kReadChunk];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read log");
      }
      if (n == 0) return true;
      pending_.append(buf, n);
      if (!EmitLines()) return false;
    }
  }

  void DropPending() { pending_.clear(); }

 private:
  const LogOptions& opts_;
  const LogSink& sink_;
  int64_t remaining_ = 0;
  std::string pending_;
  std::string out_;
};

}  // namespace

absl::StatusOr<CriLogRecord> ParseCriLogLine(std::string_view line) {
  CriLogRecord r;
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return absl::InvalidArgumentError("log line: no timestamp");
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(line.substr(0, sp1)), &r.timestamp, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("log line: timestamp: ", err));
  }
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return absl::InvalidArgumentError("log line: no stream");
  r.stream = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (r.stream != "stdout" && r.stream != "stderr") {
    return absl::InvalidArgumentError("log line: unknown stream");
  }
  std::string_view rest = line.substr(sp2 + 1);
  // Tag then one space then content; content may be empty ("F" alone is tolerated).
  size_t sp3 = rest.find(' ');
  std::string_view tag = sp3 == std::string_view::npos ? rest : rest.substr(0, sp3);
  if (tag == "P") {
    r.partial = true;
  } else if (tag != "F") {
    return absl::InvalidArgumentError("log line: unknown tag");
  }
  r.content = sp3 == std::string_view::npos ? std::string_view() : rest.substr(sp3 + 1);
  return r;
}

absl::StatusOr<LogOptions> ParseLogOptions(
    const std::function<std::optional<std::string>(const std::string&)>& get, absl::Time now) {
  LogOptions o;
  auto boolean = [&](const std::string& name, bool* out) -> absl::Status {
    std::optional<std::string> v = get(name);
    if (!v) return absl::OkStatus();
    if (*v == "" || *v == "true" || *v == "1") {
      *out = true;
    } else if (*v == "false" || *v == "0") {
      *out = false;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(name, ": not a boolean: ", *v));
    }
    return absl::OkStatus();
  };
  auto integer = [&](const std::string& name, std::optional<int64_t>* out) -> absl::Status {
    std::optional<std::string> v = get(name);
    if (!v) return absl::OkStatus();
    int64_t n;
    if (!absl::SimpleAtoi(*v, &n) || n < 0) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": not a non-negative integer: ", *v));
    }
    *out = n;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(boolean("follow", &o.follow));
  RETURN_IF_ERROR(boolean("timestamps", &o.timestamps));
  RETURN_IF_ERROR(integer("tailLines", &o.tail_lines));
  RETURN_IF_ERROR(integer("limitBytes", &o.limit_bytes));
  std::optional<int64_t> since_seconds;
  RETURN_IF_ERROR(integer("sinceSeconds", &since_seconds));
  std::optional<std::string> since_time = get("sinceTime");
  if (since_seconds && since_time) {
    return absl::InvalidArgumentError("at most one of sinceTime or sinceSeconds may be specified");
  }
  if (since_seconds) {
    if (*since_seconds < 1) return absl::InvalidArgumentError("sinceSeconds must be >= 1");
    o.since = now - absl::Seconds(*since_seconds);
  }
  if (since_time) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, *since_time, &t, &err)) {
      return absl::InvalidArgumentError(absl::StrCat("sinceTime: ", err));
    }
    o.since = t;
  }
  if (o.limit_bytes && *o.limit_bytes < 1) {
    return absl::InvalidArgumentError("limitBytes must be >= 1");
  }
  return o;
}

absl::Status ReadContainerLog(const std::string& path, const LogOptions& opts,
                              const LogSink& sink) {
  Fd file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.fd < 0) return ErrnoStatus(errno, absl::StrCat("open log ", path));
  struct stat st;
  if (fstat(file.fd, &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat log ", path));
  ino_t inode = st.st_ino;
  if (opts.tail_lines) {
    ASSIGN_OR_RETURN(off_t start, TailStart(file.fd, st.st_size, *opts.tail_lines));
    if (lseek(file.fd, start, SEEK_SET) < 0) return ErrnoStatus(errno, "seek log");
  }
  Reader reader(opts, sink);
  Fd watch;
  int wd = -1;
  auto watch_file = [&]() -> absl::Status {
    if (watch.fd < 0) {
      watch.Reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
      if (watch.fd < 0) return ErrnoStatus(errno, "inotify_init1");
    }
    if (wd >= 0) inotify_rm_watch(watch.fd, wd);
    wd = inotify_add_watch(watch.fd, path.c_str(), IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF);
    return absl::OkStatus();  // a missing file is noticed by the inode check below
  };
  if (opts.follow) RETURN_IF_ERROR(watch_file());

  absl::Time last_running_check = absl::Now();
  for (;;) {
    ASSIGN_OR_RETURN(bool more, reader.Drain(file.fd));
    if (!more || !opts.follow) return absl::OkStatus();
    // Rotated: the path now names a new file (ReopenContainerLog), so the runtime has closed
    // the old one. Whatever reached the old file since the last read is read first, then the
    // new file from its start.
    struct stat now_st;
    if (stat(path.c_str(), &now_st) == 0 && now_st.st_ino != inode) {
      ASSIGN_OR_RETURN(bool go_on, reader.Drain(file.fd));
      if (!go_on) return absl::OkStatus();
      int nfd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (nfd >= 0) {
        file.Reset(nfd);
        inode = now_st.st_ino;
        reader.DropPending();
        RETURN_IF_ERROR(watch_file());
        continue;
      }
    }
    if (sink.cancelled()) return absl::OkStatus();
    if (absl::Now() - last_running_check >= sink.poll_interval) {
      last_running_check = absl::Now();
      if (!sink.container_running()) {
        // Whatever was written before the exit is read once more, then the stream ends.
        ASSIGN_OR_RETURN(bool unused, reader.Drain(file.fd));
        (void)unused;
        return absl::OkStatus();
      }
    }
    struct pollfd p = {watch.fd, POLLIN, 0};
    int timeout_ms =
        static_cast<int>(std::min<int64_t>(250, absl::ToInt64Milliseconds(sink.poll_interval)));
    if (poll(&p, 1, timeout_ms) > 0) {
      char ev[4096];
      while (read(watch.fd, ev, sizeof(ev)) > 0) {
      }
    }
  }
}

}  // namespace berth::kubelet::server
