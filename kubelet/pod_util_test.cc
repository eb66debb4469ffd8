#include "kubelet/pod_util.h"

#include <gtest/gtest.h>

namespace berth::kubelet {
namespace {

Json PodWithResources(const Json& requests, const Json& limits) {
  Json c = {{"name", "c"}, {"resources", Json::object()}};
  if (!requests.is_null()) c["resources"]["requests"] = requests;
  if (!limits.is_null()) c["resources"]["limits"] = limits;
  return {{"metadata", {{"uid", "U"}}}, {"spec", {{"containers", Json::array({c})}}}};
}

TEST(PodQosClassTest, GuaranteedBurstableBestEffort) {
  Json both = {{"cpu", "500m"}, {"memory", "64Mi"}};
  EXPECT_EQ(PodQosClass(PodWithResources(nullptr, nullptr)), "BestEffort");
  EXPECT_EQ(PodQosClass(PodWithResources(nullptr, both)), "Guaranteed");  // requests default to limits
  EXPECT_EQ(PodQosClass(PodWithResources(both, both)), "Guaranteed");
  EXPECT_EQ(PodQosClass(PodWithResources({{"cpu", "100m"}}, both)), "Burstable");
  EXPECT_EQ(PodQosClass(PodWithResources({{"memory", "1Gi"}}, nullptr)), "Burstable");
  EXPECT_EQ(PodCgroupParent(PodWithResources(nullptr, both), "/kubepods"), "/kubepods/podU");
  EXPECT_EQ(PodCgroupParent(PodWithResources({{"cpu", "1"}}, nullptr), "/kubepods"), "/kubepods/burstable/podU");
  EXPECT_EQ(PodCgroupParent(PodWithResources(nullptr, nullptr), "/kubepods"), "/kubepods/besteffort/podU");
}

TEST(ExpandEnvRefsTest, ExpandsKnownKeepsUnknownAndEscapes) {
  std::map<std::string, std::string> env = {{"A", "1"}, {"B", "two"}};
  EXPECT_EQ(ExpandEnvRefs("$(A)-$(B)", env), "1-two");
  EXPECT_EQ(ExpandEnvRefs("$(C) $$(A) $", env), "$(C) $(A) $");
}

TEST(ResolveFieldRefTest, PodFields) {
  Json pod = Json::parse(R"({"metadata": {"name": "n", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
                             "spec": {"nodeName": "node"}})");
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.namespace", "", ""), "ns");
  EXPECT_EQ(*ResolveFieldRef(pod, "spec.nodeName", "", ""), "node");
  EXPECT_EQ(*ResolveFieldRef(pod, "status.podIP", "10.0.0.1", ""), "10.0.0.1");
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.labels['app']", "", ""), "x");
  EXPECT_FALSE(ResolveFieldRef(pod, "spec.bogus", "", "").ok());
}

TEST(ResolveSeccompProfileTest, ContainerThenPodThenNodeDefault) {
  using T = SeccompProfile::Type;
  Json pod = Json::parse(R"({"spec": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}})");
  Json plain = Json::parse(R"({"name": "a"})");
  Json own = Json::parse(
      R"({"name": "b", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p/audit.json"}}})");
  Json unconfined = Json::parse(R"({"name": "c", "securityContext": {"seccompProfile": {"type": "Unconfined"}}})");
  // The pod's profile applies to a container without its own.
  EXPECT_EQ(ResolveSeccompProfile(pod, plain, false, "/r/seccomp")->type, T::kRuntimeDefault);
  // The container's own wins, Localhost under the profile root.
  auto local = ResolveSeccompProfile(pod, own, false, "/r/seccomp");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->type, T::kLocalhost);
  EXPECT_EQ(local->localhost_path, "/r/seccomp/p/audit.json");
  EXPECT_EQ(ResolveSeccompProfile(pod, unconfined, true, "/r")->type, T::kUnconfined);
  // Neither: the node's default.
  Json bare = Json::parse(R"({"spec": {}})");
  EXPECT_EQ(ResolveSeccompProfile(bare, plain, false, "/r")->type, T::kUnconfined);
  EXPECT_EQ(ResolveSeccompProfile(bare, plain, true, "/r")->type, T::kRuntimeDefault);
  // Localhost without a path, and unknown types, are config errors.
  Json no_path = Json::parse(R"({"name": "d", "securityContext": {"seccompProfile": {"type": "Localhost"}}})");
  EXPECT_EQ(ResolveSeccompProfile(bare, no_path, false, "/r").status().code(), absl::StatusCode::kInvalidArgument);
  Json bogus = Json::parse(R"({"name": "e", "securityContext": {"seccompProfile": {"type": "Strict"}}})");
  EXPECT_FALSE(ResolveSeccompProfile(bare, bogus, false, "/r").ok());
}

