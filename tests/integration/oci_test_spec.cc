#include "tests/integration/oci_test_spec.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/process.h"
#include "base/status.h"

namespace berth::testing {

absl::Status MakeBusyboxRootfs(const std::string& dir) {
  std::string bin = JoinPath(dir, "bin");
  RETURN_IF_ERROR(MkdirAll(bin));
  for (const char* d : {"proc", "dev", "sys", "tmp"}) RETURN_IF_ERROR(MkdirAll(JoinPath(dir, d)));
  std::string busybox = JoinPath(bin, "busybox");
  if (!PathExists(busybox)) RETURN_IF_ERROR(RunOk({"cp", "/bin/busybox", busybox}).status());
  for (const char* name : {"sh", "echo", "sleep", "cat", "true", "ls", "ps"}) {
    std::string path = JoinPath(bin, name);
    if (link(busybox.c_str(), path.c_str()) != 0 && errno != EEXIST)
      return ErrnoStatus(errno, absl::StrCat("link ", path));
  }
  return absl::OkStatus();
}

nlohmann::json MinimalSpec(const TestSpecOptions& o) {
  using nlohmann::json;
  json caps = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  json network = {{"type", "network"}};
  if (!o.netns_path.empty()) network["path"] = o.netns_path;
  json spec = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", o.args},
        {"env", {"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", o.rootfs}, {"readonly", false}}},
      {"hostname", o.hostname},
      {"mounts",
       json::array({
           {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
           {{"destination", "/dev"},
            {"type", "tmpfs"},
            {"source", "tmpfs"},
            {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
           {{"destination", "/dev/pts"},
            {"type", "devpts"},
            {"source", "devpts"},
            {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
           {{"destination", "/dev/shm"},
            {"type", "tmpfs"},
            {"source", "shm"},
            {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
           {{"destination", "/sys"},
            {"type", "sysfs"},
            {"source", "sysfs"},
            {"options", {"nosuid", "noexec", "nodev", "ro"}}},
       })},
      {"linux",
       {{"namespaces", json::array({{{"type", "pid"}},
                                    {{"type", "mount"}},
                                    {{"type", "ipc"}},
                                    {{"type", "uts"}},
                                    network})},
        {"maskedPaths", {"/proc/kcore", "/proc/keys", "/sys/firmware"}},
        {"readonlyPaths", {"/proc/sys", "/proc/sysrq-trigger"}}}},
  };
  if (!o.cgroups_path.empty()) spec["linux"]["cgroupsPath"] = o.cgroups_path;
  return spec;
}

absl::Status WriteBundle(const std::string& bundle, const nlohmann::json& spec) {
  RETURN_IF_ERROR(MkdirAll(bundle));
  return WriteFileAtomic(JoinPath(bundle, "config.json"), spec.dump(2));
}

}  // namespace berth::testing
