// OciRuntime against real conmon 2.1.6 + runc 1.1.5 (root). Containers join the network
// namespace of a berth-pause (cri/pause), run in cgroup /berth-oci-test/<id>, and everything
// is torn down in TearDown, also when a test fails.
#include "cri/oci/oci_runtime.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "cri/pause/pause.h"
#include "gtest/gtest.h"
#include "tests/integration/oci_test_spec.h"

#include <signal.h>

namespace berth::cri::oci {
namespace {

constexpr char kRoot[] = "/run/berth-oci-test";
constexpr char kCgroupParent[] = "berth-oci-test";

// Polls `cond` every 10 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& cond,
             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// Alive and not a zombie (this machine's PID 1 may not reap orphaned conmons).
bool Alive(pid_t pid) {
  auto stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  auto paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

ino_t Inode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

class OciRuntimeIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root";
    RemoveAll(kRoot).IgnoreError();
    ASSERT_TRUE(testing::MakeBusyboxRootfs(Path("rootfs")).ok());
    OciRuntimeOptions o;
    o.runtime_path = "runc";
    o.runtime_root = Path("runc");
    o.conmon_path = "conmon";
    o.conmon_state_dir = Path("conmon");
    rt_ = std::make_unique<OciRuntime>(o);
    ASSERT_TRUE(rt_->Ready().ok()) << rt_->Ready();

    pause::PauseOptions po;
    po.binary = BERTH_PAUSE_BINARY;
    auto p = pause::StartPause(po);
    ASSERT_TRUE(p.ok()) << p.status();
    pause_pid_ = p->pid;
    ASSERT_TRUE(pause::BindNamespace(pause_pid_, "net", Path("netns")).ok());
  }

  void TearDown() override {
    for (const std::string& id : ids_) {
      pid_t conmon =
          std::atoi(ReadFile(Path("conmon/" + id + "/conmon.pid")).value_or("0").c_str());
      rt_->Kill(id, SIGKILL, /*all=*/true).IgnoreError();
      rt_->Delete(id).IgnoreError();
      if (conmon > 0 && Alive(conmon)) kill(conmon, SIGKILL);
      RemoveCgroup(absl::StrCat(kCgroupParent, "/", id));
    }
    RemoveCgroup(kCgroupParent);
    if (pause_pid_ > 0) pause::StopPause(pause_pid_).IgnoreError();
    pause::UnbindNamespace(Path("netns")).IgnoreError();
    RemoveAll(kRoot).IgnoreError();
  }

  // rmdir the cgroup in every v1 hierarchy and in the cgroup2 `unified` mount.
  static void RemoveCgroup(const std::string& rel) {
    auto hierarchies = ListDir("/sys/fs/cgroup");
    if (!hierarchies.ok()) return;
    for (const auto& h : *hierarchies) {
      std::string dir = absl::StrCat("/sys/fs/cgroup/", h, "/", rel);
      WaitFor([&] { return rmdir(dir.c_str()) == 0 || errno == ENOENT; }, std::chrono::seconds(2));
    }
  }

  static std::string Path(const std::string& rel) { return absl::StrCat(kRoot, "/", rel); }

  // Writes a bundle for `id` running `args` and creates the container.
  // Without `with_log` conmon gets no log file (log driver "none").
  absl::StatusOr<CreateResult> CreateContainer(const std::string& id, std::vector<std::string> args,
                                               bool with_log = true) {
    ids_.insert(id);
    testing::TestSpecOptions so;
    so.args = std::move(args);
    so.rootfs = Path("rootfs");
    so.netns_path = Path("netns");
    so.cgroups_path = absl::StrCat("/", kCgroupParent, "/", id);
    auto s = testing::WriteBundle(Path("bundles/" + id), testing::MinimalSpec(so));
    if (!s.ok()) return s;
    CreateOptions c;
    c.id = id;
    c.bundle = Path("bundles/" + id);
    if (with_log) c.log_path = Path("logs/" + id + ".log");
    c.exit_dir = Path("exits");
    return rt_->Create(c);
  }

  absl::StatusOr<int> WaitExit(const std::string& id) {
    WaitFor([&] { return OciRuntime::ReadExitFile(Path("exits"), id).ok(); });
    return OciRuntime::ReadExitFile(Path("exits"), id);
  }

