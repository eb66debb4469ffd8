#include "kubelet/pod_util.h"

#include <gtest/gtest.h>

namespace berth::kubelet {
namespace {

api::Pod Typed(const Json& j) {
  absl::StatusOr<api::Pod> p = api::ParsePod(j);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : api::Pod{};
}

Json PodWithResources(const Json& requests, const Json& limits) {
  Json c = {{"name", "c"}, {"resources", Json::object()}};
  if (!requests.is_null()) c["resources"]["requests"] = requests;
  if (!limits.is_null()) c["resources"]["limits"] = limits;
  return {{"metadata", {{"uid", "U"}}}, {"spec", {{"containers", Json::array({c})}}}};
}

TEST(PodQosClassTest, GuaranteedBurstableBestEffort) {
  Json both = {{"cpu", "500m"}, {"memory", "64Mi"}};
  EXPECT_EQ(PodQosClass(Typed(PodWithResources(nullptr, nullptr))), "BestEffort");
  EXPECT_EQ(PodQosClass(Typed(PodWithResources(nullptr, both))),
            "Guaranteed");  // requests default to limits
  EXPECT_EQ(PodQosClass(Typed(PodWithResources(both, both))), "Guaranteed");
  EXPECT_EQ(PodQosClass(Typed(PodWithResources({{"cpu", "100m"}}, both))), "Burstable");
  EXPECT_EQ(PodQosClass(Typed(PodWithResources({{"memory", "1Gi"}}, nullptr))), "Burstable");
  EXPECT_EQ(PodCgroupParent(Typed(PodWithResources(nullptr, both)), "/kubepods"), "/kubepods/podU");
  EXPECT_EQ(PodCgroupParent(Typed(PodWithResources({{"cpu", "1"}}, nullptr)), "/kubepods"),
            "/kubepods/burstable/podU");
  EXPECT_EQ(PodCgroupParent(Typed(PodWithResources(nullptr, nullptr)), "/kubepods"),
            "/kubepods/besteffort/podU");
}

TEST(ExpandEnvRefsTest, ExpandsKnownKeepsUnknownAndEscapes) {
  std::map<std::string, std::string> env = {{"A", "1"}, {"B", "two"}};
  EXPECT_EQ(ExpandEnvRefs("$(A)-$(B)", env), "1-two");
  EXPECT_EQ(ExpandEnvRefs("$(C) $$(A) $", env), "$(C) $(A) $");
}

TEST(ResolveFieldRefTest, PodFields) {
  Json pod = Json::parse(
      R"({"metadata": {"name": "n", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
                             "spec": {"nodeName": "node"}})");
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.namespace", "", ""), "ns");
  EXPECT_EQ(*ResolveFieldRef(pod, "spec.nodeName", "", ""), "node");
  EXPECT_EQ(*ResolveFieldRef(pod, "status.podIP", "10.0.0.1", ""), "10.0.0.1");
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.labels['app']", "", ""), "x");
  EXPECT_FALSE(ResolveFieldRef(pod, "spec.bogus", "", "").ok());
}

TEST(ResolveFieldRefTest, TypedPodFields) {
  api::Pod pod = Typed(Json::parse(R"({"metadata": {"name": "n", "namespace": "ns", "uid": "u",
                                        "labels": {"app": "x", "tier": "web"}, "annotations": {"a": "b"}},
                                       "spec": {"nodeName": "node", "serviceAccountName": "sa"}})"));
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.name", "", ""), "n");
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.uid", "", ""), "u");
  EXPECT_EQ(*ResolveFieldRef(pod, "spec.serviceAccountName", "", ""), "sa");
  EXPECT_EQ(*ResolveFieldRef(pod, "status.hostIP", "", "192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.annotations['a']", "", ""), "b");
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.labels['none']", "", ""), "");
  EXPECT_EQ(*ResolveFieldRef(pod, "metadata.labels", "", ""), "app=\"x\"\ntier=\"web\"");
  EXPECT_FALSE(ResolveFieldRef(pod, "spec.bogus", "", "").ok());
}

