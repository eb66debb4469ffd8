// The kubelet's garbage collection of images and dead containers, through the CRI:
//   ImageGcManager      upstream pkg/kubelet/images/image_gc_manager.go: unused images are
//                       removed, least recently used first, once the image filesystem's usage
//                       reaches imageGCHighThresholdPercent, down to imageGCLowThresholdPercent;
//                       images in use by a container, pinned images and images younger than
//                       imageMinimumGCAge (since berth first saw them) are kept.
//   ContainerGc         upstream pkg/kubelet/kuberuntime/kuberuntime_gc.go: exited containers
//                       older than MinAge, per (pod, container name) keeping the newest
//                       MaxPerPodContainer, then at most MaxContainers in total; all of them
//                       for deleted pods (and terminated ones when evicting).
// The eviction manager calls DeleteAllUnusedContainers then DeleteUnusedImages before it evicts
// pods for disk pressure (NodeEvictionManager::Deps::disk_reclaim).
//
// Example (main):
//   ImageGcManager images(&image_service, &runtime, {}, fs_fn);
//   ContainerGc containers(&runtime, {}, pod_state_fn);
//   // every 5 min: images.GarbageCollect(); every minute: containers.GarbageCollect(false);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cri/runtime_service.h"

namespace berth::kubelet {

// KubeletConfiguration image GC fields (upstream defaults).
struct ImageGcPolicy {
  int high_threshold_percent = 85;            // imageGCHighThresholdPercent; 100 disables image GC
  int low_threshold_percent = 80;             // imageGCLowThresholdPercent
  absl::Duration min_age = absl::Minutes(2);  // imageMinimumGCAge
};

// Checks a policy as upstream NewImageGCManager: thresholds within [0, 100], low <= high.
absl::Status ValidateImageGcPolicy(const ImageGcPolicy& p);

// Capacity and free bytes of the image filesystem (upstream ImageFsStats).
struct FsCapacity {
  int64_t capacity_bytes = 0;
  int64_t available_bytes = 0;
};

// One image as the GC sees it, in eviction order (ImagesInEvictionOrder).
struct ImageGcCandidate {
  std::string id;
  int64_t size = 0;
  absl::Time first_detected, last_used;
};

// Image garbage collection. Thread-safe (one mutex; CRI calls are made under it).
class ImageGcManager {
 public:
  // `images` and `runtime` are not owned and outlive the manager; `image_fs` reads the image
  // filesystem; `now` defaults to absl::Now.
  ImageGcManager(cri::ImageService* images, cri::RuntimeService* runtime, ImageGcPolicy policy,
                 std::function<absl::StatusOr<FsCapacity>()> image_fs,
                 std::function<absl::Time()> now = nullptr);

  // upstream GarbageCollect: when usage >= high threshold, frees
  // capacity * (100 - low) / 100 - available bytes of unused images. Returns the bytes freed.
  // Errors: listing fails, capacity 0, or a removal fails (the others are still tried).
  absl::StatusOr<int64_t> GarbageCollect();
  // upstream DeleteUnusedImages (eviction's reclaim): frees every unused image old enough.
  absl::StatusOr<int64_t> DeleteUnusedImages();
  // Lists images and containers, recording when each image was first seen and last in use;
  // returns the unpinned images in eviction order (least recently used, then first detected).
  absl::StatusOr<std::vector<ImageGcCandidate>> ImagesInEvictionOrder();

 private:
  struct Record {
    absl::Time first_detected, last_used;
    int64_t size = 0;
  };
  absl::StatusOr<int64_t> FreeSpace(int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<ImageGcCandidate>> Detect(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time Now() const { return now_ ? now_() : absl::Now(); }

  cri::ImageService* const images_;
  cri::RuntimeService* const runtime_;
  const ImageGcPolicy policy_;
  const std::function<absl::StatusOr<FsCapacity>()> image_fs_;
  const std::function<absl::Time()> now_;
  absl::Mutex mu_;
  std::map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);  // by image id
};

// Dead-container GC policy (--minimum-container-ttl-duration, --maximum-dead-containers-per-
// container, --maximum-dead-containers; upstream defaults 0, 1, -1 = no total limit).
struct ContainerGcPolicy {
  absl::Duration min_age = absl::ZeroDuration();
  int max_per_pod_container = 1;  // < 0: no limit
  int max_containers = -1;        // < 0: no limit
};

// What the kubelet knows of a pod, for the GC.
enum class PodGcState {
  kActive,      // running or pending: keep its newest dead containers per the policy
  kTerminated,  // terminal but not deleted: its containers may all go when evicting
  kDeleted,     // unknown to the kubelet: all its dead containers go
};

// Dead-container garbage collection (containers labelled io.kubernetes.pod.uid and
// io.kubernetes.container.name, as the kubelet creates them; others are left alone).
// Thread-safe (no state besides the dependencies).
class ContainerGc {
 public:
  ContainerGc(cri::RuntimeService* runtime, ContainerGcPolicy policy,
              std::function<PodGcState(const std::string& uid)> pod_state,
              std::function<absl::Time()> now = nullptr);

  // upstream GarbageCollect; with `evict_terminated` (DeleteAllUnusedContainers) the
  // containers of terminated pods go too. Returns the ids removed. Errors: listing fails
  // (removal failures are logged and skipped).
  absl::StatusOr<std::vector<std::string>> GarbageCollect(bool evict_terminated);

  // The ids to remove from `containers` (a pure selection, exposed for tests).
  std::vector<std::string> Select(const std::vector<cri::v1::Container>& containers,
                                  bool evict_terminated, absl::Time now) const;

 private:
  cri::RuntimeService* const runtime_;
  const ContainerGcPolicy policy_;
  const std::function<PodGcState(const std::string&)> pod_state_;
  const std::function<absl::Time()> now_;
};

// Runs image GC and container GC periodically on one thread (upstream StartGarbageCollection:
// containers every ContainerGCPeriod, 1 min; images every ImageGCPeriod, 5 min, the first run
// after one period). Errors are logged. Start/Stop from one thread.
class GcLoop {
 public:
  GcLoop(absl::Duration image_period, std::function<void()> image_gc,
         absl::Duration container_period, std::function<void()> container_gc);
  ~GcLoop();
  void Start();
  void Stop();  // idempotent

 private:
  const absl::Duration image_period_, container_period_;
  const std::function<void()> image_gc_, container_gc_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace berth::kubelet
