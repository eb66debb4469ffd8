#include "cni/config.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/log.h"

namespace berth::cni {
namespace {

bool HasSuffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string StringField(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

bool PluginConfig::HasCapability(const std::string& cap) const {
  auto caps = raw.find("capabilities");
  if (caps == raw.end() || !caps->is_object()) return false;
  auto it = caps->find(cap);
  return it != caps->end() && it->is_boolean() && it->get<bool>();
}

bool IsSupportedVersion(const std::string& version) {
  static const char* const kVersions[] = {"0.1.0", "0.2.0", "0.3.0", "0.3.1",
                                          "0.4.0", "1.0.0", "1.1.0"};
  return std::find(std::begin(kVersions), std::end(kVersions), version) != std::end(kVersions);
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool IsValidCniName(const std::string& name) {
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::Status ValidateInterfaceName(const std::string& ifname) {
  if (ifname.empty() || ifname.size() > 15 || ifname == "." || ifname == "..") {
    return absl::InvalidArgumentError(absl::StrCat("invalid interface name \"", ifname, "\""));
  }
  for (char c : ifname) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("invalid interface name \"", ifname, "\""));
    }
  }
  return absl::OkStatus();
}

int CompareVersions(const std::string& a, const std::string& b) {
  std::vector<std::string> pa = absl::StrSplit(a, '.');
  std::vector<std::string> pb = absl::StrSplit(b, '.');
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    int x = i < pa.size() ? std::atoi(pa[i].c_str()) : 0;
    int y = i < pb.size() ? std::atoi(pb[i].c_str()) : 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

absl::StatusOr<NetworkConfigList> ParseNetworkConfig(const std::string& bytes) {
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("network config is not a JSON object");
  }
  if (!j.contains("plugins")) {
    // A single plugin configuration (.conf): wrap it into a list (libcni ConfListFromConf).
    if (StringField(j, "type").empty()) {
      return absl::InvalidArgumentError("network config has neither \"plugins\" nor \"type\"");
    }
    nlohmann::json list = {{"name", j.value("name", nlohmann::json())},
                           {"cniVersion", j.value("cniVersion", nlohmann::json())},
                           {"plugins", nlohmann::json::array({j})}};
    if (j.contains("disableCheck")) list["disableCheck"] = j["disableCheck"];
    j = std::move(list);
  }
  NetworkConfigList out;
  out.name = StringField(j, "name");
  if (out.name.empty()) return absl::InvalidArgumentError("network config: missing \"name\"");
  if (!IsValidCniName(out.name)) {
    return absl::InvalidArgumentError(absl::StrCat("network config: invalid name \"", out.name,
                                                   "\" (want [a-zA-Z0-9][a-zA-Z0-9_.-]*)"));
  }
  out.cni_version = StringField(j, "cniVersion");
  if (out.cni_version.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("network ", out.name, ": missing \"cniVersion\""));
  }
  if (!IsSupportedVersion(out.cni_version)) {
    return absl::InvalidArgumentError(
        absl::StrCat("network ", out.name, ": unsupported cniVersion ", out.cni_version));
  }
  if (auto it = j.find("disableCheck"); it != j.end()) {
    if (it->is_boolean()) {
      out.disable_check = it->get<bool>();
    } else if (it->is_string()) {
      out.disable_check = it->get<std::string>() == "true";
    }
  }
  const auto& plugins = j["plugins"];
  if (!plugins.is_array() || plugins.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("network ", out.name, ": \"plugins\" must be a non-empty array"));
  }
  for (size_t i = 0; i < plugins.size(); ++i) {
    const auto& p = plugins[i];
    if (!p.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("network ", out.name, ": plugins[", i, "] is not an object"));
    }
    PluginConfig pc;
    pc.type = StringField(p, "type");
    if (pc.type.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("network ", out.name, ": plugins[", i, "] has no \"type\""));
    }
    if (pc.type.find('/') != std::string::npos || pc.type == "." || pc.type == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("network ", out.name, ": plugins[", i, "] has invalid type ", pc.type));
    }
    pc.raw = p;
    out.plugins.push_back(std::move(pc));
  }
  out.raw = std::move(j);
  return out;
}

absl::StatusOr<NetworkConfigList> LoadDefaultNetwork(const std::string& dir) {
  auto names = ListDir(dir);
  if (!names.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no network config found in ", dir, ": ", names.status().message()));
  }
  std::vector<std::string> skipped;
  for (const std::string& name : *names) {  // ListDir returns sorted names
    if (!HasSuffix(name, ".conflist") && !HasSuffix(name, ".conf") && !HasSuffix(name, ".json")) {
      continue;
    }
    std::string path = JoinPath(dir, name);
    auto bytes = ReadFile(path);
    if (!bytes.ok()) {
      skipped.push_back(absl::StrCat(name, ": ", bytes.status().message()));
      continue;
    }
    auto list = ParseNetworkConfig(*bytes);
    if (!list.ok()) {
      LOG(WARNING) << "CNI: skipping network config " << path << ": " << list.status().message();
      skipped.push_back(absl::StrCat(name, ": ", list.status().message()));
      continue;
    }
    list->source_path = path;
    return list;
  }
  std::string msg = absl::StrCat("no network config found in ", dir);
  if (!skipped.empty()) absl::StrAppend(&msg, " (skipped ", absl::StrJoin(skipped, "; "), ")");
  return absl::FailedPreconditionError(msg);
}

}  // namespace berth::cni
