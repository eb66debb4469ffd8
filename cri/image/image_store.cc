#include "cri/image/image_store.h"

#include <ftw.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "cri/image/digest.h"
#include "cri/image/layer.h"
#include "cri/image/reference.h"
#include "metrics/fs_usage.h"

namespace berth::cri::image {

using nlohmann::json;
using store::AsInt;
using store::AsString;

struct ImageStore::ImageRecord {
  std::string id;
  std::string manifest_digest;
  std::string config;  // raw config JSON
  int64_t size = 0;
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  std::vector<std::string> chain_ids;  // bottom-most first
};

namespace {

#if defined(__x86_64__)
constexpr char kArch[] = "amd64";
#elif defined(__aarch64__)
constexpr char kArch[] = "arm64";
#else
constexpr char kArch[] = "unknown";
#endif

std::string Str(const json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return "";
}

std::vector<std::string> StrList(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.is_object() && j.contains(key) && j[key].is_array()) {
    for (const auto& v : j[key]) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

bool IsLowerHexString(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !s.empty();
}

// The FsUsageCache consumer name of ImageFsInfo.
constexpr char kFsUsageConsumer[] = "image-fs";

// Totals for ImageFsInfo, filled by nftw (which has no user pointer).
thread_local uint64_t g_fs_bytes;
thread_local uint64_t g_fs_inodes;
int CountFs(const char*, const struct stat* st, int, struct FTW*) {
  g_fs_bytes += static_cast<uint64_t>(st->st_blocks) * 512;
  g_fs_inodes += 1;
  return 0;
}

}  // namespace

std::string ImageStore::Schema() {
  return R"sql(
CREATE TABLE IF NOT EXISTS image_images (
  id TEXT PRIMARY KEY,            -- "sha256:<config digest hex>"
  manifest_digest TEXT NOT NULL,  -- platform manifest digest
  config TEXT NOT NULL,           -- OCI image config JSON
  size INTEGER NOT NULL,          -- config + compressed layer sizes, bytes
  created INTEGER NOT NULL        -- pull time, unix nanoseconds
);
CREATE TABLE IF NOT EXISTS image_refs (
  ref TEXT PRIMARY KEY,           -- "domain/path:tag" or "domain/path@sha256:..."
  image_id TEXT NOT NULL,
  kind TEXT NOT NULL              -- "tag" or "digest"
);
CREATE INDEX IF NOT EXISTS image_refs_by_image ON image_refs(image_id);
CREATE TABLE IF NOT EXISTS image_layers (
  image_id TEXT NOT NULL,
  idx INTEGER NOT NULL,           -- 0 = bottom-most
  chain_id TEXT NOT NULL,
  PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_by_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS image_layer_dirs (
  chain_id TEXT PRIMARY KEY,      -- dir layers/<hex>
  diff_id TEXT NOT NULL,
  size INTEGER NOT NULL           -- compressed blob size, bytes
);
)sql";
}

ImageStore::ImageStore(ImageStoreOptions options) : opts_(std::move(options)) {
  if (opts_.platform_arch.empty()) opts_.platform_arch = kArch;
}

absl::Status ImageStore::Init() {
  if (opts_.db == nullptr) return absl::InvalidArgumentError("image store: no metadata database");
  RETURN_IF_ERROR(MkdirAll(opts_.root_dir, 0700));
  char* real = realpath(opts_.root_dir.c_str(), nullptr);
  if (real == nullptr) return ErrnoStatus(errno, absl::StrCat("realpath ", opts_.root_dir));
  opts_.root_dir = real;
  free(real);
  RETURN_IF_ERROR(RemoveAll(JoinPath(opts_.root_dir, "tmp")));
  for (const char* d : {"blobs/sha256", "layers", "tmp"})
    RETURN_IF_ERROR(MkdirAll(JoinPath(opts_.root_dir, d), 0700));
  std::string schema = Schema();
  size_t start = 0;
  while (true) {
    size_t end = schema.find(';', start);
    if (end == std::string::npos) break;
    std::string stmt = schema.substr(start, end - start);
    start = end + 1;
    if (stmt.find_first_not_of(" \n\t") == std::string::npos) continue;
    RETURN_IF_ERROR(Annotate(opts_.db->Exec(stmt), "image store schema"));
  }
  // Crash recovery: layers no image references (a pull that died before committing) and
  // layer dirs without a row (a crash between rename and insert) are removed.
  RETURN_IF_ERROR(opts_.db->Exec(
      "DELETE FROM image_layer_dirs WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)"));
  ASSIGN_OR_RETURN(auto rows, opts_.db->Query("SELECT chain_id FROM image_layer_dirs"));
  std::set<std::string> known;
  for (const auto& r : rows) known.insert(DigestHex(AsString(r[0])));
  ASSIGN_OR_RETURN(auto dirs, ListDir(JoinPath(opts_.root_dir, "layers")));
  for (const auto& d : dirs) {
    if (known.count(d) == 0) {
      LOG(INFO) << "image store: removing unreferenced layer dir " << d;
      RETURN_IF_ERROR(RemoveAll(absl::StrCat(opts_.root_dir, "/layers/", d)));
    }
  }
  return absl::OkStatus();
}

std::string ImageStore::LayerDir(const std::string& chain_id) const {
  return absl::StrCat(opts_.root_dir, "/layers/", DigestHex(chain_id));
}

std::string ImageStore::TmpPath(const std::string& what) {
  uint64_t seq;
  {
    absl::MutexLock l(&mu_);
    seq = ++tmp_seq_;
  }
  return absl::StrCat(opts_.root_dir, "/tmp/", what, "-", seq);
}

absl::StatusOr<std::string> ImageStore::PutBlob(const std::string& digest,
                                                const std::string& data) {
  std::string path = absl::StrCat(opts_.root_dir, "/blobs/sha256/", DigestHex(digest));
  if (!PathExists(path)) RETURN_IF_ERROR(WriteFileAtomic(path, data, 0600));
  return path;
}

absl::StatusOr<std::string> ImageStore::Pull(const std::string& ref_str, const RegistryAuth& auth) {
  ASSIGN_OR_RETURN(Reference ref, ParseReference(ref_str));
  std::string key = ref.String();
  std::promise<absl::StatusOr<std::string>> promise;
  std::shared_future<absl::StatusOr<std::string>> fut;
  bool owner = false;
  {
    absl::MutexLock l(&mu_);
    auto it = pulls_.find(key);
    if (it != pulls_.end()) {
      fut = it->second;
    } else {
      fut = promise.get_future().share();
      pulls_.emplace(key, fut);
      owner = true;
    }
  }
  if (!owner) return fut.get();
  std::vector<std::string> new_blobs;
  absl::StatusOr<std::string> result = DoPull(ref, auth, &new_blobs);
  if (!result.ok()) {
    // A failed pull (a full disk, a bad layer) leaves no manifest or config behind.
    RemoveOrphanBlobs(new_blobs);
    result = Annotate(result.status(), absl::StrCat("pull ", key));
  }
  fs_changed_.store(true);  // ImageFsInfo walks again (a failed pull may have left layers)
  promise.set_value(result);
  {
    absl::MutexLock l(&mu_);
    pulls_.erase(key);
  }
  if (result.ok()) {
    LOG(INFO) << "pulled " << key << " as " << *result;
  } else {
    LOG(WARNING) << result.status().message();
  }
  return result;
}

void ImageStore::RemoveOrphanBlobs(const std::vector<std::string>& paths) {
  if (paths.empty()) return;
  absl::MutexLock gc(&gc_mu_);
  for (const std::string& path : paths) {
    std::string digest = absl::StrCat("sha256:", path.substr(path.rfind('/') + 1));
    auto rows = opts_.db->Query("SELECT id FROM image_images WHERE id = ?1 OR manifest_digest = ?1",
                                {digest});
    if (rows.ok() && rows->empty()) std::remove(path.c_str());
  }
}

absl::StatusOr<std::string> ImageStore::DoPull(const Reference& ref, const RegistryAuth& auth,
                                               std::vector<std::string>* new_blobs) {
  RegistryClient client(ref, opts_.registry, auth);
  ASSIGN_OR_RETURN(FetchedManifest top,
                   client.GetManifest(ref.digest.empty() ? ref.tag : ref.digest));
  FetchedManifest manifest = top;
  if (top.media_type == kOciIndex || top.media_type == kDockerManifestList) {
    json index = json::parse(top.body, nullptr, false);
    std::string chosen;
    if (index.is_object() && index.contains("manifests") && index["manifests"].is_array()) {
      for (const auto& m : index["manifests"]) {
        const json& p = m.is_object() && m.contains("platform") ? m["platform"] : json();
        if (Str(p, "os") == opts_.platform_os && Str(p, "architecture") == opts_.platform_arch) {
          chosen = Str(m, "digest");
          break;
        }
      }
    }
    if (chosen.empty()) {
      return absl::NotFoundError(absl::StrCat("no manifest for platform ", opts_.platform_os, "/",
                                              opts_.platform_arch, " in manifest list ",
                                              top.digest));
    }
    ASSIGN_OR_RETURN(manifest, client.GetManifest(chosen));
  }
  if (manifest.media_type != kOciManifest && manifest.media_type != kDockerManifest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "manifest ", manifest.digest, ": unsupported media type \"", manifest.media_type, "\""));
  }
  json mj = json::parse(manifest.body, nullptr, false);
  if (!mj.is_object() || !mj.contains("config") || !mj["config"].is_object() ||
      !mj.contains("layers") || !mj["layers"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest ", manifest.digest, ": missing config or layers"));
  }
  std::string config_digest = Str(mj["config"], "digest");
  if (!IsSha256Digest(config_digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest ", manifest.digest, ": bad config digest"));
  }
  int64_t size = mj["config"].value("size", int64_t{0});
  std::vector<std::string> layer_digests;
  for (const auto& l : mj["layers"]) {
    std::string d = Str(l, "digest");
    if (!IsSha256Digest(d))
      return absl::InvalidArgumentError(
          absl::StrCat("manifest ", manifest.digest, ": bad layer digest"));
    layer_digests.push_back(d);
    size += l.value("size", int64_t{0});
  }

  // Config blob (content store).
  std::string config_path =
      absl::StrCat(opts_.root_dir, "/blobs/sha256/", DigestHex(config_digest));
  if (!PathExists(config_path)) {
    std::string tmp = TmpPath("blob");
    RETURN_IF_ERROR(client.FetchBlob(config_digest, tmp).status());
    if (rename(tmp.c_str(), config_path.c_str()) != 0) {
      int err = errno;
      std::remove(tmp.c_str());
      return ErrnoStatus(err, absl::StrCat("rename ", tmp, " to ", config_path));
    }
    new_blobs->push_back(config_path);
  }
  ASSIGN_OR_RETURN(std::string config, ReadFile(config_path));
  json cj = json::parse(config, nullptr, false);
  if (!cj.is_object())
    return absl::InvalidArgumentError(absl::StrCat("image config ", config_digest, ": not JSON"));
  std::vector<std::string> diff_ids =
      cj.contains("rootfs") ? StrList(cj["rootfs"], "diff_ids") : std::vector<std::string>{};
  if (diff_ids.size() != layer_digests.size()) {
    return absl::InvalidArgumentError(absl::StrCat("image config ", config_digest, ": ",
                                                   diff_ids.size(), " diff_ids for ",
                                                   layer_digests.size(), " manifest layers"));
  }
  if (std::string p = absl::StrCat(opts_.root_dir, "/blobs/sha256/", DigestHex(manifest.digest));
      !PathExists(p)) {
    new_blobs->push_back(p);
  }
  RETURN_IF_ERROR(PutBlob(manifest.digest, manifest.body).status());
  std::vector<std::string> chain_ids = ChainIds(diff_ids);

  absl::ReaderMutexLock gc(&gc_mu_);
  for (size_t i = 0; i < layer_digests.size(); ++i) {
    int64_t unused = 0;
    RETURN_IF_ERROR(EnsureLayer(client, layer_digests[i], diff_ids[i], chain_ids[i], &unused));
  }
  const std::string& id = config_digest;
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  RETURN_IF_ERROR(opts_.db->Transaction([&]() -> absl::Status {
    RETURN_IF_ERROR(
        opts_.db->Exec("INSERT INTO image_images (id, manifest_digest, config, size, created) "
                       "VALUES (?1, ?2, ?3, ?4, ?5) "
                       "ON CONFLICT(id) DO UPDATE SET manifest_digest = ?2, size = ?4",
                       {id, manifest.digest, config, size, now}));
    RETURN_IF_ERROR(opts_.db->Exec("DELETE FROM image_layers WHERE image_id = ?1", {id}));
    for (size_t i = 0; i < chain_ids.size(); ++i) {
      RETURN_IF_ERROR(
          opts_.db->Exec("INSERT INTO image_layers (image_id, idx, chain_id) VALUES (?1, ?2, ?3)",
                         {id, static_cast<int64_t>(i), chain_ids[i]}));
    }
    if (!ref.tag.empty()) {
      RETURN_IF_ERROR(opts_.db->Exec(
          "INSERT OR REPLACE INTO image_refs (ref, image_id, kind) VALUES (?1, ?2, 'tag')",
          {ref.TagString(), id}));
    }
    return opts_.db->Exec(
        "INSERT OR REPLACE INTO image_refs (ref, image_id, kind) VALUES (?1, ?2, 'digest')",
        {absl::StrCat(ref.Name(), "@", top.digest), id});
  }));
  return id;
}

absl::Status ImageStore::EnsureLayer(RegistryClient& client, const std::string& blob_digest,
                                     const std::string& diff_id, const std::string& chain_id,
                                     int64_t* size) {
  std::promise<absl::Status> promise;
  std::shared_future<absl::Status> fut;
  bool owner = false;
  {
    absl::MutexLock l(&mu_);
    auto it = unpacks_.find(chain_id);
    if (it != unpacks_.end()) {
      fut = it->second;
    } else {
      fut = promise.get_future().share();
      unpacks_.emplace(chain_id, fut);
      owner = true;
    }
  }
  if (!owner) return fut.get();
  auto work = [&]() -> absl::Status {
    std::string dir = LayerDir(chain_id);
    ASSIGN_OR_RETURN(
        auto rows,
        opts_.db->Query("SELECT size FROM image_layer_dirs WHERE chain_id = ?1", {chain_id}));
    if (!rows.empty() && PathExists(dir)) {
      *size = AsInt(rows[0][0]);
      return absl::OkStatus();
    }
    std::string blob = TmpPath("layer");
    ASSIGN_OR_RETURN(*size, client.FetchBlob(blob_digest, blob));
    std::string tmp_dir = TmpPath("unpack");
    auto unpacked = UnpackLayer(blob, tmp_dir, diff_id);
    std::remove(blob.c_str());
    if (!unpacked.ok()) return Annotate(unpacked.status(), absl::StrCat("layer ", blob_digest));
    RETURN_IF_ERROR(RemoveAll(dir));
    if (rename(tmp_dir.c_str(), dir.c_str()) != 0) {
      int err = errno;
      (void)RemoveAll(tmp_dir);
      return ErrnoStatus(err, absl::StrCat("rename ", tmp_dir, " to ", dir));
    }
    return opts_.db->Exec(
        "INSERT OR REPLACE INTO image_layer_dirs (chain_id, diff_id, size) VALUES (?1, ?2, ?3)",
        {chain_id, diff_id, *size});
  };
  absl::Status s = work();
  promise.set_value(s);
  {
    absl::MutexLock l(&mu_);
    unpacks_.erase(chain_id);
  }
  return s;
}

absl::StatusOr<std::string> ImageStore::LookupId(const std::string& ref) {
  auto not_found = absl::NotFoundError(absl::StrCat("image \"", ref, "\" not found"));
  if (ref.empty()) return not_found;
  std::string hex;
  if (ref.rfind("sha256:", 0) == 0) {
    hex = ref.substr(7);
  } else {
    auto parsed = ParseReference(ref);
    if (parsed.ok()) {
      ASSIGN_OR_RETURN(auto rows, opts_.db->Query("SELECT image_id FROM image_refs WHERE ref = ?1",
                                                  {parsed->String()}));
      if (!rows.empty()) return AsString(rows[0][0]);
    }
    hex = ref;
  }
  if (!IsLowerHexString(hex) || hex.size() > 64) return not_found;
  ASSIGN_OR_RETURN(
      auto rows, opts_.db->Query("SELECT id FROM image_images WHERE substr(id, 8, ?2) = ?1 LIMIT 2",
                                 {hex, static_cast<int64_t>(hex.size())}));
  if (rows.empty()) return not_found;
  if (rows.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("image ID prefix \"", ref, "\" is ambiguous"));
  }
  return AsString(rows[0][0]);
}

absl::StatusOr<ImageStore::ImageRecord> ImageStore::Load(const std::string& id) {
  ImageRecord rec;
  ASSIGN_OR_RETURN(
      auto rows, opts_.db->Query(
                     "SELECT manifest_digest, config, size FROM image_images WHERE id = ?1", {id}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("image ", id, " not found"));
  rec.id = id;
  rec.manifest_digest = AsString(rows[0][0]);
  rec.config = AsString(rows[0][1]);
  rec.size = AsInt(rows[0][2]);
  ASSIGN_OR_RETURN(
      auto refs,
      opts_.db->Query("SELECT ref, kind FROM image_refs WHERE image_id = ?1 ORDER BY ref", {id}));
  for (const auto& r : refs) {
    (AsString(r[1]) == "tag" ? rec.repo_tags : rec.repo_digests).push_back(AsString(r[0]));
  }
  ASSIGN_OR_RETURN(
      auto layers,
      opts_.db->Query("SELECT chain_id FROM image_layers WHERE image_id = ?1 ORDER BY idx", {id}));
  for (const auto& l : layers) rec.chain_ids.push_back(AsString(l[0]));
  return rec;
}

absl::StatusOr<v1::Image> ImageStore::ToCri(const ImageRecord& rec) {
  v1::Image img;
  img.set_id(rec.id);
  for (const auto& t : rec.repo_tags) img.add_repo_tags(t);
  for (const auto& d : rec.repo_digests) img.add_repo_digests(d);
  img.set_size(static_cast<uint64_t>(rec.size));
  img.mutable_spec()->set_image(rec.id);
  bool pinned = false;
  for (const auto& p : opts_.pinned_images) {
    auto ref = ParseReference(p);
    if (!ref.ok()) continue;
    const std::string want = ref->String();
    for (const auto& names : {&rec.repo_tags, &rec.repo_digests}) {
      pinned = pinned || std::find(names->begin(), names->end(), want) != names->end();
    }
  }
  img.set_pinned(pinned);
  json cj = json::parse(rec.config, nullptr, false);
  std::string user = cj.is_object() && cj.contains("config") ? Str(cj["config"], "User") : "";
  std::string name = user.substr(0, user.find(':'));
  if (!name.empty()) {
    if (name.find_first_not_of("0123456789") == std::string::npos) {
      img.mutable_uid()->set_value(std::strtoll(name.c_str(), nullptr, 10));
    } else {
      img.set_username(name);
    }
  }
  return img;
}

absl::StatusOr<v1::PullImageResponse> ImageStore::PullImage(const v1::PullImageRequest& request) {
  RegistryAuth auth;
  auth.username = request.auth().username();
  auth.password = request.auth().password();
  auth.auth = request.auth().auth();
  auth.registry_token = request.auth().registry_token();
  ASSIGN_OR_RETURN(std::string id, Pull(request.image().image(), auth));
  v1::PullImageResponse resp;
  resp.set_image_ref(id);
  return resp;
}

absl::StatusOr<v1::ListImagesResponse> ImageStore::ListImages(
    const v1::ListImagesRequest& request) {
  v1::ListImagesResponse resp;
  std::vector<std::string> ids;
  if (request.has_filter() && !request.filter().image().image().empty()) {
    auto id = LookupId(request.filter().image().image());
    if (absl::IsNotFound(id.status())) return resp;
    if (!id.ok()) return id.status();
    ids.push_back(*id);
  } else {
    ASSIGN_OR_RETURN(auto rows, opts_.db->Query("SELECT id FROM image_images ORDER BY created"));
    for (const auto& r : rows) ids.push_back(AsString(r[0]));
  }
  for (const auto& id : ids) {
    auto rec = Load(id);
    if (absl::IsNotFound(rec.status())) continue;  // removed meanwhile
    if (!rec.ok()) return rec.status();
    ASSIGN_OR_RETURN(*resp.add_images(), ToCri(*rec));
  }
  return resp;
}

absl::StatusOr<v1::ImageStatusResponse> ImageStore::ImageStatus(
    const v1::ImageStatusRequest& request) {
  v1::ImageStatusResponse resp;
  auto id = LookupId(request.image().image());
  if (absl::IsNotFound(id.status())) return resp;  // CRI: no image, no error
  if (!id.ok()) return id.status();
  auto rec = Load(*id);
  if (absl::IsNotFound(rec.status())) return resp;
  if (!rec.ok()) return rec.status();
  ASSIGN_OR_RETURN(*resp.mutable_image(), ToCri(*rec));
  if (request.verbose()) {
    json info = {{"id", rec->id},
                 {"manifestDigest", rec->manifest_digest},
                 {"chainIDs", rec->chain_ids},
                 {"imageSpec", json::parse(rec->config, nullptr, false)}};
    (*resp.mutable_info())["info"] = info.dump();
  }
  return resp;
}

absl::StatusOr<v1::RemoveImageResponse> ImageStore::RemoveImage(
    const v1::RemoveImageRequest& request) {
  v1::RemoveImageResponse resp;
  auto id = LookupId(request.image().image());
  if (absl::IsNotFound(id.status())) return resp;  // idempotent
  if (!id.ok()) return id.status();
  absl::MutexLock gc(&gc_mu_);
  std::vector<std::string> free_layers;
  std::string manifest_digest;
  RETURN_IF_ERROR(Annotate(opts_.db->Transaction([&]() -> absl::Status {
    ASSIGN_OR_RETURN(
        auto m, opts_.db->Query("SELECT manifest_digest FROM image_images WHERE id = ?1", {*id}));
    if (!m.empty()) manifest_digest = AsString(m[0][0]);
    RETURN_IF_ERROR(opts_.db->Exec("DELETE FROM image_refs WHERE image_id = ?1", {*id}));
    RETURN_IF_ERROR(opts_.db->Exec("DELETE FROM image_layers WHERE image_id = ?1", {*id}));
    RETURN_IF_ERROR(opts_.db->Exec("DELETE FROM image_images WHERE id = ?1", {*id}));
    ASSIGN_OR_RETURN(auto rows,
                     opts_.db->Query("SELECT chain_id FROM image_layer_dirs WHERE chain_id NOT IN "
                                     "(SELECT chain_id FROM image_layers)"));
    for (const auto& r : rows) free_layers.push_back(AsString(r[0]));
    RETURN_IF_ERROR(opts_.db->Exec(
        "DELETE FROM image_layer_dirs WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)"));
    if (!manifest_digest.empty()) {
      ASSIGN_OR_RETURN(auto users,
                       opts_.db->Query("SELECT 1 FROM image_images WHERE manifest_digest = ?1",
                                       {manifest_digest}));
      if (!users.empty()) manifest_digest.clear();
    }
    return absl::OkStatus();
  }),
                           absl::StrCat("remove image ", *id)));
  for (const auto& chain : free_layers) {
    absl::Status s = RemoveAll(LayerDir(chain));
    if (!s.ok()) {
      LOG(WARNING) << "remove image " << *id << ": free layer " << chain << ": " << s.message();
    }
  }
  std::remove(absl::StrCat(opts_.root_dir, "/blobs/sha256/", DigestHex(*id)).c_str());
  if (!manifest_digest.empty()) {
    std::remove(absl::StrCat(opts_.root_dir, "/blobs/sha256/", DigestHex(manifest_digest)).c_str());
  }
  fs_changed_.store(true);
  LOG(INFO) << "removed image " << *id << " (" << free_layers.size() << " layers freed)";
  return resp;
}

absl::StatusOr<v1::ImageFsInfoResponse> ImageStore::ImageFsInfo(const v1::ImageFsInfoRequest&) {
  std::optional<metrics::FsStats> cached;
  if (opts_.fs_usage != nullptr) {
    opts_.fs_usage->WantAlso(kFsUsageConsumer, opts_.root_dir);  // kept measured
    cached = opts_.fs_usage->Get(opts_.root_dir);
  }
  FsTotals totals;
  {
    absl::MutexLock l(&fs_mu_);
    if (cached && !fs_changed_.load() &&
        (!last_walk_ || cached->time_seconds >= last_walk_->time_seconds)) {
      totals = {cached->time_seconds, cached->used_bytes, cached->inodes_used};
    } else if (last_walk_ && !fs_changed_.load()) {
      totals = *last_walk_;
    } else {
      fs_changed_.store(false);  // a change from here on walks again
      g_fs_bytes = 0;
      g_fs_inodes = 0;
      const double now =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      if (nftw(opts_.root_dir.c_str(), CountFs, 32, FTW_PHYS | FTW_MOUNT) != 0) {
        fs_changed_.store(true);
        return ErrnoStatus(errno, absl::StrCat("walk image store ", opts_.root_dir));
      }
      totals = {now, g_fs_bytes, g_fs_inodes};
      last_walk_ = totals;
    }
  }
  v1::ImageFsInfoResponse resp;
  auto* fs = resp.add_image_filesystems();
  fs->set_timestamp(static_cast<int64_t>(totals.time_seconds * 1e9));
  fs->mutable_fs_id()->set_mountpoint(opts_.root_dir);
  fs->mutable_used_bytes()->set_value(totals.used_bytes);
  fs->mutable_inodes_used()->set_value(totals.inodes_used);
  // Writable layers live on the same filesystem (under --root-dir): the same fs_id tells the
  // kubelet (KubeletSeparateDiskGC) the container and image filesystems are not split.
  *resp.add_container_filesystems() = *fs;
  return resp;
}

absl::StatusOr<ResolvedImage> ImageStore::Resolve(const std::string& ref) {
  ASSIGN_OR_RETURN(std::string id, LookupId(ref));
  ASSIGN_OR_RETURN(ImageRecord rec, Load(id));
  ResolvedImage out;
  out.id = rec.id;
  out.repo_tags = rec.repo_tags;
  out.repo_digests = rec.repo_digests;
  for (const auto& c : rec.chain_ids) out.layer_dirs.push_back(LayerDir(c));
  json cj = json::parse(rec.config, nullptr, false);
  if (cj.is_object() && cj.contains("config") && cj["config"].is_object()) {
    const json& c = cj["config"];
    out.config.env = StrList(c, "Env");
    out.config.entrypoint = StrList(c, "Entrypoint");
    out.config.cmd = StrList(c, "Cmd");
    out.config.working_dir = Str(c, "WorkingDir");
    out.config.user = Str(c, "User");
    out.config.stop_signal = Str(c, "StopSignal");
    if (c.contains("Labels") && c["Labels"].is_object()) {
      for (const auto& [k, v] : c["Labels"].items()) {
        if (v.is_string()) out.config.labels[k] = v.get<std::string>();
      }
    }
  }
  return out;
}

}  // namespace berth::cri::image
