#include "cri/image/snapshotter.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"

#include <signal.h>
#include <sys/wait.h>

namespace berth::cri::image {
namespace {

class SnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-snapshotter-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    // Two layers, bottom first: the top one shadows b.
    bottom_ = JoinPath(tmp_, "layers/1");
    top_ = JoinPath(tmp_, "layers/2");
    ASSERT_TRUE(MkdirAll(bottom_).ok());
    ASSERT_TRUE(MkdirAll(top_).ok());
    ASSERT_TRUE(WriteFileAtomic(JoinPath(bottom_, "a"), "bottom a").ok());
    ASSERT_TRUE(WriteFileAtomic(JoinPath(bottom_, "b"), "bottom b").ok());
    ASSERT_TRUE(WriteFileAtomic(JoinPath(top_, "b"), "top b").ok());
    dir_ = JoinPath(tmp_, "container");
  }
  void TearDown() override {
    // Also after a failed assertion: nothing stays mounted or on disk.
    EXPECT_TRUE(RemoveSnapshot(dir_).ok());
    EXPECT_TRUE(RemoveAll(tmp_).ok());
  }

  std::string tmp_, bottom_, top_, dir_;
};

TEST_F(SnapshotterTest, PathsAreInsideTheDirectory) {
  SnapshotPaths p = SnapshotPathsIn("/b/c1");
  EXPECT_EQ(p.rootfs, "/b/c1/rootfs");
  EXPECT_EQ(p.upper, "/b/c1/upper");
  EXPECT_EQ(p.work, "/b/c1/work");
  EXPECT_EQ(p.idmap, "/b/c1/idmap");
}

TEST_F(SnapshotterTest, NoLayersIsInvalid) {
  auto p = PrepareSnapshot(dir_, {}, std::nullopt);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(PathExists(dir_));
}

TEST_F(SnapshotterTest, RemoveOfNothingIsOk) {
  EXPECT_TRUE(RemoveSnapshot(JoinPath(tmp_, "absent")).ok());
}

TEST_F(SnapshotterTest, OverlayOfLayersWritesToUpper) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting overlayfs needs root";
  auto p = PrepareSnapshot(dir_, {bottom_, top_}, std::nullopt);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->rootfs, JoinPath(dir_, "rootfs"));
  EXPECT_TRUE(IsMountPoint(p->rootfs));
  EXPECT_EQ(ReadFile(JoinPath(p->rootfs, "a")).value_or(""), "bottom a");
  EXPECT_EQ(ReadFile(JoinPath(p->rootfs, "b")).value_or(""), "top b");  // the top layer wins
  // Writes land in the upper dir; the layers stay as they were.
  ASSERT_TRUE(WriteFileAtomic(JoinPath(p->rootfs, "b"), "written").ok());
  EXPECT_EQ(ReadFile(JoinPath(p->upper, "b")).value_or(""), "written");
  EXPECT_EQ(ReadFile(JoinPath(top_, "b")).value_or(""), "top b");

  ASSERT_TRUE(RemoveSnapshot(dir_).ok());
  EXPECT_FALSE(PathExists(p->rootfs));
  EXPECT_FALSE(PathExists(p->upper));
  EXPECT_FALSE(PathExists(p->work));
  EXPECT_TRUE(PathExists(dir_));  // the caller's directory stays
  EXPECT_EQ(ReadFile(JoinPath(bottom_, "a")).value_or(""), "bottom a");
}

// A child process in a new user namespace mapping 0..65535 to 100000..165535; stopped (by
// PID) and reaped on destruction.
class UsernsChild {
 public:
  UsernsChild() {
    int ready[2], hold[2];
    if (pipe(ready) != 0 || pipe(hold) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(hold[1]);
      char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
      (void)!write(ready[1], &c, 1);
      (void)!read(hold[0], &c, 1);  // until the parent goes or kills us
      _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    hold_fd_ = hold[1];
    char c = 'n';
    ok_ = read(ready[0], &c, 1) == 1 && c == 'y' && WriteProcFile("uid_map", "0 100000 65536\n") &&
          WriteProcFile("gid_map", "0 100000 65536\n");
    close(ready[0]);
  }
  ~UsernsChild() {
    if (hold_fd_ >= 0) close(hold_fd_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool ok() const { return ok_; }
  std::string userns_path() const { return absl::StrCat("/proc/", pid_, "/ns/user"); }

 private:
  // /proc/<pid>/<name> takes one write(2) (no temp file and rename).
  bool WriteProcFile(const char* name, const std::string& data) {
    int fd = open(absl::StrCat("/proc/", pid_, "/", name).c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    close(fd);
    return ok;
  }

  pid_t pid_ = -1;
  int hold_fd_ = -1;
  bool ok_ = false;
};

TEST_F(SnapshotterTest, IdmappedLayersAreOwnedByThePodsRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "idmapped mounts need root";
  UsernsChild child;
  ASSERT_TRUE(child.ok()) << "could not create a user namespace";
  auto p = PrepareSnapshot(
      dir_, {bottom_, top_},
      SnapshotIdmap{.userns_path = child.userns_path(), .host_uid = 100000, .host_gid = 100000});
  ASSERT_TRUE(p.ok()) << p.status();
  struct stat st;
  // Root-owned on disk, seen as owned by the host ID the pod's root maps to.
  ASSERT_EQ(stat(JoinPath(p->rootfs, "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 100000u);
  EXPECT_EQ(st.st_gid, 100000u);
  ASSERT_EQ(stat(JoinPath(bottom_, "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(stat(p->upper.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 100000u);
  // The idmapped layer mounts were detached once the overlay held them.
  EXPECT_FALSE(IsMountPoint(JoinPath(p->idmap, "0")));
  EXPECT_FALSE(IsMountPoint(JoinPath(p->idmap, "1")));
}

TEST_F(SnapshotterTest, IdmapThroughAMissingNamespaceFailsCleanly) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting needs root";
  auto p =
      PrepareSnapshot(dir_, {bottom_}, SnapshotIdmap{.userns_path = JoinPath(tmp_, "no-such-ns")});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("idmap mount " + bottom_), std::string::npos) << p.status();
  EXPECT_FALSE(IsMountPoint(JoinPath(dir_, "rootfs")));
}

}  // namespace
}  // namespace berth::cri::image
