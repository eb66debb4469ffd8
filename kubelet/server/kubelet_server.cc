// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it.
#include "kubelet/server/kubelet_server.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "base/url.h"
#include "kubelet/server/cri_log.h"
#include "kubelet/server/tls.h"
#include "nlohmann/json.hpp"

namespace berth::kubelet::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
using SslStream = beast::ssl_stream<beast::tcp_stream>;
using Request = http::request<http::string_body>;
namespace v1 = ::runtime::v1;

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(120);
constexpr size_t kPumpBuffer = 64 * 1024;

// CRI labels the kubelet role puts on sandboxes and containers (kubelet/pod_util.h).
constexpr char kPodName[] = "io.kubernetes.pod.name";
constexpr char kPodNamespace[] = "io.kubernetes.pod.namespace";
constexpr char kPodUid[] = "io.kubernetes.pod.uid";
constexpr char kContainerName[] = "io.kubernetes.container.name";

// What a connection does after a request.
enum class Next { kKeepAlive, kClose, kHandedOver };

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return absl::ascii_tolower(c) - 'a' + 10;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) &&
               absl::ascii_isxdigit(s[i + 2])) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Query parameters in order (repeated keys kept: `command` is one per argument).
using Query = std::vector<std::pair<std::string, std::string>>;

Query ParseQuery(std::string_view q) {
  Query out;
  for (absl::string_view akv :
       absl::StrSplit(absl::string_view(q.data(), q.size()), '&', absl::SkipEmpty())) {
    std::string_view kv(akv.data(), akv.size());
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(PercentDecode(kv), "");
    } else {
      out.emplace_back(PercentDecode(kv.substr(0, eq)), PercentDecode(kv.substr(eq + 1)));
    }
  }
  return out;
}

std::optional<std::string> QueryGet(const Query& q, const std::string& key) {
  for (const auto& [k, v] : q) {
    if (k == key) return v;
  }
  return std::nullopt;
}

bool QueryBool(const Query& q, const std::string& key) {
  std::optional<std::string> v = QueryGet(q, key);
  return v && (*v == "1" || *v == "true");
}

http::status HttpStatusFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return http::status::not_found;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return http::status::bad_request;
    case absl::StatusCode::kUnauthenticated:
      return http::status::unauthorized;
    case absl::StatusCode::kPermissionDenied:
      return http::status::forbidden;
    case absl::StatusCode::kResourceExhausted:
      return http::status::too_many_requests;
    case absl::StatusCode::kUnimplemented:
      return http::status::not_implemented;
    default:
      return http::status::internal_server_error;
  }
}

// The runtime's streaming URL ("http://host:port/path?query") as the proxy dials it.
struct StreamUrl {
  std::string host;  // an IPv6 address without brackets
  std::string port;
  std::string target;
};

absl::StatusOr<StreamUrl> ParseStreamUrl(const std::string& url) {
  absl::StatusOr<Url> u = ParseUrl(url);
  if (!u.ok() || u->scheme != "http") {
    return absl::InternalError(absl::StrCat("streaming URL ", url, ": only http:// is proxied"));
  }
  return StreamUrl{
      .host = u->host, .port = std::to_string(u->EffectivePort()), .target = u->Target()};
}

bool IsUpgrade(const Request& req) {
  return absl::StrContains(absl::AsciiStrToLower(std::string(req[http::field::connection])),
                           "upgrade") &&
         !req[http::field::upgrade].empty();
}

// The state of one proxied stream: the client's TLS stream and the runtime's streaming
// server connection, pumped by two coroutines on the connection's (single) thread.
struct Tunnel {
  std::shared_ptr<SslStream> client;
  beast::tcp_stream backend;
  bool client_done = false;
  bool backend_done = false;

  Tunnel(std::shared_ptr<SslStream> c, beast::tcp_stream b)
      : client(std::move(c)), backend(std::move(b)) {}

  void CloseClient() {
    beast::error_code ec;
    beast::get_lowest_layer(*client).socket().close(ec);
  }
};

