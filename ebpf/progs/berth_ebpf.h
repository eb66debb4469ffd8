// Types shared by the BPF programs in this folder (compiled with clang -target bpf against
// vmlinux.h) and their C++ loader (ebpf/collectors.cc). Plain C, fixed-size fields only.
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

// Number of log2 latency buckets. Bucket 0 counts values below 1 us; bucket i (i >= 1)
// counts values in [2^(i-1), 2^i) us; the last bucket also takes everything larger.
#define BERTH_HIST_BUCKETS 27

// berth_log2_bucket() of the values below 2^15 ns, one entry per 512 ns cell: the bucket of the
// cell's first value. Bucket boundaries (1000 ns * 2^i) are more than 512 ns apart, so a cell
// holds at most one: one compare finds which side of it a value is on.
static const __u8 berth_small_bucket[64] = {
    0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6,
};

// Bucket of a duration of `ns` nanoseconds in a BERTH_HIST_BUCKETS histogram: the bit length
// of floor(ns / 1000), capped at the last bucket. Runs on every context switch of a pod, so
// no division (a 64-bit div costs ~10 ns there) and, for the common sub-32 us latencies, a
// table look-up and one compare. Above that, with L the bit length of ns,
// 2^9 < 1000 < 2^10 puts the bucket at L - 10 or L - 9, and one compare against
// 1000 * 2^(L - 10) picks it: six halving steps, no loop. Shared with the unit tests (plain C).
static inline __u32 berth_log2_bucket(__u64 ns) {
  __u32 bucket;
  if (ns < (1ULL << 15)) {
    bucket = berth_small_bucket[ns >> 9];
    if (ns >= (1000ULL << bucket)) bucket++;
  } else {
    __u64 v = ns;
    __u32 len = 1;
    if (v >> 32) {
      v >>= 32;
      len += 32;
    }
    if (v >> 16) {
      v >>= 16;
      len += 16;
    }
    if (v >> 8) {
      v >>= 8;
      len += 8;
    }
    if (v >> 4) {
      v >>= 4;
      len += 4;
    }
    if (v >> 2) {
      v >>= 2;
      len += 2;
    }
    if (v >> 1) {
      len += 1;
    }
    // len >= 16 here.
    bucket = ns >= (1000ULL << (len - 10)) ? len - 9 : len - 10;
    if (bucket > BERTH_HIST_BUCKETS - 1) bucket = BERTH_HIST_BUCKETS - 1;
  }
#ifdef __VMLINUX_H__
  // Opaque to the compiler, so that the callers' bound checks stay in the code (the
  // verifier does not follow the arithmetic above).
  asm volatile("" : "+r"(bucket));
#endif
  return bucket;
}

// Upper bound on the number of cgroups (and of in-flight tasks/requests) a map tracks.
#define BERTH_MAX_CGROUPS 10240
#define BERTH_MAX_INFLIGHT 10240

// Number of slots of the per-CPU array that holds the scheduler and exec counters of tracked
// cgroups (a power of two): at most this many tracked cgroups are counted at once.
#define BERTH_MAX_SLOTS 2048

#define BERTH_COMM_LEN 16

// Upper bound on the number of tracked cgroup subtrees (Collectors::Track()).
#define BERTH_MAX_TRACKED 8

// A tracked cgroup subtree: the kernfs id of its top cgroup and that cgroup's level (0: the
// hierarchy root).
struct berth_tracked_root {
  __u64 id;
  __u32 level;
  __u32 pad;
};

// Per-cgroup counters, the value of two per-CPU maps: `slot_stats` (an array: on-CPU time,
// run-queue latency and exec count, at the slot the cgroup's `cgroup_slots` storage names;
// `slot_cgroup[slot]` is the cgroup's id) and `cgroup_stats` (a hash keyed by the cgroup v2
// id, the kernfs id of the default-hierarchy cgroup: TCP and cgroup_skb counters). Monotonic
// counters; each field is written by one program only, on the CPU's own copy (userspace sums
// the copies and the two maps).
struct berth_cgroup_stats {
  __u64 cpu_ns;       // on-CPU time of the cgroup's tasks
  __u64 runq_sum_ns;  // sum of run-queue latency
  // log2 us histogram of run-queue latency (wakeup/preemption -> switch-in samples; their
  // number is the sum of the buckets: no count on the switch path)
  __u64 runq_buckets[BERTH_HIST_BUCKETS];
  __u64 exec_count;           // successful execve()s (sched_process_exec)
  __u64 tcp_retransmits;      // tcp:tcp_retransmit_skb on the cgroup's sockets
  __u64 tcp_resets_sent;      // tcp:tcp_send_reset
  __u64 tcp_resets_received;  // tcp:tcp_receive_reset
  __u64 net_rx_bytes;         // cgroup_skb/ingress, where attached
  __u64 net_rx_packets;
  __u64 net_tx_bytes;  // cgroup_skb/egress, where attached
  __u64 net_tx_packets;
};

// Per-cgroup block I/O, value of the per-CPU `io_stats` map keyed by the kernfs id of the
// cgroup that owns the request's bios for the block cgroup controller
// (rq->bio->bi_blkg->blkcg): a cgroup of the io/blkio hierarchy, which is the v2 hierarchy on
// a v2 host and the v1 blkio hierarchy on a v1/hybrid host.
struct berth_io_stats {
  __u64 read_bytes;                   // bytes completed for reads
  __u64 write_bytes;                  // ... and for writes (and other non-read ops)
  __u64 count;                        // completed requests with a latency sample
  __u64 sum_ns;                       // sum of issue -> complete latency
  __u64 buckets[BERTH_HIST_BUCKETS];  // log2 us histogram of block I/O latency
};

// One OOM kill, sent through the `oom_events` ring buffer by oom.bpf.c.
struct berth_oom_event {
  __u64 cgroup_id;  // cgroup v2 id of the victim
  __u64 ktime_ns;   // bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the victim was marked
  __u32 pid;        // victim thread-group id
  __u32 uid;        // victim uid
  char comm[BERTH_COMM_LEN];
};
