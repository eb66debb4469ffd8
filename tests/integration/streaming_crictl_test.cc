// Root-only: upstream crictl (built by tests/cluster) drives `exec`, `exec -it`, `attach`
// and `port-forward` through berth's CRI gRPC server and streaming server (and port-forward
// over WebSocket with python3-websocket), backed by the
// real runtime (berth-pause, conmon, runc; a busybox rootfs built here; fake image resolver
// and network plugin). Checks data integrity (10 MB through cat, 20 concurrent forwarded
// connections), exit codes, TTY size, bad tokens, and that a client closing mid-stream
// leaves no process, descriptor or thread behind.
#include "cri/runtime/runtime.h"  // before <signal.h>: CRI Signal enum vs SIG* macros
#include "cri/streaming/server.h"

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
#include "cri/store/db.h"
#include "gtest/gtest.h"
#include "tests/integration/crictl_fixture.h"

namespace berth::cri::runtime {
namespace {
namespace v1 = ::runtime::v1;
namespace fs = std::filesystem;
using std::chrono::seconds;

bool Contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

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

class StreamingCrictlTest : public CrictlFixture {
 protected:
  void SetUp() override {
    SetUpCrictl("st", {"sh", "sleep", "echo", "cat", "true", "stty", "tty", "nc", "ps", "grep",
                       "head", "wc", "seq"});
    if (HasFatalFailure()) return;
    streaming_ = std::make_unique<streaming::Server>(rt_.get(), streaming::ServerOptions{});
    ASSERT_TRUE(streaming_->Start().ok());
    rt_->SetStreamingServer(streaming_.get());
    StartCriServer();
  }

  void TearDown() override {
    cri_.reset();
    if (rt_) rt_->SetStreamingServer(nullptr);
    streaming_.reset();
    TearDownCrictl();
  }

