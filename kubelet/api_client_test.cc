// ApiClient against a local HTTPS server (cpp-httplib SSLServer on 127.0.0.1, port 0) with
// certificates made by the openssl CLI: TLS with client certificates, CA pinning, HTTP code
// mapping, PATCH content types, and watch streaming/stop.
#include "kubelet/api_client.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <mutex>
#include <thread>

#include "base/file.h"
#include "base/process.h"

namespace berth::kubelet {
namespace {

TEST(StatusFromHttpTest, MapsCodesAndMessages) {
  const std::string nf =
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"nodes \"x\" not found","reason":"NotFound","code":404})";
  absl::Status s = StatusFromHttp("GET", "/api/v1/nodes/x", 404, nf);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "GET /api/v1/nodes/x: 404 NotFound: nodes \"x\" not found");

  EXPECT_TRUE(StatusFromHttp("GET", "/p", 200, "").ok());
  EXPECT_TRUE(StatusFromHttp("POST", "/p", 201, "").ok());
  EXPECT_EQ(
      StatusFromHttp("POST", "/p", 409, R"({"kind":"Status","reason":"AlreadyExists"})").code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusFromHttp("PUT", "/p", 409, R"({"kind":"Status","reason":"Conflict"})").code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(StatusFromHttp("GET", "/p", 410, "").code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(StatusFromHttp("GET", "/p", 401, "").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusFromHttp("GET", "/p", 403, "").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusFromHttp("POST", "/p", 422, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusFromHttp("POST", "/p", 400, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusFromHttp("GET", "/p", 500, "").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromHttp("GET", "/p", 503, "").code(), absl::StatusCode::kUnavailable);
  absl::Status plain = StatusFromHttp("GET", "/p", 502, "bad gateway\n");
  EXPECT_EQ(plain.message(), "GET /p: 502 HTTP502: bad gateway");
}

void Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunOk(argv);
  ASSERT_TRUE(r.ok()) << r.status();
}

class ApiClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/api_client_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    MakeCa("ca");
    MakeCa("otherca");
    MakeCert("server", "ca", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1");
    MakeCert("client", "ca", "/O=system:nodes/CN=system:node:n1", "extendedKeyUsage=clientAuth");
    MakeCert("client2", "ca", "/O=system:nodes/CN=system:node:n2", "extendedKeyUsage=clientAuth");

    server_ = std::make_unique<httplib::SSLServer>(P("server.crt").c_str(), P("server.key").c_str(),
                                                   P("ca.crt").c_str());
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/api/v1/nodes/x", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 404;
      res.set_content(
          R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"nodes \"x\" not found","reason":"NotFound","code":404})",
          "application/json");
    });
    // The CN of the client certificate the connection presented ("" without one).
    server_->Get("/whoami", [](const httplib::Request& req, httplib::Response& res) {
      std::string cn;
      if (X509* peer = SSL_get1_peer_certificate(req.ssl)) {
        char buf[256] = {0};
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof(buf));
        cn = buf;
        X509_free(peer);
      }
      res.set_content(Json{{"cn", cn}}.dump(), "application/json");
    });
    server_->Get("/api/v1/nodes/y", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(R"({"kind":"Node","metadata":{"name":"y"}})", "application/json");
    });
    server_->Post("/api/v1/nodes", [](const httplib::Request& req, httplib::Response& res) {
      Json in = Json::parse(req.body, nullptr, false);
      Json out = {{"echo", in}, {"contentType", req.get_header_value("Content-Type")}};
      res.status = 201;
      res.set_content(out.dump(), "application/json");
    });
    server_->Patch(
        "/api/v1/nodes/y/status", [](const httplib::Request& req, httplib::Response& res) {
          res.set_content(Json{{"contentType", req.get_header_value("Content-Type")}}.dump(),
                          "application/json");
        });
    server_->Get("/api/v1/pods", [this](const httplib::Request& req, httplib::Response& res) {
      if (!req.has_param("watch")) {
        res.set_content(R"({"kind":"PodList","items":[]})", "application/json");
        return;
      }
      bool hold = req.get_param_value("resourceVersion") == "hold";
      res.set_chunked_content_provider(
          "application/json", [this, hold](size_t, httplib::DataSink& sink) {
            std::string ev1 =
                R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}})";
            std::string ev2 =
                R"({"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"6"}}})";
            // The second event arrives split across two chunks.
            std::string all = ev1 + "\n" + ev2 + "\n";
            sink.write(all.data(), 10);
            sink.write(all.data() + 10, all.size() - 10);
            if (hold) {
              while (!shutting_down_ && sink.is_writable()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
              }
            }
            sink.done();
            return true;
          });
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() before the accept loop runs would be lost, and TearDown would then hang.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_TRUE(server_->is_running());
  }

  void TearDown() override {
    shutting_down_ = true;
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    ASSERT_TRUE(RemoveAll(dir_).ok());
  }

  std::string P(const std::string& f) const { return dir_ + "/" + f; }
  void MakeCa(const std::string& name) {
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", P(name + ".key"), "-out", P(name + ".crt"), "-subj", "/CN=" + name, "-days",
             "1"});
  }
  void MakeCert(const std::string& name, const std::string& ca, const std::string& subj,
                const std::string& ext) {
    ASSERT_TRUE(WriteFileAtomic(P(name + ".ext"), ext + "\n").ok());
    Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", P(name + ".key"), "-out", P(name + ".csr"), "-subj", subj});
    Openssl({"x509", "-req", "-in", P(name + ".csr"), "-CA", P(ca + ".crt"), "-CAkey",
             P(ca + ".key"), "-CAcreateserial", "-out", P(name + ".crt"), "-days", "1", "-extfile",
             P(name + ".ext")});
  }
  Kubeconfig Config(const std::string& ca) {
    Kubeconfig kc;
    kc.server = "https://127.0.0.1:" + std::to_string(port_);
    kc.ca_pem = *ReadFile(P(ca + ".crt"));
    kc.client_cert_pem = *ReadFile(P("client.crt"));
    kc.client_key_pem = *ReadFile(P("client.key"));
    return kc;
  }

  std::shared_ptr<const ClientCertificate> LoadClientCertificate(const std::string& name) {
    auto out = std::make_shared<ClientCertificate>();
    std::string cert = *ReadFile(P(name + ".crt")), key = *ReadFile(P(name + ".key"));
    BIO* b = BIO_new_mem_buf(cert.data(), static_cast<int>(cert.size()));
    out->cert.reset(PEM_read_bio_X509(b, nullptr, nullptr, nullptr), X509_free);
    BIO_free(b);
    b = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
    out->key.reset(PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr), EVP_PKEY_free);
    BIO_free(b);
    EXPECT_TRUE(out->cert && out->key);
    return out;
  }

  std::string dir_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> shutting_down_{false};
};

