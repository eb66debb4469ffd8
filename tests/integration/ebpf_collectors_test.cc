// Integration test of ebpf/collectors.h (root): real BPF programs attached to the running
// kernel, tracking one cgroup subtree this test creates (/berth-ebpf-test-<pid> under
// /sys/fs/cgroup/unified and the v1 blkio hierarchy), observed through cgroups below it (and
// the v1 memory hierarchy for the OOM kill). Everything created is removed, also on failure.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/process.h"
#include "ebpf/collectors.h"
#include "gtest/gtest.h"

#include <signal.h>
#include <sys/wait.h>

namespace berth::ebpf {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr char kUnified[] = "/sys/fs/cgroup/unified";
constexpr char kMemoryV1[] = "/sys/fs/cgroup/memory";
constexpr char kBlkioV1[] = "/sys/fs/cgroup/blkio";

bool WriteString(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  close(fd);
  return ok;
}

// Polls `cond` every 20 ms until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& cond, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// A cgroup directory that is removed (once its tasks are gone) when this goes out of scope.
class CgroupDir {
 public:
  explicit CgroupDir(std::string path) : path_(std::move(path)) {
    created_ = mkdir(path_.c_str(), 0755) == 0;
    err_ = created_ ? 0 : errno;
  }
  ~CgroupDir() {
    if (created_) Remove();
  }
  bool Remove() {
    if (!created_) return true;
    // rmdir fails with EBUSY until the killed tasks have left the cgroup.
    bool ok = WaitFor([&] { return rmdir(path_.c_str()) == 0 || errno == ENOENT; }, seconds(10));
    created_ = !ok;
    return ok;
  }
  bool created() const { return created_; }
  std::string error() const { return strerror(err_); }
  const std::string& path() const { return path_; }
  bool AddProcess(pid_t pid) const {
    return WriteString(path_ + "/cgroup.procs", std::to_string(pid));
  }

 private:
  std::string path_;
  bool created_ = false;
  int err_ = 0;
};

// A child started with a pipe on stdin, killed and reaped when this goes out of scope.
class Child {
 public:
  // Starts `script` under busybox sh; the script should `read` a line before doing work, so
  // that the test can move the child into its cgroups first.
  bool Start(const std::string& script) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    SpawnOptions opts;
    opts.stdin_fd = fds[0];
    auto pid = Spawn({"/bin/busybox", "sh", "-c", script}, opts);
    close(fds[0]);
    stdin_ = fds[1];
    if (!pid.ok()) return false;
    pid_ = *pid;
    return true;
  }
  bool Go() { return write(stdin_, "go\n", 3) == 3; }
  // Waits up to `timeout` for the child to exit; returns its wait status or -1.
  int Wait(milliseconds timeout) {
    int status = -1;
    bool done = WaitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
    if (!done) return -1;
    pid_ = -1;
    return status;
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  ~Child() {
    Kill();
    if (stdin_ >= 0) close(stdin_);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
};

class EbpfCollectorsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Options o;
    o.tracked_cgroups = {Tracked()};
    auto c = Collectors::Load(o);
    if (!c.ok()) {
      load_error_ = new std::string(c.status().ToString());
      return;
    }
    collectors_ = c->release();
  }
  static void TearDownTestSuite() {
    delete collectors_;
    collectors_ = nullptr;
    // Created by Load() (and the blkio one only on a hybrid host).
    rmdir((std::string(kUnified) + Tracked()).c_str());
    rmdir((std::string(kBlkioV1) + Tracked()).c_str());
    delete load_error_;
    load_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root";
    ASSERT_EQ(load_error_, nullptr) << *load_error_;
  }

  // The tracked subtree, relative to the hierarchy roots.
  static std::string Tracked() { return "/berth-ebpf-test-" + std::to_string(getpid()); }
  static std::string Name(const std::string& what) {
    return "berth-ebpf-test-" + std::to_string(getpid()) + "-" + what;
  }
  // A cgroup below the tracked subtree in the cgroup2 hierarchy.
  static std::string TrackedDir(const std::string& what) {
    return std::string(kUnified) + Tracked() + "/" + what;
  }
  static CgroupStats StatsOf(uint64_t id) {
    auto snap = collectors_->Snapshot();
    auto it = snap.cgroups.find(id);
    return it == snap.cgroups.end() ? CgroupStats{} : it->second;
  }
  static bool Present(uint64_t id) { return collectors_->Snapshot().cgroups.count(id) > 0; }

