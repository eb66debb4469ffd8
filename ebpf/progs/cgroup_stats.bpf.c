// Per-cgroup counters: on-CPU time and run-queue latency (sched_switch), exec count
// (sched_process_exec), block I/O bytes and latency (block_rq_issue -> block_rq_complete),
// TCP retransmits and resets, cgroup_skb bytes.
// Everything is aggregated in the kernel into per-CPU maps: the scheduler and exec counters in
// per-cgroup slots of an array named by cgroup-local storage, the others keyed by cgroup id;
// entries go when the cgroup is removed (cgroup_rmdir). No per-event userspace work.
//
// Only tracked cgroups are counted: the descendants of a few cgroups (berth's parents of pod
// cgroups), given by their ids and levels in each hierarchy by the loader. The check is a few
// dependent loads on the task's cgroup (its ancestor at the root's level), no map lookup; the
// context-switch program (every switch of the machine) also caches its answer per CPU for the
// last tracked and the last two untracked cgroups, so that most switches (a pod's tasks, the
// idle task, a busy host service) take a short straight path. Requires a kernel >= 6.2
// (BPF_MAP_TYPE_CGRP_STORAGE; sched_switch's prev_state, bpf_loop, bpf_map_lookup_percpu_elem are
// older) built with CONFIG_SCHED_INFO (SCHEDSTATS or TASK_DELAY_ACCT) and CONFIG_FAIR_GROUP_SCHED;
// on another kernel the load fails and berth exports berth_ebpf_up 0 with the verifier's reason.
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

// Set by the loader before load: count every cgroup but the root (count_root_cgroup: the
// root too) instead of the tracked subtrees.
const volatile bool track_all = false;
const volatile bool count_root_cgroup = false;
// The hierarchy id of the block cgroup controller (io on v2: 0; blkio on v1).
const volatile __u32 io_hierarchy_id = 0;

// The tracked subtrees, written by the loader at any time through the mmapped .bss: entry i
// (its top cgroup in the default hierarchy, and the same path in the block controller's
// hierarchy) first, then tracked_count = i + 1. Entries are never removed.
struct berth_tracked_root tracked_roots[BERTH_MAX_TRACKED];
struct berth_tracked_root io_tracked_roots[BERTH_MAX_TRACKED];
__u32 tracked_count;

#define ROOT_CGROUP_ID 1

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, BERTH_MAX_CGROUPS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct berth_cgroup_stats);
} cgroup_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, BERTH_MAX_CGROUPS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct berth_io_stats);
} io_stats SEC(".maps");

// Per CPU: the tracked task now on this CPU (its address; 0: no tracked task is on the CPU)
// and its se.sum_exec_runtime when it was switched in; the last tracked cgroup seen on this
// CPU (its address; 0: none) with its slot, which is always the cgroup `task` was in when it
// was switched in; the last two untracked cgroups seen (typically the root, the idle task's,
// and a host service's) with the tracked_count they were checked against; and this CPU's run
// queue (struct rq, found once). A switch to a task of one of these cgroups skips the subtree
// check and the storage lookup; a switch away from `task` needs no look at its cgroup at all.
// A tracked cgroup stays tracked; an untracked one stays untracked until a subtree is added
// (tracked_count changes). cgroup_rmdir clears the entries of a removed cgroup on every CPU
// (and `task`, if it was switched in there) before the cgroup can be freed and its address or
// slot reused.
struct oncpu_start {
  __u64 runtime_ns;
  __u64 task;
  __u64 cached_cgroup;
  __u64 untracked_cgroup[2];  // the newest first; 0: none
  __u64 rq;                   // 0: not known yet
  __u32 cached_slot;
  __u32 untracked_count;
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct oncpu_start);
} oncpu SEC(".maps");

// In-flight block request of a tracked cgroup -> when it was issued to the device, for the
// latency histogram only (bytes never depend on this map). Per-CPU LRU lists: a CPU evicts
// only when its own share is full. Requests requeued are re-issued (the time is updated).
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(map_flags, BPF_F_NO_COMMON_LRU);
  __uint(max_entries, BERTH_MAX_INFLIGHT);
  __type(key, __u64);
  __type(value, __u64);
} io_inflight SEC(".maps");

