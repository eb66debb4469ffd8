#include "kubelet/kubelet_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <map>

#include "base/file.h"
#include "base/process.h"

namespace berth::kubelet {
namespace {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using Values = std::vector<std::string>;

constexpr char kHeader[] =
    "apiVersion: kubelet.config.k8s.io/v1beta1\n"
    "kind: KubeletConfiguration\n";

// The settings of a parsed file as flag -> values.
std::map<std::string, Values> ByFlag(const KubeletConfig& c) {
  std::map<std::string, Values> out;
  for (const KubeletConfigSetting& s : c.settings) out[s.flag] = s.values;
  return out;
}

KubeletConfig MustParse(const std::string& body, const KubeletConfigContext& ctx = {}) {
  absl::StatusOr<KubeletConfig> c = ParseKubeletConfig(kHeader + body, "/etc/berth", ctx);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : KubeletConfig{};
}

std::string ParseError(const std::string& text) {
  absl::StatusOr<KubeletConfig> c = ParseKubeletConfig(text, "/etc/berth");
  EXPECT_FALSE(c.ok()) << text;
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  return std::string(c.status().message());
}

// Every field berth maps, set to a non-default value.
constexpr char kEveryMappedField[] = R"(
address: 192.0.2.1
port: 10260
readOnlyPort: 0
tlsCertFile: /etc/berth/serving.crt
tlsPrivateKeyFile: pki/serving.key
healthzPort: 10258
healthzBindAddress: 0.0.0.0
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
    cacheTTL: 1m30s
  x509:
    clientCAFile: ../kubernetes/pki/ca.crt
authorization:
  mode: AlwaysAllow
  webhook:
    cacheAuthorizedTTL: 10m
    cacheUnauthorizedTTL: 5s
clusterDNS: [10.96.0.10, "fd00::a"]
clusterDomain: cluster.test
maxPods: 50
registerWithTaints:
- key: dedicated
  value: infra
  effect: NoSchedule
- key: gpu
  effect: NoExecute
containerLogMaxSize: 5Mi
containerLogMaxFiles: 3
seccompDefault: true
allowedUnsafeSysctls: ["net.core.somaxconn", "kernel.msg*"]
containerRuntimeEndpoint: unix:///run/berth/berth.sock
cgroupDriver: cgroupfs
cgroupRoot: /berth/
resolvConf: /run/systemd/resolve/resolv.conf
podLogsDir: /var/log/berth-pods
rotateCertificates: true
serverTLSBootstrap: true
staticPodPath: manifests
fileCheckFrequency: 5s
logging:
  format: text
  verbosity: 2
)";

TEST(ParseGoDurationTest, GoFormat) {
  EXPECT_EQ(*ParseGoDuration("2m0s"), absl::Minutes(2));
  EXPECT_EQ(*ParseGoDuration("30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseGoDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseGoDuration("1.5h"), absl::Minutes(90));
  EXPECT_EQ(*ParseGoDuration("300ms"), absl::Milliseconds(300));
  EXPECT_EQ(*ParseGoDuration("5\xc2\xb5s"), absl::Microseconds(5));  // µs
  EXPECT_EQ(*ParseGoDuration("5us"), absl::Microseconds(5));
  EXPECT_EQ(*ParseGoDuration("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseGoDuration("-1s"), absl::Seconds(-1));
  for (const char* bad : {"", "5", "inf", "-inf", "2 m", "soon", "1d"}) {
    absl::StatusOr<absl::Duration> d = ParseGoDuration(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// apiVersion + kind alone: nothing set, nothing to warn about; every flag keeps its default
// (berth's defaults are the upstream KubeletConfiguration defaults).
TEST(KubeletConfigTest, MinimalFileSetsNothing) {
  KubeletConfig c = MustParse("");
  EXPECT_THAT(c.settings, IsEmpty());
  EXPECT_THAT(c.warnings, IsEmpty());
}

// Go's zero values are "unset" for non-pointer fields: what kubeadm writes (cacheTTL: 0s,
// port absent, logging zeros, empty structs) changes nothing and warns about nothing.
TEST(KubeletConfigTest, GoZeroValuesAreDefaults) {
  KubeletConfig c = MustParse(R"(
address: ""
port: 0
maxPods: 0
clusterDNS: []
containerLogMaxSize: ""
containerRuntimeEndpoint: ""
cgroupRoot: /
authentication:
  webhook:
    cacheTTL: 0s
authorization:
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: "0"
cpuManagerReconcilePeriod: 0s
crashLoopBackOff: {}
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
rotateCertificates: false
shutdownGracePeriod: 0s
syncFrequency: 0s
)");
  EXPECT_THAT(c.settings, IsEmpty());
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(KubeletConfigTest, EveryMappedField) {
  KubeletConfig c = MustParse(kEveryMappedField);
  EXPECT_THAT(c.warnings, IsEmpty());
  std::map<std::string, Values> f = ByFlag(c);
  EXPECT_EQ(f["--address"], Values{"192.0.2.1"});
  EXPECT_EQ(f["--port"], Values{"10260"});
  EXPECT_EQ(f["--tls-cert-file"], Values{"/etc/berth/serving.crt"});
  EXPECT_EQ(f["--tls-private-key-file"], Values{"/etc/berth/pki/serving.key"});  // relative
  EXPECT_EQ(f["--healthz-port"], Values{"10258"});
  EXPECT_EQ(f["--healthz-bind-address"], Values{"0.0.0.0"});
  EXPECT_EQ(f["--anonymous-auth"], Values{"true"});
  EXPECT_EQ(f["--authentication-token-webhook"], Values{"false"});
  EXPECT_EQ(f["--authentication-token-webhook-cache-ttl"], Values{"1m30s"});
  EXPECT_EQ(f["--client-ca-file"], Values{"/etc/kubernetes/pki/ca.crt"});
  EXPECT_EQ(f["--authorization-mode"], Values{"AlwaysAllow"});
  EXPECT_EQ(f["--authorization-webhook-cache-authorized-ttl"], Values{"10m"});
  EXPECT_EQ(f["--authorization-webhook-cache-unauthorized-ttl"], Values{"5s"});
  EXPECT_EQ(f["--cluster-dns"], (Values{"10.96.0.10", "fd00::a"}));
  EXPECT_EQ(f["--cluster-domain"], Values{"cluster.test"});
  EXPECT_EQ(f["--max-pods"], Values{"50"});
  EXPECT_EQ(f["--register-with-taints"], Values{"dedicated=infra:NoSchedule,gpu:NoExecute"});
  EXPECT_EQ(f["--container-log-max-size"], Values{"5Mi"});
  EXPECT_EQ(f["--container-log-max-files"], Values{"3"});
  EXPECT_EQ(f["--seccomp-default"], Values{"true"});
  EXPECT_EQ(f["--allowed-unsafe-sysctls"], (Values{"net.core.somaxconn", "kernel.msg*"}));
  EXPECT_EQ(f["--cgroup-root"], Values{"/berth"});
  EXPECT_EQ(f["--resolv-conf"], Values{"/run/systemd/resolve/resolv.conf"});
  EXPECT_EQ(f["--log-root"], Values{"/var/log/berth-pods"});
  EXPECT_EQ(f["--v"], Values{"2"});
  EXPECT_EQ(f["--rotate-certificates"], Values{"true"});
  EXPECT_EQ(f["--rotate-server-certificates"], Values{"true"});
  EXPECT_EQ(f["--pod-manifest-path"], Values{"/etc/berth/manifests"});  // relative
  EXPECT_EQ(f["--file-check-frequency"], Values{"5s"});
  EXPECT_THAT(f, SizeIs(29));
  // The field of each setting is its path in the file.
  for (const KubeletConfigSetting& s : c.settings) {
    if (s.flag == "--authentication-token-webhook-cache-ttl") {
      EXPECT_EQ(s.field, "authentication.webhook.cacheTTL");
    }
  }
}

// The same file as JSON (tabs and all) gives the same settings.
TEST(KubeletConfigTest, Json) {
  absl::StatusOr<KubeletConfig> c = ParseKubeletConfig(
      "{\n\t\"apiVersion\": \"kubelet.config.k8s.io/v1beta1\",\n\t\"kind\": "
      "\"KubeletConfiguration\",\n\t\"port\": 10260,\n\t\"clusterDNS\": [\"10.96.0.10\"],\n"
      "\t\"authentication\": {\"anonymous\": {\"enabled\": false}, \"webhook\": "
      "{\"cacheTTL\": \"2m0s\"}},\n\t\"healthzPort\": 0,\n\t\"resolvConf\": \"\"\n}\n",
      "/etc/berth");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->warnings, IsEmpty());
  std::map<std::string, Values> f = ByFlag(*c);
  EXPECT_EQ(f["--port"], Values{"10260"});
  EXPECT_EQ(f["--cluster-dns"], Values{"10.96.0.10"});
  EXPECT_EQ(f["--anonymous-auth"], Values{"false"});
  EXPECT_EQ(f["--authentication-token-webhook-cache-ttl"], Values{"2m0s"});
  // Pointer fields keep an explicit zero: no healthz server, no host DNS for pods.
  EXPECT_EQ(f["--healthz-port"], Values{"0"});
  EXPECT_EQ(f["--resolv-conf"], Values{""});
}

TEST(KubeletConfigTest, PointerFieldsKeepExplicitZeros) {
  std::map<std::string, Values> f = ByFlag(MustParse(R"(
healthzPort: 0
seccompDefault: false
containerLogMaxFiles: 0
resolvConf: ""
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
)"));
  EXPECT_EQ(f["--healthz-port"], Values{"0"});
  EXPECT_EQ(f["--seccomp-default"], Values{"false"});
  EXPECT_EQ(f["--container-log-max-files"], Values{"0"});  // refused later by the flag's check
  EXPECT_EQ(f["--resolv-conf"], Values{""});
  EXPECT_EQ(f["--anonymous-auth"], Values{"false"});
  EXPECT_EQ(f["--authentication-token-webhook"], Values{"false"});
}

TEST(KubeletConfigTest, EnableServerFalseTurnsThePortOff) {
  EXPECT_EQ(ByFlag(MustParse("port: 10260\nenableServer: false\n"))["--port"], Values{"0"});
  EXPECT_EQ(ByFlag(MustParse("enableServer: false\nport: 10260\n"))["--port"], Values{"0"});
  std::map<std::string, Values> on = ByFlag(MustParse("enableServer: true\nport: 10260\n"));
  EXPECT_EQ(on["--port"], Values{"10260"});
}

TEST(KubeletConfigTest, RelativePathsResolveAgainstTheFilesDirectory) {
  std::map<std::string, Values> f = ByFlag(MustParse(R"(
tlsCertFile: serving.crt
tlsPrivateKeyFile: ./serving.key
authentication: {x509: {clientCAFile: ../pki/ca.crt}}
resolvConf: resolv.conf
podLogsDir: logs
)"));
  EXPECT_EQ(f["--tls-cert-file"], Values{"/etc/berth/serving.crt"});
  EXPECT_EQ(f["--tls-private-key-file"], Values{"/etc/berth/serving.key"});
  EXPECT_EQ(f["--client-ca-file"], Values{"/etc/pki/ca.crt"});
  EXPECT_EQ(f["--resolv-conf"], Values{"/etc/berth/resolv.conf"});
  EXPECT_EQ(f["--log-root"], Values{"/etc/berth/logs"});
}

// Known fields berth does not implement: named in ONE warning line, with scalar values;
// values that match what berth does anyway are not.
TEST(KubeletConfigTest, UnsupportedFieldsInOneWarning) {
  KubeletConfig c = MustParse(R"(
staticPodURL: http://192.0.2.1/pods
imageMaximumGCAge: 1h
readOnlyPort: 10255
podCIDR: 10.244.0.0/24
cgroupDriver: systemd
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
featureGates: {SomeGate: true}
logging: {format: json, flushFrequency: 5s}
cgroupsPerQOS: true
registerNode: true
failSwapOn: false
enableDebuggingHandlers: true
)");
  ASSERT_THAT(c.warnings, SizeIs(1));
  const std::string& w = c.warnings[0];
  EXPECT_THAT(w, HasSubstr("not implemented by berth, ignored: "));
  for (const char* part :
       {"staticPodURL (http://192.0.2.1/pods)", "imageMaximumGCAge (1h)",
        "readOnlyPort (10255; berth serves no read-only port)",
        "podCIDR (10.244.0.0/24; berth takes the pod CIDR from Node.spec.podCIDR)",
        "cgroupDriver (systemd; berth uses cgroupfs)",
        "containerRuntimeEndpoint (unix:///run/containerd/containerd.sock; berth's kubelet "
        "uses its own runtime, served on /run/berth/berth.sock)",
        "featureGates", "logging.format (json; berth logs text)", "logging.flushFrequency (5s)"}) {
    EXPECT_THAT(w, HasSubstr(part));
  }
  for (const char* fine : {"cgroupsPerQOS", "registerNode", "failSwapOn", "enableDebuggingHandlers",
                           "rotateCertificates", "serverTLSBootstrap"}) {
    EXPECT_THAT(w, Not(HasSubstr(fine)));
  }
  EXPECT_THAT(c.settings, IsEmpty());
}

// Eviction and image GC fields become the upstream flags; mergeDefaultEvictionSettings adds the
// default hard thresholds the file leaves out.
TEST(KubeletConfigTest, EvictionAndImageGc) {
  KubeletConfig c = MustParse(R"(
evictionHard: {memory.available: 200Mi, nodefs.available: 5%}
mergeDefaultEvictionSettings: true
evictionSoft: {memory.available: 1Gi}
evictionSoftGracePeriod: {memory.available: 1m30s}
evictionMinimumReclaim: {nodefs.available: 1Gi}
evictionPressureTransitionPeriod: 30s
evictionMaxPodGracePeriod: 20
imageMinimumGCAge: 5m
imageGCHighThresholdPercent: 90
imageGCLowThresholdPercent: 70
)");
  EXPECT_THAT(c.warnings, IsEmpty());
  auto f = ByFlag(c);
  EXPECT_EQ(f["--eviction-hard"],
            Values{"imagefs.available<15%,imagefs.inodesFree<5%,memory.available<200Mi,"
                   "nodefs.available<5%,nodefs.inodesFree<5%"});
  EXPECT_EQ(f["--eviction-soft"], Values{"memory.available<1Gi"});
  EXPECT_EQ(f["--eviction-soft-grace-period"], Values{"memory.available=1m30s"});
  EXPECT_EQ(f["--eviction-minimum-reclaim"], Values{"nodefs.available=1Gi"});
  EXPECT_EQ(f["--eviction-pressure-transition-period"], Values{"30s"});
  EXPECT_EQ(f["--eviction-max-pod-grace-period"], Values{"20"});
  EXPECT_EQ(f["--minimum-image-ttl-duration"], Values{"5m"});
  EXPECT_EQ(f["--image-gc-high-threshold"], Values{"90"});
  EXPECT_EQ(f["--image-gc-low-threshold"], Values{"70"});
  // Without the merge, evictionHard replaces the defaults; an empty map disables them.
  EXPECT_EQ(ByFlag(MustParse("evictionHard: {memory.available: 1Gi}\n"))["--eviction-hard"],
            Values{"memory.available<1Gi"});
  EXPECT_EQ(ByFlag(MustParse("evictionHard: {}\n"))["--eviction-hard"], Values{""});
  EXPECT_THAT(ParseError(std::string(kHeader) + "imageGCHighThresholdPercent: 101\n"),
              HasSubstr("imageGCHighThresholdPercent: 101 must be between 0 and 100"));
}

TEST(KubeletConfigTest, BerthsOwnSocketIsAcceptedAsRuntimeEndpoint) {
  KubeletConfigContext ctx;
  ctx.cri_socket = "/run/berth/berth.sock";
  EXPECT_THAT(MustParse("containerRuntimeEndpoint: unix:///var/run/berth/berth.sock\n"
                        "imageServiceEndpoint: /run/berth/berth.sock\n",
                        ctx)
                  .warnings,
              IsEmpty());
  ctx.cri_socket = "/tmp/b/berth.sock";
  KubeletConfig other = MustParse("containerRuntimeEndpoint: unix:///run/berth/berth.sock\n", ctx);
  ASSERT_THAT(other.warnings, SizeIs(1));
  EXPECT_THAT(other.warnings[0], HasSubstr("served on /tmp/b/berth.sock"));
}

TEST(KubeletConfigTest, UnknownFieldsAreNamed) {
  KubeletConfig c = MustParse(R"(
nodeLabels: {a: b}
port: 10260
authentication:
  oidc: {}
  webhook: {enabled: true, cacheTtl: 1m}
authorization: {webhook: {ttl: 1m}}
registerWithTaints: [{key: a, effect: NoSchedule, operator: Exists}]
logging: {verbosity: 1, colour: true}
)");
  ASSERT_THAT(c.warnings, SizeIs(1));
  EXPECT_THAT(c.warnings[0], HasSubstr("unknown fields (not in KubeletConfiguration "
                                       "kubelet.config.k8s.io/v1beta1), ignored: "));
  for (const char* f :
       {"nodeLabels", "authentication.oidc", "authentication.webhook.cacheTtl",
        "authorization.webhook.ttl", "registerWithTaints[0].operator", "logging.colour"}) {
    EXPECT_THAT(c.warnings[0], HasSubstr(f));
  }
  // Known fields beside them still apply.
  std::map<std::string, Values> f = ByFlag(c);
  EXPECT_EQ(f["--port"], Values{"10260"});
  EXPECT_EQ(f["--authentication-token-webhook"], Values{"true"});
  EXPECT_EQ(f["--register-with-taints"], Values{"a:NoSchedule"});
  EXPECT_EQ(f["--v"], Values{"1"});
}

TEST(KubeletConfigTest, DuplicateFieldsWarnAndTheLastCounts) {
  KubeletConfig c = MustParse("port: 10260\nport: 10270\n");
  EXPECT_EQ(ByFlag(c)["--port"], Values{"10270"});
  ASSERT_THAT(c.warnings, SizeIs(1));
  EXPECT_THAT(c.warnings[0], HasSubstr("more than once"));
  EXPECT_THAT(c.warnings[0], HasSubstr("port"));
}

TEST(KubeletConfigTest, MalformedYamlAndWrongKind) {
  EXPECT_THAT(ParseError(std::string(kHeader) + "port: [10250\n"),
              HasSubstr("malformed YAML at line "));
  EXPECT_THAT(ParseError(""), HasSubstr("empty"));
  EXPECT_THAT(ParseError("  \n"), HasSubstr("empty"));
  EXPECT_THAT(ParseError("- a\n- b\n"), HasSubstr("want a KubeletConfiguration object"));
  EXPECT_THAT(ParseError("just text\n"), HasSubstr("want a KubeletConfiguration object"));
  std::string wrong_kind = ParseError("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: Pod\n");
  EXPECT_THAT(wrong_kind, HasSubstr("kind \"Pod\""));
  EXPECT_THAT(wrong_kind, HasSubstr("berth reads only apiVersion kubelet.config.k8s.io/v1beta1, "
                                    "kind KubeletConfiguration"));
  EXPECT_THAT(ParseError("apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n"),
              HasSubstr("apiVersion \"kubelet.config.k8s.io/v1\""));
  EXPECT_THAT(ParseError("apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
                         "kind: KubeProxyConfiguration\n"),
              HasSubstr("kind \"KubeProxyConfiguration\""));
  EXPECT_THAT(ParseError("kind: KubeletConfiguration\n"), HasSubstr("apiVersion \"\""));
  EXPECT_THAT(ParseError("apiVersion: kubelet.config.k8s.io/v1beta1\n"), HasSubstr("kind \"\""));
}

TEST(KubeletConfigTest, WrongTypesAndValuesNameTheField) {
  auto err = [](const std::string& body) { return ParseError(kHeader + body); };
  EXPECT_THAT(err("port: abc\n"), HasSubstr("port: want an integer, got \"abc\""));
  EXPECT_THAT(err("port: \"10250\"\n"), HasSubstr("port: want an integer"));
  EXPECT_THAT(err("port: 70000\n"), HasSubstr("port: 70000 must be between 1 and 65535"));
  EXPECT_THAT(err("healthzPort: -1\n"), HasSubstr("healthzPort: -1 must be between 0 and 65535"));
  EXPECT_THAT(err("maxPods: -3\n"), HasSubstr("maxPods: -3 must not be a negative number"));
  EXPECT_THAT(err("authentication: {webhook: {cacheTTL: soon}}\n"),
              HasSubstr("authentication.webhook.cacheTTL: \"soon\" is not a duration"));
  EXPECT_THAT(err("clusterDNS: 10.96.0.10\n"), HasSubstr("clusterDNS: want a list of strings"));
  EXPECT_THAT(err("clusterDNS: [[a]]\n"), HasSubstr("clusterDNS[0]: want a string"));
  EXPECT_THAT(err("clusterDNS: [10.96.0.10, null]\n"),
              HasSubstr("clusterDNS[1]: want a string, got null"));
  EXPECT_THAT(err("seccompDefault: maybe\n"), HasSubstr("seccompDefault: want true or false"));
  EXPECT_THAT(err("authentication: {anonymous: {enabled: \"true\"}}\n"),
              HasSubstr("authentication.anonymous.enabled: want true or false"));
  EXPECT_THAT(err("authentication: [x509]\n"), HasSubstr("authentication: want an object"));
  EXPECT_THAT(err("address: {ip: 1.2.3.4}\n"), HasSubstr("address: want a string"));
  EXPECT_THAT(err("registerWithTaints: [{key: a, effect: Sometimes}]\n"),
              HasSubstr("registerWithTaints[0].effect: \"Sometimes\""));
  EXPECT_THAT(err("registerWithTaints: [{value: a, effect: NoSchedule}]\n"),
              HasSubstr("registerWithTaints[0]: a taint needs a key"));
  EXPECT_THAT(err("registerWithTaints: {key: a}\n"), HasSubstr("want a list of taints"));
}

class LoadKubeletConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kubelet_config_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  std::string dir_;
};

TEST_F(LoadKubeletConfigTest, ReadsTheFileAndPrefixesMessages) {
  std::string path = JoinPath(dir_, "config.yaml");
  ASSERT_TRUE(WriteFileAtomic(path, std::string(kHeader) +
                                        "tlsCertFile: pki/kubelet.crt\nstaticPodURL: http://x/\n")
                  .ok());
  absl::StatusOr<KubeletConfig> c = LoadKubeletConfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(ByFlag(*c)["--tls-cert-file"], Values{dir_ + "/pki/kubelet.crt"});
  ASSERT_THAT(c->warnings, SizeIs(1));
  EXPECT_THAT(c->warnings[0],
              HasSubstr("kubelet config file " + path + ": fields not implemented"));

  absl::StatusOr<KubeletConfig> missing = LoadKubeletConfig(JoinPath(dir_, "nope.yaml"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("kubelet config file " + dir_ + "/nope.yaml"));

  ASSERT_TRUE(WriteFileAtomic(path, "apiVersion: v1\nkind: Pod\n").ok());
  absl::StatusOr<KubeletConfig> pod = LoadKubeletConfig(path);
  EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pod.status().message(), HasSubstr("kubelet config file " + path + ": apiVersion"));
}

// deploy/kubelet-config.yaml holds only fields berth honours: no warning.
TEST(KubeletConfigTest, SampleInDeployHasNoWarnings) {
  absl::StatusOr<KubeletConfig> c =
      LoadKubeletConfig(std::string(BERTH_SOURCE_DIR) + "/deploy/kubelet-config.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->warnings, IsEmpty());
  std::map<std::string, Values> f = ByFlag(*c);
  EXPECT_EQ(f["--client-ca-file"], Values{"/etc/kubernetes/pki/ca.crt"});
  EXPECT_EQ(f["--cluster-dns"], Values{"10.96.0.10"});
  EXPECT_EQ(f["--healthz-port"], Values{"10248"});
}

// /var/lib/kubelet/config.yaml exactly as kubeadm v1.36.3 writes it (the kubelet-config
// ConfigMap of a default ClusterConfiguration with serviceSubnet 10.96.0.0/16, patched with
// instance-config.yaml for `--cri-socket unix:///run/berth/berth.sock`): every field is read or
// named in the one "not implemented" warning, none is unknown (the fields kubeadm leaves at
// Go's zero value, "0s", {}, take berth's defaults).
TEST(KubeletConfigTest, KubeadmWrittenConfig) {
  KubeletConfig c = MustParse(R"(authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: unix:///run/berth/berth.sock
cpuManagerReconcilePeriod: 0s
crashLoopBackOff: {}
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s)");
  ASSERT_THAT(c.warnings, SizeIs(1));
  EXPECT_THAT(c.warnings[0], HasSubstr("fields not implemented by berth, ignored: "));
  EXPECT_THAT(c.warnings[0], HasSubstr("cgroupDriver (systemd; berth uses cgroupfs)"));
  std::map<std::string, Values> f = ByFlag(c);
  // staticPodPath is either read or named.
  bool static_pods_read = false;
  for (const KubeletConfigSetting& s : c.settings) static_pods_read |= s.field == "staticPodPath";
  if (!static_pods_read) {
    EXPECT_THAT(c.warnings[0], HasSubstr("staticPodPath"));
  }
  for (const auto& [flag, values] : std::map<std::string, Values>{
           {"--anonymous-auth", {"false"}},
           {"--authentication-token-webhook", {"true"}},
           {"--authorization-mode", {"Webhook"}},
           {"--client-ca-file", {"/etc/kubernetes/pki/ca.crt"}},
           {"--cluster-dns", {"10.96.0.10"}},
           {"--cluster-domain", {"cluster.local"}},
           {"--healthz-bind-address", {"127.0.0.1"}},
           {"--healthz-port", {"10248"}},
           {"--rotate-certificates", {"true"}},
       }) {
    EXPECT_EQ(f[flag], values) << flag;
  }
  // The zero-valued durations (cacheTTL: 0s, ...) keep the defaults: no setting for them.
  EXPECT_EQ(f.count("--authentication-token-webhook-cache-ttl"), 0u);
  EXPECT_EQ(f.count("--authorization-webhook-cache-authorized-ttl"), 0u);
}

// A CLI11 app with options declared as in kubelet/main.cc.
struct TestFlags {
  int port = 10250;
  int max_pods = 110;
  bool anonymous_auth = false;
  bool seccomp_default = false;
  std::vector<std::string> cluster_dns;
  std::string authorization_mode = "Webhook";
  std::string token_ttl = "2m0s";
  std::string resolv_conf = "/etc/resolv.conf";
};

void AddTestFlags(CLI::App* app, TestFlags* f) {
  app->add_option("--port", f->port);
  app->add_option("--max-pods", f->max_pods)->check(CLI::PositiveNumber);
  app->add_option("--anonymous-auth", f->anonymous_auth);
  app->add_flag("--seccomp-default", f->seccomp_default);
  app->add_option("--cluster-dns", f->cluster_dns)->delimiter(',');
  app->add_option("--authorization-mode", f->authorization_mode)
      ->check(CLI::IsMember({"Webhook", "AlwaysAllow"}));
  app->add_option("--authentication-token-webhook-cache-ttl", f->token_ttl)
      ->check(CLI::Validator(
          [](std::string& v) {
            return ParseGoDuration(v).ok() ? std::string() : "not a duration: " + v;
          },
          "DURATION"));
  app->add_option("--resolv-conf", f->resolv_conf);
}

absl::Status ParseAndApply(std::vector<std::string> args, const std::string& body, TestFlags* f) {
  CLI::App app;
  AddTestFlags(&app, f);
  std::vector<const char*> argv = {"berth"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  absl::StatusOr<KubeletConfig> c = ParseKubeletConfig(kHeader + body, "/etc/berth");
  if (!c.ok()) return c.status();
  return ApplyKubeletConfig(*c, &app);
}

// The file is the base; flags on the command line win; what neither sets keeps the default.
TEST(ApplyKubeletConfigTest, FlagsOverrideTheFile) {
  TestFlags f;
  absl::Status s = ParseAndApply({"--port=10300", "--cluster-dns", "10.0.0.10"}, R"(
port: 10260
clusterDNS: [10.96.0.10, 10.96.0.11]
seccompDefault: true
authentication: {anonymous: {enabled: true}, webhook: {cacheTTL: 1m30s}}
authorization: {mode: AlwaysAllow}
resolvConf: ""
)",
                                 &f);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(f.port, 10300);                              // flag wins
  EXPECT_THAT(f.cluster_dns, ElementsAre("10.0.0.10"));  // flag wins, no merging
  EXPECT_TRUE(f.seccomp_default);                        // from the file
  EXPECT_TRUE(f.anonymous_auth);
  EXPECT_EQ(f.token_ttl, "1m30s");
  EXPECT_EQ(f.authorization_mode, "AlwaysAllow");
  EXPECT_EQ(f.resolv_conf, "");
  EXPECT_EQ(f.max_pods, 110);  // neither: the default

  TestFlags g;
  ASSERT_TRUE(ParseAndApply({"--seccomp-default", "--anonymous-auth=false"},
                            "seccompDefault: false\nclusterDNS: [10.96.0.10, 10.96.0.11]\n"
                            "authentication: {anonymous: {enabled: true}}\n",
                            &g)
                  .ok());
  EXPECT_TRUE(g.seccomp_default);
  EXPECT_FALSE(g.anonymous_auth);
  EXPECT_THAT(g.cluster_dns, ElementsAre("10.96.0.10", "10.96.0.11"));
}

// A value the flag itself refuses is refused from the file too, naming field and flag.
TEST(ApplyKubeletConfigTest, FlagValidatorsApplyToTheFile) {
  TestFlags f;
  absl::Status s = ParseAndApply({}, "authorization: {mode: RBAC}\n", &f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("authorization.mode (--authorization-mode RBAC)"));
  // Given on the command line instead, the file's bad value is never looked at.
  TestFlags g;
  EXPECT_TRUE(
      ParseAndApply({"--authorization-mode=Webhook"}, "authorization: {mode: RBAC}\n", &g).ok());
}

TEST(ApplyKubeletConfigTest, SettingForAMissingFlagIsInternal) {
  TestFlags f;
  absl::Status s = ParseAndApply({}, "healthzPort: 10248\n", &f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("--healthz-port"));
}

// Every flag the file can set exists in the berth binary (its --help lists it).
TEST(ApplyKubeletConfigTest, BerthHasEveryMappedFlag) {
#ifndef BERTH_BINARY
  GTEST_SKIP() << "the berth binary is not built in this tree";
#else
  absl::StatusOr<RunResult> help = berth::Run({BERTH_BINARY, "--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  ASSERT_EQ(help->exit_code, 0) << help->err;
  KubeletConfig c = MustParse(kEveryMappedField);
  ASSERT_FALSE(c.settings.empty());
  for (const KubeletConfigSetting& s : c.settings) {
    // "  --flag TYPE  help", or the flag alone on its line when it is long.
    EXPECT_THAT(help->out, AnyOf(HasSubstr("  " + s.flag + " "), HasSubstr("  " + s.flag + "\n")))
        << s.field;
  }
#endif
}

// `berth --help` groups the flags as the kubelet's names and berth's own, and every flag the
// config file can set is a kubelet flag (the file is the kubelet's), except --log-root: berth's
// flag for podLogsDir, which upstream has only in the file.
TEST(ApplyKubeletConfigTest, HelpGroupsKubeletAndBerthFlags) {
#ifndef BERTH_BINARY
  GTEST_SKIP() << "the berth binary is not built in this tree";
#else
  absl::StatusOr<RunResult> help = berth::Run({BERTH_BINARY, "--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  const std::string& out = help->out;
  size_t kubelet = out.find("\nKubelet flags");
  size_t own = out.find("\nberth flags");
  ASSERT_NE(kubelet, std::string::npos) << out;
  ASSERT_NE(own, std::string::npos) << out;
  auto section_of = [&](const std::string& flag) {
    size_t at = out.find("  " + flag + " ");
    if (at == std::string::npos) at = out.find("  " + flag + "\n");
    if (at == std::string::npos) return std::string("absent");
    size_t start = std::max(kubelet < at ? kubelet : 0, own < at ? own : 0);
    return std::string(start == kubelet ? "kubelet" : start == own ? "berth" : "other");
  };
  KubeletConfig c = MustParse(kEveryMappedField);
  for (const KubeletConfigSetting& s : c.settings) {
    if (s.flag == "--log-root") continue;
    EXPECT_EQ(section_of(s.flag), "kubelet") << s.flag;
  }
  for (const char* flag : {"--cri-socket", "--runtime", "--cni-bin-dir", "--registry-mirror"}) {
    EXPECT_EQ(section_of(flag), "berth") << flag;
  }
#endif
}

}  // namespace
}  // namespace berth::kubelet