  static Collectors* collectors_;
  static std::string* load_error_;
};
Collectors* EbpfCollectorsTest::collectors_ = nullptr;
std::string* EbpfCollectorsTest::load_error_ = nullptr;

TEST_F(EbpfCollectorsTest, CpuRunqueueAndExecOfACgroup) {
  CgroupDir cg(TrackedDir("sched"));
  ASSERT_TRUE(cg.created()) << cg.path() << ": " << cg.error();
  uint64_t id = CgroupIdOf(cg.path());
  ASSERT_NE(id, 0u);
  {
    Child child;
    ASSERT_TRUE(child.Start("read x; for i in 1 2 3 4 5; do /bin/true; done; while :; do :; done"));
    ASSERT_TRUE(cg.AddProcess(child.pid())) << "move " << child.pid() << " into " << cg.path();
    EXPECT_EQ(StatsOf(id).exec_count, 0u);
    ASSERT_TRUE(child.Go());

    ASSERT_TRUE(WaitFor([&] { return StatsOf(id).exec_count >= 5; }, seconds(10)))
        << "exec_count " << StatsOf(id).exec_count;
    ASSERT_TRUE(WaitFor([&] { return StatsOf(id).cpu_ns > 0; }, seconds(10)));
    uint64_t cpu1 = StatsOf(id).cpu_ns;
    // The busy loop keeps running: its on-CPU time must grow by at least 100 ms.
    EXPECT_TRUE(WaitFor([&] { return StatsOf(id).cpu_ns >= cpu1 + 100'000'000; }, seconds(10)))
        << "cpu_ns " << cpu1 << " -> " << StatsOf(id).cpu_ns;
    // The /bin/true children were woken (sched_wakeup_new) and the loop gets preempted.
    ASSERT_TRUE(WaitFor([&] { return StatsOf(id).runq_latency.count > 0; }, seconds(10)));
    CgroupStats s = StatsOf(id);
    uint64_t in_buckets = 0;
    for (uint64_t b : s.runq_latency.buckets) in_buckets += b;
    EXPECT_EQ(in_buckets, s.runq_latency.count);
    EXPECT_GT(s.cpu_ns, 0u);
    child.Kill();
  }
  // cgroup_rmdir drops the entry.
  ASSERT_TRUE(cg.Remove());
  EXPECT_TRUE(WaitFor([&] { return !Present(id); }, seconds(5)))
      << "cgroup id " << id << " still present";
}

// The counters are the kernel's own figures, not estimates: two busy loops pinned to one
// CPU (each waits for the other about half of the time) show the on-CPU time the cgroup's
// cpu.stat reports and the run-queue wait the tasks' schedstat run_delay reports.
uint64_t FieldOf(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}
uint64_t RunDelayNs(pid_t pid) {  // /proc/<pid>/schedstat: on-CPU ns, run-queue wait ns, slices
  std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
  uint64_t on_cpu = 0, wait = 0;
  in >> on_cpu >> wait;
  return wait;
}
bool Stopped(pid_t pid) {  // /proc/<pid>/stat state 'T'
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  size_t p = line.rfind(')');
  return p != std::string::npos && p + 2 < line.size() && line[p + 2] == 'T';
}

