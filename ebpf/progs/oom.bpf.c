// OOM kills: oom:mark_victim sends the victim's cgroup id, pid and command through a ring
// buffer, polled by one userspace thread (ebpf/collectors.cc).
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 64 * 1024);  // bytes; resized by the loader before load
} oom_events SEC(".maps");

SEC("tp_btf/mark_victim")
int BPF_PROG(berth_mark_victim, struct task_struct *task, uid_t uid) {
  struct berth_oom_event *e = bpf_ringbuf_reserve(&oom_events, sizeof(*e), 0);
  if (!e) return 0;
  e->cgroup_id = berth_task_cgroup_id(task);
  e->ktime_ns = bpf_ktime_get_ns();
  e->pid = BPF_CORE_READ(task, tgid);
  e->uid = uid;
  BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
  bpf_ringbuf_submit(e, 0);
  return 0;
}
