#include "kubelet/certificate/metrics.h"

#include <cmath>
#include <limits>

namespace berth::kubelet::certificate {

double TtlSeconds(const KeyPair* cert, absl::Time now) {
  if (cert == nullptr) return std::numeric_limits<double>::infinity();
  return std::trunc(absl::ToDoubleSeconds(cert->not_after - now));
}

void RegisterTtlGauge(metrics::Registry* registry, const std::string& name,
                      CertificateManager* manager) {
  const bool client = name.find("client") != std::string::npos;
  std::string help =
      client ? "Gauge of the TTL (time-to-live) of the Kubelet's client certificate. The value is "
               "in seconds until certificate expiry (negative if already expired). If client "
               "certificate is invalid or unused, the value will be +INF."
             : "Gauge of the shortest TTL (time-to-live) of the Kubelet's serving certificate. "
               "The value is in seconds until certificate expiry (negative if already expired). "
               "If serving certificate is invalid or unused, the value will be +INF.";
  registry->AddCollector([name, help, manager](std::vector<metrics::FamilySnapshot>* out) {
    metrics::FamilySnapshot f;
    f.name = name;
    f.help = help;
    f.type = metrics::MetricType::kGauge;
    std::shared_ptr<const KeyPair> c = manager->Current();
    f.samples.push_back({"", {}, TtlSeconds(c.get(), absl::Now())});
    out->push_back(std::move(f));
  });
}

}  // namespace berth::kubelet::certificate
