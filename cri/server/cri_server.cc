#include "cri/server/cri_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "cri/api/api.grpc.pb.h"
#include "cri/server/instrument.h"

namespace berth::cri::server {
namespace {

using grpc::ServerContext;
using grpc::ServerWriter;

// Items per Stream* response are capped by size so a response stays far below the
// message size limit (the reason the Stream* RPCs exist).
constexpr size_t kStreamChunkBytes = 4 * 1024 * 1024;

// Writes `items` as one or more responses made by `make` (a response taking ownership of a
// batch of items). No response when `items` is empty: each must carry at least one item.
template <typename Resp, typename Item, typename Fill>
absl::Status WriteChunked(ServerWriter<Resp>* writer,
                          google::protobuf::RepeatedPtrField<Item>* items, Fill fill) {
  Resp batch;
  size_t bytes = 0;
  auto flush = [&]() -> absl::Status {
    if (!writer->Write(batch)) {
      return absl::UnavailableError("stream closed by the client before all items were sent");
    }
    batch.Clear();
    bytes = 0;
    return absl::OkStatus();
  };
  int in_batch = 0;
  for (Item& item : *items) {
    size_t size = item.ByteSizeLong();
    if (in_batch > 0 && bytes + size > kStreamChunkBytes) {
      RETURN_IF_ERROR(flush());
      in_batch = 0;
    }
    fill(&batch)->Add(std::move(item));
    bytes += size;
    ++in_batch;
  }
  if (in_batch > 0) RETURN_IF_ERROR(flush());
  return absl::OkStatus();
}

// True when something accepts connections on the unix socket `path`.
bool SocketInUse(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool in_use = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return in_use;
}

}  // namespace

#define BERTH_CRI_SERVER_UNARY_(name, req, resp)                                           \
  grpc::Status name(ServerContext*, const v1::req* request, v1::resp* response) override { \
    return instrument_->Call(#name, *request, response,                                    \
                             [this](const v1::req& r) { return service_->name(r); });      \
  }

// runtime.v1.RuntimeService, delegating to a cri::RuntimeService.
class CriServer::RuntimeImpl final : public v1::RuntimeService::Service {
 public:
  RuntimeImpl(cri::RuntimeService* service, Instrument* instrument)
      : service_(service), instrument_(instrument) {}

  BERTH_CRI_RUNTIME_RPCS(BERTH_CRI_SERVER_UNARY_)

  grpc::Status StreamPodSandboxes(ServerContext*, const v1::StreamPodSandboxesRequest* request,
                                  ServerWriter<v1::StreamPodSandboxesResponse>* writer) override {
    return instrument_->CallStatus(
        "StreamPodSandboxes", *request,
        [&](const v1::StreamPodSandboxesRequest& r) -> absl::Status {
          v1::ListPodSandboxRequest list;
          if (r.has_filter()) *list.mutable_filter() = r.filter();
          ASSIGN_OR_RETURN(v1::ListPodSandboxResponse resp, service_->ListPodSandbox(list));
          return WriteChunked(writer, resp.mutable_items(), [](v1::StreamPodSandboxesResponse* b) {
            return b->mutable_pod_sandboxes();
          });
        });
  }

  grpc::Status StreamContainers(ServerContext*, const v1::StreamContainersRequest* request,
                                ServerWriter<v1::StreamContainersResponse>* writer) override {
    return instrument_->CallStatus(
        "StreamContainers", *request, [&](const v1::StreamContainersRequest& r) -> absl::Status {
          v1::ListContainersRequest list;
          if (r.has_filter()) *list.mutable_filter() = r.filter();
          ASSIGN_OR_RETURN(v1::ListContainersResponse resp, service_->ListContainers(list));
          return WriteChunked(
              writer, resp.mutable_containers(),
              [](v1::StreamContainersResponse* b) { return b->mutable_containers(); });
        });
  }

  grpc::Status StreamContainerStats(
      ServerContext*, const v1::StreamContainerStatsRequest* request,
      ServerWriter<v1::StreamContainerStatsResponse>* writer) override {
    return instrument_->CallStatus(
        "StreamContainerStats", *request,
        [&](const v1::StreamContainerStatsRequest& r) -> absl::Status {
          v1::ListContainerStatsRequest list;
          if (r.has_filter()) *list.mutable_filter() = r.filter();
          ASSIGN_OR_RETURN(v1::ListContainerStatsResponse resp, service_->ListContainerStats(list));
          return WriteChunked(
              writer, resp.mutable_stats(),
              [](v1::StreamContainerStatsResponse* b) { return b->mutable_container_stats(); });
        });
  }

  grpc::Status StreamPodSandboxStats(
      ServerContext*, const v1::StreamPodSandboxStatsRequest* request,
      ServerWriter<v1::StreamPodSandboxStatsResponse>* writer) override {
    return instrument_->CallStatus("StreamPodSandboxStats", *request,
                                   [&](const v1::StreamPodSandboxStatsRequest& r) -> absl::Status {
                                     v1::ListPodSandboxStatsRequest list;
                                     if (r.has_filter()) *list.mutable_filter() = r.filter();
                                     ASSIGN_OR_RETURN(v1::ListPodSandboxStatsResponse resp,
                                                      service_->ListPodSandboxStats(list));
                                     return WriteChunked(writer, resp.mutable_stats(),
                                                         [](v1::StreamPodSandboxStatsResponse* b) {
                                                           return b->mutable_pod_sandbox_stats();
                                                         });
                                   });
  }

