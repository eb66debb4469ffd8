#include "absl/strings/str_cat.h"
#include "base/quantity.h"
#include "cni/cni.h"

namespace berth::cni {
namespace {

constexpr char kIngress[] = "kubernetes.io/ingress-bandwidth";
constexpr char kEgress[] = "kubernetes.io/egress-bandwidth";
constexpr int64_t kNoBurst = 2147483647;  // math.MaxInt32, as dockershim/containerd

}  // namespace

absl::StatusOr<Bandwidth> BandwidthFromAnnotations(
    const std::vector<std::pair<std::string, std::string>>& annotations) {
  Bandwidth bw;
  for (const auto& [key, value] : annotations) {
    if (key != kIngress && key != kEgress) continue;
    absl::StatusOr<Quantity> parsed = Quantity::Parse(value);
    if (!parsed.ok())
      return absl::InvalidArgumentError(absl::StrCat(key, ": ", parsed.status().message()));
    // Upstream bandwidth.ExtractPodBandwidthResources: Value(), i.e. rounded up to whole bits.
    const int64_t q = parsed->Value();
    if (q < 1000 || q > 1000000000000000LL) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": ", value, " is outside the allowed range [1k, 1P]"));
    }
    if (key == kIngress) {
      bw.ingress_rate = q;
      bw.ingress_burst = kNoBurst;
    } else {
      bw.egress_rate = q;
      bw.egress_burst = kNoBurst;
    }
  }
  return bw;
}

}  // namespace berth::cni
