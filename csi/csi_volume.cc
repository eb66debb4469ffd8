#include "csi/csi_volume.h"

#include <openssl/sha.h>
#include <sys/stat.h>

#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "csi/api/csi.grpc.pb.h"
#include "csi/csi_client.h"

namespace berth::csi {
namespace {

using Json = nlohmann::json;
using NodeCap = ::csi::v1::NodeServiceCapability::RPC;
using AccessMode = ::csi::v1::VolumeCapability::AccessMode;

constexpr char kPluginDir[] = "kubernetes.io~csi";
constexpr char kVolData[] = "vol_data.json";

absl::Status WriteJson(const std::string& path, const Json& j) {
  return WriteFileAtomic(path, j.dump(), 0640);
}

absl::StatusOr<Json> ReadJson(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  return j;
}

// Removes `path` when nothing is mounted at or below it (mountinfo, so that bind mounts
// from the same filesystem count too, as mount-utils' IsNotMountPoint).
absl::Status RemoveUnlessMounted(const std::string& path) {
  if (!PathExists(path)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<std::string> mounts, MountPointsUnder(path));
  if (!mounts.empty())
    return absl::FailedPreconditionError(absl::StrCat(mounts.front(), " is still mounted"));
  return RemoveAll(path);
}

std::map<std::string, std::string> StringMap(const Json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

std::string Str(const Json& j, const std::string& key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const Json& Obj(const Json& j, const std::string& key) {
  static const Json kEmpty = Json::object();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

void FillCapability(const VolumeRequest& req, const std::set<int>& caps,
                    ::csi::v1::VolumeCapability* cap) {
  cap->mutable_access_mode()->set_mode(static_cast<AccessMode::Mode>(
      CsiAccessMode(req.access_mode, caps.count(NodeCap::SINGLE_NODE_MULTI_WRITER) > 0)));
  auto* mount = cap->mutable_mount();
  mount->set_fs_type(req.fs_type);
  for (const auto& o : req.mount_options) mount->add_mount_flags(o);
  if (req.fs_group && caps.count(NodeCap::VOLUME_MOUNT_GROUP)) {
    mount->set_volume_mount_group(std::to_string(*req.fs_group));
  }
}

// The data of Secret `ns`/`name`, decoded.
absl::StatusOr<std::map<std::string, std::string>> SecretData(KubeApi* api, const std::string& ns,
                                                              const std::string& name) {
  ASSIGN_OR_RETURN(Json secret,
                   api->Get(absl::StrCat("/api/v1/namespaces/", ns, "/secrets/", name)));
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : StringMap(Obj(secret, "data"))) {
    std::string decoded;
    if (!absl::Base64Unescape(v, &decoded)) {
      return absl::DataLossError(
          absl::StrCat("secret ", ns, "/", name, " key ", k, ": invalid base64"));
    }
    out[k] = decoded;
  }
  return out;
}

// A secretRef ({name, namespace}) of a PV or inline volume; `default_ns` when it has none.
absl::Status ResolveSecretRef(KubeApi* api, const Json& ref, const std::string& default_ns,
                              std::map<std::string, std::string>* out) {
  if (!ref.is_object() || Str(ref, "name").empty()) return absl::OkStatus();
  std::string ns = Str(ref, "namespace");
  if (ns.empty()) ns = default_ns;
  ASSIGN_OR_RETURN(*out, SecretData(api, ns, Str(ref, "name")));
  return absl::OkStatus();
}

}  // namespace

int CsiAccessMode(const std::string& mode, bool single_node_multi_writer) {
  if (mode == "ReadWriteOnce") {
    return single_node_multi_writer ? AccessMode::SINGLE_NODE_MULTI_WRITER
                                    : AccessMode::SINGLE_NODE_WRITER;
  }
  if (mode == "ReadWriteOncePod") {
    return single_node_multi_writer ? AccessMode::SINGLE_NODE_SINGLE_WRITER
                                    : AccessMode::SINGLE_NODE_WRITER;
  }
  if (mode == "ReadOnlyMany") return AccessMode::MULTI_NODE_READER_ONLY;
  if (mode == "ReadWriteMany") return AccessMode::MULTI_NODE_MULTI_WRITER;
  return AccessMode::UNKNOWN;
}

std::string Sha256Hex(const std::string& s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string UniqueVolumeName(const std::string& driver, const std::string& handle) {
  return absl::StrCat("kubernetes.io/csi/", driver, "^", handle);
}

CsiVolumes::CsiVolumes(const DriverRegistry* registry, KubeApi* api, std::string kubelet_root,
                       std::string node_name, absl::Duration timeout)
    : registry_(registry),
      api_(api),
      root_(std::move(kubelet_root)),
      node_name_(std::move(node_name)),
      timeout_(timeout) {}

std::string CsiVolumes::StagingPath(const std::string& driver, const std::string& handle) const {
  return absl::StrCat(root_, "/plugins/kubernetes.io/csi/", driver, "/", Sha256Hex(handle),
                      "/globalmount");
}

std::string CsiVolumes::TargetPath(const std::string& pod_uid, const std::string& spec_name) const {
  // utilstrings.EscapeQualifiedName: '/' -> '~'.
  return absl::StrCat(root_, "/pods/", pod_uid, "/volumes/", kPluginDir, "/",
                      absl::StrReplaceAll(spec_name, {{"/", "~"}}), "/mount");
}

std::shared_ptr<std::mutex> CsiVolumes::VolumeLock(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto& m = locks_[key];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

absl::StatusOr<std::set<int>> CsiVolumes::NodeCapabilities(const std::string& endpoint) {
  auto stub = ::csi::v1::Node::NewStub(DialUnix(endpoint));
  ::csi::v1::NodeGetCapabilitiesRequest req;
  ::csi::v1::NodeGetCapabilitiesResponse resp;
  auto ctx = ContextWithTimeout(timeout_);
  RETURN_IF_ERROR(
      FromGrpc(stub->NodeGetCapabilities(ctx.get(), req, &resp), "NodeGetCapabilities"));
  std::set<int> caps;
  for (const auto& c : resp.capabilities()) {
    if (c.has_rpc()) caps.insert(c.rpc().type());
  }
  return caps;
}

absl::Status CsiVolumes::Stage(const VolumeRequest& req, const std::set<int>& caps) {
  const std::string key = absl::StrCat(req.driver, "^", req.volume_handle);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (staged_.count(key)) return absl::OkStatus();
  }
  const std::string staging = StagingPath(req.driver, req.volume_handle);
  const std::string parent = staging.substr(0, staging.rfind('/'));
  RETURN_IF_ERROR(MkdirAll(staging, 0750));
  RETURN_IF_ERROR(WriteJson(JoinPath(parent, kVolData),
                            Json{{"volumeHandle", req.volume_handle}, {"driverName", req.driver}}));
  if (caps.count(NodeCap::STAGE_UNSTAGE_VOLUME)) {
    ASSIGN_OR_RETURN(std::string endpoint, registry_->Endpoint(req.driver));
    ::csi::v1::NodeStageVolumeRequest r;
    r.set_volume_id(req.volume_handle);
    r.mutable_publish_context()->insert(req.publish_context.begin(), req.publish_context.end());
    r.set_staging_target_path(staging);
    FillCapability(req, caps, r.mutable_volume_capability());
    r.mutable_secrets()->insert(req.stage_secrets.begin(), req.stage_secrets.end());
    r.mutable_volume_context()->insert(req.attributes.begin(), req.attributes.end());
    ::csi::v1::NodeStageVolumeResponse resp;
    auto ctx = ContextWithTimeout(timeout_);
    auto stub = ::csi::v1::Node::NewStub(DialUnix(endpoint));
    absl::Status s = FromGrpc(stub->NodeStageVolume(ctx.get(), r, &resp), "rpc NodeStageVolume");
    if (!s.ok()) {
      if (IsFinalError(s)) {
        // Nothing was staged: remove what the kubelet created (upstream's cleanup on a final
        // error).
        (void)RemoveUnlessMounted(staging);
        (void)RemoveAll(JoinPath(parent, kVolData));
        ::rmdir(parent.c_str());
      }
      return s;
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  staged_.insert(key);
  if (!req.attachment_id.empty())
    attached_staged_.insert(UniqueVolumeName(req.driver, req.volume_handle));
  return absl::OkStatus();
}

absl::StatusOr<PublishedVolume> CsiVolumes::SetUp(const VolumeRequest& req) {
  auto lock = VolumeLock(absl::StrCat(req.driver, "^", req.volume_handle));
  std::lock_guard<std::mutex> held(*lock);
  ASSIGN_OR_RETURN(std::string endpoint, registry_->Endpoint(req.driver));
  ASSIGN_OR_RETURN(std::set<int> caps, NodeCapabilities(endpoint));
  const bool staged = !req.ephemeral && caps.count(NodeCap::STAGE_UNSTAGE_VOLUME);
  if (!req.ephemeral) RETURN_IF_ERROR(Stage(req, caps));

  const std::string target = TargetPath(req.pod_uid, req.spec_name);
  const std::string dir = target.substr(0, target.rfind('/'));
  RETURN_IF_ERROR(MkdirAll(dir, 0750));
  RETURN_IF_ERROR(
      WriteJson(JoinPath(dir, kVolData),
                Json{{"specVolID", req.spec_name},
                     {"volumeHandle", req.volume_handle},
                     {"driverName", req.driver},
                     {"nodeName", node_name_},
                     {"attachmentID", req.attachment_id},
                     {"volumeLifecycleMode", req.ephemeral ? "Ephemeral" : "Persistent"}}));
  // NodeGetCapabilities again, as upstream asks before publishing (after staging).
  ASSIGN_OR_RETURN(caps, NodeCapabilities(endpoint));
  ::csi::v1::NodePublishVolumeRequest r;
  r.set_volume_id(req.volume_handle);
  r.mutable_publish_context()->insert(req.publish_context.begin(), req.publish_context.end());
  if (staged) r.set_staging_target_path(StagingPath(req.driver, req.volume_handle));
  r.set_target_path(target);
  FillCapability(req, caps, r.mutable_volume_capability());
  r.set_readonly(req.read_only);
  r.mutable_secrets()->insert(req.publish_secrets.begin(), req.publish_secrets.end());
  std::map<std::string, std::string> context = req.attributes;
  if (req.pod_info_on_mount) {
    context["csi.storage.k8s.io/pod.name"] = req.pod_name;
    context["csi.storage.k8s.io/pod.namespace"] = req.pod_namespace;
    context["csi.storage.k8s.io/pod.uid"] = req.pod_uid;
    context["csi.storage.k8s.io/serviceAccount.name"] = req.service_account;
    context["csi.storage.k8s.io/ephemeral"] = req.ephemeral ? "true" : "false";
  }
  r.mutable_volume_context()->insert(context.begin(), context.end());
  ::csi::v1::NodePublishVolumeResponse resp;
  auto ctx = ContextWithTimeout(timeout_);
  auto stub = ::csi::v1::Node::NewStub(DialUnix(endpoint));
  absl::Status s = FromGrpc(stub->NodePublishVolume(ctx.get(), r, &resp), "rpc NodePublishVolume");
  if (!s.ok()) {
    if (IsFinalError(s)) {
      // Not published: the directories go (upstream removes the target dir). Staging stays
      // until the pod is torn down.
      (void)RemoveUnlessMounted(target);
      (void)RemoveAll(JoinPath(dir, kVolData));
      ::rmdir(dir.c_str());
    }
    return s;
  }
  PublishedVolume out;
  out.target_path = target;
  const bool delegated = req.fs_group && caps.count(NodeCap::VOLUME_MOUNT_GROUP);
  if (req.fs_group && !delegated && req.fs_group_policy != "None" && !req.read_only) {
    if (req.fs_group_policy == "File") {
      out.kubelet_applies_fs_group = true;
    } else if (!req.fs_type.empty()) {
      out.kubelet_applies_fs_group = req.ephemeral || req.access_mode == "ReadWriteOnce" ||
                                     req.access_mode == "ReadWriteOncePod";
    }
  }
  return out;
}

absl::Status CsiVolumes::Unstage(const std::string& driver, const std::string& handle) {
  const std::string staging = StagingPath(driver, handle);
  const std::string parent = staging.substr(0, staging.rfind('/'));
  if (!PathExists(parent)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string endpoint, registry_->Endpoint(driver));
  ASSIGN_OR_RETURN(std::set<int> caps, NodeCapabilities(endpoint));
  if (caps.count(NodeCap::STAGE_UNSTAGE_VOLUME)) {
    ::csi::v1::NodeUnstageVolumeRequest r;
    r.set_volume_id(handle);
    r.set_staging_target_path(staging);
    ::csi::v1::NodeUnstageVolumeResponse resp;
    auto ctx = ContextWithTimeout(timeout_);
    auto stub = ::csi::v1::Node::NewStub(DialUnix(endpoint));
    RETURN_IF_ERROR(
        FromGrpc(stub->NodeUnstageVolume(ctx.get(), r, &resp), "rpc NodeUnstageVolume"));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    staged_.erase(absl::StrCat(driver, "^", handle));
    // Unmounted: the attach/detach controller may detach it now (upstream marks the volume
    // detached in the actual state after UnmountDevice).
    attached_staged_.erase(UniqueVolumeName(driver, handle));
  }
  RETURN_IF_ERROR(RemoveUnlessMounted(staging));
  RETURN_IF_ERROR(RemoveAll(JoinPath(parent, kVolData)));
  if (::rmdir(parent.c_str()) != 0 && errno != ENOENT)
    return ErrnoStatus(errno, absl::StrCat("rmdir ", parent));
  return absl::OkStatus();
}

bool CsiVolumes::UsedByOtherPods(const std::string& driver, const std::string& handle,
                                 const std::string& except_dir) const {
  const std::string pods = JoinPath(root_, "pods");
  auto uids = ListDir(pods);
  if (!uids.ok()) return false;
  for (const auto& uid : *uids) {
    const std::string vols = absl::StrCat(pods, "/", uid, "/volumes/", kPluginDir);
    auto names = ListDir(vols);
    if (!names.ok()) continue;
    for (const auto& name : *names) {
      const std::string dir = JoinPath(vols, name);
      if (dir == except_dir) continue;
      auto data = ReadJson(JoinPath(dir, kVolData));
      if (data.ok() && Str(*data, "driverName") == driver && Str(*data, "volumeHandle") == handle)
        return true;
    }
  }
  return false;
}

absl::Status CsiVolumes::TearDownVolume(const std::string& dir) {
  const std::string json_path = JoinPath(dir, kVolData);
  const std::string target = JoinPath(dir, "mount");
  auto data = ReadJson(json_path);
  if (!data.ok()) {
    // No record (a final failure removed it, or it was never written): only directories.
    RETURN_IF_ERROR(RemoveUnlessMounted(target));
    return RemoveAll(dir);
  }
  const std::string driver = Str(*data, "driverName");
  const std::string handle = Str(*data, "volumeHandle");
  const bool ephemeral = Str(*data, "volumeLifecycleMode") == "Ephemeral";
  auto lock = VolumeLock(absl::StrCat(driver, "^", handle));
  std::lock_guard<std::mutex> held(*lock);
  ASSIGN_OR_RETURN(std::string endpoint, registry_->Endpoint(driver));
  ::csi::v1::NodeUnpublishVolumeRequest r;
  r.set_volume_id(handle);
  r.set_target_path(target);
  ::csi::v1::NodeUnpublishVolumeResponse resp;
  auto ctx = ContextWithTimeout(timeout_);
  auto stub = ::csi::v1::Node::NewStub(DialUnix(endpoint));
  RETURN_IF_ERROR(
      FromGrpc(stub->NodeUnpublishVolume(ctx.get(), r, &resp), "rpc NodeUnpublishVolume"));
  RETURN_IF_ERROR(RemoveUnlessMounted(target));
  if (!ephemeral && !Str(*data, "attachmentID").empty()) {
    // Still staged once the pod's record is gone (also for a volume published before a
    // restart): in use until unstaged.
    std::lock_guard<std::mutex> l(mu_);
    attached_staged_.insert(UniqueVolumeName(driver, handle));
  }
  RETURN_IF_ERROR(RemoveAll(json_path));
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
    return ErrnoStatus(errno, absl::StrCat("rmdir ", dir));
  if (ephemeral || UsedByOtherPods(driver, handle, dir)) return absl::OkStatus();
  return Unstage(driver, handle);
}

absl::Status CsiVolumes::TearDownPod(const std::string& pod_uid) {
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = wanted_.begin(); it != wanted_.end();) {
      it->second.erase(pod_uid);
      it = it->second.empty() ? wanted_.erase(it) : std::next(it);
    }
  }
  const std::string vols = absl::StrCat(root_, "/pods/", pod_uid, "/volumes/", kPluginDir);
  auto names = ListDir(vols);
  if (!names.ok()) return absl::OkStatus();
  absl::Status first;
  for (const auto& name : *names) {
    absl::Status s = TearDownVolume(JoinPath(vols, name));
    if (!s.ok()) {
      LOG(WARNING) << "pod " << pod_uid << ": CSI volume " << name << ": " << s;
      if (first.ok()) first = Annotate(s, absl::StrCat("unmount CSI volume ", name));
    }
  }
  if (first.ok()) ::rmdir(vols.c_str());
  return first;
}

std::vector<std::string> CsiVolumes::VolumesInUse() const {
  std::set<std::string> names;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [name, pods] : wanted_) names.insert(name);
    names.insert(attached_staged_.begin(), attached_staged_.end());
  }
  // Published volumes, from their records (a restarted kubelet reports them too).
  const std::string pods = JoinPath(root_, "pods");
  if (auto uids = ListDir(pods); uids.ok()) {
    for (const auto& uid : *uids) {
      const std::string vols = absl::StrCat(pods, "/", uid, "/volumes/", kPluginDir);
      auto dirs = ListDir(vols);
      if (!dirs.ok()) continue;
      for (const auto& name : *dirs) {
        auto data = ReadJson(absl::StrCat(vols, "/", name, "/", kVolData));
        if (!data.ok() || Str(*data, "attachmentID").empty() ||
            Str(*data, "volumeLifecycleMode") == "Ephemeral")
          continue;
        names.insert(UniqueVolumeName(Str(*data, "driverName"), Str(*data, "volumeHandle")));
      }
    }
  }
  return {names.begin(), names.end()};
}

absl::StatusOr<VolumeUsage> CsiVolumes::MeasureVolume(const std::string& driver,
                                                      const std::string& handle,
                                                      const std::string& volume_path) {
  ASSIGN_OR_RETURN(std::string endpoint, registry_->Endpoint(driver));
  auto stub = ::csi::v1::Node::NewStub(DialUnix(endpoint));
  ::csi::v1::NodeGetCapabilitiesResponse caps;
  auto cctx = ContextWithTimeout(stats_timeout_);
  RETURN_IF_ERROR(FromGrpc(
      stub->NodeGetCapabilities(cctx.get(), ::csi::v1::NodeGetCapabilitiesRequest(), &caps),
      "NodeGetCapabilities"));
  bool supported = false;
  for (const auto& c : caps.capabilities())
    supported |= c.has_rpc() && c.rpc().type() == NodeCap::GET_VOLUME_STATS;
  if (!supported) {
    return absl::UnimplementedError(
        absl::StrCat("driver ", driver, " does not support NodeGetVolumeStats"));
  }
  ::csi::v1::NodeGetVolumeStatsRequest r;
  r.set_volume_id(handle);
  r.set_volume_path(volume_path);
  ::csi::v1::NodeGetVolumeStatsResponse resp;
  auto ctx = ContextWithTimeout(stats_timeout_);
  RETURN_IF_ERROR(
      FromGrpc(stub->NodeGetVolumeStats(ctx.get(), r, &resp), "rpc NodeGetVolumeStats"));
  if (resp.usage().empty()) {
    return absl::DataLossError(absl::StrCat("NodeGetVolumeStats of volume ", handle,
                                            ": failed to get usage from response. usage is nil"));
  }
  VolumeUsage u;
  u.time = absl::Now();
  for (const auto& usage : resp.usage()) {
    if (usage.unit() == ::csi::v1::VolumeUsage::BYTES) {
      u.available_bytes = usage.available();
      u.capacity_bytes = usage.total();
      u.used_bytes = usage.used();
    } else if (usage.unit() == ::csi::v1::VolumeUsage::INODES) {
      u.inodes_free = usage.available();
      u.inodes = usage.total();
      u.inodes_used = usage.used();
    }
  }
  return u;
}

absl::StatusOr<VolumeUsage> CsiVolumes::VolumeStats(const std::string& driver,
                                                    const std::string& handle,
                                                    const std::string& volume_path) {
  const absl::Time now = absl::Now();
  {
    std::lock_guard<std::mutex> l(mu_);
    // Volumes not asked for in a long time (torn down) are forgotten.
    for (auto it = stats_.begin(); it != stats_.end();)
      it = now - it->second.at > 10 * stats_max_age_ ? stats_.erase(it) : std::next(it);
    auto it = stats_.find(volume_path);
    if (it != stats_.end() && now - it->second.at < stats_max_age_) return it->second.result;
  }
  absl::StatusOr<VolumeUsage> result = MeasureVolume(driver, handle, volume_path);
  std::lock_guard<std::mutex> l(mu_);
  stats_.insert_or_assign(volume_path, StatsEntry{now, result});
  return result;
}

void CsiVolumes::MarkVolumesReportedInUse(const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> l(mu_);
  reported_in_use_ = std::set<std::string>(names.begin(), names.end());
}

absl::Status CsiVolumes::WaitForAttach(VolumeRequest* req) {
  const std::string name = UniqueVolumeName(req->driver, req->volume_handle);
  bool reported = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    wanted_[name].insert(req->pod_uid);
    reported = reported_in_use_.count(name) > 0;
  }
  if (!reported) {
    // Ask for a Node status write now rather than at its next period (coalesced there).
    if (in_use_changed_) in_use_changed_();
    // Upstream: "Volume has not been added to the list of VolumesInUse in the node's volume
    // status"; the attach/detach controller would detach it otherwise.
    return absl::UnavailableError(absl::StrCat(
        "volume ", name,
        " has not been added to the list of VolumesInUse in the node's volume status"));
  }
  ASSIGN_OR_RETURN(Json node, api_->Get(absl::StrCat("/api/v1/nodes/", node_name_)));
  bool listed = false;
  for (const auto& v : Obj(node, "status").value("volumesAttached", Json::array()))
    listed |= Str(v, "name") == name;
  if (!listed) {
    return absl::UnavailableError(
        absl::StrCat("volume ", name, " is not attached according to node status"));
  }
  auto va =
      api_->Get(absl::StrCat("/apis/storage.k8s.io/v1/volumeattachments/", req->attachment_id));
  if (!va.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "volume ", req->volume_handle, " has not been attached yet: ", va.status().message()));
  }
  if (!Str(Obj(*va, "metadata"), "deletionTimestamp").empty()) {
    return absl::UnavailableError(
        absl::StrCat("volume attachment ", req->attachment_id, " is being deleted"));
  }
  const Json& st = Obj(*va, "status");
  if (!st.value("attached", false)) {
    std::string why = Str(Obj(st, "attachError"), "message");
    return absl::UnavailableError(absl::StrCat(
        "volume ", req->volume_handle, " is not attached yet", why.empty() ? "" : ": ", why));
  }
  req->publish_context = StringMap(Obj(st, "attachmentMetadata"));
  return absl::OkStatus();
}

