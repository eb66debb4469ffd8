// The kubelet's service environment variables ("service links"): every container of a pod gets,
// for the master service "kubernetes" of namespace "default" and, unless the pod sets
// enableServiceLinks: false, every service of its own namespace that has a cluster IP:
//   <NAME>_SERVICE_HOST=<cluster IP>, <NAME>_SERVICE_PORT=<first port>,
//   <NAME>_SERVICE_PORT_<PORT NAME>=<port> (named ports), and the Docker link variables
//   <NAME>_PORT=tcp://<ip>:<first port>, <NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR].
// <NAME> is the service name upper-cased with '-' turned into '_' (upstream
// pkg/kubelet/envvars FromServices, kubelet getServiceEnvVarMap). In-cluster clients
// (client-go's rest.InClusterConfig) need KUBERNETES_SERVICE_HOST/PORT.
//
// The services come from a local view kept by a ListWatch of /api/v1/services (as the
// kubelet's service informer); until its first list the variables cannot be made and
// containers wait (the kubelet's "services have not yet been read at least once").
//
// Example (main):
//   ServiceEnv services;
//   ListWatch lw(api, {.path = "/api/v1/services"}, services.Handlers());
//   popts.service_env = &services;
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kubelet/api_client.h"
#include "kubelet/list_watch.h"

namespace berth::kubelet {

// The variables of one v1.Service, in upstream order; empty when it has no cluster IP (""
// or "None": headless) or no ports. Pure.
std::vector<std::pair<std::string, std::string>> ServiceEnvVars(const Json& service);

// A thread-safe view of the cluster's services, fed by a ListWatch.
class ServiceEnv {
 public:
  // Handlers for a ListWatch of /api/v1/services that keep this view current. The ServiceEnv
  // must outlive the ListWatch.
  ListWatchHandlers Handlers();

  // Adds or replaces `service` (a v1.Service); Remove drops it; MarkSynced records that the
  // first full list was delivered.
  void Upsert(const Json& service);
  void Remove(const Json& service);
  void MarkSynced();

  // The variables for a container of a pod in namespace `ns` (kubelet getServiceEnvVarMap).
  // Errors: Unavailable before the first list was delivered.
  absl::StatusOr<std::map<std::string, std::string>> For(const std::string& ns,
                                                         bool enable_service_links) const;

 private:
  mutable absl::Mutex mu_;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  // namespace -> name -> the service's variables (only services with some).
  std::map<std::string, std::map<std::string, std::vector<std::pair<std::string, std::string>>>>
      vars_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::kubelet
