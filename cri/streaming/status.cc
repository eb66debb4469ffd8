#include "cri/streaming/status.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace berth::cri::streaming {

std::string ExitStatusJson(int exit_code) {
  nlohmann::ordered_json j;
  j["metadata"] = nlohmann::json::object();
  if (exit_code == 0) {
    j["status"] = "Success";
    return j.dump();
  }
  j["status"] = "Failure";
  j["message"] =
      absl::StrCat("command terminated with non-zero exit code: exit status ", exit_code);
  j["reason"] = "NonZeroExitCode";
  j["details"]["causes"] =
      nlohmann::json::array({{{"reason", "ExitCode"}, {"message", std::to_string(exit_code)}}});
  return j.dump();
}

std::string InternalErrorStatusJson(const std::string& message) {
  nlohmann::ordered_json j;
  j["metadata"] = nlohmann::json::object();
  j["status"] = "Failure";
  j["message"] = absl::StrCat("error executing command in container: ", message);
  j["reason"] = "InternalError";
  j["details"]["causes"] = nlohmann::json::array({{{"message", message}}});
  j["code"] = 500;
  return j.dump();
}

std::string LegacyStatusText(const std::string& status_json) {
  nlohmann::json j = nlohmann::json::parse(status_json, nullptr, false);
  if (!j.is_object() || j.value("status", std::string()) == "Success") return "";
  return j.value("message", std::string("unknown error"));
}

}  // namespace berth::cri::streaming
