#include "kubelet/pod_cni_config.h"

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::kubelet {

std::string DefaultCniConfig(const std::string& pod_cidr, const std::string& ipam_data_dir) {
  nlohmann::json conf = {{"cniVersion", "1.0.0"},
                         {"name", "berth"},
                         {"plugins",
                          {{{"type", "bridge"},
                            {"bridge", "cni0"},
                            {"isGateway", true},
                            {"ipMasq", false},
                            {"hairpinMode", true},
                            {"ipam",
                             {{"type", "host-local"},
                              {"ranges", {{{{"subnet", pod_cidr}}}}},
                              {"routes", {{{"dst", "0.0.0.0/0"}}}}}}},
                           {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}},
                           {{"type", "bandwidth"}, {"capabilities", {{"bandwidth", true}}}},
                           {{"type", "loopback"}}}}};
  if (!ipam_data_dir.empty()) conf["plugins"][0]["ipam"]["dataDir"] = ipam_data_dir;
  return conf.dump(2) + "\n";
}

absl::Status WriteDefaultCniConfig(const std::string& conf_dir, const std::string& pod_cidr,
                                   const std::string& ipam_data_dir) {
  RETURN_IF_ERROR(MkdirAll(conf_dir));
  ASSIGN_OR_RETURN(auto names, ListDir(conf_dir));
  for (const auto& n : names) {
    for (const char* ext : {".conflist", ".conf", ".json"}) {
      std::string e = ext;
      if (n.size() > e.size() && n.compare(n.size() - e.size(), e.size(), e) == 0) {
        return absl::OkStatus();
      }
    }
  }
  std::string path = JoinPath(conf_dir, "10-berth.conflist");
  RETURN_IF_ERROR(WriteFileAtomic(path, DefaultCniConfig(pod_cidr, ipam_data_dir)));
  LOG(INFO) << "wrote " << path << " for pod CIDR " << pod_cidr;
  return absl::OkStatus();
}

}  // namespace berth::kubelet
