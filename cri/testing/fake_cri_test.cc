#include "cri/testing/fake_cri.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::cri::testing {
namespace {

using ::testing::ElementsAre;

v1::RunPodSandboxRequest Pod(const std::string& name) {
  v1::RunPodSandboxRequest r;
  r.mutable_config()->mutable_metadata()->set_name(name);
  (*r.mutable_config()->mutable_labels())["app"] = name;
  return r;
}

v1::CreateContainerRequest Ctr(const std::string& sandbox, const std::string& name) {
  v1::CreateContainerRequest r;
  r.set_pod_sandbox_id(sandbox);
  r.mutable_config()->mutable_metadata()->set_name(name);
  r.mutable_config()->mutable_image()->set_image("busybox");
  return r;
}

TEST(FakeRuntimeService, LifecycleAndCallLog) {
  FakeRuntimeService rt;
  std::string sb = rt.RunPodSandbox(Pod("web")).value().pod_sandbox_id();
  EXPECT_EQ(rt.CreateContainer(Ctr("nope", "x")).status().code(), absl::StatusCode::kNotFound);
  std::string c = rt.CreateContainer(Ctr(sb, "main")).value().container_id();
  v1::StartContainerRequest start;
  start.set_container_id(c);
  ASSERT_TRUE(rt.StartContainer(start).ok());
  v1::ContainerStatusRequest st;
  st.set_container_id(c);
  EXPECT_EQ(rt.ContainerStatus(st)->status().state(), v1::CONTAINER_RUNNING);
  v1::StopContainerRequest stop;
  stop.set_container_id(c);
  stop.set_timeout(30);
  ASSERT_TRUE(rt.StopContainer(stop).ok());
  EXPECT_EQ(rt.ContainerStatus(st)->status().exit_code(), 137);
  v1::RemoveContainerRequest rm;
  rm.set_container_id(c);
  ASSERT_TRUE(rt.RemoveContainer(rm).ok());
  EXPECT_EQ(rt.ContainerStatus(st).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(rt.Calls(),
              ElementsAre("RunPodSandbox web", "CreateContainer main", "StartContainer main",
                          "StopContainer main timeout=30", "RemoveContainer main"));
  EXPECT_EQ(rt.CallCount("ContainerStatus"), 3);
  EXPECT_EQ(rt.CallCount("CreateContainer"), 2);  // the failed one counts
  EXPECT_EQ(rt.LastRequest<v1::StopContainerRequest>().timeout(), 30);
}

TEST(FakeRuntimeService, ListFiltersAsTheCriDoes) {
  FakeRuntimeService rt;
  rt.AddSandbox("aaa1", {.state = v1::SANDBOX_READY});
  rt.AddSandbox("bbb2", {.state = v1::SANDBOX_NOTREADY});
  FakeRuntimeService::Container c;
  c.sandbox_id = "aaa1";
  c.state = v1::CONTAINER_RUNNING;
  (*c.config.mutable_labels())["k"] = "v";
  rt.AddContainer("c1", c);
  c.state = v1::CONTAINER_EXITED;
  rt.AddContainer("c2", c);
  c.sandbox_id = "bbb2";
  c.config.clear_labels();
  rt.AddContainer("c3", c);

  v1::ListPodSandboxRequest ls;
  ls.mutable_filter()->mutable_state()->set_state(v1::SANDBOX_READY);
  ASSERT_EQ(rt.ListPodSandbox(ls)->items_size(), 1);
  EXPECT_EQ(rt.ListPodSandbox(ls)->items(0).id(), "aaa1");
  ls.Clear();
  ls.mutable_filter()->set_id("bb");
  EXPECT_EQ(rt.ListPodSandbox(ls)->items(0).id(), "bbb2");

  auto ids = [&](const v1::ListContainersRequest& r) {
    std::vector<std::string> out;
    absl::StatusOr<v1::ListContainersResponse> resp = rt.ListContainers(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    if (resp.ok()) {
      for (const auto& x : resp->containers()) out.push_back(x.id());
    }
    return out;
  };
  v1::ListContainersRequest lc;
  EXPECT_THAT(ids(lc), ElementsAre("c1", "c2", "c3"));
  lc.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_EXITED);
  EXPECT_THAT(ids(lc), ElementsAre("c2", "c3"));
  lc.mutable_filter()->set_pod_sandbox_id("aaa1");
  EXPECT_THAT(ids(lc), ElementsAre("c2"));
  lc.Clear();
  (*lc.mutable_filter()->mutable_label_selector())["k"] = "v";
  EXPECT_THAT(ids(lc), ElementsAre("c1", "c2"));
}

TEST(FakeRuntimeService, ErrorsHooksAndDefaults) {
  FakeRuntimeService rt;
  rt.SetError("ListPodSandbox", absl::UnavailableError("down"));
  EXPECT_EQ(rt.ListPodSandbox({}).status().code(), absl::StatusCode::kUnavailable);
  rt.SetError("ListPodSandbox", absl::OkStatus());
  EXPECT_TRUE(rt.ListPodSandbox({}).ok());

  EXPECT_EQ(rt.Exec({}).status().code(), absl::StatusCode::kUnimplemented);
  rt.OnExec([](const v1::ExecRequest& r) -> absl::StatusOr<v1::ExecResponse> {
    v1::ExecResponse resp;
    resp.set_url("http://x/exec/" + r.container_id());
    return resp;
  });
  v1::ExecRequest e;
  e.set_container_id("c9");
  EXPECT_EQ(rt.Exec(e)->url(), "http://x/exec/c9");
  EXPECT_EQ(rt.Version({})->runtime_name(), "fake-berth");

  // Verbose info only when asked for and set.
  rt.AddSandbox("s", {.info = R"({"pid":42})"});
  v1::PodSandboxStatusRequest ps;
  ps.set_pod_sandbox_id("s");
  EXPECT_TRUE(rt.PodSandboxStatus(ps)->info().empty());
  ps.set_verbose(true);
  EXPECT_EQ(rt.PodSandboxStatus(ps)->info().at("info"), R"({"pid":42})");
}

TEST(FakeRuntimeService, ExitsReachTheListener) {
  FakeRuntimeService rt;
  std::vector<std::string> exited;
  rt.SetExitListener([&](const std::string& id) { exited.push_back(id); });
  rt.ExitOnStart("job", 3);
  std::string sb = rt.RunPodSandbox(Pod("p")).value().pod_sandbox_id();
  std::string job = rt.CreateContainer(Ctr(sb, "job")).value().container_id();
  std::string srv = rt.CreateContainer(Ctr(sb, "srv")).value().container_id();
  v1::StartContainerRequest start;
  start.set_container_id(job);
  ASSERT_TRUE(rt.StartContainer(start).ok());
  start.set_container_id(srv);
  ASSERT_TRUE(rt.StartContainer(start).ok());
  EXPECT_EQ(rt.Containers().at(job).exit_code, 3);
  EXPECT_EQ(rt.Containers().at(srv).state, v1::CONTAINER_RUNNING);
  rt.ExitContainer(srv, 1);
  EXPECT_THAT(exited, ElementsAre(job, srv));
  EXPECT_EQ(rt.LatestContainer("srv"), srv);
  EXPECT_EQ(rt.LatestContainer("none"), "");
}

TEST(FakeRuntimeService, WaitForCallsWakesOnTheCall) {
  FakeRuntimeService rt;
  std::thread t([&] { (void)rt.RunPodSandbox(Pod("late")); });
  EXPECT_TRUE(rt.WaitForCalls([](const std::vector<std::string>& c) { return c.size() == 1; }));
  t.join();
  EXPECT_FALSE(rt.WaitForCalls([](const std::vector<std::string>& c) { return c.size() == 2; },
                               absl::Milliseconds(10)));
}

TEST(FakeImageService, PullsStatusAndAuth) {
  FakeImageService img;
  v1::ImageStatusRequest st;
  st.mutable_image()->set_image("a:1");
  EXPECT_FALSE(img.ImageStatus(st)->has_image());
  v1::PullImageRequest pull;
  pull.mutable_image()->set_image("a:1");
  EXPECT_EQ(img.PullImage(pull)->image_ref(), FakeImageService::RefOf("a:1"));
  EXPECT_EQ(img.ImageStatus(st)->image().id(), FakeImageService::RefOf("a:1"));

  img.RequireUser("priv:1", "alice");
  pull.mutable_image()->set_image("priv:1");
  EXPECT_EQ(img.PullImage(pull).status().code(), absl::StatusCode::kUnauthenticated);
  pull.mutable_auth()->set_username("alice");
  pull.mutable_auth()->set_password("pw");
  EXPECT_TRUE(img.PullImage(pull).ok());
  EXPECT_THAT(img.PullAuths("priv:1"), ElementsAre("", "alice:pw"));
  EXPECT_EQ(img.PullCount("priv:1"), 2);

  img.FailPull("bad:1", absl::NotFoundError("manifest unknown"));
  pull.mutable_image()->set_image("bad:1");
  EXPECT_EQ(img.PullImage(pull).status().code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(img.ListImages({})->images_size(), 2);
  v1::RemoveImageRequest rm;
  rm.mutable_image()->set_image("a:1");
  ASSERT_TRUE(img.RemoveImage(rm).ok());
  EXPECT_EQ(img.ListImages({})->images_size(), 1);
  EXPECT_EQ(img.ImageFsInfo({})->image_filesystems(0).inodes_used().value(), 1u);
}

TEST(FakeImageService, HeldPullsWaitForRelease) {
  FakeImageService img;
  img.HoldPulls();
  std::thread t([&] {
    v1::PullImageRequest pull;
    pull.mutable_image()->set_image("a:1");
    (void)img.PullImage(pull);
  });
  absl::SleepFor(absl::Milliseconds(20));  // give a wrongly unblocked pull time to finish
  EXPECT_EQ(img.PullCount("a:1"), 0);
  img.Release();
  t.join();
  EXPECT_EQ(img.PullCount("a:1"), 1);
}

}  // namespace
}  // namespace berth::cri::testing
