#include "cri/image/reference.h"

#include <gtest/gtest.h>

namespace berth::cri::image {
namespace {

const char kDigest[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(ReferenceTest, DockerHubDefaults) {
  auto r = ParseReference("busybox");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->domain, "docker.io");
  EXPECT_EQ(r->path, "library/busybox");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->String(), "docker.io/library/busybox:latest");

  r = ParseReference("someuser/app:1.2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->String(), "docker.io/someuser/app:1.2");
  r = ParseReference("index.docker.io/library/nginx");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->String(), "docker.io/library/nginx:latest");
}

TEST(ReferenceTest, HostPortTagAndDigest) {
  auto r = ParseReference("127.0.0.1:5000/busybox:latest");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->domain, "127.0.0.1:5000");
  EXPECT_EQ(r->path, "busybox");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->Name(), "127.0.0.1:5000/busybox");

  r = ParseReference("127.0.0.1:5000/busybox");  // port is not a tag
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain, "127.0.0.1:5000");
  EXPECT_EQ(r->tag, "latest");

  r = ParseReference(std::string("quay.io/a/b@") + kDigest);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain, "quay.io");
  EXPECT_EQ(r->path, "a/b");
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, kDigest);
  EXPECT_EQ(r->String(), std::string("quay.io/a/b@") + kDigest);

  r = ParseReference(std::string("localhost/x:v1@") + kDigest);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain, "localhost");
  EXPECT_EQ(r->tag, "v1");
  EXPECT_EQ(r->TagString(), "localhost/x:v1");
  EXPECT_EQ(r->String(), std::string("localhost/x@") + kDigest);
}

TEST(ReferenceTest, RejectsMalformed) {
  for (const char* bad :
       {"", "Busybox", "busybox:", "busybox:bad tag", "busybox:-x", "busybox@sha256:zz",
        "busybox@md5:0123", "a//b", "reg.io/", "reg.io/a_/b"}) {
    auto r = ParseReference(bad);
    EXPECT_FALSE(r.ok()) << bad << " parsed as " << r->String();
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find("invalid image reference"), std::string::npos);
    }
  }
}

TEST(ReferenceTest, IsSha256Digest) {
  EXPECT_TRUE(IsSha256Digest(kDigest));
  EXPECT_FALSE(IsSha256Digest("sha256:0123"));
  EXPECT_FALSE(IsSha256Digest(std::string(kDigest).substr(7)));
}

}  // namespace
}  // namespace berth::cri::image