TEST_F(EbpfCollectorsTest, CpuTimeAndRunqueueLatencyMatchTheKernelsAccounting) {
  CgroupDir cg(TrackedDir("acct"));
  ASSERT_TRUE(cg.created()) << cg.path() << ": " << cg.error();
  uint64_t id = CgroupIdOf(cg.path());
  ASSERT_NE(id, 0u);
  Child a, b;
  ASSERT_TRUE(a.Start("read x; while :; do :; done"));
  ASSERT_TRUE(b.Start("read x; while :; do :; done"));
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  for (Child* c : {&a, &b}) {
    ASSERT_EQ(sched_setaffinity(c->pid(), sizeof(one), &one), 0) << strerror(errno);
    ASSERT_TRUE(cg.AddProcess(c->pid()));
  }
  uint64_t usage0 = FieldOf(cg.path() + "/cpu.stat", "usage_usec");
  uint64_t delay0 = RunDelayNs(a.pid()) + RunDelayNs(b.pid());
  ASSERT_TRUE(a.Go());
  ASSERT_TRUE(b.Go());
  ASSERT_TRUE(WaitFor([&] { return StatsOf(id).cpu_ns >= 600'000'000; }, seconds(20)))
      << "cpu_ns " << StatsOf(id).cpu_ns;
  // Stopped tasks leave the CPU: every slice has ended, the figures no longer move.
  kill(a.pid(), SIGSTOP);
  kill(b.pid(), SIGSTOP);
  ASSERT_TRUE(WaitFor([&] { return Stopped(a.pid()) && Stopped(b.pid()); }, seconds(10)));
  double kernel_cpu_ns = (FieldOf(cg.path() + "/cpu.stat", "usage_usec") - usage0) * 1000.0;
  double kernel_wait_ns = static_cast<double>(RunDelayNs(a.pid()) + RunDelayNs(b.pid()) - delay0);
  CgroupStats s = StatsOf(id);
  EXPECT_NEAR(static_cast<double>(s.cpu_ns), kernel_cpu_ns, 0.03 * kernel_cpu_ns + 2e6)
      << "eBPF on-CPU time vs cpu.stat usage_usec";
  // Contended: each loop waits while the other runs.
  EXPECT_GT(kernel_wait_ns, 0.3 * kernel_cpu_ns);
  // (A wait the kernel ends by a dequeue instead of a switch-in has no sample: 5% + 5 ms.)
  EXPECT_NEAR(static_cast<double>(s.runq_latency.sum_ns), kernel_wait_ns,
              0.05 * kernel_wait_ns + 5e6)
      << "eBPF run-queue latency vs schedstat run_delay; samples " << s.runq_latency.count
      << ", on-CPU " << s.cpu_ns << " ns";
  uint64_t in_buckets = 0;
  for (uint64_t n : s.runq_latency.buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, s.runq_latency.count);
  EXPECT_GT(s.runq_latency.count, 10u);
  a.Kill();
  b.Kill();
}

// Block I/O is attributed by the bios' blkcg: the dd's blkio cgroup on this hybrid host
// (cgroup2 otherwise), below the tracked subtree, reported under the dd's cgroup2 id. The
// counts are exact: O_DIRECT bytes written and read, no more, no less.
TEST_F(EbpfCollectorsTest, BlockIoOfTheSubmittingCgroup) {
  CgroupDir cg(TrackedDir("io"));
  ASSERT_TRUE(cg.created()) << cg.path() << ": " << cg.error();
  uint64_t id = CgroupIdOf(cg.path());
  struct stat blkio_st;
  bool hybrid = stat(kBlkioV1, &blkio_st) == 0;
  std::unique_ptr<CgroupDir> blk;
  if (hybrid) {
    blk = std::make_unique<CgroupDir>(std::string(kBlkioV1) + Tracked() + "/io");
    ASSERT_TRUE(blk->created()) << blk->path() << ": " << blk->error();
  }
  // O_DIRECT I/O to a file on the root filesystem (a block device), bypassing the page
  // cache so that the requests are submitted by dd itself.
  std::string file = "/var/tmp/" + Name("io") + ".data";
  struct Unlink {
    std::string f;
    ~Unlink() { unlink(f.c_str()); }
  } unlink_file{file};
  // The file is created and sized outside the cgroup (its metadata and journal writes are
  // not the cgroup's); in the cgroup only O_DIRECT data overwrites of 16 MiB, then reads.
  ASSERT_EQ(
      system(
          ("/bin/dd if=/dev/zero of=" + file + " bs=1M count=16 conv=fsync status=none").c_str()),
      0);
  Child child;
  ASSERT_TRUE(child.Start("read x; /bin/dd if=/dev/zero of=" + file +
                          " bs=1M count=16 oflag=direct conv=notrunc status=none && /bin/dd if=" +
                          file + " of=/dev/null bs=1M iflag=direct status=none"));
  ASSERT_TRUE(cg.AddProcess(child.pid()));
  if (blk) {
    ASSERT_TRUE(blk->AddProcess(child.pid()));
  }
  ASSERT_TRUE(child.Go());
  int status = child.Wait(seconds(60));
  ASSERT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "dd status " << status;
  constexpr uint64_t kBytes = 16u << 20;
  CgroupStats s;
  EXPECT_TRUE(WaitFor(
      [&] {
        s = StatsOf(id);
        return s.io_write_bytes >= kBytes && s.io_read_bytes >= kBytes;
      },
      seconds(5)))
      << "read " << s.io_read_bytes << " write " << s.io_write_bytes;
  EXPECT_EQ(s.io_write_bytes, kBytes);
  // Reads: the data, plus at most a few pages of binaries if they were not cached.
  EXPECT_LE(s.io_read_bytes, kBytes + (1u << 20));
  EXPECT_GT(s.io_latency.count, 0u);
  EXPECT_GT(s.io_latency.sum_ns, 0u);
}

