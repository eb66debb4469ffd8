#include "kubelet/prober.h"

#include <dirent.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace berth::kubelet {
namespace {

// A runner returning scripted outcomes per probe type (Success when the script is empty).
class FakeRunner : public ProbeRunner {
 public:
  ProbeOutcome Run(const ProbeTarget& target) override {
    std::lock_guard<std::mutex> l(mu_);
    ++calls_[static_cast<int>(target.type)];
    last_ = target;
    auto& q = script_[static_cast<int>(target.type)];
    if (q.empty()) return {ProbeResult::kSuccess, "ok"};
    ProbeOutcome o = q.front();
    q.pop_front();
    return o;
  }
  void Push(ProbeType type, ProbeResult r, int times = 1) {
    std::lock_guard<std::mutex> l(mu_);
    for (int i = 0; i < times; ++i) script_[static_cast<int>(type)].push_back({r, "scripted"});
  }
  int Calls(ProbeType type) {
    std::lock_guard<std::mutex> l(mu_);
    return calls_[static_cast<int>(type)];
  }
  ProbeTarget Last() {
    std::lock_guard<std::mutex> l(mu_);
    return last_;
  }

 private:
  std::mutex mu_;
  std::deque<ProbeOutcome> script_[3];
  int calls_[3] = {0, 0, 0};
  ProbeTarget last_;
};

Json MakePod(const Json& container) {
  return {{"metadata", {{"name", "web"}, {"namespace", "default"}, {"uid", "u1"}}},
          {"spec", {{"containers", Json::array({container})}}}};
}

// The typed pod of `j`, as the pod manager parses it.
api::Pod Typed(const Json& j) {
  absl::StatusOr<api::Pod> p = api::ParsePod(j);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : api::Pod{};
}

class ProberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ProberOptions o;
    o.start_workers = false;
    o.clock = [this] { return now_; };
    o.on_change = [this](const std::string& uid) {
      std::lock_guard<std::mutex> l(mu_);
      changes_.push_back(uid);
    };
    o.record_event = [this](const Json&, const std::string& type, const std::string& reason,
                            const std::string& message, const std::string& path) {
      std::lock_guard<std::mutex> l(mu_);
      events_.push_back(type + " " + reason + " " + path + " " + message);
    };
    o.registry = &registry_;
    prober_ = std::make_unique<Prober>(&runner_, o);
  }
  void Run(const Json& pod, const std::string& id, bool running = true) {
    prober_->SyncPod(Typed(pod), "10.0.0.5", {{"c", {id, started_, running}}});
  }
  size_t Changes() {
    std::lock_guard<std::mutex> l(mu_);
    return changes_.size();
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  absl::Time started_ = absl::FromUnixSeconds(1000);
  FakeRunner runner_;
  metrics::Registry registry_;
  std::unique_ptr<Prober> prober_;
  std::mutex mu_;
  std::vector<std::string> changes_;
  std::vector<std::string> events_;
};

TEST(ProbeTimingTest, DefaultsAndValues) {
  ProbeTiming d = ProbeTimingOf(api::Probe{});
  EXPECT_EQ(d.initial_delay_seconds, 0);
  EXPECT_EQ(d.period_seconds, 10);
  EXPECT_EQ(d.timeout_seconds, 1);
  EXPECT_EQ(d.success_threshold, 1);
  EXPECT_EQ(d.failure_threshold, 3);
  EXPECT_FALSE(d.termination_grace_period_seconds.has_value());
  api::Probe p;
  p.initial_delay_seconds = 5;
  p.period_seconds = 2;
  p.timeout_seconds = -1;
  p.failure_threshold = 1;
  p.termination_grace_period_seconds = 7;
  ProbeTiming t = ProbeTimingOf(p);
  EXPECT_EQ(t.initial_delay_seconds, 5);
  EXPECT_EQ(t.period_seconds, 2);
  EXPECT_EQ(t.timeout_seconds, 1);
  EXPECT_EQ(t.failure_threshold, 1);
  EXPECT_EQ(t.termination_grace_period_seconds, 7);
}

TEST(ProbePortTest, NumbersAndNames) {
  Json c = {{"ports", {{{"name", "http"}, {"containerPort", 8080}}}}};
  EXPECT_EQ(ResolveProbePort(80, c), 80);
  EXPECT_EQ(ResolveProbePort("http", c), 8080);
  EXPECT_EQ(ResolveProbePort("81", c), 81);
  EXPECT_EQ(ResolveProbePort("grpc", c), -1);
  EXPECT_EQ(ResolveProbePort(70000, c), -1);
}

