// The exit monitor: an inotify watch on <state_dir>/exits, where conmon writes a file named
// after the container when it exits. Each file becomes an EXITED record (exit code, finish
// time, OOMKilled from the memory cgroup), a CONTAINER_STOPPED_EVENT and the OnContainerExit
// callbacks.

#include "cri/runtime/runtime_records.h"  // first: before <signal.h> (runtime.h)

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "cri/runtime/cgroups.h"

namespace berth::cri::runtime {

// True when the memory cgroup at `cgroups_path` recorded an OOM kill (v1 or v2).
bool SawOomKill(const std::vector<CgroupMount>& mounts, const std::string& cgroups_path) {
  for (const auto& m : mounts) {
    bool mem = m.v2 || std::find(m.controllers.begin(), m.controllers.end(), "memory") !=
                           m.controllers.end();
    if (!mem) continue;
    std::string dir = JoinPath(m.mount_point, std::string(absl::StripPrefix(cgroups_path, "/")));
    auto s = ReadFile(JoinPath(dir, m.v2 ? "memory.events" : "memory.oom_control"));
    if (!s.ok()) continue;
    for (absl::string_view line : absl::StrSplit(*s, '\n')) {
      if (absl::ConsumePrefix(&line, "oom_kill ")) {
        int64_t n = 0;
        if (absl::SimpleAtoi(line, &n) && n > 0) return true;
      }
    }
  }
  return false;
}

void Runtime::HandleExit(const std::string& id) {
  std::shared_ptr<ContainerRec> c;
  {
    absl::MutexLock l(&mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return;
    c = it->second;
    if (c->state == v1::CONTAINER_EXITED) return;
  }
  auto code = oci::OciRuntime::ReadExitFile(ExitDir(), id);
  if (!code.ok()) {
    LOG(WARNING) << "runtime: exit file of container " << id << ": " << code.status();
    return;
  }
  struct stat st;
  int64_t finished = stat(JoinPath(ExitDir(), id).c_str(), &st) == 0
                         ? int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec
                         : NowNs();
  bool oom = SawOomKill(HostCgroupMounts(), c->cgroups_path);
  std::vector<std::function<void(const std::string&)>> cbs;
  {
    absl::MutexLock l(&mu_);
    if (c->state == v1::CONTAINER_EXITED) return;
    c->state = v1::CONTAINER_EXITED;
    c->exit_code = *code;
    c->finished_at = std::max(finished, c->started_at);
    c->reason = oom ? "OOMKilled" : (*code == 0 ? "Completed" : "Error");
    absl::Status s = SaveContainer(*c);
    if (!s.ok()) {
      LOG(ERROR) << "runtime: record exit of container " << id << ": " << s;
    }
    cbs = exit_cbs_;
  }
  LOG(INFO) << "runtime: container " << id << " exited with code " << *code;
  EmitEvent(v1::CONTAINER_STOPPED_EVENT, id, c->sandbox_id);
  for (auto& cb : cbs) cb(id);
}

void Runtime::MonitorLoop() {
  alignas(struct inotify_event) char buf[16384];
  for (;;) {
    struct pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LOG(ERROR) << "runtime: exit monitor poll: " << strerror(errno);
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    ssize_t len = read(inotify_fd_, buf, sizeof(buf));
    if (len <= 0) continue;
    for (char* p = buf; p < buf + len;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      if (ev->mask & IN_Q_OVERFLOW) {
        // Missed events: rescan the exit dir for known containers.
        auto names = ListDir(ExitDir());
        if (names.ok())
          for (const auto& name : *names) HandleExit(name);
      } else if (ev->len > 0) {
        HandleExit(ev->name);
      }
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
}

}  // namespace berth::cri::runtime
