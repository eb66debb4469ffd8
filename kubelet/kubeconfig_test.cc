#include "kubelet/kubeconfig.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "absl/strings/escaping.h"
#include "base/file.h"

namespace berth::kubelet {
namespace {

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kubeconfig_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  std::string dir_;
};

TEST_F(KubeconfigTest, InlineDataAndCurrentContext) {
  std::string yaml = R"(apiVersion: v1
kind: Config
current-context: node
clusters:
- name: other
  cluster:
    server: https://10.0.0.1:6443
- name: local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: )" +
                     absl::Base64Escape("CA-PEM") + R"(
contexts:
- name: admin
  context: {cluster: other, user: admin}
- name: node
  context:
    cluster: local
    user: node
users:
- name: admin
  user: {token: admintoken}
- name: node
  user:
    client-certificate-data: )" +
                     absl::Base64Escape("CERT-PEM") + R"(
    client-key-data: )" +
                     absl::Base64Escape("KEY-PEM") + "\n";
  auto kc = ParseKubeconfig(yaml, "/nowhere");
  ASSERT_TRUE(kc.ok()) << kc.status();
  EXPECT_EQ(kc->context, "node");
  EXPECT_EQ(kc->server, "https://127.0.0.1:6443");
  EXPECT_EQ(kc->ca_pem, "CA-PEM");
  EXPECT_EQ(kc->client_cert_pem, "CERT-PEM");
  EXPECT_EQ(kc->client_key_pem, "KEY-PEM");
  EXPECT_EQ(kc->token, "");
  EXPECT_FALSE(kc->insecure_skip_tls_verify);

  auto admin = ParseKubeconfig(yaml, "/nowhere", "admin");
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_EQ(admin->server, "https://10.0.0.1:6443");
  EXPECT_EQ(admin->token, "admintoken");
  EXPECT_EQ(admin->ca_pem, "");
}

TEST_F(KubeconfigTest, RelativeFilePathsAndTokenFile) {
  ASSERT_TRUE(MkdirAll(dir_ + "/pki").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/pki/ca.crt", "CA-FROM-FILE").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/token", "s3cret\n").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/kubeconfig", R"(current-context: c
clusters:
- name: k
  cluster:
    server: https://[::1]:6443
    certificate-authority: pki/ca.crt
    insecure-skip-tls-verify: true
contexts:
- name: c
  context: {cluster: k, user: u}
users:
- name: u
  user: {tokenFile: token}
)")
                  .ok());
  auto kc = LoadKubeconfig(dir_ + "/kubeconfig");
  ASSERT_TRUE(kc.ok()) << kc.status();
  EXPECT_EQ(kc->ca_pem, "CA-FROM-FILE");
  EXPECT_EQ(kc->token, "s3cret");
  EXPECT_TRUE(kc->insecure_skip_tls_verify);
}

TEST_F(KubeconfigTest, Errors) {
  EXPECT_EQ(LoadKubeconfig(dir_ + "/missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseKubeconfig("[: bad", "/").status().code(), absl::StatusCode::kInvalidArgument);
  auto no_ctx = ParseKubeconfig("current-context: x\ncontexts: []\n", "/");
  EXPECT_EQ(no_ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_ctx.status().message().find("\"x\""), std::string::npos) << no_ctx.status();
  std::string missing_file = R"(current-context: c
clusters: [{name: k, cluster: {server: "https://h", certificate-authority: /nonexistent/ca}}]
contexts: [{name: c, context: {cluster: k}}]
)";
  auto s = ParseKubeconfig(missing_file, "/");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound) << s.status();
  std::string bad_b64 = R"(current-context: c
clusters: [{name: k, cluster: {server: "https://h", certificate-authority-data: "!!!"}}]
contexts: [{name: c, context: {cluster: k}}]
)";
  EXPECT_EQ(ParseKubeconfig(bad_b64, "/").status().code(), absl::StatusCode::kInvalidArgument);
  std::string cert_only = R"(current-context: c
clusters: [{name: k, cluster: {server: "https://h"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {client-certificate-data: QQ==}}]
)";
  EXPECT_EQ(ParseKubeconfig(cert_only, "/").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::kubelet
