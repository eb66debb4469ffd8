// The image store: pulls images from registries into a content store, unpacks each layer
// once (keyed by chain ID) as an overlayfs lower dir, keeps image metadata in SQLite, and
// serves the CRI ImageService plus ImageResolver for the runtime.
//
// On disk under root_dir:
//   blobs/sha256/<hex>      manifests and configs by digest (layer blobs are deleted once unpacked)
//   layers/<chain-id hex>/  unpacked layer, an overlay lower dir
//   tmp/                    downloads and unpacks in progress (cleared at Init)
#pragma once

#include <atomic>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cri/image/registry.h"
#include "cri/image/resolver.h"
#include "cri/runtime_service.h"
#include "cri/store/db.h"

namespace berth::metrics {
class FsUsageCache;
}  // namespace berth::metrics

namespace berth::cri::image {

struct ImageStoreOptions {
  std::string root_dir;               // e.g. /var/lib/berth/image
  store::Db* db = nullptr;            // metadata; not owned, must outlive the store
  RegistryConfig registry;            // insecure registries and mirrors
  std::string platform_os = "linux";  // platform selected from manifest lists
  std::string platform_arch;          // default: the build's architecture (amd64, arm64)
  // References of pinned images (CRI Image.pinned: the kubelet's image GC never removes
  // them), e.g. the pause/sandbox image a peer runtime or kubelet is configured with. An
  // image is pinned when one of its repo tags or digests is one of these (normalized).
  std::vector<std::string> pinned_images;
  // Measures root_dir in the background for ImageFsInfo (as containerd's snapshot syncer
  // does), so that a call does not walk the store; not owned, must outlive the store. Null:
  // every ImageFsInfo walks root_dir.
  metrics::FsUsageCache* fs_usage = nullptr;
};

// Thread-safe: all methods may be called concurrently. Concurrent pulls of the same
// reference coalesce (one does the work, the others wait for its result); concurrent pulls
// sharing a layer unpack it once. Blocking: PullImage does network and disk I/O on the
// calling thread.
class ImageStore : public ImageService, public ImageResolver {
 public:
  // SQL DDL of the store's tables (idempotent); pass to Db::Open or let Init() run it.
  static std::string Schema();

  explicit ImageStore(ImageStoreOptions options);

  // Creates the directories and tables, clears tmp/ and removes layers no image references
  // (left by a crash). Call once before anything else.
  absl::Status Init();

  // CRI ImageService (api.proto). PullImage returns image_ref = image ID "sha256:<config hex>".
  // Pull errors: NotFound (unknown repository/tag, with the registry's message),
  // Unavailable (registry unreachable), Unauthenticated, DataLoss (digest mismatch),
  // InvalidArgument (bad reference, no matching platform).
  absl::StatusOr<v1::ListImagesResponse> ListImages(const v1::ListImagesRequest& request) override;
  absl::StatusOr<v1::ImageStatusResponse> ImageStatus(
      const v1::ImageStatusRequest& request) override;
  absl::StatusOr<v1::PullImageResponse> PullImage(const v1::PullImageRequest& request) override;
  absl::StatusOr<v1::RemoveImageResponse> RemoveImage(
      const v1::RemoveImageRequest& request) override;
  // ImageFsInfo: used bytes (allocated blocks) and inodes under root_dir, from the last
  // background measurement of options.fs_usage; the call walks root_dir itself only when a
  // pull or remove changed the store since its last walk and no newer measurement exists, so
  // that the usage follows pulls and removals at once. The same figures as
  // container_filesystems (same filesystem, same fs_id).
  absl::StatusOr<v1::ImageFsInfoResponse> ImageFsInfo(
      const v1::ImageFsInfoRequest& request) override;

  // ImageResolver.
  absl::StatusOr<ResolvedImage> Resolve(const std::string& ref) override;

  // Pulls `ref` (see PullImage) and returns the image ID.
  absl::StatusOr<std::string> Pull(const std::string& ref, const RegistryAuth& auth);

  // Absolute dir of the unpacked layer with `chain_id` ("sha256:<hex>").
  std::string LayerDir(const std::string& chain_id) const;

 private:
  struct ImageRecord;
  // `new_blobs` collects the manifest/config blob files this pull added to the content store,
  // for RemoveOrphanBlobs when the pull fails.
  absl::StatusOr<std::string> DoPull(const Reference& ref, const RegistryAuth& auth,
                                     std::vector<std::string>* new_blobs);
  // Removes those of `paths` (blobs/sha256/<hex>) no stored image references.
  void RemoveOrphanBlobs(const std::vector<std::string>& paths);
  absl::Status EnsureLayer(RegistryClient& client, const std::string& blob_digest,
                           const std::string& diff_id, const std::string& chain_id, int64_t* size);
  absl::StatusOr<std::string> PutBlob(const std::string& digest, const std::string& data);
  // Image ID for a CRI image reference, NotFound when absent.
  absl::StatusOr<std::string> LookupId(const std::string& ref);
  absl::StatusOr<ImageRecord> Load(const std::string& id);
  absl::StatusOr<v1::Image> ToCri(const ImageRecord& rec);
  std::string TmpPath(const std::string& what);

  ImageStoreOptions opts_;
  // Pulls take it shared for the unpack+commit phase; RemoveImage exclusively, so a layer
  // is never deleted while a pull is about to reference it.
  absl::Mutex gc_mu_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_future<absl::StatusOr<std::string>>> pulls_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_future<absl::Status>> unpacks_ ABSL_GUARDED_BY(mu_);
  uint64_t tmp_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // ImageFsInfo: whether a pull or remove changed the store since the last walk, and that
  // walk's totals (time in seconds since the epoch), used until the background measurement of
  // opts_.fs_usage is newer.
  std::atomic<bool> fs_changed_{true};
  struct FsTotals {
    double time_seconds = 0;
    uint64_t used_bytes = 0;
    uint64_t inodes_used = 0;
  };
  absl::Mutex fs_mu_;
  std::optional<FsTotals> last_walk_ ABSL_GUARDED_BY(fs_mu_);
};

}  // namespace berth::cri::image
