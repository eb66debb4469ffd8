#include "kubelet/prober.h"

#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "kubelet/pod_util.h"

namespace berth::kubelet {

namespace {

constexpr size_t kMaxProbeOutput = 10 * 1024;  // upstream maxRespBodyLength
constexpr char kUserAgent[] = "kube-probe/berth";

const char* ProbeField(ProbeType type) {
  switch (type) {
    case ProbeType::kLiveness:
      return "livenessProbe";
    case ProbeType::kReadiness:
      return "readinessProbe";
    case ProbeType::kStartup:
      return "startupProbe";
  }
  return "";
}

const char* ResultLabel(ProbeResult r) {
  switch (r) {
    case ProbeResult::kSuccess:
      return "successful";
    case ProbeResult::kFailure:
      return "failed";
    case ProbeResult::kUnknown:
      return "unknown";
  }
  return "unknown";
}

// The containers the prober follows: spec.containers then the restartable init containers
// (native sidecars), in spec order.
std::vector<const api::Container*> ProbedContainers(const api::Pod& pod) {
  std::vector<const api::Container*> out;
  for (const api::Container& c : pod.spec.containers) out.push_back(&c);
  for (const api::Container& c : pod.spec.init_containers) {
    if (api::IsRestartableInitContainer(c)) out.push_back(&c);
  }
  return out;
}

const std::optional<api::Probe>& ProbeOf(const api::Container& c, ProbeType type) {
  switch (type) {
    case ProbeType::kLiveness:
      return c.liveness_probe;
    case ProbeType::kReadiness:
      return c.readiness_probe;
    case ProbeType::kStartup:
      break;
  }
  return c.startup_probe;
}

std::string Truncate(std::string s) {
  if (s.size() > kMaxProbeOutput) s.resize(kMaxProbeOutput);
  return s;
}

std::string HostOf(const Json& handler, const ProbeTarget& target) {
  std::string host = handler.value("host", std::string());
  return host.empty() ? target.pod_ip : host;
}

// Connects a TCP socket to host:port within `timeout`. Returns the fd, or -1 and *error.
int DialTcp(const std::string& host, int port, absl::Duration timeout, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    *error = absl::StrCat("lookup ", host, ": ", ::gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  *error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      *error = absl::StrCat("socket: ", std::strerror(errno));
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int n = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
      if (n == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) break;
        *error = absl::StrCat("connect: ", std::strerror(err));
      } else {
        *error = "i/o timeout";
      }
    } else {
      *error = absl::StrCat("connect: ", std::strerror(errno));
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

// Appends a protobuf varint.
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

}  // namespace

std::string ProbeTypeName(ProbeType type) {
  switch (type) {
    case ProbeType::kLiveness:
      return "Liveness";
    case ProbeType::kReadiness:
      return "Readiness";
    case ProbeType::kStartup:
      return "Startup";
  }
  return "";
}

ProbeTiming ProbeTimingOf(const api::Probe& probe) {
  ProbeTiming t;
  auto positive_or = [](int64_t v, int64_t def) { return v > 0 ? v : def; };
  t.initial_delay_seconds = std::max<int64_t>(probe.initial_delay_seconds, 0);
  t.period_seconds = positive_or(probe.period_seconds, t.period_seconds);
  t.timeout_seconds = positive_or(probe.timeout_seconds, t.timeout_seconds);
  t.success_threshold = positive_or(probe.success_threshold, t.success_threshold);
  t.failure_threshold = positive_or(probe.failure_threshold, t.failure_threshold);
  t.termination_grace_period_seconds = probe.termination_grace_period_seconds;
  return t;
}

int ResolveProbePort(const Json& port, const Json& container) {
  if (port.is_number_integer()) {
    int p = port.get<int>();
    return p > 0 && p < 65536 ? p : -1;
  }
  if (!port.is_string()) return -1;
  std::string name = port.get<std::string>();
  if (!name.empty() &&
      std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int p = std::stoi(name.substr(0, 6));
    return p > 0 && p < 65536 ? p : -1;
  }
  for (const auto& cp : container.value("ports", Json::array())) {
    if (cp.value("name", std::string()) == name) return cp.value("containerPort", -1);
  }
  return -1;
}

ProbeOutcome RunExecProbe(cri::RuntimeService* runtime, const ProbeTarget& target) {
  cri::v1::ExecSyncRequest req;
  req.set_container_id(target.container_id);
  for (const auto& arg : target.probe["exec"].value("command", Json::array())) {
    if (arg.is_string()) req.add_cmd(arg.get<std::string>());
  }
  req.set_timeout(std::max<int64_t>(1, absl::ToInt64Seconds(target.timeout)));
  auto resp = runtime->ExecSync(req);
  if (!resp.ok()) {
    if (absl::IsDeadlineExceeded(resp.status())) {
      return {ProbeResult::kFailure,
              absl::StrCat("command timed out after ", absl::FormatDuration(target.timeout))};
    }
    return {ProbeResult::kUnknown, std::string(resp.status().message())};
  }
  std::string output = Truncate(absl::StrCat(resp->stdout(), resp->stderr()));
  if (resp->exit_code() == 0) return {ProbeResult::kSuccess, output};
  if (output.empty()) output = absl::StrCat("command exited with code ", resp->exit_code());
  return {ProbeResult::kFailure, output};
}

ProbeOutcome RunHttpGetProbe(const ProbeTarget& target) {
  const Json& hg = target.probe["httpGet"];
  std::string scheme = absl::AsciiStrToLower(hg.value("scheme", std::string("HTTP")));
  std::string host = HostOf(hg, target);
  int port = ResolveProbePort(hg.contains("port") ? hg["port"] : Json(), target.container);
  if (port < 0)
    return {ProbeResult::kUnknown, absl::StrCat("invalid port ", hg.value("port", Json()).dump())};
  if (scheme != "http" && scheme != "https")
    return {ProbeResult::kUnknown, absl::StrCat("unsupported scheme ", scheme)};
  std::string path = hg.value("path", std::string("/"));
  if (path.empty() || path[0] != '/') path.insert(path.begin(), '/');
  httplib::Headers headers = {{"User-Agent", kUserAgent}, {"Accept", "*/*"}};
  for (const auto& h : hg.value("httpHeaders", Json::array())) {
    std::string name = h.value("name", std::string());
    if (name.empty()) continue;
    auto same = [&](const auto& kv) { return absl::EqualsIgnoreCase(kv.first, name); };
    for (auto it = std::find_if(headers.begin(), headers.end(), same); it != headers.end();
         it = std::find_if(headers.begin(), headers.end(), same)) {
      headers.erase(it);
    }
    headers.emplace(name, h.value("value", std::string()));
  }
  int64_t usec = absl::ToInt64Microseconds(target.timeout);
  auto configure = [&](httplib::ClientImpl& cli) {
    cli.set_connection_timeout(usec / 1000000, usec % 1000000);
    cli.set_read_timeout(usec / 1000000, usec % 1000000);
    cli.set_write_timeout(usec / 1000000, usec % 1000000);
    cli.set_keep_alive(false);
    cli.set_follow_location(false);
  };
  // Redirects are followed on the probed host only, at most 10 (upstream's redirectChecker
  // with followNonLocalRedirects=false); a redirect elsewhere ends the probe as a success
  // with a warning.
  const std::string probed_host = host;
  for (int hops = 0;; ++hops) {
    const std::string url = absl::StrCat(scheme, "://", host, ":", port, path);
    httplib::Result res = [&] {
      if (scheme == "https") {
        httplib::SSLClient cli(host, port);
        cli.enable_server_certificate_verification(false);
        configure(cli);
        return cli.Get(path, headers);
      }
      httplib::ClientImpl cli(host, port);
      configure(cli);
      return cli.Get(path, headers);
    }();
    if (!res) {
      return {ProbeResult::kFailure,
              absl::StrCat("Get \"", url, "\": ", httplib::to_string(res.error()))};
    }
    const int status = res->status;
    const bool redirect =
        status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    std::string loc = res->get_header_value("Location");
    if (redirect && !loc.empty()) {
      std::string next_scheme = scheme, next_host = host, next_path = loc;
      int next_port = port;
      if (size_t sep = loc.find("://"); sep != std::string::npos) {
        next_scheme = absl::AsciiStrToLower(loc.substr(0, sep));
        std::string rest = loc.substr(sep + 3);
        size_t slash = rest.find('/');
        std::string authority = rest.substr(0, slash);
        next_path = slash == std::string::npos ? "/" : rest.substr(slash);
        next_port = next_scheme == "https" ? 443 : 80;
        size_t colon = authority.rfind(':');
        if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
          if (!absl::SimpleAtoi(authority.substr(colon + 1), &next_port)) next_port = -1;
          authority.resize(colon);
        }
        next_host = authority;
        if (next_host.size() > 1 && next_host.front() == '[')
          next_host = next_host.substr(1, next_host.size() - 2);
      } else if (loc[0] != '/') {
        next_path = absl::StrCat(path.substr(0, path.rfind('/') + 1), loc);
      }
      if (next_host == probed_host && hops < 10 && next_port > 0 &&
          (next_scheme == "http" || next_scheme == "https")) {
        scheme = next_scheme;
        host = next_host;
        port = next_port;
        path = next_path;
        continue;
      }
      if (next_host == probed_host && hops >= 10) {
        return {ProbeResult::kFailure,
                absl::StrCat("Get \"", url, "\": stopped after 10 redirects")};
      }
    }
    if (status >= 200 && status < 400) {
      if (status >= 300) {
        ProbeOutcome o{
            ProbeResult::kSuccess,
            absl::StrCat("Probe terminated redirects, Response body: ", Truncate(res->body))};
        o.warning = true;
        return o;
      }
      return {ProbeResult::kSuccess, Truncate(res->body)};
    }
    return {ProbeResult::kFailure, absl::StrCat("HTTP probe failed with statuscode: ", status)};
  }
}

ProbeOutcome RunTcpSocketProbe(const ProbeTarget& target) {
  const Json& ts = target.probe["tcpSocket"];
  std::string host = HostOf(ts, target);
  int port = ResolveProbePort(ts.contains("port") ? ts["port"] : Json(), target.container);
  if (port < 0)
    return {ProbeResult::kUnknown, absl::StrCat("invalid port ", ts.value("port", Json()).dump())};
  std::string error;
  int fd = DialTcp(host, port, target.timeout, &error);
  if (fd < 0)
    return {ProbeResult::kFailure, absl::StrCat("dial tcp ", host, ":", port, ": ", error)};
  ::close(fd);
  return {ProbeResult::kSuccess, ""};
}

ProbeOutcome RunGrpcProbe(const ProbeTarget& target) {
  const Json& g = target.probe["grpc"];
  int port = g.value("port", -1);
  if (port <= 0 || port > 65535) return {ProbeResult::kUnknown, "invalid port"};
  std::string service = g.value("service", std::string());
  std::string addr = absl::StrCat(target.pod_ip, ":", port);
  if (target.pod_ip.find(':') != std::string::npos)
    addr = absl::StrCat("[", target.pod_ip, "]:", port);
  // grpc.health.v1.HealthCheckRequest{string service = 1}, encoded by hand.
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0a);
    PutVarint(&request, service.size());
    request += service;
  }
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMicroseconds(target.timeout));
  ctx.AddMetadata("user-agent", kUserAgent);
  grpc::Slice slice(request);
  grpc::ByteBuffer req_buf(&slice, 1);
  grpc::ByteBuffer resp_buf;
  grpc::Status status;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req_buf, &cq);
  call->StartCall();
  call->Finish(&resp_buf, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) {
    return {ProbeResult::kFailure,
            absl::StrCat("rpc error: code = ", static_cast<int>(status.error_code()),
                         " desc = ", status.error_message())};
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (resp_buf.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // HealthCheckResponse{ServingStatus status = 1}: field 1, varint; absent = UNKNOWN (0).
  uint64_t serving = 0;
  for (size_t i = 0; i < bytes.size();) {
    uint8_t key = static_cast<uint8_t>(bytes[i++]);
    if ((key & 7) != 0) break;  // only varint fields expected
    uint64_t v = 0;
    for (int shift = 0; i < bytes.size(); shift += 7) {
      uint8_t b = static_cast<uint8_t>(bytes[i++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if ((key >> 3) == 1) serving = v;
  }
  static const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  if (serving == 1) return {ProbeResult::kSuccess, ""};
  return {ProbeResult::kFailure, absl::StrCat("service unhealthy (responded with \"",
                                              serving < 4 ? kNames[serving] : "?", "\")")};
}

ProbeOutcome DefaultProbeRunner::Run(const ProbeTarget& target) {
  const Json& p = target.probe;
  if (p.contains("exec")) return RunExecProbe(runtime_, target);
  if (p.contains("httpGet")) return RunHttpGetProbe(target);
  if (p.contains("tcpSocket")) return RunTcpSocketProbe(target);
  if (p.contains("grpc")) return RunGrpcProbe(target);
  return {ProbeResult::kUnknown, "missing probe handler"};
}

// --- Prober ---

Prober::Prober(ProbeRunner* runner, ProberOptions options)
    : runner_(runner), opts_(std::move(options)) {
  if (opts_.registry != nullptr) {
    probe_total_ = opts_.registry->AddCounter(
        "prober_probe_total",
        "Cumulative number of a liveness, readiness or startup probe for a container by result.",
        {"probe_type", "result", "container", "pod", "namespace", "pod_uid"});
  }
}

Prober::~Prober() { Stop(); }

ProbeResult Prober::InitialResult(ProbeType type) {
  switch (type) {
    case ProbeType::kLiveness:
      return ProbeResult::kSuccess;
    case ProbeType::kReadiness:
      return ProbeResult::kFailure;
    case ProbeType::kStartup:
      return ProbeResult::kUnknown;
  }
  return ProbeResult::kUnknown;
}

void Prober::SyncPod(const api::Pod& pod, const std::string& pod_ip,
                     const std::map<std::string, ProbedContainer>& containers) {
  const std::string& uid = pod.metadata.uid;
  auto shared = std::make_shared<const api::Pod>(pod);
  absl::MutexLock l(&mu_);
  if (stopping_ || uid.empty()) return;
  PodEntry& e = pods_[uid];
  e.pod = shared;
  e.pod_ip = pod_ip;
  e.containers = containers;
  for (const api::Container* c : ProbedContainers(*shared)) {
    const std::string& name = c->name;
    for (ProbeType type : {ProbeType::kLiveness, ProbeType::kReadiness, ProbeType::kStartup}) {
      const std::optional<api::Probe>& probe = ProbeOf(*c, type);
      if (!probe) continue;
      Key key{uid, name, type};
      if (workers_.count(key)) continue;
      auto w = std::make_unique<Worker>();
      w->key = key;
      // The handler as the runner reads it: the object as sent.
      w->probe = c->raw.value(ProbeField(type), Json::object());
      w->timing = ProbeTimingOf(*probe);
      w->result = InitialResult(type);
      if (probe_total_ != nullptr) {
        w->metric_labels = {ProbeTypeName(type),     "", name, pod.metadata.name,
                            pod.metadata.namespace_, uid};
        for (ProbeResult r :
             {ProbeResult::kSuccess, ProbeResult::kFailure, ProbeResult::kUnknown}) {
          std::vector<std::string> labels = w->metric_labels;
          labels[1] = ResultLabel(r);
          w->counters[static_cast<int>(r)] = probe_total_->WithLabelValues(labels);
        }
      }
      Worker* raw = w.get();
      if (opts_.start_workers) w->thread = std::thread([this, raw] { Loop(raw); });
      workers_.emplace(key, std::move(w));
    }
  }
}

void Prober::RemovePod(const std::string& uid) {
  std::vector<std::unique_ptr<Worker>> gone;
  {
    absl::MutexLock l(&mu_);
    pods_.erase(uid);
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (std::get<0>(it->first) == uid) {
        it->second->stop = true;
        gone.push_back(std::move(it->second));
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    cv_.SignalAll();
  }
  for (auto& w : gone) {
    if (w->thread.joinable()) w->thread.join();
    if (probe_total_ != nullptr) {
      for (ProbeResult r : {ProbeResult::kSuccess, ProbeResult::kFailure, ProbeResult::kUnknown}) {
        std::vector<std::string> labels = w->metric_labels;
        labels[1] = ResultLabel(r);
        probe_total_->Remove(labels);
      }
    }
  }
}

void Prober::Stop() {
  std::vector<std::unique_ptr<Worker>> gone;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    for (auto& [_, w] : workers_) {
      w->stop = true;
      gone.push_back(std::move(w));
    }
    workers_.clear();
    pods_.clear();
    cv_.SignalAll();
  }
  for (auto& w : gone) {
    if (w->thread.joinable()) w->thread.join();
  }
}

size_t Prober::WorkerCount() {
  absl::MutexLock l(&mu_);
  return workers_.size();
}

void Prober::ProbeAllForTest() {
  std::vector<Worker*> all;
  {
    absl::MutexLock l(&mu_);
    for (auto& [_, w] : workers_) all.push_back(w.get());
  }
  for (Worker* w : all) DoProbe(w);
}

void Prober::Loop(Worker* w) {
  while (true) {
    DoProbe(w);
    absl::MutexLock l(&mu_);
    absl::Time deadline = absl::Now() + absl::Seconds(w->timing.period_seconds);
    while (!w->stop && !w->trigger && absl::Now() < deadline) cv_.WaitWithDeadline(&mu_, deadline);
    if (w->stop) return;
    w->trigger = false;
  }
}

bool Prober::StartedLocked(const std::string& uid, const std::string& name, const std::string& id) {
  auto it = workers_.find(Key{uid, name, ProbeType::kStartup});
  if (it == workers_.end()) return true;
  return it->second->container_id == id && it->second->result == ProbeResult::kSuccess;
}

void Prober::DoProbe(Worker* w) {
  const auto& [uid, name, type] = w->key;
  ProbeTarget target;
  std::shared_ptr<const api::Pod> pod;
  {
    absl::MutexLock l(&mu_);
    if (w->stop) return;
    auto pit = pods_.find(uid);
    if (pit == pods_.end()) return;
    auto cit = pit->second.containers.find(name);
    if (cit == pit->second.containers.end()) return;
    const ProbedContainer& c = cit->second;
    if (c.id != w->container_id) {
      // A new instance: start over from the initial result.
      w->container_id = c.id;
      w->result = InitialResult(type);
      w->last_outcome = ProbeResult::kUnknown;
      w->result_run = 0;
      w->on_hold = false;
    }
    if (!c.running || w->on_hold) return;
    if (type != ProbeType::kStartup && !StartedLocked(uid, name, c.id)) return;
    if (type == ProbeType::kStartup && w->result == ProbeResult::kSuccess) return;
    if (w->timing.initial_delay_seconds > 0 &&
        opts_.clock() - c.started_at < absl::Seconds(w->timing.initial_delay_seconds)) {
      return;
    }
    pod = pit->second.pod;
    target.type = type;
    target.probe = w->probe;
    target.pod_ip = pit->second.pod_ip;
    target.container_id = c.id;
    target.timeout = absl::Seconds(w->timing.timeout_seconds);
    for (const api::Container* spec_c : ProbedContainers(*pod)) {
      if (spec_c->name == name) target.container = spec_c->raw;
    }
  }
  ProbeOutcome outcome = runner_->Run(target);
  if (metrics::Counter* ctr = w->counters[static_cast<int>(outcome.result)]) ctr->Inc();
  std::string field_path = absl::StrCat("spec.containers{", name, "}");
  if (outcome.warning && opts_.record_event) {
    opts_.record_event(pod->raw, "Warning", "ProbeWarning",
                       absl::StrCat(ProbeTypeName(type), " probe warning: ", outcome.output),
                       field_path);
  }
  if (outcome.result != ProbeResult::kSuccess && opts_.record_event) {
    // Upstream prober.go: a Warning "Unhealthy" per failed (or errored) run.
    opts_.record_event(pod->raw, "Warning", "Unhealthy",
                       absl::StrCat(ProbeTypeName(type), " probe ",
                                    outcome.result == ProbeResult::kUnknown ? "errored" : "failed",
                                    ": ", outcome.output),
                       field_path);
  }
  ProbeResult r =
      outcome.result == ProbeResult::kSuccess ? ProbeResult::kSuccess : ProbeResult::kFailure;
  bool changed = false;
  {
    absl::MutexLock l(&mu_);
    if (w->stop || w->container_id != target.container_id) return;
    if (w->last_outcome == r) {
      ++w->result_run;
    } else {
      w->last_outcome = r;
      w->result_run = 1;
    }
    if ((r == ProbeResult::kFailure && w->result_run < w->timing.failure_threshold) ||
        (r == ProbeResult::kSuccess && w->result_run < w->timing.success_threshold)) {
      return;
    }
    if (w->result != r) {
      w->result = r;
      changed = true;
      if (type == ProbeType::kStartup && r == ProbeResult::kSuccess) {
        // Started: the readiness probe runs at once, not a period later (upstream's prober
        // manager triggers it for a started, unready container).
        if (auto rw = workers_.find(Key{uid, name, ProbeType::kReadiness}); rw != workers_.end()) {
          rw->second->trigger = true;
          cv_.SignalAll();
        }
      }
    }
    if (r == ProbeResult::kFailure && type != ProbeType::kReadiness) {
      // The container will be killed; no more probes until it is replaced.
      w->on_hold = true;
      w->result_run = 0;
    }
  }
  if (changed) {
    LOG(INFO) << "probe " << ProbeTypeName(type) << " of container " << name << " (pod " << uid
              << ") is now " << ResultLabel(r);
    if (opts_.on_change) opts_.on_change(uid);
  }
}

Prober::ContainerProbeStatus Prober::Status(const std::string& uid, const std::string& name,
                                            const std::string& container_id) {
  absl::MutexLock l(&mu_);
  ContainerProbeStatus st;
  st.started = StartedLocked(uid, name, container_id);
  auto it = workers_.find(Key{uid, name, ProbeType::kReadiness});
  bool readiness_ok = it == workers_.end() || (it->second->container_id == container_id &&
                                               it->second->result == ProbeResult::kSuccess);
  st.ready = st.started && readiness_ok;
  return st;
}

std::optional<Prober::Kill> Prober::KillReason(const std::string& uid, const std::string& name,
                                               const std::string& container_id,
                                               int64_t pod_grace_seconds) {
  absl::MutexLock l(&mu_);
  for (ProbeType type : {ProbeType::kStartup, ProbeType::kLiveness}) {
    auto it = workers_.find(Key{uid, name, type});
    if (it == workers_.end()) continue;
    const Worker& w = *it->second;
    if (w.container_id == container_id && w.result == ProbeResult::kFailure) {
      return Kill{type, w.timing.termination_grace_period_seconds.value_or(pod_grace_seconds)};
    }
  }
  return std::nullopt;
}

}  // namespace berth::kubelet
