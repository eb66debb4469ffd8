// The CRI gRPC server: serves runtime.v1.RuntimeService and runtime.v1.ImageService on a
// unix socket (normally /run/berth/berth.sock), delegating every RPC to the in-process
// cri::RuntimeService / cri::ImageService through the Instrument decorator (logs, latency
// metrics, absl::Status -> grpc::Status).
//
// Streaming RPCs: the Stream* list RPCs (StreamPodSandboxes, StreamContainers,
// StreamContainerStats, StreamPodSandboxStats, StreamPodSandboxMetrics, StreamImages) are
// served from the unary List RPC: its items are sent in responses of up to ~4 MiB each
// (usually one), each item exactly once, then EOF; no response when there are none (each
// response must carry at least one item; KEP-5825). GetContainerEvents streams
// RuntimeService::GetContainerEvents until the client cancels.
//
// Example:
//   cri::server::CriServer server(&runtime, &images, {.socket_path = "/run/berth/berth.sock",
//                                                     .registry = &registry});
//   RETURN_IF_ERROR(server.Start());
//   ...
//   server.Shutdown(std::chrono::seconds(5));
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "cri/runtime_service.h"
#include "metrics/registry.h"

namespace grpc {
class Server;
}

namespace berth::cri::server {

class Instrument;

// Settings of a CriServer.
struct CriServerOptions {
  // Path of the unix socket. Its parent directory is created (0755); a stale socket file
  // is removed; the socket is made 0660.
  std::string socket_path = "/run/berth/berth.sock";
  // Upper bound of gRPC sync-server threads (grpc::ResourceQuota::SetMaxThreads). Threads
  // are created on demand; each in-flight RPC holds one while it blocks (StopPodSandbox,
  // ExecSync, GetContainerEvents streams), so the bound must exceed the concurrency clients
  // use: 16 made `crictl rmp -fa` of 20 pods fail with "Server Threadpool Exhausted".
  int max_threads = 128;
  // Maximum size of a received or sent message, bytes.
  int max_message_bytes = 16 * 1024 * 1024;
  // Where the CRI request metrics are registered; null for none. Not owned.
  metrics::Registry* registry = nullptr;
};

// Serves the CRI on a unix socket. The services are not owned and must outlive the server;
// they are called concurrently from gRPC threads. Start() and Shutdown() are called from
// one thread.
class CriServer {
 public:
  CriServer(RuntimeService* runtime, ImageService* images, CriServerOptions options);
  ~CriServer();  // Shuts down (with a 1 s grace period) when still running.
  CriServer(const CriServer&) = delete;
  CriServer& operator=(const CriServer&) = delete;

  // Creates the socket and starts serving. Errors: AlreadyExists when another server is
  // listening on the socket, FailedPrecondition when the path exists and is not a socket
  // or the server was started already, Unavailable/Internal when gRPC cannot start.
  absl::Status Start();

  // Stops accepting RPCs, waits up to `grace` for running ones (then cancels them), and
  // removes the socket file. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // The gRPC target for clients: "unix:<socket_path>".
  std::string target() const { return "unix:" + options_.socket_path; }

 private:
  class RuntimeImpl;
  class ImageImpl;

  const CriServerOptions options_;
  std::unique_ptr<Instrument> instrument_;
  std::unique_ptr<RuntimeImpl> runtime_impl_;
  std::unique_ptr<ImageImpl> image_impl_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace berth::cri::server
