#include "kubelet/lifecycle.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace berth::kubelet {

absl::Status LifecycleHandlerRunner::Run(const api::Container& container, LifecycleHook hook,
                                         const std::string& container_id, const std::string& pod_ip,
                                         absl::Duration timeout) {
  const char* field = hook == LifecycleHook::kPostStart ? "postStart" : "preStop";
  const std::optional<api::LifecycleHandler>* handler = nullptr;
  if (container.lifecycle) {
    handler = hook == LifecycleHook::kPostStart ? &container.lifecycle->post_start
                                                : &container.lifecycle->pre_stop;
  }
  if (handler == nullptr || !handler->has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("container \"", container.name, "\" has no ", field, " hook"));
  }
  const api::LifecycleHandler& h = **handler;
  if (h.sleep) {
    if (h.sleep->seconds < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("sleep.seconds ", h.sleep->seconds, " is negative"));
    }
    absl::SleepFor(std::min(absl::Seconds(h.sleep->seconds), timeout));
    return absl::OkStatus();
  }
  if (!h.exec && !h.http_get) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid lifecycle handler (no exec, httpGet or sleep): ",
        container.raw.value("lifecycle", Json::object()).value(field, Json::object()).dump()));
  }
  ProbeTarget target;
  target.type = ProbeType::kLiveness;  // not read by the handlers
  // The handler as the probe handlers read it: the object as sent.
  target.probe = container.raw.value("lifecycle", Json::object()).value(field, Json::object());
  target.container = container.raw;
  target.pod_ip = pod_ip;
  target.container_id = container_id;
  target.timeout = timeout;
  ProbeOutcome out = runner_->Run(target);
  if (out.result == ProbeResult::kSuccess) return absl::OkStatus();
  if (h.exec) {
    return absl::UnknownError(
        absl::StrCat("Exec lifecycle hook ([", absl::StrJoin(h.exec->command, " "),
                     "]) for Container \"", container.name, "\" failed - error: ", out.output));
  }
  return absl::UnknownError(absl::StrCat("HTTP lifecycle hook (", h.http_get->path,
                                         ") for Container \"", container.name,
                                         "\" failed - error: ", out.output));
}

}  // namespace berth::kubelet
