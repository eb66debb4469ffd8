// Root-only: drives berth's CRI Runtime with real berth-pause, conmon and runc, a busybox
// rootfs built here, a fake ImageResolver and a no-op NetworkPlugin. Every sandbox runs in its
// own network namespace created by berth-pause; nothing leaves the machine.
// api.pb.h (via runtime.h) first: <signal.h> defines SIGABRT etc. as macros, which clash with
// the CRI `Signal` enum's value names.
#include "cri/runtime/runtime.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/process.h"
#include "cri/oci/oci_runtime.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/testing/fakes.h"
#include "cri/store/db.h"
#include "gtest/gtest.h"
#include "tests/integration/runtime_fixture.h"

namespace berth::cri::runtime {
namespace {
namespace v1 = ::runtime::v1;
namespace fs = std::filesystem;

std::string MountInfo() { return ReadFile("/proc/self/mountinfo").value_or(""); }

class RuntimeIntegrationTest : public RuntimeFixture {
 protected:
  void SetUp() override {
    SetUpRuntime("rt", {"sh", "sleep", "echo", "cat", "true", "tail", "readlink"});
  }
  void TearDown() override { TearDownRuntime(); }

  // The fixture's runtime, plus a record of every container exit for WaitExit().
  void StartRuntime() override {
    RuntimeFixture::StartRuntime();
    rt_->OnContainerExit([this](const std::string& id) {
      std::lock_guard<std::mutex> l(mu_);
      exited_.insert(id);
      cv_.notify_all();
    });
  }

  std::string CreateContainer(const std::string& sandbox, const std::string& name,
                              std::vector<std::string> cmd) {
    auto r = rt_->CreateContainer(ContainerRequest(sandbox, name, cmd));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->container_id() : "";
  }

  bool WaitExit(const std::string& id, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return exited_.count(id) > 0; });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> exited_;
};

TEST_F(RuntimeIntegrationTest, SandboxContainerLifecycle) {
  std::string sb = RunSandbox("web");
  ASSERT_FALSE(sb.empty());
  EXPECT_EQ(sb.size(), 64u);

  // Retried RunPodSandbox returns the same ID.
  v1::RunPodSandboxRequest again;
  *again.mutable_config() = sandbox_config_;
  auto again_r = rt_->RunPodSandbox(again);
  ASSERT_TRUE(again_r.ok()) << again_r.status();
  EXPECT_EQ(again_r->pod_sandbox_id(), sb);

  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(sb);
  sreq.set_verbose(true);
  auto st = rt_->PodSandboxStatus(sreq);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status().state(), v1::SANDBOX_READY);
  EXPECT_EQ(st->status().network().ip(), "10.88.0.2");
  ASSERT_EQ(st->status().network().additional_ips_size(), 1);
  std::string netns = dir_ + "/state/netns/" + sb;
  EXPECT_TRUE(PathExists(netns));
  std::string pod_cgroup = "/sys/fs/cgroup/memory" + cgroup_root_ + "/kubepods/podweb";
  EXPECT_TRUE(PathExists(pod_cgroup)) << pod_cgroup;

