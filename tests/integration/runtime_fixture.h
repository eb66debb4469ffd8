// Shared fixture of the root-only integration tests that drive berth's CRI Runtime with real
// berth-pause, conmon and runc: a busybox rootfs built in a private temp dir as the single
// layer of image "busybox:test" (fake ImageResolver), a no-op NetworkPlugin (each sandbox
// still gets its own netns from berth-pause), a metadata store and a cgroup root of its own.
// TearDown removes every sandbox through the runtime, then whatever is still mounted under the
// temp dir, the cgroup root and the dir, so a test failing half-way leaves nothing.
#ifndef BERTH_TESTS_INTEGRATION_RUNTIME_FIXTURE_H_
#define BERTH_TESTS_INTEGRATION_RUNTIME_FIXTURE_H_

#include "cri/runtime/runtime.h"  // before <signal.h>: CRI Signal enum vs SIG* macros

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/process.h"
#include "cri/oci/oci_runtime.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/testing/fakes.h"
#include "cri/store/db.h"
#include "gtest/gtest.h"
#include "metrics/fs_usage.h"

namespace berth::cri::runtime {

// Not thread-safe (gtest fixture). Subclasses call SetUpRuntime() from SetUp() and
// TearDownRuntime() from TearDown() after releasing what they built on top of rt_.
class RuntimeFixture : public ::testing::Test {
 protected:
  // Creates /var/tmp/berth-<tag>-XXXXXX, cgroup root /berth-<tag>-test-<pid>, the busybox
  // layer with `applets` as symlinks, the store and the OCI runtime, then StartRuntime().
  // Fails the test (fatal) when not root or when runc, conmon or /bin/busybox is missing.
  void SetUpRuntime(const std::string& tag, const std::vector<std::string>& applets) {
    ASSERT_EQ(geteuid(), 0) << "needs root (runc, conmon, namespaces)";
    ASSERT_TRUE(LookPath("runc").ok() && LookPath("conmon").ok() && PathExists("/bin/busybox"))
        << "needs runc, conmon and /bin/busybox";
    std::string tmpl = "/var/tmp/berth-" + tag + "-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    cgroup_root_ = "/berth-" + tag + "-test-" + std::to_string(getpid());
    std::string layer = dir_ + "/layer";
    for (const char* d : {"/bin", "/etc", "/dev"}) ASSERT_TRUE(MkdirAll(layer + d).ok());
    std::filesystem::copy_file("/bin/busybox", layer + "/bin/busybox");
    for (const auto& app : applets)
      std::filesystem::create_symlink("busybox", layer + "/bin/" + app);
    ASSERT_TRUE(WriteFileAtomic(layer + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n").ok());
    ASSERT_TRUE(WriteFileAtomic(layer + "/etc/group", "root:x:0:\n").ok());
    image::ResolvedImage img;
    img.id = image_id_;
    img.repo_tags = {"busybox:test"};
    img.layer_dirs = {layer};
    img.config.env = {"PATH=/bin"};
    img.config.cmd = {"sh"};
    images_.Add("busybox:test", img);

    auto db = store::Db::Open(dir_ + "/berth.db", kRuntimeSchema);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    oci::OciRuntimeOptions oo;
    oo.runtime_root = dir_ + "/state/runc";
    oo.conmon_state_dir = dir_ + "/state/conmon";
    oci_ = std::make_unique<oci::OciRuntime>(oo);
    runtime_options_.root_dir = dir_ + "/root";
    runtime_options_.state_dir = dir_ + "/state";
    runtime_options_.pause_binary = BERTH_PAUSE_BINARY;
    runtime_options_.cgroup_root = cgroup_root_;
    StartRuntime();
  }

  // (Re)creates the runtime over the fixture's store and dirs (runtime_options_, which
  // SetUpRuntime fills and an override may amend first), as a restarted berth does.
  virtual void StartRuntime() {
    rt_ = std::make_unique<Runtime>(
        runtime_options_, RuntimeDeps{db_.get(), &images_, &net_, oci_.get(), nullptr, fs_usage_});
    ASSERT_TRUE(rt_->Start().ok());
  }

  // Removes every sandbox (expects success), then mounts under dir_, the cgroup root, dir_.
  void TearDownRuntime() {
    if (dir_.empty()) return;
    if (rt_) {
      auto list = rt_->ListPodSandbox({});
      if (list.ok()) {
        for (const auto& p : list->items()) {
          ::runtime::v1::RemovePodSandboxRequest r;
          r.set_pod_sandbox_id(p.id());
          auto s = rt_->RemovePodSandbox(r);
          EXPECT_TRUE(s.ok()) << s.status();
        }
      }
      rt_.reset();
    }
    for (int i = 0; i < 3; ++i) {  // nested mounts: a few passes, lazily
      std::istringstream in(ReadFile("/proc/self/mountinfo").value_or(""));
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string a, b, c, d, mp;
        f >> a >> b >> c >> d >> mp;
        if (mp.rfind(dir_, 0) == 0) umount2(mp.c_str(), MNT_DETACH);
      }
    }
    RemoveCgroup(HostCgroupMounts(), cgroup_root_).IgnoreError();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Runs sandbox `name` (namespace default, uid "uid-<name>", cgroup parent
  // /kubepods/pod<name>, label app=<name>, the given CRI runtime handler) and remembers its
  // config for containers.
  // Returns the sandbox ID, "" after a failed expectation.
  std::string RunSandbox(const std::string& name, const std::string& runtime_handler = "") {
    ::runtime::v1::RunPodSandboxRequest req;
    req.set_runtime_handler(runtime_handler);
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_metadata()->set_namespace_("default");
    c->mutable_metadata()->set_uid("uid-" + name);
    c->set_hostname(name);
    c->set_log_directory(dir_ + "/logs/" + name);
    c->mutable_linux()->set_cgroup_parent("/kubepods/pod" + name);
    (*c->mutable_labels())["app"] = name;
    sandbox_config_ = *c;
    auto r = rt_->RunPodSandbox(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->pod_sandbox_id() : "";
  }

  // A CreateContainerRequest for image busybox:test in `sandbox` (the last RunSandbox config),
  // log path <name>/0.log.
  ::runtime::v1::CreateContainerRequest ContainerRequest(const std::string& sandbox,
                                                         const std::string& name,
                                                         const std::vector<std::string>& cmd) {
    ::runtime::v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(sandbox);
    *req.mutable_sandbox_config() = sandbox_config_;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("busybox:test");
    for (const auto& s : cmd) c->add_command(s);
    c->set_log_path(name + "/0.log");
    return req;
  }

  std::string dir_, cgroup_root_;
  const std::string image_id_ = "sha256:" + std::string(64, 'b');  // of busybox:test
  testing::FakeImageResolver images_;
  testing::FakeNetworkPlugin net_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<oci::OciRuntime> oci_;
  std::unique_ptr<Runtime> rt_;
  RuntimeOptions runtime_options_;
  // Writable-layer usage cache given to the runtime (not owned; set before SetUpRuntime);
  // nullptr: the runtime's own.
  metrics::FsUsageCache* fs_usage_ = nullptr;
  ::runtime::v1::PodSandboxConfig sandbox_config_;
};

}  // namespace berth::cri::runtime

#endif  // BERTH_TESTS_INTEGRATION_RUNTIME_FIXTURE_H_