TEST_F(ApiClientTlsTest, RequestsAndErrorMapping) {
  auto client = ApiClient::Create(Config("ca"));
  ASSERT_TRUE(client.ok()) << client.status();
  auto nf = (*client)->Get("/api/v1/nodes/x");
  EXPECT_EQ(nf.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(nf.status().message(), "GET /api/v1/nodes/x: 404 NotFound: nodes \"x\" not found");
  for (int i = 0; i < 3; i++) {  // reuses pooled keep-alive connections
    auto y = (*client)->Get("/api/v1/nodes/y");
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_EQ((*y)["metadata"]["name"], "y");
  }
  auto posted = (*client)->Post("/api/v1/nodes", Json{{"kind", "Node"}});
  ASSERT_TRUE(posted.ok()) << posted.status();
  EXPECT_EQ((*posted)["echo"]["kind"], "Node");
  EXPECT_EQ((*posted)["contentType"], "application/json");
  auto patched =
      (*client)->Patch("/api/v1/nodes/y/status", Json::object(), PatchType::kStrategicMerge);
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["contentType"], "application/strategic-merge-patch+json");
}

TEST_F(ApiClientTlsTest, SurvivesServerClosingKeepAliveConnections) {
  server_->set_keep_alive_max_count(1);  // the server closes each connection after one request
  auto client = ApiClient::Create(Config("ca"));
  ASSERT_TRUE(client.ok()) << client.status();
  for (int i = 0; i < 5; i++) {
    auto y = (*client)->Get("/api/v1/nodes/y");
    ASSERT_TRUE(y.ok()) << "request " << i << ": " << y.status();
  }
}

