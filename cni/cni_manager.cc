#include "cni/cni_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"

namespace berth::cni {
namespace {

constexpr char kCacheKind[] = "cniCacheV1";

bool HasSuffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

nlohmann::json PortMappingsJson(const std::vector<PortMapping>& pms) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& pm : pms) {
    nlohmann::json m = {{"hostPort", pm.host_port},
                        {"containerPort", pm.container_port},
                        {"protocol", pm.protocol.empty() ? std::string("tcp") : pm.protocol}};
    if (!pm.host_ip.empty()) m["hostIP"] = pm.host_ip;
    out.push_back(std::move(m));
  }
  return out;
}

// The error a plugin reported: its error JSON ({code, msg, details}) on stdout, else its
// stderr or stdout text.
absl::Status PluginError(const std::string& what, const RunResult& r) {
  std::string msg;
  int code = 0;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("msg")) {
    if (j["msg"].is_string()) msg = j["msg"].get<std::string>();
    if (j.contains("details") && j["details"].is_string() &&
        !j["details"].get<std::string>().empty()) {
      absl::StrAppend(&msg, ": ", j["details"].get<std::string>());
    }
    if (j.contains("code") && j["code"].is_number_integer()) code = j["code"].get<int>();
  } else {
    msg = Trim(r.out);
  }
  std::string err = Trim(r.err);
  if (msg.empty()) {
    // Run reports death by signal N as 128+N (a plugin that crashed prints nothing).
    std::string status = r.exit_code > 128 ? absl::StrCat("killed by signal ", r.exit_code - 128)
                                           : absl::StrCat("exit status ", r.exit_code);
    if (err.empty()) {
      msg = status;
    } else {
      msg = r.exit_code > 128 ? absl::StrCat(status, ": ", err) : err;
    }
  } else if (!err.empty() && err != msg) {
    absl::StrAppend(&msg, " (stderr: ", err, ")");
  }
  msg = absl::StrCat(what, ": ", msg);
  // Spec error code 11: "try again later".
  if (code == 11) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

// The capability arguments of a request, for the result cache.
nlohmann::json CapabilityArgsJson(const AttachRequest& req) {
  nlohmann::json j = {{"portMappings", PortMappingsJson(req.port_mappings)},
                      {"bandwidth",
                       {{"ingressRate", req.bandwidth.ingress_rate},
                        {"ingressBurst", req.bandwidth.ingress_burst},
                        {"egressRate", req.bandwidth.egress_rate},
                        {"egressBurst", req.bandwidth.egress_burst}}},
                      {"dns",
                       {{"servers", req.dns.servers},
                        {"searches", req.dns.searches},
                        {"options", req.dns.options}}},
                      {"ipRanges", req.ip_range_subnets}};
  return j;
}

// Reads CapabilityArgsJson's output into *req (the ID fields stay). Tolerates missing keys;
// false when `j` has the wrong shape.
bool CapabilityArgsFromJson(const nlohmann::json& j, AttachRequest* req) {
  if (!j.is_object()) return false;
  try {
    req->port_mappings.clear();
    for (const auto& m : j.value("portMappings", nlohmann::json::array())) {
      PortMapping pm;
      pm.host_port = m.value("hostPort", 0);
      pm.container_port = m.value("containerPort", 0);
      pm.protocol = m.value("protocol", std::string("tcp"));
      pm.host_ip = m.value("hostIP", std::string());
      req->port_mappings.push_back(std::move(pm));
    }
    nlohmann::json bw = j.value("bandwidth", nlohmann::json::object());
    req->bandwidth.ingress_rate = bw.value("ingressRate", int64_t{0});
    req->bandwidth.ingress_burst = bw.value("ingressBurst", int64_t{0});
    req->bandwidth.egress_rate = bw.value("egressRate", int64_t{0});
    req->bandwidth.egress_burst = bw.value("egressBurst", int64_t{0});
    nlohmann::json dns = j.value("dns", nlohmann::json::object());
    req->dns.servers = dns.value("servers", std::vector<std::string>{});
    req->dns.searches = dns.value("searches", std::vector<std::string>{});
    req->dns.options = dns.value("options", std::vector<std::string>{});
    req->ip_range_subnets = j.value("ipRanges", std::vector<std::string>{});
  } catch (const nlohmann::json::exception&) {
    return false;
  }
  return true;
}

