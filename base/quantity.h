// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource.Quantity): parsing,
// scaled integer values and the canonical string form, with upstream's semantics.
//
// Example:
//   absl::StatusOr<Quantity> q = Quantity::Parse("1.5Gi");
//   int64_t bytes = q->Value();          // 1610612736
//   int64_t millis = Quantity::Parse("250m")->MilliValue();  // 250
//
// A Quantity is a plain value type: copyable, immutable, thread-compatible.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

class Quantity {
 public:
  // How the quantity was written, which decides its canonical form (upstream Format).
  enum class Format {
    kDecimalSI,        // "", n, u, m, k, M, G, T, P, E
    kBinarySI,         // Ki, Mi, Gi, Ti, Pi, Ei
    kDecimalExponent,  // e<n> / E<n>
  };

  // Zero, DecimalSI.
  Quantity() = default;

  // Parses `s` as upstream resource.ParseQuantity does: an optional sign, digits with an
  // optional fraction ("1.", ".5" are accepted), then a suffix: a decimal SI suffix, a binary
  // SI suffix or a decimal exponent ("e3", "E-2"). Values are exact down to 10^-9; a non-zero
  // value below that is rounded up (away from zero) to 1n, as upstream does. Binary SI
  // values are capped at 2^63-1. Errors: InvalidArgument naming the text ("quantities must
  // match the regular expression ..." / "unable to parse quantity's suffix") for empty input,
  // unknown suffixes and trailing garbage. Magnitudes beyond about 1.7e29 base units saturate
  // there (upstream keeps arbitrary precision; no Kubernetes resource comes near it).
  static absl::StatusOr<Quantity> Parse(absl::string_view s);

  // The quantity `value` * 10^`scale` (scale in powers of ten, e.g. -3 for milli), DecimalSI.
  static Quantity FromScaled(int64_t value, int scale);

  // This quantity rounded up (away from zero) to a multiple of 10^`scale`, keeping its
  // format (upstream RoundUp, as SetDefaults_ResourceList applies at scale -3).
  Quantity RoundedUp(int scale) const;

  // The value in units of 10^`scale` (upstream ScaledValue), rounded up away from zero
  // when not exact (1.5 at scale 0 is 2, -1.5 is -2); saturates at the int64 limits.
  int64_t ScaledValue(int scale) const;
  // ScaledValue(0): whole base units (bytes, cores), rounded up.
  int64_t Value() const { return ScaledValue(0); }
  // ScaledValue(-3): thousandths (millicores), rounded up.
  int64_t MilliValue() const { return ScaledValue(-3); }

  // The value when it is a whole number of base units that fits in int64; nullopt otherwise
  // ("1.5", 2^63). Upstream AsInt64 also fails for whole values it happens to store as a
  // big decimal or with a negative scale ("1.5Mi", "1000m"); this one does not.
  std::optional<int64_t> AsInt64() const;

  // The value as a double (upstream AsApproximateFloat64).
  double AsDouble() const;

  bool IsZero() const { return nanos_ == 0; }
  // -1, 0 or 1.
  int Sign() const { return nanos_ == 0 ? 0 : (negative_ ? -1 : 1); }
  Format format() const { return format_; }

  // Canonical text as upstream Quantity.String() prints it for a parsed value: decimal
  // values as the smallest integer mantissa with an SI suffix whose exponent is a multiple of
  // three ("1.5" -> "1500m", "1000" -> "1k"); binary values of at least 1024 whose value is
  // whole as a mantissa with the largest exact binary suffix ("1024Mi" -> "1Gi"), other
  // binary values in decimal form; exponent values as "<m>e<n>". Zero is "0".
  std::string String() const;

  // Compares values (the format is ignored).
  std::strong_ordering operator<=>(const Quantity& o) const;
  bool operator==(const Quantity& o) const { return (*this <=> o) == 0; }

 private:
  bool negative_ = false;
  unsigned __int128 nanos_ = 0;  // magnitude in units of 10^-9
  Format format_ = Format::kDecimalSI;
};

}  // namespace berth