TEST(ResolveSeccompProfileTest, ContainerThenPodThenNodeDefault) {
  using T = SeccompProfile::Type;
  auto container = [](const std::string& type, const std::string& local = "") {
    api::Container c;
    if (!type.empty()) {
      c.security_context = api::SecurityContext{};
      c.security_context->seccomp_profile = api::SeccompProfile{type, local};
    }
    return c;
  };
  api::Pod pod;
  pod.spec.security_context.seccomp_profile = api::SeccompProfile{"RuntimeDefault", ""};
  const api::Container plain = container("");
  // The pod's profile applies to a container without its own.
  EXPECT_EQ(ResolveSeccompProfile(pod, plain, false, "/r/seccomp")->type, T::kRuntimeDefault);
  // The container's own wins, Localhost under the profile root.
  auto local =
      ResolveSeccompProfile(pod, container("Localhost", "p/audit.json"), false, "/r/seccomp");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->type, T::kLocalhost);
  EXPECT_EQ(local->localhost_path, "/r/seccomp/p/audit.json");
  EXPECT_EQ(ResolveSeccompProfile(pod, container("Unconfined"), true, "/r")->type, T::kUnconfined);
  // Neither: the node's default.
  const api::Pod bare;
  EXPECT_EQ(ResolveSeccompProfile(bare, plain, false, "/r")->type, T::kUnconfined);
  EXPECT_EQ(ResolveSeccompProfile(bare, plain, true, "/r")->type, T::kRuntimeDefault);
  // Localhost without a path, and unknown types, are config errors.
  EXPECT_EQ(ResolveSeccompProfile(bare, container("Localhost"), false, "/r").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ResolveSeccompProfile(bare, container("Strict"), false, "/r").ok());
}

TEST(Rfc3339Test, RoundTrip) {
  absl::Time t = absl::FromUnixSeconds(1704067200);
  EXPECT_EQ(FormatRfc3339(t), "2024-01-01T00:00:00Z");
  EXPECT_EQ(*ParseRfc3339("2024-01-01T00:00:00Z"), t);
  EXPECT_EQ(*ParseRfc3339("2024-01-01T00:00:00.5Z"), t + absl::Milliseconds(500));
  EXPECT_FALSE(ParseRfc3339("yesterday").has_value());
}

TEST(FindContainerTest, ContainersThenInitContainers) {
  Json pod = Json::parse(
      R"({"spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "setup"}]}})");
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
  auto get = [&](const Json& container, const std::string& resource,
                 const char* divisor = nullptr) {
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

// The typed form: divisors already defaulted by the parser (absent or "0" is 1).
TEST(ResolveResourceFieldRefTest, TypedContainer) {
  api::Pod pod =
      Typed(Json::parse(R"({"metadata": {"uid": "u"}, "spec": {"containers": [{"name": "app",
      "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
      "env": [{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
              {"name": "B", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
              {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
              {"name": "D", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "0"}}},
              {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "100m"}}},
              {"name": "F", "valueFrom": {"resourceFieldRef": {"resource": "limits.hugepages-2Mi"}}}]}]}})"));
  const api::Container& c = pod.spec.containers[0];
  NodeResources node{2, 8.0 * (1 << 30), 100e9};
  auto get = [&](size_t i) {
    auto v = ResolveResourceFieldRef(c, *c.env[i].value_from->resource_field_ref, node);
    return v.ok() ? *v : "error: " + std::string(v.status().message());
  };
  EXPECT_EQ(get(0), "1");
  EXPECT_EQ(get(1), "500");
  EXPECT_EQ(get(2), "128");
  EXPECT_EQ(get(3), "134217728");  // the request defaults to the limit (SetDefaults_Pod)
  EXPECT_EQ(get(4), "3");          // 250m / 100m = 2.5, rounded up
  EXPECT_EQ(get(5).rfind("error: unsupported", 0), 0u);
}

}  // namespace
}  // namespace berth::kubelet
