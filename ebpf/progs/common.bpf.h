// Helpers shared by the *.bpf.c programs. BPF side only.
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "berth_ebpf.h"

// cgroup v2 id of `task` (its default-hierarchy cgroup's kernfs id), as
// bpf_get_current_cgroup_id() returns it for the current task.
static __always_inline __u64 berth_task_cgroup_id(struct task_struct *task) {
  return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

// Log2 bucket of a duration in ns, in microseconds (see BERTH_HIST_BUCKETS): the bit length
// of the microseconds, capped at the last bucket. Branch-light (six steps, no loop): it runs
// on context switches.
static __always_inline __u32 berth_log2_bucket(__u64 ns) {
  __u64 us = ns / 1000;
  __u32 bits = 0;
  if (us >> 32) { us >>= 32; bits += 32; }
  if (us >> 16) { us >>= 16; bits += 16; }
  if (us >> 8) { us >>= 8; bits += 8; }
  if (us >> 4) { us >>= 4; bits += 4; }
  if (us >> 2) { us >>= 2; bits += 2; }
  if (us >> 1) { us >>= 1; bits += 1; }
  bits += (__u32)us;  // 0 or 1 left
  if (bits > BERTH_HIST_BUCKETS - 1) bits = BERTH_HIST_BUCKETS - 1;
  // Opaque to the compiler, so that the callers' bound checks stay in the code (the
  // verifier does not follow the arithmetic above).
  asm volatile("" : "+r"(bits));
  return bits;
}
