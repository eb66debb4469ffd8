// ImagePuller: makes a container's image present before the container is created (upstream
// pkg/kubelet/images/image_manager.go EnsureImageExists), with the pod's pull-secret keyring,
// the container's imagePullPolicy, a per-image pull back-off and the kubelet's events.
//
// Example:
//   ImagePuller puller(images, api, {.record_event = ...});
//   ImagePullState state;  // per pod, kept by its worker
//   EnsureImageResult r = puller.EnsureImage(pod, container, sandbox_config, &state);
//   if (!r.image_ref.ok()) { waiting = {r.reason, r.image_ref.status().message()}; }
//   for (absl::Duration d : r.retry_after) EnqueueAfter(uid, d);
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/runtime_service.h"
#include "kubelet/api/pod.h"
#include "kubelet/api_client.h"
#include "kubelet/pull_secrets.h"

namespace berth::kubelet {

// The pull back-off of one pod, by image. Owned by the caller (the pod's worker); not
// thread-safe. Forgotten with the pod (upstream keys its back-off by pod and image too).
struct ImagePullState {
  struct Backoff {
    absl::Time until;         // no pull before this time
    absl::Duration duration;  // the last back-off applied
  };
  std::map<std::string, Backoff> backoff;
  // The last pull error of each image in back-off (repeated in ImagePullBackOff messages).
  std::map<std::string, std::string> last_error;
};

struct ImagePullerOptions {
  // Pull back-off: initial, doubled per failure up to max (the kubelet's image back-off is
  // 10 s to 300 s).
  absl::Duration backoff_initial = absl::Seconds(10);
  absl::Duration backoff_max = absl::Seconds(300);
  // Current time (tests inject a fake clock).
  std::function<absl::Time()> clock = absl::Now;
  // Receives the events about the pod (type "Normal"/"Warning", reason, message, and the
  // container name, "" for the pod itself). May be empty. Called on the caller's thread.
  std::function<void(const api::Pod& pod, const std::string& type, const std::string& reason,
                     const std::string& message, const std::string& container)>
      record_event;
};

// The outcome of EnsureImage.
struct EnsureImageResult {
  // The image reference to create the container with (the runtime's image ID), or the error
  // whose message is the container's waiting message.
  absl::StatusOr<std::string> image_ref = absl::UnknownError("no image");
  // On error, the container's waiting reason: ErrImageNeverPull, ErrImagePull or
  // ImagePullBackOff.
  std::string reason;
  // The pod must be synced again after these delays (half-way through a new back-off, to
  // report ImagePullBackOff, and when it ends; or when the current one ends).
  std::vector<absl::Duration> retry_after;
};

// Thread safety: EnsureImage and PullSecretsKeyring may be called from any thread; the
// ImagePullState passed in must not be shared between concurrent calls.
class ImagePuller {
 public:
  // `images` and `api` are not owned and must outlive this object.
  ImagePuller(cri::ImageService* images, ApiClient* api, ImagePullerOptions options);

  // Ensures the image of `container` is present for `pod`, as upstream EnsureImageExists:
  //  - pull policy IfNotPresent / Never: an image the runtime has (ImageStatus) is used;
  //    Never without it fails with ErrImageNeverPull;
  //  - within the image's back-off: no pull, events BackOff "Back-off pulling image" and
  //    Failed "Error: ImagePullBackOff", reason ImagePullBackOff;
  //  - else a pull (event Pulling) with each credential of the pod's imagePullSecrets that
  //    matches the image in turn (most specific first; anonymous without any) until one
  //    succeeds (event Pulled, back-off cleared); when all fail, the back-off grows and the
  //    events Failed "Failed to pull image ..." and "Error: ErrImagePull" are recorded,
  //    reason ErrImagePull.
  // `sandbox` is sent with PullImage (CRI).
  EnsureImageResult EnsureImage(const api::Pod& pod, const api::Container& container,
                                const cri::v1::PodSandboxConfig& sandbox, ImagePullState* state);

  // The credentials of the pod's spec.imagePullSecrets (GET from the API server each call).
  // A secret that cannot be read or parsed is left out, logged, and reported once per call
  // as a FailedToRetrieveImagePullSecret Warning event, as the kubelet does.
  DockerKeyring PullSecretsKeyring(const api::Pod& pod);

 private:
  void Event(const api::Pod& pod, const std::string& type, const std::string& reason,
             const std::string& message, const std::string& container);

  cri::ImageService* images_;
  ApiClient* api_;
  const ImagePullerOptions opts_;
};

}  // namespace berth::kubelet