asio::awaitable<void> ClientToBackend(std::shared_ptr<Tunnel> t) {
  std::vector<char> buf(kPumpBuffer);
  for (;;) {
    beast::error_code ec;
    size_t n = co_await t->client->async_read_some(asio::buffer(buf),
                                                   asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    if (t->backend_done) continue;  // draining what the client still sends
    co_await asio::async_write(t->backend, asio::buffer(buf.data(), n),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) break;
  }
  t->client_done = true;
  beast::error_code ec;
  if (t->backend_done) {
    t->CloseClient();
  } else {
    // The client is gone: the streaming server sees EOF and ends the session; it gets a
    // while to do so, then the connection is cut.
    t->backend.socket().shutdown(tcp::socket::shutdown_send, ec);
    t->backend.expires_after(std::chrono::seconds(30));
  }
}

asio::awaitable<void> BackendToClient(std::shared_ptr<Tunnel> t) {
  std::vector<char> buf(kPumpBuffer);
  for (;;) {
    beast::error_code ec;
    size_t n = co_await t->backend.async_read_some(asio::buffer(buf),
                                                   asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    co_await asio::async_write(*t->client, asio::buffer(buf.data(), n),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) break;
  }
  t->backend_done = true;
  t->backend.close();
  beast::error_code ec;
  if (t->client_done) {
    t->CloseClient();
  } else {
    // Half-close towards the client (everything sent arrives before the FIN), then read
    // until the client closes too, so that no reset discards the last bytes.
    auto& lowest = beast::get_lowest_layer(*t->client);
    lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest.expires_after(std::chrono::seconds(5));
  }
}

}  // namespace

struct KubeletServer::Impl {
  struct Handler {
    BodyFn body;
    std::string content_type;
  };

  KubeletServerOptions opts;
  cri::RuntimeService* runtime;
  Auth* auth;
  std::atomic<int>* active;
  std::map<std::string, Handler> handlers;
  ssl::context tls{ssl::context::tls_server};
  asio::io_context accept_ioc{1};
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> retry_timer;
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::shared_ptr<asio::io_context>> conns;  // guarded by mu

  void DoAccept() {
    auto ioc = std::make_shared<asio::io_context>(1);
    acceptor->async_accept(*ioc, [this, ioc](beast::error_code ec, tcp::socket sock) {
      if (stopping.load()) return;
      if (ec) {
        // EMFILE and friends: try again shortly instead of spinning.
        LOG(WARNING) << "kubelet server: accept: " << ec.message();
        retry_timer->expires_after(std::chrono::milliseconds(100));
        retry_timer->async_wait([this](beast::error_code) {
          if (!stopping.load()) DoAccept();
        });
        return;
      }
      if (active->load() >= opts.max_connections) {
        LOG(WARNING) << "kubelet server: " << opts.max_connections
                     << " connections open, closing a new one";
        beast::error_code ignored;
        sock.close(ignored);
      } else {
        StartConnection(ioc, std::move(sock));
      }
      DoAccept();
    });
  }

  void StartConnection(std::shared_ptr<asio::io_context> ioc, tcp::socket sock) {
    // Small writes (SPDY frames of proxied streams, Go's framer writes field by field) must
    // not wait for delayed ACKs (Nagle): 40 ms per stream creation otherwise.
    beast::error_code nodelay_ec;
    sock.set_option(tcp::no_delay(true), nodelay_ec);
    active->fetch_add(1);
    {
      std::lock_guard<std::mutex> l(mu);
      conns.insert(ioc);
    }
    std::thread([this, ioc, s = std::move(sock)]() mutable {
      pthread_setname_np(pthread_self(), "berth-kubelet");  // tests count these
      {
        auto stream = std::make_shared<SslStream>(beast::tcp_stream(std::move(s)), tls);
        asio::co_spawn(*ioc, Session(std::move(stream)), asio::detached);
      }
      ioc->run();
      {
        std::lock_guard<std::mutex> l(mu);
        conns.erase(ioc);
      }
      ioc.reset();  // the last reference: destroys unfinished coroutines and sockets
      {
        std::lock_guard<std::mutex> l(mu);
        active->fetch_sub(1);
      }
      cv.notify_all();
    }).detach();
  }

  asio::awaitable<void> Session(std::shared_ptr<SslStream> s) {
    beast::error_code ec;
    beast::get_lowest_layer(*s).expires_after(kHandshakeTimeout);
    co_await s->async_handshake(ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    std::optional<UserInfo> cert_user;
    if (X509* peer = SSL_get1_peer_certificate(s->native_handle())) {
      if (SSL_get_verify_result(s->native_handle()) == X509_V_OK) {
        cert_user = UserFromCertificate(peer);
      }
      X509_free(peer);
    }
    beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      beast::get_lowest_layer(*s).expires_after(kIdleTimeout);
      co_await http::async_read(*s, buf, parser, asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      beast::get_lowest_layer(*s).expires_never();
      Request req = parser.release();
      Next next = co_await Handle(s, buf, req, cert_user);
      if (next == Next::kHandedOver) co_return;
      if (next == Next::kClose) break;
    }
    beast::get_lowest_layer(*s).expires_after(std::chrono::seconds(2));
    co_await s->async_shutdown(asio::redirect_error(use_awaitable, ec));
  }

  asio::awaitable<Next> Reply(std::shared_ptr<SslStream> s, const Request& req, http::status status,
                              std::string body,
                              std::string content_type = "text/plain; charset=utf-8") {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    beast::error_code ec;
    co_await http::async_write(*s, res, asio::redirect_error(use_awaitable, ec));
    co_return (ec || !req.keep_alive()) ? Next::kClose : Next::kKeepAlive;
  }

  // (Coroutine parameters are copied into the frame: values, not references to temporaries.)
  asio::awaitable<Next> ReplyError(std::shared_ptr<SslStream> s, const Request& req,
                                   absl::Status st) {
    co_return co_await Reply(std::move(s), req, HttpStatusFor(st), std::string(st.message()));
  }

  asio::awaitable<Next> Handle(std::shared_ptr<SslStream> s, beast::flat_buffer& buf,
                               const Request& req, const std::optional<UserInfo>& cert_user) {
    std::string target_str(req.target());
    std::string_view target = target_str;
    size_t qmark = target.find('?');
    std::string path = PercentDecode(target.substr(0, qmark));
    Query query = qmark == std::string_view::npos ? Query() : ParseQuery(target.substr(qmark + 1));
    std::string method(req.method_string());

    absl::StatusOr<UserInfo> user =
        auth->Authenticate(cert_user, std::string(req[http::field::authorization]));
    if (!user.ok()) {
      if (!absl::IsUnauthenticated(user.status())) {
        LOG(WARNING) << "kubelet server: authentication: " << user.status();
      }
      co_return co_await Reply(s, req, http::status::unauthorized, "Unauthorized");
    }
    absl::Status allowed = auth->Authorize(*user, AttributesFor(method, path, opts.node_name));
    if (!allowed.ok()) {
      if (absl::IsPermissionDenied(allowed)) {
        co_return co_await Reply(s, req, http::status::forbidden,
                                 absl::StrCat(allowed.message(), "\n"));
      }
      LOG(WARNING) << "kubelet server: " << allowed;
      co_return co_await Reply(s, req, http::status::internal_server_error,
                               std::string(allowed.message()));
    }

    std::vector<std::string> seg = absl::StrSplit(path, '/', absl::SkipEmpty());
    bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    bool get_or_post = get || req.method() == http::verb::post;
    if (path == "/healthz" && get) co_return co_await Reply(s, req, http::status::ok, "ok");
    if (auto it = handlers.find(path); it != handlers.end() && get) {
      absl::StatusOr<std::string> body = it->second.body();
      if (!body.ok()) co_return co_await ReplyError(s, req, body.status());
      co_return co_await Reply(s, req, http::status::ok, *std::move(body), it->second.content_type);
    }
    if (!seg.empty() && seg[0] == "containerLogs" && get) {
      if (seg.size() != 4) {
        co_return co_await Reply(s, req, http::status::bad_request,
                                 "want /containerLogs/{namespace}/{pod}/{container}");
      }
      co_return ContainerLogs(s, req, seg[1], seg[2], seg[3], query);
    }
    if (!seg.empty() && (seg[0] == "exec" || seg[0] == "attach") && get_or_post) {
      if (seg.size() != 4 && seg.size() != 5) {
        co_return co_await Reply(
            s, req, http::status::bad_request,
            absl::StrCat("want /", seg[0], "/{namespace}/{pod}[/{uid}]/{container}"));
      }
      std::string uid = seg.size() == 5 ? seg[3] : "";
      co_return co_await ExecOrAttach(s, buf, req, seg[0] == "exec", seg[1], seg[2], uid,
                                      seg.back(), query);
    }
    if (!seg.empty() && seg[0] == "portForward" && get_or_post) {
      if (seg.size() != 3 && seg.size() != 4) {
        co_return co_await Reply(s, req, http::status::bad_request,
                                 "want /portForward/{namespace}/{pod}[/{uid}]");
      }
      // (A named uid: GCC 12 mishandles a conditional's temporary across co_await.)
      std::string uid = seg.size() == 4 ? seg[3] : "";
      co_return co_await PortForward(s, buf, req, seg[1], seg[2], uid);
    }
    if (!seg.empty() && seg[0] == "checkpoint" && req.method() == http::verb::post &&
        seg.size() == 4 && !opts.checkpoints_dir.empty()) {
      co_return co_await Checkpoint(s, req, seg[1], seg[2], seg[3], query);
    }
    co_return co_await Reply(s, req, http::status::not_found, "404 page not found\n");
  }

  // --- POST /checkpoint/{namespace}/{pod}/{container} (kubelet server.go checkpoint) ---

  asio::awaitable<Next> Checkpoint(std::shared_ptr<SslStream> s, const Request& req, std::string ns,
                                   std::string pod, std::string name, Query query) {
    absl::StatusOr<std::vector<v1::Container>> cs = FindContainers(ns, pod, "", name);
    if (!cs.ok()) co_return co_await ReplyError(s, req, cs.status());
    if (cs->empty()) {
      std::string msg = FindSandbox(ns, pod, "").ok()
                            ? absl::StrCat("container ", name, " does not exist")
                            : std::string("pod does not exist");
      co_return co_await Reply(s, req, http::status::not_found, msg);
    }
    v1::CheckpointContainerRequest creq;
    // The last `timeout` value counts (seconds); without one the runtime's default applies.
    for (const auto& [k, v] : query) {
      if (k != "timeout") continue;
      int64_t t = 0;
      if (!absl::SimpleAtoi(v, &t)) {
        co_return co_await Reply(s, req, http::status::not_found,
                                 "cannot parse value of timeout parameter");
      }
      creq.set_timeout(t);
    }
    // The newest container of that name (running or not: the runtime refuses a stopped one).
    const v1::Container* c = &cs->front();
    for (const auto& x : *cs) {
      if (x.state() == v1::CONTAINER_RUNNING) {
        c = &x;
        break;
      }
    }
    creq.set_container_id(c->id());
    creq.set_location(JoinPath(
        opts.checkpoints_dir,
        absl::StrCat("checkpoint-", pod, "_", ns, "-", name, "-",
                     absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()),
                     ".tar")));
    absl::Status st = MkdirAll(opts.checkpoints_dir, 0700);
    if (st.ok()) st = runtime->CheckpointContainer(creq).status();
    if (!st.ok()) {
      co_return co_await Reply(s, req, http::status::internal_server_error,
                               absl::StrCat("checkpointing of ", ns, "/", pod, "/", name,
                                            " failed (", st.message(), ")"));
    }
    nlohmann::json body = {{"items", {creq.location()}}};
    co_return co_await Reply(s, req, http::status::ok, body.dump(), "application/json");
  }

  // --- CRI lookups (blocking) ---

  absl::StatusOr<v1::PodSandbox> FindSandbox(const std::string& ns, const std::string& pod,
                                             const std::string& uid) {
    v1::ListPodSandboxRequest r;
    auto& sel = *r.mutable_filter()->mutable_label_selector();
    sel[kPodNamespace] = ns;
    sel[kPodName] = pod;
    if (!uid.empty()) sel[kPodUid] = uid;
    ASSIGN_OR_RETURN(v1::ListPodSandboxResponse resp, runtime->ListPodSandbox(r));
    const v1::PodSandbox* best = nullptr;
    for (const auto& sb : resp.items()) {
      // A ready sandbox wins over any other; else the newest.
      if (best == nullptr ||
          (sb.state() == v1::SANDBOX_READY) > (best->state() == v1::SANDBOX_READY) ||
          ((sb.state() == v1::SANDBOX_READY) == (best->state() == v1::SANDBOX_READY) &&
           sb.created_at() > best->created_at())) {
        best = &sb;
      }
    }
    if (best == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("pod \"", pod, "\" in namespace \"", ns, "\" does not exist on this node"));
    }
    return *best;
  }

  // Containers named `name` of the pod, newest first.
  absl::StatusOr<std::vector<v1::Container>> FindContainers(const std::string& ns,
                                                            const std::string& pod,
                                                            const std::string& uid,
                                                            const std::string& name) {
    v1::ListContainersRequest r;
    auto& sel = *r.mutable_filter()->mutable_label_selector();
    sel[kPodNamespace] = ns;
    sel[kPodName] = pod;
    sel[kContainerName] = name;
    if (!uid.empty()) sel[kPodUid] = uid;
    ASSIGN_OR_RETURN(v1::ListContainersResponse resp, runtime->ListContainers(r));
    std::vector<v1::Container> out(resp.containers().begin(), resp.containers().end());
    std::sort(out.begin(), out.end(), [](const v1::Container& a, const v1::Container& b) {
      if (a.metadata().attempt() != b.metadata().attempt()) {
        return a.metadata().attempt() > b.metadata().attempt();
      }
      return a.created_at() > b.created_at();
    });
    return out;
  }

  absl::StatusOr<v1::Container> FindRunningContainer(const std::string& ns, const std::string& pod,
                                                     const std::string& uid,
                                                     const std::string& name) {
    ASSIGN_OR_RETURN(std::vector<v1::Container> cs, FindContainers(ns, pod, uid, name));
    for (const auto& c : cs) {
      if (c.state() == v1::CONTAINER_RUNNING) return c;
    }
    if (cs.empty()) RETURN_IF_ERROR(FindSandbox(ns, pod, uid).status());
    return absl::NotFoundError(absl::StrCat("container not found (\"", name, "\")"));
  }

  // --- /containerLogs ---

  Next ContainerLogs(std::shared_ptr<SslStream> s, const Request& req, const std::string& ns,
                     const std::string& pod, const std::string& name, const Query& query) {
    auto fail = [&](http::status status, absl::string_view msg) {
      http::response<http::string_body> res{status, req.version()};
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.keep_alive(false);
      res.body() = std::string(msg);
      res.prepare_payload();
      beast::error_code ec;
      http::write(*s, res, ec);
      return Next::kClose;
    };
    absl::StatusOr<LogOptions> opts =
        ParseLogOptions([&](const std::string& k) { return QueryGet(query, k); }, absl::Now());
    if (!opts.ok()) return fail(http::status::bad_request, opts.status().message());
    bool previous = QueryBool(query, "previous");
    absl::StatusOr<std::vector<v1::Container>> cs = FindContainers(ns, pod, "", name);
    if (!cs.ok()) return fail(HttpStatusFor(cs.status()), cs.status().message());
    if (cs->empty()) {
      absl::Status sb = FindSandbox(ns, pod, "").status();
      if (!sb.ok()) return fail(HttpStatusFor(sb), sb.message());
      return fail(http::status::bad_request,
                  absl::StrCat("container \"", name, "\" in pod \"", pod,
                               "\" is waiting to start: no container has been created"));
    }
    size_t index = previous ? 1 : 0;
    if (index >= cs->size()) {
      return fail(http::status::bad_request, absl::StrCat("previous terminated container \"", name,
                                                          "\" in pod \"", pod, "\" not found"));
    }
    std::string id = (*cs)[index].id();
    v1::ContainerStatusRequest sreq;
    sreq.set_container_id(id);
    absl::StatusOr<v1::ContainerStatusResponse> st = runtime->ContainerStatus(sreq);
    if (!st.ok()) return fail(HttpStatusFor(st.status()), st.status().message());
    std::string log_path = st->status().log_path();
    bool running = st->status().state() == v1::CONTAINER_RUNNING;

    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.chunked(true);
    res.keep_alive(false);
    http::response_serializer<http::empty_body> sr{res};
    beast::error_code ec;
    http::write_header(*s, sr, ec);
    if (ec) return Next::kClose;
    if (log_path.empty()) {
      asio::write(*s, http::make_chunk_last(), ec);
      return Next::kClose;
    }
    int fd = beast::get_lowest_layer(*s).socket().native_handle();
    LogSink sink;
    sink.write = [&](std::string_view data) {
      asio::write(*s, http::make_chunk(asio::buffer(data.data(), data.size())), ec);
      return !ec;
    };
    sink.container_running = [&]() {
      if (!running) return false;
      absl::StatusOr<v1::ContainerStatusResponse> now = runtime->ContainerStatus(sreq);
      return now.ok() && now->status().state() == v1::CONTAINER_RUNNING;
    };
    sink.cancelled = [&]() {
      if (stopping.load()) return true;
      struct pollfd p = {fd, POLLRDHUP, 0};
      return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    };
    absl::Status read = ReadContainerLog(log_path, *opts, sink);
    if (!read.ok() && !absl::IsNotFound(read)) {
      LOG(WARNING) << "kubelet server: logs of " << ns << "/" << pod << "/" << name << ": " << read;
    }
    if (!ec) asio::write(*s, http::make_chunk_last(), ec);
    return Next::kClose;
  }

  // --- /exec, /attach, /portForward ---

  asio::awaitable<Next> ExecOrAttach(std::shared_ptr<SslStream> s, beast::flat_buffer& buf,
                                     const Request& req, bool exec, const std::string& ns,
                                     const std::string& pod, const std::string& uid,
                                     const std::string& name, const Query& query) {
    // The API server's names (core ExecStdinParam "input", ExecStdoutParam "output",
    // ExecStderrParam "error", ExecTTYParam "tty"), each "1" when set.
    bool tty = QueryBool(query, "tty");
    bool in = QueryBool(query, "input");
    bool out = QueryBool(query, "output");
    bool err = QueryBool(query, "error") && !tty;  // no stderr with a TTY, as the kubelet
    if (!in && !out && !err) {
      co_return co_await Reply(s, req, http::status::bad_request,
                               "you must specify at least 1 of stdin, stdout, stderr");
    }
    std::vector<std::string> cmd;
    for (const auto& [k, v] : query) {
      if (k == "command") cmd.push_back(v);
    }
    if (exec && cmd.empty()) {
      co_return co_await Reply(s, req, http::status::bad_request, "you must specify a command");
    }
    absl::StatusOr<v1::Container> c = FindRunningContainer(ns, pod, uid, name);
    if (!c.ok()) co_return co_await ReplyError(s, req, c.status());
    absl::StatusOr<std::string> url;
    if (exec) {
      v1::ExecRequest r;
      r.set_container_id(c->id());
      for (const auto& a : cmd) r.add_cmd(a);
      r.set_tty(tty);
      r.set_stdin(in);
      r.set_stdout(out);
      r.set_stderr(err);
      absl::StatusOr<v1::ExecResponse> resp = runtime->Exec(r);
      url = resp.ok() ? absl::StatusOr<std::string>(resp->url()) : resp.status();
    } else {
      v1::AttachRequest r;
      r.set_container_id(c->id());
      r.set_tty(tty);
      r.set_stdin(in);
      r.set_stdout(out);
      r.set_stderr(err);
      absl::StatusOr<v1::AttachResponse> resp = runtime->Attach(r);
      url = resp.ok() ? absl::StatusOr<std::string>(resp->url()) : resp.status();
    }
    if (!url.ok()) co_return co_await ReplyError(s, req, url.status());
    co_return co_await Proxy(s, buf, req, *url);
  }

  asio::awaitable<Next> PortForward(std::shared_ptr<SslStream> s, beast::flat_buffer& buf,
                                    const Request& req, const std::string& ns,
                                    const std::string& pod, const std::string& uid) {
    absl::StatusOr<v1::PodSandbox> sb = FindSandbox(ns, pod, uid);
    if (!sb.ok()) co_return co_await ReplyError(s, req, sb.status());
    if (sb->state() != v1::SANDBOX_READY) {
      co_return co_await Reply(s, req, http::status::bad_request,
                               absl::StrCat("pod \"", pod, "\" is not running"));
    }
    v1::PortForwardRequest r;
    r.set_pod_sandbox_id(sb->id());
    absl::StatusOr<v1::PortForwardResponse> resp = runtime->PortForward(r);
    if (!resp.ok()) co_return co_await ReplyError(s, req, resp.status());
    co_return co_await Proxy(s, buf, req, resp->url());
  }

  // Sends the client's upgrade request to `url` and, on 101 Switching Protocols, pipes bytes
  // both ways (the connection is handed over). Other answers are relayed as they are.
  asio::awaitable<Next> Proxy(std::shared_ptr<SslStream> s, beast::flat_buffer& buf,
                              const Request& req, const std::string& url_str) {
    if (!IsUpgrade(req)) {
      co_return co_await Reply(s, req, http::status::bad_request, "Upgrade request required");
    }
    absl::StatusOr<StreamUrl> url = ParseStreamUrl(url_str);
    if (!url.ok()) co_return co_await ReplyError(s, req, url.status());
    auto ex = co_await asio::this_coro::executor;
    beast::tcp_stream backend(ex);
    beast::error_code ec;
    // The runtime's URLs name an IP address (the streaming server's): connect to it
    // directly; a name is resolved (Asio's resolver starts a thread per io_context).
    beast::error_code addr_ec;
    asio::ip::address addr = asio::ip::make_address(url->host, addr_ec);
    uint32_t port = 0;
    if (!addr_ec && absl::SimpleAtoi(url->port, &port) && port > 0 && port <= 65535) {
      backend.expires_after(std::chrono::seconds(10));
      co_await backend.async_connect(tcp::endpoint(addr, static_cast<uint16_t>(port)),
                                     asio::redirect_error(use_awaitable, ec));
    } else {
      tcp::resolver resolver(ex);
      auto endpoints = co_await resolver.async_resolve(url->host, url->port,
                                                       asio::redirect_error(use_awaitable, ec));
      if (!ec) {
        backend.expires_after(std::chrono::seconds(10));
        co_await backend.async_connect(endpoints, asio::redirect_error(use_awaitable, ec));
      }
    }
    if (ec) {
      co_return co_await Reply(s, req, http::status::bad_gateway,
                               absl::StrCat("streaming server ", url_str, ": ", ec.message()));
    }
    Request out = req;
    out.target(url->target);
    out.set(http::field::host, absl::StrCat(url->host, ":", url->port));
    out.erase(http::field::authorization);
    co_await http::async_write(backend, out, asio::redirect_error(use_awaitable, ec));
    beast::flat_buffer bbuf;
    http::response_parser<http::string_body> rp;
    rp.body_limit(1 << 20);
    if (!ec) {
      co_await http::async_read_header(backend, bbuf, rp, asio::redirect_error(use_awaitable, ec));
    }
    if (!ec && rp.get().result() != http::status::switching_protocols) {
      if (!rp.is_done()) {
        co_await http::async_read(backend, bbuf, rp, asio::redirect_error(use_awaitable, ec));
      }
      if (!ec) {
        http::response<http::string_body> res = rp.release();
        res.keep_alive(false);
        res.prepare_payload();
        co_await http::async_write(*s, res, asio::redirect_error(use_awaitable, ec));
        co_return Next::kClose;
      }
    }
    if (ec) {
      co_return co_await Reply(s, req, http::status::bad_gateway,
                               absl::StrCat("streaming server ", url_str, ": ", ec.message()));
    }
    backend.expires_never();
    // The client's frames arrive as many small TLS records and are forwarded one by one:
    // with Nagle each one after the first waits for the streaming server's delayed ACK.
    backend.socket().set_option(tcp::no_delay(true), ec);
    ec = {};
    http::response<http::empty_body> head{rp.get().base()};
    http::response_serializer<http::empty_body> sr{head};
    co_await http::async_write_header(*s, sr, asio::redirect_error(use_awaitable, ec));
    if (!ec && bbuf.size() > 0) {
      co_await asio::async_write(*s, bbuf.data(), asio::redirect_error(use_awaitable, ec));
    }
    if (!ec && buf.size() > 0) {
      co_await asio::async_write(backend, buf.data(), asio::redirect_error(use_awaitable, ec));
      buf.consume(buf.size());
    }
    if (ec) co_return Next::kClose;
    auto t = std::make_shared<Tunnel>(s, std::move(backend));
    asio::co_spawn(ex, ClientToBackend(t), asio::detached);
    asio::co_spawn(ex, BackendToClient(t), asio::detached);
    co_return Next::kHandedOver;
  }
};

