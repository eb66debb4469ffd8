// A fake CSI node plugin for unit tests: an in-process gRPC server on a unix socket serving
// the kubelet's Registration API and the csi.v1 Node service. It records every call (method
// name and request as text proto), answers with configurable capabilities and node info, and
// fails methods on demand. NodePublishVolume creates target_path as a directory (no mount).
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "csi/api/csi.grpc.pb.h"
#include "csi/api/pluginregistration.grpc.pb.h"

namespace berth::csi::testing {

class FakeCsiDriver final : public ::csi::v1::Node::Service,
                            public pluginregistration::Registration::Service {
 public:
  struct Call {
    std::string method;
    std::string request;  // DebugString of the request
  };

  // Serves on `socket_path` (removed first). `name` is the driver name, `endpoint` what
  // GetInfo returns (empty: the registration socket itself).
  FakeCsiDriver(std::string socket_path, std::string name, std::string endpoint = "")
      : socket_(std::move(socket_path)), name_(std::move(name)), endpoint_(std::move(endpoint)) {
    ::unlink(socket_.c_str());
    grpc::ServerBuilder b;
    b.AddListeningPort("unix://" + socket_, grpc::InsecureServerCredentials());
    b.RegisterService(static_cast<::csi::v1::Node::Service*>(this));
    b.RegisterService(static_cast<pluginregistration::Registration::Service*>(this));
    server_ = b.BuildAndStart();
  }
  ~FakeCsiDriver() override {
    if (server_) server_->Shutdown();
  }
  // Stops serving and removes the socket.
  void Shutdown() {
    if (server_) server_->Shutdown();
    server_.reset();
    ::unlink(socket_.c_str());
  }

  void SetVersions(std::vector<std::string> v) {
    std::lock_guard<std::mutex> l(mu_);
    versions_ = std::move(v);
  }
  void SetCapabilities(std::vector<::csi::v1::NodeServiceCapability::RPC::Type> caps) {
    std::lock_guard<std::mutex> l(mu_);
    caps_ = std::move(caps);
  }
  void SetNodeInfo(std::string node_id, int64_t max_volumes,
                   std::map<std::string, std::string> topology) {
    std::lock_guard<std::mutex> l(mu_);
    node_id_ = std::move(node_id);
    max_volumes_ = max_volumes;
    topology_ = std::move(topology);
  }
  // Makes `method` fail with `s` (OK: succeed again).
  void Fail(const std::string& method, grpc::Status s) {
    std::lock_guard<std::mutex> l(mu_);
    errors_[method] = std::move(s);
  }

  std::vector<Call> Calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  // The method names called, in order.
  std::vector<std::string> Methods() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::string> out;
    for (const auto& c : calls_) out.push_back(c.method);
    return out;
  }
  void ClearCalls() {
    std::lock_guard<std::mutex> l(mu_);
    calls_.clear();
  }
  // Registration statuses received.
  std::vector<pluginregistration::RegistrationStatus> Notifications() {
    std::lock_guard<std::mutex> l(mu_);
    return notifications_;
  }
  bool WaitForNotification(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return notifications_.size() >= n; });
  }
  // The last request of type T received (by method name).
  template <typename T>
  T Last(const std::string& method) {
    std::lock_guard<std::mutex> l(mu_);
    T out;
    auto it = last_.find(method);
    if (it != last_.end()) out.ParseFromString(it->second);
    return out;
  }

  // Registration
  grpc::Status GetInfo(grpc::ServerContext*, const pluginregistration::InfoRequest* req,
                       pluginregistration::PluginInfo* resp) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("GetInfo", *req);
    resp->set_type("CSIPlugin");
    resp->set_name(name_);
    resp->set_endpoint(endpoint_);
    for (const auto& v : versions_) resp->add_supported_versions(v);
    return Err("GetInfo");
  }
  grpc::Status NotifyRegistrationStatus(grpc::ServerContext*,
                                        const pluginregistration::RegistrationStatus* req,
                                        pluginregistration::RegistrationStatusResponse*) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("NotifyRegistrationStatus", *req);
    notifications_.push_back(*req);
    cv_.notify_all();
    return grpc::Status::OK;
  }

  // Node
  grpc::Status NodeGetInfo(grpc::ServerContext*, const ::csi::v1::NodeGetInfoRequest* req,
                           ::csi::v1::NodeGetInfoResponse* resp) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("NodeGetInfo", *req);
    resp->set_node_id(node_id_);
    resp->set_max_volumes_per_node(max_volumes_);
    if (!topology_.empty())
      resp->mutable_accessible_topology()->mutable_segments()->insert(topology_.begin(),
                                                                      topology_.end());
    return Err("NodeGetInfo");
  }
  grpc::Status NodeGetCapabilities(grpc::ServerContext*,
                                   const ::csi::v1::NodeGetCapabilitiesRequest* req,
                                   ::csi::v1::NodeGetCapabilitiesResponse* resp) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("NodeGetCapabilities", *req);
    for (auto c : caps_) resp->add_capabilities()->mutable_rpc()->set_type(c);
    return Err("NodeGetCapabilities");
  }
  grpc::Status NodeStageVolume(grpc::ServerContext*, const ::csi::v1::NodeStageVolumeRequest* req,
                               ::csi::v1::NodeStageVolumeResponse*) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("NodeStageVolume", *req);
    return Err("NodeStageVolume");
  }
  grpc::Status NodeUnstageVolume(grpc::ServerContext*,
                                 const ::csi::v1::NodeUnstageVolumeRequest* req,
                                 ::csi::v1::NodeUnstageVolumeResponse*) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("NodeUnstageVolume", *req);
    return Err("NodeUnstageVolume");
  }
  grpc::Status NodePublishVolume(grpc::ServerContext*,
                                 const ::csi::v1::NodePublishVolumeRequest* req,
                                 ::csi::v1::NodePublishVolumeResponse*) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("NodePublishVolume", *req);
    grpc::Status s = Err("NodePublishVolume");
    if (s.ok()) ::mkdir(req->target_path().c_str(), 0750);
    return s;
  }
  grpc::Status NodeUnpublishVolume(grpc::ServerContext*,
                                   const ::csi::v1::NodeUnpublishVolumeRequest* req,
                                   ::csi::v1::NodeUnpublishVolumeResponse*) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("NodeUnpublishVolume", *req);
    grpc::Status s = Err("NodeUnpublishVolume");
    if (s.ok()) ::rmdir(req->target_path().c_str());
    return s;
  }

  // NodeGetVolumeStats answers `resp` (default: no usage).
  void SetVolumeStats(::csi::v1::NodeGetVolumeStatsResponse resp) {
    std::lock_guard<std::mutex> l(mu_);
    stats_ = std::move(resp);
  }
  grpc::Status NodeGetVolumeStats(grpc::ServerContext*,
                                  const ::csi::v1::NodeGetVolumeStatsRequest* req,
                                  ::csi::v1::NodeGetVolumeStatsResponse* resp) override {
    std::lock_guard<std::mutex> l(mu_);
    Record("NodeGetVolumeStats", *req);
    *resp = stats_;
    return Err("NodeGetVolumeStats");
  }

 private:
  void Record(const std::string& method, const google::protobuf::Message& req) {
    calls_.push_back({method, req.DebugString()});
    last_[method] = req.SerializeAsString();
  }
  grpc::Status Err(const std::string& method) {
    auto it = errors_.find(method);
    return it == errors_.end() ? grpc::Status::OK : it->second;
  }

  const std::string socket_;
  const std::string name_;
  const std::string endpoint_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> versions_ = {"1.0.0"};
  std::vector<::csi::v1::NodeServiceCapability::RPC::Type> caps_;
  std::string node_id_ = "node-1";
  int64_t max_volumes_ = 0;
  std::map<std::string, std::string> topology_;
  std::map<std::string, grpc::Status> errors_;
  ::csi::v1::NodeGetVolumeStatsResponse stats_;
  std::vector<Call> calls_;
  std::map<std::string, std::string> last_;
  std::vector<pluginregistration::RegistrationStatus> notifications_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace berth::csi::testing
