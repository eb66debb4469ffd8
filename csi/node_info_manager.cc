#include "csi/node_info_manager.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::csi {
namespace {

constexpr int kConflictRetries = 5;

std::string CsiNodePath(const std::string& name) {
  return absl::StrCat("/apis/storage.k8s.io/v1/csinodes/", name);
}

}  // namespace

NodeInfoManager::NodeInfoManager(KubeApi* api, std::string node_name)
    : api_(api), node_name_(std::move(node_name)) {}

NodeInfoManager::~NodeInfoManager() { StopInitialization(); }

void NodeInfoManager::StopInitialization() {
  stop_ = true;
  if (init_thread_.joinable()) init_thread_.join();
}

absl::Status NodeInfoManager::InitializeCsiNode() {
  auto node = api_->Get(absl::StrCat("/api/v1/nodes/", node_name_));
  if (!node.ok()) {
    if (absl::IsNotFound(node.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", node_name_, " is not registered yet"));
    }
    return node.status();
  }
  const std::string uid = node->value("metadata", Json::object()).value("uid", std::string());
  auto existing = api_->Get(CsiNodePath(node_name_));
  if (existing.ok()) {
    bool owned = false;
    for (const auto& ref :
         existing->value("metadata", Json::object()).value("ownerReferences", Json::array())) {
      if (ref.value("kind", "") == "Node" && ref.value("uid", "") == uid) owned = true;
    }
    if (!owned) {
      // Left by an earlier Node of the same name (upstream ensureNodeOwnsCSINode).
      LOG(INFO) << "CSINode " << node_name_ << " is not owned by node uid " << uid
                << ": recreating it";
      RETURN_IF_ERROR(api_->Delete(CsiNodePath(node_name_)));
    } else {
      Json& meta = (*existing)["metadata"];
      if (meta.value("annotations", Json::object()).value(kMigratedPluginsAnnotation, "") !=
          kMigratedPlugins) {
        meta["annotations"][kMigratedPluginsAnnotation] = kMigratedPlugins;
        RETURN_IF_ERROR(api_->Put(CsiNodePath(node_name_), *existing).status());
      }
      initialized_ = true;
      return absl::OkStatus();
    }
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  Json csinode = {
      {"apiVersion", "storage.k8s.io/v1"},
      {"kind", "CSINode"},
      {"metadata",
       {{"name", node_name_},
        {"annotations", {{kMigratedPluginsAnnotation, kMigratedPlugins}}},
        {"ownerReferences",
         Json::array(
             {{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node_name_}, {"uid", uid}}})}}},
      {"spec", {{"drivers", Json::array()}}}};
  auto created = api_->Post("/apis/storage.k8s.io/v1/csinodes", csinode);
  if (!created.ok() && !absl::IsAlreadyExists(created.status())) return created.status();
  initialized_ = true;
  return absl::OkStatus();
}

void NodeInfoManager::StartInitialization(std::function<void()> on_done) {
  if (init_thread_.joinable()) return;
  init_thread_ = std::thread([this, on_done = std::move(on_done)] {
    int attempt = 0;
    while (!stop_) {
      absl::Status s = InitializeCsiNode();
      if (s.ok()) {
        LOG(INFO) << "CSINode " << node_name_ << " initialized";
        if (on_done) on_done();
        return;
      }
      if (attempt++ % 10 == 0) {
        LOG(WARNING) << "CSINode " << node_name_ << ": " << s;
      }
      for (int i = 0; i < 10 && !stop_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

absl::Status NodeInfoManager::UpdateNode(const std::string& driver, const std::string* node_id,
                                         const std::map<std::string, std::string>& topology) {
  absl::Status last;
  for (int attempt = 0; attempt < kConflictRetries; ++attempt) {
    ASSIGN_OR_RETURN(Json node, api_->Get(absl::StrCat("/api/v1/nodes/", node_name_)));
    const Json meta = node.value("metadata", Json::object());
    const Json labels = meta.value("labels", Json::object());
    Json patch_labels = Json::object();
    for (const auto& [k, v] : topology) {
      auto it = labels.find(k);
      if (it != labels.end() && it->is_string() && *it != v) {
        return absl::InvalidArgumentError(absl::StrCat("topology label ", k, "=", v, " of driver ",
                                                       driver, " collides with node label ", k, "=",
                                                       it->get<std::string>()));
      }
      if (it == labels.end()) patch_labels[k] = v;
    }
    const std::string current =
        meta.value("annotations", Json::object()).value(kNodeIdAnnotation, std::string());
    Json ids = current.empty() ? Json::object() : Json::parse(current, nullptr, false);
    if (!ids.is_object()) ids = Json::object();
    if (node_id != nullptr) {
      ids[driver] = *node_id;
    } else {
      ids.erase(driver);
    }
    Json annotation = ids.empty() ? Json(nullptr) : Json(ids.dump());
    if (annotation.is_string() ? annotation.get<std::string>() == current : current.empty()) {
      if (patch_labels.empty()) return absl::OkStatus();
    }
    // A merge patch carrying the resourceVersion read: a concurrent writer makes it a conflict.
    Json patch = {{"metadata",
                   {{"resourceVersion", meta.value("resourceVersion", std::string())},
                    {"annotations", {{kNodeIdAnnotation, annotation}}}}}};
    if (!patch_labels.empty()) patch["metadata"]["labels"] = patch_labels;
    auto r = api_->Patch(absl::StrCat("/api/v1/nodes/", node_name_), patch, PatchType::kMerge);
    if (r.ok()) return absl::OkStatus();
    last = r.status();
    if (!absl::IsAborted(last)) return last;
  }
  return last;
}

absl::Status NodeInfoManager::UpdateCsiNode(const std::string& driver, const Json* entry) {
  absl::Status last;
  for (int attempt = 0; attempt < kConflictRetries; ++attempt) {
    ASSIGN_OR_RETURN(Json csinode, api_->Get(CsiNodePath(node_name_)));
    Json drivers = Json::array();
    bool changed = false;
    for (const auto& d : csinode.value("spec", Json::object()).value("drivers", Json::array())) {
      if (d.value("name", "") == driver) {
        if (entry != nullptr && d == *entry) return absl::OkStatus();
        changed = true;
        continue;
      }
      drivers.push_back(d);
    }
    if (entry != nullptr) {
      drivers.push_back(*entry);
      changed = true;
    }
    if (!changed) return absl::OkStatus();
    csinode["spec"]["drivers"] = drivers;
    auto r = api_->Put(CsiNodePath(node_name_), csinode);
    if (r.ok()) return absl::OkStatus();
    last = r.status();
    if (!absl::IsAborted(last)) return last;
  }
  return last;
}

absl::Status NodeInfoManager::InstallDriver(const std::string& driver, const std::string& node_id,
                                            int64_t max_volumes,
                                            const std::map<std::string, std::string>& topology) {
  if (node_id.empty())
    return absl::InvalidArgumentError(absl::StrCat("driver ", driver, ": empty node ID"));
  RETURN_IF_ERROR(Annotate(UpdateNode(driver, &node_id, topology), "update node"));
  std::vector<std::string> keys;
  keys.reserve(topology.size());
  for (const auto& [k, _] : topology) keys.push_back(k);  // std::map: sorted
  Json entry = {{"name", driver}, {"nodeID", node_id}, {"topologyKeys", keys}};
  if (keys.empty()) entry["topologyKeys"] = nullptr;
  if (max_volumes > 0) {
    entry["allocatable"] = {
        {"count", std::min<int64_t>(max_volumes, std::numeric_limits<int32_t>::max())}};
  }
  // The API server drops a null topologyKeys; compare like with like.
  if (entry["topologyKeys"].is_null()) entry.erase("topologyKeys");
  return Annotate(UpdateCsiNode(driver, &entry), "update CSINode");
}

absl::Status NodeInfoManager::UninstallDriver(const std::string& driver) {
  RETURN_IF_ERROR(Annotate(UpdateCsiNode(driver, nullptr), "update CSINode"));
  return Annotate(UpdateNode(driver, nullptr, {}), "update node");
}

}  // namespace berth::csi