KubeletServer::KubeletServer(const KubeletServerOptions& options, cri::RuntimeService* runtime,
                             Auth* auth)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = options;
  impl_->runtime = runtime;
  impl_->auth = auth;
  impl_->active = &active_;
}

KubeletServer::~KubeletServer() { Stop(); }

void KubeletServer::AddHandler(const std::string& path, BodyFn body,
                               const std::string& content_type) {
  impl_->handlers[path] = Impl::Handler{std::move(body), content_type};
}

absl::Status KubeletServer::Start() {
  Impl& d = *impl_;
  if (d.acceptor) return absl::FailedPreconditionError("kubelet server already started");
  beast::error_code ec;
  d.tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  d.tls.use_certificate_chain_file(d.opts.tls_cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert-file ", d.opts.tls_cert_file, ": ", ec.message()));
  }
  d.tls.use_private_key_file(d.opts.tls_private_key_file, ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-private-key-file ", d.opts.tls_private_key_file, ": ", ec.message()));
  }
  if (d.opts.serving_certificate) {
    // Per handshake: the current rotated certificate replaces the files' one.
    SSL_CTX_set_cert_cb(
        d.tls.native_handle(),
        [](SSL* ssl, void* arg) -> int {
          auto* impl = static_cast<Impl*>(arg);
          std::shared_ptr<const certificate::KeyPair> kp = impl->opts.serving_certificate();
          if (kp == nullptr) return 1;
          if (SSL_use_certificate(ssl, kp->leaf.get()) != 1 ||
              SSL_use_PrivateKey(ssl, kp->key.get()) != 1) {
            return 0;
          }
          SSL_clear_chain_certs(ssl);
          for (const auto& x : kp->intermediates) SSL_add1_chain_cert(ssl, x.get());
          return 1;
        },
        &d);
  }
  if (!d.opts.client_ca_file.empty()) {
    d.tls.load_verify_file(d.opts.client_ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("--client-ca-file ", d.opts.client_ca_file, ": ", ec.message()));
    }
    // Ask for a client certificate; a connection without one is still accepted (bearer
    // tokens, anonymous), one with an unverifiable certificate is refused in the handshake
    // (Go's VerifyClientCertIfGiven).
    d.tls.set_verify_mode(ssl::verify_peer);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(d.opts.client_ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(d.tls.native_handle(), names);
  }
  // ALPN is not offered: the API server speaks HTTP/1.1 for upgrades.
  auto addr = asio::ip::make_address(d.opts.address, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--address ", d.opts.address));
  tcp::endpoint ep(addr, static_cast<unsigned short>(d.opts.port));
  d.acceptor.emplace(d.accept_ioc);
  d.acceptor->open(ep.protocol(), ec);
  // Asio opens sockets without SOCK_CLOEXEC; children (conmon outlives berth) must not
  // inherit the listener.
  if (!ec) ::fcntl(d.acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
  if (!ec) d.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) d.acceptor->bind(ep, ec);
  if (!ec) d.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    d.acceptor.reset();
    return absl::UnavailableError(absl::StrCat("kubelet server: listen on ", d.opts.address, ":",
                                               d.opts.port, ": ", ec.message()));
  }
  port_ = d.acceptor->local_endpoint().port();
  d.retry_timer.emplace(d.accept_ioc);
  d.DoAccept();
  d.accept_thread = std::thread([&d] { d.accept_ioc.run(); });
  return absl::OkStatus();
}

void KubeletServer::Stop() {
  Impl& d = *impl_;
  if (!d.acceptor || d.stopping.exchange(true)) return;
  asio::post(d.accept_ioc, [&d] {
    beast::error_code ec;
    d.acceptor->close(ec);
    d.retry_timer->cancel();
  });
  d.accept_ioc.stop();
  if (d.accept_thread.joinable()) d.accept_thread.join();
  std::unique_lock<std::mutex> l(d.mu);
  for (const auto& ioc : d.conns) ioc->stop();
  d.cv.wait(l, [&] { return active_.load() == 0; });
}

}  // namespace berth::kubelet::server
