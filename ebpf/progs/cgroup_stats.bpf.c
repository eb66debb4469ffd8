// Per-cgroup counters: on-CPU time and run-queue latency (sched_switch, sched_wakeup,
// sched_wakeup_new), exec count (sched_process_exec), block I/O bytes and latency
// (block_io_start/block_rq_issue -> block_rq_complete), TCP retransmits and resets.
// Everything is aggregated in the kernel into `cgroup_stats`, keyed by cgroup v2 id; entries
// go when the cgroup is removed (cgroup_rmdir on the default hierarchy). No per-event
// userspace work. Requires a kernel >= 5.18 (sched_switch carries prev_state).
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

// Tunables, set by the loader before load.
const volatile bool count_root_cgroup = false;  // also account tasks of the root cgroup (id 1)

#define ROOT_CGROUP_ID 1
#define TASK_RUNNING 0

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BERTH_MAX_CGROUPS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct berth_cgroup_stats);
} cgroup_stats SEC(".maps");

// When the task now on this CPU was switched in.
struct oncpu_start {
  __u64 ts;
  __u32 pid;
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct oncpu_start);
} oncpu SEC(".maps");

// Per task: when it became runnable (wakeup or preemption); 0 when not waiting. Task-local
// storage: no global lock and no bound to size, freed with the task.
struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, __u64);
} runnable_since SEC(".maps");

// In-flight block request -> cgroup of the submitting task and issue time.
struct io_start {
  __u64 cgroup_id;
  __u64 issue_ns;
};
// Per-CPU LRU lists: a CPU evicts only when its own share of the map is full of entries.
// (With the common LRU, free nodes migrate to per-CPU free lists, the global free list runs
// dry under machine-wide I/O churn, and refills evict in-flight entries of a mostly empty
// map: their bytes were lost.) Requests merged into another never complete and are evicted.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(map_flags, BPF_F_NO_COMMON_LRU);
  __uint(max_entries, BERTH_MAX_INFLIGHT);
  __type(key, __u64);
  __type(value, struct io_start);
} io_inflight SEC(".maps");

// Never written: the source of zeroes for new cgroup_stats entries (too big for the stack).
struct berth_cgroup_stats zero_stats = {};

static __always_inline struct berth_cgroup_stats *stats_for(__u64 cgroup_id) {
  if (cgroup_id == 0 || (!count_root_cgroup && cgroup_id == ROOT_CGROUP_ID)) return NULL;
  struct berth_cgroup_stats *s = bpf_map_lookup_elem(&cgroup_stats, &cgroup_id);
  if (s) return s;
  // Fails with E2BIG when the map is full: the cgroup then goes uncounted.
  bpf_map_update_elem(&cgroup_stats, &cgroup_id, &zero_stats, BPF_NOEXIST);
  return bpf_map_lookup_elem(&cgroup_stats, &cgroup_id);
}

// Hot paths (every wakeup and context switch of the machine) read task fields with direct,
// CO-RE-relocated loads (tp_btf arguments are BTF pointers) rather than bpf_probe_read calls,
// and skip tasks of the root cgroup (never reported unless count_root_cgroup) before touching
// any map.
static __always_inline bool skip_cgroup(__u64 cgroup_id) {
  return cgroup_id == 0 || (!count_root_cgroup && cgroup_id == ROOT_CGROUP_ID);
}

static __always_inline __u64 task_cgroup_id(struct task_struct *p) {
  return p->cgroups->dfl_cgrp->kn->id;
}

