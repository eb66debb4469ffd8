// Small fakes of the runtime's dependencies for tests: an ImageResolver serving fixed
// images and a NetworkPlugin that records calls without touching the network.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cni/cni.h"
#include "cri/image/resolver.h"

namespace berth::cri::runtime::testing {

// Resolves references registered with Add(); NotFound otherwise. Thread-safe.
class FakeImageResolver : public image::ImageResolver {
 public:
  void Add(const std::string& ref, image::ResolvedImage img) {
    absl::MutexLock l(&mu_);
    images_[ref] = std::move(img);
  }
  absl::StatusOr<image::ResolvedImage> Resolve(const std::string& ref) override {
    absl::MutexLock l(&mu_);
    auto it = images_.find(ref);
    if (it == images_.end())
      return absl::NotFoundError("image \"" + ref + "\" not found (fake resolver)");
    return it->second;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, image::ResolvedImage> images_;
};

// A NetworkPlugin that attaches nothing: ADD returns `ip`, DEL/CHECK succeed. Counts calls.
class FakeNetworkPlugin : public cni::NetworkPlugin {
 public:
  absl::Status Ready() override { return ready; }
  absl::StatusOr<cni::AttachResult> Add(const cni::AttachRequest& req) override {
    absl::MutexLock l(&mu_);
    adds.push_back(req.container_id);
    last_add = req;
    if (!add_error.ok()) return add_error;
    cni::AttachResult r;
    r.ips = ips;
    return r;
  }
  absl::Status Del(const cni::AttachRequest& req) override {
    absl::MutexLock l(&mu_);
    dels.push_back(req.container_id);
    return absl::OkStatus();
  }
  absl::Status Check(const cni::AttachRequest&) override { return absl::OkStatus(); }

  absl::Status ready = absl::OkStatus();
  absl::Status add_error = absl::OkStatus();
  std::vector<std::string> ips = {"10.88.0.2", "fd00::2"};
  std::vector<std::string> adds, dels;
  cni::AttachRequest last_add;  // the request of the latest Add

 private:
  absl::Mutex mu_;
};

}  // namespace berth::cri::runtime::testing