absl::StatusOr<PublishedVolume> CsiVolumes::SetUpInline(const Json& pod, const Json& volume) {
  const Json& src = Obj(volume, "csi");
  const Json& meta = Obj(pod, "metadata");
  VolumeRequest req;
  req.driver = Str(src, "driver");
  req.spec_name = Str(volume, "name");
  req.ephemeral = true;
  req.pod_uid = Str(meta, "uid");
  req.pod_name = Str(meta, "name");
  req.pod_namespace = Str(meta, "namespace");
  req.service_account = Str(Obj(pod, "spec"), "serviceAccountName");
  req.volume_handle = "csi-" + Sha256Hex(req.pod_uid + req.spec_name);
  req.attributes = StringMap(Obj(src, "volumeAttributes"));
  req.fs_type = Str(src, "fsType");
  req.read_only = src.is_object() && src.value("readOnly", false);
  if (req.driver.empty()) return absl::InvalidArgumentError("csi volume without a driver");
  const Json& sc = Obj(Obj(pod, "spec"), "securityContext");
  if (sc.contains("fsGroup") && sc["fsGroup"].is_number_integer())
    req.fs_group = sc["fsGroup"].get<int64_t>();
  if (api_ != nullptr) {
    auto driver = api_->Get(absl::StrCat("/apis/storage.k8s.io/v1/csidrivers/", req.driver));
    if (!driver.ok() && !absl::IsNotFound(driver.status())) return driver.status();
    const Json spec = driver.ok() ? Obj(*driver, "spec") : Json::object();
    Json modes = spec.value("volumeLifecycleModes", Json::array({"Persistent"}));
    bool ephemeral_ok = false;
    for (const auto& m : modes)
      ephemeral_ok |= m.is_string() && m.get<std::string>() == "Ephemeral";
    if (!ephemeral_ok) {
      return absl::FailedPreconditionError(
          absl::StrCat("volume mode \"Ephemeral\" not supported by driver ", req.driver,
                       " (only supports ", modes.dump(), ")"));
    }
    req.pod_info_on_mount = spec.value("podInfoOnMount", false);
    req.fs_group_policy = spec.value("fsGroupPolicy", std::string("ReadWriteOnceWithFSType"));
    RETURN_IF_ERROR(ResolveSecretRef(api_, Obj(src, "nodePublishSecretRef"), req.pod_namespace,
                                     &req.publish_secrets));
  }
  return SetUp(req);
}

