// Root-only: upstream crictl (built by tests/cluster) drives `exec`, `exec -it`, `attach`
// and `port-forward` through berth's CRI gRPC server and streaming server, backed by the
// real runtime (berth-pause, conmon, runc; a busybox rootfs built here; fake image resolver
// and network plugin). Checks data integrity (10 MB through cat, 20 concurrent forwarded
// connections), exit codes, TTY size, bad tokens, and that a client closing mid-stream
// leaves no process, descriptor or thread behind.
#include "cri/runtime/runtime.h"  // before <signal.h>: CRI Signal enum vs SIG* macros

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "base/file.h"
#include "base/process.h"
#include "cri/oci/oci_runtime.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/testing/fakes.h"
#include "cri/server/cri_server.h"
#include "cri/server/fake_cri_services.h"
#include "cri/store/db.h"
#include "cri/streaming/server.h"
#include "gtest/gtest.h"

namespace berth::cri::runtime {
namespace {
namespace v1 = ::runtime::v1;
namespace fs = std::filesystem;
using std::chrono::seconds;

bool Contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

size_t CountDir(const std::string& path) {
  auto l = ListDir(path);
  return l.ok() ? l->size() : 0;
}

// Threads of this process named by the streaming server ("berth-stream*"). The total thread
// count is not used: gRPC's sync server grows and shrinks its own pool.
size_t CountStreamingThreads() {
  size_t n = 0;
  auto l = ListDir("/proc/self/task");
  if (!l.ok()) return 0;
  for (const auto& tid : *l) {
    auto comm = ReadFile("/proc/self/task/" + tid + "/comm");
    if (comm.ok() && comm->rfind("berth-stream", 0) == 0) ++n;
  }
  return n;
}

// Polls `cond` every 50 ms until it holds or `timeout` passes.
template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

class StreamingCrictlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0) << "needs root (runc, conmon, namespaces)";
    ASSERT_TRUE(PathExists(BERTH_CRICTL)) << BERTH_CRICTL << " missing: run tests/cluster/build.sh crictl";
    ASSERT_TRUE(LookPath("runc").ok() && LookPath("conmon").ok() && PathExists("/bin/busybox"))
        << "needs runc, conmon and /bin/busybox";
    char tmpl[] = "/var/tmp/berth-st-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cgroup_root_ = "/berth-st-test-" + std::to_string(getpid());
    std::string layer = dir_ + "/layer";
    ASSERT_TRUE(MkdirAll(layer + "/bin").ok());
    ASSERT_TRUE(MkdirAll(layer + "/etc").ok());
    ASSERT_TRUE(MkdirAll(layer + "/dev").ok());
    fs::copy_file("/bin/busybox", layer + "/bin/busybox");
    for (const char* app : {"sh", "sleep", "echo", "cat", "true", "stty", "tty", "nc", "ps", "grep",
                            "head", "wc", "seq"}) {
      fs::create_symlink("busybox", layer + "/bin/" + app);
    }
    ASSERT_TRUE(WriteFileAtomic(layer + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n").ok());
    ASSERT_TRUE(WriteFileAtomic(layer + "/etc/group", "root:x:0:\n").ok());
    image::ResolvedImage img;
    img.id = "sha256:" + std::string(64, 'c');
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
    RuntimeOptions ro;
    ro.root_dir = dir_ + "/root";
    ro.state_dir = dir_ + "/state";
    ro.pause_binary = BERTH_PAUSE_BINARY;
    ro.cgroup_root = cgroup_root_;
    rt_ = std::make_unique<Runtime>(ro, RuntimeDeps{db_.get(), &images_, &net_, oci_.get(), nullptr});
    ASSERT_TRUE(rt_->Start().ok());
    streaming_ = std::make_unique<streaming::Server>(rt_.get(), streaming::ServerOptions{});
    ASSERT_TRUE(streaming_->Start().ok());
    rt_->SetStreamingServer(streaming_.get());
    socket_ = dir_ + "/berth.sock";
    cri_ = std::make_unique<server::CriServer>(rt_.get(), &image_service_,
                                               server::CriServerOptions{.socket_path = socket_});
    ASSERT_TRUE(cri_->Start().ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/crictl.yaml", "runtime-endpoint: unix://" + socket_ +
                                                           "\nimage-endpoint: unix://" + socket_ +
                                                           "\ntimeout: 20\n")
                    .ok());
  }