TEST_F(ProberTest, ReadinessThresholds) {
  Json pod = MakePod(
      {{"name", "c"},
       {"readinessProbe",
        {{"exec", {{"command", {"true"}}}}, {"successThreshold", 2}, {"failureThreshold", 2}}}});
  Run(pod, "id1");
  EXPECT_EQ(prober_->WorkerCount(), 1u);
  EXPECT_FALSE(prober_->Status("u1", "c", "id1").ready);  // initial: Failure
  EXPECT_TRUE(prober_->Status("u1", "c", "id1").started);
  prober_->ProbeAllForTest();  // 1 success < successThreshold 2
  EXPECT_FALSE(prober_->Status("u1", "c", "id1").ready);
  prober_->ProbeAllForTest();
  EXPECT_TRUE(prober_->Status("u1", "c", "id1").ready);
  EXPECT_EQ(Changes(), 1u);
  EXPECT_EQ(runner_.Last().container_id, "id1");
  EXPECT_EQ(runner_.Last().pod_ip, "10.0.0.5");
  runner_.Push(ProbeType::kReadiness, ProbeResult::kFailure, 2);
  prober_->ProbeAllForTest();  // 1 failure < failureThreshold 2
  EXPECT_TRUE(prober_->Status("u1", "c", "id1").ready);
  prober_->ProbeAllForTest();
  EXPECT_FALSE(prober_->Status("u1", "c", "id1").ready);
  EXPECT_EQ(Changes(), 2u);
  // Readiness failures never kill.
  EXPECT_FALSE(prober_->KillReason("u1", "c", "id1", 30).has_value());
  // Another instance starts from the initial result.
  EXPECT_FALSE(prober_->Status("u1", "c", "id2").ready);
  {
    std::lock_guard<std::mutex> l(mu_);
    ASSERT_EQ(events_.size(), 2u);
    EXPECT_EQ(events_[0], "Warning Unhealthy spec.containers{c} Readiness probe failed: scripted");
  }
  std::string text = registry_.Expose();
  EXPECT_NE(
      text.find("prober_probe_total{probe_type=\"Readiness\",result=\"successful\",container=\"c\","
                "pod=\"web\",namespace=\"default\",pod_uid=\"u1\"} 2"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          "result=\"failed\",container=\"c\",pod=\"web\",namespace=\"default\",pod_uid=\"u1\"} 2"),
      std::string::npos)
      << text;
  prober_->RemovePod("u1");
  EXPECT_EQ(prober_->WorkerCount(), 0u);
  EXPECT_EQ(registry_.Expose().find("prober_probe_total{"), std::string::npos);
}

TEST_F(ProberTest, NotRunningContainerIsNotProbed) {
  Json pod = MakePod({{"name", "c"}, {"readinessProbe", {{"exec", {{"command", {"true"}}}}}}});
  Run(pod, "id1", /*running=*/false);
  prober_->ProbeAllForTest();
  EXPECT_EQ(runner_.Calls(ProbeType::kReadiness), 0);
  prober_->SyncPod(Typed(pod), "10.0.0.5", {});  // not created yet
  prober_->ProbeAllForTest();
  EXPECT_EQ(runner_.Calls(ProbeType::kReadiness), 0);
}

TEST_F(ProberTest, InitialDelayUsesTheClock) {
  Json pod = MakePod(
      {{"name", "c"},
       {"readinessProbe", {{"exec", {{"command", {"true"}}}}, {"initialDelaySeconds", 5}}}});
  Run(pod, "id1");
  now_ = started_ + absl::Seconds(4);
  prober_->ProbeAllForTest();
  EXPECT_EQ(runner_.Calls(ProbeType::kReadiness), 0);
  EXPECT_FALSE(prober_->Status("u1", "c", "id1").ready);
  now_ = started_ + absl::Seconds(5);
  prober_->ProbeAllForTest();
  EXPECT_EQ(runner_.Calls(ProbeType::kReadiness), 1);
  EXPECT_TRUE(prober_->Status("u1", "c", "id1").ready);
}

