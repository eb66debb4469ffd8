#include "kubelet/garbage_collector.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

absl::Status ValidateImageGcPolicy(const ImageGcPolicy& p) {
  if (p.high_threshold_percent < 0 || p.high_threshold_percent > 100) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid HighThresholdPercent ", p.high_threshold_percent, ", must be in range [0-100]"));
  }
  if (p.low_threshold_percent < 0 || p.low_threshold_percent > 100) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid LowThresholdPercent ", p.low_threshold_percent, ", must be in range [0-100]"));
  }
  if (p.low_threshold_percent > p.high_threshold_percent) {
    return absl::InvalidArgumentError(absl::StrCat("LowThresholdPercent ", p.low_threshold_percent,
                                                   " can not be higher than HighThresholdPercent ",
                                                   p.high_threshold_percent));
  }
  return absl::OkStatus();
}

ImageGcManager::ImageGcManager(cri::ImageService* images, cri::RuntimeService* runtime,
                               ImageGcPolicy policy,
                               std::function<absl::StatusOr<FsCapacity>()> image_fs,
                               std::function<absl::Time()> now)
    : images_(images),
      runtime_(runtime),
      policy_(policy),
      image_fs_(std::move(image_fs)),
      now_(std::move(now)) {}

absl::StatusOr<std::vector<ImageGcCandidate>> ImageGcManager::Detect(absl::Time now) {
  ASSIGN_OR_RETURN(v1::ListImagesResponse images, images_->ListImages(v1::ListImagesRequest()));
  ASSIGN_OR_RETURN(v1::ListContainersResponse containers,
                   runtime_->ListContainers(v1::ListContainersRequest()));
  std::set<std::string> in_use;
  for (const v1::Container& c : containers.containers()) {
    // image_ref is the image id; the spec's image may be an id or a reference.
    in_use.insert(c.image_ref());
    in_use.insert(c.image().image());
  }
  std::map<std::string, Record> next;
  std::vector<ImageGcCandidate> out;
  for (const v1::Image& image : images.images()) {
    Record r;
    if (auto it = records_.find(image.id()); it != records_.end()) {
      r = it->second;
    } else {
      r.first_detected = now;
    }
    r.size = static_cast<int64_t>(image.size());
    bool used = in_use.count(image.id()) > 0;
    for (const std::string& tag : image.repo_tags()) used = used || in_use.count(tag) > 0;
    for (const std::string& digest : image.repo_digests()) used = used || in_use.count(digest) > 0;
    if (used) r.last_used = now;
    next[image.id()] = r;
    if (image.pinned()) continue;
    out.push_back({image.id(), r.size, r.first_detected, r.last_used});
  }
  records_ = std::move(next);
  std::stable_sort(out.begin(), out.end(),
                   [](const ImageGcCandidate& a, const ImageGcCandidate& b) {
                     if (a.last_used != b.last_used) return a.last_used < b.last_used;
                     return a.first_detected < b.first_detected;
                   });
  return out;
}

absl::StatusOr<std::vector<ImageGcCandidate>> ImageGcManager::ImagesInEvictionOrder() {
  absl::MutexLock l(&mu_);
  return Detect(Now());
}

absl::StatusOr<int64_t> ImageGcManager::FreeSpace(int64_t bytes) {
  const absl::Time now = Now();
  ASSIGN_OR_RETURN(std::vector<ImageGcCandidate> images, Detect(now));
  int64_t freed = 0;
  absl::Status first_error;
  for (const ImageGcCandidate& image : images) {
    if (freed >= bytes) break;
    if (image.last_used >= now) continue;                        // in use now
    if (now - image.first_detected < policy_.min_age) continue;  // maybe about to be used
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image.id);
    LOG(INFO) << "image gc: removing image " << image.id << " (" << image.size << " bytes)";
    if (absl::StatusOr<v1::RemoveImageResponse> r = images_->RemoveImage(req); !r.ok()) {
      LOG(WARNING) << "image gc: remove " << image.id << ": " << r.status();
      if (first_error.ok()) first_error = r.status();
      continue;
    }
    records_.erase(image.id);
    freed += image.size;
  }
  if (!first_error.ok()) {
    return absl::Status(
        first_error.code(),
        absl::StrCat("wanted to free ", bytes, " bytes, but freed ", freed,
                     " bytes space with errors in image deletion: ", first_error.message()));
  }
  return freed;
}

absl::StatusOr<int64_t> ImageGcManager::GarbageCollect() {
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(FsCapacity fs, image_fs_());
  int64_t capacity = fs.capacity_bytes;
  int64_t available = std::min(fs.available_bytes, capacity);
  if (capacity <= 0) return absl::FailedPreconditionError("invalid capacity 0 on image filesystem");
  // Records first-detected times even when nothing is to be freed (the min age counts from it).
  int usage_percent = 100 - static_cast<int>(available * 100 / capacity);
  if (usage_percent < policy_.high_threshold_percent) {
    RETURN_IF_ERROR(Detect(Now()).status());
    return 0;
  }
  int64_t to_free = capacity * (100 - policy_.low_threshold_percent) / 100 - available;
  LOG(INFO) << "image gc: disk usage " << usage_percent << "% is at or over the high threshold "
            << policy_.high_threshold_percent << "%, trying to free " << to_free
            << " bytes down to " << policy_.low_threshold_percent << "%";
  ASSIGN_OR_RETURN(int64_t freed, FreeSpace(to_free));
  if (freed < to_free) {
    return absl::ResourceExhaustedError(
        absl::StrCat("Insufficient free disk space on the node's image filesystem (", usage_percent,
                     "% of ", capacity,
                     " bytes used). Failed to free sufficient space by deleting unused "
                     "images (freed ",
                     freed, " bytes)."));
  }
  return freed;
}

