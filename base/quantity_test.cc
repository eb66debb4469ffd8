#include "base/quantity.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"

namespace berth {
namespace {

struct Case {
  const char* text;
  int64_t value;
  int64_t milli;
  int64_t nano;
  const char* canonical;
};

// Expected figures are those of k8s.io/apimachinery v0.36.3 resource.ParseQuantity followed by
// Value(), MilliValue(), ScaledValue(resource.Nano) and String().
TEST(QuantityTest, ParsesAsUpstream) {
  const Case kCases[] = {
      {"0", 0, 0, 0, "0"},
      {"1", 1, 1000, 1000000000, "1"},
      {"-1", -1, -1000, -1000000000, "-1"},
      {"1.5", 2, 1500, 1500000000, "1500m"},
      {"-1.5", -2, -1500, -1500000000, "-1500m"},
      {"100m", 1, 100, 100000000, "100m"},
      {"1000m", 1, 1000, 1000000000, "1"},
      {"1500m", 2, 1500, 1500000000, "1500m"},
      {"0.1", 1, 100, 100000000, "100m"},
      {".5", 1, 500, 500000000, "500m"},
      {"250m", 1, 250, 250000000, "250m"},
      {"0.25", 1, 250, 250000000, "250m"},
      {"1n", 1, 1, 1, "1n"},
      {"0.0000000001", 1, 1, 1, "1n"},  // below 1n: rounded up to 1n
      {"1u", 1, 1, 1000, "1u"},
      {"1k", 1000, 1000000, 1000000000000, "1k"},
      {"1000", 1000, 1000000, 1000000000000, "1k"},
      {"1500", 1500, 1500000, 1500000000000, "1500"},
      {"1.5k", 1500, 1500000, 1500000000000, "1500"},
      {"12345678", 12345678, 12345678000, 12345678000000000, "12345678"},
      {"2M", 2000000, 2000000000, 2000000000000000, "2M"},
      {"1G", 1000000000, 1000000000000, 1000000000000000000, "1G"},
      {"1Ki", 1024, 1024000, 1024000000000, "1Ki"},
      {"100Ki", 102400, 102400000, 102400000000000, "100Ki"},
      {"1000Ki", 1024000, 1024000000, 1024000000000000, "1000Ki"},
      {"1Mi", 1048576, 1048576000, 1048576000000000, "1Mi"},
      {"10Mi", 10485760, 10485760000, 10485760000000000, "10Mi"},
      {"128Mi", 134217728, 134217728000, 134217728000000000, "128Mi"},
      {"1.5Mi", 1572864, 1572864000, 1572864000000000, "1536Ki"},
      {"1024Mi", 1073741824, 1073741824000, 1073741824000000000, "1Gi"},
      {"1536Mi", 1610612736, 1610612736000, 1610612736000000000, "1536Mi"},
      {"1.5Gi", 1610612736, 1610612736000, 1610612736000000000, "1536Mi"},
      {"5Gi", 5368709120, 5368709120000, 5368709120000000000, "5Gi"},
      {"0.5Ki", 512, 512000, 512000000000, "512"},  // binary below 1024 prints as decimal
      {"1e3", 1000, 1000000, 1000000000000, "1e3"},
      {"1.5e3", 1500, 1500000, 1500000000000, "1500"},
      {"1e-12", 1, 1, 1, "1e-9"},
      {"-", 0, 0, 0, "0"},  // upstream accepts a bare sign as zero
      {"+", 0, 0, 0, "0"},
      {"0000", 0, 0, 0, "0"},
      {"0Mi", 0, 0, 0, "0"},
      {".", 0, 0, 0, "0"},
      {"Mi", 0, 0, 0, "0"},  // no digits: zero, as upstream
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<Quantity> q = Quantity::Parse(c.text);
    ASSERT_TRUE(q.ok()) << q.status();
    EXPECT_EQ(q->Value(), c.value);
    EXPECT_EQ(q->MilliValue(), c.milli);
    EXPECT_EQ(q->ScaledValue(-9), c.nano);
    EXPECT_EQ(q->String(), c.canonical);
  }
}

TEST(QuantityTest, LargeValuesAsUpstreamWhereUpstreamDoesNotOverflow) {
  EXPECT_EQ(Quantity::Parse("1T")->Value(), 1000000000000);
  EXPECT_EQ(Quantity::Parse("1P")->MilliValue(), 1000000000000000000);
  EXPECT_EQ(Quantity::Parse("1E")->Value(), 1000000000000000000);
  EXPECT_EQ(Quantity::Parse("1000E")->String(), "1");  // upstream has no suffix for 10^21
  EXPECT_EQ(Quantity::Parse("9223372036854775807")->Value(), std::numeric_limits<int64_t>::max());
  // Binary values are capped at 2^63-1.
  EXPECT_EQ(Quantity::Parse("16Ei")->Value(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Quantity::Parse("16Ei")->String(), "9223372036854775807");
  EXPECT_EQ(Quantity::Parse("123456789012345678901234567890")->String(),
            "123456789012345678901234567890");
  // Where upstream's int64 overflows, berth saturates.
  EXPECT_EQ(Quantity::Parse("8Ei")->MilliValue(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Quantity::Parse("-1e30")->Value(), std::numeric_limits<int64_t>::min());
}

TEST(QuantityTest, RejectsWhatUpstreamRejects) {
  for (const char* bad : {"", "1x", "1K", "1Ki2", "1.2.3", "1e", "1ee3", "1-", "abc", "12Q", "1 ",
                          " 1", "--1", "1i", "1mi"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<Quantity> q = Quantity::Parse(bad);
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(q.status().message().find(absl::StrCat("\"", bad, "\"")), std::string::npos);
  }
}

TEST(QuantityTest, ComparesValuesNotText) {
  EXPECT_EQ(*Quantity::Parse("1Ki"), *Quantity::Parse("1024"));
  EXPECT_EQ(*Quantity::Parse("1"), *Quantity::Parse("1000m"));
  EXPECT_LT(*Quantity::Parse("-2"), *Quantity::Parse("-1"));
  EXPECT_LT(*Quantity::Parse("999m"), *Quantity::Parse("1"));
  EXPECT_GT(*Quantity::Parse("1Mi"), *Quantity::Parse("1M"));
  EXPECT_EQ(Quantity::Parse("-3")->Sign(), -1);
  EXPECT_TRUE(Quantity::Parse("0Ki")->IsZero());
  EXPECT_DOUBLE_EQ(Quantity::Parse("1.5Ki")->AsDouble(), 1536.0);
  EXPECT_DOUBLE_EQ(Quantity::Parse("100m")->AsDouble(), 0.1);
}

TEST(QuantityTest, FromScaled) {
  EXPECT_EQ(Quantity::FromScaled(1500, -3).String(), "1500m");
  EXPECT_EQ(Quantity::FromScaled(1500, -3).Value(), 2);
  EXPECT_EQ(Quantity::FromScaled(-7, 0).MilliValue(), -7000);
  EXPECT_EQ(Quantity::FromScaled(2, 3).String(), "2k");
  EXPECT_EQ(Quantity::FromScaled(std::numeric_limits<int64_t>::min(), 0).Value(),
            std::numeric_limits<int64_t>::min());
}

TEST(QuantityTest, RoundedUpKeepsTheFormat) {
  EXPECT_EQ(Quantity::Parse("1n")->RoundedUp(-3).String(), "1m");
  EXPECT_EQ(Quantity::Parse("1.0001")->RoundedUp(-3).MilliValue(), 1001);
  EXPECT_EQ(Quantity::Parse("-1.0001")->RoundedUp(-3).MilliValue(), -1001);
  EXPECT_EQ(Quantity::Parse("1Mi")->RoundedUp(-3).String(), "1Mi");
  EXPECT_EQ(Quantity::Parse("250m")->RoundedUp(-3).String(), "250m");
}

}  // namespace
}  // namespace berth