absl::StatusOr<PublishedVolume> CsiVolumes::SetUpPersistent(const Json& pod, const Json& pv,
                                                            bool read_only) {
  const Json& spec = Obj(pv, "spec");
  const Json& src = Obj(spec, "csi");
  const Json& meta = Obj(pod, "metadata");
  VolumeRequest req;
  req.driver = Str(src, "driver");
  req.volume_handle = Str(src, "volumeHandle");
  req.spec_name = Str(Obj(pv, "metadata"), "name");
  req.pod_uid = Str(meta, "uid");
  req.pod_name = Str(meta, "name");
  req.pod_namespace = Str(meta, "namespace");
  req.service_account = Str(Obj(pod, "spec"), "serviceAccountName");
  req.attributes = StringMap(Obj(src, "volumeAttributes"));
  req.fs_type = Str(src, "fsType");
  // The volume is read-only when the claim or the PV's source says so (upstream spec.ReadOnly).
  req.read_only = read_only || (src.is_object() && src.value("readOnly", false));
  for (const auto& m : spec.value("accessModes", Json::array())) {
    if (m.is_string()) {
      req.access_mode = m.get<std::string>();
      break;
    }
  }
  for (const auto& o : spec.value("mountOptions", Json::array())) {
    if (o.is_string()) req.mount_options.push_back(o.get<std::string>());
  }
  if (req.driver.empty() || req.volume_handle.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("PV ", req.spec_name, ": csi source without driver or volumeHandle"));
  }
  if (spec.value("volumeMode", std::string("Filesystem")) == "Block") {
    return absl::UnimplementedError(absl::StrCat(
        "PV ", req.spec_name, ": CSI raw block volumes are not supported by berth yet"));
  }
  const Json& sc = Obj(Obj(pod, "spec"), "securityContext");
  if (sc.contains("fsGroup") && sc["fsGroup"].is_number_integer())
    req.fs_group = sc["fsGroup"].get<int64_t>();
  if (api_ != nullptr) {
    auto driver = api_->Get(absl::StrCat("/apis/storage.k8s.io/v1/csidrivers/", req.driver));
    if (!driver.ok() && !absl::IsNotFound(driver.status())) return driver.status();
    const Json dspec = driver.ok() ? Obj(*driver, "spec") : Json::object();
    req.pod_info_on_mount = dspec.value("podInfoOnMount", false);
    req.fs_group_policy = dspec.value("fsGroupPolicy", std::string("ReadWriteOnceWithFSType"));
    if (dspec.value("attachRequired", true)) {
      req.attachment_id = "csi-" + Sha256Hex(req.volume_handle + req.driver + node_name_);
      RETURN_IF_ERROR(WaitForAttach(&req));
    }
    RETURN_IF_ERROR(ResolveSecretRef(api_, Obj(src, "nodeStageSecretRef"), req.pod_namespace,
                                     &req.stage_secrets));
    RETURN_IF_ERROR(ResolveSecretRef(api_, Obj(src, "nodePublishSecretRef"), req.pod_namespace,
                                     &req.publish_secrets));
  }
  return SetUp(req);
}

}  // namespace berth::csi
