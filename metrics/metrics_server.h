// HTTP endpoint serving a Registry at /metrics (text format 0.0.4) and /healthz ("ok").
// cpp-httplib in a thread of its own; the kubelet's :10250 server (Boost.Beast) is separate.
// Without a registry it is a plain /healthz server (the kubelet's healthz port, 10248).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace httplib {
class Server;
}

namespace berth::metrics {

// Serves `registry` over plain HTTP on `bind_address` ("host:port" or "[v6]:port"; port 0
// picks a free port, see port()). The Registry is not owned and must outlive the server;
// nullptr serves no /metrics, only /healthz and the added handlers. `name` starts the log
// lines and error messages ("metrics server", "healthz server").
// Start() and Stop() are called from one thread (main); scrapes run on httplib's threads.
class MetricsServer {
 public:
  MetricsServer(Registry* registry, std::string bind_address, std::string name = "metrics server");
  ~MetricsServer();  // Stops the server if running.
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds and starts serving in a background thread. When this returns OK the socket is
  // listening (connections are accepted, queued until the thread runs).
  // Errors: InvalidArgument for a malformed address, Unavailable when binding fails,
  // FailedPrecondition when already started.
  absl::Status Start();
  // Also serves `registry` (not owned, must outlive the server) at `path` (e.g.
  // "/metrics/cadvisor") in text format 0.0.4. Call before Start().
  void AddRegistry(const std::string& path, Registry* registry);
  // Serves GET `path` with the body `body()` returns (run on httplib's threads, must be
  // thread-safe) and `content_type`; an error status becomes a 500 with its message.
  // Call before Start().
  void AddHandler(const std::string& path, std::function<absl::StatusOr<std::string>()> body,
                  const std::string& content_type);
  // Stops accepting, finishes in-flight requests and joins the thread. Idempotent.
  void Stop();
  // The bound TCP port (valid after a successful Start()).
  int port() const { return port_; }

 private:
  struct Handler {
    std::string path;
    std::function<absl::StatusOr<std::string>()> body;
    std::string content_type;
  };
  Registry* const registry_;
  std::vector<Handler> handlers_;
  const std::string bind_address_;
  const std::string name_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace berth::metrics