TEST_F(ProberTest, LivenessFailureKillsAndHolds) {
  Json pod = MakePod({{"name", "c"},
                      {"livenessProbe",
                       {{"exec", {{"command", {"false"}}}},
                        {"failureThreshold", 3},
                        {"terminationGracePeriodSeconds", 4}}}});
  Run(pod, "id1");
  EXPECT_TRUE(prober_->Status("u1", "c", "id1").ready);  // no readiness probe
  runner_.Push(ProbeType::kLiveness, ProbeResult::kFailure, 3);
  prober_->ProbeAllForTest();
  prober_->ProbeAllForTest();
  EXPECT_FALSE(prober_->KillReason("u1", "c", "id1", 30).has_value());
  prober_->ProbeAllForTest();
  auto kill = prober_->KillReason("u1", "c", "id1", 30);
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->type, ProbeType::kLiveness);
  EXPECT_EQ(kill->grace_seconds, 4);
  EXPECT_EQ(Changes(), 1u);
  // On hold: no more probes of that instance.
  prober_->ProbeAllForTest();
  EXPECT_EQ(runner_.Calls(ProbeType::kLiveness), 3);
  // The restarted instance is alive again and probed.
  Run(pod, "id2");
  EXPECT_FALSE(prober_->KillReason("u1", "c", "id2", 30).has_value());
  prober_->ProbeAllForTest();
  EXPECT_EQ(runner_.Calls(ProbeType::kLiveness), 4);
  EXPECT_FALSE(prober_->KillReason("u1", "c", "id2", 30).has_value());
}

TEST_F(ProberTest, StartupGatesLivenessAndReadiness) {
  Json pod = MakePod({{"name", "c"},
                      {"startupProbe", {{"exec", {{"command", {"s"}}}}, {"failureThreshold", 2}}},
                      {"livenessProbe", {{"exec", {{"command", {"l"}}}}}},
                      {"readinessProbe", {{"exec", {{"command", {"r"}}}}}}});
  Run(pod, "id1");
  EXPECT_EQ(prober_->WorkerCount(), 3u);
  runner_.Push(ProbeType::kStartup, ProbeResult::kFailure, 1);
  prober_->ProbeAllForTest();
  EXPECT_EQ(runner_.Calls(ProbeType::kLiveness), 0);
  EXPECT_EQ(runner_.Calls(ProbeType::kReadiness), 0);
  EXPECT_FALSE(prober_->Status("u1", "c", "id1").started);
  EXPECT_FALSE(prober_->Status("u1", "c", "id1").ready);
  prober_->ProbeAllForTest();  // startup succeeds (its worker runs first or last: run twice)
  prober_->ProbeAllForTest();
  EXPECT_TRUE(prober_->Status("u1", "c", "id1").started);
  EXPECT_TRUE(prober_->Status("u1", "c", "id1").ready);
  EXPECT_GE(runner_.Calls(ProbeType::kLiveness), 1);
  int startup_calls = runner_.Calls(ProbeType::kStartup);
  prober_->ProbeAllForTest();
  EXPECT_EQ(runner_.Calls(ProbeType::kStartup), startup_calls);  // done once started

  // A new instance whose startup probe keeps failing is killed.
  Run(pod, "id2");
  EXPECT_FALSE(prober_->Status("u1", "c", "id2").started);
  runner_.Push(ProbeType::kStartup, ProbeResult::kFailure, 2);
  prober_->ProbeAllForTest();
  prober_->ProbeAllForTest();
  auto kill = prober_->KillReason("u1", "c", "id2", 30);
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->type, ProbeType::kStartup);
  EXPECT_EQ(kill->grace_seconds, 30);
}

