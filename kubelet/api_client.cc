#include "kubelet/api_client.h"

#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/url.h"

#include <signal.h>

namespace berth::kubelet {
namespace {

// Used as the CA directory of clients that trust only the kubeconfig's CA: without a file or
// directory, cpp-httplib would add the system's default roots to the store we give it. The
// directory need not exist (OpenSSL's by-dir lookup only records the path).
constexpr char kNoSystemCaDir[] = "/nonexistent/berth-no-system-ca";

std::string ReasonPhrase(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return absl::StrCat("HTTP", code);
  }
}

const char* ContentType(PatchType t) {
  switch (t) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kJson:
      return "application/json-patch+json";
  }
  return "application/json";
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

absl::StatusOr<std::vector<X509Ptr>> ParseCerts(const std::string& pem, const std::string& what) {
  std::vector<X509Ptr> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new_mem_buf");
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out.emplace_back(x);
  BIO_free(bio);
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": no PEM certificate found"));
  }
  return out;
}

absl::StatusOr<PkeyPtr> ParseKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new_mem_buf");
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr) return absl::InvalidArgumentError("client key: no PEM private key found");
  return PkeyPtr(k);
}

class HttpApiClient : public ApiClient {
 public:
  HttpApiClient(const Kubeconfig& config, const ApiClientOptions& options)
      : config_(config), options_(options) {}

  absl::Status Init() {
    const std::string& url = config_.server;
    absl::StatusOr<Url> u = ParseUrl(url);
    if (!u.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("API server ", u.status().message()));
    }
    if (u->scheme != "https" && u->scheme != "http") {
      return absl::InvalidArgumentError(
          absl::StrCat("API server URL \"", url, "\": scheme must be http or https"));
    }
    https_ = u->scheme == "https";
    host_ = u->host;
    port_ = u->EffectivePort();
    prefix_ = u->path;
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
    if (https_) {
      if (!config_.ca_pem.empty()) {
        ASSIGN_OR_RETURN(ca_certs_, ParseCerts(config_.ca_pem, "certificate authority"));
      }
      if (!config_.client_cert_pem.empty()) {
        ASSIGN_OR_RETURN(auto certs, ParseCerts(config_.client_cert_pem, "client certificate"));
        client_cert_ = std::move(certs.front());
        ASSIGN_OR_RETURN(client_key_, ParseKey(config_.client_key_pem));
        if (X509_check_private_key(client_cert_.get(), client_key_.get()) != 1) {
          return absl::InvalidArgumentError("client key does not match the client certificate");
        }
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Json> Get(const std::string& path) override {
    return Do("GET", path, nullptr, "");
  }
  absl::StatusOr<Json> Post(const std::string& path, const Json& body) override {
    return Do("POST", path, &body, "application/json");
  }
  absl::StatusOr<Json> Put(const std::string& path, const Json& body) override {
    return Do("PUT", path, &body, "application/json");
  }
  absl::StatusOr<Json> Patch(const std::string& path, const Json& body, PatchType type) override {
    return Do("PATCH", path, &body, ContentType(type));
  }
  absl::Status Delete(const std::string& path, const Json& options) override {
    const Json* body = options.is_null() ? nullptr : &options;
    return Do("DELETE", path, body, "application/json").status();
  }

  absl::Status Watch(const std::string& path,
                     const std::function<bool(const std::string&, const Json&)>& on_event,
                     const std::atomic<bool>& stop) override {
    std::string full = path + (path.find('?') == std::string::npos ? "?" : "&") +
                       "watch=1&allowWatchBookmarks=true";
    if (path.find("timeoutSeconds=") == std::string::npos) {
      // As client-go's reflector: a random server-side timeout in [5, 10) minutes spreads
      // the re-watches of many clients.
      static thread_local std::mt19937 rng(std::random_device{}());
      full += absl::StrCat("&timeoutSeconds=", 300 + rng() % 300);
    }
    std::shared_ptr<const ClientCertificate> cert = CurrentCertificate();
    auto client = NewClient(options_.watch_read_timeout_s, cert);
    bool rotated = false;

    // Stops the blocking read promptly when `stop` is set.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread monitor([&] {
      std::unique_lock<std::mutex> lock(mu);
      while (!done) {
        if (stop.load()) client->stop();  // repeated: the request may not have begun
        if (options_.client_certificate && CertOf(CurrentCertificate()) != CertOf(cert)) {
          // A rotated client certificate: end the stream so that the caller re-watches on
          // a connection that presents the new one (client-go closes all connections).
          rotated = true;
          client->stop();
        }
        cv.wait_for(lock, std::chrono::milliseconds(100));
      }
    });

    int http_code = 0;
    std::string buffer;
    std::string error_body;
    bool consumer_stopped = false;
    absl::Status decode_error;
    httplib::Request req = NewRequest("GET", full);
    req.response_handler = [&](const httplib::Response& res) {
      http_code = res.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      if (stop.load()) return false;
      if (http_code != 200) {
        if (error_body.size() < 65536) error_body.append(data, len);
        return true;
      }
      buffer.append(data, len);
      size_t start = 0;
      for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view line(buffer.data() + start, nl - start);
        if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
        Json ev = Json::parse(line.begin(), line.end(), nullptr, false);
        if (ev.is_discarded() || !ev.is_object() || !ev.contains("type") ||
            !ev["type"].is_string()) {
          decode_error = absl::InternalError(absl::StrCat(
              "WATCH ", path, ": undecodable event: ", std::string(line.substr(0, 200))));
          return false;
        }
        static const Json kEmpty = Json::object();
        const Json& obj = ev.contains("object") ? ev["object"] : kEmpty;
        if (!on_event(ev["type"].get<std::string>(), obj)) {
          consumer_stopped = true;
          return false;
        }
      }
      buffer.erase(0, start);
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    bool ok = client->send(req, res, err);
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    monitor.join();

    if (!decode_error.ok()) return decode_error;
    if (consumer_stopped || stop.load() || rotated) return absl::OkStatus();
    if (!ok) {
      return absl::UnavailableError(
          absl::StrCat("WATCH ", path, ": ", config_.server, ": ", httplib::to_string(err)));
    }
    if (res.status < 200 || res.status > 299) {
      return StatusFromHttp("WATCH", path, res.status, error_body);
    }
    return absl::OkStatus();  // server closed the stream (timeoutSeconds)
  }

