#include "kubelet/volume_manager.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "csi/csi_volume.h"
#include "kubelet/atomic_writer.h"
#include "kubelet/pod_util.h"
#include "kubelet/subpath.h"

namespace berth::kubelet {

namespace {

constexpr int kDefaultMode = 0644;
constexpr int64_t kDefaultTokenSeconds = 3600;

using FileMap = std::map<std::string, std::pair<std::string, int>>;

std::string PluginDir(const Json& volume) {
  if (volume.contains("emptyDir")) return "kubernetes.io~empty-dir";
  if (volume.contains("configMap")) return "kubernetes.io~configmap";
  if (volume.contains("secret")) return "kubernetes.io~secret";
  if (volume.contains("downwardAPI")) return "kubernetes.io~downward-api";
  if (volume.contains("projected")) return "kubernetes.io~projected";
  return "";
}

int ModeOf(const Json& obj, const char* key, int fallback) {
  auto it = obj.find(key);
  if (it != obj.end() && it->is_number_integer()) return it->get<int>();
  return fallback;
}

// The value of a downwardAPI volume item (v1.DownwardAPIVolumeFile): its fieldRef, or its
// resourceFieldRef of the container it names. Errors: InvalidArgument (unknown container,
// unsupported field or resource).
absl::StatusOr<std::string> DownwardApiItem(const Json& pod, const Json& item,
                                            const std::string& host_ip) {
  if (auto r = item.find("resourceFieldRef"); r != item.end() && r->is_object()) {
    const std::string container = r->value("containerName", "");
    if (const Json* c = FindContainer(pod, container))
      return ResolveResourceFieldRef(*c, *r, NodeAllocatable(""));
    return absl::InvalidArgumentError(absl::StrCat("downwardAPI item ", item.value("path", ""),
                                                   ": no container \"", container, "\""));
  }
  std::string fp = item.value("fieldRef", Json::object()).value("fieldPath", std::string());
  return ResolveFieldRef(pod, fp, GetString(pod, "status.podIP"), host_ip);
}

// The pod's memory limit as its cgroup gets it (upstream ResourceConfigForPod): the sum of the
// app and sidecar containers' limits, at least the largest init container's; nullopt when a
// container has none.
std::optional<uint64_t> PodMemoryLimit(const Json& pod) {
  const Json& spec = pod.value("spec", Json::object());
  double sum = 0, init_max = 0;
  for (const char* kind : {"containers", "initContainers"}) {
    for (const Json& c : spec.value(kind, Json::array())) {
      std::optional<Quantity> q = ContainerResource(c, "limits", "memory");
      std::optional<double> limit;
      if (q) limit = static_cast<double>(q->Value());
      if (!limit) return std::nullopt;
      bool sidecar =
          std::string(kind) == "initContainers" && c.value("restartPolicy", "") == "Always";
      if (std::string(kind) == "containers" || sidecar) {
        sum += *limit;
      } else {
        init_max = std::max(init_max, *limit);
      }
    }
  }
  double limit = std::max(sum, init_max);
  if (limit <= 0) return std::nullopt;
  return static_cast<uint64_t>(limit);
}

// The size of a memory-backed volume of `pod` (upstream calculateEmptyDirMemorySize): the
// node's memory, or less: the pod's memory limit, the volume's sizeLimit (when given);
// nullopt (tmpfs's default, half the memory) when none is known.
std::optional<uint64_t> MemoryVolumeSize(const Json& pod, const Json* size_limit) {
  std::optional<uint64_t> size;
  if (double memory = NodeAllocatable("").memory; memory > 0) size = static_cast<uint64_t>(memory);
  auto at_most = [&](std::optional<uint64_t> v) {
    if (v && *v > 0 && (!size || *v < *size)) size = v;
  };
  at_most(PodMemoryLimit(pod));
  if (size_limit != nullptr && size_limit->is_string()) {
    if (auto q = Quantity::Parse(size_limit->get<std::string>()); q.ok() && q->Sign() > 0) {
      at_most(static_cast<uint64_t>(q->Value()));
    }
  }
  return size;
}

// Mounts a tmpfs of `size` bytes (when known) with root directory mode `mode` on directory
// `dir`, unless one is mounted there already (set-up is idempotent across pod syncs and berth
// restarts). Upstream emptyDir setupTmpfs.
absl::Status MountTmpfs(const std::string& dir, std::optional<uint64_t> size, int mode) {
  RETURN_IF_ERROR(MkdirAll(dir, mode));
  if (IsMountPoint(dir)) return absl::OkStatus();
  std::string options = absl::StrFormat("mode=%04o", mode);
  if (size) absl::StrAppend(&options, ",size=", *size);
  if (mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("mount tmpfs (", options, ") on ", dir));
  }
  return absl::OkStatus();
}

// The claim of a persistentVolumeClaim volume, or of a generic ephemeral volume: the PVC the
// ephemeral volume controller creates, "<pod>-<volume>", owned by the pod (upstream
// ephemeral.VolumeClaimName / VolumeIsForPod).
std::string ClaimName(const Json& pod, const Json& volume) {
  if (volume.contains("persistentVolumeClaim")) {
    return volume["persistentVolumeClaim"].value("claimName", std::string());
  }
  return absl::StrCat(GetString(pod, "metadata.name"), "-", volume.value("name", std::string()));
}

// configMap, secret, downwardAPI and projected volumes: files the kubelet writes (through
// the AtomicWriter) and keeps up to date.
bool IsProjection(const Json& volume) {
  return volume.contains("configMap") || volume.contains("secret") ||
         volume.contains("downwardAPI") || volume.contains("projected");
}

// The pod's fsGroup (spec.securityContext.fsGroup), or nullopt.
std::optional<int64_t> PodFsGroup(const Json& pod) {
  const Json psc = pod.value("spec", Json::object()).value("securityContext", Json::object());
  auto it = psc.find("fsGroup");
  if (it == psc.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

}  // namespace

absl::Status SetVolumeOwnership(const std::string& dir, int64_t fs_group, bool read_only,
                                bool on_root_mismatch) {
  constexpr mode_t kRwMask = 0660, kRoMask = 0440, kExecMask = 0110;
  const mode_t mask = read_only ? kRoMask : kRwMask;
  const gid_t gid = static_cast<gid_t>(fs_group);
  struct stat root;
  if (::lstat(dir.c_str(), &root) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", dir));
  if (on_root_mismatch && root.st_gid == gid && (root.st_mode & mask) == mask &&
      (!S_ISDIR(root.st_mode) || (root.st_mode & S_ISGID) != 0)) {
    return absl::OkStatus();  // fsGroupChangePolicy OnRootMismatch: the root already matches
  }
  auto change = [&](const std::string& path, const struct stat& st) -> absl::Status {
    if (::lchown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
      return ErrnoStatus(errno, absl::StrCat("chown ", path, " to group ", fs_group));
    }
    if (S_ISLNK(st.st_mode)) return absl::OkStatus();
    mode_t mode = (st.st_mode & 07777) | mask;
    if (S_ISDIR(st.st_mode)) mode |= S_ISGID | kExecMask;
    if (::chmod(path.c_str(), mode) != 0) return ErrnoStatus(errno, absl::StrCat("chmod ", path));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(change(dir, root));
  if (!S_ISDIR(root.st_mode)) return absl::OkStatus();
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string path = it->path().string();
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
    RETURN_IF_ERROR(change(path, st));
  }
  if (ec) return absl::InternalError(absl::StrCat("walk ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

VolumeManager::VolumeManager(ApiClient* api, std::string root_dir,
                             std::function<absl::Time()> clock)
    : api_(api), root_dir_(std::move(root_dir)), clock_(std::move(clock)) {}

std::string VolumeManager::PodDir(const std::string& uid) const {
  return JoinPath(JoinPath(root_dir_, "pods"), uid);
}

absl::Status VolumeManager::CollectObjectFiles(const std::string& ns, const Json& source,
                                               const std::string& kind, int default_mode,
                                               FileMap* files) {
  std::string name = source.value(kind == "secrets" ? "secretName" : "name", std::string());
  if (name.empty()) name = source.value("name", std::string());
  bool optional = source.value("optional", false);
  auto obj = api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/", kind, "/", name));
  if (!obj.ok()) {
    if (absl::IsNotFound(obj.status()) && optional) return absl::OkStatus();
    return Annotate(obj.status(), absl::StrCat("get ", kind, " ", ns, "/", name));
  }
  // Key -> content; secrets and binaryData are base64.
  std::map<std::string, std::string> data;
  auto add = [&](const char* field, bool b64) -> absl::Status {
    auto it = obj->find(field);
    if (it == obj->end() || !it->is_object()) return absl::OkStatus();
    for (auto kv = it->begin(); kv != it->end(); ++kv) {
      std::string v = kv.value().is_string() ? kv.value().get<std::string>() : "";
      if (b64) {
        std::string decoded;
        if (!absl::Base64Unescape(v, &decoded)) {
          return absl::InvalidArgumentError(
              absl::StrCat(kind, " ", ns, "/", name, " key ", kv.key(), ": invalid base64"));
        }
        v = decoded;
      }
      data[kv.key()] = v;
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(add("data", kind == "secrets"));
  RETURN_IF_ERROR(add("binaryData", true));
  auto items = source.find("items");
  if (items != source.end() && items->is_array() && !items->empty()) {
    for (const auto& item : *items) {
      std::string key = item.value("key", std::string());
      auto d = data.find(key);
      if (d == data.end()) {
        if (optional) continue;
        return absl::NotFoundError(
            absl::StrCat(kind, " ", ns, "/", name, ": key \"", key, "\" not found"));
      }
      (*files)[item.value("path", key)] = {d->second, ModeOf(item, "mode", default_mode)};
    }
  } else {
    for (const auto& [k, v] : data) (*files)[k] = {v, default_mode};
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> VolumeManager::RequestToken(const Json& pod, const Json& source,
                                                        absl::Time* refresh_at) {
  std::string ns = GetString(pod, "metadata.namespace");
  std::string sa = GetString(pod, "spec.serviceAccountName");
  if (sa.empty()) sa = "default";
  int64_t seconds = source.value("expirationSeconds", kDefaultTokenSeconds);
  Json spec = {{"expirationSeconds", seconds},
               {"boundObjectRef",
                {{"kind", "Pod"},
                 {"apiVersion", "v1"},
                 {"name", GetString(pod, "metadata.name")},
                 {"uid", GetString(pod, "metadata.uid")}}}};
  std::string audience = source.value("audience", std::string());
  if (!audience.empty()) spec["audiences"] = Json::array({audience});
  Json body = {
      {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  absl::Time issued = clock_();
  std::string path = absl::StrCat("/api/v1/namespaces/", ns, "/serviceaccounts/", sa, "/token");
  ASSIGN_OR_RETURN(Json resp, api_->Post(path, body));
  std::string token = GetString(resp, "status.token");
  if (token.empty()) {
    return absl::InternalError(
        absl::StrCat("TokenRequest for ", ns, "/", sa, ": response has no token"));
  }
  absl::Time expiry = issued + absl::Seconds(seconds);
  if (auto t = ParseRfc3339(GetString(resp, "status.expirationTimestamp"))) expiry = *t;
  // Refresh once 80% of the lifetime has passed.
  *refresh_at = issued + (expiry - issued) * 8 / 10;
  return token;
}

absl::StatusOr<MountedVolume> VolumeManager::SetUpHostPath(const Json& hp, bool read_only) {
  std::string path = hp.value("path", std::string());
  std::string type = hp.value("type", std::string());
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("hostPath \"", path, "\" is not an absolute path"));
  }
  if (type == "DirectoryOrCreate") {
    RETURN_IF_ERROR(MkdirAll(path, 0755));
  } else if (type == "FileOrCreate" && !PathExists(path)) {
    RETURN_IF_ERROR(WriteFileAtomic(path, "", 0644));
  } else if (!type.empty() && !PathExists(path)) {
    return absl::NotFoundError(
        absl::StrCat("hostPath ", path, " (type ", type, ") does not exist"));
  }
  return MountedVolume{path, read_only};
}

absl::StatusOr<Json> VolumeManager::BoundPersistentVolume(const Json& pod, const Json& volume) {
  const std::string ns = GetString(pod, "metadata.namespace");
  const std::string claim_name = ClaimName(pod, volume);
  if (claim_name.empty())
    return absl::InvalidArgumentError("persistentVolumeClaim has no claimName");
  auto pvc =
      api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/persistentvolumeclaims/", claim_name));
  if (!pvc.ok()) {
    return Annotate(pvc.status(),
                    absl::StrCat("failed to fetch PVC ", ns, "/", claim_name, " from API server"));
  }
  if (volume.contains("ephemeral")) {
    bool owned = false;
    const Json refs =
        pvc->value("metadata", Json::object()).value("ownerReferences", Json::array());
    for (const Json& ref : refs) {
      owned |= ref.value("controller", false) &&
               ref.value("uid", std::string()) == GetString(pod, "metadata.uid");
    }
    if (!owned) {
      return absl::FailedPreconditionError(absl::StrCat("PVC ", ns, "/", claim_name,
                                                        " was not created for pod ", PodKey(pod),
                                                        " (pod is not owner)"));
    }
  }
  const std::string phase = GetString(*pvc, "status.phase");
  const std::string pv_name = GetString(*pvc, "spec.volumeName");
  if (phase != "Bound" || pv_name.empty()) {
    return absl::UnavailableError(
        absl::StrCat("PVC ", ns, "/", claim_name, " has non-bound phase (\"", phase,
                     "\") or empty pvc.Spec.VolumeName (\"", pv_name, "\")"));
  }
  if (!GetString(*pvc, "metadata.deletionTimestamp").empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("can't start pod because PVC ", ns, "/", claim_name, " is being deleted"));
  }
  auto pv = api_->Get(absl::StrCat("/api/v1/persistentvolumes/", pv_name));
  if (!pv.ok())
    return Annotate(pv.status(), absl::StrCat("failed to fetch PV ", pv_name, " from API server"));
  const std::string claim_uid = GetString(*pv, "spec.claimRef.uid");
  if (claim_uid.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "found PV object ", pv_name,
        " but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"));
  }
  if (claim_uid != GetString(*pvc, "metadata.uid")) {
    return absl::FailedPreconditionError(
        absl::StrCat("found PV object ", pv_name, " but its pv.Spec.ClaimRef.UID (", claim_uid,
                     ") does not point to claim.UID (", GetString(*pvc, "metadata.uid"), ")"));
  }
  return *std::move(pv);
}

absl::StatusOr<MountedVolume> VolumeManager::SetUpPersistentVolume(const Json& pv, bool read_only) {
  const Json& spec = pv.contains("spec") ? pv["spec"] : Json::object();
  const std::string name = GetString(pv, "metadata.name");
  if (spec.value("volumeMode", std::string("Filesystem")) == "Block") {
    return absl::UnimplementedError(
        absl::StrCat("PV ", name, ": volumeMode Block is not supported by berth"));
  }
  if (spec.contains("hostPath")) return SetUpHostPath(spec["hostPath"], read_only);
  if (spec.contains("local")) {
    // A local PV is a directory (or a mounted disk) on this node; the scheduler placed the
    // pod by the PV's nodeAffinity. Used in place, as a hostPath.
    std::string path = spec["local"].value("path", std::string());
    if (path.empty() || path[0] != '/' || !PathExists(path)) {
      return absl::NotFoundError(
          absl::StrCat("PV ", name, ": local path \"", path, "\" does not exist"));
    }
    MountedVolume mounted{path, read_only};
    mounted.filesystem_stats = true;
    mounted.ownership_managed = true;  // upstream's local plugin applies fsGroup
    return mounted;
  }
  std::string kind = "unknown";
  for (const auto& [k, v] : spec.items()) {
    if (v.is_object() && k != "claimRef" && k != "nodeAffinity" && k != "capacity") kind = k;
  }
  return absl::UnimplementedError(
      absl::StrCat("PV ", name, ": volume source \"", kind,
                   "\" is not supported by berth (hostPath and local are)"));
}

absl::StatusOr<FileMap> VolumeManager::CollectPayload(const Json& pod, const Json& volume,
                                                      const std::string& host_ip,
                                                      PodVolumes* state) {
  const std::string name = volume.value("name", std::string());
  const std::string ns = GetString(pod, "metadata.namespace");
  FileMap files;
  if (volume.contains("configMap") || volume.contains("secret")) {
    bool is_secret = volume.contains("secret");
    const Json& src = is_secret ? volume["secret"] : volume["configMap"];
    RETURN_IF_ERROR(CollectObjectFiles(ns, src, is_secret ? "secrets" : "configmaps",
                                       ModeOf(src, "defaultMode", kDefaultMode), &files));
  } else if (volume.contains("downwardAPI")) {
    const Json& src = volume["downwardAPI"];
    int mode = ModeOf(src, "defaultMode", kDefaultMode);
    for (const auto& item : src.value("items", Json::array())) {
      ASSIGN_OR_RETURN(std::string v, DownwardApiItem(pod, item, host_ip));
      files[item.value("path", std::string())] = {v, ModeOf(item, "mode", mode)};
    }
  } else {  // projected
    const Json& proj = volume["projected"];
    int mode = ModeOf(proj, "defaultMode", kDefaultMode);
    for (const auto& src : proj.value("sources", Json::array())) {
      if (src.contains("serviceAccountToken")) {
        const Json& sat = src["serviceAccountToken"];
        std::string path = sat.value("path", std::string("token"));
        auto tok = state->tokens.find(name + "/" + path);
        if (tok != state->tokens.end() && tok->second.refresh_at > clock_()) {
          files[path] = {tok->second.token, mode};  // still fresh
          continue;
        }
        absl::Time refresh_at;
        auto token = RequestToken(pod, sat, &refresh_at);
        if (!token.ok()) {
          if (tok == state->tokens.end()) return token.status();
          // The old token is valid for the remaining 20% of its life: keep it, retry later.
          LOG(WARNING) << "pod " << PodKey(pod) << " volume " << name
                       << ": token refresh failed: " << token.status().message();
          files[path] = {tok->second.token, mode};
          continue;
        }
        files[path] = {*token, mode};
        state->tokens[name + "/" + path] = TokenState{refresh_at, *token};
      } else if (src.contains("configMap")) {
        RETURN_IF_ERROR(CollectObjectFiles(ns, src["configMap"], "configmaps", mode, &files));
      } else if (src.contains("secret")) {
        RETURN_IF_ERROR(CollectObjectFiles(ns, src["secret"], "secrets", mode, &files));
      } else if (src.contains("downwardAPI")) {
        for (const auto& item : src["downwardAPI"].value("items", Json::array())) {
          ASSIGN_OR_RETURN(std::string v, DownwardApiItem(pod, item, host_ip));
          files[item.value("path", std::string())] = {v, ModeOf(item, "mode", mode)};
        }
      }
      // TODO: clusterTrustBundle and podCertificate projections.
    }
  }
  return files;
}

absl::Status VolumeManager::WriteProjection(const Json& pod, const std::string& dir,
                                            const FileMap& files, bool* changed) {
  Payload payload;
  for (const auto& [rel, content_mode] : files)
    payload[rel] = {content_mode.first, content_mode.second};
  const std::optional<int64_t> fs_group = PodFsGroup(pod);
  std::function<absl::Status(const std::string&)> set_perms;
  if (fs_group) {
    set_perms = [&](const std::string& ts_dir) {
      return SetVolumeOwnership(ts_dir, *fs_group, true, false);
    };
  }
  ASSIGN_OR_RETURN(bool wrote, WriteAtomically(dir, payload, set_perms));
  if (changed != nullptr) *changed = wrote;
  return absl::OkStatus();
}

absl::StatusOr<csi::VolumeUsage> VolumeManager::CsiVolumeStats(const MountedVolume& v) {
  if (csi_ == nullptr || v.csi_driver.empty())
    return absl::FailedPreconditionError(absl::StrCat(v.host_path, " is not a CSI volume"));
  return csi_->VolumeStats(v.csi_driver, v.csi_handle, v.host_path);
}

absl::StatusOr<MountedVolume> VolumeManager::SetUpVolume(const Json& pod, const Json& volume,
                                                         const std::string& host_ip,
                                                         PodVolumes* state) {
  std::string name = volume.value("name", std::string());
  std::string uid = GetString(pod, "metadata.uid");
  std::string ns = GetString(pod, "metadata.namespace");
  if (volume.contains("hostPath")) return SetUpHostPath(volume["hostPath"], false);
  if (volume.contains("csi") && csi_ != nullptr) {
    // A CSI ephemeral inline volume: published by its driver (csi/csi_volume.h).
    ASSIGN_OR_RETURN(csi::PublishedVolume published, csi_->SetUpInline(pod, volume));
    MountedVolume mounted{published.target_path,
                          volume["csi"].is_object() && volume["csi"].value("readOnly", false)};
    mounted.ownership_managed = published.kubelet_applies_fs_group;
    return mounted;
  }
  if (volume.contains("persistentVolumeClaim") || volume.contains("ephemeral")) {
    ASSIGN_OR_RETURN(Json pv, BoundPersistentVolume(pod, volume));
    const Json& claim =
        volume.contains("persistentVolumeClaim") ? volume["persistentVolumeClaim"] : Json::object();
    const bool claim_read_only = claim.is_object() && claim.value("readOnly", false);
    MountedVolume mounted;
    if (csi_ != nullptr && pv.value("spec", Json::object()).contains("csi")) {
      // A CSI PV: staged and published by its driver (csi/csi_volume.h).
      ASSIGN_OR_RETURN(csi::PublishedVolume published,
                       csi_->SetUpPersistent(pod, pv, claim_read_only));
      mounted = MountedVolume{published.target_path, claim_read_only};
      mounted.ownership_managed = published.kubelet_applies_fs_group;
      mounted.csi_driver = GetString(pv, "spec.csi.driver");
      mounted.csi_handle = GetString(pv, "spec.csi.volumeHandle");
    } else {
      ASSIGN_OR_RETURN(mounted, SetUpPersistentVolume(pv, claim_read_only));
    }
    mounted.claim_namespace = ns;
    mounted.claim_name = ClaimName(pod, volume);
    const std::string gid = pv.value("metadata", Json::object())
                                .value("annotations", Json::object())
                                .value("pv.beta.kubernetes.io/gid", std::string());
    int64_t parsed = 0;
    if (!gid.empty() && absl::SimpleAtoi(gid, &parsed) && parsed >= 0)
      mounted.supplemental_gid = parsed;
    return mounted;
  }
  std::string plugin = PluginDir(volume);
  if (plugin.empty()) {
    return absl::UnimplementedError("volume type is not supported by berth yet");
  }
  std::string dir = JoinPath(JoinPath(JoinPath(PodDir(uid), "volumes"), plugin), name);
  if (volume.contains("emptyDir")) {
    const Json& ed = volume["emptyDir"];
    const std::string medium = ed.is_object() ? ed.value("medium", "") : "";
    if (medium == "Memory") {
      // tmpfs, sized by the pod's memory limit and the sizeLimit; its usage is the pod's
      // memory, not ephemeral storage.
      auto size_limit = ed.find("sizeLimit");
      // The tmpfs root keeps tmpfs' default mode 1777, as upstream mounts it without one.
      RETURN_IF_ERROR(MountTmpfs(
          dir, MemoryVolumeSize(pod, size_limit == ed.end() ? nullptr : &*size_limit), 01777));
    } else if (!medium.empty()) {
      return absl::UnimplementedError(
          absl::StrCat("emptyDir medium \"", medium, "\" is not supported by berth"));
    } else {
      // On disk; its sizeLimit is enforced by eviction (LocalStorageEvictor).
      RETURN_IF_ERROR(MkdirAll(dir, 0777));
      ::chmod(dir.c_str(), 0777);  // upstream makes emptyDir world-writable
    }
    MountedVolume mounted{dir, false};
    mounted.ownership_managed = true;
    return mounted;
  }
  // secret, downwardAPI and projected volumes live on a tmpfs, as upstream's wrapped
  // memory-medium emptyDir: their content (credentials, tokens) never reaches the disk.
  if (!volume.contains("configMap"))
    RETURN_IF_ERROR(MountTmpfs(dir, MemoryVolumeSize(pod, nullptr), 0755));
  ASSIGN_OR_RETURN(FileMap files, CollectPayload(pod, volume, host_ip, state));
  RETURN_IF_ERROR(WriteProjection(pod, dir, files, /*changed=*/nullptr));
  MountedVolume mounted{dir, true};
  mounted.ownership_managed = true;
  return mounted;
}

absl::StatusOr<std::map<std::string, MountedVolume>> VolumeManager::SetUpPodVolumes(
    const Json& pod, const std::string& host_ip) {
  std::string uid = GetString(pod, "metadata.uid");
  PodVolumes state;
  {
    absl::MutexLock l(&mu_);
    state = pods_[uid];
  }
  const Json volumes = pod.value("spec", Json::object()).value("volumes", Json::array());
  const std::optional<int64_t> fs_group = PodFsGroup(pod);
  const bool on_root_mismatch =
      GetString(pod, "spec.securityContext.fsGroupChangePolicy") == "OnRootMismatch";
  absl::Status result;
  for (const auto& volume : volumes) {
    std::string name = volume.value("name", std::string());
    auto existing = state.mounted.find(name);
    if (existing != state.mounted.end()) {
      // Already set up. configMap, secret, downwardAPI and projected volumes follow their
      // sources (the objects, the pod's labels and annotations, due tokens), as upstream
      // remounts them on every sync; a source that cannot be read keeps the old content.
      if (!IsProjection(volume)) continue;
      auto files = CollectPayload(pod, volume, host_ip, &state);
      absl::Status w = files.status();
      bool changed = false;
      if (w.ok()) w = WriteProjection(pod, existing->second.host_path, *files, &changed);
      if (!w.ok()) {
        LOG(WARNING) << "pod " << PodKey(pod) << " volume " << name
                     << ": update failed: " << w.message();
      } else if (changed) {
        LOG(INFO) << "pod " << PodKey(pod) << " volume " << name << ": content updated";
      }
      continue;
    }
    auto mounted = SetUpVolume(pod, volume, host_ip, &state);
    if (mounted.ok() && fs_group && mounted->ownership_managed) {
      absl::Status owned =
          SetVolumeOwnership(mounted->host_path, *fs_group, mounted->read_only, on_root_mismatch);
      if (!owned.ok()) mounted = owned;
    }
    if (!mounted.ok()) {
      if (result.ok()) result = Annotate(mounted.status(), absl::StrCat("volume \"", name, "\""));
      continue;
    }
    state.mounted[name] = *mounted;
  }
  {
    absl::MutexLock l(&mu_);
    pods_[uid] = state;
  }
  if (!result.ok()) return result;
  return state.mounted;
}

std::optional<absl::Time> VolumeManager::NextRefresh(const std::string& uid) {
  absl::MutexLock l(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end() || it->second.tokens.empty()) return std::nullopt;
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [_, t] : it->second.tokens) next = std::min(next, t.refresh_at);
  return next;
}

std::vector<ClaimVolume> VolumeManager::ClaimVolumes() {
  absl::MutexLock l(&mu_);
  std::vector<ClaimVolume> out;
  for (const auto& [uid, pod] : pods_) {
    for (const auto& [name, v] : pod.mounted) {
      if (!v.claim_name.empty()) out.push_back(ClaimVolume{uid, name, v});
    }
  }
  return out;
}

absl::Status VolumeManager::TearDownPodVolumes(const std::string& uid) {
  {
    absl::MutexLock l(&mu_);
    pods_.erase(uid);
  }
  // First the subPath bind mounts (kubelet/subpath.h), which show parts of the volumes.
  RETURN_IF_ERROR(
      Annotate(CleanSubPaths(PodDir(uid)), absl::StrCat("tear down volumes of pod ", uid)));
  // Then CSI volumes: their drivers unpublish (and unstage) them, found from their
  // vol_data.json files.
  if (csi_ != nullptr)
    RETURN_IF_ERROR(
        Annotate(csi_->TearDownPod(uid), absl::StrCat("tear down volumes of pod ", uid)));
  // The tmpfs volumes first (RemoveAll does not cross mount points).
  const std::string volumes = JoinPath(PodDir(uid), "volumes");
  RETURN_IF_ERROR(
      Annotate(UnmountAllUnder(volumes), absl::StrCat("tear down volumes of pod ", uid)));
  return RemoveAll(volumes);
}

}  // namespace berth::kubelet
