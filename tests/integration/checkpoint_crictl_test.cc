// Root-only: CRI CheckpointContainer through berth's CRI socket with upstream
// `crictl checkpoint --export`, backed by the real runtime (berth-pause, conmon, runc, CRIU
// 3.17 from Debian; a busybox rootfs built here; fake image resolver and network plugin).
//
// - RealCriu: with the host's CRIU. Where `criu check` passes, the archive must hold the
//   checkpoint; where it fails (CRIU 3.17 on a kernel >= 6.13: "vdso: Unexpected rt vDSO
//   area bounds", the vvar_vclock mapping CRIU learnt in 4.1), the RPC must fail with
//   runc's and CRIU's own words, leave no archive and no work dir. Either way the container
//   keeps running and answering.
// - ArchiveLayout: CRIU replaced by a stub (a runtime handler whose binary is a wrapper
//   that runs the real runc for everything but `checkpoint`, where it writes stand-in image
//   files): checks berth's archive (config.dump, spec.dump, rootfs-diff.tar, deleted.files,
//   container.log, checkpoint/) end to end where real CRIU cannot dump.
// - Timeout: a dump that outlives CheckpointContainerRequest.timeout is killed
//   (DeadlineExceeded), nothing is left, the container runs on.
// - Refusals: a stopped container (FailedPrecondition), an unknown one (NotFound).
#include "cri/runtime/runtime.h"  // before <signal.h>: CRI Signal enum vs SIG* macros

#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>

#include "base/file.h"
#include "base/process.h"
#include "cri/oci/oci_runtime.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/checkpoint.h"
#include "cri/runtime/testing/fakes.h"
#include "cri/server/cri_server.h"
#include "cri/store/db.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/crictl_fixture.h"

namespace berth::cri::runtime {
namespace {
namespace v1 = ::runtime::v1;
namespace fs = std::filesystem;
using std::chrono::seconds;

bool Contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

// runc for everything but `checkpoint`, where CRIU's part is played by writing stand-in
// image files to --image-path and a dump.log to --work-path.
constexpr char kStubRuntime[] = R"(#!/bin/sh
case " $* " in
*" checkpoint "*)
  img= work=
  while [ $# -gt 0 ]; do
    case "$1" in
      --image-path) img=$2; shift ;;
      --work-path) work=$2; shift ;;
    esac
    shift
  done
  mkdir -p "$img" "$work" || exit 1
  # A hanging CRIU, when the test asks for one.
  [ -e "${0%/*}/hang-checkpoint" ] && exec sleep 60
  echo stub-inventory > "$img/inventory.img"
  echo stub-pages > "$img/pages-1.img"
  echo "(00.000001) stub dump finished" > "$work/dump.log"
  exit 0 ;;
esac
exec runc "$@"
)";

class CheckpointTest : public CrictlFixture {
 protected:
  void SetUp() override {
    ASSERT_TRUE(LookPath("criu").ok() && LookPath("tar").ok()) << "needs criu and tar";
    SetUpCrictl("cp", {"sh", "sleep", "echo", "cat", "rm", "true"});
    if (HasFatalFailure()) return;
    StartCriServer();
  }
  void TearDown() override { TearDownCrictl(); }

  // The runtime with handler "stub-criu": runc for everything but `checkpoint`.
  void StartRuntime() override {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/runc-stub-criu", kStubRuntime, 0755).ok());
    runtime_options_.runtime_handlers["stub-criu"] = dir_ + "/runc-stub-criu";
    CrictlFixture::StartRuntime();
  }

  RunResult Crictl(const std::vector<std::string>& args) {
    return CrictlFixture::Crictl(args, "", seconds(120), "60s");
  }

