// Restart recovery: sandbox and container records persisted in SQLite (runtime_sandboxes,
// runtime_containers), loaded by Start() and reconciled with what happened while berth was
// down (exit files written by conmon -> EXITED, a dead pause process -> sandbox NOTREADY),
// as containerd's CRI plugin recovers its store on restart.

#include "cri/runtime/runtime_records.h"  // first: before <signal.h> (runtime.h)

#include <sys/stat.h>

#include "absl/strings/escaping.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "cri/runtime/cgroups.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {
using nlohmann::json;

namespace {

std::string ToB64(const google::protobuf::Message& m) {
  std::string bin;
  m.SerializeToString(&bin);
  return absl::Base64Escape(bin);
}

bool FromB64(const std::string& s, google::protobuf::Message* m) {
  std::string bin;
  return absl::Base64Unescape(s, &bin) && m->ParseFromString(bin);
}

}  // namespace

absl::Status Runtime::SaveSandbox(const SandboxRec& sb) {
  json j = {{"name_key", sb.name_key},
            {"config", ToB64(sb.config)},
            {"state", static_cast<int>(sb.state)},
            {"created_at", sb.created_at},
            {"ip", sb.ip},
            {"additional_ips", sb.additional_ips},
            {"pause_pid", sb.pause_pid},
            {"netns_path", sb.netns_path},
            {"cgroup_path", sb.cgroup_path},
            {"runtime_handler", sb.runtime_handler},
            {"dir", sb.dir},
            {"shm_path", sb.shm_path},
            {"host_network", sb.host_network},
            {"host_ipc", sb.host_ipc},
            {"network_attached", sb.network_attached}};
  return deps_.db->Transaction([&]() -> absl::Status {
    return deps_.db->Exec("INSERT OR REPLACE INTO runtime_sandboxes (id, data) VALUES (?1, ?2)",
                          {sb.id, j.dump()});
  });
}

absl::Status Runtime::SaveContainer(const ContainerRec& c) {
  json j = {{"name_key", c.name_key},
            {"config", ToB64(c.config)},
            {"state", static_cast<int>(c.state)},
            {"created_at", c.created_at},
            {"started_at", c.started_at},
            {"finished_at", c.finished_at},
            {"exit_code", c.exit_code},
            {"reason", c.reason},
            {"message", c.message},
            {"pid", c.pid},
            {"image_name", c.image_name},
            {"image_ref", c.image_ref},
            {"image_id", c.image_id},
            {"stop_signal", c.stop_signal},
            {"log_path", c.log_path},
            {"bundle", c.bundle},
            {"rootfs", c.rootfs},
            {"cgroups_path", c.cgroups_path},
            {"runtime_handler", c.runtime_handler}};
  if (c.user_known) j["user"] = {{"uid", c.uid}, {"gid", c.gid}, {"groups", c.supplemental_groups}};
  return deps_.db->Transaction([&]() -> absl::Status {
    return deps_.db->Exec(
        "INSERT OR REPLACE INTO runtime_containers (id, sandbox_id, data) VALUES (?1, ?2, ?3)",
        {c.id, c.sandbox_id, j.dump()});
  });
}