// The filter: a cgroup outside the tracked subtrees gets no entry, while the same work in a
// tracked cgroup is counted; once Track()ed, it is counted too.
TEST_F(EbpfCollectorsTest, CgroupsOutsideTheTrackedSubtreeAreNotCounted) {
  CgroupDir tracked(TrackedDir("filter"));
  ASSERT_TRUE(tracked.created()) << tracked.path() << ": " << tracked.error();
  CgroupDir untracked(std::string(kUnified) + "/" + Name("untracked"));
  ASSERT_TRUE(untracked.created()) << untracked.path() << ": " << untracked.error();
  uint64_t tracked_id = CgroupIdOf(tracked.path());
  uint64_t untracked_id = CgroupIdOf(untracked.path());
  const std::string script = "read x; for i in 1 2 3 4 5; do /bin/true; done";
  Child in, out;
  ASSERT_TRUE(in.Start(script));
  ASSERT_TRUE(out.Start(script));
  ASSERT_TRUE(tracked.AddProcess(in.pid()));
  ASSERT_TRUE(untracked.AddProcess(out.pid()));
  ASSERT_TRUE(out.Go());
  ASSERT_NE(out.Wait(seconds(10)), -1);
  ASSERT_TRUE(in.Go());
  ASSERT_NE(in.Wait(seconds(10)), -1);
  ASSERT_TRUE(WaitFor([&] { return StatsOf(tracked_id).exec_count >= 5; }, seconds(5)))
      << "tracked exec_count " << StatsOf(tracked_id).exec_count;
  EXPECT_FALSE(Present(untracked_id)) << "untracked cgroup " << untracked.path() << " was counted";

  // Tracked from now on (as berth does for a new sandbox's cgroup parent).
  struct RemoveBlkio {
    std::string d;
    ~RemoveBlkio() { rmdir(d.c_str()); }
  } remove_blkio{std::string(kBlkioV1) + "/" + Name("untracked")};
  ASSERT_TRUE(collectors_->Track("/" + Name("untracked")).ok());
  Child again;
  ASSERT_TRUE(again.Start(script));
  ASSERT_TRUE(untracked.AddProcess(again.pid()));
  ASSERT_TRUE(again.Go());
  ASSERT_NE(again.Wait(seconds(10)), -1);
  // Both the exec counter and the context-switch path (which caches, per CPU, the last
  // untracked cgroup it saw: that cache must not outlive Track()).
  EXPECT_TRUE(WaitFor(
      [&] {
        CgroupStats st = StatsOf(untracked_id);
        return st.exec_count >= 5 && st.cpu_ns > 0 && st.runq_latency.count > 0;
      },
      seconds(5)))
      << "newly tracked exec_count " << StatsOf(untracked_id).exec_count << ", cpu_ns "
      << StatsOf(untracked_id).cpu_ns;
}

