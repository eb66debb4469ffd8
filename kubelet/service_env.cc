#include "kubelet/service_env.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace berth::kubelet {

namespace {

// upstream makeEnvVariableName: upper case, '-' -> '_'.
std::string EnvName(const std::string& s) {
  std::string out = absl::AsciiStrToUpper(s);
  for (char& c : out) {
    if (c == '-') c = '_';
  }
  return out;
}

std::string MetaField(const Json& obj, const char* field) {
  const Json& meta = obj.value("metadata", Json::object());
  auto it = meta.find(field);
  return it != meta.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ServiceEnvVars(const Json& service) {
  std::vector<std::pair<std::string, std::string>> out;
  const Json& spec = service.value("spec", Json::object());
  const std::string ip = spec.value("clusterIP", "");
  const Json& ports = spec.value("ports", Json::array());
  if (ip.empty() || ip == "None" || !ports.is_array() || ports.empty()) return out;
  const std::string prefix = EnvName(MetaField(service, "name"));
  if (prefix.empty()) return out;
  auto port_of = [](const Json& p) { return p.value("port", 0); };
  out.emplace_back(prefix + "_SERVICE_HOST", ip);
  out.emplace_back(prefix + "_SERVICE_PORT", absl::StrCat(port_of(ports[0])));
  for (const Json& p : ports) {
    const std::string name = p.value("name", "");
    if (!name.empty())
      out.emplace_back(absl::StrCat(prefix, "_SERVICE_PORT_", EnvName(name)),
                       absl::StrCat(port_of(p)));
  }
  // Docker link variables; an IPv6 cluster IP is bracketed (net.JoinHostPort).
  const std::string host = ip.find(':') != std::string::npos ? absl::StrCat("[", ip, "]") : ip;
  for (size_t i = 0; i < ports.size(); ++i) {
    const Json& p = ports[i];
    std::string protocol = p.value("protocol", "");
    if (protocol.empty()) protocol = "TCP";
    const std::string lower = absl::AsciiStrToLower(protocol);
    const std::string url = absl::StrCat(lower, "://", host, ":", port_of(p));
    if (i == 0) out.emplace_back(prefix + "_PORT", url);
    const std::string port_prefix =
        absl::StrCat(prefix, "_PORT_", port_of(p), "_", absl::AsciiStrToUpper(protocol));
    out.emplace_back(port_prefix, url);
    out.emplace_back(port_prefix + "_PROTO", lower);
    out.emplace_back(port_prefix + "_PORT", absl::StrCat(port_of(p)));
    out.emplace_back(port_prefix + "_ADDR", ip);
  }
  return out;
}

ListWatchHandlers ServiceEnv::Handlers() {
  ListWatchHandlers h;
  h.on_add = [this](const Json& s) { Upsert(s); };
  h.on_update = [this](const Json&, const Json& s) { Upsert(s); };
  h.on_delete = [this](const Json& s) { Remove(s); };
  h.on_synced = [this] { MarkSynced(); };
  return h;
}

void ServiceEnv::Upsert(const Json& service) {
  const std::string ns = MetaField(service, "namespace");
  const std::string name = MetaField(service, "name");
  auto vars = ServiceEnvVars(service);
  absl::MutexLock l(&mu_);
  if (vars.empty()) {
    if (auto it = vars_.find(ns); it != vars_.end()) it->second.erase(name);
    return;
  }
  vars_[ns][name] = std::move(vars);
}

void ServiceEnv::Remove(const Json& service) {
  const std::string ns = MetaField(service, "namespace");
  absl::MutexLock l(&mu_);
  if (auto it = vars_.find(ns); it != vars_.end()) {
    it->second.erase(MetaField(service, "name"));
    if (it->second.empty()) vars_.erase(it);
  }
}

void ServiceEnv::MarkSynced() {
  absl::MutexLock l(&mu_);
  synced_ = true;
}

absl::StatusOr<std::map<std::string, std::string>> ServiceEnv::For(
    const std::string& ns, bool enable_service_links) const {
  absl::MutexLock l(&mu_);
  if (!synced_) {
    return absl::UnavailableError(
        "services have not yet been read at least once, cannot construct envvars");
  }
  std::map<std::string, std::string> out;
  auto add = [&](const std::vector<std::pair<std::string, std::string>>& vars) {
    for (const auto& [k, v] : vars) out[k] = v;
  };
  // The master service, always (even with enableServiceLinks: false).
  if (auto d = vars_.find("default"); d != vars_.end()) {
    if (auto k = d->second.find("kubernetes"); k != d->second.end()) add(k->second);
  }
  if (enable_service_links) {
    if (auto n = vars_.find(ns); n != vars_.end()) {
      for (const auto& [name, vars] : n->second) {
        if (ns == "default" && name == "kubernetes") continue;  // added above
        add(vars);
      }
    }
  }
  return out;
}

}  // namespace berth::kubelet
