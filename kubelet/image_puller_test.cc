#include "kubelet/image_puller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "cri/testing/fake_cri.h"
#include "kubelet/testing/fake_api_client.h"

namespace berth::kubelet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kImage[] = "registry.local/app:1";

Json DockerSecret(const std::string& name, const std::string& registry, const std::string& user) {
  Json cfg = {{"auths", {{registry, {{"username", user}, {"password", "pw-" + user}}}}}};
  return Json{{"metadata", {{"name", name}, {"namespace", "ns"}}},
              {"type", "kubernetes.io/dockerconfigjson"},
              {"data", {{".dockerconfigjson", absl::Base64Escape(cfg.dump())}}}};
}

class ImagePullerTest : public ::testing::Test {
 protected:
  ImagePullerTest()
      : puller_(&images_, &api_,
                {.backoff_initial = absl::Seconds(10),
                 .backoff_max = absl::Seconds(25),
                 .clock = [this] { return now_; },
                 .record_event =
                     [this](const api::Pod&, const std::string& type, const std::string& reason,
                            const std::string& message, const std::string& container) {
                       events_.push_back(
                           absl::StrCat(type, " ", reason, " [", container, "] ", message));
                     }}) {}

  api::Pod Pod(const std::string& pull_policy, Json secrets = Json::array()) {
    Json json = {
        {"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u1"}}},
        {"spec",
         {{"imagePullSecrets", secrets},
          {"containers",
           Json::array(
               {{{"name", "app"}, {"image", kImage}, {"imagePullPolicy", pull_policy}}})}}}};
    auto pod = api::ParsePod(json);
    EXPECT_TRUE(pod.ok()) << pod.status();
    return *pod;
  }

  EnsureImageResult Ensure(const api::Pod& pod) {
    return puller_.EnsureImage(pod, pod.spec.containers[0], cri::v1::PodSandboxConfig(), &state_);
  }

  void AddPresentImage() {
    cri::v1::Image image;
    image.set_id("sha256:present");
    image.add_repo_tags(kImage);
    images_.AddImage(image);
  }

  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  cri::testing::FakeImageService images_;
  testing::FakeApiClient api_;
  std::vector<std::string> events_;
  ImagePullState state_;
  ImagePuller puller_;
};

