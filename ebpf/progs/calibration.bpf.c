// An empty sched_switch program for tests/bench/ebpf_overhead.sh (ebpf/tools/bpf_calibrate):
// with kernel.bpf_stats_enabled=1 its run_time_ns per run is the kernel's per-run accounting
// cost (two clock reads around the program), which every measured program carries too.
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_switch")
int BPF_PROG(berth_calibration_noop, bool preempt, struct task_struct *prev,
             struct task_struct *next) {
  return 0;
}