  // A running container that logged a line, created /data/new-file and deleted /etc/group
  // (a file of its image) before it signals readiness with /ready.
  std::string StartWorkload(const std::string& sb) {
    auto r =
        rt_->CreateContainer(ContainerRequest(sb, "main",
                                              {"sh", "-c",
                                               "echo hello-from-log; echo payload > /new-file; rm "
                                               "/etc/group; echo > /ready; exec sleep 1000"}));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    v1::StartContainerRequest start;
    start.set_container_id(r->container_id());
    auto s = rt_->StartContainer(start);
    EXPECT_TRUE(s.ok()) << s.status();
    auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      v1::ExecSyncRequest ready;
      ready.set_container_id(r->container_id());
      for (const char* a : {"cat", "/ready"}) ready.add_cmd(a);
      ready.set_timeout(5);
      auto er = rt_->ExecSync(ready);
      if (er.ok() && er->exit_code() == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r->container_id();
  }

  // The container is RUNNING in the CRI and its processes answer.
  void ExpectStillRunning(const std::string& id) {
    v1::ContainerStatusRequest sr;
    sr.set_container_id(id);
    auto st = rt_->ContainerStatus(sr);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st->status().state(), v1::CONTAINER_RUNNING);
    RunResult r = Crictl({"exec", "--sync", id, "cat", "/new-file"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("payload\n", 0), 0u) << r.out;  // (crictl exec --sync adds newlines)
  }

  // The checkpoint work dir of the runtime holds nothing.
  void ExpectNoWorkLeft() {
    std::string work = dir_ + "/root/checkpoint-work";
    if (!PathExists(work)) return;
    auto l = ListDir(work);
    ASSERT_TRUE(l.ok());
    EXPECT_TRUE(l->empty()) << work << " holds " << (l->empty() ? "" : (*l)[0]);
  }

  std::string ExtractArchive(const std::string& tar) {
    std::string out = dir_ + "/extracted";
    EXPECT_TRUE(MkdirAll(out).ok());
    auto r = RunOk({"tar", "-xf", tar, "-C", out});
    EXPECT_TRUE(r.ok()) << r.status();
    return out;
  }
};

TEST_F(CheckpointTest, RealCriu) {
  auto check = berth::Run({"criu", "check"}, "", seconds(30));
  ASSERT_TRUE(check.ok()) << check.status();
  const bool criu_works = check->exit_code == 0;
  std::cout << "criu check: exit " << check->exit_code << " " << check->err << std::endl;

  std::string sb = RunSandbox("real");
  std::string c = StartWorkload(sb);
  ASSERT_FALSE(c.empty());
  const std::string archive = dir_ + "/real.tar";
  RunResult r = Crictl({"checkpoint", "--export=" + archive, c});
  if (criu_works) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string x = ExtractArchive(archive);
    EXPECT_TRUE(PathExists(x + "/checkpoint/inventory.img"));
    EXPECT_TRUE(PathExists(x + "/config.dump"));
    EXPECT_TRUE(PathExists(x + "/spec.dump"));
    EXPECT_TRUE(PathExists(x + "/rootfs-diff.tar"));
  } else {
    // The CRIU on this host cannot dump: the error says so in CRIU's words.
    EXPECT_NE(r.exit_code, 0);
    std::cout << "crictl checkpoint error: " << r.err << std::endl;
    EXPECT_TRUE(Contains(r.err, "runc checkpoint failed")) << r.err;
    EXPECT_TRUE(Contains(r.err, "CRIU dump.log:")) << r.err;
    EXPECT_TRUE(Contains(r.err, "Error (criu/")) << r.err;
    EXPECT_FALSE(PathExists(archive));
    EXPECT_FALSE(PathExists(archive + ".partial"));
  }
  ExpectNoWorkLeft();
  ExpectStillRunning(c);
}

