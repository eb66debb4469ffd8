// The kubelet's HTTPS server (the API server's view of a node, default port 10250), as the
// upstream kubelet's pkg/kubelet/server does for a remote runtime:
//  - TLS with a serving certificate; client certificates verified against the client CA,
//    bearer tokens through TokenReview, authorization through SubjectAccessReview (Auth);
//  - GET /healthz, /pods, /containerLogs/{ns}/{pod}/{container} (PodLogOptions query), the
//    GET handlers added with AddHandler (/metrics, /metrics/cadvisor, /stats/summary, ...);
//  - POST /checkpoint/{ns}/{pod}/{container} (see KubeletServerOptions::checkpoints_dir);
//  - /exec/{ns}/{pod}[/{uid}]/{container}, /attach/..., /portForward/{ns}/{pod}[/{uid}]:
//    the container is looked up through the CRI (labels io.kubernetes.pod.*), CRI
//    Exec/Attach/PortForward return a URL of the runtime's streaming server, and the
//    client's upgrade request is proxied to it; bytes are piped both ways until either side
//    closes (apimachinery's UpgradeAwareHandler).
//
// Threads: one acceptor thread; each connection gets a thread of its own running the
// connection's I/O (Boost.Asio coroutines on a private io_context) and its blocking calls
// (CRI, webhooks, log reads). The number of connections is bounded (max_connections).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cri/runtime_service.h"
#include "kubelet/certificate/x509.h"
#include "kubelet/server/auth.h"

namespace berth::kubelet::server {

struct KubeletServerOptions {
  std::string address = "0.0.0.0";   // --address
  int port = 10250;                  // --port; 0 picks a free port (see port())
  std::string tls_cert_file;         // PEM serving certificate (chain); required
  std::string tls_private_key_file;  // PEM key; required
  std::string client_ca_file;        // --client-ca-file; empty: no x509 authentication
  std::string node_name;             // the Node these requests are authorized against
  int max_connections = 1024;        // further connections are closed at once
  // Where POST /checkpoint/{namespace}/{pod}/{container} (authz nodes/checkpoint) writes
  // checkpoint-<pod>_<namespace>-<container>-<RFC3339 UTC>.tar through CRI
  // CheckpointContainer and answers {"items":[<path>]}, as upstream kubelet does under
  // <--root-dir>/checkpoints (created 0700 on first use). Empty: the endpoint is a 404.
  std::string checkpoints_dir;
  // The rotating serving certificate (serverTLSBootstrap, as the kubelet's
  // serverCertificateManager.Current): asked on every TLS handshake; while it returns
  // nullptr (no approved certificate yet) the handshake presents tls_cert_file. Called on
  // connection threads: must be thread-safe and cheap.
  std::function<std::shared_ptr<const certificate::KeyPair>()> serving_certificate;
};

class KubeletServer {
 public:
  // A GET handler's body (run on a connection thread; must be thread-safe). An error status
  // becomes a 500 with its message.
  using BodyFn = std::function<absl::StatusOr<std::string>()>;

  // `runtime` and `auth` are not owned and must outlive the server.
  KubeletServer(const KubeletServerOptions& options, cri::RuntimeService* runtime, Auth* auth);
  ~KubeletServer();  // Stop()s.
  KubeletServer(const KubeletServer&) = delete;
  KubeletServer& operator=(const KubeletServer&) = delete;

  // Serves GET `path` (exact match) with `body()` and `content_type`. Call before Start().
  void AddHandler(const std::string& path, BodyFn body, const std::string& content_type);

  // Loads the certificates, binds and starts accepting. When OK is returned the socket
  // listens. Errors: InvalidArgument (address, certificate files), Unavailable (bind).
  absl::Status Start();
  // Stops accepting, ends every connection (streams are cut) and joins their threads.
  // Idempotent.
  void Stop();

  // The bound port (after Start()).
  int port() const { return port_; }
  // Connections currently open (each has one thread).
  int active_connections() const { return active_.load(); }

  struct Impl;  // connection handling, in kubelet_server.cc

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<int> active_{0};
  int port_ = 0;
};

}  // namespace berth::kubelet::server
