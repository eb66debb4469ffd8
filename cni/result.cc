#include "cni/result.h"

#include "absl/strings/str_cat.h"
#include "cni/config.h"

namespace berth::cni {
namespace {

std::string IpOf(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }

bool IsV6(const std::string& addr) { return addr.find(':') != std::string::npos; }

// Appends one 0.2.0 "ip4"/"ip6" section to `r`.
void AddLegacyIp(const nlohmann::json& sec, Result& r) {
  if (!sec.is_object()) return;
  nlohmann::json ip = nlohmann::json::object();
  if (sec.contains("ip")) ip["address"] = sec["ip"];
  if (sec.contains("gateway")) ip["gateway"] = sec["gateway"];
  r.ips.push_back(std::move(ip));
  if (auto it = sec.find("routes"); it != sec.end() && it->is_array()) {
    for (const auto& route : *it) r.routes.push_back(route);
  }
}

}  // namespace

absl::StatusOr<Result> ParseResultJson(const nlohmann::json& j,
                                       const std::string& default_version) {
  if (!j.is_object()) return absl::InvalidArgumentError("CNI result is not a JSON object");
  Result r;
  r.cni_version = default_version;
  if (auto it = j.find("cniVersion"); it != j.end() && it->is_string()) {
    r.cni_version = it->get<std::string>();
  }
  if (!IsSupportedVersion(r.cni_version)) {
    return absl::InvalidArgumentError(
        absl::StrCat("CNI result has unsupported cniVersion \"", r.cni_version, "\""));
  }
  if (CompareVersions(r.cni_version, "0.3.0") < 0) {
    if (j.contains("ip4")) AddLegacyIp(j["ip4"], r);
    if (j.contains("ip6")) AddLegacyIp(j["ip6"], r);
  } else {
    if (auto it = j.find("interfaces"); it != j.end() && it->is_array()) r.interfaces = *it;
    if (auto it = j.find("ips"); it != j.end()) {
      if (!it->is_array()) return absl::InvalidArgumentError("CNI result: \"ips\" is not an array");
      for (auto ip : *it) {
        if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string()) {
          return absl::InvalidArgumentError("CNI result: an ips[] entry has no \"address\"");
        }
        ip.erase("version");
        r.ips.push_back(std::move(ip));
      }
    }
    if (auto it = j.find("routes"); it != j.end() && it->is_array()) r.routes = *it;
  }
  if (auto it = j.find("dns"); it != j.end() && it->is_object()) r.dns = *it;
  return r;
}

absl::StatusOr<Result> ParseResult(const std::string& bytes, const std::string& default_version) {
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError("CNI result is not valid JSON");
  return ParseResultJson(j, default_version);
}

nlohmann::json ResultToJson(const Result& r, const std::string& version) {
  bool with_ip_version = CompareVersions(version, "1.0.0") < 0;
  nlohmann::json out = nlohmann::json::object();
  out["cniVersion"] = CompareVersions(version, "0.3.0") < 0 ? std::string("0.3.1") : version;
  if (!r.interfaces.empty()) out["interfaces"] = r.interfaces;
  nlohmann::json ips = nlohmann::json::array();
  for (auto ip : r.ips) {
    if (with_ip_version) {
      std::string addr = ip["address"].is_string() ? ip["address"].get<std::string>() : "";
      ip["version"] = IsV6(addr) ? "6" : "4";
    }
    ips.push_back(std::move(ip));
  }
  if (!ips.empty()) out["ips"] = std::move(ips);
  if (!r.routes.empty()) out["routes"] = r.routes;
  out["dns"] = r.dns;
  return out;
}

std::vector<std::string> ResultIPs(const Result& r) {
  std::vector<std::string> v4, v6;
  for (const auto& ip : r.ips) {
    if (!ip.contains("address") || !ip["address"].is_string()) continue;
    std::string addr = IpOf(ip["address"].get<std::string>());
    (IsV6(addr) ? v6 : v4).push_back(addr);
  }
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

}  // namespace berth::cni
