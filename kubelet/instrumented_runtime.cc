#include "kubelet/instrumented_runtime.h"

#include <cctype>
#include <chrono>
#include <map>

#include "absl/strings/str_replace.h"

namespace berth::kubelet {

std::string RuntimeOperationName(const std::string& method) {
  // Where upstream's names do not follow from the method name.
  static const auto* kSpecial = new std::map<std::string, std::string>{
      {"UpdateContainerResources", "update_container"},
  };
  if (auto it = kSpecial->find(method); it != kSpecial->end()) return it->second;
  std::string name = absl::StrReplaceAll(method, {{"PodSandbox", "Podsandbox"}});
  std::string out;
  for (char ch : name) {
    if (std::isupper(static_cast<unsigned char>(ch))) {
      if (!out.empty()) out.push_back('_');
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

void RecordRuntimeOperation(const metrics::KubeletMetrics* km, const std::string& operation,
                            double seconds, bool failed) {
  if (km == nullptr) return;
  if (km->runtime_operations) km->runtime_operations->WithLabelValues({operation})->Inc();
  if (km->runtime_operations_duration) {
    km->runtime_operations_duration->WithLabelValues({operation})->Observe(seconds);
  }
  if (failed && km->runtime_operations_errors) {
    km->runtime_operations_errors->WithLabelValues({operation})->Inc();
  }
}

namespace {
// Runs `fn`, records it as `method`'s operation, returns its result.
template <typename Fn>
auto Record(const metrics::KubeletMetrics* km, const char* method, Fn&& fn) {
  static thread_local std::map<const char*, std::string> names;  // method -> operation
  auto start = std::chrono::steady_clock::now();
  auto result = fn();
  if (km != nullptr) {
    auto it = names.find(method);
    if (it == names.end()) it = names.emplace(method, RuntimeOperationName(method)).first;
    RecordRuntimeOperation(km, it->second, metrics::SecondsSince(start), !result.ok());
  }
  return result;
}
}  // namespace

InstrumentedRuntimeService::InstrumentedRuntimeService(cri::RuntimeService* inner,
                                                       const metrics::KubeletMetrics* km)
    : inner_(inner), km_(km) {}

InstrumentedImageService::InstrumentedImageService(cri::ImageService* inner,
                                                   const metrics::KubeletMetrics* km)
    : inner_(inner), km_(km) {}

#define BERTH_INSTRUMENTED_DEFINE_(cls, name, req, resp)                 \
  absl::StatusOr<cri::v1::resp> cls::name(const cri::v1::req& request) { \
    return Record(km_, #name, [&] { return inner_->name(request); });    \
  }
#define BERTH_INSTRUMENTED_RUNTIME_(name, req, resp) \
  BERTH_INSTRUMENTED_DEFINE_(InstrumentedRuntimeService, name, req, resp)
#define BERTH_INSTRUMENTED_IMAGE_(name, req, resp) \
  BERTH_INSTRUMENTED_DEFINE_(InstrumentedImageService, name, req, resp)
BERTH_CRI_RUNTIME_RPCS(BERTH_INSTRUMENTED_RUNTIME_)
BERTH_CRI_IMAGE_RPCS(BERTH_INSTRUMENTED_IMAGE_)
#undef BERTH_INSTRUMENTED_RUNTIME_
#undef BERTH_INSTRUMENTED_IMAGE_
#undef BERTH_INSTRUMENTED_DEFINE_

absl::Status InstrumentedRuntimeService::GetContainerEvents(
    const cri::v1::GetEventsRequest& request,
    const std::function<bool(const cri::v1::ContainerEventResponse&)>& send,
    const std::function<bool()>& cancelled) {
  return Record(km_, "GetContainerEvents",
                [&] { return inner_->GetContainerEvents(request, send, cancelled); });
}

}  // namespace berth::kubelet