absl::Status Runtime::Load() {
  ASSIGN_OR_RETURN(auto srows, deps_.db->Query("SELECT id, data FROM runtime_sandboxes"));
  ASSIGN_OR_RETURN(auto crows,
                   deps_.db->Query("SELECT id, sandbox_id, data FROM runtime_containers"));
  absl::MutexLock l(&mu_);
  for (const auto& r : srows) {
    json j = json::parse(store::AsString(r[1]), nullptr, false);
    if (j.is_discarded()) {
      LOG(WARNING) << "runtime: sandbox " << store::AsString(r[0])
                   << ": unreadable record, skipped";
      continue;
    }
    auto sb = std::make_shared<SandboxRec>();
    sb->id = store::AsString(r[0]);
    sb->name_key = j.value("name_key", "");
    FromB64(j.value("config", ""), &sb->config);
    sb->state = static_cast<v1::PodSandboxState>(j.value("state", 1));
    sb->created_at = j.value("created_at", int64_t{0});
    sb->ip = j.value("ip", "");
    sb->additional_ips = j.value("additional_ips", std::vector<std::string>{});
    sb->pause_pid = j.value("pause_pid", 0);
    sb->netns_path = j.value("netns_path", "");
    sb->cgroup_path = j.value("cgroup_path", "");
    sb->runtime_handler = j.value("runtime_handler", "");
    sb->dir = j.value("dir", "");
    sb->shm_path = j.value("shm_path", "");
    sb->host_network = j.value("host_network", false);
    sb->host_ipc = j.value("host_ipc", false);
    sb->network_attached = j.value("network_attached", false);
    sb->created = true;
    if (sb->state == v1::SANDBOX_READY && !ProcessAlive(sb->pause_pid)) {
      LOG(WARNING) << "runtime: sandbox " << sb->id << ": pause process " << sb->pause_pid
                   << " is gone; marking NOTREADY";
      sb->state = v1::SANDBOX_NOTREADY;
      (void)SaveSandbox(*sb);
    }
    sandbox_names_[sb->name_key] = sb->id;
    sandboxes_[sb->id] = sb;
  }
  for (const auto& r : crows) {
    json j = json::parse(store::AsString(r[2]), nullptr, false);
    if (j.is_discarded()) continue;
    auto c = std::make_shared<ContainerRec>();
    c->id = store::AsString(r[0]);
    c->sandbox_id = store::AsString(r[1]);
    c->name_key = j.value("name_key", "");
    FromB64(j.value("config", ""), &c->config);
    c->state = static_cast<v1::ContainerState>(j.value("state", 0));
    c->created_at = j.value("created_at", int64_t{0});
    c->started_at = j.value("started_at", int64_t{0});
    c->finished_at = j.value("finished_at", int64_t{0});
    c->exit_code = j.value("exit_code", 0);
    c->reason = j.value("reason", "");
    c->message = j.value("message", "");
    c->pid = j.value("pid", 0);
    c->image_name = j.value("image_name", "");
    c->image_ref = j.value("image_ref", "");
    c->image_id = j.value("image_id", "");
    c->stop_signal = j.value("stop_signal", "");
    c->log_path = j.value("log_path", "");
    c->bundle = j.value("bundle", "");
    c->rootfs = j.value("rootfs", "");
    c->cgroups_path = j.value("cgroups_path", "");
    c->runtime_handler = j.value("runtime_handler", "");
    if (j.contains("user") && j["user"].is_object()) {
      c->user_known = true;
      c->uid = j["user"].value("uid", int64_t{0});
      c->gid = j["user"].value("gid", int64_t{0});
      c->supplemental_groups = j["user"].value("groups", std::vector<int64_t>{});
    }
    c->created = true;
    container_names_[c->name_key] = c->id;
    containers_[c->id] = c;
  }
  // Reconcile containers: exits that happened while berth was down.
  auto mounts = HostCgroupMounts();
  for (auto& [id, c] : containers_) {
    if (c->state != v1::CONTAINER_RUNNING && c->state != v1::CONTAINER_CREATED) continue;
    auto code = oci::OciRuntime::ReadExitFile(ExitDir(), id);
    if (code.ok()) {
      struct stat st;
      c->finished_at = stat(JoinPath(ExitDir(), id).c_str(), &st) == 0
                           ? int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec
                           : NowNs();
      c->exit_code = *code;
      c->state = v1::CONTAINER_EXITED;
      c->reason =
          SawOomKill(mounts, c->cgroups_path) ? "OOMKilled" : (*code == 0 ? "Completed" : "Error");
    } else if (c->state == v1::CONTAINER_RUNNING && !ProcessAlive(c->pid)) {
      c->state = v1::CONTAINER_EXITED;
      c->finished_at = NowNs();
      c->exit_code = 255;
      c->reason = "Unknown";
      c->message = "container process disappeared while berth was down (no exit file)";
    } else {
      continue;
    }
    LOG(INFO) << "runtime: container " << id << " exited while berth was down (code "
              << c->exit_code << ")";
    (void)SaveContainer(*c);
  }
  return absl::OkStatus();
}

}  // namespace berth::cri::runtime