  std::unique_ptr<OciRuntime> rt_;
  pid_t pause_pid_ = 0;
  std::set<std::string> ids_;
};

TEST_F(OciRuntimeIntegrationTest, CreateStartKillDelete) {
  auto c = CreateContainer("sleeper", {"sh", "-c", "trap 'exit 42' TERM; sleep 300 & wait"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GT(c->pid, 0);
  EXPECT_TRUE(Alive(c->conmon_pid));

  auto st = rt_->State("sleeper");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, "created");
  EXPECT_EQ(st->pid, c->pid);

  // Joined the pause's network namespace and the requested cgroup.
  EXPECT_EQ(Inode(absl::StrCat("/proc/", c->pid, "/ns/net")), Inode(Path("netns")));
  auto cg = ReadFile(absl::StrCat("/proc/", c->pid, "/cgroup"));
  ASSERT_TRUE(cg.ok());
  EXPECT_NE(cg->find("/berth-oci-test/sleeper"), std::string::npos) << *cg;

  ASSERT_TRUE(rt_->Start("sleeper").ok());
  st = rt_->State("sleeper");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, "running");
  EXPECT_EQ(OciRuntime::ReadExitFile(Path("exits"), "sleeper").status().code(),
            absl::StatusCode::kNotFound);

  // The shell's trap must be installed before SIGTERM matters: wait until `sleep` runs.
  ASSERT_TRUE(WaitFor([&] {
    auto r = rt_->ExecSync("sleeper", {"ps"}, std::chrono::seconds(5));
    return r.ok() && r->stdout_data.find("sleep 300") != std::string::npos;
  }));
  ASSERT_TRUE(rt_->Kill("sleeper", SIGTERM).ok());
  auto code = WaitExit("sleeper");
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 42);
  EXPECT_TRUE(WaitFor([&] { return !Alive(c->conmon_pid); })) << "conmon exits with its container";
  st = rt_->State("sleeper");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, "stopped");
  EXPECT_TRUE(rt_->Kill("sleeper", SIGKILL).ok()) << "killing a stopped container is OK";

  ASSERT_TRUE(rt_->Delete("sleeper").ok());
  EXPECT_EQ(rt_->State("sleeper").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(PathExists(Path("runc/sleeper")));
  EXPECT_FALSE(PathExists(Path("conmon/sleeper")));
  EXPECT_TRUE(PathExists(Path("exits/sleeper"))) << "the exit file is the caller's";
  EXPECT_TRUE(rt_->Delete("sleeper").ok()) << "deleting an absent container is OK";
}

TEST_F(OciRuntimeIntegrationTest, SigkillGives137WithoutLogFile) {
  auto c = CreateContainer("plain-sleep", {"sleep", "300"}, /*with_log=*/false);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(rt_->Start("plain-sleep").ok());
  ASSERT_TRUE(rt_->Kill("plain-sleep", SIGKILL).ok());
  auto code = WaitExit("plain-sleep");
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 137);
  EXPECT_FALSE(PathExists(Path("logs")));
}

TEST_F(OciRuntimeIntegrationTest, LogsInCriFormatAndExitCode) {
  auto c = CreateContainer("echo", {"sh", "-c", "echo hello; echo oops >&2; exit 7"});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(rt_->Start("echo").ok());
  auto code = WaitExit("echo");
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 7);
  // conmon flushes the log before it writes the exit file.
  auto log = ReadFile(Path("logs/echo.log"));
  ASSERT_TRUE(log.ok()) << log.status();
  static const std::regex kStdout(
      R"((^|\n)\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d stdout F hello\n)");
  static const std::regex kStderr(R"((^|\n)\S+ stderr F oops\n)");
  EXPECT_TRUE(std::regex_search(*log, kStdout)) << *log;
  EXPECT_TRUE(std::regex_search(*log, kStderr)) << *log;
}

TEST_F(OciRuntimeIntegrationTest, ExecSyncOutputExitCodeAndTimeout) {
  auto c = CreateContainer("exec", {"sleep", "300"});
  ASSERT_TRUE(c.ok()) << c.status();
  auto early = rt_->ExecSync("exec", {"true"}, std::chrono::seconds(5));
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition) << "not started yet";
  ASSERT_TRUE(rt_->Start("exec").ok());

  auto r = rt_->ExecSync("exec", {"sh", "-c", "echo out; echo err >&2; exit 3"},
                         std::chrono::seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout_data, "out\n");
  EXPECT_EQ(r->stderr_data, "err\n");
  EXPECT_FALSE(r->timed_out);

  auto start = std::chrono::steady_clock::now();
  r = rt_->ExecSync("exec", {"sleep", "31"}, std::chrono::milliseconds(500));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // The timed-out process was killed inside the container too.
  EXPECT_TRUE(WaitFor([&] {
    auto ps = rt_->ExecSync("exec", {"ps"}, std::chrono::seconds(5));
    return ps.ok() && ps->stdout_data.find("sleep 31") == std::string::npos;
  }));

  // UpdateResources reaches the container's cgroup.
  ASSERT_TRUE(rt_->UpdateResources("exec", R"({"pids":{"limit":50}})").ok());
  auto max = ReadFile("/sys/fs/cgroup/pids/berth-oci-test/exec/pids.max");
  ASSERT_TRUE(max.ok()) << max.status();
  EXPECT_EQ(*max, "50\n");

  EXPECT_EQ(rt_->ExecSync("nope", {"true"}, std::chrono::seconds(5)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(OciRuntimeIntegrationTest, BrokenConfigFailsWithRuntimeMessageAndNoConmon) {
  auto c = CreateContainer("broken", {"/no-such-binary"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/no-such-binary"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("no such file or directory"), std::string::npos)
      << c.status();
  pid_t conmon = std::atoi(ReadFile(Path("conmon/broken/conmon.pid")).value_or("0").c_str());
  EXPECT_TRUE(WaitFor([&] { return conmon <= 0 || !Alive(conmon); }))
      << "conmon " << conmon << " left behind";
  EXPECT_EQ(rt_->State("broken").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(PathExists(Path("exits/broken")));
}

}  // namespace
}  // namespace berth::cri::oci