  std::string Server() const override { return config_.server; }

 private:
  // An idle client and the certificate its connection presents.
  struct Pooled {
    std::unique_ptr<httplib::ClientImpl> client;
    std::shared_ptr<const ClientCertificate> cert;
    httplib::ClientImpl* operator->() const { return client.get(); }
  };

  httplib::Request NewRequest(const char* verb, const std::string& path) {
    httplib::Request req;
    req.method = verb;
    req.path = prefix_ + path;
    req.headers.emplace("Accept", "application/json");
    req.headers.emplace("User-Agent", options_.user_agent);
    if (!config_.token.empty()) {
      req.headers.emplace("Authorization", "Bearer " + config_.token);
    }
    return req;
  }

  std::shared_ptr<const ClientCertificate> CurrentCertificate() const {
    return options_.client_certificate ? options_.client_certificate() : nullptr;
  }
  static X509* CertOf(const std::shared_ptr<const ClientCertificate>& c) {
    return c ? c->cert.get() : nullptr;
  }

  // A new client presenting `cert` (with a certificate source) or the kubeconfig's one.
  std::unique_ptr<httplib::ClientImpl> NewClient(
      int read_timeout_s, const std::shared_ptr<const ClientCertificate>& cert) {
    std::unique_ptr<httplib::ClientImpl> c;
    if (https_) {
      std::unique_ptr<httplib::SSLClient> sc;
      if (options_.client_certificate) {
        if (cert && cert->cert && cert->key) {
          // SSL_CTX_use_certificate / _PrivateKey take their own references.
          sc =
              std::make_unique<httplib::SSLClient>(host_, port_, cert->cert.get(), cert->key.get());
        } else {
          sc = std::make_unique<httplib::SSLClient>(host_, port_);
        }
      } else if (client_cert_) {
        sc = std::make_unique<httplib::SSLClient>(host_, port_, client_cert_.get(),
                                                  client_key_.get());
      } else {
        sc = std::make_unique<httplib::SSLClient>(host_, port_);
      }
      if (config_.insecure_skip_tls_verify) {
        sc->enable_server_certificate_verification(false);
      } else if (!ca_certs_.empty()) {
        X509_STORE* store = X509_STORE_new();
        for (const auto& x : ca_certs_) X509_STORE_add_cert(store, x.get());
        sc->set_ca_cert_store(store);  // takes ownership
        sc->set_ca_cert_path("", kNoSystemCaDir);
        sc->enable_server_certificate_verification(true);
      } else {
        sc->enable_server_certificate_verification(true);
      }
      c = std::move(sc);
    } else {
      c = std::make_unique<httplib::ClientImpl>(host_, port_);
    }
    c->set_keep_alive(true);
    c->set_connection_timeout(options_.connect_timeout_s, 0);
    c->set_read_timeout(read_timeout_s, 0);
    c->set_write_timeout(options_.request_timeout_s, 0);
    return c;
  }

