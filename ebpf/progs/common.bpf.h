// Helpers shared by the *.bpf.c programs. BPF side only.
#pragma once

// vmlinux.h defines the kernel types the libbpf headers below use: it comes first.
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
