#include "kubelet/lease.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "kubelet/node_status.h"

namespace berth::kubelet {

LeaseController::LeaseController(ApiClient* client, LeaseOptions options)
    : client_(client), options_(std::move(options)) {}

LeaseController::~LeaseController() { Stop(); }

std::string LeaseController::LeasePath() const {
  return absl::StrCat("/apis/coordination.k8s.io/v1/namespaces/", options_.lease_namespace,
                      "/leases/", options_.node_name);
}

Json LeaseController::NewLease(std::chrono::system_clock::time_point now,
                               const std::string& uid) const {
  Json lease = {
      {"apiVersion", "coordination.k8s.io/v1"},
      {"kind", "Lease"},
      {"metadata", {{"name", options_.node_name}, {"namespace", options_.lease_namespace}}},
      {"spec",
       {{"holderIdentity", options_.node_name},
        {"leaseDurationSeconds", options_.lease_duration_seconds},
        {"renewTime", FormatMicroTime(now)}}},
  };
  return lease;
}

namespace {

bool HasOwner(const Json& lease) {
  const Json& md = lease["metadata"];
  return md.contains("ownerReferences") && md["ownerReferences"].is_array() &&
         !md["ownerReferences"].empty();
}

Json OwnerRef(const std::string& node, const std::string& uid) {
  return Json::array({{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}, {"uid", uid}}});
}

}  // namespace

absl::Status LeaseController::RenewOnce() {
  auto now = std::chrono::system_clock::now();
  std::string uid = options_.node_uid ? options_.node_uid() : "";
  if (!latest_) {
    auto got = client_->Get(LeasePath());
    if (absl::IsNotFound(got.status())) {
      Json lease = NewLease(now, uid);
      if (!uid.empty()) lease["metadata"]["ownerReferences"] = OwnerRef(options_.node_name, uid);
      lease["spec"]["acquireTime"] = FormatMicroTime(now);
      auto created = client_->Post(absl::StrCat("/apis/coordination.k8s.io/v1/namespaces/",
                                                options_.lease_namespace, "/leases"),
                                   lease);
      if (!created.ok()) return Annotate(created.status(), "create node lease");
      latest_ = *created;
      renewals_++;
      return absl::OkStatus();
    }
    if (!got.ok()) return Annotate(got.status(), "get node lease");
    latest_ = *got;
  }
  Json lease = *latest_;
  lease["spec"]["holderIdentity"] = options_.node_name;
  lease["spec"]["leaseDurationSeconds"] = options_.lease_duration_seconds;
  lease["spec"]["renewTime"] = FormatMicroTime(now);
  if (!uid.empty() && !HasOwner(lease)) {
    lease["metadata"]["ownerReferences"] = OwnerRef(options_.node_name, uid);
  }
  auto updated = client_->Put(LeasePath(), lease);
  if (!updated.ok()) {
    latest_.reset();  // conflict or deletion: re-read next time
    return Annotate(updated.status(), "renew node lease");
  }
  latest_ = *updated;
  renewals_++;
  return absl::OkStatus();
}

void LeaseController::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LeaseController::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseController::Run() {
  auto retry = options_.retry_period;
  while (!stop_) {
    absl::Status s = RenewOnce();
    std::chrono::milliseconds wait = options_.renew_period;
    if (s.ok()) {
      retry = options_.retry_period;
    } else {
      LOG(WARNING) << "node lease " << options_.node_name << ": " << s;
      wait = std::min(retry, options_.renew_period);
      retry = std::min(retry * 2, std::chrono::milliseconds(7000));
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, wait, [this] { return stop_.load(); })) return;
  }
}

}  // namespace berth::kubelet