  // A container that prints and exits 3.
  std::string c1 = CreateContainer(sb, "hi", {"sh", "-c", "echo hi; exit 3"});
  ASSERT_FALSE(c1.empty());
  v1::StartContainerRequest start;
  start.set_container_id(c1);
  auto started = rt_->StartContainer(start);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(WaitExit(c1, std::chrono::seconds(20)));
  v1::ContainerStatusRequest csr;
  csr.set_container_id(c1);
  auto cs = rt_->ContainerStatus(csr);
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(cs->status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(cs->status().exit_code(), 3);
  EXPECT_EQ(cs->status().reason(), "Error");
  EXPECT_GT(cs->status().finished_at(), 0);
  EXPECT_GE(cs->status().finished_at(), cs->status().created_at());
  auto log = ReadFile(cs->status().log_path());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_NE(log->find(" stdout F hi"), std::string::npos) << *log;

  // A long sleep stopped with a 2 s timeout.
  std::string c2 = CreateContainer(sb, "sleeper", {"sleep", "1000"});
  ASSERT_FALSE(c2.empty());
  start.set_container_id(c2);
  ASSERT_TRUE(rt_->StartContainer(start).ok());
  v1::ListContainersRequest lreq;
  lreq.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_RUNNING);
  auto running = rt_->ListContainers(lreq);
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->containers_size(), 1);
  EXPECT_EQ(running->containers(0).id(), c2);
  v1::ExecSyncRequest ex;
  ex.set_container_id(c2);
  ex.add_cmd("cat");
  ex.add_cmd("/etc/hostname");
  ex.set_timeout(10);
  auto exr = rt_->ExecSync(ex);
  ASSERT_TRUE(exr.ok()) << exr.status();
  EXPECT_EQ(exr->stdout(), "web\n");
  auto t0 = std::chrono::steady_clock::now();
  v1::StopContainerRequest stop;
  stop.set_container_id(c2);
  stop.set_timeout(2);
  auto stopped = rt_->StopContainer(stop);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
  csr.set_container_id(c2);
  cs = rt_->ContainerStatus(csr);
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->status().state(), v1::CONTAINER_EXITED);
  // Stop is idempotent.
  EXPECT_TRUE(rt_->StopContainer(stop).ok());

  // Remove the sandbox: no mount, cgroup dir, netns file or process left.
  pid_t pause_pid = 0;
  {
    auto info = st->info().at("info");
    auto pos = info.find("\"pid\":");
    ASSERT_NE(pos, std::string::npos);
    pause_pid = std::stoi(info.substr(pos + 6));
  }
  ASSERT_GT(pause_pid, 0);
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(sb);
  auto removed = rt_->RemovePodSandbox(rm);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(rt_->RemovePodSandbox(rm).ok());  // idempotent
  EXPECT_FALSE(PathExists(netns));
  for (const auto& m : HostCgroupMounts()) {
    EXPECT_FALSE(PathExists(m.mount_point + cgroup_root_ + "/kubepods/podweb")) << m.mount_point;
  }
  EXPECT_FALSE(PathExists(dir_ + "/root/containers/" + c1));
  EXPECT_EQ(MountInfo().find(dir_ + "/root"), std::string::npos) << MountInfo();
  EXPECT_EQ(MountInfo().find(netns), std::string::npos);
  EXPECT_TRUE(kill(pause_pid, 0) != 0 && errno == ESRCH);
  auto list = rt_->ListContainers({});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->containers_size(), 0);
  EXPECT_EQ(net_.dels.size(), 1u);
}

// A user-namespaced pod (CRI userns_options POD): the pause holds the user namespace, the
// containers join it, and the image's root-owned files are root's inside through idmapped
// layers; a file the container creates is owned by the mapped host UID on disk.
// The writable layer of ContainerStats / ListContainerStats / PodSandboxStats comes from the
// FsUsageCache's background measurement: calls never walk the upper dir and report the value
// (and timestamp) of the last measurement, which moves after a write once the cache refreshes.
class WritableLayerStatsTest : public RuntimeIntegrationTest {
 protected:
  void SetUp() override {
    fs_ = std::make_unique<metrics::FsUsageCache>(
        metrics::FsUsageCache::Options{std::chrono::hours(1)});  // refreshed by RefreshNow()
    fs_usage_ = fs_.get();
    SetUpRuntime("wl", {"sh", "sleep", "dd"});
  }
  void TearDown() override {
    TearDownRuntime();
    fs_.reset();
  }
  std::unique_ptr<metrics::FsUsageCache> fs_;
};

