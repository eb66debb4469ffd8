// The test pause image's process (registry.k8s.io/pause as the e2e suite uses it): sleeps
// until SIGTERM or SIGINT, then exits 0; reaps children (it may be a pod's PID 1).
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}
static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, 0, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, 0);
  sigaction(SIGINT, &sa, 0);
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, 0);
  for (;;) pause();
}
