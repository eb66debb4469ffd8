#include "ebpf/collectors.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "base/cgroup_mounts.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "ebpf/progs/berth_ebpf.h"
#include "ebpf/skeleton.h"

#include "cgroup_stats.skel.h"
#include "oom.skel.h"

namespace berth::ebpf {
namespace {

static_assert(kHistogramBuckets == BERTH_HIST_BUCKETS, "histogram size differs from the BPF side");
static_assert(kMaxTrackedCgroups == BERTH_MAX_TRACKED, "tracked cgroups differ from the BPF side");

constexpr char kDefaultBtf[] = "/sys/kernel/btf/vmlinux";

void AddHistogram(const __u64* buckets, __u64 count, __u64 sum_ns, LatencyHistogram* h) {
  for (int i = 0; i < kHistogramBuckets; ++i) h->buckets[i] += buckets[i];
  h->count += count;
  h->sum_ns += sum_ns;
}

// The same, for a histogram kept without a count (every sample is in exactly one bucket).
void AddHistogram(const __u64* buckets, __u64 sum_ns, LatencyHistogram* h) {
  __u64 count = 0;
  for (int i = 0; i < kHistogramBuckets; ++i) count += buckets[i];
  AddHistogram(buckets, count, sum_ns, h);
}

std::chrono::system_clock::time_point MonotonicToWall(uint64_t ktime_ns) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t now_ns = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  auto age = std::chrono::nanoseconds(now_ns - static_cast<int64_t>(ktime_ns));
  return std::chrono::system_clock::now() -
         std::chrono::duration_cast<std::chrono::system_clock::duration>(age);
}

// Where the hierarchies this loader needs are mounted.
struct Hierarchies {
  std::string v2;             // the cgroup2 mount
  std::string io;             // the mount of the hierarchy with the block controller
  uint32_t io_hierarchy = 0;  // its hierarchy id (0: the cgroup2 one)
};

absl::StatusOr<Hierarchies> FindHierarchies() {
  Hierarchies h;
  const std::vector<CgroupMount> mounts = HostCgroupMounts();
  h.v2 = UnifiedCgroupMount(mounts);
  if (h.v2.empty()) {
    return absl::FailedPreconditionError(
        "load eBPF collectors: no cgroup2 mount in /proc/self/mountinfo");
  }
  absl::StatusOr<std::string> controllers = ReadFile(h.v2 + "/cgroup.controllers");
  if (controllers.ok()) {
    for (absl::string_view c :
         absl::StrSplit(*controllers, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
      if (c == "io") {
        h.io = h.v2;
        return h;
      }
    }
  }
  // v1 blkio: its hierarchy id from /proc/cgroups ("blkio <hierarchy> <num_cgroups> <enabled>").
  ASSIGN_OR_RETURN(std::string table, ReadFile("/proc/cgroups"));
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() >= 2 && f[0] == "blkio" && absl::SimpleAtoi(f[1], &h.io_hierarchy)) {
      h.io = V1CgroupMount(mounts, "blkio");
      if (h.io.empty()) break;  // enabled but not mounted
      return h;
    }
  }
  return absl::FailedPreconditionError(
      "load eBPF collectors: no io controller on cgroup2 and no blkio hierarchy in /proc/cgroups");
}

// Number of components of a cgroup path relative to the hierarchy root ("/a/b" -> 2).
uint32_t CgroupLevel(const std::string& path) {
  uint32_t n = 0;
  for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (!c.empty()) ++n;
  }
  return n;
}

