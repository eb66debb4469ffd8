// SandboxInfra used when berth is built without cri/pause.
#include "cri/runtime/sandbox_infra.h"

namespace berth::cri::runtime {
namespace {
class StubInfra : public SandboxInfra {
 public:
  absl::StatusOr<pid_t> Start(const InfraRequest&) override {
    return absl::UnimplementedError(
        "berth was built without cri/pause: cannot start a pod sandbox");
  }
  absl::Status BindNetns(pid_t, const std::string&) override {
    return absl::UnimplementedError("berth was built without cri/pause");
  }
  absl::Status UnbindNetns(const std::string&) override { return absl::OkStatus(); }
  absl::Status Stop(pid_t pid) override { return KillAndWait(pid); }
};
}  // namespace

std::unique_ptr<SandboxInfra> NewPauseInfra(const std::string&) {
  return std::make_unique<StubInfra>();
}

}  // namespace berth::cri::runtime
