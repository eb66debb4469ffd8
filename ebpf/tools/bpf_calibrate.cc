// bpf_calibrate: loads progs/calibration.bpf.c (an empty tp_btf/sched_switch program), runs
// `sh -c <command>`, and prints {"runs": N, "ns_per_run": X} of that program over the command:
// with kernel.bpf_stats_enabled=1, the kernel's own accounting cost per program run, to set
// against the ns per event tests/bench/ebpf_overhead.sh measures for berth's programs.
// Usage: bpf_calibrate '<command>'   (root; exit 1 with the reason when loading fails)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "ebpf/skeleton.h"

#include "calibration.skel.h"

#include <sys/wait.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s '<command>'\n", argv[0]);
    return 2;
  }
  auto skel = berth::ebpf::BpfSkeleton<calibration_bpf>::Open("calibration");
  absl::Status st = skel.ok() ? skel->Load() : skel.status();
  if (st.ok()) st = skel->Attach();
  if (!st.ok()) {
    fprintf(stderr, "bpf_calibrate: %s\n", st.ToString().c_str());
    return 1;
  }
  int fd = bpf_program__fd((*skel)->progs.berth_calibration_noop);
  bpf_prog_info before{}, after{};
  __u32 len = sizeof(before);
  if (bpf_obj_get_info_by_fd(fd, &before, &len) != 0) return 1;
  int status = system(argv[1]);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "bpf_calibrate: command failed (status %d)\n", status);
    return 1;
  }
  len = sizeof(after);
  if (bpf_obj_get_info_by_fd(fd, &after, &len) != 0) return 1;
  unsigned long long runs = after.run_cnt - before.run_cnt;
  unsigned long long ns = after.run_time_ns - before.run_time_ns;
  printf("{\"runs\": %llu, \"ns_per_run\": %.1f}\n", runs,
         runs ? static_cast<double>(ns) / runs : 0.0);
  return 0;
}
