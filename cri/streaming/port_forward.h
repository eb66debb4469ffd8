// Port-forward sessions on an upgraded connection, as k8s.io/kubelet/pkg/cri/streaming/
// portforward serves them:
//   - SPDY (portforward.k8s.io): the client creates a pair of streams per forwarded
//     connection, `streamType` data and error with the same `requestID` and a `port` header;
//     once both exist the pod's port is dialled and bytes flow on the data stream; a dial
//     failure goes as text to the error stream ("error forwarding port <p> to pod <id>, uid
//     : <why>"). A FIN from the client half-closes the pod connection; the pod's EOF ends
//     the data stream.
//   - WebSocket (v4.portforward.k8s.io, portforward.k8s.io): one connection per request for
//     the `ports` given; channel 2i carries the data of ports[i], 2i+1 its errors; the first
//     message the server sends on each channel is the port as 2 bytes little-endian.
//
// Thread safety: each function runs on the session's thread and blocks until the end.
#pragma once

#include "cri/streaming/server.h"  // first: the CRI protos clash with macros of system headers

#include <cstdint>
#include <string>
#include <vector>

#include "cri/streaming/connection.h"
#include "cri/streaming/websocket.h"

namespace berth::cri::streaming::internal {

// Port-forward over SPDY on the upgraded connection `c` into the sandbox `sandbox_id`
// (ports dialled through `rt`); `leftover` is what was read past the HTTP request. Returns
// when the client is gone or `wake_fd` (server shutdown) is readable.
void RunPortForwardSpdy(Client* c, const std::string& leftover, const std::string& sandbox_id,
                        int wake_fd, StreamingRuntime* rt);

// Port-forward over WebSocket to `ports` on the accepted connection `conn` (whose output is
// c->out); `base64`: the v4.base64.channel.k8s.io text encoding of the channels. Returns when
// every port's connection reached EOF, the client closed or is gone, or `wake_fd` is readable.
void RunPortForwardWebSocket(Client* c, ws::Connection* conn, const std::string& leftover,
                             const std::string& sandbox_id, const std::vector<int32_t>& ports,
                             bool base64, int wake_fd, StreamingRuntime* rt);

}  // namespace berth::cri::streaming::internal
