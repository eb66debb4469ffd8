#include "kubelet/server/auth.h"

#include <gtest/gtest.h>

#include "kubelet/testing/fake_api_client.h"

namespace berth::kubelet::server {
namespace {

using testing::FakeApiClient;

constexpr char kTokenReviews[] = "/apis/authentication.k8s.io/v1/tokenreviews";
constexpr char kSars[] = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

std::vector<std::string> Subresources(const std::vector<RequestAttributes>& attrs) {
  std::vector<std::string> out;
  for (const auto& a : attrs) out.push_back(a.subresource);
  return out;
}

TEST(AttributesFor, MapsPathsAndVerbsLikeTheKubelet) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Subresources(AttributesFor("GET", "/stats/summary", "n")), V{"stats"});
  EXPECT_EQ(Subresources(AttributesFor("GET", "/stats", "n")), V{"stats"});
  EXPECT_EQ(Subresources(AttributesFor("GET", "/statsx", "n")), V{"proxy"});
  EXPECT_EQ(Subresources(AttributesFor("GET", "/metrics/cadvisor", "n")), V{"metrics"});
  EXPECT_EQ(Subresources(AttributesFor("GET", "/logs/syslog", "n")), V{"log"});
  EXPECT_EQ(Subresources(AttributesFor("GET", "/containerLogs/a/b/c", "n")), V{"proxy"});
  EXPECT_EQ(Subresources(AttributesFor("GET", "/pods", "n")), (V{"pods", "proxy"}));
  EXPECT_EQ(Subresources(AttributesFor("GET", "/healthz", "n")), (V{"healthz", "proxy"}));
  auto exec = AttributesFor("POST", "/exec/ns/pod/c", "node1");
  ASSERT_EQ(exec.size(), 1u);
  EXPECT_EQ(exec[0].verb, "create");
  EXPECT_EQ(exec[0].subresource, "proxy");
  EXPECT_EQ(exec[0].node_name, "node1");
  EXPECT_EQ(AttributesFor("GET", "/pods", "n")[0].verb, "get");
  EXPECT_EQ(AttributesFor("PUT", "/x", "n")[0].verb, "update");
  EXPECT_EQ(AttributesFor("PATCH", "/x", "n")[0].verb, "patch");
  EXPECT_EQ(AttributesFor("DELETE", "/x", "n")[0].verb, "delete");
}

TEST(Auth, CertificateUserWinsAndNoCredentialsIs401) {
  FakeApiClient api;
  Auth auth(&api, {.token_webhook = true});
  UserInfo cert{"kube-apiserver-kubelet-client", "", {"system:masters"}, {}};
  auto u = auth.Authenticate(cert, "Bearer ignored");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->name, "kube-apiserver-kubelet-client");
  EXPECT_TRUE(api.Requests().empty());
  EXPECT_TRUE(absl::IsUnauthenticated(auth.Authenticate(std::nullopt, "").status()));
  Auth anon(&api, {.anonymous = true});
  auto a = anon.Authenticate(std::nullopt, "");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->name, "system:anonymous");
  EXPECT_EQ(a->groups, std::vector<std::string>{"system:unauthenticated"});
}

TEST(Auth, TokenReviewIsPostedAndCached) {
  FakeApiClient api;
  int reviews = 0;
  api.OnPost(kTokenReviews, [&](const Json& body) -> absl::StatusOr<Json> {
    ++reviews;
    EXPECT_EQ(body["kind"], "TokenReview");
    if (body["spec"]["token"] == "good") {
      return Json{{"status",
                   {{"authenticated", true},
                    {"user",
                     {{"username", "system:serviceaccount:ns:sa"},
                      {"uid", "u1"},
                      {"groups", {"system:serviceaccounts"}},
                      {"extra", {{"k", {"v"}}}}}}}}};
    }
    return Json{{"status", {{"authenticated", false}}}};
  });
  Auth auth(&api, {.token_webhook = true});
  for (int i = 0; i < 3; ++i) {
    auto u = auth.Authenticate(std::nullopt, "Bearer good");
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ(u->name, "system:serviceaccount:ns:sa");
    EXPECT_EQ(u->uid, "u1");
    EXPECT_EQ(u->extra["k"], std::vector<std::string>{"v"});
    EXPECT_TRUE(absl::IsUnauthenticated(auth.Authenticate(std::nullopt, "Bearer bad").status()));
  }
  EXPECT_EQ(reviews, 2);  // one per token, then cached
  // Without the token webhook a token is not looked at.
  Auth no_webhook(&api, {});
  EXPECT_TRUE(
      absl::IsUnauthenticated(no_webhook.Authenticate(std::nullopt, "Bearer good").status()));
  // A failing TokenReview is Unavailable, not a silent 401.
  FakeApiClient broken;
  Auth b(&broken, {.token_webhook = true});
  EXPECT_TRUE(absl::IsUnavailable(b.Authenticate(std::nullopt, "Bearer x").status()));
}

