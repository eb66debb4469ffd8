#include <gtest/gtest.h>

#include "cni/cni.h"

namespace berth::cni {
namespace {

TEST(BandwidthFromAnnotations, ParsesQuantitiesInBitsPerSecond) {
  auto bw = BandwidthFromAnnotations({{"kubernetes.io/ingress-bandwidth", "10M"},
                                      {"kubernetes.io/egress-bandwidth", "1Mi"},
                                      {"other", "x"}});
  ASSERT_TRUE(bw.ok()) << bw.status();
  EXPECT_EQ(bw->ingress_rate, 10000000);
  EXPECT_EQ(bw->egress_rate, 1048576);
  EXPECT_EQ(bw->ingress_burst, 2147483647);
  EXPECT_FALSE(bw->empty());
}

TEST(BandwidthFromAnnotations, NoAnnotationsIsEmpty) {
  auto bw = BandwidthFromAnnotations({{"app", "web"}});
  ASSERT_TRUE(bw.ok());
  EXPECT_TRUE(bw->empty());
}

TEST(BandwidthFromAnnotations, RejectsBadValuesNamingTheAnnotation) {
  for (const char* v : {"fast", "10X", "999", "2P"}) {
    auto bw = BandwidthFromAnnotations({{"kubernetes.io/egress-bandwidth", v}});
    ASSERT_FALSE(bw.ok()) << v;
    EXPECT_EQ(bw.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(bw.status().message().find("kubernetes.io/egress-bandwidth"), std::string::npos);
  }
}

}  // namespace
}  // namespace berth::cni
