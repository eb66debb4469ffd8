#include "csi/csi_plugin.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "csi/api/csi.grpc.pb.h"
#include "csi/csi_client.h"

namespace berth::csi {

void DriverRegistry::Add(const std::string& name, const std::string& endpoint) {
  std::lock_guard<std::mutex> l(mu_);
  drivers_[name] = endpoint;
}

void DriverRegistry::Remove(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  drivers_.erase(name);
}

absl::StatusOr<std::string> DriverRegistry::Endpoint(const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = drivers_.find(name);
  if (it == drivers_.end()) {
    return absl::NotFoundError(
        absl::StrCat("driver name ", name, " not found in the list of registered CSI drivers"));
  }
  return it->second;
}

std::vector<std::string> DriverRegistry::Names() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  for (const auto& [k, _] : drivers_) out.push_back(k);
  return out;
}

absl::Status ValidateCsiVersions(const std::string& driver,
                                 const std::vector<std::string>& versions) {
  for (std::string v : versions) {
    if (!v.empty() && (v[0] == 'v' || v[0] == 'V')) v.erase(0, 1);
    std::vector<std::string> parts = absl::StrSplit(v, '.');
    int major = 0;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &major) && major == 1) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("validation failed for CSI Driver ", driver,
                   " at endpoint: none of the CSI versions reported by this driver [",
                   absl::StrJoin(versions, ", "), "] are supported"));
}

CsiPluginHandler::CsiPluginHandler(DriverRegistry* registry, NodeInfoManager* nim,
                                   absl::Duration timeout)
    : registry_(registry), nim_(nim), timeout_(timeout) {}

absl::Status CsiPluginHandler::ValidatePlugin(const PluginInfo& info) {
  if (info.name.empty()) return absl::InvalidArgumentError("CSI plugin without a name");
  return ValidateCsiVersions(info.name, info.supported_versions);
}

absl::Status CsiPluginHandler::RegisterPlugin(const PluginInfo& info) {
  registry_->Add(info.name, info.endpoint);
  auto stub = ::csi::v1::Node::NewStub(DialUnix(info.endpoint));
  ::csi::v1::NodeGetInfoRequest req;
  ::csi::v1::NodeGetInfoResponse resp;
  auto ctx = ContextWithTimeout(timeout_);
  absl::Status s = FromGrpc(stub->NodeGetInfo(ctx.get(), req, &resp), "NodeGetInfo");
  if (s.ok() && nim_ != nullptr) {
    std::map<std::string, std::string> topology;
    if (resp.has_accessible_topology()) {
      topology.insert(resp.accessible_topology().segments().begin(),
                      resp.accessible_topology().segments().end());
    }
    s = nim_->InstallDriver(info.name, resp.node_id(), resp.max_volumes_per_node(), topology);
  }
  if (!s.ok()) {
    registry_->Remove(info.name);
    if (nim_ != nullptr) {
      if (auto u = nim_->UninstallDriver(info.name); !u.ok()) {
        LOG(WARNING) << "CSI driver " << info.name << ": " << u;
      }
    }
    return absl::Status(
        s.code(),
        absl::StrCat("RegisterPlugin error -- plugin registration failed with err: ", s.message()));
  }
  LOG(INFO) << "CSI driver " << info.name << " registered: node ID " << resp.node_id();
  return absl::OkStatus();
}

void CsiPluginHandler::DeregisterPlugin(const PluginInfo& info) {
  registry_->Remove(info.name);
  if (nim_ == nullptr) return;
  if (auto s = nim_->UninstallDriver(info.name); !s.ok()) {
    LOG(WARNING) << "CSI driver " << info.name << ": deregistration: " << s;
  }
}

}  // namespace berth::csi