TEST_F(EbpfCollectorsTest, NetworkBytesAndTcpResetsInANetns) {
  CgroupDir cg(TrackedDir("net"));
  ASSERT_TRUE(cg.created()) << cg.path() << ": " << cg.error();
  uint64_t id = CgroupIdOf(cg.path());
  ASSERT_TRUE(collectors_->AttachNetwork(cg.path()).ok());
  struct Detach {
    std::string p;
    ~Detach() { collectors_->DetachNetwork(p); }
  } detach{cg.path()};
  // A private network namespace (loopback only): a TCP transfer to a listener, then a
  // connect to a closed port, which the kernel answers with RST (tcp_receive_reset).
  Child child;
  ASSERT_TRUE(child.Start(
      "read x; exec /usr/bin/unshare -n /bin/busybox sh -c '"
      "/bin/busybox ip link set lo up; /bin/busybox nc -l -p 5000 >/dev/null & "
      "i=0; while [ $i -lt 50 ]; do echo hello-berth | /bin/busybox nc 127.0.0.1 5000 && break; "
      "i=$((i+1)); /bin/busybox usleep 20000; done; "
      "/bin/busybox nc 127.0.0.1 5001 </dev/null; wait'"));
  ASSERT_TRUE(cg.AddProcess(child.pid()));
  ASSERT_TRUE(child.Go());
  ASSERT_NE(child.Wait(seconds(30)), -1);
  CgroupStats s;
  EXPECT_TRUE(WaitFor(
      [&] {
        s = StatsOf(id);
        return s.net_tx_packets > 0 && s.net_rx_packets > 0 && s.tcp_resets_received > 0;
      },
      seconds(5)))
      << "tx " << s.net_tx_packets << " rx " << s.net_rx_packets << " resets received "
      << s.tcp_resets_received;
  EXPECT_GT(s.net_tx_bytes, 0u);
  EXPECT_GT(s.net_rx_bytes, 0u);
}

TEST_F(EbpfCollectorsTest, PruneDropsIdsThatAreNotAlive) {
  CgroupDir cg(TrackedDir("prune"));
  ASSERT_TRUE(cg.created()) << cg.path() << ": " << cg.error();
  uint64_t id = CgroupIdOf(cg.path());
  Child child;
  ASSERT_TRUE(child.Start("read x; /bin/true"));
  ASSERT_TRUE(cg.AddProcess(child.pid()));
  ASSERT_TRUE(child.Go());
  ASSERT_NE(child.Wait(seconds(10)), -1);
  ASSERT_TRUE(WaitFor([&] { return Present(id); }, seconds(5)));
  size_t dropped = collectors_->Prune([&](uint64_t other) { return other != id; });
  EXPECT_GE(dropped, 1u);
  EXPECT_FALSE(Present(id));
}

TEST_F(EbpfCollectorsTest, OomKillReportsVictimCommand) {
  CgroupDir cg(TrackedDir("oom"));
  ASSERT_TRUE(cg.created()) << cg.path() << ": " << cg.error();
  CgroupDir mem(std::string(kMemoryV1) + "/" + Name("oom"));
  ASSERT_TRUE(mem.created()) << mem.path() << ": " << mem.error();
  ASSERT_TRUE(WriteString(mem.path() + "/memory.limit_in_bytes", "16M"));
  uint64_t id = CgroupIdOf(cg.path());
  ASSERT_NE(id, 0u);

  Child child;
  // dd allocates its 64 MiB block buffer and fills it from /dev/zero: far beyond 16M.
  ASSERT_TRUE(child.Start("read x; exec /bin/dd if=/dev/zero of=/dev/null bs=64M count=1"));
  pid_t pid = child.pid();
  ASSERT_TRUE(cg.AddProcess(pid));
  ASSERT_TRUE(mem.AddProcess(pid));
  ASSERT_TRUE(child.Go());
  int status = child.Wait(seconds(30));
  ASSERT_NE(status, -1) << "dd did not finish";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;

  OomKill found;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const OomKill& k : collectors_->Snapshot().oom_kills) {
          if (k.cgroup_id == id) {
            found = k;
            return true;
          }
        }
        return false;
      },
      seconds(5)))
      << "no OOM event for cgroup id " << id;
  EXPECT_EQ(found.comm, "dd");
  EXPECT_EQ(found.pid, pid);
  auto age = std::chrono::system_clock::now() - found.time;
  EXPECT_LT(age, std::chrono::minutes(1));
  EXPECT_GT(age, -std::chrono::seconds(5));
  EXPECT_EQ(StatsOf(id).oom_kills, 1u);
}

}  // namespace
}  // namespace berth::ebpf