TEST_F(WritableLayerStatsTest, ServedFromTheBackgroundMeasurement) {
  std::string sb = RunSandbox("wl");
  ASSERT_FALSE(sb.empty());
  std::string c = CreateContainer(sb, "writer", {"sleep", "1000"});
  ASSERT_FALSE(c.empty());
  v1::StartContainerRequest start;
  start.set_container_id(c);
  ASSERT_TRUE(rt_->StartContainer(start).ok());
  v1::ContainerStatsRequest sreq;
  sreq.set_container_id(c);
  // The first call asks for the layer to be measured (at once, in the background).
  absl::StatusOr<v1::ContainerStatsResponse> st;
  for (int i = 0; i < 200; ++i) {
    st = rt_->ContainerStats(sreq);
    ASSERT_TRUE(st.ok()) << st.status();
    if (st->stats().has_writable_layer()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(st->stats().has_writable_layer()) << "writable layer never measured";
  const v1::FilesystemUsage first = st->stats().writable_layer();
  EXPECT_GT(first.timestamp(), 0);
  EXPECT_LT(first.used_bytes().value(), 1u << 20);
  EXPECT_GE(first.inodes_used().value(), 1u);
  EXPECT_EQ(first.fs_id().mountpoint(), runtime_options_.root_dir + "/containers");

  v1::ExecSyncRequest ex;
  ex.set_container_id(c);
  for (const char* a : {"dd", "if=/dev/zero", "of=/big", "bs=1048576", "count=3"}) ex.add_cmd(a);
  ex.set_timeout(20);
  auto exr = rt_->ExecSync(ex);
  ASSERT_TRUE(exr.ok()) << exr.status();
  ASSERT_EQ(exr->exit_code(), 0) << exr->stderr();

  // Until the cache refreshes, every stats call reports the old measurement without walking.
  const uint64_t walks = fs_->walks();
  for (int i = 0; i < 50; ++i) {
    auto again = rt_->ContainerStats(sreq);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->stats().writable_layer().used_bytes().value(), first.used_bytes().value());
    EXPECT_EQ(again->stats().writable_layer().timestamp(), first.timestamp());
  }
  v1::ListContainerStatsRequest lreq;
  ASSERT_EQ(rt_->ListContainerStats(lreq)->stats_size(), 1);
  v1::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(sb);
  auto pst = rt_->PodSandboxStats(preq);
  ASSERT_TRUE(pst.ok()) << pst.status();
  ASSERT_EQ(pst->stats().linux().containers_size(), 1);
  EXPECT_EQ(pst->stats().linux().containers(0).writable_layer().used_bytes().value(),
            first.used_bytes().value());
  EXPECT_EQ(fs_->walks(), walks) << "a stats call walked the writable layer";

  fs_->RefreshNow();
  auto after = rt_->ListContainerStats(lreq);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->stats_size(), 1);
  const v1::FilesystemUsage& w = after->stats(0).writable_layer();
  EXPECT_GE(w.used_bytes().value(), first.used_bytes().value() + 3 * 1048576u);
  EXPECT_GT(w.timestamp(), first.timestamp());
  EXPECT_GE(w.inodes_used().value(), first.inodes_used().value() + 1);
}