TEST(ProberThreadsTest, OneThreadPerProbeJoinedOnRemove) {
  auto threads = [] {
    int n = 0;
    DIR* d = ::opendir("/proc/self/task");
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    return n;
  };
  FakeRunner runner;
  std::atomic<int> changes{0};
  ProberOptions o;
  o.on_change = [&](const std::string&) { ++changes; };
  int before = threads();
  {
    Prober prober(&runner, o);
    Json pod = MakePod({{"name", "c"},
                        {"readinessProbe", {{"exec", {{"command", {"r"}}}}, {"periodSeconds", 1}}},
                        {"livenessProbe", {{"exec", {{"command", {"l"}}}}, {"periodSeconds", 1}}}});
    prober.SyncPod(Typed(pod), "10.0.0.5", {{"c", {"id1", absl::Now(), true}}});
    prober.SyncPod(Typed(pod), "10.0.0.5", {{"c", {"id1", absl::Now(), true}}});  // no duplicates
    EXPECT_EQ(prober.WorkerCount(), 2u);
    EXPECT_EQ(threads(), before + 2);
    // The workers probe on their own: readiness turns Success.
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    // (on_change runs after the new result is visible: wait for both.)
    while ((!prober.Status("u1", "c", "id1").ready || changes.load() < 1) &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_TRUE(prober.Status("u1", "c", "id1").ready);
    EXPECT_GE(changes.load(), 1);
    // Removal joins promptly (the workers wait on a condition, not a sleep).
    absl::Time t0 = absl::Now();
    prober.RemovePod("u1");
    EXPECT_LT(absl::Now() - t0, absl::Milliseconds(900));
    EXPECT_EQ(prober.WorkerCount(), 0u);
    EXPECT_EQ(threads(), before);
    prober.SyncPod(Typed(pod), "10.0.0.5", {{"c", {"id1", absl::Now(), true}}});
    EXPECT_EQ(threads(), before + 2);
  }  // the destructor stops the rest
  EXPECT_EQ(threads(), before);
}

// --- handlers against local servers ---

ProbeTarget Target(const Json& probe, const Json& container = Json::object()) {
  ProbeTarget t;
  t.probe = probe;
  t.container = container;
  t.pod_ip = "127.0.0.1";
  t.timeout = absl::Seconds(1);
  return t;
}

class HttpProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/healthz", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> l(mu_);
      header_ = req.get_header_value("X-Probe");
      agent_ = req.get_header_value("User-Agent");
      res.set_content("fine", "text/plain");
    });
    server_.Get("/moved",
                [](const httplib::Request&, httplib::Response& res) { res.status = 302; });
    server_.Get("/broken",
                [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
    // agnhost's /redirect?loc=...
    server_.Get("/redirect", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 302;
      res.set_header("Location", req.get_param_value("loc"));
      res.set_content("<a href=\"" + req.get_param_value("loc") + "\">Found</a>.", "text/html");
    });
    server_.Get("/loop", [](const httplib::Request&, httplib::Response& res) {
      res.status = 302;
      res.set_header("Location", "/loop");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
  }
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::string header_, agent_;
};

TEST_F(HttpProbeTest, StatusCodesHeadersAndNamedPorts) {
  Json container = {{"ports", {{{"name", "http"}, {"containerPort", port_}}}}};
  auto ok = RunHttpGetProbe(Target({{"httpGet",
                                     {{"path", "/healthz"},
                                      {"port", "http"},
                                      {"httpHeaders", {{{"name", "X-Probe"}, {"value", "v"}}}}}}},
                                   container));
  EXPECT_EQ(ok.result, ProbeResult::kSuccess) << ok.output;
  EXPECT_EQ(ok.output, "fine");
  {
    std::lock_guard<std::mutex> l(mu_);
    EXPECT_EQ(header_, "v");
    EXPECT_EQ(agent_.rfind("kube-probe/", 0), 0u) << agent_;
  }
  EXPECT_EQ(RunHttpGetProbe(Target({{"httpGet", {{"path", "/moved"}, {"port", port_}}}})).result,
            ProbeResult::kSuccess);
  auto broken = RunHttpGetProbe(Target({{"httpGet", {{"path", "broken"}, {"port", port_}}}}));
  EXPECT_EQ(broken.result, ProbeResult::kFailure);
  EXPECT_EQ(broken.output, "HTTP probe failed with statuscode: 500");
  auto missing = RunHttpGetProbe(Target({{"httpGet", {{"path", "/nope"}, {"port", port_}}}}));
  EXPECT_EQ(missing.result, ProbeResult::kFailure);
}

// Upstream's redirect handling: followed on the same host (the target decides), a redirect
// to another host is a success with a warning, a loop fails after 10 hops.
TEST_F(HttpProbeTest, RedirectsFollowedOnTheSameHostOnly) {
  auto local_ok = RunHttpGetProbe(
      Target({{"httpGet", {{"path", "/redirect?loc=%2Fhealthz"}, {"port", port_}}}}));
  EXPECT_EQ(local_ok.result, ProbeResult::kSuccess);
  EXPECT_EQ(local_ok.output, "fine");
  EXPECT_FALSE(local_ok.warning);
  auto local_broken = RunHttpGetProbe(
      Target({{"httpGet", {{"path", "/redirect?loc=%2Fbroken"}, {"port", port_}}}}));
  EXPECT_EQ(local_broken.result, ProbeResult::kFailure);
  auto away = RunHttpGetProbe(
      Target({{"httpGet", {{"path", "/redirect?loc=http%3A%2F%2F0.0.0.0%2F"}, {"port", port_}}}}));
  EXPECT_EQ(away.result, ProbeResult::kSuccess);
  EXPECT_TRUE(away.warning);
  EXPECT_EQ(away.output,
            "Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/\">Found</a>.");
  auto loop = RunHttpGetProbe(Target({{"httpGet", {{"path", "/loop"}, {"port", port_}}}}));
  EXPECT_EQ(loop.result, ProbeResult::kFailure);
  EXPECT_NE(loop.output.find("stopped after 10 redirects"), std::string::npos) << loop.output;
}

// A port on 127.0.0.1 with nothing listening (bound and closed).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(TcpProbeTest, ConnectOrFail) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  EXPECT_EQ(RunTcpSocketProbe(Target({{"tcpSocket", {{"port", port}}}})).result,
            ProbeResult::kSuccess);
  ::close(fd);
  int closed = ClosedPort();
  auto r = RunTcpSocketProbe(Target({{"tcpSocket", {{"port", closed}}}}));
  EXPECT_EQ(r.result, ProbeResult::kFailure);
  EXPECT_NE(r.output.find("onnection refused"), std::string::npos) << r.output;
  EXPECT_EQ(RunHttpGetProbe(Target({{"httpGet", {{"port", closed}}}})).result,
            ProbeResult::kFailure);
}