TEST(Auth, SubjectAccessReviewDecidesAndIsCached) {
  FakeApiClient api;
  std::vector<Json> seen;
  api.OnPost(kSars, [&](const Json& body) -> absl::StatusOr<Json> {
    seen.push_back(body);
    const Json& ra = body["spec"]["resourceAttributes"];
    bool allowed = body["spec"]["user"] == "admin" || ra["subresource"] == "pods";
    return Json{{"status", {{"allowed", allowed}}}};
  });
  Auth auth(&api, {});
  UserInfo admin{"admin", "", {"g"}, {}};
  UserInfo nobody{"nobody", "", {}, {}};
  EXPECT_TRUE(auth.Authorize(admin, AttributesFor("POST", "/exec/a/b/c", "node1")).ok());
  ASSERT_EQ(seen.size(), 1u);
  const Json& ra = seen[0]["spec"]["resourceAttributes"];
  EXPECT_EQ(ra["verb"], "create");
  EXPECT_EQ(ra["resource"], "nodes");
  EXPECT_EQ(ra["subresource"], "proxy");
  EXPECT_EQ(ra["name"], "node1");
  EXPECT_EQ(seen[0]["spec"]["groups"], Json::array({"g"}));
  EXPECT_TRUE(auth.Authorize(admin, AttributesFor("POST", "/exec/a/b/c", "node1")).ok());
  EXPECT_EQ(seen.size(), 1u);  // cached

  absl::Status denied = auth.Authorize(nobody, AttributesFor("GET", "/stats/summary", "node1"));
  EXPECT_TRUE(absl::IsPermissionDenied(denied));
  EXPECT_EQ(denied.message(),
            "Forbidden (user=nobody, verb=get, resource=nodes, subresource(s)=[stats])");
  // /pods: "pods" is tried first and allows.
  EXPECT_TRUE(auth.Authorize(nobody, AttributesFor("GET", "/pods", "node1")).ok());

  Auth always(nullptr, {.authorize_webhook = false});
  EXPECT_TRUE(always.Authorize(nobody, AttributesFor("GET", "/stats/summary", "n")).ok());
  FakeApiClient broken;
  Auth b(&broken, {});
  EXPECT_TRUE(absl::IsUnavailable(b.Authorize(admin, AttributesFor("GET", "/pods", "n"))));
}

TEST(Auth, CacheEntriesExpireAfterTheirTtl) {
  FakeApiClient api;
  int token_reviews = 0, sars = 0;
  api.OnPost(kTokenReviews, [&](const Json& body) -> absl::StatusOr<Json> {
    ++token_reviews;
    bool good = body["spec"]["token"] == "good";
    return Json{{"status", {{"authenticated", good}, {"user", {{"username", "sa"}}}}}};
  });
  api.OnPost(kSars, [&](const Json& body) -> absl::StatusOr<Json> {
    ++sars;
    return Json{{"status", {{"allowed", body["spec"]["user"] == "admin"}}}};
  });
  absl::Time now = absl::FromUnixSeconds(1000);
  Auth auth(&api, {.token_webhook = true,
                   .token_ttl = absl::Seconds(120),
                   .allowed_ttl = absl::Seconds(300),
                   .denied_ttl = absl::Seconds(30),
                   .now = [&] { return now; }});
  UserInfo admin{"admin", "", {}, {}};
  UserInfo nobody{"nobody", "", {}, {}};
  auto exec = AttributesFor("POST", "/exec/a/b/c", "n");
  auto authorize = [&](const UserInfo& u) { return auth.Authorize(u, exec).ok(); };
  auto authenticate = [&](const char* h) { return auth.Authenticate(std::nullopt, h).ok(); };

  EXPECT_TRUE(authenticate("Bearer good"));
  EXPECT_FALSE(authenticate("Bearer bad"));
  EXPECT_TRUE(authorize(admin));
  EXPECT_FALSE(authorize(nobody));
  EXPECT_EQ(token_reviews, 2);
  EXPECT_EQ(sars, 2);

  now += absl::Seconds(29);  // everything still cached
  EXPECT_TRUE(authenticate("Bearer good"));
  EXPECT_FALSE(authenticate("Bearer bad"));
  EXPECT_TRUE(authorize(admin));
  EXPECT_FALSE(authorize(nobody));
  EXPECT_EQ(token_reviews, 2);
  EXPECT_EQ(sars, 2);

  now += absl::Seconds(2);  // 31 s: the denial expired, the rest did not
  EXPECT_FALSE(authorize(nobody));
  EXPECT_TRUE(authorize(admin));
  EXPECT_EQ(sars, 3);
  EXPECT_TRUE(authenticate("Bearer good"));
  EXPECT_FALSE(authenticate("Bearer bad"));  // rejected tokens live the token TTL
  EXPECT_EQ(token_reviews, 2);

  now += absl::Seconds(90);  // 121 s: both token answers expired
  EXPECT_TRUE(authenticate("Bearer good"));
  EXPECT_FALSE(authenticate("Bearer bad"));
  EXPECT_EQ(token_reviews, 4);
  EXPECT_TRUE(authorize(admin));
  EXPECT_EQ(sars, 3);

  now += absl::Seconds(180);  // 301 s: the allowed decision expired
  EXPECT_TRUE(authorize(admin));
  EXPECT_EQ(sars, 4);
}

TEST(Auth, ZeroTtlDisablesTheCacheAndFailuresAreNotCached) {
  FakeApiClient api;
  int sars = 0;
  bool fail = true;
  api.OnPost(kSars, [&](const Json&) -> absl::StatusOr<Json> {
    ++sars;
    if (fail) return absl::UnavailableError("connection refused");
    return Json{{"status", {{"allowed", true}}}};
  });
  UserInfo admin{"admin", "", {}, {}};
  auto pods = AttributesFor("GET", "/stats/summary", "n");
  Auth uncached(&api, {.allowed_ttl = absl::ZeroDuration(), .denied_ttl = absl::ZeroDuration()});
  EXPECT_TRUE(absl::IsUnavailable(uncached.Authorize(admin, pods)));
  fail = false;
  EXPECT_TRUE(uncached.Authorize(admin, pods).ok());  // the failure was not remembered
  EXPECT_TRUE(uncached.Authorize(admin, pods).ok());
  EXPECT_EQ(sars, 3);
}

}  // namespace
}  // namespace berth::kubelet::server
