#include "cri/image/digest.h"

#include <gtest/gtest.h>

namespace berth::cri::image {
namespace {

TEST(DigestTest, Sha256KnownValues) {
  EXPECT_EQ(Sha256Digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("a", 1);
  h.Update("bc", 2);
  EXPECT_EQ(h.Digest(), Sha256Digest("abc"));
}

TEST(DigestTest, ChainIds) {
  const std::string d0 = Sha256Digest("layer0");
  const std::string d1 = Sha256Digest("layer1");
  const std::string d2 = Sha256Digest("layer2");
  auto chain = ChainIds({d0, d1, d2});
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0], d0);  // ChainID(L0) = DiffID(L0)
  EXPECT_EQ(chain[1], Sha256Digest(d0 + " " + d1));
  EXPECT_EQ(chain[2], Sha256Digest(chain[1] + " " + d2));
  EXPECT_TRUE(ChainIds({}).empty());
  EXPECT_NE(ChainIds({d1, d0})[1], chain[1]);  // order matters
}

TEST(DigestTest, DigestHex) {
  EXPECT_EQ(DigestHex("sha256:abc"), "abc");
  EXPECT_EQ(DigestHex("abc"), "abc");
}

}  // namespace
}  // namespace berth::cri::image