TEST_F(ImagePullerTest, IfNotPresentUsesThePresentImageWithoutPulling) {
  AddPresentImage();
  EnsureImageResult r = Ensure(Pod("IfNotPresent"));
  ASSERT_TRUE(r.image_ref.ok()) << r.image_ref.status();
  EXPECT_EQ(*r.image_ref, "sha256:present");
  EXPECT_EQ(images_.PullCount(kImage), 0);
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(ImagePullerTest, AlwaysPullsEvenWhenPresent) {
  AddPresentImage();
  EnsureImageResult r = Ensure(Pod("Always"));
  ASSERT_TRUE(r.image_ref.ok()) << r.image_ref.status();
  EXPECT_EQ(*r.image_ref, cri::testing::FakeImageService::RefOf(kImage));
  EXPECT_EQ(images_.PullCount(kImage), 1);
  EXPECT_THAT(
      events_,
      ElementsAre("Normal Pulling [app] Pulling image \"registry.local/app:1\"",
                  "Normal Pulled [app] Successfully pulled image \"registry.local/app:1\""));
}

TEST_F(ImagePullerTest, NeverWithoutTheImageIsErrImageNeverPull) {
  EnsureImageResult r = Ensure(Pod("Never"));
  EXPECT_FALSE(r.image_ref.ok());
  EXPECT_EQ(r.reason, "ErrImageNeverPull");
  EXPECT_THAT(r.image_ref.status().message(),
              HasSubstr("is not present with pull policy of Never"));
  EXPECT_EQ(images_.PullCount(kImage), 0);
  EXPECT_THAT(r.retry_after, IsEmpty());
}

TEST_F(ImagePullerTest, FailedPullBacksOffDoublingUpToTheMaximum) {
  images_.FailPull(kImage, absl::NotFoundError("manifest unknown"));
  api::Pod pod = Pod("IfNotPresent");

  EnsureImageResult first = Ensure(pod);
  EXPECT_EQ(first.reason, "ErrImagePull");
  EXPECT_THAT(first.image_ref.status().message(), HasSubstr("manifest unknown"));
  EXPECT_THAT(first.retry_after, ElementsAre(absl::Seconds(5), absl::Seconds(10)));
  EXPECT_THAT(events_, ElementsAre(HasSubstr("Pulling"),
                                   "Warning Failed [app] Failed to pull image "
                                   "\"registry.local/app:1\": manifest unknown",
                                   "Warning Failed [app] Error: ErrImagePull"));

  // Within the back-off: no pull, ImagePullBackOff with the last error.
  events_.clear();
  now_ += absl::Seconds(4);
  EnsureImageResult held = Ensure(pod);
  EXPECT_EQ(held.reason, "ImagePullBackOff");
  EXPECT_THAT(held.image_ref.status().message(), HasSubstr("manifest unknown"));
  EXPECT_THAT(held.retry_after, ElementsAre(absl::Seconds(6)));
  EXPECT_EQ(images_.PullCount(kImage), 1);
  EXPECT_THAT(events_, ElementsAre("Normal BackOff [app] Back-off pulling image "
                                   "\"registry.local/app:1\"",
                                   "Warning Failed [app] Error: ImagePullBackOff"));

  // Back-off over: pulled again; a new failure doubles it (10 s -> 20 s), then the maximum.
  now_ += absl::Seconds(6);
  EXPECT_THAT(Ensure(pod).retry_after, ElementsAre(absl::Seconds(10), absl::Seconds(20)));
  now_ += absl::Seconds(20);
  EXPECT_THAT(Ensure(pod).retry_after, ElementsAre(absl::Seconds(12.5), absl::Seconds(25)));
  EXPECT_EQ(images_.PullCount(kImage), 3);

  // Success clears the back-off: a later failure starts again at the initial delay.
  images_.FailPull(kImage, absl::OkStatus());
  now_ += absl::Seconds(25);
  EXPECT_TRUE(Ensure(Pod("Always")).image_ref.ok());
  EXPECT_THAT(state_.backoff, IsEmpty());
  EXPECT_THAT(state_.last_error, IsEmpty());
  images_.FailPull(kImage, absl::UnavailableError("down"));
  EXPECT_THAT(Ensure(Pod("Always")).retry_after, ElementsAre(absl::Seconds(5), absl::Seconds(10)));
}

TEST_F(ImagePullerTest, PullSecretsAreTriedInTurnAndAMissingOneIsReported) {
  api_.SetObject("/api/v1/namespaces/ns/secrets/stale",
                 DockerSecret("stale", "registry.local", "old"));
  api_.SetObject("/api/v1/namespaces/ns/secrets/current",
                 DockerSecret("current", "registry.local", "new"));
  api_.SetObject("/api/v1/namespaces/ns/secrets/elsewhere",
                 DockerSecret("elsewhere", "other.registry", "x"));
  images_.RequireUser(kImage, "new");
  api::Pod pod = Pod("Always", Json::array({{{"name", "gone"}},
                                            {{"name", "stale"}},
                                            {{"name", "elsewhere"}},
                                            {{"name", "current"}}}));
  EnsureImageResult r = Ensure(pod);
  ASSERT_TRUE(r.image_ref.ok()) << r.image_ref.status();
  EXPECT_THAT(images_.PullAuths(kImage), ElementsAre("old:pw-old", "new:pw-new"));
  EXPECT_THAT(events_, ::testing::Contains(
                           "Warning FailedToRetrieveImagePullSecret [] Unable to retrieve some "
                           "image pull secrets (gone); attempting to pull the image may not "
                           "succeed."));
}

TEST_F(ImagePullerTest, EveryCredentialFailingJoinsTheErrors) {
  api_.SetObject("/api/v1/namespaces/ns/secrets/a", DockerSecret("a", "registry.local", "a"));
  api_.SetObject("/api/v1/namespaces/ns/secrets/b", DockerSecret("b", "registry.local", "b"));
  images_.RequireUser(kImage, "c");
  EnsureImageResult r = Ensure(Pod("Always", Json::array({{{"name", "a"}}, {{"name", "b"}}})));
  EXPECT_EQ(r.reason, "ErrImagePull");
  EXPECT_THAT(r.image_ref.status().message(),
              HasSubstr("as \"a\": 401; pull of registry.local/app:1 as \"b\": 401"));
}

TEST_F(ImagePullerTest, WithoutMatchingCredentialsThePullIsAnonymous) {
  api_.SetObject("/api/v1/namespaces/ns/secrets/other",
                 DockerSecret("other", "other.registry", "u"));
  EnsureImageResult r = Ensure(Pod("Always", Json::array({{{"name", "other"}}})));
  ASSERT_TRUE(r.image_ref.ok()) << r.image_ref.status();
  EXPECT_THAT(images_.PullAuths(kImage), ElementsAre(""));
}

}  // namespace
}  // namespace berth::kubelet
