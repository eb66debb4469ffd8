#include "kubelet/pull_secrets.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"

namespace berth::kubelet {
namespace {

using Json = nlohmann::json;

Json Secret(const std::string& type, const std::string& field, const Json& cfg) {
  return Json{{"metadata", {{"name", "regcred"}}},
              {"type", type},
              {"data", {{field, absl::Base64Escape(cfg.dump())}}}};
}
Json ConfigJson(const Json& auths) {
  return Secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", Json{{"auths", auths}});
}
std::vector<std::string> Users(const std::vector<RegistryCredential>& c) {
  std::vector<std::string> out;
  for (const auto& x : c) out.push_back(x.username);
  return out;
}

TEST(NormalizedRepository, DefaultsAsDockerReferences) {
  EXPECT_EQ(NormalizedRepository("busybox"), "docker.io/library/busybox");
  EXPECT_EQ(NormalizedRepository("busybox:1.36"), "docker.io/library/busybox");
  EXPECT_EQ(NormalizedRepository("team/app@sha256:abc"), "docker.io/team/app");
  EXPECT_EQ(NormalizedRepository("index.docker.io/team/app:v1"), "docker.io/team/app");
  EXPECT_EQ(NormalizedRepository("127.0.0.1:5000/busybox:latest"), "127.0.0.1:5000/busybox");
  EXPECT_EQ(NormalizedRepository("localhost/app"), "localhost/app");
  EXPECT_EQ(NormalizedRepository("registry.example.com/a/b:c@sha256:00"),
            "registry.example.com/a/b");
}

TEST(DockerKeyring, AuthFieldAndSeparateFields) {
  DockerKeyring k;
  ASSERT_TRUE(
      k
          .AddSecret(ConfigJson(
              {{"registry.example.com", {{"auth", absl::Base64Escape("alice:s3:cret")}}},
               {"https://other.example.com/v1/", {{"username", "bob"}, {"password", "pw"}}}}))
          .ok());
  auto c = k.Lookup("registry.example.com/app:1");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].username, "alice");
  EXPECT_EQ(c[0].password, "s3:cret");  // only the first ':' separates
  EXPECT_EQ(c[0].key, "registry.example.com");
  c = k.Lookup("other.example.com/x/y");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].username, "bob");
  EXPECT_EQ(c[0].key, "other.example.com");  // scheme and /v1/ dropped
  EXPECT_TRUE(k.Lookup("unrelated.example.com/app").empty());
}

TEST(DockerKeyring, HostGlobPortAndPathPrefixMostSpecificFirst) {
  DockerKeyring k;
  ASSERT_TRUE(
      k.AddSecret(
           ConfigJson({{"*.example.com", {{"username", "glob"}, {"password", "p"}}},
                       {"registry.example.com/team", {{"username", "team"}, {"password", "p"}}},
                       {"registry.example.com:5000", {{"username", "port"}, {"password", "p"}}}}))
          .ok());
  EXPECT_EQ(Users(k.Lookup("registry.example.com/team/app")),
            (std::vector<std::string>{"team", "glob"}));
  EXPECT_EQ(Users(k.Lookup("registry.example.com/other/app")), (std::vector<std::string>{"glob"}));
  EXPECT_EQ(Users(k.Lookup("registry.example.com:5000/app")), (std::vector<std::string>{"port"}));
  // The glob matches one label, not several; no port in the key means no port in the image.
  EXPECT_TRUE(k.Lookup("a.b.example.com/app").empty());
  EXPECT_TRUE(k.Lookup("example.com/app").empty());
}

TEST(DockerKeyring, DockerHubImagesGetIndexDockerIoCredentials) {
  DockerKeyring k;
  Json dockercfg = {{"https://index.docker.io/v1/", {{"username", "hub"}, {"password", "p"}}}};
  ASSERT_TRUE(k.AddSecret(Secret("kubernetes.io/dockercfg", ".dockercfg", dockercfg)).ok());
  EXPECT_EQ(Users(k.Lookup("busybox")), (std::vector<std::string>{"hub"}));
  EXPECT_EQ(Users(k.Lookup("docker.io/team/app:v1")), (std::vector<std::string>{"hub"}));
  EXPECT_TRUE(k.Lookup("quay.io/team/app").empty());
}

TEST(DockerKeyring, BadSecretsAreRefusedWithTheReason) {
  DockerKeyring k;
  auto s = k.AddSecret(
      Json{{"metadata", {{"name", "opaque"}}}, {"type", "Opaque"}, {"data", Json::object()}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("kubernetes.io/dockerconfigjson"), std::string::npos) << s;
  s = k.AddSecret(
      Json{{"type", "kubernetes.io/dockerconfigjson"}, {"data", {{".dockerconfigjson", "%%%"}}}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = k.AddSecret(Json{{"type", "kubernetes.io/dockerconfigjson"},
                       {"data", {{".dockerconfigjson", absl::Base64Escape("{not json")}}}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = k.AddSecret(ConfigJson({{"r.example.com", {{"auth", absl::Base64Escape("no-colon")}}}}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(k.empty());
}

}  // namespace
}  // namespace berth::kubelet
