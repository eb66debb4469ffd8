#include "base/url.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace berth {
namespace {

struct Case {
  std::string url;
  // Expected fields; ignored when `ok` is false.
  bool ok = true;
  std::string scheme, host;
  int port = 0, effective_port = 0;
  std::string path, query, target, origin, host_port, userinfo = "", fragment = "";
};

TEST(ParseUrl, Table) {
  const std::vector<Case> cases = {
      {"https://registry-1.docker.io/v2/library/busybox/manifests/1.36", true, "https",
       "registry-1.docker.io", 0, 443, "/v2/library/busybox/manifests/1.36", "",
       "/v2/library/busybox/manifests/1.36", "https://registry-1.docker.io",
       "registry-1.docker.io"},
      {"http://127.0.0.1:5000", true, "http", "127.0.0.1", 5000, 5000, "", "", "/",
       "http://127.0.0.1:5000", "127.0.0.1:5000"},
      {"HTTP://Host.Example:8080/a/b/?x=1&y=%2F", true, "http", "Host.Example", 8080, 8080, "/a/b/",
       "x=1&y=%2F", "/a/b/?x=1&y=%2F", "http://Host.Example:8080", "Host.Example:8080"},
      {"https://auth.docker.io/token?service=registry.docker.io&scope=repository:library/x:pull",
       true, "https", "auth.docker.io", 0, 443, "/token",
       "service=registry.docker.io&scope=repository:library/x:pull",
       "/token?service=registry.docker.io&scope=repository:library/x:pull",
       "https://auth.docker.io", "auth.docker.io"},
      {"https://[fd00::1]:6443/api/v1/", true, "https", "fd00::1", 6443, 6443, "/api/v1/", "",
       "/api/v1/", "https://[fd00::1]:6443", "[fd00::1]:6443"},
      {"http://[::1]/exec/abc", true, "http", "::1", 0, 80, "/exec/abc", "", "/exec/abc",
       "http://[::1]", "[::1]"},
      {"https://h?only=query", true, "https", "h", 0, 443, "", "only=query", "/?only=query",
       "https://h", "h"},
      {"http://h:/p", true, "http", "h", 0, 80, "/p", "", "/p", "http://h",
       "h"},  // empty port: none
      {"https://user:pw@h:8443/p#frag", true, "https", "h", 8443, 8443, "/p", "", "/p",
       "https://h:8443", "h:8443", "user:pw", "frag"},
      {"unix:///run/berth/berth.sock", false},  // no host
      {"registry.example/x", false},            // not absolute
      {"://h/x", false},                        // no scheme
      {"1http://h", false},                     // bad scheme
      {"http://", false},
      {"http://:80/x", false},
      {"http://[::1/x", false},     // unterminated [
      {"http://[::1]x:80", false},  // junk after ]
      {"http://h:http", false},
      {"http://h:0", false},
      {"http://h:65536", false},
      {"http://h:-1", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    absl::StatusOr<Url> u = ParseUrl(c.url);
    if (!c.ok) {
      ASSERT_FALSE(u.ok());
      EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(u.status().message().find(c.url), std::string::npos) << u.status();
      continue;
    }
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ(u->scheme, c.scheme);
    EXPECT_EQ(u->host, c.host);
    EXPECT_EQ(u->port, c.port);
    EXPECT_EQ(u->EffectivePort(), c.effective_port);
    EXPECT_EQ(u->path, c.path);
    EXPECT_EQ(u->query, c.query);
    EXPECT_EQ(u->Target(), c.target);
    EXPECT_EQ(u->Origin(), c.origin);
    EXPECT_EQ(u->HostPort(), c.host_port);
    EXPECT_EQ(u->userinfo, c.userinfo);
    EXPECT_EQ(u->fragment, c.fragment);
  }
}

TEST(Url, EffectivePortOfOtherSchemes) {
  EXPECT_EQ(ParseUrl("wss://h/x")->EffectivePort(), 443);
  EXPECT_EQ(ParseUrl("ws://h/x")->EffectivePort(), 80);
  EXPECT_EQ(ParseUrl("gopher://h/x")->EffectivePort(), 0);
}

}  // namespace
}  // namespace berth
