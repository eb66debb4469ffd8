#include "kubelet/event_recorder.h"

#include <gtest/gtest.h>

#include "kubelet/testing/fake_api_client.h"

namespace berth::kubelet {
namespace {

const Json kPod = {{"metadata", {{"name", "web"}, {"namespace", "ns1"}, {"uid", "uid-1"}}}};

TEST(EventRecorderTest, PostsAKubeletEventAboutThePod) {
  testing::FakeApiClient api;
  api.OnPost("/api/v1/namespaces/ns1/events",
             [](const Json& b) -> absl::StatusOr<Json> { return b; });
  EventRecorder rec(&api, "node-1");
  rec.Start();
  rec.Record(kPod, "Warning", "Failed", "Error: ErrImagePull", "spec.containers{main}");
  auto req = api.WaitFor([](const testing::FakeApiClient::Request& r) { return r.verb == "POST"; });
  rec.Stop();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->path, "/api/v1/namespaces/ns1/events");
  const Json& ev = req->body;
  EXPECT_EQ(ev["reason"], "Failed");
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["message"], "Error: ErrImagePull");
  EXPECT_EQ(ev["involvedObject"]["kind"], "Pod");
  EXPECT_EQ(ev["involvedObject"]["uid"], "uid-1");
  EXPECT_EQ(ev["involvedObject"]["fieldPath"], "spec.containers{main}");
  EXPECT_EQ(ev["source"]["component"], "kubelet");
  EXPECT_EQ(ev["source"]["host"], "node-1");
  EXPECT_EQ(ev["metadata"]["namespace"], "ns1");
  EXPECT_EQ(ev["metadata"]["name"].get<std::string>().rfind("web.", 0), 0u);
}

TEST(EventRecorderTest, AFailedPostDoesNotStopLaterEvents) {
  testing::FakeApiClient api;  // no handler: the first POST fails with NotFound
  EventRecorder rec(&api, "node-1");
  rec.Start();
  rec.Record(kPod, "Normal", "Pulling", "Pulling image \"x\"");
  ASSERT_TRUE(
      api.WaitFor([](const testing::FakeApiClient::Request& r) { return r.verb == "POST"; }));
  api.OnPost("/api/v1/namespaces/ns1/events",
             [](const Json& b) -> absl::StatusOr<Json> { return b; });
  rec.Record(kPod, "Normal", "Pulled", "Successfully pulled image \"x\"");
  auto second = api.WaitFor([](const testing::FakeApiClient::Request& r) {
    return r.verb == "POST" && r.body["reason"] == "Pulled";
  });
  rec.Stop();
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->body["involvedObject"].contains("fieldPath"));
}

}  // namespace
}  // namespace berth::kubelet