TEST_F(RuntimeIntegrationTest, UserNamespacePodMapsRootfs) {
  v1::RunPodSandboxRequest req;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("userns");
  c->mutable_metadata()->set_namespace_("default");
  c->mutable_metadata()->set_uid("uid-userns");
  c->set_log_directory(dir_ + "/logs/userns");
  c->mutable_linux()->set_cgroup_parent("/kubepods/poduserns");
  auto* u = c->mutable_linux()
                ->mutable_security_context()
                ->mutable_namespace_options()
                ->mutable_userns_options();
  u->set_mode(v1::POD);
  for (auto* m : {u->add_uids(), u->add_gids()}) {
    m->set_container_id(0);
    m->set_host_id(200000);
    m->set_length(65536);
  }
  // Bad mappings are refused before anything is created.
  v1::RunPodSandboxRequest bad = req;
  bad.mutable_config()
      ->mutable_linux()
      ->mutable_security_context()
      ->mutable_namespace_options()
      ->mutable_userns_options()
      ->mutable_uids(0)
      ->set_container_id(1);
  EXPECT_EQ(rt_->RunPodSandbox(bad).status().code(), absl::StatusCode::kInvalidArgument);
  // runc resolves the rootfs path as the pod's root (a mapped UID): mkdtemp's 0700 stops it,
  // and berth says so before creating anything.
  auto refused = rt_->RunPodSandbox(req);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find(dir_ + " (mode 0700) is not searchable"),
            std::string::npos)
      << refused.status();
  ASSERT_EQ(chmod(dir_.c_str(), 0711), 0);
  sandbox_config_ = *c;
  auto r = rt_->RunPodSandbox(req);
  ASSERT_TRUE(r.ok()) << r.status();
  std::string id =
      CreateContainer(r->pod_sandbox_id(), "probe",
                      {"sh", "-c",
                       "cat /proc/self/uid_map; busybox stat -c 'bin %u:%g' /bin/busybox; "
                       "echo x > /new && busybox stat -c 'new %u:%g' /new"});
  ASSERT_FALSE(id.empty());
  v1::StartContainerRequest start;
  start.set_container_id(id);
  auto started = rt_->StartContainer(start);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(WaitExit(id, std::chrono::seconds(20)));
  v1::ContainerStatusRequest csr;
  csr.set_container_id(id);
  auto cs = rt_->ContainerStatus(csr);
  ASSERT_TRUE(cs.ok()) << cs.status();
  auto log = ReadFile(cs->status().log_path());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(cs->status().exit_code(), 0) << *log;
  std::string flat = *log;
  std::vector<std::string> words =
      absl::StrSplit(flat, absl::ByAnyChar(" \n\t"), absl::SkipEmpty());
  auto has_seq = [&](std::vector<std::string> seq) {
    return std::search(words.begin(), words.end(), seq.begin(), seq.end()) != words.end();
  };
  EXPECT_TRUE(has_seq({"0", "200000", "65536"})) << *log;
  EXPECT_TRUE(has_seq({"bin", "0:0"})) << *log;
  EXPECT_TRUE(has_seq({"new", "0:0"})) << *log;
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/root/containers/" + id + "/upper/new").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 200000u);
  EXPECT_EQ(st.st_gid, 200000u);
  // The idmapped layer mounts were detached once the overlay held them.
  // (mountinfo's field 5 is the mount point; the overlay's options name the dirs too).
  {
    std::istringstream in(MountInfo());
    std::string line, idmap_dir = dir_ + "/root/containers/" + id + "/idmap";
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string a, b, c2, d, mp;
      f >> a >> b >> c2 >> d >> mp;
      EXPECT_NE(mp.rfind(idmap_dir, 0), 0u) << line;
    }
  }
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(r->pod_sandbox_id());
  ASSERT_TRUE(rt_->RemovePodSandbox(rm).ok());
  EXPECT_EQ(MountInfo().find(dir_ + "/root"), std::string::npos) << MountInfo();
}

TEST_F(RuntimeIntegrationTest, MissingImageFailsAndCleansUp) {
  std::string sb = RunSandbox("noimg");
  ASSERT_FALSE(sb.empty());
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(sb);
  req.mutable_config()->mutable_metadata()->set_name("x");
  req.mutable_config()->mutable_image()->set_image("nope:latest");
  auto r = rt_->CreateContainer(req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  auto list = rt_->ListContainers({});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->containers_size(), 0);
}

TEST_F(RuntimeIntegrationTest, CniFailureUndoesSandbox) {
  net_.add_error = absl::InternalError("plugin bridge failed");
  v1::RunPodSandboxRequest req;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("bad");
  c->mutable_metadata()->set_namespace_("default");
  c->mutable_metadata()->set_uid("uid-bad");
  c->mutable_linux()->set_cgroup_parent("/kubepods/podbad");
  auto r = rt_->RunPodSandbox(req);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(PathExists("/sys/fs/cgroup/memory" + cgroup_root_ + "/kubepods/podbad"));
  auto names = ListDir(dir_ + "/state/netns");
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
  auto list = rt_->ListPodSandbox({});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->items_size(), 0);
}

