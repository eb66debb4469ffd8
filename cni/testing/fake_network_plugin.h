// FakeNetworkPlugin: an in-memory cni::NetworkPlugin for unit tests of the runtime (pod
// sandbox setup/teardown) with injectable errors. Header-only; thread-safe.
//
// Example:
//   cni::testing::FakeNetworkPlugin net;
//   net.SetAddError(absl::InternalError("CNI ADD plugin bridge for sandbox x: boom"));
//   ... RunPodSandbox fails with that message; net.attached() is empty.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cni/cni.h"

namespace berth::cni::testing {

class FakeNetworkPlugin : public NetworkPlugin {
 public:
  // Ready() returns `s` from now on (OK by default).
  void SetReady(absl::Status s) {
    absl::MutexLock l(&mu_);
    ready_ = std::move(s);
  }
  // The next Add()/Del()/Check() calls fail with `s` (until reset with OkStatus()).
  void SetAddError(absl::Status s) {
    absl::MutexLock l(&mu_);
    add_error_ = std::move(s);
  }
  void SetDelError(absl::Status s) {
    absl::MutexLock l(&mu_);
    del_error_ = std::move(s);
  }
  void SetCheckError(absl::Status s) {
    absl::MutexLock l(&mu_);
    check_error_ = std::move(s);
  }

  absl::Status Ready() override {
    absl::MutexLock l(&mu_);
    return ready_;
  }
  // Assigns 10.88.0.<n>/16 (n = 2, 3, ...) and records the attachment by container_id.
  absl::StatusOr<AttachResult> Add(const AttachRequest& req) override {
    absl::MutexLock l(&mu_);
    calls_.push_back("ADD " + req.container_id);
    if (!add_error_.ok()) return add_error_;
    AttachResult r;
    r.ips = {absl::StrCat("10.88.0.", next_host_++)};
    r.raw_json =
        absl::StrCat(R"({"cniVersion":"1.0.0","ips":[{"address":")", r.ips[0], R"(/16"}]})");
    attached_[req.container_id] = req;
    return r;
  }
  // Forgets the attachment; OK when there is none (DEL is idempotent).
  absl::Status Del(const AttachRequest& req) override {
    absl::MutexLock l(&mu_);
    calls_.push_back("DEL " + req.container_id);
    if (!del_error_.ok()) return del_error_;
    attached_.erase(req.container_id);
    return absl::OkStatus();
  }
  // NotFound when the sandbox is not attached.
  absl::Status Check(const AttachRequest& req) override {
    absl::MutexLock l(&mu_);
    calls_.push_back("CHECK " + req.container_id);
    if (!check_error_.ok()) return check_error_;
    if (!attached_.count(req.container_id)) {
      return absl::NotFoundError(absl::StrCat("sandbox ", req.container_id, " not attached"));
    }
    return absl::OkStatus();
  }

  // Current attachments by container_id.
  std::map<std::string, AttachRequest> attached() {
    absl::MutexLock l(&mu_);
    return attached_;
  }
  // Every call as "ADD <id>", "DEL <id>", "CHECK <id>", in order.
  std::vector<std::string> calls() {
    absl::MutexLock l(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  absl::Status ready_ ABSL_GUARDED_BY(mu_);
  absl::Status add_error_ ABSL_GUARDED_BY(mu_);
  absl::Status del_error_ ABSL_GUARDED_BY(mu_);
  absl::Status check_error_ ABSL_GUARDED_BY(mu_);
  int next_host_ ABSL_GUARDED_BY(mu_) = 2;
  std::map<std::string, AttachRequest> attached_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::cni::testing
