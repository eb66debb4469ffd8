// berth-pause + cri/pause against the real kernel (root): namespaces, hostname, cgroups,
// PID-namespace init, bind-mounted netns surviving the pause, clean stop.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/process.h"
#include "cri/pause/pause.h"
#include "gtest/gtest.h"

#include <signal.h>

namespace berth::cri::pause {
namespace {

constexpr char kTestRoot[] = "/run/berth-oci-pause-test";
constexpr char kCgroup[] = "/sys/fs/cgroup/pids/berth-oci-pause-test";

ino_t Inode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

class PauseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root";
    ASSERT_TRUE(MkdirAll(kTestRoot).ok());
    ASSERT_TRUE(MkdirAll(kCgroup).ok());
  }
  void TearDown() override {
    for (pid_t pid : pids_) StopPause(pid).IgnoreError();
    UnbindNamespace(NetnsPath()).IgnoreError();
    RemoveAll(kTestRoot).IgnoreError();
    rmdir(kCgroup);
  }
  static std::string NetnsPath() { return absl::StrCat(kTestRoot, "/netns/sb1"); }
  PauseOptions Options() {
    PauseOptions o;
    o.binary = BERTH_PAUSE_BINARY;
    return o;
  }
  std::vector<pid_t> pids_;
};

TEST_F(PauseTest, CreatesNamespacesHostnameAndCgroup) {
  PauseOptions o = Options();
  o.hostname = "berth-sb1";
  o.pid = true;
  o.cgroup_procs_files = {absl::StrCat(kCgroup, "/cgroup.procs")};
  auto p = StartPause(o);
  ASSERT_TRUE(p.ok()) << p.status();
  pids_.push_back(p->pid);

  EXPECT_NE(Inode(p->net_ns), Inode("/proc/self/ns/net"));
  EXPECT_NE(Inode(p->ipc_ns), Inode("/proc/self/ns/ipc"));
  EXPECT_NE(Inode(p->uts_ns), Inode("/proc/self/ns/uts"));
  EXPECT_NE(Inode(p->pid_ns), Inode("/proc/self/ns/pid"));

  auto host = RunOk({"nsenter", absl::StrCat("--uts=", p->uts_ns), "/bin/busybox", "hostname"});
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(*host, "berth-sb1\n");

  auto procs = ReadFile(absl::StrCat(kCgroup, "/cgroup.procs"));
  ASSERT_TRUE(procs.ok());
  EXPECT_NE(procs->find(absl::StrCat(p->pid, "\n")), std::string::npos) << *procs;

  // The pause's only child is PID 1 of the new PID namespace.
  auto children = ReadFile(absl::StrCat("/proc/", p->pid, "/task/", p->pid, "/children"));
  ASSERT_TRUE(children.ok());
  pid_t child = std::atoi(children->c_str());
  ASSERT_GT(child, 0);
  auto status = ReadFile(absl::StrCat("/proc/", child, "/status"));
  ASSERT_TRUE(status.ok());
  EXPECT_NE(status->find(absl::StrCat("NSpid:\t", child, "\t1\n")), std::string::npos) << *status;

  ASSERT_TRUE(StopPause(p->pid).ok());
  EXPECT_EQ(kill(p->pid, 0), -1);
  EXPECT_EQ(kill(child, 0), -1);  // the namespace init went with it
  pids_.clear();
}

TEST_F(PauseTest, BoundNetnsOutlivesPause) {
  auto p = StartPause(Options());
  ASSERT_TRUE(p.ok()) << p.status();
  pids_.push_back(p->pid);
  ino_t ns = Inode(p->net_ns);
  ASSERT_TRUE(BindNamespace(p->pid, "net", NetnsPath()).ok());
  EXPECT_TRUE(BindNamespace(p->pid, "net", NetnsPath()).ok()) << "binding twice is OK";
  EXPECT_EQ(Inode(NetnsPath()), ns);

  ASSERT_TRUE(StopPause(p->pid).ok());
  pids_.clear();
  EXPECT_EQ(Inode(NetnsPath()), ns);
  auto links =
      RunOk({"nsenter", absl::StrCat("--net=", NetnsPath()), "/bin/busybox", "ip", "link"});
  ASSERT_TRUE(links.ok()) << links.status();
  EXPECT_NE(links->find("lo"), std::string::npos);
  EXPECT_EQ(links->find("eth0"), std::string::npos) << *links;

  ASSERT_TRUE(UnbindNamespace(NetnsPath()).ok());
  EXPECT_FALSE(PathExists(NetnsPath()));
  EXPECT_TRUE(UnbindNamespace(NetnsPath()).ok()) << "absent is OK";
}

TEST_F(PauseTest, ReportsSetupFailure) {
  PauseOptions o = Options();
  o.cgroup_procs_files = {"/sys/fs/cgroup/pids/berth-oci-no-such-cgroup/cgroup.procs"};
  auto p = StartPause(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("berth-oci-no-such-cgroup"), std::string::npos) << p.status();
}

TEST_F(PauseTest, MissingBinaryIsNotFound) {
  PauseOptions o = Options();
  o.binary = "/nonexistent/berth-pause";
  EXPECT_EQ(StartPause(o).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace berth::cri::pause