  grpc::Status StreamPodSandboxMetrics(
      ServerContext*, const v1::StreamPodSandboxMetricsRequest* request,
      ServerWriter<v1::StreamPodSandboxMetricsResponse>* writer) override {
    return instrument_->CallStatus(
        "StreamPodSandboxMetrics", *request,
        [&](const v1::StreamPodSandboxMetricsRequest&) -> absl::Status {
          ASSIGN_OR_RETURN(v1::ListPodSandboxMetricsResponse resp,
                           service_->ListPodSandboxMetrics(v1::ListPodSandboxMetricsRequest()));
          return WriteChunked(writer, resp.mutable_pod_metrics(),
                              [](v1::StreamPodSandboxMetricsResponse* b) {
                                return b->mutable_pod_sandbox_metrics();
                              });
        });
  }

  grpc::Status GetContainerEvents(ServerContext* ctx, const v1::GetEventsRequest* request,
                                  ServerWriter<v1::ContainerEventResponse>* writer) override {
    return instrument_->CallStatus(
        "GetContainerEvents", *request, [&](const v1::GetEventsRequest& r) {
          return service_->GetContainerEvents(
              r, [writer](const v1::ContainerEventResponse& ev) { return writer->Write(ev); },
              [ctx] { return ctx->IsCancelled(); });
        });
  }

 private:
  cri::RuntimeService* const service_;
  Instrument* const instrument_;
};

// runtime.v1.ImageService, delegating to a cri::ImageService.
class CriServer::ImageImpl final : public v1::ImageService::Service {
 public:
  ImageImpl(cri::ImageService* service, Instrument* instrument)
      : service_(service), instrument_(instrument) {}

  BERTH_CRI_IMAGE_RPCS(BERTH_CRI_SERVER_UNARY_)

  grpc::Status StreamImages(ServerContext*, const v1::StreamImagesRequest* request,
                            ServerWriter<v1::StreamImagesResponse>* writer) override {
    return instrument_->CallStatus(
        "StreamImages", *request, [&](const v1::StreamImagesRequest& r) -> absl::Status {
          v1::ListImagesRequest list;
          if (r.has_filter()) *list.mutable_filter() = r.filter();
          ASSIGN_OR_RETURN(v1::ListImagesResponse resp, service_->ListImages(list));
          return WriteChunked(writer, resp.mutable_images(),
                              [](v1::StreamImagesResponse* b) { return b->mutable_images(); });
        });
  }

 private:
  cri::ImageService* const service_;
  Instrument* const instrument_;
};

#undef BERTH_CRI_SERVER_UNARY_

CriServer::CriServer(RuntimeService* runtime, ImageService* images, CriServerOptions options)
    : options_(std::move(options)),
      instrument_(std::make_unique<Instrument>(options_.registry)),
      runtime_impl_(std::make_unique<RuntimeImpl>(runtime, instrument_.get())),
      image_impl_(std::make_unique<ImageImpl>(images, instrument_.get())) {}

CriServer::~CriServer() { Shutdown(std::chrono::seconds(1)); }

absl::Status CriServer::Start() {
  const std::string& path = options_.socket_path;
  if (server_ != nullptr) {
    return absl::FailedPreconditionError("CRI server on " + path + ": already started");
  }
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError("CRI socket path \"" + path +
                                      "\": empty or longer than a unix socket path can be");
  }
  std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) {
    RETURN_IF_ERROR(Annotate(MkdirAll(parent, 0755), "CRI socket directory"));
  }
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError("CRI socket " + path +
                                           ": exists and is not a socket; not removing it");
    }
    if (SocketInUse(path)) {
      return absl::AlreadyExistsError("CRI socket " + path + ": another server is listening on it");
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "remove stale CRI socket " + path);
    }
  }

  grpc::ResourceQuota quota("berth-cri");
  quota.SetMaxThreads(options_.max_threads);
  grpc::ServerBuilder builder;
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  builder.AddListeningPort(target(), grpc::InsecureServerCredentials());
  builder.RegisterService(runtime_impl_.get());
  builder.RegisterService(image_impl_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    return absl::UnavailableError("CRI server: gRPC failed to listen on " + target());
  }
  if (chmod(path.c_str(), 0660) != 0) {
    absl::Status s = ErrnoStatus(errno, "chmod 0660 CRI socket " + path);
    Shutdown(std::chrono::milliseconds(0));
    return s;
  }
  LOG(INFO) << "CRI server listening on " << path;
  return absl::OkStatus();
}

void CriServer::Shutdown(std::chrono::milliseconds grace) {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
  if (unlink(options_.socket_path.c_str()) != 0 && errno != ENOENT) {
    LOG(WARNING) << "remove CRI socket " << options_.socket_path << ": " << std::strerror(errno);
  }
  LOG(INFO) << "CRI server on " << options_.socket_path << " stopped";
}

}  // namespace berth::cri::server