// The scheduler and exec counters of tracked cgroups: slot i belongs to the cgroup whose id is
// slot_cgroup[i] (0: free; userspace reads this through the mmapped .bss) and whose
// `cgroup_slots` storage says i. A cgroup gets a slot the first time one of its tasks is seen
// (after the subtree check), keeps it until cgroup_rmdir; cgroup-local storage makes the hot
// path one storage lookup and one array index, no hashing.
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, BERTH_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct berth_cgroup_stats);
} slot_stats SEC(".maps");

struct cgroup_slot {
  __u32 index;
};
struct {
  __uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct cgroup_slot);
} cgroup_slots SEC(".maps");

__u64 slot_cgroup[BERTH_MAX_SLOTS];
__u32 slot_hint;  // where the search for a free slot starts
// Number of possible CPUs (copies of a per-CPU value), set by the loader.
const volatile __u32 nr_cpus = 1;

// Never written: the source of zeroes for new map entries (too big for the stack).
struct berth_cgroup_stats zero_stats = {};
struct berth_io_stats zero_io_stats = {};

// Up to how many levels below a tracked cgroup its descendants are recognized (pods are at
// most 4: kubepods/<qos>/pod<uid>/<container>).
#define MAX_DEPTH_BELOW_ROOT 12

// Casts a kernel pointer to an untrusted, read-only BTF pointer of another type (a no-op
// instruction after verification).
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

// The ancestor of `cg` at `level` (the caller checks level <= cg->level), walking up
// cgroup->self.parent: the kernel's cgroup->ancestors[] is a trailing array past the struct's
// BTF size, which the verifier does not let programs index.
static __always_inline struct cgroup *ancestor_at(struct cgroup *cg, int level, int root_level) {
  struct cgroup *a = cg;
  for (int i = 0; i < MAX_DEPTH_BELOW_ROOT; i++) {
    if (level <= root_level) return a;
    a = bpf_rdonly_cast(a->self.parent, bpf_core_type_id_kernel(struct cgroup));
    level--;
  }
  return level <= root_level ? a : NULL;
}

// Whether `cg` is the top of a tracked subtree of `roots` or below one. Direct,
// CO-RE-relocated loads of BTF pointers (faults read as 0), no helper call.
static __always_inline bool under(struct cgroup *cg, struct berth_tracked_root *roots) {
  if (!cg) return false;
  if (track_all) {
    __u64 id = cg->kn->id;
    return id != 0 && (count_root_cgroup || id != ROOT_CGROUP_ID);
  }
  __u32 n = *(volatile __u32 *)&tracked_count;
  if (n == 0) return false;
  int level = cg->level;
  for (int i = 0; i < BERTH_MAX_TRACKED; i++) {
    if (i >= n) break;
    int root_level = (int)roots[i].level;
    if (level < root_level) continue;
    struct cgroup *ancestor = ancestor_at(cg, level, root_level);
    if (ancestor && ancestor->kn->id == roots[i].id) return true;
  }
  return false;
}

static __always_inline struct cgroup *task_cgroup(struct task_struct *p) {
  return p->cgroups->dfl_cgrp;
}

// Whether `p` is a CPU's idle task, in the one mode where that matters (count_root_cgroup:
// the idle tasks are in the root cgroup); false otherwise, without a load.
static __always_inline bool idle_task(struct task_struct *p) {
  return track_all && count_root_cgroup && p->pid == 0;
}

static __always_inline bool tracked(struct cgroup *cg) { return under(cg, tracked_roots); }

