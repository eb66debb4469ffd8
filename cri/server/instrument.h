// The one decorator at the CRI gRPC boundary (as containerd's internal/cri/instrument):
// every RPC handled by CriServer goes through Instrument::Call, which logs the call (debug)
// and failures (warning) with the method and the request's key IDs, records
// berth_cri_request_duration_seconds{method} and berth_cri_requests_total{method,code},
// and converts the absl::Status into a grpc::Status with the same numeric code.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace berth::cri::server {

// absl::Status -> grpc::Status: same code number (abseil's codes are the gRPC codes), same
// message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The gRPC name of a code as used by go-grpc-prometheus' grpc_code label ("OK",
// "NotFound", "DeadlineExceeded", ...).
const char* GrpcCodeName(absl::StatusCode code);

// "key=value" pairs of the IDs a request names, for logs: top-level string fields ending in
// "_id" (pod_sandbox_id, container_id), the image reference of an `image` ImageSpec, and
// config.metadata name/namespace (RunPodSandbox, CreateContainer). Empty when none.
std::string KeyIds(const google::protobuf::Message& request);

// Logs and measures CRI calls. Thread-safe; one instance per server.
class Instrument {
 public:
  // `registry` may be null (no metrics); otherwise it must outlive the Instrument. Registers
  // the two CRI families (idempotent for the same registry).
  explicit Instrument(metrics::Registry* registry);

  // Runs `fn` (returning absl::StatusOr<Resp>), moves its value into `*response` on success,
  // and returns the converted status. `method` is the RPC name ("RunPodSandbox").
  template <typename Req, typename Resp, typename Fn>
  grpc::Status Call(const char* method, const Req& request, Resp* response, Fn&& fn) {
    const auto start = std::chrono::steady_clock::now();
    Begin(method, request);
    absl::StatusOr<Resp> result = fn(request);
    absl::Status status = result.status();
    if (status.ok()) *response = std::move(*result);
    End(method, request, status, start);
    return ToGrpcStatus(status);
  }

  // For streaming RPCs: `fn` returns absl::Status.
  template <typename Req, typename Fn>
  grpc::Status CallStatus(const char* method, const Req& request, Fn&& fn) {
    const auto start = std::chrono::steady_clock::now();
    Begin(method, request);
    absl::Status status = fn(request);
    End(method, request, status, start);
    return ToGrpcStatus(status);
  }

 private:
  void Begin(const char* method, const google::protobuf::Message& request);
  void End(const char* method, const google::protobuf::Message& request, const absl::Status& status,
           std::chrono::steady_clock::time_point start);

  metrics::HistogramFamily* duration_ = nullptr;
  metrics::CounterFamily* requests_ = nullptr;
};

}  // namespace berth::cri::server
