// gRPC plumbing shared by the CSI node code: channels to a plugin's unix socket and the
// conversion of gRPC results to absl::Status, as the kubelet's csi_client.go does.
// Thread safety: free functions without shared state; safe from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace berth::csi {

// A new insecure channel to the unix socket at absolute path `socket_path`, authority
// "localhost" (the kubelet dials a new connection per operation, csi_client.go newGrpcConn).
std::shared_ptr<grpc::Channel> DialUnix(const std::string& socket_path);

// A client context whose deadline is `timeout` from now.
std::unique_ptr<grpc::ClientContext> ContextWithTimeout(absl::Duration timeout);

// The gRPC result as a Status with the same code, message "<what>: <grpc message>".
absl::Status FromGrpc(const grpc::Status& s, const std::string& what);

// Whether an error is final (upstream isFinalError): Canceled, DeadlineExceeded,
// Unavailable, ResourceExhausted and Aborted are not (the driver may still be working on the
// operation, so a mount may exist and must be cleaned up later); every other code is.
bool IsFinalError(const absl::Status& s);

// Timeouts used by the kubelet: 2 minutes for node operations (csiTimeout), 1 s for the
// registration GetInfo, 5 s for NotifyRegistrationStatus.
inline constexpr absl::Duration kCsiTimeout = absl::Minutes(2);
inline constexpr absl::Duration kGetInfoTimeout = absl::Seconds(1);
inline constexpr absl::Duration kNotifyTimeout = absl::Seconds(5);

}  // namespace berth::csi