TEST(GrpcProbeTest, HealthCheckService) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // A (callback) generic service gives the server a polled completion queue; the default
  // health service alone does not.
  grpc::CallbackGenericService generic;
  builder.RegisterCallbackGenericService(&generic);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  server->GetHealthCheckService()->SetServingStatus("db", false);
  EXPECT_EQ(RunGrpcProbe(Target({{"grpc", {{"port", port}}}})).result, ProbeResult::kSuccess);
  auto down = RunGrpcProbe(Target({{"grpc", {{"port", port}, {"service", "db"}}}}));
  EXPECT_EQ(down.result, ProbeResult::kFailure);
  EXPECT_NE(down.output.find("NOT_SERVING"), std::string::npos) << down.output;
  server->GetHealthCheckService()->SetServingStatus("db", true);
  EXPECT_EQ(RunGrpcProbe(Target({{"grpc", {{"port", port}, {"service", "db"}}}})).result,
            ProbeResult::kSuccess);
  server->Shutdown();
  EXPECT_EQ(RunGrpcProbe(Target({{"grpc", {{"port", ClosedPort()}}}})).result,
            ProbeResult::kFailure);
}

// ExecSync with a scripted answer.
class ExecRuntime : public cri::RuntimeService {
 public:
  absl::StatusOr<cri::v1::ExecSyncResponse> ExecSync(const cri::v1::ExecSyncRequest& req) override {
    last = req;
    if (!error.ok()) return error;
    cri::v1::ExecSyncResponse r;
    r.set_exit_code(exit_code);
    r.set_stdout("out");
    r.set_stderr("err");
    return r;
  }
  cri::v1::ExecSyncRequest last;
  int exit_code = 0;
  absl::Status error;
};

TEST(ExecProbeTest, ExitCodeAndTimeout) {
  ExecRuntime rt;
  ProbeTarget t = Target({{"exec", {{"command", {"cat", "/tmp/ready"}}}}});
  t.container_id = "cid";
  t.timeout = absl::Seconds(3);
  EXPECT_EQ(RunExecProbe(&rt, t).result, ProbeResult::kSuccess);
  EXPECT_EQ(rt.last.container_id(), "cid");
  ASSERT_EQ(rt.last.cmd_size(), 2);
  EXPECT_EQ(rt.last.cmd(1), "/tmp/ready");
  EXPECT_EQ(rt.last.timeout(), 3);
  rt.exit_code = 1;
  auto f = RunExecProbe(&rt, t);
  EXPECT_EQ(f.result, ProbeResult::kFailure);
  EXPECT_EQ(f.output, "outerr");
  rt.error = absl::DeadlineExceededError("timeout");
  EXPECT_EQ(RunExecProbe(&rt, t).result, ProbeResult::kFailure);
  rt.error = absl::InternalError("no such container");
  EXPECT_EQ(RunExecProbe(&rt, t).result, ProbeResult::kUnknown);
}

}  // namespace
}  // namespace berth::kubelet
