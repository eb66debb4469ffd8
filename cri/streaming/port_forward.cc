// Port-forward over SPDY and WebSocket (see port_forward.h).
#include "cri/streaming/port_forward.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "cri/streaming/spdy.h"

namespace berth::cri::streaming::internal {

// ---- port-forward over SPDY (portforward.k8s.io) ----

// One forwarded connection: the client's data + error streams of one requestID.
struct ForwardPair {
  uint32_t data_id = 0, error_id = 0;
  int32_t port = 0;
  int fd = -1;
  std::string to_pod;
  bool client_fin = false, pod_shut = false, pod_eof = false, started = false;
};

void RunPortForwardSpdy(Client* c, const std::string& leftover, const std::string& sandbox_id,
                        int wake_fd, StreamingRuntime* rt) {
  spdy::FrameParser parser;
  spdy::HeaderCodec codec;
  std::map<std::string, ForwardPair> pairs;        // by requestID
  std::map<uint32_t, std::string> stream_request;  // stream id -> requestID
  uint32_t last_id = 0;

  auto finish_pair = [&](const std::string& rid) {
    auto it = pairs.find(rid);
    if (it == pairs.end()) return;
    ForwardPair& p = it->second;
    if (p.fd >= 0) close(p.fd);
    if (p.error_id) c->out.append(spdy::EncodeData(p.error_id, "", true));
    stream_request.erase(p.data_id);
    stream_request.erase(p.error_id);
    pairs.erase(it);
  };
  auto start_pair = [&](const std::string& rid, ForwardPair& p) {
    p.started = true;
    auto fd = rt->DialPort(sandbox_id, p.port);
    if (!fd.ok()) {
      std::string msg = absl::StrCat("error forwarding port ", p.port, " to pod ", sandbox_id,
                                     ", uid : ", fd.status().message());
      c->out.append(spdy::EncodeData(p.error_id, msg, false));
      c->out.append(spdy::EncodeData(p.data_id, "", true));
      finish_pair(rid);
      return;
    }
    p.fd = *fd;
    SetNonBlocking(p.fd);
  };
  auto on_bytes = [&](absl::string_view bytes) -> absl::Status {
    parser.Append(bytes);
    for (;;) {
      ASSIGN_OR_RETURN(std::optional<spdy::Frame> f, parser.Next());
      if (!f) return absl::OkStatus();
      if (!f->control) {
        auto it = stream_request.find(f->stream_id);
        if (it == stream_request.end()) continue;
        auto pit = pairs.find(it->second);
        if (pit == pairs.end() || pit->second.data_id != f->stream_id) continue;  // error stream
        ForwardPair& p = pit->second;
        absl::string_view data = f->data;
        if (p.to_pod.empty() && p.fd >= 0 && !p.pod_shut && !data.empty()) {
          // Straight to the pod when nothing is queued (one copy less); errors and the
          // rest are left to the loop below.
          ssize_t n = send(p.fd, data.data(), data.size(), MSG_NOSIGNAL);
          if (n > 0) data.remove_prefix(static_cast<size_t>(n));
        }
        p.to_pod.append(data.data(), data.size());
        if (f->fin()) p.client_fin = true;
        continue;
      }
      switch (f->type) {
        case spdy::FrameType::kSynStream: {
          ASSIGN_OR_RETURN(spdy::Headers h, codec.Decode(f->header_block));
          last_id = std::max(last_id, f->stream_id);
          std::string type = h["streamtype"], rid = h["requestid"];
          int32_t port = 0;
          if ((type != "data" && type != "error") || !absl::SimpleAtoi(h["port"], &port) ||
              port <= 0 || port > 65535) {
            c->out.append(spdy::EncodeRstStream(f->stream_id, spdy::kRstRefusedStream));
            break;
          }
          c->out.append(spdy::EncodeSynReply(f->stream_id, 0, codec.Encode({})));
          ForwardPair& p = pairs[rid];
          (type == "data" ? p.data_id : p.error_id) = f->stream_id;
          p.port = port;
          stream_request[f->stream_id] = rid;
          if (type == "data" && f->fin()) p.client_fin = true;
          if (p.data_id && p.error_id && !p.started) start_pair(rid, p);
          break;
        }
        case spdy::FrameType::kRstStream: {
          auto it = stream_request.find(f->stream_id);
          if (it != stream_request.end()) {
            auto pit = pairs.find(it->second);
            if (pit != pairs.end() && pit->second.data_id == f->stream_id) finish_pair(it->second);
          }
          break;
        }
        case spdy::FrameType::kPing:
          c->out.append(spdy::EncodePing(f->ping_id));
          break;
        case spdy::FrameType::kHeaders:
        case spdy::FrameType::kSynReply: {
          ASSIGN_OR_RETURN(spdy::Headers unused, codec.Decode(f->header_block));
          (void)unused;
          break;
        }
        default:
          break;
      }
    }
  };

  auto cleanup = [&] {
    for (auto& [rid, p] : pairs) {
      if (p.fd >= 0) close(p.fd);
    }
    pairs.clear();
  };
  if (!leftover.empty() && !on_bytes(leftover).ok()) return;
  std::vector<struct pollfd> fds;
  std::vector<std::string> fd_rid;
  std::vector<char> pod_buf(spdy::kMaxForwardPayload);
  for (;;) {
    // Write what the pods take; half-close after the client's FIN.
    size_t max_to_pod = 0;
    for (auto it = pairs.begin(); it != pairs.end();) {
      ForwardPair& p = it->second;
      std::string rid = it->first;
      ++it;
      if (p.fd < 0) continue;
      while (!p.to_pod.empty()) {
        ssize_t n = send(p.fd, p.to_pod.data(), p.to_pod.size(), MSG_NOSIGNAL);
        if (n > 0) {
          p.to_pod.erase(0, static_cast<size_t>(n));
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && errno == EAGAIN) {
          break;
        } else {
          p.to_pod.clear();
          p.client_fin = true;
        }
      }
      if (p.client_fin && p.to_pod.empty() && !p.pod_shut) {
        shutdown(p.fd, SHUT_WR);
        p.pod_shut = true;
      }
      if (p.pod_shut && p.pod_eof) {
        finish_pair(rid);
        continue;
      }
      max_to_pod = std::max(max_to_pod, p.to_pod.size());
    }
    c->Flush();
    if (c->gone) break;
    fds.clear();
    fd_rid.clear();
    short cev = max_to_pod < kHighWater ? POLLIN : 0;
    if (c->pending() > 0) cev |= POLLOUT;
    fds.push_back({c->fd, cev, 0});
    fds.push_back({wake_fd, POLLIN, 0});
    for (auto& [rid, p] : pairs) {
      if (p.fd < 0) continue;
      short ev = 0;
      if (!p.pod_eof && c->pending() < kHighWater) ev |= POLLIN;
      if (!p.to_pod.empty()) ev |= POLLOUT;
      if (!ev) continue;
      fds.push_back({p.fd, ev, 0});
      fd_rid.push_back(rid);
    }
    int rc = poll(fds.data(), fds.size(), -1);
    if (rc < 0 && errno != EINTR) break;
    if (rc <= 0) continue;
    if (fds[1].revents) break;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      std::string got;
      bool ok = c->Read(&got);
      if (!got.empty()) {
        if (auto s = on_bytes(got); !s.ok()) {
          LOG(WARNING) << "streaming: port-forward: " << s;
          break;
        }
      }
      if (!ok) break;
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      auto it = pairs.find(fd_rid[i - 2]);
      if (it == pairs.end() || it->second.pod_eof) continue;
      ForwardPair& p = it->second;
      ssize_t r = recv(p.fd, pod_buf.data(), pod_buf.size(), 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        p.pod_eof = true;
        c->out.append(spdy::EncodeData(p.data_id, "", true));
        if (r < 0) {  // reset by the pod: nothing more will be written either
          p.to_pod.clear();
          p.client_fin = true;
        }
        continue;
      }
      spdy::AppendData(&c->out, p.data_id,
                       absl::string_view(pod_buf.data(), static_cast<size_t>(r)), false);
    }
  }
  cleanup();
  if (!c->gone) {
    c->out.append(spdy::EncodeGoAway(last_id, 0));
    c->FlushAll(Clock::now() + std::chrono::seconds(1));
  }
}