TEST_F(CheckpointTest, ArchiveLayout) {
  std::string sb = RunSandbox("layout", "stub-criu");
  std::string c = StartWorkload(sb);
  ASSERT_FALSE(c.empty());
  const std::string archive = dir_ + "/layout.tar";
  RunResult r = Crictl({"checkpoint", "--export=" + archive, c});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNoWorkLeft();
  ExpectStillRunning(c);

  std::string x = ExtractArchive(archive);
  EXPECT_EQ(ReadFile(x + "/checkpoint/inventory.img").value_or(""), "stub-inventory\n");
  EXPECT_TRUE(Contains(ReadFile(x + "/dump.log").value_or(""), "stub dump finished"));

  auto config = nlohmann::json::parse(ReadFile(x + "/config.dump").value_or(""), nullptr, false);
  ASSERT_TRUE(config.is_object());
  EXPECT_EQ(config.value("id", ""), c);
  EXPECT_EQ(config.value("name", ""), "main");
  EXPECT_EQ(config.value("rootfsImage", ""), image_id_);
  EXPECT_EQ(config.value("runtime", ""), "runc-stub-criu");
  EXPECT_FALSE(config.value("createdTime", "").empty());
  EXPECT_FALSE(config.value("checkpointedTime", "").empty());

  auto spec = nlohmann::json::parse(ReadFile(x + "/spec.dump").value_or(""), nullptr, false);
  ASSERT_TRUE(spec.is_object());
  EXPECT_EQ(spec["process"]["args"][0], "sh");

  // The writable layer: the new file, without the whiteout of the deleted one...
  ASSERT_TRUE(MkdirAll(x + "/rootfs").ok());
  ASSERT_TRUE(RunOk({"tar", "-xf", x + "/rootfs-diff.tar", "-C", x + "/rootfs"}).ok());
  EXPECT_EQ(ReadFile(x + "/rootfs/new-file").value_or(""), "payload\n");
  EXPECT_FALSE(PathExists(x + "/rootfs/etc/group"));
  // ...which is listed in deleted.files instead.
  auto deleted = nlohmann::json::parse(ReadFile(x + "/deleted.files").value_or(""), nullptr, false);
  ASSERT_TRUE(deleted.is_array());
  EXPECT_EQ(deleted, nlohmann::json::array({"etc/group"}));

  EXPECT_TRUE(Contains(ReadFile(x + "/container.log").value_or(""), "hello-from-log"));
}

TEST_F(CheckpointTest, TimeoutStopsTheDumpAndLeavesNothing) {
  std::string sb = RunSandbox("slow", "stub-criu");
  std::string c = StartWorkload(sb);
  ASSERT_FALSE(c.empty());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/hang-checkpoint", "").ok());
  v1::CheckpointContainerRequest req;
  req.set_container_id(c);
  req.set_location(dir_ + "/slow.tar");
  req.set_timeout(1);
  auto start = std::chrono::steady_clock::now();
  auto r = rt_->CheckpointContainer(req);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_TRUE(Contains(std::string(r.status().message()), "did not finish within 1s"))
      << r.status();
  EXPECT_LT(took, seconds(30));  // the hanging dump was killed, not waited for
  EXPECT_FALSE(PathExists(dir_ + "/slow.tar"));
  EXPECT_FALSE(PathExists(dir_ + "/slow.tar.partial"));
  ExpectNoWorkLeft();
  ExpectStillRunning(c);
}

TEST_F(CheckpointTest, Refusals) {
  std::string sb = RunSandbox("refuse", "stub-criu");
  std::string c = StartWorkload(sb);
  ASSERT_FALSE(c.empty());
  v1::StopContainerRequest stop;
  stop.set_container_id(c);
  stop.set_timeout(0);
  ASSERT_TRUE(rt_->StopContainer(stop).ok());

  const std::string archive = dir_ + "/stopped.tar";
  RunResult r = Crictl({"checkpoint", "--export=" + archive, c});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "FailedPrecondition")) << r.err;
  EXPECT_TRUE(Contains(r.err, "CONTAINER_EXITED")) << r.err;
  EXPECT_FALSE(PathExists(archive));

  r = Crictl({"checkpoint", "--export=" + archive, std::string(64, 'f')});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "NotFound")) << r.err;

  v1::CheckpointContainerRequest req;
  req.set_container_id(c);
  EXPECT_EQ(rt_->CheckpointContainer(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_location(archive);
  EXPECT_EQ(rt_->CheckpointContainer(req).status().code(), absl::StatusCode::kFailedPrecondition);
  ExpectNoWorkLeft();
}

}  // namespace
}  // namespace berth::cri::runtime
