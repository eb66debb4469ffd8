// SandboxInfra backed by berth-pause (cri/pause).
#include "cri/pause/pause.h"
#include "cri/runtime/sandbox_infra.h"

namespace berth::cri::runtime {
namespace {
class PauseInfra : public SandboxInfra {
 public:
  explicit PauseInfra(std::string binary) : binary_(std::move(binary)) {}
  absl::StatusOr<pid_t> Start(const InfraRequest& req) override {
    pause::PauseOptions o;
    o.binary = binary_;
    o.net = req.net;
    o.ipc = req.ipc;
    o.uts = req.uts;
    o.pid = req.pid;
    o.hostname = req.hostname;
    o.uid_map = req.uid_map;
    o.gid_map = req.gid_map;
    o.cgroup_procs_files = req.cgroup_procs_files;
    auto r = pause::StartPause(o);
    if (!r.ok()) return r.status();
    return r->pid;
  }
  absl::Status BindNetns(pid_t pid, const std::string& path) override {
    return pause::BindNamespace(pid, "net", path);
  }
  absl::Status UnbindNetns(const std::string& path) override {
    return pause::UnbindNamespace(path);
  }
  absl::Status Stop(pid_t pid) override {
    return pause::StopPause(pid, std::chrono::milliseconds(500));
  }

 private:
  std::string binary_;
};
}  // namespace

std::unique_ptr<SandboxInfra> NewPauseInfra(const std::string& pause_binary) {
  return std::make_unique<PauseInfra>(pause_binary);
}

}  // namespace berth::cri::runtime