// This CPU's counters of cgroup `id`, created on first use. NULL when the map is full (the
// cgroup then goes uncounted).
static __always_inline struct berth_cgroup_stats *stats_for(__u64 id) {
  struct berth_cgroup_stats *s = bpf_map_lookup_elem(&cgroup_stats, &id);
  if (s) return s;
  bpf_map_update_elem(&cgroup_stats, &id, &zero_stats, BPF_NOEXIST);
  return bpf_map_lookup_elem(&cgroup_stats, &id);
}

static int zero_slot_copy(__u32 cpu, __u32 *slot) {
  struct berth_cgroup_stats *s = bpf_map_lookup_percpu_elem(&slot_stats, slot, cpu);
  if (s) *s = zero_stats;
  return 0;
}

// Gives the online cgroup `cg` a free slot with zeroed counters, and records it in its
// storage. Returns the slot, or BERTH_MAX_SLOTS when none is free (the cgroup then goes
// uncounted) or the cgroup is being removed.
static __noinline __u32 assign_slot(struct cgroup *cg) {
  if (!cg || !(cg->self.flags & CSS_ONLINE)) return BERTH_MAX_SLOTS;
  __u64 id = cg->kn->id;
  for (int n = 0; n < 32; n++) {
    __u32 i = __sync_fetch_and_add(&slot_hint, 1) & (BERTH_MAX_SLOTS - 1);
    if (__sync_val_compare_and_swap(&slot_cgroup[i], 0, id) != 0) continue;
    __u32 arg = i;
    bpf_loop(nr_cpus, zero_slot_copy, &arg, 0);
    struct cgroup_slot init = {.index = i};
    struct cgroup_slot *cs =
        bpf_cgrp_storage_get(&cgroup_slots, cg, &init, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (cs && cs->index == i) return i;
    // Out of memory, or another CPU gave the cgroup a slot meanwhile. (The mask again: the
    // verifier lost the bound of i across the calls.)
    i &= BERTH_MAX_SLOTS - 1;
    __sync_val_compare_and_swap(&slot_cgroup[i], id, 0);
    return cs ? cs->index : BERTH_MAX_SLOTS;
  }
  return BERTH_MAX_SLOTS;
}

// This CPU's scheduler/exec counters of the tracked cgroup `cg`; NULL when it has no slot.
static __always_inline struct berth_cgroup_stats *slot_stats_of(struct cgroup *cg) {
  struct cgroup_slot *cs = bpf_cgrp_storage_get(&cgroup_slots, cg, 0, 0);
  __u32 i = cs ? cs->index : assign_slot(cg);
  if (i >= BERTH_MAX_SLOTS) return NULL;
  return bpf_map_lookup_elem(&slot_stats, &i);
}

// slot_stats_of() through this CPU's one-entry cache (sched_switch only).
static __always_inline struct berth_cgroup_stats *cached_slot_stats_of(struct oncpu_start *c,
                                                                       struct cgroup *cg) {
  __u32 i;
  if (c->cached_cgroup == (__u64)cg) {
    i = c->cached_slot;
  } else {
    struct cgroup_slot *cs = bpf_cgrp_storage_get(&cgroup_slots, cg, 0, 0);
    i = cs ? cs->index : assign_slot(cg);
    if (i >= BERTH_MAX_SLOTS) return NULL;
    c->cached_cgroup = (__u64)cg;
    c->cached_slot = i;
  }
  return bpf_map_lookup_elem(&slot_stats, &i);
}

static int forget_cached_cgroup(__u32 cpu, __u64 *cg) {
  __u32 zero = 0;
  struct oncpu_start *c = bpf_map_lookup_percpu_elem(&oncpu, &zero, cpu);
  if (!c) return 0;
  if (c->cached_cgroup == *cg) {
    c->cached_cgroup = 0;
    c->task = 0;  // its time would go to the slot, which the cgroup frees
  }
  if (c->untracked_cgroup[0] == *cg) c->untracked_cgroup[0] = 0;
  if (c->untracked_cgroup[1] == *cg) c->untracked_cgroup[1] = 0;
  return 0;
}

// The counting of one switch, once prev's and next's counters are known (NULL: not tracked,
// or prev's switch-in was not seen): prev's on-CPU time since its switch-in, next's start, and
// next's run-queue latency.
static __always_inline void account_switch(struct oncpu_start *start, struct task_struct *prev,
                                           struct task_struct *next,
                                           struct berth_cgroup_stats *prev_stats,
                                           struct berth_cgroup_stats *next_stats) {
  if (prev_stats) {
    __u64 runtime = prev->se.sum_exec_runtime;
    if (runtime > start->runtime_ns) prev_stats->cpu_ns += runtime - start->runtime_ns;
  }
  if (!next_stats) {
    start->task = 0;
    return;
  }
  start->task = (__u64)next;
  start->runtime_ns = next->se.sum_exec_runtime;
  __u64 queued = next->sched_info.last_queued;
  if (queued == 0) return;
  // This CPU's run queue, found once through next's cfs_rq, the one of its group on this CPU
  // whatever its class (set_task_rq(); CONFIG_FAIR_GROUP_SCHED, which the cpu controller
  // needs). Run queues are static per-CPU data: the address stays valid.
  __u64 rq_addr = start->rq;
  if (rq_addr == 0) {
    rq_addr = (__u64)next->se.cfs_rq->rq;
    start->rq = rq_addr;
  }
  struct rq *rq = bpf_rdonly_cast((void *)rq_addr, bpf_core_type_id_kernel(struct rq));
  __u64 now = rq->clock;
  __u64 delta = now > queued ? now - queued : 0;
  next_stats->runq_sum_ns += delta;
  __u32 b = berth_log2_bucket(delta);
  if (b < BERTH_HIST_BUCKETS) next_stats->runq_buckets[b]++;
}

// Puts the untracked cgroup `cg` first in this CPU's cache of untracked cgroups, checked
// against `count` tracked subtrees (entries checked against another count are dropped).
static __always_inline void remember_untracked(struct oncpu_start *start, struct cgroup *cg,
                                               __u32 count) {
  __u64 addr = (__u64)cg;
  if (start->untracked_count != count) {
    start->untracked_cgroup[1] = 0;
    start->untracked_count = count;
  } else if (start->untracked_cgroup[0] == addr) {
    return;
  } else {
    start->untracked_cgroup[1] = start->untracked_cgroup[0];
  }
  start->untracked_cgroup[0] = addr;
}

// Every switch but the fast path's: finds out whether next is tracked (the subtree check,
// cached per CPU) and its slot. A subprogram, so that the fast path stays short.
static __noinline int switch_slow(struct oncpu_start *start, struct task_struct *prev,
                                  struct task_struct *next, struct cgroup *next_cg) {
  if (!start) return 0;
  // prev's on-CPU time counts when its switch-in was seen (the task on this CPU since then):
  // the slot is then still its cgroup's. Looked up before next changes the cached one.
  struct berth_cgroup_stats *prev_stats = NULL;
  if (start->task == (__u64)prev) {
    __u32 i = start->cached_slot;
    prev_stats = bpf_map_lookup_elem(&slot_stats, &i);
  }
  // The idle tasks belong to the root cgroup, which is not tracked (unless count_root_cgroup,
  // where they are left out by pid: a load of another cache line, only in that mode).
  struct berth_cgroup_stats *next_stats = NULL;
  if (!idle_task(next)) {
    if ((__u64)next_cg == start->cached_cgroup || tracked(next_cg))
      next_stats = cached_slot_stats_of(start, next_cg);
    else
      remember_untracked(start, next_cg, *(volatile __u32 *)&tracked_count);
  }
  account_switch(start, prev, next, prev_stats, next_stats);
  return 0;
}

// Runs with interrupts off, after the next task was picked and before the switch
// (current == prev). Per-CPU counters: plain adds. No clock read and no per-task storage: the
// scheduler's own bookkeeping has both figures, up to date at this point of __schedule():
//  - on-CPU time: prev->se.sum_exec_runtime (every scheduling class accounts into it; the
//    scheduler updated it for prev when it was dequeued or put back) minus its value when
//    prev was switched in (the oncpu slot), counted to the cgroup prev was in then (a task
//    moved to another cgroup while it runs has that slice counted to the old one);
//  - run-queue latency: next->sched_info.last_queued (CONFIG_SCHED_INFO: the rq clock when the
//    task was enqueued by a wakeup, or put back by a preemption; 0 when not waiting) to this
//    CPU's rq clock, updated by __schedule() before picking next: the same sample the kernel
//    adds to the task's run_delay (/proc/<pid>/schedstat) right after this tracepoint.
// Fast path, the common cases: next in the tracked cgroup this CPU counted last or in one of the
// untracked ones it saw last (ping-pong between a pod's tasks, or between a pod's task and the
// idle task, or host tasks); straight-line code, two loads for next's cgroup, none for prev's.
// Everything else goes through switch_slow().
SEC("tp_btf/sched_switch")
int BPF_PROG(berth_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state) {
  struct cgroup *next_cg = task_cgroup(next);
  __u32 zero = 0;
  struct oncpu_start *start = bpf_map_lookup_elem(&oncpu, &zero);  // inlined: no call
  if (!start) return 0;
  bool prev_counted = start->task == (__u64)prev;
  bool next_counted = (__u64)next_cg == start->cached_cgroup;
  if (idle_task(next) ||
      !(next_counted || (((__u64)next_cg == start->untracked_cgroup[0] ||
                          (__u64)next_cg == start->untracked_cgroup[1]) &&
                         start->untracked_count == *(volatile __u32 *)&tracked_count)))
    return switch_slow(start, prev, next, next_cg);
  if (!prev_counted && !next_counted) return 0;  // start->task is 0 already
  __u32 i = start->cached_slot;
  struct berth_cgroup_stats *s = bpf_map_lookup_elem(&slot_stats, &i);
  if (!s) return 0;
  // Two calls with next's counters known NULL or not: the verifier then need not follow the
  // compiler's merged checks.
  if (next_counted)
    account_switch(start, prev, next, prev_counted ? s : NULL, s);
  else
    account_switch(start, prev, next, s, NULL);  // prev_counted
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(berth_sched_process_exec, struct task_struct *p, pid_t old_pid,
             struct linux_binprm *bprm) {
  struct cgroup *cg = task_cgroup(p);
  if (!tracked(cg)) return 0;
  struct berth_cgroup_stats *s = slot_stats_of(cg);
  if (s) s->exec_count++;
  return 0;
}

// Block I/O is attributed as the block cgroup controller does (blkio.throttle.io_service_bytes,
// io.stat): to the blkcg of the request's bios, which blk-mq never merges across
// (blk_cgroup_mergeable). That is the submitter's cgroup for direct I/O and the dirtying
// cgroup for writeback where the kernel knows it (v2), whatever task issues the request.
static __always_inline struct cgroup *request_io_cgroup(struct request *rq) {
  struct bio *bio = rq->bio;
  if (!bio) return NULL;
  struct blkcg_gq *blkg = bio->bi_blkg;
  if (!blkg) return NULL;
  struct blkcg *blkcg = blkg->blkcg;
  if (!blkcg) return NULL;
  return blkcg->css.cgroup;
}

static __always_inline bool io_tracked(struct cgroup *cg) { return under(cg, io_tracked_roots); }

SEC("tp_btf/block_rq_issue")
int BPF_PROG(berth_block_rq_issue, struct request *rq) {
  if (!io_tracked(request_io_cgroup(rq))) return 0;
  __u64 key = (__u64)rq;
  __u64 now = bpf_ktime_get_ns();
  bpf_map_update_elem(&io_inflight, &key, &now, BPF_ANY);
  return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(berth_block_rq_complete, struct request *rq, blk_status_t error,
             unsigned int nr_bytes) {
  struct cgroup *cg = request_io_cgroup(rq);
  if (!io_tracked(cg)) return 0;
  __u64 id = cg->kn->id;
  struct berth_io_stats *s = bpf_map_lookup_elem(&io_stats, &id);
  if (!s) {
    bpf_map_update_elem(&io_stats, &id, &zero_io_stats, BPF_NOEXIST);
    s = bpf_map_lookup_elem(&io_stats, &id);
    if (!s) return 0;
  }
  __u32 op = rq->cmd_flags & 0xff;  // REQ_OP_MASK; REQ_OP_READ == 0
  if (op == 0)
    s->read_bytes += nr_bytes;
  else
    s->write_bytes += nr_bytes;
  // blk_update_request may complete a request in parts (the tracepoint fires before
  // __data_len shrinks): the latency is recorded with the last part.
  if (nr_bytes < rq->__data_len) return 0;
  __u64 key = (__u64)rq;
  __u64 *issued = bpf_map_lookup_elem(&io_inflight, &key);
  if (!issued) return 0;
  __u64 issue_ns = *issued;
  bpf_map_delete_elem(&io_inflight, &key);
  __u64 now = bpf_ktime_get_ns();
  __u64 delta = now > issue_ns ? now - issue_ns : 0;
  s->count++;
  s->sum_ns += delta;
  __u32 b = berth_log2_bucket(delta);
  if (b < BERTH_HIST_BUCKETS) s->buckets[b]++;
  return 0;
}

// TCP events often run in softirq context: the cgroup is the socket's, not current's. Rare
// events, possibly nested (process and softirq context): atomic adds.
static __always_inline struct berth_cgroup_stats *stats_for_sock(const struct sock *sk) {
  struct cgroup *cg = sk->sk_cgrp_data.cgroup;
  if (!tracked(cg)) return NULL;
  return stats_for(cg->kn->id);
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
// the packet through. Egress may nest (process context and softirq): atomic adds.
SEC("cgroup_skb/ingress")
int berth_cgroup_skb_ingress(struct __sk_buff *skb) {
  __u64 id = bpf_skb_cgroup_id(skb);
  if (id == 0) return 1;
  struct berth_cgroup_stats *s = stats_for(id);
  if (s) {
    __sync_fetch_and_add(&s->net_rx_bytes, skb->len);
    __sync_fetch_and_add(&s->net_rx_packets, 1);
  }
  return 1;
}

SEC("cgroup_skb/egress")
int berth_cgroup_skb_egress(struct __sk_buff *skb) {
  __u64 id = bpf_skb_cgroup_id(skb);
  if (id == 0) return 1;
  struct berth_cgroup_stats *s = stats_for(id);
  if (s) {
    __sync_fetch_and_add(&s->net_tx_bytes, skb->len);
    __sync_fetch_and_add(&s->net_tx_packets, 1);
  }
  return 1;
}

// Drops a removed cgroup's counters: cgroup_stats and the slots hold default-hierarchy (v2)
// ids, io_stats ids of the block controller's hierarchy; hierarchies have their own id
// spaces. The slot is freed (a cgroup going offline gets no new one).
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(berth_cgroup_rmdir, struct cgroup *cgrp, const char *path) {
  int hierarchy = BPF_CORE_READ(cgrp, root, hierarchy_id);
  __u64 id = BPF_CORE_READ(cgrp, kn, id);
  if (hierarchy == 0) {
    bpf_map_delete_elem(&cgroup_stats, &id);
    // Out of every CPU's cache, tracked or untracked entry.
    __u64 addr = (__u64)cgrp;
    bpf_loop(nr_cpus, forget_cached_cgroup, &addr, 0);
    struct cgroup_slot *cs = bpf_cgrp_storage_get(&cgroup_slots, cgrp, 0, 0);
    if (cs) {
      __u32 i = cs->index & (BERTH_MAX_SLOTS - 1);
      bpf_cgrp_storage_delete(&cgroup_slots, cgrp);
      __sync_val_compare_and_swap(&slot_cgroup[i], id, 0);
    }
  }
  if (hierarchy == (int)io_hierarchy_id) bpf_map_delete_elem(&io_stats, &id);
  return 0;
}