// Writes `data` to `path` through a temp file and rename (atomic for readers), without
// fsync: like libcni's cache, the file must survive a restart of berth, not of the machine
// (after a reboot nothing it describes exists), and two fsyncs would double the ADD overhead.
absl::Status WriteCacheFile(const std::string& path, const std::string& data) {
  std::string tmp = absl::StrCat(path, ".tmp");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", tmp));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return ErrnoStatus(e, absl::StrCat("write ", tmp));
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(e, absl::StrCat("close ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(e, absl::StrCat("rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

// A duration in milliseconds with one decimal, for logs.
std::string Millis(std::chrono::nanoseconds d) {
  return absl::StrFormat("%.1f", std::chrono::duration<double, std::milli>(d).count());
}

// Rejects requests whose IDs would not be valid CNI arguments (or would escape cache_dir).
absl::Status ValidateRequest(const char* command, const AttachRequest& req) {
  if (!IsValidCniName(req.container_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("CNI ", command, ": invalid container ID \"", req.container_id, "\""));
  }
  return Annotate(ValidateInterfaceName(req.ifname),
                  absl::StrCat("CNI ", command, " for sandbox ", req.container_id));
}

}  // namespace

CniManager::CniManager(CniManagerOptions opts)
    : opts_(std::move(opts)),
      network_(absl::FailedPreconditionError("network config not loaded yet")) {}

std::string CniManager::Fingerprint() const {
  struct stat st;
  if (stat(opts_.conf_dir.c_str(), &st) != 0) return "missing";
  std::string fp = absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
  auto names = ListDir(opts_.conf_dir);
  if (!names.ok()) return fp;
  for (const auto& n : *names) {
    if (!HasSuffix(n, ".conflist") && !HasSuffix(n, ".conf") && !HasSuffix(n, ".json")) continue;
    if (stat(JoinPath(opts_.conf_dir, n).c_str(), &st) != 0) continue;
    absl::StrAppend(&fp, "|", n, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size,
                    ":", st.st_ino);
  }
  return fp;
}

void CniManager::MaybeReload() {
  std::string fp = Fingerprint();
  if (loaded_ && fp == fingerprint_) return;
  network_ = LoadDefaultNetwork(opts_.conf_dir);
  fingerprint_ = std::move(fp);
  loaded_ = true;
  if (network_.ok()) {
    LOG(INFO) << "CNI: using network " << network_->name << " (cniVersion " << network_->cni_version
              << ") from " << network_->source_path;
  } else {
    LOG(WARNING) << "CNI: " << network_.status().message();
  }
}

absl::StatusOr<NetworkConfigList> CniManager::CurrentNetwork() {
  absl::MutexLock l(&mu_);
  MaybeReload();
  return network_;
}

absl::StatusOr<std::string> CniManager::FindPlugin(const std::string& type) const {
  for (const auto& dir : opts_.bin_dirs) {
    std::string p = JoinPath(dir, type);
    struct stat st;
    if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0) return p;
  }
  return absl::NotFoundError(
      absl::StrCat("plugin ", type, " not found in ", absl::StrJoin(opts_.bin_dirs, ":")));
}

absl::Status CniManager::Ready() {
  ASSIGN_OR_RETURN(NetworkConfigList net, CurrentNetwork());
  for (const auto& p : net.plugins) {
    auto path = FindPlugin(p.type);
    if (!path.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("network ", net.name, ": ", path.status().message()));
    }
  }
  // CNI 1.1 STATUS: each plugin says whether it can serve ADD (e.g. IPAM has addresses).
  if (CompareVersions(net.cni_version, "1.1.0") >= 0) {
    for (const auto& p : net.plugins) {
      auto out = ExecPlugin("STATUS", net, p, AttachRequest{}, std::nullopt);
      if (!out.ok()) return absl::FailedPreconditionError(out.status().message());
    }
  }
  return absl::OkStatus();
}