  void TearDown() override {
    if (dir_.empty()) return;
    cri_.reset();
    if (rt_) {
      rt_->SetStreamingServer(nullptr);
      streaming_.reset();
      auto list = rt_->ListPodSandbox({});
      if (list.ok()) {
        for (const auto& p : list->items()) {
          v1::RemovePodSandboxRequest r;
          r.set_pod_sandbox_id(p.id());
          EXPECT_TRUE(rt_->RemovePodSandbox(r).ok());
        }
      }
      rt_.reset();
    }
    for (int i = 0; i < 3; ++i) {
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
    fs::remove_all(dir_, ec);
  }

  std::vector<std::string> CrictlArgv(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BERTH_CRICTL, "--config", dir_ + "/crictl.yaml",
                                     "--runtime-endpoint", "unix://" + socket_, "--timeout", "20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  RunResult Crictl(const std::vector<std::string>& args, const std::string& input = "",
                   std::chrono::milliseconds timeout = seconds(60)) {
    auto r = berth::Run(CrictlArgv(args), input, timeout);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }

  std::string RunSandbox(const std::string& name) {
    v1::RunPodSandboxRequest req;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_metadata()->set_namespace_("default");
    c->mutable_metadata()->set_uid("uid-" + name);
    c->set_hostname(name);
    c->set_log_directory(dir_ + "/logs/" + name);
    c->mutable_linux()->set_cgroup_parent("/kubepods/pod" + name);
    sandbox_config_ = *c;
    auto r = rt_->RunPodSandbox(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->pod_sandbox_id() : "";
  }

  std::string StartContainer(const std::string& sb, const std::string& name,
                             std::vector<std::string> cmd, bool stdin = false, bool tty = false) {
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(sb);
    *req.mutable_sandbox_config() = sandbox_config_;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("busybox:test");
    for (auto& s : cmd) c->add_command(s);
    c->set_log_path(name + "/0.log");
    c->set_stdin(stdin);
    c->set_tty(tty);
    auto r = rt_->CreateContainer(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    v1::StartContainerRequest start;
    start.set_container_id(r->container_id());
    auto s = rt_->StartContainer(start);
    EXPECT_TRUE(s.ok()) << s.status();
    return r->container_id();
  }

  std::string dir_, cgroup_root_, socket_;
  testing::FakeImageResolver images_;
  testing::FakeNetworkPlugin net_;
  server::testing::FakeImageService image_service_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<oci::OciRuntime> oci_;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<streaming::Server> streaming_;
  std::unique_ptr<server::CriServer> cri_;
  v1::PodSandboxConfig sandbox_config_;
};

TEST_F(StreamingCrictlTest, ExecExitCodeAndTenMegabytesThroughCat) {
  std::string sb = RunSandbox("exec");
  std::string c = StartContainer(sb, "main", {"sleep", "1000"});
  ASSERT_FALSE(c.empty());

  RunResult r = Crictl({"exec", c, "sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.out, "out\n");
  EXPECT_TRUE(Contains(r.err, "err\n")) << r.err;
  EXPECT_TRUE(Contains(r.err, "command terminated with exit code 3")) << r.err;
  EXPECT_NE(r.exit_code, 0);

  r = Crictl({"exec", c, "true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Informational (not a timed assertion): `crictl exec <c> true` wall time, p50 of 20.
  std::vector<double> lat;
  for (int i = 0; i < 20; ++i) {
    auto t = std::chrono::steady_clock::now();
    EXPECT_EQ(Crictl({"exec", c, "true"}).exit_code, 0);
    lat.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
  }
  std::sort(lat.begin(), lat.end());
  std::cout << "crictl exec true: p50 " << lat[lat.size() / 2] << " ms (20 runs)" << std::endl;

  // The same over WebSocket (v5.channel.k8s.io).
  r = Crictl({"exec", "--transport", "websocket", c, "sh", "-c", "echo ws; exit 4"});
  EXPECT_EQ(r.out, "ws\n");
  EXPECT_TRUE(Contains(r.err, "command terminated with exit code 4")) << r.err;

  std::string data(10 * 1024 * 1024, '\0');
  std::mt19937_64 rng(42);
  for (size_t i = 0; i < data.size(); i += 8) {
    uint64_t v = rng();
    memcpy(&data[i], &v, 8);
  }
  auto t0 = std::chrono::steady_clock::now();
  r = Crictl({"exec", "-i", c, "cat"}, data);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.size(), data.size());
  EXPECT_TRUE(r.out == data) << "10 MB through cat came back altered";
  std::cout << "10 MB exec -i cat round trip: " << secs << " s" << std::endl;

  r = Crictl({"exec", "-i", "--transport", "websocket", c, "cat"}, data.substr(0, 1 << 20));
  EXPECT_TRUE(r.out == data.substr(0, 1 << 20)) << "1 MB over WebSocket altered: " << r.err;
}

TEST_F(StreamingCrictlTest, ExecTtyGetsTerminalSize) {
  std::string sb = RunSandbox("tty");
  std::string c = StartContainer(sb, "main", {"sleep", "1000"});
  ASSERT_FALSE(c.empty());
  int master = -1, slave = -1;
  struct winsize ws = {};
  ws.ws_row = 33;
  ws.ws_col = 101;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, &ws), 0);
  SpawnOptions so;
  so.stdin_fd = slave;
  so.stdout_fd = slave;
  so.stderr_fd = slave;
  // The size arrives on the resize stream just after the command starts: ask until it is set.
  auto pid = Spawn(CrictlArgv({"exec", "-it", c, "sh", "-c",
                               "for i in $(seq 50); do s=$(stty size 2>/dev/null) && [ -n \"$s\" ] && "
                               "[ \"$s\" != \"0 0\" ] && "
                               "echo \"size=$s\" && break; sleep 0.1; done; tty; exit 7"}),
                   so);
  close(slave);
  ASSERT_TRUE(pid.ok()) << pid.status();
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  for (;;) {
    struct pollfd p = {master, POLLIN, 0};
    if (std::chrono::steady_clock::now() > deadline) break;
    if (poll(&p, 1, 200) > 0) {
      char buf[4096];
      ssize_t n = read(master, buf, sizeof(buf));
      if (n <= 0) break;  // EIO: crictl exited and closed the slave
      out.append(buf, n);
    }
  }
  int st = 0;
  if (!WaitFor([&] { return waitpid(*pid, &st, WNOHANG) == *pid; }, seconds(10))) {
    kill(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
    ADD_FAILURE() << "crictl exec -it did not finish; output: " << out;
  }
  close(master);
  EXPECT_TRUE(Contains(out, "size=33 101")) << out;
  EXPECT_TRUE(Contains(out, "/dev/pts/")) << out;
  EXPECT_TRUE(Contains(out, "exit code 7")) << out;
}

TEST_F(StreamingCrictlTest, AttachSeesOutputAndStdin) {
  std::string sb = RunSandbox("attach");
  std::string ticker = StartContainer(sb, "ticker", {"sh", "-c", "while true; do echo tick; sleep 0.2; done"});
  ASSERT_FALSE(ticker.empty());
  // crictl attach runs until the container exits: it is stopped by the timeout (SIGKILL, the
  // client going away mid-stream).
  auto r = berth::Run(CrictlArgv({"attach", ticker}), "", seconds(3));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_TRUE(Contains(r->out, "tick\n")) << r->out << r->err;

  std::string echo = StartContainer(sb, "echo", {"cat"}, /*stdin=*/true);
  ASSERT_FALSE(echo.empty());
  r = berth::Run(CrictlArgv({"attach", "-i", echo}), "hello attach\n", seconds(5));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Contains(r->out, "hello attach\n")) << r->out << r->err;
  // Not stdin_once: the client's stdin EOF detaches it (after a short drain), the container
  // keeps running with its stdin open.
  EXPECT_FALSE(r->timed_out) << r->out << r->err;
  EXPECT_TRUE(WaitFor([&] { return streaming_->active_sessions() == 0; }, seconds(10)));
}

// Opens a TCP connection to 127.0.0.1:port; -1 on failure.
int Dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `data`, half-closes, and returns everything read until EOF.
std::string EchoThrough(int fd, const std::string& data) {
  std::string got;
  std::thread writer([&] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += n;
    }
    shutdown(fd, SHUT_WR);
  });
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, n);
  }
  writer.join();
  close(fd);
  return got;
}