// ---- port-forward over WebSocket (v4.portforward.k8s.io / portforward.k8s.io) ----

void RunPortForwardWebSocket(Client* c, ws::Connection* conn, const std::string& leftover,
                             const std::string& sandbox_id, const std::vector<int32_t>& ports,
                             int wake_fd, StreamingRuntime* rt) {
  auto send_channel = [&](size_t channel, absl::string_view data) {
    conn->Send(ws::EncodeChannelMessage(static_cast<int>(channel), data, false), false);
  };
  std::vector<ForwardPair> fw(ports.size());
  bool closing = false;
  for (size_t i = 0; i < ports.size(); ++i) {
    fw[i].port = ports[i];
    std::string port_le = {static_cast<char>(ports[i] & 0xff), static_cast<char>(ports[i] >> 8)};
    send_channel(2 * i, port_le);
    send_channel(2 * i + 1, port_le);
    auto fd = rt->DialPort(sandbox_id, ports[i]);
    if (!fd.ok()) {
      send_channel(2 * i + 1, absl::StrCat("error forwarding port ", ports[i], " to pod ",
                                           sandbox_id, ", uid : ", fd.status().message()));
      fw[i].pod_eof = fw[i].pod_shut = true;
      continue;
    }
    fw[i].fd = *fd;
    SetNonBlocking(fw[i].fd);
  }
  auto on_bytes = [&](absl::string_view bytes) -> absl::Status {
    std::vector<ws::Message> messages;
    absl::Status s = conn->OnBytes(bytes, &messages);
    for (const auto& m : messages) {
      ASSIGN_OR_RETURN(ws::ChannelMessage cm, ws::DecodeChannelMessage(m.payload, false));
      size_t idx = static_cast<size_t>(cm.channel / 2);
      if (cm.channel % 2 == 0 && idx < fw.size() && fw[idx].fd >= 0) fw[idx].to_pod.append(cm.data);
    }
    if (conn->closed_by_peer()) closing = true;
    return s;
  };
  if (!leftover.empty() && !on_bytes(leftover).ok()) closing = true;
  while (!closing) {
    bool all_done = true;
    for (auto& p : fw) {
      if (p.fd < 0) continue;
      while (!p.to_pod.empty()) {
        ssize_t n = send(p.fd, p.to_pod.data(), p.to_pod.size(), MSG_NOSIGNAL);
        if (n > 0) {
          p.to_pod.erase(0, static_cast<size_t>(n));
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && errno == EAGAIN) {
          break;
        } else {
          p.to_pod.clear();
        }
      }
      if (!p.pod_eof) all_done = false;
    }
    if (all_done) break;
    c->Flush();
    if (c->gone) break;
    std::vector<struct pollfd> fds;
    std::vector<size_t> idx;
    fds.push_back({c->fd, static_cast<short>(POLLIN | (c->pending() ? POLLOUT : 0)), 0});
    fds.push_back({wake_fd, POLLIN, 0});
    for (size_t i = 0; i < fw.size(); ++i) {
      if (fw[i].fd < 0 || fw[i].pod_eof) continue;
      short ev = c->pending() < kHighWater ? POLLIN : 0;
      if (!fw[i].to_pod.empty()) ev |= POLLOUT;
      fds.push_back({fw[i].fd, ev, 0});
      idx.push_back(i);
    }
    int rc = poll(fds.data(), fds.size(), -1);
    if (rc < 0 && errno != EINTR) break;
    if (rc <= 0) continue;
    if (fds[1].revents) break;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      std::string got;
      bool ok = c->Read(&got);
      if (!got.empty() && !on_bytes(got).ok()) break;
      if (!ok) break;
    }
    for (size_t k = 2; k < fds.size(); ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ForwardPair& p = fw[idx[k - 2]];
      char buf[kReadChunk];
      ssize_t r = recv(p.fd, buf, sizeof(buf), 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        p.pod_eof = true;
        continue;
      }
      send_channel(2 * idx[k - 2], absl::string_view(buf, static_cast<size_t>(r)));
    }
  }
  for (auto& p : fw) {
    if (p.fd >= 0) close(p.fd);
  }
  if (!c->gone) {
    conn->Close();  // 1000 normal closure, unless the client closed first
    c->FlushAll(Clock::now() + std::chrono::seconds(1));
  }
}

}  // namespace berth::cri::streaming::internal