TEST(Rfc3339Test, RoundTrip) {
  absl::Time t = absl::FromUnixSeconds(1704067200);
  EXPECT_EQ(FormatRfc3339(t), "2024-01-01T00:00:00Z");
  EXPECT_EQ(*ParseRfc3339("2024-01-01T00:00:00Z"), t);
  EXPECT_EQ(*ParseRfc3339("2024-01-01T00:00:00.5Z"), t + absl::Milliseconds(500));
  EXPECT_FALSE(ParseRfc3339("yesterday").has_value());
}

TEST(FindContainerTest, ContainersThenInitContainers) {
  Json pod = Json::parse(R"({"spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "setup"}]}})");
  ASSERT_NE(FindContainer(pod, "setup"), nullptr);
  EXPECT_EQ(FindContainer(pod, "setup"), &pod["spec"]["initContainers"][0]);  // into the pod
  EXPECT_EQ(FindContainer(pod, "app"), &pod["spec"]["containers"][0]);
  EXPECT_EQ(FindContainer(pod, "nope"), nullptr);
  EXPECT_EQ(FindContainer(Json::object(), "app"), nullptr);
}

// upstream ExtractContainerResourceValue: quantity over divisor, rounded up (CPU in
// millicores); an unset limit is the node's allocatable, an unset request 0.
TEST(ResolveResourceFieldRefTest, LimitsRequestsDivisorsAndNodeDefaults) {
  Json c = Json::parse(R"({"name": "app", "resources": {
      "limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}}})");
  NodeResources node{2, 8.0 * (1 << 30), 100e9};
  auto get = [&](const Json& container, const std::string& resource, const char* divisor = nullptr) {
    Json ref = {{"resource", resource}};
    if (divisor != nullptr) ref["divisor"] = divisor;
    auto v = ResolveResourceFieldRef(container, ref, node);
    return v.ok() ? *v : "error: " + std::string(v.status().message());
  };
  EXPECT_EQ(get(c, "limits.cpu"), "1");  // 0.5 core, rounded up
  EXPECT_EQ(get(c, "limits.cpu", "1m"), "500");
  EXPECT_EQ(get(c, "requests.cpu", "1m"), "250");
  EXPECT_EQ(get(c, "limits.memory"), "134217728");
  EXPECT_EQ(get(c, "limits.memory", "1Mi"), "128");
  EXPECT_EQ(get(c, "limits.memory", "1G"), "1");  // 0.134 G, rounded up
  EXPECT_EQ(get(c, "requests.memory"), "0");
  EXPECT_EQ(get(c, "limits.ephemeral-storage"), "100000000000");
  Json none = {{"name", "free"}};
  EXPECT_EQ(get(none, "limits.cpu"), "2");
  EXPECT_EQ(get(none, "limits.memory", "1Mi"), "8192");
  EXPECT_EQ(get(c, "limits.hugepages-2Mi").rfind("error: unsupported", 0), 0u);
  EXPECT_EQ(get(c, "cpu").rfind("error: unsupported", 0), 0u);
  // The API server stores an absent divisor as "0": treated as 1, as upstream.
  EXPECT_EQ(get(c, "limits.cpu", "0"), "1");
  EXPECT_EQ(get(c, "limits.memory", "0"), "134217728");
  EXPECT_EQ(get(c, "limits.cpu", "-1").rfind("error:", 0), 0u);
  EXPECT_EQ(get(c, "limits.cpu", "lots").rfind("error:", 0), 0u);
}

}  // namespace
}  // namespace berth::kubelet