std::string CniManager::CachePath(const std::string& network, const AttachRequest& req) const {
  return JoinPath(opts_.cache_dir, absl::StrCat(network, "-", req.container_id, "-", req.ifname));
}

absl::StatusOr<std::string> CniManager::ExecPlugin(
    const std::string& command, const NetworkConfigList& net, const PluginConfig& plugin,
    const AttachRequest& req, const std::optional<Result>& prev,
    std::chrono::nanoseconds* plugin_time, const nlohmann::json* gc_attachments) const {
  // STATUS and GC concern the network, not one attachment.
  const bool status_cmd = command == "STATUS" || command == "GC";
  std::string what =
      status_cmd ? absl::StrCat("CNI ", command, " plugin ", plugin.type, " of network ", net.name)
                 : absl::StrCat("CNI ", command, " plugin ", plugin.type, " for sandbox ",
                                req.container_id);
  auto bin = FindPlugin(plugin.type);
  if (!bin.ok()) return Annotate(bin.status(), what);

  // Stdin: the plugin's configuration with the list's name and cniVersion, prevResult and
  // runtimeConfig injected (SPEC section 4.1 "Deriving execution configuration").
  nlohmann::json conf = plugin.raw;
  conf["name"] = net.name;
  conf["cniVersion"] = net.cni_version;
  if (prev) {
    conf["prevResult"] = ResultToJson(*prev, net.cni_version);
  } else {
    conf.erase("prevResult");
  }
  if (gc_attachments) conf["cni.dev/valid-attachments"] = *gc_attachments;
  // runtimeConfig carries only the capabilities the plugin declares (CNI CONVENTIONS.md).
  auto runtime_config = [&conf]() -> nlohmann::json& {
    if (!conf.contains("runtimeConfig") || !conf["runtimeConfig"].is_object()) {
      conf["runtimeConfig"] = nlohmann::json::object();
    }
    return conf["runtimeConfig"];
  };
  if (!status_cmd && plugin.HasCapability("portMappings")) {
    runtime_config()["portMappings"] = PortMappingsJson(req.port_mappings);
  }
  if (!status_cmd && plugin.HasCapability("dns") && !req.dns.empty()) {
    runtime_config()["dns"] = {
        {"servers", req.dns.servers}, {"searches", req.dns.searches}, {"options", req.dns.options}};
  }
  if (!status_cmd && plugin.HasCapability("ipRanges") && !req.ip_range_subnets.empty()) {
    nlohmann::json ranges = nlohmann::json::array();
    for (const auto& subnet : req.ip_range_subnets) {
      ranges.push_back(nlohmann::json::array({{{"subnet", subnet}}}));
    }
    runtime_config()["ipRanges"] = std::move(ranges);
  }
  if (!status_cmd && plugin.HasCapability("bandwidth") && !req.bandwidth.empty()) {
    nlohmann::json bw = nlohmann::json::object();
    if (req.bandwidth.ingress_rate > 0) {
      bw["ingressRate"] = req.bandwidth.ingress_rate;
      bw["ingressBurst"] = req.bandwidth.ingress_burst;
    }
    if (req.bandwidth.egress_rate > 0) {
      bw["egressRate"] = req.bandwidth.egress_rate;
      bw["egressBurst"] = req.bandwidth.egress_burst;
    }
    runtime_config()["bandwidth"] = bw;
  }

  SpawnOptions so;
  std::string cni_path = absl::StrCat("CNI_PATH=", absl::StrJoin(opts_.bin_dirs, ":"));
  if (status_cmd) {
    // STATUS and GC concern no attachment: only CNI_COMMAND and CNI_PATH (SPEC 1.1 section 3).
    so.extra_env = {absl::StrCat("CNI_COMMAND=", command), cni_path};
  } else {
    so.extra_env = {
        absl::StrCat("CNI_COMMAND=", command),
        absl::StrCat("CNI_CONTAINERID=", req.container_id),
        absl::StrCat("CNI_NETNS=", req.netns_path),
        absl::StrCat("CNI_IFNAME=", req.ifname),
        absl::StrCat("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=", req.pod_namespace,
                     ";K8S_POD_NAME=", req.pod_name, ";K8S_POD_INFRA_CONTAINER_ID=",
                     req.container_id, ";K8S_POD_UID=", req.pod_uid),
        cni_path,
    };
  }
  LOG(DEBUG) << what << ": running " << *bin;
  const auto start = std::chrono::steady_clock::now();
  auto r = Run({*bin}, DumpJson(conf), opts_.plugin_timeout, so);
  if (plugin_time) *plugin_time += std::chrono::steady_clock::now() - start;
  if (!r.ok()) return Annotate(r.status(), what);
  if (r->timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(what, ": timed out after ", opts_.plugin_timeout.count(), "ms"));
  }
  if (r->exit_code != 0) return PluginError(what, *r);
  if (!r->err.empty()) {
    LOG(DEBUG) << what << ": stderr: " << Trim(r->err);
  }
  return std::move(r->out);
}

