#include "cri/streaming/request_cache.h"

#include <set>

#include "gtest/gtest.h"

namespace berth::cri::streaming {
namespace {

using std::chrono::seconds;

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  RequestCache::Clock fn() {
    return [this] { return now; };
  }
};

StreamRequest Exec(const std::string& id) {
  StreamRequest r;
  r.kind = StreamRequest::Kind::kExec;
  r.exec.set_container_id(id);
  return r;
}

TEST(RequestCache, TokenIsSingleUse) {
  FakeClock clock;
  RequestCache cache(std::chrono::minutes(1), 10, clock.fn());
  auto t = cache.Insert(Exec("c1"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->size(), 22u);
  auto r = cache.Consume(*t);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->exec.container_id(), "c1");
  EXPECT_FALSE(cache.Consume(*t).has_value());  // replay
  EXPECT_FALSE(cache.Consume("unknown").has_value());
}

TEST(RequestCache, TokenExpiresAfterTtl) {
  FakeClock clock;
  RequestCache cache(std::chrono::minutes(1), 10, clock.fn());
  auto t1 = cache.Insert(Exec("c1"));
  clock.now += seconds(30);
  auto t2 = cache.Insert(Exec("c2"));
  ASSERT_TRUE(t1.ok() && t2.ok());
  clock.now += seconds(31);  // t1 is 61 s old, t2 31 s
  EXPECT_FALSE(cache.Consume(*t1).has_value());
  EXPECT_EQ(cache.size(), 1u);
  auto r2 = cache.Consume(*t2);
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->exec.container_id(), "c2");
}

TEST(RequestCache, BoundedAndTokensDistinct) {
  FakeClock clock;
  RequestCache cache(std::chrono::minutes(1), 3, clock.fn());
  std::set<std::string> tokens;
  for (int i = 0; i < 3; ++i) {
    auto t = cache.Insert(Exec("c"));
    ASSERT_TRUE(t.ok());
    tokens.insert(*t);
  }
  EXPECT_EQ(tokens.size(), 3u);
  auto full = cache.Insert(Exec("c"));
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  clock.now += std::chrono::minutes(2);  // all expired: room again
  EXPECT_TRUE(cache.Insert(Exec("c")).ok());
}

}  // namespace
}  // namespace berth::cri::streaming
