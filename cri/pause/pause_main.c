// berth-pause: the infra process of a pod sandbox, run directly on the host (no image).
//
//   berth-pause [--user] [--net] [--ipc] [--uts] [--pid] [--hostname NAME] [--ready-fd N]
//               [--cgroup-procs FILE]...
//
// Steps: write our PID to every --cgroup-procs file (so the namespaces' holder lives in the
// pod cgroup), unshare() the requested namespaces (with --user a new user namespace too, in
// the same call, so that it owns the others; the caller writes its uid_map/gid_map), set the
// hostname in the new UTS namespace, then write one byte to the ready fd and wait for signals
// forever, reaping children (SIGCHLD) and exiting 0 on SIGTERM/SIGINT. With --pid the process forks
// once so that the child is PID 1 of the new PID namespace (and reaps its zombies); the parent
// forwards SIGTERM/SIGINT to it and exits with it. Exit 2: usage or setup error (on stderr).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>

#define kMaxCgroupFiles 64

static void Die(const char* what, const char* arg) {
  fprintf(stderr, "berth-pause: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
          strerror(errno));
  exit(2);
}

static void Usage(void) {
  fprintf(stderr,
          "usage: berth-pause [--user] [--net] [--ipc] [--uts] [--pid] [--hostname NAME] "
          "[--ready-fd N] [--cgroup-procs FILE]...\n");
  exit(2);
}

static void JoinCgroup(const char* procs_file) {
  int fd = open(procs_file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) Die("open", procs_file);
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
  if (write(fd, buf, (size_t)n) != n) Die("write pid to", procs_file);
  close(fd);
}

static void ReapAll(void) {
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

// Waits for signals forever (they are blocked, so they queue even for a PID-namespace init).
// `child` > 0: the parent of a PID namespace's init; forwards termination and exits with it.
static void WaitLoop(const sigset_t* set, pid_t child) {
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(set, &si);
    if (sig < 0) continue;  // EINTR
    if (sig == SIGTERM || sig == SIGINT) {
      if (child > 0) {
        kill(child, SIGTERM);
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
        }
      }
      exit(0);
    }
    if (sig == SIGCHLD) {
      if (child > 0) {
        int status;
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child) exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
      } else {
        ReapAll();
      }
    }
  }
}

int main(int argc, char** argv) {
  int flags = 0;
  int ready_fd = -1;
  const char* hostname = NULL;
  const char* cgroup_files[kMaxCgroupFiles];
  int n_cgroup_files = 0;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--user") == 0) {
      flags |= CLONE_NEWUSER;
    } else if (strcmp(a, "--net") == 0) {
      flags |= CLONE_NEWNET;
    } else if (strcmp(a, "--ipc") == 0) {
      flags |= CLONE_NEWIPC;
    } else if (strcmp(a, "--uts") == 0) {
      flags |= CLONE_NEWUTS;
    } else if (strcmp(a, "--pid") == 0) {
      flags |= CLONE_NEWPID;
    } else if (strcmp(a, "--hostname") == 0 && i + 1 < argc) {
      hostname = argv[++i];
    } else if (strcmp(a, "--ready-fd") == 0 && i + 1 < argc) {
      ready_fd = atoi(argv[++i]);
    } else if (strcmp(a, "--cgroup-procs") == 0 && i + 1 < argc) {
      if (n_cgroup_files == kMaxCgroupFiles) Usage();
      cgroup_files[n_cgroup_files++] = argv[++i];
    } else {
      Usage();
    }
  }
  if (hostname && !(flags & CLONE_NEWUTS)) {
    fprintf(stderr, "berth-pause: --hostname needs --uts\n");
    return 2;
  }

  // Signals are only ever taken synchronously via sigwaitinfo.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) Die("sigprocmask", NULL);

  for (int i = 0; i < n_cgroup_files; ++i) JoinCgroup(cgroup_files[i]);
  if (flags && unshare(flags) != 0) Die("unshare", NULL);
  if (hostname && sethostname(hostname, strlen(hostname)) != 0) Die("sethostname", hostname);

  pid_t child = 0;
  if (flags & CLONE_NEWPID) {
    child = fork();
    if (child < 0) Die("fork", NULL);
    if (child == 0) {
      // PID 1 of the new namespace: dies with its parent, whatever killed the parent.
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Die("prctl", NULL);
      if (ready_fd >= 0) close(ready_fd);
      WaitLoop(&set, 0);
    }
  }

  if (ready_fd >= 0) {
    char b = 'r';
    while (write(ready_fd, &b, 1) < 0 && errno == EINTR) {
    }
    close(ready_fd);
  }
  WaitLoop(&set, child);
  return 0;
}