std::string CniManager::FindCachePath(const std::string& network, const AttachRequest& req) const {
  if (!network.empty() && PathExists(CachePath(network, req))) return CachePath(network, req);
  // The network may have been renamed or removed since ADD: find the attachment by suffix.
  auto names = ListDir(opts_.cache_dir);
  if (!names.ok()) return "";
  std::string suffix = absl::StrCat("-", req.container_id, "-", req.ifname);
  for (const auto& n : *names) {
    if (HasSuffix(n, suffix) && n.size() > suffix.size()) return JoinPath(opts_.cache_dir, n);
  }
  return "";
}

absl::StatusOr<CniManager::Cached> CniManager::ReadCache(const std::string& path) const {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("kind") || j["kind"] != kCacheKind ||
      !j.contains("config")) {
    return absl::DataLossError(absl::StrCat("CNI result cache ", path, " is corrupt"));
  }
  auto config = ParseNetworkConfig(DumpJson(j["config"]));
  if (!config.ok()) {
    return absl::DataLossError(
        absl::StrCat("CNI result cache ", path, ": ", config.status().message()));
  }
  Cached c{std::move(*config), std::nullopt};
  if (j.contains("result") && !j["result"].is_null()) {
    auto res = ParseResultJson(j["result"], c.config.cni_version);
    if (!res.ok()) {
      return absl::DataLossError(
          absl::StrCat("CNI result cache ", path, ": ", res.status().message()));
    }
    c.result = std::move(*res);
  }
  if (j.contains("capabilityArgs")) {
    AttachRequest args;
    if (!CapabilityArgsFromJson(j["capabilityArgs"], &args)) {
      return absl::DataLossError(absl::StrCat("CNI result cache ", path, ": bad capabilityArgs"));
    }
    c.capability_args = std::move(args);
  }
  return c;
}

absl::Status CniManager::WriteCache(const NetworkConfigList& net, const AttachRequest& req,
                                    const Result& result) const {
  RETURN_IF_ERROR(MkdirAll(opts_.cache_dir, 0700));
  nlohmann::json j = {
      {"kind", kCacheKind},
      {"containerId", req.container_id},
      {"ifName", req.ifname},
      {"networkName", net.name},
      {"netns", req.netns_path},
      {"config", net.raw},
      {"result", ResultToJson(result, net.cni_version)},
      {"capabilityArgs", CapabilityArgsJson(req)},
  };
  return WriteCacheFile(CachePath(net.name, req), DumpJson(j));
}

