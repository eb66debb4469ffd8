#include "base/quantity.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace berth {
namespace {

using u128 = unsigned __int128;

// 2^127 - 1: the largest magnitude kept, so that negation and comparisons stay simple.
constexpr u128 kMaxNanos = (static_cast<u128>(1) << 127) - 1;
constexpr u128 kNanosPerUnit = 1000000000;

constexpr char kErrFormat[] =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr char kErrSuffix[] = "unable to parse quantity's suffix";

absl::Status QuantityError(absl::string_view s, const char* why) {
  return absl::InvalidArgumentError(absl::StrCat("quantity \"", s, "\": ", why));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// a * 10 with saturation at kMaxNanos.
u128 Times10(u128 a) { return a > kMaxNanos / 10 ? kMaxNanos : a * 10; }

// The decimal digit string `d` times 2^exp (exp <= 60), as a decimal digit string.
std::string TimesPowerOfTwo(std::string d, int exp) {
  for (int i = 0; i < exp; ++i) {
    int carry = 0;
    for (size_t j = d.size(); j-- > 0;) {
      int v = (d[j] - '0') * 2 + carry;
      d[j] = static_cast<char>('0' + v % 10);
      carry = v / 10;
    }
    if (carry) d.insert(d.begin(), static_cast<char>('0' + carry));
  }
  return d;
}

// ceil(D * 10^e10) for the decimal digit string D (no sign), saturating at kMaxNanos.
u128 ScaleDigitsUp(const std::string& d, int64_t e10) {
  size_t int_len = d.size();
  bool fraction = false;
  if (e10 < 0) {
    uint64_t k = static_cast<uint64_t>(-e10);
    if (k >= d.size()) {
      int_len = 0;
    } else {
      int_len = d.size() - static_cast<size_t>(k);
    }
    fraction = std::any_of(d.begin() + static_cast<std::ptrdiff_t>(int_len), d.end(),
                           [](char c) { return c != '0'; });
  }
  u128 v = 0;
  for (size_t i = 0; i < int_len; ++i) {
    v = Times10(v);
    u128 digit = static_cast<u128>(d[i] - '0');
    v = v > kMaxNanos - digit ? kMaxNanos : v + digit;
  }
  for (int64_t i = 0; i < e10 && v != 0 && v != kMaxNanos; ++i) v = Times10(v);
  if (fraction && v != kMaxNanos) ++v;
  return v;
}

std::string U128ToString(u128 v) {
  if (v == 0) return "0";
  std::string out;
  while (v > 0) {
    out.push_back(static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

const char* DecimalSuffix(int exp) {
  switch (exp) {
    case -9:
      return "n";
    case -6:
      return "u";
    case -3:
      return "m";
    case 0:
      return "";
    case 3:
      return "k";
    case 6:
      return "M";
    case 9:
      return "G";
    case 12:
      return "T";
    case 15:
      return "P";
    case 18:
      return "E";
    default:
      return nullptr;
  }
}

}  // namespace

absl::StatusOr<Quantity> Quantity::Parse(absl::string_view s) {
  if (s.empty()) return QuantityError(s, kErrFormat);
  Quantity q;
  size_t pos = 0;
  const size_t end = s.size();
  if (s[0] == '-') {
    q.negative_ = true;
    ++pos;
  } else if (s[0] == '+') {
    ++pos;
  }
  while (pos < end && s[pos] == '0') ++pos;
  if (pos == end) return Quantity();  // all zeros (or a bare sign), as upstream
  size_t num_start = pos;
  while (pos < end && IsDigit(s[pos])) ++pos;
  std::string digits(s.substr(num_start, pos - num_start));
  size_t denom_len = 0;
  if (pos < end && s[pos] == '.') {
    ++pos;
    size_t denom_start = pos;
    while (pos < end && IsDigit(s[pos])) ++pos;
    denom_len = pos - denom_start;
    absl::StrAppend(&digits, s.substr(denom_start, denom_len));
  }
  // The suffix: letters of "eEinumkKMGTP", then an optional sign and digits up to the end.
  size_t suffix_start = pos;
  while (pos < end && absl::string_view("eEinumkKMGTP").find(s[pos]) != absl::string_view::npos) {
    ++pos;
  }
  if (pos < end && (s[pos] == '-' || s[pos] == '+')) ++pos;
  while (pos < end && IsDigit(s[pos])) ++pos;
  if (pos != end) return QuantityError(s, kErrFormat);
  absl::string_view suffix = s.substr(suffix_start);

  int base = 10;
  int64_t exponent = 0;
  static constexpr std::pair<const char*, int> kDecimal[] = {
      {"", 0},  {"n", -9}, {"u", -6}, {"m", -3}, {"k", 3},
      {"M", 6}, {"G", 9},  {"T", 12}, {"P", 15}, {"E", 18}};
  static constexpr std::pair<const char*, int> kBinary[] = {{"Ki", 10}, {"Mi", 20}, {"Gi", 30},
                                                            {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  bool found = false;
  for (const auto& [text, exp] : kDecimal) {
    if (suffix == text) {
      exponent = exp;
      q.format_ = Format::kDecimalSI;
      found = true;
    }
  }
  for (const auto& [text, exp] : kBinary) {
    if (suffix == text) {
      base = 2;
      exponent = exp;
      q.format_ = Format::kBinarySI;
      found = true;
    }
  }
  if (!found && suffix.size() > 1 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    if (absl::SimpleAtoi(suffix.substr(1), &exponent)) {
      q.format_ = Format::kDecimalExponent;
      found = true;
    }
  }
  if (!found) return QuantityError(s, kErrSuffix);

  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) return Quantity();
  int64_t e10 = 9 - static_cast<int64_t>(denom_len);
  if (base == 2) {
    digits = TimesPowerOfTwo(std::move(digits), static_cast<int>(exponent));
  } else {
    // Clamp far-out exponents: beyond these every non-zero value saturates or rounds to 1n.
    e10 += std::clamp<int64_t>(exponent, -100000, 100000);
  }
  q.nanos_ = ScaleDigitsUp(digits, e10);
  if (q.format_ == Format::kBinarySI) {
    constexpr u128 kBinaryCap =
        static_cast<u128>(std::numeric_limits<int64_t>::max()) * kNanosPerUnit;
    q.nanos_ = std::min(q.nanos_, kBinaryCap);
    if (q.nanos_ < kNanosPerUnit) q.format_ = Format::kDecimalSI;
  }
  return q;
}

Quantity Quantity::FromScaled(int64_t value, int scale) {
  Quantity q;
  q.negative_ = value < 0;
  u128 mag = value < 0 ? static_cast<u128>(-(value + 1)) + 1 : static_cast<u128>(value);
  q.nanos_ = ScaleDigitsUp(U128ToString(mag), static_cast<int64_t>(scale) + 9);
  return q;
}

Quantity Quantity::RoundedUp(int scale) const {
  Quantity q = *this;
  if (scale <= -9) return q;
  u128 step = 1;
  for (int i = -9; i < scale && step <= kMaxNanos / 10; ++i) step *= 10;
  if (q.nanos_ % step != 0) {
    u128 up = (q.nanos_ / step + 1) * step;
    q.nanos_ = up < q.nanos_ ? kMaxNanos : up;
  }
  return q;
}

int64_t Quantity::ScaledValue(int scale) const {
  u128 v = ScaleDigitsUp(U128ToString(nanos_), -9 - static_cast<int64_t>(scale));
  constexpr u128 kMax = static_cast<u128>(std::numeric_limits<int64_t>::max());
  if (negative_) {
    if (v > kMax + 1) return std::numeric_limits<int64_t>::min();
    return v == kMax + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(v);
  }
  return v > kMax ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(v);
}

std::optional<int64_t> Quantity::AsInt64() const {
  if (nanos_ % kNanosPerUnit != 0) return std::nullopt;
  u128 units = nanos_ / kNanosPerUnit;
  constexpr u128 kMax = static_cast<u128>(std::numeric_limits<int64_t>::max());
  if (units > kMax + (negative_ ? 1 : 0)) return std::nullopt;
  if (negative_)
    return units == kMax + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(units);
  return static_cast<int64_t>(units);
}

double Quantity::AsDouble() const {
  double v = static_cast<double>(nanos_) / 1e9;
  return negative_ ? -v : v;
}

std::strong_ordering Quantity::operator<=>(const Quantity& o) const {
  int a = Sign(), b = o.Sign();
  if (a != b) return a <=> b;
  if (a >= 0) return nanos_ <=> o.nanos_;
  return o.nanos_ <=> nanos_;
}

std::string Quantity::String() const {
  if (nanos_ == 0) return "0";
  const char* sign = negative_ ? "-" : "";
  Format format = format_;
  if (format == Format::kBinarySI) {
    if (nanos_ < 1024 * kNanosPerUnit || nanos_ % kNanosPerUnit != 0) format = Format::kDecimalSI;
  }
  if (format == Format::kBinarySI) {
    u128 m = nanos_ / kNanosPerUnit;
    int e = 0;
    while (m % 1024 == 0 && e < 6) {
      m /= 1024;
      ++e;
    }
    static constexpr const char* kBinary[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    return absl::StrCat(sign, U128ToString(m), kBinary[e]);
  }
  u128 m = nanos_;
  int e = -9;
  while (m % 10 == 0) {
    m /= 10;
    ++e;
  }
  while (e % 3 != 0) {
    m *= 10;
    --e;
  }
  if (format == Format::kDecimalExponent) {
    return absl::StrCat(sign, U128ToString(m), e == 0 ? "" : absl::StrCat("e", e));
  }
  const char* suffix = DecimalSuffix(e);
  return absl::StrCat(sign, U128ToString(m), suffix == nullptr ? "" : suffix);
}

}  // namespace berth
