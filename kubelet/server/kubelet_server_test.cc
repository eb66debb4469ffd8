// The kubelet server over real TLS on loopback: authentication (bearer tokens through a fake
// API client's TokenReview), authorization (SubjectAccessReview), handlers, /containerLogs
// from a CRI log file, and the exec/port-forward proxy against a small local upgrade-echo
// server standing in for the runtime's streaming server.
#include "kubelet/server/kubelet_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cri/testing/fake_cri.h"
#include "kubelet/certificate/x509.h"
#include "kubelet/server/tls.h"
#include "kubelet/testing/fake_api_client.h"
#include "nlohmann/json.hpp"

namespace berth::kubelet::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
namespace v1 = ::runtime::v1;

// One pod "web" in namespace "ns" (sandbox "sb1") with a running container "main" ("c1",
// log file `log_path`) and its exited predecessor ("c0", `log_path` + ".old"); Exec and
// PortForward return URLs of `stream_url`; CheckpointContainer writes a stand-in archive.
class FakeRuntime : public cri::testing::FakeRuntimeService {
 public:
  std::string log_path;
  std::string stream_url;  // what Exec/PortForward return
  v1::ExecRequest last_exec;
  v1::CheckpointContainerRequest last_checkpoint;

  FakeRuntime() {
    Sandbox sb;
    (*sb.config.mutable_labels())["io.kubernetes.pod.name"] = "web";
    (*sb.config.mutable_labels())["io.kubernetes.pod.namespace"] = "ns";
    AddSandbox("sb1", sb);
    Container c;
    c.sandbox_id = "sb1";
    *c.config.mutable_labels() = sb.config.labels();
    (*c.config.mutable_labels())["io.kubernetes.container.name"] = "main";
    c.state = v1::CONTAINER_EXITED;
    AddContainer("c0", c);
    c.state = v1::CONTAINER_RUNNING;
    c.config.mutable_metadata()->set_attempt(1);
    AddContainer("c1", c);
    // The log paths are known only once the test has its directory.
    OnContainerStatus(
        [this](const v1::ContainerStatusRequest& r) -> absl::StatusOr<v1::ContainerStatusResponse> {
          v1::ContainerStatusResponse resp;
          resp.mutable_status()->set_id(r.container_id());
          resp.mutable_status()->set_log_path(r.container_id() == "c1" ? log_path
                                                                       : log_path + ".old");
          resp.mutable_status()->set_state(r.container_id() == "c1" ? v1::CONTAINER_RUNNING
                                                                    : v1::CONTAINER_EXITED);
          return resp;
        });
    OnExec([this](const v1::ExecRequest& r) -> absl::StatusOr<v1::ExecResponse> {
      last_exec = r;
      v1::ExecResponse resp;
      resp.set_url(stream_url + "/exec/tok123");
      return resp;
    });
    // Writes a stand-in archive at the location; timeout 99 plays a runtime refusal.
    OnCheckpointContainer([this](const v1::CheckpointContainerRequest& r)
                              -> absl::StatusOr<v1::CheckpointContainerResponse> {
      last_checkpoint = r;
      if (r.timeout() == 99) return absl::FailedPreconditionError("container c1 is not running");
      std::ofstream(r.location()) << "tar";
      return v1::CheckpointContainerResponse();
    });
    OnPortForward(
        [this](const v1::PortForwardRequest& r) -> absl::StatusOr<v1::PortForwardResponse> {
          if (r.pod_sandbox_id() != "sb1") return absl::NotFoundError("no sandbox");
          v1::PortForwardResponse resp;
          resp.set_url(stream_url + "/portforward/tok456");
          return resp;
        });
  }
};