TEST_F(StreamingCrictlTest, PortForwardCarriesConcurrentConnections) {
  std::string sb = RunSandbox("pf");
  ASSERT_FALSE(sb.empty());
  // The fake network plugin does not configure loopback (CNI's loopback plugin would).
  auto up = berth::Run({"nsenter", "--net=" + dir_ + "/state/netns/" + sb, "ip", "link", "set", "lo", "up"});
  ASSERT_TRUE(up.ok() && up->exit_code == 0) << (up.ok() ? up->err : up.status().ToString());
  std::string c = StartContainer(sb, "echo", {"nc", "-ll", "-p", "8080", "-e", "cat"});
  ASSERT_FALSE(c.empty());
  std::string counter = StartContainer(sb, "count", {"nc", "-ll", "-p", "8081", "-e", "wc", "-c"});
  ASSERT_FALSE(counter.empty());

  int local_port = 20000 + getpid() % 20000;
  auto pid = Spawn(CrictlArgv({"port-forward", sb, std::to_string(local_port) + ":8080",
                               std::to_string(local_port + 1) + ":8081"}));
  ASSERT_TRUE(pid.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        int fd = Dial(local_port);
        if (fd < 0) return false;
        close(fd);
        return true;
      },
      seconds(20)))
      << "crictl port-forward did not listen on " << local_port;

  std::string block(1 << 20, '\0');
  std::mt19937_64 rng(7);
  for (char& ch : block) ch = static_cast<char>(rng());
  constexpr int kConns = 20;
  std::vector<std::string> results(kConns);
  std::vector<std::thread> threads;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kConns; ++i) {
    threads.emplace_back([&, i] {
      int fd = Dial(local_port);
      if (fd >= 0) results[i] = EchoThrough(fd, block);
    });
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int i = 0; i < kConns; ++i) {
    EXPECT_EQ(results[i].size(), block.size()) << "connection " << i;
    EXPECT_TRUE(results[i] == block) << "connection " << i << " altered";
  }
  std::cout << "port-forward: " << kConns << " x 1 MiB echoed in " << secs << " s" << std::endl;

  // 100 MiB one way; the pod answers with the byte count it received.
  int fd = Dial(local_port + 1);
  ASSERT_GE(fd, 0);
  std::string reply;
  t0 = std::chrono::steady_clock::now();
  std::thread reader([&] {
    char buf[256];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      reply.append(buf, n);
    }
  });
  bool send_ok = true;
  for (int i = 0; i < 100 && send_ok; ++i) {
    size_t off = 0;
    while (off < block.size()) {
      ssize_t n = send(fd, block.data() + off, block.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        send_ok = false;
        break;
      }
      off += n;
    }
  }
  EXPECT_TRUE(send_ok) << "sending 100 MiB failed: " << strerror(errno);
  shutdown(fd, SHUT_WR);
  reader.join();
  close(fd);
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(std::string(absl::StripAsciiWhitespace(reply)), "104857600");
  std::cout << "port-forward: 100 MiB in " << secs << " s = " << 100 / secs << " MiB/s" << std::endl;

  kill(*pid, SIGINT);
  int st = 0;
  waitpid(*pid, &st, 0);
}

