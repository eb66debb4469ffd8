#include "kubelet/lifecycle.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace berth::kubelet {

absl::Status LifecycleHandlerRunner::Run(const Json& handler, const Json& container,
                                         const std::string& container_id, const std::string& pod_ip,
                                         absl::Duration timeout) {
  if (!handler.is_object()) return absl::InvalidArgumentError("lifecycle handler is not an object");
  if (handler.contains("sleep")) {
    int64_t seconds = handler["sleep"].value("seconds", int64_t{0});
    if (seconds < 0) return absl::InvalidArgumentError(absl::StrCat("sleep.seconds ", seconds, " is negative"));
    absl::SleepFor(std::min(absl::Seconds(seconds), timeout));
    return absl::OkStatus();
  }
  if (!handler.contains("exec") && !handler.contains("httpGet")) {
    return absl::InvalidArgumentError(absl::StrCat("invalid lifecycle handler (no exec, httpGet or sleep): ",
                                                   handler.dump()));
  }
  ProbeTarget target;
  target.type = ProbeType::kLiveness;  // not read by the handlers
  target.probe = handler;
  target.container = container;
  target.pod_ip = pod_ip;
  target.container_id = container_id;
  target.timeout = timeout;
  ProbeOutcome out = runner_->Run(target);
  if (out.result == ProbeResult::kSuccess) return absl::OkStatus();
  std::string name = container.value("name", std::string());
  if (handler.contains("exec")) {
    std::vector<std::string> cmd;
    for (const auto& a : handler["exec"].value("command", Json::array())) {
      if (a.is_string()) cmd.push_back(a.get<std::string>());
    }
    return absl::UnknownError(absl::StrCat("Exec lifecycle hook ([", absl::StrJoin(cmd, " "), "]) for Container \"",
                                           name, "\" failed - error: ", out.output));
  }
  return absl::UnknownError(absl::StrCat("HTTP lifecycle hook (", handler["httpGet"].value("path", std::string("/")),
                                         ") for Container \"", name, "\" failed - error: ", out.output));
}

}  // namespace berth::kubelet