absl::StatusOr<int64_t> ImageGcManager::DeleteUnusedImages() {
  absl::MutexLock l(&mu_);
  return FreeSpace(std::numeric_limits<int64_t>::max());
}

// ---------------------------------------------------------------- ContainerGc

ContainerGc::ContainerGc(cri::RuntimeService* runtime, ContainerGcPolicy policy,
                         std::function<PodGcState(const std::string&)> pod_state,
                         std::function<absl::Time()> now)
    : runtime_(runtime), policy_(policy), pod_state_(std::move(pod_state)), now_(std::move(now)) {}

std::vector<std::string> ContainerGc::Select(const std::vector<v1::Container>& containers,
                                             bool evict_terminated, absl::Time now) const {
  using Unit = std::vector<const v1::Container*>;  // newest first
  std::map<std::pair<std::string, std::string>, Unit> units;
  const int64_t newest = absl::ToUnixNanos(now - policy_.min_age);
  for (const v1::Container& c : containers) {
    if (c.state() == v1::CONTAINER_RUNNING) continue;
    if (c.created_at() > newest) continue;
    auto uid = c.labels().find("io.kubernetes.pod.uid");
    auto name = c.labels().find("io.kubernetes.container.name");
    if (uid == c.labels().end() || name == c.labels().end()) continue;
    units[{uid->second, name->second}].push_back(&c);
  }
  auto newest_first = [](const v1::Container* a, const v1::Container* b) {
    return a->created_at() > b->created_at();
  };
  for (auto& [_, unit] : units) std::stable_sort(unit.begin(), unit.end(), newest_first);
  std::vector<std::string> out;
  auto remove_oldest = [&out](Unit* unit, size_t n) {
    n = std::min(n, unit->size());
    for (size_t i = unit->size() - n; i < unit->size(); ++i) out.push_back((*unit)[i]->id());
    unit->resize(unit->size() - n);
  };
  for (auto it = units.begin(); it != units.end();) {
    PodGcState s = pod_state_(it->first.first);
    if (s == PodGcState::kDeleted || (evict_terminated && s == PodGcState::kTerminated)) {
      remove_oldest(&it->second, it->second.size());
      it = units.erase(it);
    } else {
      ++it;
    }
  }
  auto enforce_per_unit = [&](int max) {
    for (auto& [_, unit] : units) {
      if (unit.size() > static_cast<size_t>(max)) remove_oldest(&unit, unit.size() - max);
    }
  };
  if (policy_.max_per_pod_container >= 0) enforce_per_unit(policy_.max_per_pod_container);
  auto count = [&] {
    size_t n = 0;
    for (const auto& [_, unit] : units) n += unit.size();
    return n;
  };
  if (policy_.max_containers >= 0 && count() > static_cast<size_t>(policy_.max_containers)) {
    int per_unit = units.empty() ? 1 : policy_.max_containers / static_cast<int>(units.size());
    enforce_per_unit(std::max(per_unit, 1));
    size_t n = count();
    if (n > static_cast<size_t>(policy_.max_containers)) {
      Unit all;
      for (const auto& [_, unit] : units) all.insert(all.end(), unit.begin(), unit.end());
      std::stable_sort(all.begin(), all.end(), newest_first);
      remove_oldest(&all, n - policy_.max_containers);
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ContainerGc::GarbageCollect(bool evict_terminated) {
  ASSIGN_OR_RETURN(v1::ListContainersResponse list,
                   runtime_->ListContainers(v1::ListContainersRequest()));
  std::vector<v1::Container> containers(list.containers().begin(), list.containers().end());
  std::vector<std::string> ids = Select(containers, evict_terminated, now_ ? now_() : absl::Now());
  std::vector<std::string> removed;
  for (const std::string& id : ids) {
    v1::RemoveContainerRequest req;
    req.set_container_id(id);
    if (auto r = runtime_->RemoveContainer(req); !r.ok()) {
      LOG(WARNING) << "container gc: remove container " << id << ": " << r.status();
      continue;
    }
    LOG(INFO) << "container gc: removed dead container " << id;
    removed.push_back(id);
  }
  return removed;
}

// ---------------------------------------------------------------- GcLoop

GcLoop::GcLoop(absl::Duration image_period, std::function<void()> image_gc,
               absl::Duration container_period, std::function<void()> container_gc)
    : image_period_(image_period),
      container_period_(container_period),
      image_gc_(std::move(image_gc)),
      container_gc_(std::move(container_gc)) {}

GcLoop::~GcLoop() { Stop(); }

void GcLoop::Start() {
  thread_ = std::thread([this] {
    absl::Time next_image = absl::Now() + image_period_;
    absl::Time next_container = absl::Now() + container_period_;
    while (true) {
      {
        absl::MutexLock l(&mu_);
        absl::Time wake = std::min(next_image, next_container);
        mu_.AwaitWithDeadline(absl::Condition(&stop_), wake);
        if (stop_) return;
      }
      absl::Time now = absl::Now();
      if (now >= next_container) {
        container_gc_();
        next_container = now + container_period_;
      }
      if (now >= next_image) {
        image_gc_();
        next_image = now + image_period_;
      }
    }
  });
}

void GcLoop::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace berth::kubelet
