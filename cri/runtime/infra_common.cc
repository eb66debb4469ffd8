#include <time.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "cri/runtime/sandbox_infra.h"

#include <signal.h>
#include <sys/wait.h>

namespace berth::cri::runtime {

absl::Status KillAndWait(pid_t pid, int timeout_ms) {
  if (pid <= 0) return absl::OkStatus();
  if (kill(pid, SIGKILL) != 0 && errno == ESRCH) {
    waitpid(pid, nullptr, WNOHANG);
    return absl::OkStatus();
  }
  for (int waited = 0; waited <= timeout_ms; waited += 5) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return absl::OkStatus();
    if (r < 0 && errno == ECHILD) {
      // Not our child: wait until the PID is gone (or a zombie reaped by its parent).
      if (kill(pid, 0) != 0 && errno == ESRCH) return absl::OkStatus();
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return absl::DeadlineExceededError(absl::StrCat("process ", pid, " did not exit after SIGKILL"));
}

}  // namespace berth::cri::runtime
