#include <cctype>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "cni/cni.h"

namespace berth::cni {
namespace {

constexpr char kIngress[] = "kubernetes.io/ingress-bandwidth";
constexpr char kEgress[] = "kubernetes.io/egress-bandwidth";
constexpr int64_t kNoBurst = 2147483647;  // math.MaxInt32, as dockershim/containerd

// A Kubernetes quantity ("100k", "1.5M", "10Mi", "1e6") in base units, rounded up.
absl::StatusOr<int64_t> ParseQuantity(const std::string& q) {
  size_t i = 0;
  while (i < q.size() && (std::isdigit(static_cast<unsigned char>(q[i])) || q[i] == '.')) ++i;
  if (i == 0) return absl::InvalidArgumentError(absl::StrCat("quantity \"", q, "\": no number"));
  char* end = nullptr;
  std::string num = q.substr(0, i);
  double v = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size()) {
    return absl::InvalidArgumentError(absl::StrCat("quantity \"", q, "\": bad number"));
  }
  std::string suffix = q.substr(i);
  double mult = 1;
  if (suffix.empty()) mult = 1;
  else if (suffix == "k") mult = 1e3;
  else if (suffix == "M") mult = 1e6;
  else if (suffix == "G") mult = 1e9;
  else if (suffix == "T") mult = 1e12;
  else if (suffix == "P") mult = 1e15;
  else if (suffix == "E") mult = 1e18;
  else if (suffix == "Ki") mult = 1024.0;
  else if (suffix == "Mi") mult = 1024.0 * 1024;
  else if (suffix == "Gi") mult = 1024.0 * 1024 * 1024;
  else if (suffix == "Ti") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (suffix == "Pi") mult = 1024.0 * 1024 * 1024 * 1024 * 1024;
  else if (suffix.size() > 1 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    char* e2 = nullptr;
    long exp = std::strtol(suffix.c_str() + 1, &e2, 10);
    if (*e2 != '\0') return absl::InvalidArgumentError(absl::StrCat("quantity \"", q, "\": bad exponent"));
    mult = std::pow(10.0, static_cast<double>(exp));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("quantity \"", q, "\": unknown suffix \"", suffix, "\""));
  }
  return static_cast<int64_t>(std::ceil(v * mult));
}

}  // namespace

absl::StatusOr<Bandwidth> BandwidthFromAnnotations(
    const std::vector<std::pair<std::string, std::string>>& annotations) {
  Bandwidth bw;
  for (const auto& [key, value] : annotations) {
    if (key != kIngress && key != kEgress) continue;
    auto q = ParseQuantity(value);
    if (!q.ok()) return absl::InvalidArgumentError(absl::StrCat(key, ": ", q.status().message()));
    if (*q < 1000 || *q > 1000000000000000LL) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": ", value, " is outside the allowed range [1k, 1P]"));
    }
    if (key == kIngress) {
      bw.ingress_rate = *q;
      bw.ingress_burst = kNoBurst;
    } else {
      bw.egress_rate = *q;
      bw.egress_burst = kNoBurst;
    }
  }
  return bw;
}

}  // namespace berth::cni