TEST_F(RuntimeIntegrationTest, ConcurrentRetriesGetOneSandbox) {
  v1::RunPodSandboxRequest req;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("twin");
  c->mutable_metadata()->set_namespace_("default");
  c->mutable_metadata()->set_uid("uid-twin");
  c->mutable_linux()->set_cgroup_parent("/kubepods/podtwin");
  absl::StatusOr<v1::RunPodSandboxResponse> r1, r2;
  std::thread t1([&] { r1 = rt_->RunPodSandbox(req); });
  std::thread t2([&] { r2 = rt_->RunPodSandbox(req); });
  t1.join();
  t2.join();
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r1->pod_sandbox_id(), r2->pod_sandbox_id());
  EXPECT_EQ(net_.adds.size(), 1u);
}

TEST_F(RuntimeIntegrationTest, RestartAdoptsRunningAndRecordsExitWhileDown) {
  std::string sb = RunSandbox("survivor");
  ASSERT_FALSE(sb.empty());
  std::string c1 = CreateContainer(sb, "long", {"sleep", "1000"});
  std::string c2 = CreateContainer(sb, "victim", {"sleep", "1000"});
  for (const auto& id : {c1, c2}) {
    v1::StartContainerRequest start;
    start.set_container_id(id);
    ASSERT_TRUE(rt_->StartContainer(start).ok());
  }
  // "berth goes down"; c2 is killed meanwhile and conmon writes its exit file.
  rt_.reset();
  ASSERT_TRUE(oci_->Kill(c2, SIGKILL).ok());
  std::string exit_file = dir_ + "/state/exits/" + c2;
  for (int i = 0; i < 200 && !oci::OciRuntime::ReadExitFile(dir_ + "/state/exits", c2).ok(); ++i) {
    usleep(50 * 1000);  // conmon is not ours to wait on: poll its file, bounded
  }
  ASSERT_TRUE(PathExists(exit_file));

  StartRuntime();
  if (HasFatalFailure()) return;
  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(sb);
  auto st = rt_->PodSandboxStatus(sreq);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->status().state(), v1::SANDBOX_READY);
  v1::ContainerStatusRequest csr;
  csr.set_container_id(c2);
  auto cs = rt_->ContainerStatus(csr);
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(cs->status().exit_code(), 137);
  csr.set_container_id(c1);
  cs = rt_->ContainerStatus(csr);
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->status().state(), v1::CONTAINER_RUNNING);
  // The adopted container's exit is still seen by the new monitor.
  v1::StopContainerRequest stop;
  stop.set_container_id(c1);
  stop.set_timeout(5);
  ASSERT_TRUE(rt_->StopContainer(stop).ok());
  EXPECT_TRUE(WaitExit(c1, std::chrono::seconds(10)));
}

TEST_F(RuntimeIntegrationTest, OomKilledAndRemoveCreatedContainer) {
  std::string sb = RunSandbox("oom");
  ASSERT_FALSE(sb.empty());
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(sb);
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("hog");
  c->mutable_image()->set_image("busybox:test");
  c->add_command("sh");
  c->add_command("-c");
  c->add_command("exec tail /dev/zero");
  c->mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(16 << 20);
  auto created = rt_->CreateContainer(req);
  ASSERT_TRUE(created.ok()) << created.status();
  std::string id = created->container_id();
  // Retried CreateContainer (same sandbox, name, attempt) returns the same ID.
  auto again = rt_->CreateContainer(req);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->container_id(), id);
  v1::StartContainerRequest start;
  start.set_container_id(id);
  ASSERT_TRUE(rt_->StartContainer(start).ok());
  ASSERT_TRUE(WaitExit(id, std::chrono::seconds(60)));
  v1::ContainerStatusRequest csr;
  csr.set_container_id(id);
  auto cs = rt_->ContainerStatus(csr);
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->status().reason(), "OOMKilled") << cs->status().exit_code();
  EXPECT_NE(cs->status().exit_code(), 0);

  // A created, never started container is removed cleanly (rootfs unmounted).
  c->mutable_metadata()->set_name("idle");
  c->clear_command();
  c->add_command("true");
  auto idle = rt_->CreateContainer(req);
  ASSERT_TRUE(idle.ok()) << idle.status();
  std::string rootfs = dir_ + "/root/containers/" + idle->container_id() + "/rootfs";
  EXPECT_NE(MountInfo().find(rootfs), std::string::npos);
  v1::RemoveContainerRequest rm;
  rm.set_container_id(idle->container_id());
  auto removed = rt_->RemoveContainer(rm);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(MountInfo().find(rootfs), std::string::npos);
  EXPECT_FALSE(PathExists(dir_ + "/root/containers/" + idle->container_id()));
  EXPECT_TRUE(rt_->RemoveContainer(rm).ok());  // idempotent
  csr.set_container_id(idle->container_id());
  EXPECT_EQ(rt_->ContainerStatus(csr).status().code(), absl::StatusCode::kNotFound);
}