  // An idle pooled client (its keep-alive connection may have been closed by the server
  // meanwhile: `*reused` tells) or a new one.
  // With a certificate source, pooled clients made with another certificate than the
  // current one are dropped (their connections close with them).
  Pooled Acquire(bool* reused) {
    std::shared_ptr<const ClientCertificate> cert = CurrentCertificate();
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      if (options_.client_certificate) {
        std::erase_if(idle_, [&](const Pooled& p) { return CertOf(p.cert) != CertOf(cert); });
      }
      if (!idle_.empty()) {
        Pooled c = std::move(idle_.back());
        idle_.pop_back();
        *reused = true;
        return c;
      }
    }
    *reused = false;
    return Pooled{NewClient(options_.request_timeout_s, cert), cert};
  }

  void Release(Pooled c) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(c));
  }

  absl::StatusOr<Json> Do(const char* verb, const std::string& path, const Json* body,
                          const std::string& content_type) {
    httplib::Request req = NewRequest(verb, path);
    if (body != nullptr) {
      req.body = body->dump();
      req.headers.emplace("Content-Type", content_type);
    }
    bool reused = false;
    Pooled client = Acquire(&reused);
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    bool sent = client->send(req, res, err);
    if (!sent && reused) {
      // A stale keep-alive connection: retry once on a fresh one.
      client.cert = CurrentCertificate();
      client.client = NewClient(options_.request_timeout_s, client.cert);
      res = httplib::Response();
      err = httplib::Error::Success;
      sent = client->send(req, res, err);
    }
    if (!sent) {
      // The connection is dropped with its client; the next call dials afresh.
      return absl::UnavailableError(
          absl::StrCat(verb, " ", path, ": ", config_.server, ": ", httplib::to_string(err)));
    }
    Release(std::move(client));
    RETURN_IF_ERROR(StatusFromHttp(verb, path, res.status, res.body));
    if (res.body.empty()) return Json::object();
    Json j = Json::parse(res.body, nullptr, false);
    if (j.is_discarded()) {
      return absl::InternalError(
          absl::StrCat(verb, " ", path, ": response is not JSON: ", res.body.substr(0, 200)));
    }
    return j;
  }

  static constexpr size_t kMaxIdle = 4;
  const Kubeconfig config_;
  const ApiClientOptions options_;
  bool https_ = false;
  std::string host_;
  int port_ = 0;
  std::string prefix_;
  std::vector<X509Ptr> ca_certs_;
  X509Ptr client_cert_;
  PkeyPtr client_key_;
  std::mutex pool_mu_;
  std::vector<Pooled> idle_;
};

}  // namespace

absl::Status StatusFromHttp(const std::string& verb, const std::string& path, int http_code,
                            const std::string& body) {
  if (http_code >= 200 && http_code <= 299) return absl::OkStatus();
  std::string reason;
  std::string message;
  Json j = Json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.value("kind", "") == "Status") {
    if (j.contains("reason") && j["reason"].is_string()) reason = j["reason"].get<std::string>();
    if (j.contains("message") && j["message"].is_string()) {
      message = j["message"].get<std::string>();
    }
  } else {
    message = body.substr(0, 512);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
  }
  std::string text = absl::StrCat(verb, " ", path, ": ", http_code, " ",
                                  reason.empty() ? ReasonPhrase(http_code) : reason);
  if (!message.empty()) absl::StrAppend(&text, ": ", message);
  absl::StatusCode code;
  switch (http_code) {
    case 400:
    case 422:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case 401:
      code = absl::StatusCode::kUnauthenticated;
      break;
    case 403:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case 404:
      code = absl::StatusCode::kNotFound;
      break;
    case 409:
      code = (reason == "AlreadyExists" || (reason.empty() && verb == "POST"))
                 ? absl::StatusCode::kAlreadyExists
                 : absl::StatusCode::kAborted;
      break;
    case 410:
      code = absl::StatusCode::kOutOfRange;
      break;
    case 429:
      code = absl::StatusCode::kUnavailable;
      break;
    default:
      code = http_code >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kUnknown;
  }
  return absl::Status(code, text);
}

absl::StatusOr<std::unique_ptr<ApiClient>> ApiClient::Create(const Kubeconfig& config,
                                                             const ApiClientOptions& options) {
  // OpenSSL writes to sockets with write(2): a peer that closed the connection (a watch
  // being stopped, an idle keep-alive connection) would kill the process with SIGPIPE.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] {
    struct sigaction old = {};
    if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
  });
  auto c = std::make_unique<HttpApiClient>(config, options);
  RETURN_IF_ERROR(Annotate(c->Init(), "API client for " + config.server));
  return std::unique_ptr<ApiClient>(std::move(c));
}

absl::StatusOr<std::unique_ptr<ApiClient>> ApiClient::FromKubeconfig(const std::string& path) {
  ASSIGN_OR_RETURN(Kubeconfig kc, LoadKubeconfig(path));
  return Create(kc);
}

}  // namespace berth::kubelet
