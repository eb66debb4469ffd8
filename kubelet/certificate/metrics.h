// The certificate managers' Prometheus gauges, as the kubelet exports them.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "kubelet/certificate/manager.h"
#include "metrics/registry.h"

namespace berth::kubelet::certificate {

// Seconds until the certificate expires, truncated (negative once expired); +Inf without one
// (upstream's GaugeFunc over Current().Leaf.NotAfter).
double TtlSeconds(const KeyPair* cert, absl::Time now);

// Adds gauge `name` (kubelet_certificate_manager_client_ttl_seconds or ..._server_ttl_seconds)
// to `registry`, read from `manager` at every scrape. `manager` must outlive the registry's
// scrapes (main stops the metrics server before destroying it).
void RegisterTtlGauge(metrics::Registry* registry, const std::string& name,
                      CertificateManager* manager);

}  // namespace berth::kubelet::certificate