  std::string StartContainer(const std::string& sb, const std::string& name,
                             std::vector<std::string> cmd, bool stdin = false, bool tty = false) {
    v1::CreateContainerRequest req = ContainerRequest(sb, name, cmd);
    auto* c = req.mutable_config();
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

  std::unique_ptr<streaming::Server> streaming_;
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
    lat.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
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

// The exec'd command runs as the container's own process (its `sleep`; pid 1 is the pause
// process of the pod's PID namespace) does: same user and
// groups, capability sets, no_new_privs, seccomp mode, cgroups, namespaces and
// oom_score_adj; the container's env and working directory ("locked": the native exec
// path). "confined" (a seccomp filter) takes the runc exec fallback, which applies the
// filter; its shell can fork (RuntimeDefault refuses only namespace-creating clones).
TEST_F(StreamingCrictlTest, ExecRunsAsTheContainersProcess) {
  auto start = [&](const std::string& name, bool seccomp) {
    // A pod each: one `sleep` per PID namespace.
    v1::CreateContainerRequest req = ContainerRequest(RunSandbox(name), name, {"sleep", "1000"});
    auto* c = req.mutable_config();
    auto* sc = c->mutable_linux()->mutable_security_context();
    if (seccomp) {
      sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
    } else {
      sc->mutable_run_as_user()->set_value(1000);
      sc->mutable_run_as_group()->set_value(3000);
      sc->add_supplemental_groups(4000);
      sc->set_no_new_privs(true);
      sc->mutable_capabilities()->add_drop_capabilities("ALL");
      sc->mutable_capabilities()->add_add_capabilities("CHOWN");
      sc->mutable_capabilities()->add_add_capabilities("NET_BIND_SERVICE");
      c->set_working_dir("/tmp");
      auto* env = c->add_envs();
      env->set_key("FOO");
      env->set_value("bar");
    }
    auto r = rt_->CreateContainer(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return std::string();
    v1::StartContainerRequest st;
    st.set_container_id(r->container_id());
    EXPECT_TRUE(rt_->StartContainer(st).ok());
    return r->container_id();
  };
  auto facts = [&](const std::string& c, std::string pid) {
    if (pid != "self") pid = "$(pidof sleep)";
    RunResult r =
        Crictl({"exec", c, "sh", "-c",
                "grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/" +
                    pid + "/status; cat /proc/" + pid + "/cgroup /proc/" + pid +
                    "/oom_score_adj; for n in ipc uts net pid mnt cgroup user; do readlink /proc/" +
                    pid + "/ns/$n; done"});
    EXPECT_EQ(r.exit_code, 0) << c << ": " << r.err;
    return r.out;
  };
  std::string locked = start("locked", false);
  std::string confined = start("confined", true);
  ASSERT_FALSE(locked.empty());
  ASSERT_FALSE(confined.empty());
  for (const auto& c : {locked, confined}) {
    std::string self = facts(c, "self");
    EXPECT_TRUE(Contains(self, "Uid:")) << self;
    EXPECT_EQ(self, facts(c, "init")) << c;
  }
  RunResult r =
      Crictl({"exec", locked, "sh", "-c",
              "id -u; id -G; pwd; echo $FOO; grep -E 'NoNewPrivs|Seccomp:' /proc/self/status"});
  EXPECT_EQ(r.out, "1000\n3000 4000\n/tmp\nbar\nNoNewPrivs:\t1\nSeccomp:\t0\n") << r.err;
  r = Crictl({"exec", confined, "sh", "-c", "grep Seccomp: /proc/self/status; echo forked"});
  EXPECT_EQ(r.out, "Seccomp:\t2\nforked\n") << r.err;
  r = Crictl({"exec", locked, "no-such-command"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "exec: \"no-such-command\": executable file not found in $PATH"))
      << r.err;
  EXPECT_TRUE(Contains(r.err, "command terminated with exit code 255")) << r.err;
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
  auto pid =
      Spawn(CrictlArgv({"exec", "-it", c, "sh", "-c",
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
  std::string ticker =
      StartContainer(sb, "ticker", {"sh", "-c", "while true; do echo tick; sleep 0.2; done"});
  ASSERT_FALSE(ticker.empty());
  // crictl attach runs until the container exits: it is stopped by the timeout (SIGKILL, the
  // client going away mid-stream).
  auto r = berth::Run(CrictlArgv({"attach", ticker}), "", seconds(3));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_TRUE(Contains(r->out, "tick\n")) << r->out << r->err;

  std::string echo = StartContainer(sb, "echo", {"cat"}, /*stdin=*/true);
  ASSERT_FALSE(echo.empty());
  // The session ends by itself once the client's stdin ended and the answer went out (as
  // containerd's), and the container's stdin stays open (not stdin_once): a second attach
  // is answered too.
  r = berth::Run(CrictlArgv({"attach", "-i", echo}), "hello attach\n", seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->timed_out) << "crictl attach -i did not end after stdin EOF";
  EXPECT_TRUE(Contains(r->out, "hello attach\n")) << r->out << r->err;
  r = berth::Run(CrictlArgv({"attach", "-i", echo}), "second attach\n", seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->timed_out);
  EXPECT_TRUE(Contains(r->out, "second attach\n")) << r->out << r->err;
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
  auto up = berth::Run(
      {"nsenter", "--net=" + dir_ + "/state/netns/" + sb, "ip", "link", "set", "lo", "up"});
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
  std::cout << "port-forward: 100 MiB in " << secs << " s = " << 100 / secs << " MiB/s"
            << std::endl;

  kill(*pid, SIGINT);
  int st = 0;
  waitpid(*pid, &st, 0);
}

// Port-forward over WebSocket (v4.portforward.k8s.io), which crictl and the API server do
// not use (the API server speaks SPDY to the kubelet), driven by a real WebSocket client
// (Debian's python3-websocket): the URL of the CRI PortForward RPC with ?port=, the initial
// port message on the data and error channels, 4 MiB echoed intact through channel 0, and
// the error channel naming a port nothing listens on.
TEST_F(StreamingCrictlTest, PortForwardOverWebSocket) {
  const std::string python = "/usr/bin/python3";
  auto probe = berth::Run({python, "-c", "import websocket"});
  ASSERT_TRUE(probe.ok() && probe->exit_code == 0)
      << "needs Debian's python3-websocket for " << python << " (deploy/setup.sh)";
  std::string sb = RunSandbox("wspf");
  ASSERT_FALSE(sb.empty());
  auto up = berth::Run(
      {"nsenter", "--net=" + dir_ + "/state/netns/" + sb, "ip", "link", "set", "lo", "up"});
  ASSERT_TRUE(up.ok() && up->exit_code == 0) << (up.ok() ? up->err : up.status().ToString());
  ASSERT_FALSE(StartContainer(sb, "echo", {"nc", "-ll", "-p", "8080", "-e", "cat"}).empty());

  const std::string script = dir_ + "/wspf.py";
  ASSERT_TRUE(WriteFileAtomic(script, R"PY(
import hashlib, json, os, sys, threading, websocket
url, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ws = websocket.create_connection(url + "?port=%d" % port, subprotocols=["v4.portforward.k8s.io"], timeout=30)
out = {"protocol": ws.getsubprotocol(), "initial": [], "error": ""}
for _ in range(2):  # channel 0 (data) and 1 (error) first carry the port, little-endian
    op, m = ws.recv_data()
    out["initial"].append([m[0], int.from_bytes(m[1:3], "little")])
data = os.urandom(size)
def send():
    for i in range(0, size, 32768):
        ws.send_binary(b"\x00" + data[i:i + 32768])
if size:
    threading.Thread(target=send, daemon=True).start()
got = bytearray()
while len(got) < size:
    op, m = ws.recv_data()
    if op == websocket.ABNF.OPCODE_CLOSE or not m:
        break
    if m[0] == 0:
        got += m[1:]
    elif m[0] == 1:
        out["error"] += m[1:].decode()
if not size:  # read the error channel until the server closes
    try:
        while True:
            op, m = ws.recv_data()
            if op == websocket.ABNF.OPCODE_CLOSE or not m:
                break
            if m[0] == 1:
                out["error"] += m[1:].decode()
    except Exception:
        pass
out["echoed"] = len(got)
out["intact"] = bytes(got) == data
ws.close()
print(json.dumps(out))
)PY")
                  .ok());
  auto forward = [&](int32_t port, int size) -> std::string {
    v1::PortForwardRequest req;
    req.set_pod_sandbox_id(sb);
    req.add_port(port);
    auto resp = rt_->PortForward(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    if (!resp.ok()) return "";
    std::string url = resp->url();
    EXPECT_EQ(url.rfind("http://", 0), 0u) << url;
    url.replace(0, 4, "ws");
    auto r = berth::Run({python, script, url, std::to_string(port), std::to_string(size)}, "",
                        seconds(60));
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->out + r->err : r.status().ToString());
    return r.ok() ? r->out : "";
  };

  std::string ok = forward(8080, 4 << 20);
  std::cout << "websocket port-forward 8080: " << ok;
  EXPECT_TRUE(Contains(ok, R"("protocol": "v4.portforward.k8s.io")")) << ok;
  EXPECT_TRUE(Contains(ok, R"("initial": [[0, 8080], [1, 8080]])")) << ok;
  EXPECT_TRUE(Contains(ok, R"("echoed": 4194304, "intact": true)")) << ok;
  EXPECT_TRUE(Contains(ok, R"("error": "")")) << ok;

  std::string refused = forward(8089, 0);
  std::cout << "websocket port-forward 8089: " << refused;
  EXPECT_TRUE(Contains(refused, R"("initial": [[0, 8089], [1, 8089]])")) << refused;
  EXPECT_TRUE(Contains(refused, "error forwarding port 8089 to pod " + sb)) << refused;
  EXPECT_TRUE(WaitFor([&] { return streaming_->active_sessions() == 0; }, seconds(10)));
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
  EXPECT_TRUE(WaitFor([&] { return !ps_has_sleeper(); }, seconds(10)))
      << "exec'd process left behind";

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
