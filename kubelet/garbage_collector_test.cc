#include "kubelet/garbage_collector.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cri/testing/fake_cri.h"
#include "gtest/gtest.h"

namespace berth::kubelet {
namespace {

namespace v1 = cri::v1;
using cri::testing::FakeImageService;
using cri::testing::FakeRuntimeService;

constexpr int64_t kMi = 1 << 20;

v1::Image MakeImage(const std::string& id, const std::string& tag, int64_t size,
                    bool pinned = false) {
  v1::Image i;
  i.set_id(id);
  i.add_repo_tags(tag);
  i.set_size(size);
  i.set_pinned(pinned);
  return i;
}

std::vector<std::string> ImageIds(FakeImageService* images) {
  std::vector<std::string> out;
  absl::StatusOr<v1::ListImagesResponse> list = images->ListImages(v1::ListImagesRequest());
  if (!list.ok()) return {"error: " + list.status().ToString()};
  for (const v1::Image& i : list->images()) out.push_back(i.id());
  std::sort(out.begin(), out.end());
  return out;
}

struct ImageGcFixture {
  FakeImageService images;
  FakeRuntimeService runtime;
  FsCapacity fs{1000 * kMi, 100 * kMi};  // 90% used
  absl::Time now = absl::FromUnixSeconds(1700000000);
  ImageGcManager Make(ImageGcPolicy policy) {
    return ImageGcManager(
        &images, &runtime, policy, [this]() -> absl::StatusOr<FsCapacity> { return fs; },
        [this] { return now; });
  }
};

TEST(ImageGc, PolicyValidation) {
  EXPECT_TRUE(ValidateImageGcPolicy({}).ok());
  EXPECT_FALSE(ValidateImageGcPolicy({.high_threshold_percent = 101}).ok());
  EXPECT_FALSE(
      ValidateImageGcPolicy({.high_threshold_percent = 50, .low_threshold_percent = 60}).ok());
  EXPECT_FALSE(ValidateImageGcPolicy({.low_threshold_percent = -1}).ok());
}

TEST(ImageGc, FreesUnusedOldImagesDownToLowThreshold) {
  ImageGcFixture f;
  f.images.AddImage(MakeImage("sha256:used", "reg/used:1", 300 * kMi));
  f.images.AddImage(MakeImage("sha256:old", "reg/old:1", 60 * kMi));
  f.images.AddImage(MakeImage("sha256:older", "reg/older:1", 60 * kMi));
  f.images.AddImage(MakeImage("sha256:pinned", "reg/pause:1", 200 * kMi, /*pinned=*/true));
  f.runtime.AddSandbox("sb1", {});
  FakeRuntimeService::Container c;
  c.sandbox_id = "sb1";
  c.config.mutable_image()->set_image("reg/used:1");
  c.image_ref = "sha256:used";
  c.state = v1::CONTAINER_EXITED;  // a dead container still uses its image
  f.runtime.AddContainer("c1", c);
  ImageGcManager gc = f.Make({.high_threshold_percent = 85, .low_threshold_percent = 80});
  // First sight: every image is younger than the 2 min minimum age.
  absl::StatusOr<int64_t> freed = gc.GarbageCollect();
  ASSERT_FALSE(freed.ok());  // wanted 100Mi, freed 0
  EXPECT_EQ(ImageIds(&f.images).size(), 4u);
  f.now += absl::Minutes(2);
  // 90% used, low 80%: free 1000*20% - 100 = 100Mi: both unused images (60Mi each).
  freed = gc.GarbageCollect();
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 120 * kMi);
  EXPECT_EQ(ImageIds(&f.images), (std::vector<std::string>{"sha256:pinned", "sha256:used"}));
}

TEST(ImageGc, BelowHighThresholdNothingIsRemoved) {
  ImageGcFixture f;
  f.fs.available_bytes = 500 * kMi;  // 50% used
  f.images.AddImage(MakeImage("sha256:old", "reg/old:1", 60 * kMi));
  ImageGcManager gc = f.Make({.min_age = absl::ZeroDuration()});
  f.now += absl::Hours(1);
  EXPECT_EQ(*gc.GarbageCollect(), 0);
  EXPECT_EQ(ImageIds(&f.images).size(), 1u);
  // Eviction's reclaim removes every unused image regardless of the thresholds.
  EXPECT_EQ(*gc.DeleteUnusedImages(), 60 * kMi);
  EXPECT_TRUE(ImageIds(&f.images).empty());
}

TEST(ImageGc, LeastRecentlyUsedFirst) {
  ImageGcFixture f;
  f.images.AddImage(MakeImage("sha256:a", "reg/a:1", kMi));
  f.images.AddImage(MakeImage("sha256:b", "reg/b:1", kMi));
  f.runtime.AddSandbox("sb1", {});
  FakeRuntimeService::Container c;
  c.sandbox_id = "sb1";
  c.config.mutable_image()->set_image("reg/a:1");
  c.image_ref = "sha256:a";
  f.runtime.AddContainer("c1", c);
  ImageGcManager gc = f.Make({});
  ASSERT_TRUE(gc.ImagesInEvictionOrder().ok());  // a used now
  v1::RemoveContainerRequest rm;
  rm.set_container_id("c1");
  ASSERT_TRUE(f.runtime.RemoveContainer(rm).ok());
  f.now += absl::Minutes(1);
  auto order = gc.ImagesInEvictionOrder();
  ASSERT_TRUE(order.ok());
  ASSERT_EQ(order->size(), 2u);
  EXPECT_EQ((*order)[0].id, "sha256:b");  // never used
  EXPECT_EQ((*order)[1].id, "sha256:a");
}

TEST(ImageGc, RemovalErrorIsReported) {
  ImageGcFixture f;
  f.images.AddImage(MakeImage("sha256:old", "reg/old:1", 60 * kMi));
  f.images.SetError("RemoveImage", absl::InternalError("disk on fire"));
  ImageGcManager gc = f.Make({.min_age = absl::ZeroDuration()});
  absl::StatusOr<int64_t> freed = gc.DeleteUnusedImages();
  ASSERT_FALSE(freed.ok());
  EXPECT_NE(freed.status().message().find("disk on fire"), std::string::npos);
}

v1::Container Dead(const std::string& id, const std::string& uid, const std::string& name,
                   int64_t created_s, v1::ContainerState state = v1::CONTAINER_EXITED) {
  v1::Container c;
  c.set_id(id);
  c.set_state(state);
  c.set_created_at(created_s * 1000000000);
  (*c.mutable_labels())["io.kubernetes.pod.uid"] = uid;
  (*c.mutable_labels())["io.kubernetes.container.name"] = name;
  return c;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(ContainerGc, SelectionTable) {
  const absl::Time now = absl::FromUnixSeconds(1000);
  std::vector<v1::Container> cs = {
      Dead("a1", "pa", "main", 100),      Dead("a2", "pa", "main", 200),
      Dead("a3", "pa", "main", 300),      Dead("a4", "pa", "main", 400, v1::CONTAINER_RUNNING),
      Dead("b1", "pb", "main", 100),      Dead("b2", "pb", "side", 950),
      Dead("gone1", "deleted", "x", 100), Dead("t1", "terminated", "x", 100),
  };
  v1::Container unlabelled;
  unlabelled.set_id("crictl");
  unlabelled.set_state(v1::CONTAINER_EXITED);
  cs.push_back(unlabelled);
  auto state = [](const std::string& uid) {
    if (uid == "deleted") return PodGcState::kDeleted;
    if (uid == "terminated") return PodGcState::kTerminated;
    return PodGcState::kActive;
  };
  struct Case {
    ContainerGcPolicy policy;
    bool evict_terminated;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      // Defaults: keep the newest dead one per (pod, container); deleted pods lose all.
      {{}, false, {"a1", "a2", "gone1"}},
      {{}, true, {"a1", "a2", "gone1", "t1"}},
      // MinAge 100s: b2 (created 50 s ago) is too young to count.
      {{.min_age = absl::Seconds(100), .max_per_pod_container = 0},
       false,
       {"a1", "a2", "a3", "b1", "gone1", "t1"}},
      // No per-container limit, 2 in total: 4 units -> 1 each, then the oldest.
      {{.max_per_pod_container = -1, .max_containers = 2},
       false,
       {"a1", "a2", "b1", "gone1", "t1"}},
      {{.max_per_pod_container = -1, .max_containers = -1}, false, {"gone1"}},
  };
  for (const Case& c : cases) {
    ContainerGc gc(nullptr, c.policy, state);
    EXPECT_EQ(Sorted(gc.Select(cs, c.evict_terminated, now)), Sorted(c.want));
  }
}

TEST(ContainerGc, RemovesThroughTheRuntime) {
  FakeRuntimeService runtime;
  runtime.AddSandbox("sb1", {});
  for (int i = 0; i < 3; ++i) {
    FakeRuntimeService::Container c;
    c.sandbox_id = "sb1";
    c.state = v1::CONTAINER_EXITED;
    c.config.mutable_metadata()->set_name("main");
    (*c.config.mutable_labels())["io.kubernetes.pod.uid"] = "p";
    (*c.config.mutable_labels())["io.kubernetes.container.name"] = "main";
    runtime.AddContainer("c" + std::to_string(i), c);
  }
  ContainerGc gc(
      &runtime, {}, [](const std::string&) { return PodGcState::kActive; },
      [] { return absl::Now() + absl::Hours(1); });
  absl::StatusOr<std::vector<std::string>> removed = gc.GarbageCollect(false);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(Sorted(*removed), (std::vector<std::string>{"c0", "c1"}));
  EXPECT_EQ(runtime.Containers().size(), 1u);
  EXPECT_TRUE(runtime.Containers().count("c2"));
}

}  // namespace
}  // namespace berth::kubelet