// What RunPodSandbox hands the CNI plugin (K8S_POD_* args, portMappings, bandwidth, dns,
// ipRanges from UpdateRuntimeConfig) and the dual-stack result in PodSandboxStatus.
TEST_F(RuntimeIntegrationTest, SandboxNetworkRequestAndDualStackStatus) {
  v1::UpdateRuntimeConfigRequest urc;
  urc.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(
      "10.244.1.0/24,fd00:10:244:1::/64");
  ASSERT_TRUE(rt_->UpdateRuntimeConfig(urc).ok());
  v1::RunPodSandboxRequest req;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("netreq");
  c->mutable_metadata()->set_namespace_("team-a");
  c->mutable_metadata()->set_uid("uid-netreq");
  c->mutable_linux()->set_cgroup_parent("/kubepods/podnetreq");
  c->mutable_dns_config()->add_servers("10.96.0.10");
  c->mutable_dns_config()->add_searches("team-a.svc.cluster.local");
  c->mutable_dns_config()->add_options("ndots:5");
  auto* pm = c->add_port_mappings();
  pm->set_protocol(v1::UDP);
  pm->set_container_port(53);
  pm->set_host_port(5353);
  pm->set_host_ip("127.0.0.1");
  auto* no_host_port = c->add_port_mappings();  // containerPort only: not a CNI port mapping
  no_host_port->set_container_port(8080);
  (*c->mutable_annotations())["kubernetes.io/egress-bandwidth"] = "5M";
  auto r = rt_->RunPodSandbox(req);
  ASSERT_TRUE(r.ok()) << r.status();
  const cni::AttachRequest& ar = net_.last_add;
  EXPECT_EQ(ar.container_id, r->pod_sandbox_id());
  EXPECT_EQ(ar.netns_path, dir_ + "/state/netns/" + r->pod_sandbox_id());
  EXPECT_EQ(ar.pod_name, "netreq");
  EXPECT_EQ(ar.pod_namespace, "team-a");
  EXPECT_EQ(ar.pod_uid, "uid-netreq");
  ASSERT_EQ(ar.port_mappings.size(), 1u);
  EXPECT_EQ(ar.port_mappings[0].host_port, 5353);
  EXPECT_EQ(ar.port_mappings[0].container_port, 53);
  EXPECT_EQ(ar.port_mappings[0].protocol, "udp");
  EXPECT_EQ(ar.port_mappings[0].host_ip, "127.0.0.1");
  EXPECT_EQ(ar.bandwidth.egress_rate, 5000000);
  EXPECT_EQ(ar.bandwidth.ingress_rate, 0);
  EXPECT_EQ(ar.dns.servers, std::vector<std::string>{"10.96.0.10"});
  EXPECT_EQ(ar.dns.searches, std::vector<std::string>{"team-a.svc.cluster.local"});
  EXPECT_EQ(ar.dns.options, std::vector<std::string>{"ndots:5"});
  EXPECT_EQ(ar.ip_range_subnets, (std::vector<std::string>{"10.244.1.0/24", "fd00:10:244:1::/64"}));
  // The fake plugin answers with 10.88.0.2 and fd00::2: IPv4 is the primary IP.
  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(r->pod_sandbox_id());
  auto st = rt_->PodSandboxStatus(sreq);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status().network().ip(), "10.88.0.2");
  ASSERT_EQ(st->status().network().additional_ips_size(), 1);
  EXPECT_EQ(st->status().network().additional_ips(0).ip(), "fd00::2");
  // Still there after a restart of the runtime (read back from the store).
  rt_.reset();
  StartRuntime();
  st = rt_->PodSandboxStatus(sreq);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status().network().ip(), "10.88.0.2");
  ASSERT_EQ(st->status().network().additional_ips_size(), 1);
  EXPECT_EQ(st->status().network().additional_ips(0).ip(), "fd00::2");
}