absl::StatusOr<AttachResult> CniManager::Add(const AttachRequest& req) {
  const auto start = std::chrono::steady_clock::now();
  std::chrono::nanoseconds plugin_time{0};
  RETURN_IF_ERROR(ValidateRequest("ADD", req));
  ASSIGN_OR_RETURN(NetworkConfigList net, CurrentNetwork());
  std::optional<Result> prev;
  absl::Status err;
  for (const auto& plugin : net.plugins) {
    auto out = ExecPlugin("ADD", net, plugin, req, prev, &plugin_time);
    if (!out.ok()) {
      err = out.status();
      break;
    }
    auto res = ParseResult(*out, net.cni_version);
    if (!res.ok()) {
      err = Annotate(res.status(), absl::StrCat("CNI ADD plugin ", plugin.type, " for sandbox ",
                                                req.container_id));
      break;
    }
    prev = std::move(*res);
  }
  if (err.ok() && !prev) err = absl::InternalError("CNI ADD: no result");
  if (err.ok()) err = WriteCache(net, req, *prev);
  if (!err.ok()) {
    // Undo what the plugins that succeeded (and the one that failed) may have set up.
    absl::Status del = DelList(net, req, prev);
    if (!del.ok()) {
      LOG(WARNING) << "rollback after failed ADD: " << del.message();
    }
    return err;
  }
  AttachResult out;
  out.ips = ResultIPs(*prev);
  out.raw_json = DumpJson(ResultToJson(*prev, net.cni_version));
  LOG(INFO) << "CNI ADD for sandbox " << req.container_id << ": "
            << Millis(std::chrono::steady_clock::now() - start) << " ms (plugins "
            << Millis(plugin_time) << " ms)";
  return out;
}

absl::Status CniManager::DelList(const NetworkConfigList& net, const AttachRequest& req,
                                 const std::optional<Result>& cached,
                                 std::chrono::nanoseconds* plugin_time) const {
  // Spec: prevResult is passed to DEL from 0.4.0 on.
  std::optional<Result> prev;
  if (CompareVersions(net.cni_version, "0.4.0") >= 0) prev = cached;
  absl::Status first;
  for (auto it = net.plugins.rbegin(); it != net.plugins.rend(); ++it) {
    auto out = ExecPlugin("DEL", net, *it, req, prev, plugin_time);
    if (!out.ok() && first.ok()) first = out.status();
  }
  return first;
}

absl::Status CniManager::Del(const AttachRequest& req) {
  const auto start = std::chrono::steady_clock::now();
  std::chrono::nanoseconds plugin_time{0};
  RETURN_IF_ERROR(ValidateRequest("DEL", req));
  auto current = CurrentNetwork();
  std::string path = FindCachePath(current.ok() ? current->name : std::string(), req);
  std::optional<Cached> cached;
  if (!path.empty()) {
    auto c = ReadCache(path);
    if (c.ok()) {
      cached = std::move(*c);
    } else {
      // A corrupt cache must not block teardown: fall back to the current configuration.
      LOG(WARNING) << "CNI DEL for sandbox " << req.container_id << ": " << c.status().message()
                   << "; using the current network config";
    }
  }
  if (!cached && !current.ok()) {
    if (path.empty()) {
      // Nothing attached through us that we know of, and no network to ask.
      LOG(WARNING) << "CNI DEL for sandbox " << req.container_id
                   << ": no cached result and no network config: " << current.status().message();
      return absl::OkStatus();
    }
    return Annotate(current.status(), absl::StrCat("CNI DEL for sandbox ", req.container_id));
  }
  const NetworkConfigList& net = cached ? cached->config : *current;
  AttachRequest del_req = req;
  if (cached && cached->capability_args) {
    const AttachRequest& args = *cached->capability_args;
    del_req.port_mappings = args.port_mappings;
    del_req.bandwidth = args.bandwidth;
    del_req.dns = args.dns;
    del_req.ip_range_subnets = args.ip_range_subnets;
  }
  RETURN_IF_ERROR(DelList(net, del_req, cached ? cached->result : std::nullopt, &plugin_time));
  if (!path.empty() && unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("remove CNI result cache ", path));
  }
  LOG(INFO) << "CNI DEL for sandbox " << req.container_id << ": "
            << Millis(std::chrono::steady_clock::now() - start) << " ms (plugins "
            << Millis(plugin_time) << " ms)";
  return absl::OkStatus();
}