static __always_inline void mark_runnable(struct task_struct *p, __u64 now) {
  if (p->pid == 0 || skip_cgroup(task_cgroup_id(p))) return;
  __u64 *since = bpf_task_storage_get(&runnable_since, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (since) *since = now;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(berth_sched_wakeup, struct task_struct *p) {
  mark_runnable(p, bpf_ktime_get_ns());
  return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(berth_sched_wakeup_new, struct task_struct *p) {
  mark_runnable(p, bpf_ktime_get_ns());
  return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(berth_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state) {
  __u64 now = bpf_ktime_get_ns();
  __u32 prev_pid = prev->pid;
  __u32 next_pid = next->pid;
  __u32 zero = 0;

  // On-CPU time of prev; the tracepoint runs before the switch, so current == prev.
  struct oncpu_start *start = bpf_map_lookup_elem(&oncpu, &zero);
  if (start) {
    if (start->ts && prev_pid != 0 && start->pid == prev_pid) {
      __u64 prev_cgroup = bpf_get_current_cgroup_id();
      if (!skip_cgroup(prev_cgroup)) {
        struct berth_cgroup_stats *s = stats_for(prev_cgroup);
        if (s) __sync_fetch_and_add(&s->cpu_ns, now - start->ts);
      }
    }
    start->ts = now;
    start->pid = next_pid;
  }

  // A preempted task stays runnable: its run-queue wait starts now.
  if (prev_state == TASK_RUNNING) mark_runnable(prev, now);

  if (next_pid == 0) return 0;
  __u64 next_cgroup = task_cgroup_id(next);
  if (skip_cgroup(next_cgroup)) return 0;
  __u64 *since = bpf_task_storage_get(&runnable_since, next, 0, 0);
  if (!since || *since == 0) return 0;
  __u64 delta = now > *since ? now - *since : 0;
  *since = 0;
  struct berth_cgroup_stats *s = stats_for(next_cgroup);
  if (!s) return 0;
  __sync_fetch_and_add(&s->runq_count, 1);
  __sync_fetch_and_add(&s->runq_sum_ns, delta);
  __u32 b = berth_log2_bucket(delta);
  if (b < BERTH_HIST_BUCKETS) __sync_fetch_and_add(&s->runq_buckets[b], 1);
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(berth_sched_process_exec, struct task_struct *p, pid_t old_pid,
             struct linux_binprm *bprm) {
  struct berth_cgroup_stats *s = stats_for(bpf_get_current_cgroup_id());
  if (s) __sync_fetch_and_add(&s->exec_count, 1);
  return 0;
}

// The request is attributed to the task that submits it: block_io_start runs in the
// submitter's context; block_rq_issue may run in kblockd, so it only fills in what is missing.
SEC("tp_btf/block_io_start")
int BPF_PROG(berth_block_io_start, struct request *rq) {
  __u64 key = (__u64)rq;
  struct io_start v = {.cgroup_id = bpf_get_current_cgroup_id(), .issue_ns = 0};
  if (skip_cgroup(v.cgroup_id)) return 0;
  bpf_map_update_elem(&io_inflight, &key, &v, BPF_ANY);
  return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(berth_block_rq_issue, struct request *rq) {
  __u64 key = (__u64)rq;
  __u64 now = bpf_ktime_get_ns();
  struct io_start *v = bpf_map_lookup_elem(&io_inflight, &key);
  if (v) {
    v->issue_ns = now;
    return 0;
  }
  struct io_start n = {.cgroup_id = bpf_get_current_cgroup_id(), .issue_ns = now};
  if (skip_cgroup(n.cgroup_id)) return 0;
  bpf_map_update_elem(&io_inflight, &key, &n, BPF_ANY);
  return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(berth_block_rq_complete, struct request *rq, blk_status_t error,
             unsigned int nr_bytes) {
  __u64 key = (__u64)rq;
  struct io_start *v = bpf_map_lookup_elem(&io_inflight, &key);
  if (!v) return 0;
  __u64 cgroup_id = v->cgroup_id;
  __u64 issue_ns = v->issue_ns;
  // blk_update_request may complete a request in parts (the tracepoint fires before
  // __data_len shrinks): the entry stays until the last part, whose latency is recorded.
  bool last = nr_bytes >= BPF_CORE_READ(rq, __data_len);
  if (last) bpf_map_delete_elem(&io_inflight, &key);
  struct berth_cgroup_stats *s = stats_for(cgroup_id);
  if (!s) return 0;
  __u32 op = BPF_CORE_READ(rq, cmd_flags) & 0xff;  // REQ_OP_MASK; REQ_OP_READ == 0
  if (op == 0)
    __sync_fetch_and_add(&s->io_read_bytes, nr_bytes);
  else
    __sync_fetch_and_add(&s->io_write_bytes, nr_bytes);
  if (issue_ns == 0 || !last) return 0;
  __u64 delta = bpf_ktime_get_ns() - issue_ns;
  __sync_fetch_and_add(&s->io_count, 1);
  __sync_fetch_and_add(&s->io_sum_ns, delta);
  __u32 b = berth_log2_bucket(delta);
  if (b < BERTH_HIST_BUCKETS) __sync_fetch_and_add(&s->io_buckets[b], 1);
  return 0;
}

// TCP events often run in softirq context: the cgroup is the socket's, not current's.
static __always_inline struct berth_cgroup_stats *stats_for_sock(const struct sock *sk) {
  return stats_for(BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id));
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(berth_tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb) {
  struct berth_cgroup_stats *s = stats_for_sock(sk);
  if (s) __sync_fetch_and_add(&s->tcp_retransmits, 1);
  return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(berth_tcp_send_reset, const struct sock *sk, const struct sk_buff *skb) {
  if (!sk) return 0;  // resets for packets without a socket
  struct berth_cgroup_stats *s = stats_for_sock(sk);
  if (s) __sync_fetch_and_add(&s->tcp_resets_sent, 1);
  return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(berth_tcp_receive_reset, struct sock *sk) {
  struct berth_cgroup_stats *s = stats_for_sock(sk);
  if (s) __sync_fetch_and_add(&s->tcp_resets_received, 1);
  return 0;
}

// Per-pod network bytes: attached by the loader to chosen cgroups (berth: the parent of all
// pod cgroups), counted per socket cgroup (bpf_skb_cgroup_id: the container's). Always lets
// the packet through.
SEC("cgroup_skb/ingress")
int berth_cgroup_skb_ingress(struct __sk_buff *skb) {
  struct berth_cgroup_stats *s = stats_for(bpf_skb_cgroup_id(skb));
  if (s) {
    __sync_fetch_and_add(&s->net_rx_bytes, skb->len);
    __sync_fetch_and_add(&s->net_rx_packets, 1);
  }
  return 1;
}

SEC("cgroup_skb/egress")
int berth_cgroup_skb_egress(struct __sk_buff *skb) {
  struct berth_cgroup_stats *s = stats_for(bpf_skb_cgroup_id(skb));
  if (s) {
    __sync_fetch_and_add(&s->net_tx_bytes, skb->len);
    __sync_fetch_and_add(&s->net_tx_packets, 1);
  }
  return 1;
}

// Drops a removed cgroup's counters. hierarchy_id 0 is the default (v2) hierarchy; v1
// hierarchies have their own id spaces and must not delete v2 entries.
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(berth_cgroup_rmdir, struct cgroup *cgrp, const char *path) {
  if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0) return 0;
  __u64 id = BPF_CORE_READ(cgrp, kn, id);
  bpf_map_delete_elem(&cgroup_stats, &id);
  return 0;
}