TEST_F(RuntimeIntegrationTest, HostNetworkSandboxWithDnsConfig) {
  v1::RunPodSandboxRequest req;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("hostnet");
  c->mutable_metadata()->set_namespace_("kube-system");
  c->mutable_metadata()->set_uid("uid-hostnet");
  c->mutable_linux()->set_cgroup_parent("/kubepods/podhostnet");
  c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      v1::NODE);
  c->mutable_dns_config()->add_servers("10.96.0.10");
  c->mutable_dns_config()->add_searches("svc.cluster.local");
  sandbox_config_ = *c;
  auto r = rt_->RunPodSandbox(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(net_.adds.empty());  // no CNI for host network
  EXPECT_FALSE(PathExists(dir_ + "/state/netns/" + r->pod_sandbox_id()));
  std::string id = CreateContainer(r->pod_sandbox_id(), "agent", {"sleep", "1000"});
  ASSERT_FALSE(id.empty());
  v1::StartContainerRequest start;
  start.set_container_id(id);
  ASSERT_TRUE(rt_->StartContainer(start).ok());
  v1::ExecSyncRequest ex;
  ex.set_container_id(id);
  ex.add_cmd("cat");
  ex.add_cmd("/etc/resolv.conf");
  ex.set_timeout(10);
  auto out = rt_->ExecSync(ex);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout(), "search svc.cluster.local\nnameserver 10.96.0.10\n");
  // Same network namespace as the host (and as this test process).
  ex.clear_cmd();
  ex.add_cmd("readlink");
  ex.add_cmd("/proc/self/ns/net");
  char self_ns[128] = {};
  ASSERT_GT(readlink("/proc/self/ns/net", self_ns, sizeof(self_ns) - 1), 0);
  out = rt_->ExecSync(ex);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout(), std::string(self_ns) + "\n");
}

