// Test fakes of cri::RuntimeService / cri::ImageService for the CRI server's tests: canned
// pod sandboxes, containers and images, and injectable errors. Not for production use.
#pragma once

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cri/runtime_service.h"

namespace berth::cri::server::testing {

// Serves Version, ListPodSandbox, PodSandboxStatus and ListContainers from canned data.
// Thread-safe.
class FakeRuntimeService : public RuntimeService {
 public:
  FakeRuntimeService() {
    v1::PodSandbox pod;
    pod.set_id("4dd2f0b1c2a3fake0000000000000000000000000000000000000000000000000");
    pod.mutable_metadata()->set_name("web-0");
    pod.mutable_metadata()->set_namespace_("default");
    pod.mutable_metadata()->set_uid("uid-web-0");
    pod.set_state(v1::SANDBOX_READY);
    pod.set_created_at(1700000000000000000);
    pods.push_back(pod);
  }

  absl::StatusOr<v1::VersionResponse> Version(const v1::VersionRequest&) override {
    v1::VersionResponse r;
    r.set_version("0.1.0");
    r.set_runtime_name("fake-berth");
    r.set_runtime_version("9.8.7");
    r.set_runtime_api_version("v1");
    return r;
  }

  absl::StatusOr<v1::ListPodSandboxResponse> ListPodSandbox(
      const v1::ListPodSandboxRequest& request) override {
    absl::MutexLock lock(&mu_);
    if (!list_pod_sandbox_error.ok()) return list_pod_sandbox_error;
    last_filter_id_ = request.filter().id();
    v1::ListPodSandboxResponse r;
    for (const auto& p : pods) {
      if (request.filter().id().empty() || p.id() == request.filter().id()) *r.add_items() = p;
    }
    return r;
  }

  absl::StatusOr<v1::PodSandboxStatusResponse> PodSandboxStatus(
      const v1::PodSandboxStatusRequest& request) override {
    return absl::NotFoundError("pod sandbox \"" + request.pod_sandbox_id() + "\" not found");
  }

  std::string last_filter_id() {
    absl::MutexLock lock(&mu_);
    return last_filter_id_;
  }

  // Canned data and injected errors; set before serving.
  std::vector<v1::PodSandbox> pods;
  absl::Status list_pod_sandbox_error;

 private:
  absl::Mutex mu_;
  std::string last_filter_id_;
};

// Serves ListImages, ImageStatus and ImageFsInfo from canned images. Thread-safe (read-only data).
class FakeImageService : public ImageService {
 public:
  FakeImageService() {
    v1::Image image;
    image.set_id("sha256:1111111111111111111111111111111111111111111111111111111111111111");
    image.add_repo_tags("localhost:5000/busybox:1.36");
    image.add_repo_digests(
        "localhost:5000/busybox@sha256:2222222222222222222222222222222222222222222222222222222222222222");
    image.set_size(1234567);
    images.push_back(image);
  }

  absl::StatusOr<v1::ListImagesResponse> ListImages(const v1::ListImagesRequest&) override {
    v1::ListImagesResponse r;
    for (const auto& i : images) *r.add_images() = i;
    return r;
  }

  absl::StatusOr<v1::ImageStatusResponse> ImageStatus(const v1::ImageStatusRequest& request) override {
    v1::ImageStatusResponse r;  // CRI: a missing image is an empty response, not an error
    for (const auto& i : images) {
      for (const auto& tag : i.repo_tags()) {
        if (tag == request.image().image() || i.id() == request.image().image()) *r.mutable_image() = i;
      }
    }
    return r;
  }

  // crictl validates the image API with ImageFsInfo before any image command.
  absl::StatusOr<v1::ImageFsInfoResponse> ImageFsInfo(const v1::ImageFsInfoRequest&) override {
    v1::ImageFsInfoResponse r;
    auto* fs = r.add_image_filesystems();
    fs->set_timestamp(1700000000000000000);
    fs->mutable_fs_id()->set_mountpoint("/var/lib/berth/images");
    fs->mutable_used_bytes()->set_value(1234567);
    fs->mutable_inodes_used()->set_value(42);
    return r;
  }

  std::vector<v1::Image> images;
};

}  // namespace berth::cri::server::testing