TEST_F(StreamingCrictlTest, BadInputAndNoLeaks) {
  std::string sb = RunSandbox("bad");
  std::string c = StartContainer(sb, "main", {"sleep", "1000"});
  ASSERT_FALSE(c.empty());
  // Warm up gRPC and streaming paths so that their pools exist before counting.
  EXPECT_EQ(Crictl({"exec", c, "true"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return streaming_->active_sessions() == 0; }, seconds(10)));
  size_t fds0 = CountDir("/proc/self/fd");
  EXPECT_EQ(CountStreamingThreads(), 0u);

  // A replayed token: the first use consumes it (a plain GET is no upgrade: 400), the second
  // finds nothing (404).
  v1::ExecRequest ereq;
  ereq.set_container_id(c);
  ereq.add_cmd("true");
  ereq.set_stdout(true);
  auto url = rt_->Exec(ereq);
  ASSERT_TRUE(url.ok()) << url.status();
  auto first = berth::Run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url->url()});
  auto second = berth::Run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url->url()});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->out, "400");
  EXPECT_EQ(second->out, "404");
  auto bogus = berth::Run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           streaming_->base_url() + "/exec/not-a-token"});
  EXPECT_EQ(bogus->out, "404");

  // The client dies mid-stream: the exec'd process is killed, the session ends.
  auto pid = Spawn(CrictlArgv({"exec", c, "sleep", "4321"}));
  ASSERT_TRUE(pid.ok());
  auto ps_has_sleeper = [&] {
    v1::ExecSyncRequest ps;
    ps.set_container_id(c);
    ps.add_cmd("ps");
    ps.set_timeout(10);
    auto r = rt_->ExecSync(ps);
    return r.ok() && Contains(r->stdout(), "sleep 4321");
  };
  ASSERT_TRUE(WaitFor(ps_has_sleeper, seconds(20)));
  EXPECT_EQ(streaming_->active_sessions(), 1);
  EXPECT_EQ(CountStreamingThreads(), 1u);
  kill(*pid, SIGKILL);
  int st = 0;
  waitpid(*pid, &st, 0);
  EXPECT_TRUE(WaitFor([&] { return streaming_->active_sessions() == 0; }, seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return !ps_has_sleeper(); }, seconds(10))) << "exec'd process left behind";

  // Exec into a stopped container: FailedPrecondition before any URL.
  v1::StopContainerRequest stop;
  stop.set_container_id(c);
  stop.set_timeout(1);
  ASSERT_TRUE(rt_->StopContainer(stop).ok());
  auto stopped = rt_->Exec(ereq);
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kFailedPrecondition) << stopped.status();
  RunResult r = Crictl({"exec", c, "true"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "not running")) << r.err;

  EXPECT_TRUE(WaitFor([&] { return CountDir("/proc/self/fd") <= fds0; }, seconds(10)))
      << "fds: " << fds0 << " before, " << CountDir("/proc/self/fd") << " after";
  EXPECT_TRUE(WaitFor([&] { return CountStreamingThreads() == 0; }, seconds(10)))
      << CountStreamingThreads() << " streaming threads left";
}

}  // namespace
}  // namespace berth::cri::runtime
