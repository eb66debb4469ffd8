#include "kubelet/list_watch.h"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "kubelet/testing/scripted_api_client.h"

namespace berth::kubelet {
namespace {

using testing::ScriptedApiClient;

Json Pod(const std::string& name, const std::string& rv) {
  return {{"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", rv}}}};
}

// Records handler calls as strings ("add default/a 1", "update default/a 1->2", ...).
class Recorder {
 public:
  ListWatchHandlers Handlers() {
    return {
        .on_add = [this](const Json& o) { Push("add " + ListWatch::KeyOf(o) + " " + Rv(o)); },
        .on_update =
            [this](const Json& a, const Json& b) {
              Push("update " + ListWatch::KeyOf(b) + " " + Rv(a) + "->" + Rv(b));
            },
        .on_delete = [this](const Json& o) { Push("delete " + ListWatch::KeyOf(o)); },
        .on_synced = [this] { Push("synced"); },
    };
  }
  bool WaitForCount(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return calls_.size() >= n; });
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  static std::string Rv(const Json& o) { return o["metadata"]["resourceVersion"]; }
  void Push(std::string s) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(s));
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> calls_;
};

TEST(ListWatchTest, ListThenWatchThenRelistOnGone) {
  ScriptedApiClient client;
  std::atomic<int> lists{0};
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    EXPECT_EQ(r.verb, "GET");
    EXPECT_EQ(r.path, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1");
    if (lists++ == 0) {
      return Json{{"apiVersion", "v1"},
                  {"kind", "PodList"},
                  {"metadata", {{"resourceVersion", "10"}}},
                  {"items", {Pod("a", "1"), Pod("b", "2")}}};
    }
    // After 410: a changed, c appeared, b vanished (its delete was missed).
    return Json{{"kind", "PodList"},
                {"metadata", {{"resourceVersion", "30"}}},
                {"items", {Pod("a", "25"), Pod("c", "26")}}};
  };
  Recorder rec;
  ListWatch lw(&client, {.path = "/api/v1/pods", .field_selector = "spec.nodeName=n1"},
               rec.Handlers());
  lw.Start();
  ASSERT_TRUE(rec.WaitForCount(3));
  EXPECT_TRUE(lw.HasSynced());
  client.PushEvent("MODIFIED", Pod("a", "11"));
  client.PushEvent("BOOKMARK", {{"metadata", {{"resourceVersion", "15"}}}});
  ASSERT_TRUE(rec.WaitForCount(4));
  client.PushEvent("ERROR", {{"kind", "Status"}, {"code", 410}, {"message", "too old"}});
  ASSERT_TRUE(rec.WaitForCount(7));
  // Re-watches from the relisted resourceVersion.
  ASSERT_TRUE(client.WaitFor([](const std::vector<testing::ScriptedRequest>& rs) {
    for (const auto& r : rs) {
      if (r.verb == "WATCH" && r.path.find("resourceVersion=30") != std::string::npos) return true;
    }
    return false;
  }));
  lw.Stop();
  EXPECT_EQ(lw.ListCount(), 2);
  auto calls = rec.Calls();
  std::vector<std::string> want = {
      "add default/a 1",         "add default/b 2",  "synced",          "update default/a 1->11",
      "update default/a 11->25", "add default/c 26", "delete default/b"};
  EXPECT_EQ(calls, want);
  // The first watch resumed from the LIST's resourceVersion.
  auto reqs = client.Requests();
  bool found = false;
  for (const auto& r : reqs) {
    if (r.verb == "WATCH") {
      EXPECT_EQ(r.path, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&resourceVersion=10");
      found = true;
      break;
    }
  }
  EXPECT_TRUE(found);
}

TEST(ListWatchTest, RetriesListWithBackoffAndRewatchesAfterErrors) {
  ScriptedApiClient client;
  std::atomic<int> lists{0};
  client.handler = [&](const testing::ScriptedRequest& r) -> absl::StatusOr<Json> {
    if (lists++ < 2) return absl::UnavailableError("GET /api/v1/nodes: connection refused");
    return Json{{"metadata", {{"resourceVersion", "7"}}}, {"items", Json::array()}};
  };
  Recorder rec;
  ListWatch lw(&client, {.path = "/api/v1/nodes", .initial_backoff = std::chrono::milliseconds(10)},
               rec.Handlers());
  lw.Start();
  ASSERT_TRUE(rec.WaitForCount(1));
  EXPECT_EQ(lists.load(), 3);
  // A watch that fails with a transient error is retried without a relist.
  client.PushEvent("", {}, absl::UnavailableError("stream reset"));
  ASSERT_TRUE(client.WaitFor([&](const std::vector<testing::ScriptedRequest>& rs) {
    int watches = 0;
    for (const auto& r : rs) watches += r.verb == "WATCH";
    return watches >= 2;
  }));
  lw.Stop();
  EXPECT_EQ(lw.ListCount(), 3);
  EXPECT_EQ(rec.Calls(), std::vector<std::string>{"synced"});
}

TEST(ListWatchTest, StopInterruptsBackoffPromptly) {
  ScriptedApiClient client;
  client.handler = [](const testing::ScriptedRequest&) -> absl::StatusOr<Json> {
    return absl::UnavailableError("down");
  };
  ListWatch lw(&client,
               {.path = "/api/v1/pods",
                .initial_backoff = std::chrono::seconds(60),
                .max_backoff = std::chrono::seconds(60)},
               {});
  lw.Start();
  ASSERT_TRUE(
      client.WaitFor([](const std::vector<testing::ScriptedRequest>& rs) { return !rs.empty(); }));
  auto start = std::chrono::steady_clock::now();
  lw.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_FALSE(lw.HasSynced());
}

TEST(ListWatchTest, UrlQueryEscape) {
  EXPECT_EQ(UrlQueryEscape("spec.nodeName=a b,x!=y"), "spec.nodeName%3Da%20b%2Cx%21%3Dy");
}

}  // namespace
}  // namespace berth::kubelet