// Path of the cgroup with kernfs id `id` under the mount `mount` ("" if it is gone), through
// a kernfs file handle (FILEID_KERNFS: the 64-bit id).
std::string CgroupPathOfId(int mount_fd, uint64_t id) {
  struct {
    struct file_handle fh;
    uint64_t id;
  } handle;
  handle.fh.handle_bytes = sizeof(uint64_t);
  handle.fh.handle_type = 0xfe;  // FILEID_KERNFS
  memcpy(handle.fh.f_handle, &id, sizeof(id));
  int fd = open_by_handle_at(mount_fd, &handle.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[4096];
  ssize_t n = readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof(buf));
  close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

class CollectorsImpl : public Collectors {
 public:
  explicit CollectorsImpl(const Options& options) : options_(options) {}

  ~CollectorsImpl() override {
    for (auto& [path, links] : net_links_) {
      bpf_link__destroy(links.ingress);
      bpf_link__destroy(links.egress);
    }
    stop_.store(true);
    if (poller_.joinable()) poller_.join();
    if (ring_) ring_buffer__free(ring_);
    if (io_mount_fd_ >= 0) close(io_mount_fd_);
  }

  absl::Status Init() {
    const std::string& btf = options_.btf_path;
    if (!btf.empty() && access(btf.c_str(), R_OK) != 0) {
      return ErrnoStatus(errno, absl::StrCat("load eBPF collectors: kernel BTF file ", btf));
    }
    if (btf.empty() && access(kDefaultBtf, R_OK) != 0) {
      return ErrnoStatus(errno, absl::StrCat("load eBPF collectors: kernel BTF file ", kDefaultBtf,
                                             " (kernel without CONFIG_DEBUG_INFO_BTF?)"));
    }
    if (options_.sched || options_.exec || options_.io || options_.tcp || options_.net) {
      RETURN_IF_ERROR(LoadCgroupStats());
    }
    if (options_.oom) RETURN_IF_ERROR(LoadOom());
    return absl::OkStatus();
  }

  StatsSnapshot Snapshot() override {
    StatsSnapshot snap;
    {
      absl::MutexLock lock(&map_mu_);
      if (stats_) {
        int fd = bpf_map__fd(stats_->maps.cgroup_stats);
        std::vector<berth_cgroup_stats> v(ncpus_);
        auto add = [&](uint64_t id) {
          CgroupStats& c = snap.cgroups[id];
          c.cgroup_id = id;
          for (const berth_cgroup_stats& p : v) {
            c.cpu_ns += p.cpu_ns;
            AddHistogram(p.runq_buckets, p.runq_sum_ns, &c.runq_latency);
            c.exec_count += p.exec_count;
            c.tcp_retransmits += p.tcp_retransmits;
            c.tcp_resets_sent += p.tcp_resets_sent;
            c.tcp_resets_received += p.tcp_resets_received;
            c.net_rx_bytes += p.net_rx_bytes;
            c.net_rx_packets += p.net_rx_packets;
            c.net_tx_bytes += p.net_tx_bytes;
            c.net_tx_packets += p.net_tx_packets;
          }
        };
        __u64 key = 0, next = 0;
        __u64* prev = nullptr;
        while (bpf_map_get_next_key(fd, prev, &next) == 0) {
          key = next;
          prev = &key;
          if (bpf_map_lookup_elem(fd, &key, v.data()) != 0) continue;  // removed meanwhile
          add(key);
        }
        // The slots in use: slot_cgroup[] (mmapped .bss, written by the programs) names the
        // owner of each slot of slot_stats.
        int slot_fd = bpf_map__fd(stats_->maps.slot_stats);
        for (__u32 i = 0; i < BERTH_MAX_SLOTS; ++i) {
          uint64_t id = __atomic_load_n(&stats_->bss->slot_cgroup[i], __ATOMIC_ACQUIRE);
          if (id == 0 || bpf_map_lookup_elem(slot_fd, &i, v.data()) != 0) continue;
          // Freed (and maybe reused) while reading: skip rather than mix two cgroups.
          if (__atomic_load_n(&stats_->bss->slot_cgroup[i], __ATOMIC_ACQUIRE) != id) continue;
          add(id);
        }
        ReadIoStats(&snap);
      }
    }
    absl::MutexLock lock(&oom_mu_);
    for (const auto& [id, n] : oom_counts_) {
      CgroupStats& c = snap.cgroups[id];
      c.cgroup_id = id;
      c.oom_kills = n;
    }
    snap.oom_kills.assign(oom_kills_.begin(), oom_kills_.end());
    return snap;
  }

  size_t Prune(const std::function<bool(uint64_t)>& alive) override {
    size_t dropped = 0;
    {
      absl::MutexLock lock(&map_mu_);
      if (stats_) {
        int fd = bpf_map__fd(stats_->maps.cgroup_stats);
        std::vector<__u64> dead;
        __u64 key = 0, next = 0;
        __u64* prev = nullptr;
        while (bpf_map_get_next_key(fd, prev, &next) == 0) {
          key = next;
          prev = &key;
          if (!alive(key)) dead.push_back(key);
        }
        for (__u64 id : dead) {
          if (bpf_map_delete_elem(fd, &id) == 0) ++dropped;
        }
        // Slots whose cgroup is gone (cgroup_rmdir frees them; this is for a missed one).
        for (__u32 i = 0; i < BERTH_MAX_SLOTS; ++i) {
          uint64_t id = __atomic_load_n(&stats_->bss->slot_cgroup[i], __ATOMIC_ACQUIRE);
          if (id == 0 || alive(id)) continue;
          if (__atomic_compare_exchange_n(&stats_->bss->slot_cgroup[i], &id, uint64_t{0}, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
              std::find(dead.begin(), dead.end(), id) == dead.end()) {
            ++dropped;
          }
        }
        // io_stats: by the v2 id its block-controller cgroup maps to (ids never mapped, whose
        // cgroup is gone, count as dead).
        int io_fd = bpf_map__fd(stats_->maps.io_stats);
        std::vector<__u64> dead_io;
        prev = nullptr;
        while (bpf_map_get_next_key(io_fd, prev, &next) == 0) {
          key = next;
          prev = &key;
          uint64_t v2 = V2IdOfIo(key);
          if (v2 == 0 || !alive(v2)) dead_io.push_back(key);
        }
        for (__u64 id : dead_io) {
          bpf_map_delete_elem(io_fd, &id);
          io_to_v2_.erase(id);
        }
      }
    }
    absl::MutexLock lock(&oom_mu_);
    for (auto it = oom_counts_.begin(); it != oom_counts_.end();) {
      if (alive(it->first)) {
        ++it;
      } else {
        it = oom_counts_.erase(it);
      }
    }
    return dropped;
  }

  absl::Status Track(const std::string& cgroup_path) override {
    if (!stats_) {
      return absl::FailedPreconditionError(
          absl::StrCat("track cgroup ", cgroup_path, ": collectors loaded without cgroup stats"));
    }
    absl::MutexLock lock(&track_mu_);
    for (const std::string& t : tracked_) {
      if (t == cgroup_path) return absl::OkStatus();
    }
    if (tracked_.size() >= kMaxTrackedCgroups) {
      return absl::ResourceExhaustedError(absl::StrCat("track cgroup ", cgroup_path, ": already ",
                                                       kMaxTrackedCgroups, " tracked subtrees"));
    }
    size_t i = tracked_.size();
    uint32_t level = CgroupLevel(cgroup_path);
    for (const std::string* mount : {&hierarchies_.v2, &hierarchies_.io}) {
      std::string dir = *mount + cgroup_path;
      RETURN_IF_ERROR(Annotate(MkdirAll(dir, 0755), absl::StrCat("track cgroup ", cgroup_path)));
      uint64_t id = CgroupIdOf(dir);
      if (id == 0) return absl::NotFoundError(absl::StrCat("track cgroup: stat ", dir));
      berth_tracked_root& root = mount == &hierarchies_.v2 ? stats_->bss->tracked_roots[i]
                                                           : stats_->bss->io_tracked_roots[i];
      root.id = id;
      root.level = level;
    }
    // The programs read tracked_count first: publish the entry before the count.
    __atomic_store_n(&stats_->bss->tracked_count, static_cast<__u32>(i + 1), __ATOMIC_RELEASE);
    tracked_.push_back(cgroup_path);
    LOG(INFO) << "eBPF collectors: tracking cgroup " << cgroup_path;
    return absl::OkStatus();
  }

  absl::Status AttachNetwork(const std::string& path) override {
    absl::MutexLock lock(&net_mu_);
    if (!stats_ || !options_.net) {
      return absl::FailedPreconditionError(absl::StrCat("attach network counters to cgroup ", path,
                                                        ": collectors loaded without net"));
    }
    if (net_links_.count(path)) return absl::OkStatus();
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      return ErrnoStatus(errno, absl::StrCat("attach network counters: open cgroup ", path));
    NetLinks links;
    absl::Status st;
    internal::BeginLibbpfCapture();
    links.ingress = bpf_program__attach_cgroup(stats_->progs.berth_cgroup_skb_ingress, fd);
    int err = links.ingress ? 0 : -errno;
    if (links.ingress) {
      links.egress = bpf_program__attach_cgroup(stats_->progs.berth_cgroup_skb_egress, fd);
      if (!links.egress) err = -errno;
    }
    std::string log = internal::EndLibbpfCapture();
    close(fd);
    if (err) {
      if (links.ingress) bpf_link__destroy(links.ingress);
      return internal::LibbpfError(
          "cgroup_stats", absl::StrCat("attach cgroup_skb (cgroup ", path, ") of"), err, log);
    }
    net_links_[path] = links;
    return absl::OkStatus();
  }

  void DetachNetwork(const std::string& path) override {
    absl::MutexLock lock(&net_mu_);
    auto it = net_links_.find(path);
    if (it == net_links_.end()) return;
    bpf_link__destroy(it->second.ingress);
    bpf_link__destroy(it->second.egress);
    net_links_.erase(it);
  }

 private:
  absl::Status LoadCgroupStats() {
    ASSIGN_OR_RETURN(stats_,
                     BpfSkeleton<cgroup_stats_bpf>::Open("cgroup_stats", options_.btf_path));
    stats_->rodata->count_root_cgroup = options_.count_root_cgroup;
    stats_->rodata->track_all = options_.track_all_cgroups;
    stats_->rodata->nr_cpus = static_cast<__u32>(ncpus_);
    ASSIGN_OR_RETURN(hierarchies_, FindHierarchies());
    io_identity_ = hierarchies_.io == hierarchies_.v2;
    stats_->rodata->io_hierarchy_id = hierarchies_.io_hierarchy;
    io_mount_fd_ = open(hierarchies_.io.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (io_mount_fd_ < 0)
      return ErrnoStatus(errno, absl::StrCat("load eBPF collectors: open ", hierarchies_.io));
    auto& p = stats_->progs;
    bpf_program__set_autoload(p.berth_sched_switch, options_.sched);
    bpf_program__set_autoload(p.berth_sched_process_exec, options_.exec);
    for (bpf_program* prog : {p.berth_block_rq_issue, p.berth_block_rq_complete})
      bpf_program__set_autoload(prog, options_.io);
    for (bpf_program* prog : {p.berth_cgroup_skb_ingress, p.berth_cgroup_skb_egress})
      bpf_program__set_autoload(prog, options_.net);
    for (bpf_program* prog :
         {p.berth_tcp_retransmit_skb, p.berth_tcp_send_reset, p.berth_tcp_receive_reset})
      bpf_program__set_autoload(prog, options_.tcp);
    RETURN_IF_ERROR(Annotate(stats_.Load(), "load eBPF collectors"));
    for (const std::string& cg : options_.tracked_cgroups) {
      RETURN_IF_ERROR(Annotate(Track(cg), "load eBPF collectors"));
    }
    RETURN_IF_ERROR(Annotate(stats_.Attach(), "load eBPF collectors"));
    return absl::OkStatus();
  }

  absl::Status LoadOom() {
    ASSIGN_OR_RETURN(oom_, BpfSkeleton<oom_bpf>::Open("oom", options_.btf_path));
    RETURN_IF_ERROR(Annotate(oom_.Load(), "load eBPF collectors"));
    RETURN_IF_ERROR(Annotate(oom_.Attach(), "load eBPF collectors"));
    ring_ = ring_buffer__new(bpf_map__fd(oom_->maps.oom_events), &CollectorsImpl::OnOomEvent, this,
                             nullptr);
    if (!ring_) return ErrnoStatus(errno, "load eBPF collectors: ring buffer of BPF object oom");
    poller_ = std::thread([this] {
      while (!stop_.load()) {
        int n = ring_buffer__poll(ring_, 200 /* ms */);
        if (n < 0 && n != -EINTR) {
          LOG(ERROR) << "eBPF OOM ring buffer poll failed: "
                     << ErrnoStatus(-n, "ring_buffer__poll");
          return;
        }
      }
    });
    return absl::OkStatus();
  }

  static int OnOomEvent(void* ctx, void* data, size_t size) {
    if (size < sizeof(berth_oom_event)) return 0;
    auto* self = static_cast<CollectorsImpl*>(ctx);
    const auto* e = static_cast<const berth_oom_event*>(data);
    OomKill k;
    k.cgroup_id = e->cgroup_id;
    k.comm.assign(e->comm, strnlen(e->comm, sizeof(e->comm)));
    k.pid = static_cast<int32_t>(e->pid);
    k.uid = e->uid;
    k.time = MonotonicToWall(e->ktime_ns);
    LOG(INFO) << "OOM kill: pid " << k.pid << " (" << k.comm << ") in cgroup id " << k.cgroup_id;
    absl::MutexLock lock(&self->oom_mu_);
    self->oom_counts_[k.cgroup_id]++;
    self->oom_kills_.push_back(std::move(k));
    while (self->oom_kills_.size() > self->options_.max_oom_kills) self->oom_kills_.pop_front();
    return 0;
  }

  // Adds io_stats (keyed by block-controller cgroup id) to the v2-keyed entries of `snap`.
  void ReadIoStats(StatsSnapshot* snap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_mu_) {
    int fd = bpf_map__fd(stats_->maps.io_stats);
    std::vector<berth_io_stats> v(ncpus_);
    __u64 key = 0, next = 0;
    __u64* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      key = next;
      prev = &key;
      if (bpf_map_lookup_elem(fd, &key, v.data()) != 0) continue;
      uint64_t id = V2IdOfIo(key);
      if (id == 0) continue;
      CgroupStats& c = snap->cgroups[id];
      c.cgroup_id = id;
      for (const berth_io_stats& p : v) {
        c.io_read_bytes += p.read_bytes;
        c.io_write_bytes += p.write_bytes;
        AddHistogram(p.buckets, p.count, p.sum_ns, &c.io_latency);
      }
    }
  }

  // The cgroup v2 id of the cgroup with the same path as the block-controller cgroup `io_id`
  // (the same id on a v2 host); 0 when either is gone. Cached.
  uint64_t V2IdOfIo(uint64_t io_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_mu_) {
    if (io_identity_) return io_id;
    auto it = io_to_v2_.find(io_id);
    if (it != io_to_v2_.end()) return it->second;
    std::string path = CgroupPathOfId(io_mount_fd_, io_id);
    if (path.size() < hierarchies_.io.size() ||
        path.compare(0, hierarchies_.io.size(), hierarchies_.io) != 0) {
      return 0;
    }
    uint64_t v2 = CgroupIdOf(hierarchies_.v2 + path.substr(hierarchies_.io.size()));
    if (v2 != 0) io_to_v2_[io_id] = v2;
    return v2;
  }

  struct NetLinks {
    bpf_link* ingress = nullptr;
    bpf_link* egress = nullptr;
  };

  const Options options_;
  const int ncpus_ = std::max(1, libbpf_num_possible_cpus());  // copies in a per-CPU value
  Hierarchies hierarchies_;
  bool io_identity_ = true;  // io_stats ids are v2 ids (the block controller is on cgroup2)
  int io_mount_fd_ = -1;
  absl::Mutex map_mu_;  // serializes iteration/deletion of cgroup_stats and io_stats
  std::unordered_map<uint64_t, uint64_t> io_to_v2_ ABSL_GUARDED_BY(map_mu_);
  BpfSkeleton<cgroup_stats_bpf> stats_;
  BpfSkeleton<oom_bpf> oom_;
  ring_buffer* ring_ = nullptr;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  absl::Mutex oom_mu_;
  std::unordered_map<uint64_t, uint64_t> oom_counts_ ABSL_GUARDED_BY(oom_mu_);
  std::deque<OomKill> oom_kills_ ABSL_GUARDED_BY(oom_mu_);
  absl::Mutex track_mu_;
  std::vector<std::string> tracked_ ABSL_GUARDED_BY(track_mu_);  // entry i of tracked_roots
  absl::Mutex net_mu_;
  std::unordered_map<std::string, NetLinks> net_links_ ABSL_GUARDED_BY(net_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Collectors>> Collectors::Load(const Options& options) {
  auto c = std::make_unique<CollectorsImpl>(options);
  RETURN_IF_ERROR(c->Init());
  return std::unique_ptr<Collectors>(std::move(c));
}

uint64_t CgroupIdOf(const std::string& cgroup_v2_path) {
  struct stat st;
  if (stat(cgroup_v2_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace berth::ebpf