// ReopenContainerLog after a rename (kubelet's log rotation), stats from the cgroups, and
// the GetContainerEvents stream of the whole lifecycle.
TEST_F(RuntimeIntegrationTest, ReopenLogStatsAndEvents) {
  std::mutex ev_mu;
  std::vector<std::pair<std::string, v1::ContainerEventType>> events;
  std::atomic<bool> stop_events{false}, subscribed{false};
  std::thread subscriber([&] {
    auto s = rt_->GetContainerEvents(
        v1::GetEventsRequest(),
        [&](const v1::ContainerEventResponse& ev) {
          std::lock_guard<std::mutex> l(ev_mu);
          events.emplace_back(ev.container_id(), ev.container_event_type());
          return true;
        },
        [&] {
          subscribed = true;  // first polled once the subscription is in place
          return stop_events.load();
        });
    EXPECT_TRUE(s.ok()) << s;
  });
  // Events before the subscription are not delivered: wait for it.
  for (int i = 0; i < 1000 && !subscribed; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(subscribed);

  std::string sb = RunSandbox("logs");
  ASSERT_FALSE(sb.empty());
  std::string c =
      CreateContainer(sb, "ticker", {"sh", "-c", "while true; do echo tick; sleep 0.05; done"});
  ASSERT_FALSE(c.empty());
  v1::StartContainerRequest start;
  start.set_container_id(c);
  ASSERT_TRUE(rt_->StartContainer(start).ok());
  v1::ContainerStatusRequest csr;
  csr.set_container_id(c);
  std::string log = rt_->ContainerStatus(csr)->status().log_path();
  auto size_of = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 ? st.st_size : -1;
  };
  for (int i = 0; i < 100 && size_of(log) <= 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GT(size_of(log), 0);
  ASSERT_EQ(rename(log.c_str(), (log + ".1").c_str()), 0);
  v1::ReopenContainerLogRequest reopen;
  reopen.set_container_id(c);
  auto rr = rt_->ReopenContainerLog(reopen);
  ASSERT_TRUE(rr.ok()) << rr.status();
  EXPECT_TRUE(PathExists(log));  // exists when the RPC returns
  for (int i = 0; i < 100 && size_of(log) <= 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GT(size_of(log), 0) << "conmon does not write to the reopened log";
  off_t rotated = size_of(log + ".1");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(size_of(log + ".1"), rotated) << "the rotated file is still written";

  // Stats: two reads give a CPU rate; memory is the container cgroup's.
  v1::ContainerStatsRequest sreq;
  sreq.set_container_id(c);
  ASSERT_TRUE(rt_->ContainerStats(sreq).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto cst = rt_->ContainerStats(sreq);
  ASSERT_TRUE(cst.ok()) << cst.status();
  EXPECT_EQ(cst->stats().attributes().id(), c);
  EXPECT_EQ(cst->stats().attributes().metadata().name(), "ticker");
  EXPECT_GT(cst->stats().cpu().timestamp(), 0);
  EXPECT_GT(cst->stats().cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GT(cst->stats().cpu().usage_nano_cores().value(), 0u);
  EXPECT_GT(cst->stats().memory().working_set_bytes().value(), 0u);
  v1::ListContainerStatsRequest lreq;
  (*lreq.mutable_filter()->mutable_label_selector())["nope"] = "x";
  EXPECT_EQ(rt_->ListContainerStats(lreq)->stats_size(), 0);
  lreq.mutable_filter()->clear_label_selector();
  lreq.mutable_filter()->set_pod_sandbox_id(sb);
  EXPECT_EQ(rt_->ListContainerStats(lreq)->stats_size(), 1);
  v1::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(sb);
  auto pst = rt_->PodSandboxStats(preq);
  ASSERT_TRUE(pst.ok()) << pst.status();
  EXPECT_EQ(pst->stats().attributes().id(), sb);
  ASSERT_EQ(pst->stats().linux().containers_size(), 1);
  EXPECT_GT(pst->stats().linux().cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GE(pst->stats().linux().memory().working_set_bytes().value(),
            cst->stats().memory().working_set_bytes().value() / 2);
  EXPECT_EQ(rt_->ListPodSandboxStats(v1::ListPodSandboxStatsRequest())->stats_size(), 1);
  preq.set_pod_sandbox_id("missing");
  EXPECT_EQ(rt_->PodSandboxStats(preq).status().code(), absl::StatusCode::kNotFound);

  v1::StopContainerRequest stop;
  stop.set_container_id(c);
  stop.set_timeout(1);
  ASSERT_TRUE(rt_->StopContainer(stop).ok());
  ASSERT_TRUE(WaitExit(c, std::chrono::seconds(20)));
  EXPECT_EQ(rt_->ReopenContainerLog(reopen).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::RemoveContainerRequest rm;
  rm.set_container_id(c);
  ASSERT_TRUE(rt_->RemoveContainer(rm).ok());

  auto want = std::vector<std::pair<std::string, v1::ContainerEventType>>{
      {sb, v1::CONTAINER_CREATED_EVENT}, {sb, v1::CONTAINER_STARTED_EVENT},
      {c, v1::CONTAINER_CREATED_EVENT},  {c, v1::CONTAINER_STARTED_EVENT},
      {c, v1::CONTAINER_STOPPED_EVENT},  {c, v1::CONTAINER_DELETED_EVENT}};
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard<std::mutex> l(ev_mu);
      if (events.size() >= want.size()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop_events = true;
  subscriber.join();
  EXPECT_EQ(events, want);
}

}  // namespace
}  // namespace berth::cri::runtime