// Accepts connections on loopback; answers each upgrade request with 101 and echoes what
// follows until the client closes. Records the request targets.
class UpgradeEchoServer {
 public:
  UpgradeEchoServer() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] {
      for (;;) {
        beast::error_code ec;
        tcp::socket s(ioc_);
        acceptor_.accept(s, ec);
        if (ec) return;
        beast::flat_buffer buf;
        http::request<http::string_body> req;
        http::read(s, buf, req, ec);
        if (ec) continue;
        {
          std::lock_guard<std::mutex> l(mu_);
          targets_.push_back(std::string(req.target()));
          upgrades_.push_back(std::string(req[http::field::upgrade]));
        }
        if (req.target().starts_with("/exec/refused")) {
          http::response<http::string_body> res{http::status::not_found, 11};
          res.body() = "token expired";
          res.prepare_payload();
          http::write(s, res, ec);
          continue;
        }
        http::response<http::empty_body> res{http::status::switching_protocols, 11};
        res.set(http::field::connection, "Upgrade");
        res.set(http::field::upgrade, req[http::field::upgrade]);
        http::write(s, res, ec);
        // Greeting right after the header: must reach the client in order.
        asio::write(s, asio::buffer(std::string("hello|")), ec);
        char data[65536];
        for (;;) {
          size_t n = s.read_some(asio::buffer(data), ec);
          if (ec) break;
          asio::write(s, asio::buffer(data, n), ec);
          if (ec) break;
        }
      }
    });
  }
  ~UpgradeEchoServer() {
    // shutdown(2) wakes the thread blocked in accept(2); close() alone would not.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
    beast::error_code ec;
    acceptor_.close(ec);
  }
  std::string url() const {
    return absl::StrCat("http://127.0.0.1:", acceptor_.local_endpoint().port());
  }
  std::vector<std::string> targets() {
    std::lock_guard<std::mutex> l(mu_);
    return targets_;
  }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> targets_;
  std::vector<std::string> upgrades_;
};

class KubeletServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("kubelet_server_test_", getpid());
    std::filesystem::create_directories(dir_);
    cert_ = (dir_ / "pki/kubelet.crt").string();
    key_ = (dir_ / "pki/kubelet.key").string();
    ASSERT_TRUE(EnsureSelfSignedCert(cert_, key_, "testhost", {"10.0.0.1"}).ok());
    runtime_.log_path = (dir_ / "0.log").string();
    runtime_.stream_url = echo_.url();
    api_.OnPost(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        [](const Json& body) -> absl::StatusOr<Json> {
          std::string token = body["spec"]["token"];
          if (token != "admin" && token != "nobody") {
            return Json{{"status", {{"authenticated", false}}}};
          }
          return Json{{"status", {{"authenticated", true}, {"user", {{"username", token}}}}}};
        });
    api_.OnPost("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                [](const Json& body) -> absl::StatusOr<Json> {
                  return Json{{"status", {{"allowed", body["spec"]["user"] == "admin"}}}};
                });
    auth_ = std::make_unique<Auth>(&api_, AuthOptions{.token_webhook = true});
    KubeletServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.tls_cert_file = cert_;
    o.tls_private_key_file = key_;
    o.node_name = "node1";
    o.checkpoints_dir = (dir_ / "checkpoints").string();
    server_ = std::make_unique<KubeletServer>(o, &runtime_, auth_.get());
    server_->AddHandler(
        "/metrics", [] { return std::string("up 1\n"); }, "text/plain");
    server_->AddHandler(
        "/stats/summary",
        []() -> absl::StatusOr<std::string> { return absl::UnavailableError("no stats"); },
        "application/json");
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    server_->Stop();
    EXPECT_EQ(server_->active_connections(), 0);
    std::filesystem::remove_all(dir_);
  }

  // A TLS connection to the server (no server verification: self-signed).
  struct Client {
    asio::io_context ioc;
    ssl::context ctx{ssl::context::tls_client};
    std::unique_ptr<beast::ssl_stream<tcp::socket>> s;
    explicit Client(int port) {
      ctx.set_verify_mode(ssl::verify_none);
      s = std::make_unique<beast::ssl_stream<tcp::socket>>(ioc, ctx);
      s->next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
      s->handshake(ssl::stream_base::client);
    }
  };

  http::response<http::string_body> Do(const std::string& target, const std::string& token,
                                       http::verb verb = http::verb::get) {
    Client c(server_->port());
    http::request<http::empty_body> req{verb, target, 11};
    req.set(http::field::host, "node1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    http::write(*c.s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(*c.s, buf, res, ec);
    EXPECT_FALSE(ec) << ec.message();
    return res;
  }

  void WaitNoConnections() {
    for (int i = 0; i < 500 && server_->active_connections() != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(server_->active_connections(), 0);
  }

  std::filesystem::path dir_;
  std::string cert_, key_;
  FakeRuntime runtime_;
  UpgradeEchoServer echo_;
  testing::FakeApiClient api_;
  std::unique_ptr<Auth> auth_;
  std::unique_ptr<KubeletServer> server_;
};

TEST_F(KubeletServerTest, AuthenticationAndAuthorization) {
  EXPECT_EQ(Do("/healthz", "").result_int(), 401);
  EXPECT_EQ(Do("/healthz", "").body(), "Unauthorized");
  EXPECT_EQ(Do("/healthz", "forged").result_int(), 401);
  auto forbidden = Do("/metrics", "nobody");
  EXPECT_EQ(forbidden.result_int(), 403);
  EXPECT_EQ(forbidden.body(),
            "Forbidden (user=nobody, verb=get, resource=nodes, subresource(s)=[metrics])\n");
  auto ok = Do("/healthz", "admin");
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_EQ(ok.body(), "ok");
  EXPECT_EQ(Do("/metrics", "admin").body(), "up 1\n");
  EXPECT_EQ(Do("/stats/summary", "admin").result_int(), 500);
  EXPECT_EQ(Do("/nothing/here", "admin").result_int(), 404);
  WaitNoConnections();
}

TEST_F(KubeletServerTest, SelfSignedCertificateIsKept) {
  std::ifstream f(cert_);
  std::string before((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(EnsureSelfSignedCert(cert_, key_, "testhost", {}).ok());
  std::ifstream g(cert_);
  std::string after((std::istreambuf_iterator<char>(g)), std::istreambuf_iterator<char>());
  EXPECT_EQ(before, after);
  EXPECT_EQ(std::filesystem::status(key_).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
}

// serverTLSBootstrap: each handshake presents the certificate manager's current pair, and
// the files' (self-signed) one while it has none.
TEST_F(KubeletServerTest, RotatingServingCertificate) {
  std::string rcert = (dir_ / "rotated/kubelet.crt").string();
  std::string rkey = (dir_ / "rotated/kubelet.key").string();
  ASSERT_TRUE(EnsureSelfSignedCert(rcert, rkey, "rotated", {}).ok());
  auto pair = certificate::LoadKeyPair(rcert, rkey);
  ASSERT_TRUE(pair.ok()) << pair.status();
  std::mutex mu;
  std::shared_ptr<const certificate::KeyPair> current;
  KubeletServerOptions o;
  o.address = "127.0.0.1";
  o.port = 0;
  o.tls_cert_file = cert_;
  o.tls_private_key_file = key_;
  o.node_name = "node1";
  o.serving_certificate = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return current;
  };
  KubeletServer server(o, &runtime_, auth_.get());
  ASSERT_TRUE(server.Start().ok());
  auto served_cn = [&] {
    Client c(server.port());
    X509* peer = SSL_get1_peer_certificate(c.s->native_handle());
    if (peer == nullptr) return std::string();
    char buf[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof(buf));
    X509_free(peer);
    beast::error_code ec;
    c.s->shutdown(ec);
    return std::string(buf);
  };
  EXPECT_TRUE(absl::StartsWith(served_cn(), "testhost@")) << served_cn();
  {
    std::lock_guard<std::mutex> lock(mu);
    current = *pair;
  }
  EXPECT_TRUE(absl::StartsWith(served_cn(), "rotated@")) << served_cn();
  server.Stop();
}

TEST_F(KubeletServerTest, ContainerLogs) {
  {
    std::ofstream f(runtime_.log_path);
    f << "2026-01-01T10:00:00Z stdout F one\n2026-01-01T10:00:01Z stderr F two\n";
    std::ofstream g(runtime_.log_path + ".old");
    g << "2026-01-01T09:00:00Z stdout F before restart\n";
  }
  auto all = Do("/containerLogs/ns/web/main", "admin");
  EXPECT_EQ(all.result_int(), 200);
  EXPECT_EQ(all.body(), "one\ntwo\n");
  EXPECT_EQ(Do("/containerLogs/ns/web/main?tailLines=1&timestamps=true", "admin").body(),
            "2026-01-01T10:00:01Z two\n");
  EXPECT_EQ(Do("/containerLogs/ns/web/main?previous=true", "admin").body(), "before restart\n");
  EXPECT_EQ(Do("/containerLogs/ns/web/main?tailLines=x", "admin").result_int(), 400);
  EXPECT_EQ(Do("/containerLogs/ns/nopod/main", "admin").result_int(), 404);
  EXPECT_EQ(Do("/containerLogs/ns/web/main", "nobody").result_int(), 403);
  WaitNoConnections();
}

TEST_F(KubeletServerTest, ExecIsProxiedToTheStreamingServer) {
  Client c(server_->port());
  http::request<http::empty_body> req{
      http::verb::post,
      "/exec/ns/web/main?command=sh&command=-c&command=echo%20hi&input=1&output=1", 11};
  req.set(http::field::host, "node1");
  req.set(http::field::authorization, "Bearer admin");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "SPDY/3.1");
  req.set("X-Stream-Protocol-Version", "v5.channel.k8s.io");
  http::write(*c.s, req);
  beast::flat_buffer buf;
  http::response_parser<http::empty_body> p;
  http::read_header(*c.s, buf, p);
  EXPECT_EQ(p.get().result_int(), 101);
  EXPECT_EQ(p.get()[http::field::upgrade], "SPDY/3.1");
  EXPECT_EQ(runtime_.last_exec.container_id(), "c1");
  ASSERT_EQ(runtime_.last_exec.cmd_size(), 3);
  EXPECT_EQ(runtime_.last_exec.cmd(2), "echo hi");
  EXPECT_TRUE(runtime_.last_exec.stdin());
  EXPECT_FALSE(runtime_.last_exec.stderr());
  // 1 MB through the tunnel and back.
  std::string payload(1 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + i / 4096);
  std::string got(static_cast<const char*>(buf.data().data()), buf.size());
  // One thread: an SSL stream must not be read and written concurrently. Each 64 KiB sent
  // is read back before the next is sent.
  std::string want = "hello|" + payload;
  char chunk[65536];
  for (size_t off = 0; off < payload.size(); off += sizeof(chunk)) {
    asio::write(*c.s, asio::buffer(payload.data() + off, sizeof(chunk)));
    while (got.size() < 6 + off + sizeof(chunk)) {
      beast::error_code rec;
      size_t n = c.s->read_some(asio::buffer(chunk), rec);
      ASSERT_FALSE(rec) << rec.message() << " after " << got.size() << " bytes";
      got.append(chunk, n);
    }
  }
  EXPECT_TRUE(got == want) << "tunnel corrupted the stream (" << got.size() << " bytes)";
  EXPECT_EQ(echo_.targets().back(), "/exec/tok123");
  EXPECT_EQ(server_->active_connections(), 1);
  // The client closes: the tunnel ends and the connection's thread goes away.
  beast::error_code ec;
  c.s->next_layer().shutdown(tcp::socket::shutdown_both, ec);
  c.s->next_layer().close(ec);
  WaitNoConnections();
}

TEST_F(KubeletServerTest, PortForwardAndErrors) {
  {
    Client c(server_->port());
    http::request<http::empty_body> req{http::verb::post, "/portForward/ns/web", 11};
    req.set(http::field::authorization, "Bearer admin");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
    http::write(*c.s, req);
    beast::flat_buffer buf;
    http::response_parser<http::empty_body> p;
    http::read_header(*c.s, buf, p);
    EXPECT_EQ(p.get().result_int(), 101);
    EXPECT_EQ(echo_.targets().back(), "/portforward/tok456");
  }
  // Not an upgrade request; unknown pod; container not running; bad stream options.
  EXPECT_EQ(Do("/portForward/ns/web", "admin", http::verb::post).result_int(), 400);
  EXPECT_EQ(Do("/portForward/ns/other", "admin", http::verb::post).result_int(), 404);
  EXPECT_EQ(
      Do("/exec/ns/web/sidecar?command=true&output=1", "admin", http::verb::post).result_int(),
      404);
  EXPECT_EQ(Do("/exec/ns/web/main?command=true", "admin", http::verb::post).result_int(), 400);
  EXPECT_EQ(Do("/exec/ns/web/main?command=true&output=1", "nobody", http::verb::post).result_int(),
            403);
  // The streaming server refuses the token: its answer is relayed.
  {
    Client c(server_->port());
    FakeRuntime& rt = runtime_;
    std::string saved = rt.stream_url;
    rt.stream_url = echo_.url() + "/exec/refused?";
    http::request<http::empty_body> req{http::verb::post, "/exec/ns/web/main?command=true&output=1",
                                        11};
    req.set(http::field::authorization, "Bearer admin");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "SPDY/3.1");
    http::write(*c.s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(*c.s, buf, res);
    rt.stream_url = saved;
    EXPECT_EQ(res.result_int(), 404);
    EXPECT_EQ(res.body(), "token expired");
  }
  WaitNoConnections();
}

TEST_F(KubeletServerTest, CheckpointWritesUnderCheckpointsDir) {
  auto res = Do("/checkpoint/ns/web/main?timeout=3&timeout=7", "admin", http::verb::post);
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(res[http::field::content_type], "application/json");
  auto body = nlohmann::json::parse(res.body(), nullptr, false);
  ASSERT_TRUE(body.is_object()) << res.body();
  ASSERT_EQ(body["items"].size(), 1u);
  std::string path = body["items"][0];
  std::string prefix = (dir_ / "checkpoints/checkpoint-web_ns-main-").string();
  EXPECT_EQ(path.rfind(prefix, 0), 0u) << path;
  // checkpoint-<pod>_<ns>-<container>-<RFC3339>.tar, e.g. ...-2026-11-21T20:15:00Z.tar
  EXPECT_EQ(path.size(), prefix.size() + std::string("2026-11-21T20:15:00Z.tar").size()) << path;
  EXPECT_TRUE(path.ends_with("Z.tar")) << path;
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(
      std::filesystem::status(dir_ / "checkpoints").permissions() & std::filesystem::perms::all,
      std::filesystem::perms::owner_all);
  EXPECT_EQ(runtime_.last_checkpoint.container_id(), "c1");  // the running one
  EXPECT_EQ(runtime_.last_checkpoint.timeout(), 7);          // the last value counts
  EXPECT_EQ(runtime_.last_checkpoint.location(), path);

  EXPECT_EQ(Do("/checkpoint/ns/web/main", "admin").result_int(), 404);  // GET
  auto forbidden = Do("/checkpoint/ns/web/main", "nobody", http::verb::post);
  EXPECT_EQ(forbidden.result_int(), 403);
  EXPECT_EQ(forbidden.body(),
            "Forbidden (user=nobody, verb=create, resource=nodes, subresource(s)=[checkpoint])\n");
  auto nopod = Do("/checkpoint/ns/nopod/main", "admin", http::verb::post);
  EXPECT_EQ(nopod.result_int(), 404);
  EXPECT_EQ(nopod.body(), "pod does not exist");
  auto nocontainer = Do("/checkpoint/ns/web/other", "admin", http::verb::post);
  EXPECT_EQ(nocontainer.result_int(), 404);
  EXPECT_EQ(nocontainer.body(), "container other does not exist");
  EXPECT_EQ(Do("/checkpoint/ns/web/main?timeout=soon", "admin", http::verb::post).result_int(),
            404);
  auto refused = Do("/checkpoint/ns/web/main?timeout=99", "admin", http::verb::post);
  EXPECT_EQ(refused.result_int(), 500);
  EXPECT_EQ(refused.body(), "checkpointing of ns/web/main failed (container c1 is not running)");
  WaitNoConnections();
}

}  // namespace
}  // namespace berth::kubelet::server
