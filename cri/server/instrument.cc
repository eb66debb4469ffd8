#include "cri/server/instrument.h"

#include <google/protobuf/descriptor.h>

#include "base/log.h"

namespace berth::cri::server {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Buckets for CRI latency: 1 ms .. ~33 s (doubling), covering a fast List and a slow pull.
std::vector<double> CriBuckets() { return metrics::ExponentialBuckets(0.001, 2, 16); }

// The string field `name` of `m`, or "" when absent or not a string.
std::string StringField(const Message& m, const char* name) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->is_repeated() || f->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
    return "";
  }
  return m.GetReflection()->GetString(m, f);
}

// The singular message field `name` of `m` when set, else nullptr.
const Message* MessageField(const Message& m, const char* name) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->is_repeated() || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    return nullptr;
  }
  const Reflection* r = m.GetReflection();
  if (!r->HasField(m, f)) return nullptr;
  return &r->GetMessage(m, f);
}

void Append(std::string* out, const std::string& key, const std::string& value) {
  if (value.empty()) return;
  if (!out->empty()) out->push_back(' ');
  out->append(key).push_back('=');
  out->append(value);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

const char* GrpcCodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "OK";
    case absl::StatusCode::kCancelled:
      return "Canceled";
    case absl::StatusCode::kUnknown:
      return "Unknown";
    case absl::StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case absl::StatusCode::kDeadlineExceeded:
      return "DeadlineExceeded";
    case absl::StatusCode::kNotFound:
      return "NotFound";
    case absl::StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case absl::StatusCode::kPermissionDenied:
      return "PermissionDenied";
    case absl::StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    case absl::StatusCode::kFailedPrecondition:
      return "FailedPrecondition";
    case absl::StatusCode::kAborted:
      return "Aborted";
    case absl::StatusCode::kOutOfRange:
      return "OutOfRange";
    case absl::StatusCode::kUnimplemented:
      return "Unimplemented";
    case absl::StatusCode::kInternal:
      return "Internal";
    case absl::StatusCode::kUnavailable:
      return "Unavailable";
    case absl::StatusCode::kDataLoss:
      return "DataLoss";
    case absl::StatusCode::kUnauthenticated:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

std::string KeyIds(const Message& request) {
  std::string out;
  const auto* d = request.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string& name = f->name();
    if (!f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_STRING && name.size() > 3 &&
        name.compare(name.size() - 3, 3, "_id") == 0) {
      Append(&out, name, request.GetReflection()->GetString(request, f));
    }
  }
  if (const Message* image = MessageField(request, "image")) {
    Append(&out, "image", StringField(*image, "image"));
  }
  if (const Message* config = MessageField(request, "config")) {
    if (const Message* metadata = MessageField(*config, "metadata")) {
      Append(&out, "namespace", StringField(*metadata, "namespace"));
      Append(&out, "name", StringField(*metadata, "name"));
    }
  }
  return out;
}

Instrument::Instrument(metrics::Registry* registry) {
  if (registry == nullptr) return;
  duration_ = registry->AddHistogram("berth_cri_request_duration_seconds",
                                     "Latency of CRI gRPC requests by method, in seconds.",
                                     {"method"}, CriBuckets());
  requests_ =
      registry->AddCounter("berth_cri_requests_total",
                           "CRI gRPC requests by method and gRPC status code.", {"method", "code"});
}

void Instrument::Begin(const char* method, const Message& request) {
  if (!LogEnabled(LogLevel::kDebug)) return;
  std::string ids = KeyIds(request);
  LOG(DEBUG) << "CRI " << method << (ids.empty() ? "" : " ") << ids;
}

void Instrument::End(const char* method, const Message& request, const absl::Status& status,
                     std::chrono::steady_clock::time_point start) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (duration_ != nullptr) {
    duration_->WithLabelValues({method})->Observe(seconds);
    requests_->WithLabelValues({method, GrpcCodeName(status.code())})->Inc();
  }
  if (status.ok()) {
    LOG(DEBUG) << "CRI " << method << " ok in " << seconds << "s";
  } else {
    std::string ids = KeyIds(request);
    LOG(WARNING) << "CRI " << method << (ids.empty() ? "" : " ") << ids << " failed ("
                 << GrpcCodeName(status.code()) << "): " << status.message();
  }
}

}  // namespace berth::cri::server