TEST_F(ApiClientTlsTest, RejectsServerSignedByAnotherCa) {
  auto client = ApiClient::Create(Config("otherca"));
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->Get("/api/v1/nodes/y");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(ApiClientTlsTest, BadClientMaterialIsInvalidArgument) {
  Kubeconfig kc = Config("ca");
  kc.client_key_pem = *ReadFile(P("otherca.key"));  // does not match client.crt
  EXPECT_EQ(ApiClient::Create(kc).status().code(), absl::StatusCode::kInvalidArgument);
  kc.ca_pem = "not a pem";
  EXPECT_EQ(ApiClient::Create(kc).status().code(), absl::StatusCode::kInvalidArgument);
  kc = Config("ca");
  kc.server = "ftp://x";
  EXPECT_EQ(ApiClient::Create(kc).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ApiClientTlsTest, WatchDecodesEventsUntilServerEndsStream) {
  auto client = ApiClient::Create(Config("ca"));
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<std::string> seen;
  std::atomic<bool> stop{false};
  absl::Status s = (*client)->Watch(
      "/api/v1/pods?resourceVersion=1",
      [&](const std::string& type, const Json& obj) {
        seen.push_back(type + ":" + obj["metadata"]["resourceVersion"].get<std::string>());
        return true;
      },
      stop);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED:5", "MODIFIED:6"}));
}

TEST_F(ApiClientTlsTest, WatchStopsPromptlyWhileServerHoldsStream) {
  auto client = ApiClient::Create(Config("ca"));
  ASSERT_TRUE(client.ok()) << client.status();
  std::atomic<bool> stop{false};
  std::atomic<int> events{0};
  std::thread stopper([&] {
    while (events.load() < 2) std::this_thread::yield();
    stop = true;
  });
  auto start = std::chrono::steady_clock::now();
  absl::Status s = (*client)->Watch(
      "/api/v1/pods?resourceVersion=hold",
      [&](const std::string&, const Json&) {
        events++;
        return true;
      },
      stop);
  stopper.join();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(events.load(), 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// Client certificate rotation: requests after the source changes present the new
// certificate (the pooled keep-alive connection made with the old one is dropped), and a
// running watch ends so that the caller re-watches with it.
TEST_F(ApiClientTlsTest, RotatedClientCertificateIsUsedByNewRequestsAndEndsWatches) {
  std::mutex mu;
  std::shared_ptr<const ClientCertificate> current = LoadClientCertificate("client");
  ApiClientOptions opts;
  opts.client_certificate = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return current;
  };
  Kubeconfig kc = Config("ca");
  kc.client_cert_pem.clear();
  kc.client_key_pem.clear();
  auto client = ApiClient::Create(kc, opts);
  ASSERT_TRUE(client.ok()) << client.status();
  auto who = [&] {
    absl::StatusOr<Json> r = (*client)->Get("/whoami");
    return r.ok() ? r->value("cn", "?") : r.status().ToString();
  };
  EXPECT_EQ(who(), "system:node:n1");
  EXPECT_EQ(who(), "system:node:n1");  // the pooled connection

  std::atomic<bool> stop{false};
  std::atomic<int> events{0};
  absl::Status watch_status = absl::UnknownError("not run");
  std::thread watcher([&] {
    watch_status = (*client)->Watch(
        "/api/v1/pods?resourceVersion=hold",
        [&](const std::string&, const Json&) {
          events++;
          return true;
        },
        stop);
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (events.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(events.load(), 2);
  auto rotated_at = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    current = LoadClientCertificate("client2");
  }
  watcher.join();  // ends on its own: `stop` is never set
  EXPECT_TRUE(watch_status.ok()) << watch_status;
  EXPECT_LT(std::chrono::steady_clock::now() - rotated_at, std::chrono::seconds(5));
  EXPECT_EQ(who(), "system:node:n2");

  // No certificate at all (expired, not yet bootstrapped): requests go without one, which
  // this server (it requires client certificates) refuses in the handshake.
  {
    std::lock_guard<std::mutex> lock(mu);
    current = nullptr;
  }
  EXPECT_FALSE((*client)->Get("/whoami").ok());
}

TEST_F(ApiClientTlsTest, WatchHttpErrorIsMapped) {
  auto client = ApiClient::Create(Config("ca"));
  ASSERT_TRUE(client.ok()) << client.status();
  std::atomic<bool> stop{false};
  absl::Status s = (*client)->Watch(
      "/api/v1/nodes/x", [](const std::string&, const Json&) { return true; }, stop);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("nodes \"x\" not found"), std::string::npos) << s;
}

}  // namespace
}  // namespace berth::kubelet