absl::Status CniManager::Check(const AttachRequest& req) {
  RETURN_IF_ERROR(ValidateRequest("CHECK", req));
  auto current = CurrentNetwork();
  std::string path = FindCachePath(current.ok() ? current->name : std::string(), req);
  if (path.empty()) {
    return absl::NotFoundError(
        absl::StrCat("CNI CHECK for sandbox ", req.container_id, ": no cached result"));
  }
  ASSIGN_OR_RETURN(Cached cached, ReadCache(path));
  if (!cached.result) {
    return absl::NotFoundError(
        absl::StrCat("CNI CHECK for sandbox ", req.container_id, ": no cached result"));
  }
  const NetworkConfigList& net = cached.config;
  if (net.disable_check) return absl::OkStatus();
  if (CompareVersions(net.cni_version, "0.4.0") < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CNI CHECK: network ", net.name, " has cniVersion ", net.cni_version, " (< 0.4.0)"));
  }
  for (const auto& plugin : net.plugins) {
    auto out = ExecPlugin("CHECK", net, plugin, req, cached.result);
    if (!out.ok()) return out.status();
  }
  return absl::OkStatus();
}

absl::Status CniManager::Gc(const std::vector<AttachRequest>& valid) {
  auto is_valid = [&valid](const std::string& id, const std::string& ifname) {
    for (const auto& v : valid) {
      if (v.container_id == id && v.ifname == ifname) return true;
    }
    return false;
  };
  absl::Status first;
  // 1. Attachments berth cached but no longer knows: DEL with what ADD used.
  auto names = ListDir(opts_.cache_dir);
  if (names.ok()) {
    for (const auto& n : *names) {
      std::string path = JoinPath(opts_.cache_dir, n);
      auto bytes = ReadFile(path);
      if (!bytes.ok()) continue;
      nlohmann::json j = nlohmann::json::parse(*bytes, nullptr, false);
      if (j.is_discarded() || !j.is_object() || j.value("kind", "") != kCacheKind) continue;
      AttachRequest req;
      req.container_id = j.value("containerId", "");
      req.ifname = j.value("ifName", "eth0");
      req.netns_path = j.value("netns", "");
      if (is_valid(req.container_id, req.ifname) || !ValidateRequest("GC", req).ok()) continue;
      if (!PathExists(req.netns_path)) req.netns_path.clear();
      LOG(INFO) << "CNI GC: removing stale attachment of sandbox " << req.container_id;
      absl::Status s = Del(req);
      if (!s.ok() && first.ok()) first = s;
    }
  }
  // 2. CNI 1.1 GC of every plugin with the attachments that remain valid.
  auto net = CurrentNetwork();
  if (!net.ok()) return first.ok() ? net.status() : first;
  if (CompareVersions(net->cni_version, "1.1.0") < 0) return first;
  nlohmann::json attachments = nlohmann::json::array();
  for (const auto& v : valid) {
    attachments.push_back({{"containerID", v.container_id}, {"ifname", v.ifname}});
  }
  for (const auto& p : net->plugins) {
    auto out = ExecPlugin("GC", *net, p, AttachRequest{}, std::nullopt, nullptr, &attachments);
    if (!out.ok() && first.ok()) first = out.status();
  }
  return first;
}

}  // namespace berth::cni
