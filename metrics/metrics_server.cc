#include "metrics/metrics_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <memory>

#include "absl/strings/numbers.h"
#include "base/log.h"

namespace berth::metrics {

MetricsServer::MetricsServer(Registry* registry, std::string bind_address, std::string name)
    : registry_(registry), bind_address_(std::move(bind_address)), name_(std::move(name)) {}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::AddRegistry(const std::string& path, Registry* registry) {
  AddHandler(
      path, [registry]() -> absl::StatusOr<std::string> { return registry->Expose(); },
      "text/plain; version=0.0.4; charset=utf-8");
}

void MetricsServer::AddHandler(const std::string& path,
                               std::function<absl::StatusOr<std::string>()> body,
                               const std::string& content_type) {
  handlers_.push_back(Handler{path, std::move(body), content_type});
}

absl::Status MetricsServer::Start() {
  if (server_ != nullptr) {
    return absl::FailedPreconditionError(name_ + " on " + bind_address_ + ": already started");
  }
  size_t colon = bind_address_.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(bind_address_).substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(name_ + " bind address \"" + bind_address_ +
                                      "\": want host:port");
  }
  std::string host = bind_address_.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:10249
  }
  if (host.empty()) host = "0.0.0.0";

  auto server = std::make_unique<httplib::Server>();
  // httplib's default also sets SO_REUSEPORT, which would let a second daemon bind the same
  // port silently and share its scrapes; keep only SO_REUSEADDR.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (Registry* registry = registry_; registry != nullptr) {
    server->Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
      res.set_content(registry->Expose(), "text/plain; version=0.0.4; charset=utf-8");
    });
  }
  for (const Handler& h : handlers_) {
    server->Get(h.path, [h](const httplib::Request&, httplib::Response& res) {
      absl::StatusOr<std::string> body = h.body();
      if (!body.ok()) {
        res.status = 500;
        res.set_content(std::string(body.status().message()) + "\n", "text/plain; charset=utf-8");
        return;
      }
      res.set_content(*body, h.content_type);
    });
  }
  server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain; charset=utf-8");
  });
  int bound;
  if (port == 0) {
    bound = server->bind_to_any_port(host);
  } else {
    bound = server->bind_to_port(host, port) ? port : -1;
  }
  if (bound < 0) {
    return absl::UnavailableError(name_ + ": cannot bind " + bind_address_ +
                                  " (address in use or not local?)");
  }
  port_ = bound;
  server_ = std::move(server);
  httplib::Server* s = server_.get();
  auto exited = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([s, exited, addr = bind_address_, name = name_] {
    if (!s->listen_after_bind()) {
      LOG(WARNING) << name << " on " << addr << " stopped with an error";
    }
    exited->store(true);
  });
  // httplib's stop() is a no-op until the accept loop has started: wait for it, so that a
  // Stop() right after Start() cannot leave the thread listening forever.
  while (!s->is_running() && !exited->load())
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  LOG(INFO) << name_ << " listening on " << host << ":" << port_;
  return absl::OkStatus();
}

void MetricsServer::Stop() {
  if (server_ == nullptr) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace berth::metrics
