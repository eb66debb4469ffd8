#include "kubelet/pod_manager.h"

#include "absl/strings/escaping.h"
#include "kubelet/testing/pod_manager_fixture.h"

namespace berth::kubelet {
namespace {
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(PodManagerTest, ReadinessGatesReadyAndLivenessFailureRestarts) {
  Json pod = MakePod("probed");
  pod["spec"]["terminationGracePeriodSeconds"] = 30;
  pod["spec"]["containers"][0]["readinessProbe"] = {{"exec", {{"command", {"cat", "/tmp/ready"}}}},
                                                    {"periodSeconds", 1},
                                                    {"failureThreshold", 1}};
  pod["spec"]["containers"][0]["livenessProbe"] = {{"exec", {{"command", {"true"}}}},
                                                   {"periodSeconds", 1},
                                                   {"failureThreshold", 1},
                                                   {"terminationGracePeriodSeconds", 2}};
  manager_->HandlePodEvent("ADDED", pod);
  auto running = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; });
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(MainStatus(*running)["ready"], false);
  EXPECT_EQ(ReadyCondition(*running), "False");
  EXPECT_EQ(manager_->prober().WorkerCount(), 2u);

  {
    std::lock_guard<std::mutex> l(probes_.mu);
    probes_.ready = true;
  }
  auto ready = api_.WaitForStatus([](const Json& s) { return ReadyCondition(s) == "True"; });
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(MainStatus(*ready)["ready"], true);
  EXPECT_EQ(MainStatus(*ready)["started"], true);

  std::string first = runtime_.LatestContainer("main");
  {
    std::lock_guard<std::mutex> l(probes_.mu);
    probes_.kill_id = first;
  }
  auto restarted = api_.WaitForStatus([](const Json& s) {
    return MainStatus(s)["restartCount"] == 1 && MainStatus(s)["state"].contains("running");
  });
  ASSERT_TRUE(restarted.has_value());
  EXPECT_NE(runtime_.LatestContainer("main"), first);
  EXPECT_THAT(runtime_.Calls(), Contains("StopContainer main timeout=2"));
  EXPECT_EQ(MainStatus(*restarted)["lastState"]["terminated"]["exitCode"], 137);
  {
    std::lock_guard<std::mutex> l(events_mu_);
    EXPECT_THAT(events_, Contains("Unhealthy: Liveness probe failed: wedged"));
    EXPECT_THAT(events_,
                Contains("Killing: Container main failed liveness probe, will be restarted"));
  }
  // The new instance is probed afresh: not ready until its readiness probe passes again.
  auto ready_again = api_.WaitForStatus([](const Json& s) {
    return MainStatus(s)["restartCount"] == 1 && ReadyCondition(s) == "True";
  });
  EXPECT_TRUE(ready_again.has_value());

  // Deleting the pod stops its probe workers.
  manager_->HandlePodEvent("DELETED", pod);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (manager_->prober().WorkerCount() != 0 && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(manager_->prober().WorkerCount(), 0u);
}

TEST_F(PodManagerTest, PendingThenRunningWithCriCallsAndStatus) {
  images_.HoldPulls();
  Json pod = MakePod("web");
  manager_->HandlePodEvent("ADDED", pod);

  auto pending = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Pending"; });
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(MainStatus(*pending)["state"]["waiting"]["reason"], "ContainerCreating");
  images_.Release();

  auto running = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; });
  ASSERT_TRUE(running.has_value()) << api_.Requests().size();
  std::string id = runtime_.LatestContainer("main");
  ASSERT_FALSE(id.empty());
  const Json main = MainStatus(*running);
  EXPECT_EQ(main["containerID"], "berth://" + id);
  EXPECT_EQ(main["ready"], true);
  EXPECT_EQ(main["restartCount"], 0);
  EXPECT_EQ(main["image"], "registry.local/busybox:1.36");
  EXPECT_EQ(main["imageID"], FakeImageService::RefOf("registry.local/busybox:1.36"));
  EXPECT_TRUE(main["state"].contains("running"));
  EXPECT_EQ((*running)["hostIP"], "192.0.2.10");
  EXPECT_EQ((*running)["podIP"].get<std::string>().rfind("10.88.0.", 0), 0u);
  EXPECT_EQ((*running)["qosClass"], "BestEffort");
  std::map<std::string, std::string> conds;
  for (const auto& c : (*running)["conditions"]) conds[c["type"]] = c["status"];
  EXPECT_EQ(conds["Ready"], "True");
  EXPECT_EQ(conds["ContainersReady"], "True");
  EXPECT_EQ(conds["Initialized"], "True");
  EXPECT_EQ(conds["PodReadyToStartContainers"], "True");
  EXPECT_EQ(conds["PodScheduled"], "True");

  // The status PATCH: strategic merge on pods/<name>/status with the UID.
  auto patch = api_.WaitFor([](const FakeApiClient::Request& r) { return r.verb == "PATCH"; });
  ASSERT_TRUE(patch.has_value());
  EXPECT_EQ(patch->path, "/api/v1/namespaces/default/pods/web/status");
  EXPECT_EQ(patch->body["metadata"]["uid"], "uid-web");

  // CRI calls, in order.
  auto calls = runtime_.Calls();
  auto pos = [&](const std::string& c) {
    return std::find(calls.begin(), calls.end(), c) - calls.begin();
  };
  EXPECT_LT(pos("RunPodSandbox web"), pos("CreateContainer main"));
  EXPECT_LT(pos("CreateContainer main"), pos("StartContainer main"));
  EXPECT_EQ(images_.PullCount("registry.local/busybox:1.36"), 1);

  // Sandbox config.
  auto sandboxes = runtime_.Sandboxes();
  ASSERT_EQ(sandboxes.size(), 1u);
  const auto& sb = sandboxes.begin()->second.config;
  EXPECT_EQ(sb.metadata().name(), "web");
  EXPECT_EQ(sb.metadata().namespace_(), "default");
  EXPECT_EQ(sb.metadata().uid(), "uid-web");
  EXPECT_EQ(sb.metadata().attempt(), 0u);
  EXPECT_EQ(sb.hostname(), "web");
  EXPECT_EQ(sb.log_directory(), (root_ / "logs" / "default_web_uid-web").string());
  EXPECT_TRUE(std::filesystem::is_directory(sb.log_directory()));
  EXPECT_EQ(sb.linux().cgroup_parent(), "/kubepods/besteffort/poduid-web");
  EXPECT_EQ(sb.labels().at("io.kubernetes.pod.uid"), "uid-web");
  EXPECT_EQ(sb.labels().at("app"), "web");
  ASSERT_EQ(sb.port_mappings_size(), 1);
  EXPECT_EQ(sb.port_mappings(0).host_port(), 8080);
  EXPECT_EQ(sb.port_mappings(0).container_port(), 80);
  EXPECT_THAT(sb.dns_config().servers(), Contains("192.0.2.53"));
  // No cluster DNS configured: ClusterFirst falls back to the host's resolv.conf (upstream's
  // MissingClusterDNS), no cluster search domains.
  EXPECT_THAT(sb.dns_config().searches(), ElementsAre("example.test"));
  EXPECT_THAT(sb.dns_config().options(), ElementsAre("edns0"));
  EXPECT_EQ(sb.linux().security_context().namespace_options().pid(), runtime::v1::CONTAINER);

  // Container config.
  auto ctr = runtime_.Containers().at(id);
  const auto& cc = ctr.config;
  EXPECT_EQ(cc.metadata().attempt(), 0u);
  EXPECT_EQ(cc.image().user_specified_image(), "registry.local/busybox:1.36");
  ASSERT_EQ(cc.command_size(), 2);
  EXPECT_EQ(cc.command(0), "/bin/sh");
  ASSERT_EQ(cc.args_size(), 1);
  EXPECT_EQ(cc.args(0), "echo hello && sleep 1000");
  std::map<std::string, std::string> env;
  for (const auto& kv : cc.envs()) env[kv.key()] = kv.value();
  EXPECT_EQ(env["GREETING"], "hello");
  EXPECT_EQ(env["POD_NAME"], "web");
  EXPECT_EQ(env["POD_IP"], sandboxes.begin()->second.ip);
  // Service links: the master service and the pod namespace's services.
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  EXPECT_EQ(env["KUBERNETES_SERVICE_PORT"], "443");
  EXPECT_EQ(env["DB_PORT"], "tcp://10.96.0.20:5432");
  EXPECT_EQ(cc.log_path(), "main/0.log");
  EXPECT_EQ(cc.labels().at("io.kubernetes.container.name"), "main");
  EXPECT_EQ(cc.linux().resources().cpu_shares(), 2);
  std::map<std::string, std::string> mounts;
  for (const auto& m : cc.mounts()) mounts[m.container_path()] = m.host_path();
  EXPECT_EQ(mounts["/scratch"],
            (root_ / "kubelet/pods/uid-web/volumes/kubernetes.io~empty-dir/scratch").string());
  EXPECT_TRUE(std::filesystem::is_directory(mounts["/scratch"]));
  EXPECT_TRUE(std::filesystem::exists(mounts["/dev/termination-log"]));
  // Any user of the container may write it (upstream chmods 0666), whatever the umask.
  EXPECT_EQ(std::filesystem::status(mounts["/dev/termination-log"]).permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms(0666));
  std::ifstream hosts(mounts["/etc/hosts"]);
  std::string hosts_text((std::istreambuf_iterator<char>(hosts)), std::istreambuf_iterator<char>());
  EXPECT_THAT(hosts_text, HasSubstr("127.0.0.1\tlocalhost"));
  EXPECT_THAT(hosts_text, HasSubstr(sandboxes.begin()->second.ip + "\tweb"));
}

// The pod's fsGroup joins every container's (and the sandbox's) supplemental groups, after
// supplementalGroups, as the kubelet's determineEffectiveSecurityContext does; containers also
// get their PVs' pv.beta.kubernetes.io/gid groups, each once.

TEST_F(PodManagerTest, FsGroupIsASupplementalGroup) {
  Json pod = MakePod("web");
  pod["spec"]["securityContext"] = {{"supplementalGroups", {5}}, {"fsGroup", 2000}};
  for (const auto& [claim, gid] :
       {std::pair{"a", "2000"}, std::pair{"b", "3000"}, std::pair{"c", "3000"}}) {
    const std::string pv = std::string("pv-") + claim;
    api_.SetObject(std::string("/api/v1/namespaces/default/persistentvolumeclaims/") + claim,
                   {{"metadata", {{"name", claim}, {"uid", std::string("c-") + claim}}},
                    {"spec", {{"volumeName", pv}}},
                    {"status", {{"phase", "Bound"}}}});
    api_.SetObject(
        "/api/v1/persistentvolumes/" + pv,
        {{"metadata", {{"name", pv}, {"annotations", {{"pv.beta.kubernetes.io/gid", gid}}}}},
         {"spec",
          {{"claimRef", {{"uid", std::string("c-") + claim}}},
           {"hostPath", {{"path", (root_ / pv).string()}, {"type", "DirectoryOrCreate"}}}}}});
    pod["spec"]["volumes"].push_back(
        {{"name", claim}, {"persistentVolumeClaim", {{"claimName", claim}}}});
  }
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  const auto cc = runtime_.Containers().at(runtime_.LatestContainer("main")).config;
  EXPECT_THAT(cc.linux().security_context().supplemental_groups(),
              ::testing::ElementsAre(5, 2000, 3000));
  const auto sb = runtime_.Sandboxes().begin()->second.config;
  EXPECT_THAT(sb.linux().security_context().supplemental_groups(), ::testing::ElementsAre(5, 2000));
}

TEST_F(PodManagerTest, NeverPolicyExitZeroSucceeds) {
  runtime_.ExitOnStart("main", 0);
  manager_->HandlePodEvent("ADDED", MakePod("job", "Never"));
  auto done = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Succeeded"; });
  ASSERT_TRUE(done.has_value());
  const Json term = MainStatus(*done)["state"]["terminated"];
  EXPECT_EQ(term["exitCode"], 0);
  EXPECT_EQ(term["reason"], "Completed");
  EXPECT_EQ(term["containerID"], "berth://" + runtime_.LatestContainer("main"));
  // A terminal pod's sandbox is stopped; the container is not restarted.
  EXPECT_TRUE(runtime_.WaitForCalls([](const std::vector<std::string>& calls) {
    return std::any_of(calls.begin(), calls.end(),
                       [](const std::string& c) { return c.rfind("StopPodSandbox", 0) == 0; });
  }));
  auto calls = runtime_.Calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "StartContainer main"), 1);
}

TEST_F(PodManagerTest, NeverPolicyExitThreeFailsWithExitCode) {
  manager_->HandlePodEvent("ADDED", MakePod("job", "Never"));
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  runtime_.ExitContainer(runtime_.LatestContainer("main"), 3);  // notifies OnContainerEvent
  auto failed = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Failed"; });
  ASSERT_TRUE(failed.has_value());
  const Json term = MainStatus(*failed)["state"]["terminated"];
  EXPECT_EQ(term["exitCode"], 3);
  EXPECT_EQ(term["reason"], "Error");
  std::map<std::string, std::string> conds;
  for (const auto& c : (*failed)["conditions"]) conds[c["type"]] = c["status"];
  EXPECT_EQ(conds["Ready"], "False");
}

TEST_F(PodManagerTest, ImagePullFailureThenBackOff) {
  images_.FailPull("registry.local/busybox:1.36", absl::NotFoundError("manifest unknown"));
  Json pod = MakePod("bad");
  manager_->HandlePodEvent("ADDED", pod);
  auto err = api_.WaitForStatus([](const Json& s) {
    return MainStatus(s)["state"].contains("waiting") &&
           MainStatus(s)["state"]["waiting"]["reason"] == "ErrImagePull";
  });
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(Phase(*err), "Pending");
  EXPECT_THAT(MainStatus(*err)["state"]["waiting"]["message"].get<std::string>(),
              HasSubstr("manifest unknown"));

  // Next sync within the back-off (here forced by a metadata change; a status-only update
  // would not sync): ImagePullBackOff without a new pull.
  pod["metadata"]["labels"]["touched"] = "1";
  manager_->HandlePodEvent("MODIFIED", pod);
  auto backoff =
      api_.WaitForStatus([](const Json& s) { return WaitingReason(s) == "ImagePullBackOff"; });
  ASSERT_TRUE(backoff.has_value());
  EXPECT_THAT(MainStatus(*backoff)["state"]["waiting"]["message"].get<std::string>(),
              HasSubstr("manifest unknown"));
  EXPECT_EQ(images_.PullCount("registry.local/busybox:1.36"), 1);

  // After the back-off, the pull is retried and succeeds.
  images_.FailPull("registry.local/busybox:1.36", absl::OkStatus());
  clock_.Advance(absl::Seconds(11));
  pod["metadata"]["labels"]["touched"] = "2";  // a real update: syncs at once
  manager_->HandlePodEvent("MODIFIED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  EXPECT_EQ(images_.PullCount("registry.local/busybox:1.36"), 2);
}

// As the kubelet: every credential of spec.imagePullSecrets that matches the image's
// registry is tried in turn until a pull succeeds; a secret that cannot be read is skipped.
TEST_F(PodManagerTest, ImagePullSecretsTriedInTurn) {
  auto secret = [](const std::string& name, const std::string& user) {
    Json cfg = {{"auths", {{"registry.local", {{"username", user}, {"password", "pw-" + user}}}}}};
    return Json{{"metadata", {{"name", name}, {"namespace", "default"}}},
                {"type", "kubernetes.io/dockerconfigjson"},
                {"data", {{".dockerconfigjson", absl::Base64Escape(cfg.dump())}}}};
  };
  api_.SetObject("/api/v1/namespaces/default/secrets/stale", secret("stale", "old"));
  api_.SetObject("/api/v1/namespaces/default/secrets/current", secret("current", "new"));
  images_.RequireUser("registry.local/busybox:1.36", "new");
  Json pod = MakePod("private");
  pod["spec"]["imagePullSecrets"] =
      Json::array({{{"name", "gone"}}, {{"name", "stale"}}, {{"name", "current"}}});
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  EXPECT_EQ(images_.PullAuths("registry.local/busybox:1.36"),
            (std::vector<std::string>{"old:pw-old", "new:pw-new"}));
}

TEST_F(PodManagerTest, ImagePullWithoutMatchingSecretIsAnonymousAndFailsWithTheRegistryError) {
  Json cfg = {{"auths", {{"other.registry", {{"username", "u"}, {"password", "p"}}}}}};
  api_.SetObject("/api/v1/namespaces/default/secrets/other",
                 Json{{"metadata", {{"name", "other"}}},
                      {"type", "kubernetes.io/dockerconfigjson"},
                      {"data", {{".dockerconfigjson", absl::Base64Escape(cfg.dump())}}}});
  images_.RequireUser("registry.local/busybox:1.36", "new");
  Json pod = MakePod("anon");
  pod["spec"]["imagePullSecrets"] = Json::array({{{"name", "other"}}});
  manager_->HandlePodEvent("ADDED", pod);
  auto err = api_.WaitForStatus([](const Json& s) { return WaitingReason(s) == "ErrImagePull"; });
  ASSERT_TRUE(err.has_value());
  EXPECT_THAT(MainStatus(*err)["state"]["waiting"]["message"].get<std::string>(), HasSubstr("401"));
  EXPECT_EQ(images_.PullAuths("registry.local/busybox:1.36"), (std::vector<std::string>{""}));
}

TEST_F(PodManagerTest, CrashLoopBackOffAfterSecondExit) {
  Json pod = MakePod("crash");
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  // First exit: restarted at once.
  runtime_.ExitContainer(runtime_.LatestContainer("main"), 1);
  auto restarted = api_.WaitForStatus([](const Json& s) {
    return MainStatus(s)["restartCount"] == 1 && MainStatus(s)["state"].contains("running");
  });
  ASSERT_TRUE(restarted.has_value());
  EXPECT_EQ(MainStatus(*restarted)["lastState"]["terminated"]["exitCode"], 1);
  // Second exit: CrashLoopBackOff until the 10 s back-off passes.
  runtime_.ExitContainer(runtime_.LatestContainer("main"), 1);
  auto crash =
      api_.WaitForStatus([](const Json& s) { return WaitingReason(s) == "CrashLoopBackOff"; });
  ASSERT_TRUE(crash.has_value());
  EXPECT_EQ(Phase(*crash), "Running");
  EXPECT_THAT(MainStatus(*crash)["state"]["waiting"]["message"].get<std::string>(),
              HasSubstr("back-off 10s"));
  EXPECT_EQ(MainStatus(*crash)["lastState"]["terminated"]["exitCode"], 1);
  clock_.Advance(absl::Seconds(11));
  pod["metadata"]["labels"]["touched"] = "3";  // a real update: syncs at once
  manager_->HandlePodEvent("MODIFIED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) {
                    return MainStatus(s)["restartCount"] == 2 &&
                           MainStatus(s)["state"].contains("running");
                  })
                  .has_value());
}

TEST_F(PodManagerTest, DeletionStopsWithGracePeriodRemovesAndDeletesObject) {
  Json pod = MakePod("gone");
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  std::string pod_dir = (root_ / "kubelet/pods/uid-gone/volumes").string();
  ASSERT_TRUE(std::filesystem::exists(pod_dir));

  pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:01:00Z";
  pod["metadata"]["deletionGracePeriodSeconds"] = 7;
  manager_->HandlePodEvent("MODIFIED", pod);
  auto del = api_.WaitFor([](const FakeApiClient::Request& r) { return r.verb == "DELETE"; });
  ASSERT_TRUE(del.has_value());
  EXPECT_EQ(del->path, "/api/v1/namespaces/default/pods/gone");
  EXPECT_EQ(del->body["gracePeriodSeconds"], 0);
  EXPECT_EQ(del->body["preconditions"]["uid"], "uid-gone");

  auto calls = runtime_.Calls();
  auto pos = [&](const std::string& prefix) { return FirstCallWithPrefix(calls, prefix); };
  ASSERT_LT(pos("StopContainer main timeout=7"), static_cast<long>(calls.size()));
  EXPECT_LT(pos("StopContainer main"), pos("StopPodSandbox"));
  EXPECT_LT(pos("StopPodSandbox"), pos("RemoveContainer main"));
  EXPECT_LT(pos("RemoveContainer main"), pos("RemovePodSandbox"));
  EXPECT_TRUE(runtime_.Sandboxes().empty());
  EXPECT_TRUE(runtime_.Containers().empty());
  EXPECT_FALSE(std::filesystem::exists(pod_dir));
  // The final status written before the delete shows the container terminated.
  auto final_status = api_.WaitForStatus(
      [](const Json& s) { return MainStatus(s)["state"].contains("terminated"); });
  ASSERT_TRUE(final_status.has_value());
  EXPECT_EQ(MainStatus(*final_status)["state"]["terminated"]["exitCode"], 137);

  // The watch's DELETED event makes the manager forget the pod.
  manager_->HandlePodEvent("DELETED", pod);
  // Workers run asynchronously: wait on the observable condition.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!manager_->PodUids().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(manager_->PodUids().empty());
}

TEST_F(PodManagerTest, InitContainerRunsToCompletionFirst) {
  Json pod = MakePod("init");
  pod["spec"]["initContainers"] =
      Json::parse(R"([{"name": "setup", "image": "registry.local/busybox:1.36",
                                                   "command": ["true"]}])");
  runtime_.ExitOnStart("setup", 0);
  manager_->HandlePodEvent("ADDED", pod);
  auto running = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; });
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ((*running)["initContainerStatuses"][0]["state"]["terminated"]["exitCode"], 0);
  EXPECT_EQ((*running)["initContainerStatuses"][0]["ready"], true);  // completed: ready
  EXPECT_EQ((*running)["initContainerStatuses"][0]["started"], false);
  auto calls = runtime_.Calls();
  auto pos = [&](const std::string& c) {
    return std::find(calls.begin(), calls.end(), c) - calls.begin();
  };
  EXPECT_LT(pos("StartContainer setup"), pos("CreateContainer main"));
}

TEST_F(PodManagerTest, OrphanedSandboxesAreRemovedAfterSync) {
  // A pod left behind in the runtime (e.g. deleted while berth was down).
  runtime::v1::RunPodSandboxRequest req;
  req.mutable_config()->mutable_metadata()->set_name("old");
  (*req.mutable_config()->mutable_labels())["io.kubernetes.pod.uid"] = "uid-old";
  std::string sb = runtime_.RunPodSandbox(req)->pod_sandbox_id();
  runtime::v1::CreateContainerRequest creq;
  creq.set_pod_sandbox_id(sb);
  creq.mutable_config()->mutable_metadata()->set_name("c");
  (*creq.mutable_config()->mutable_labels())["io.kubernetes.pod.uid"] = "uid-old";
  std::string ctr = runtime_.CreateContainer(creq)->container_id();
  runtime::v1::StartContainerRequest sreq;
  sreq.set_container_id(ctr);
  ASSERT_TRUE(runtime_.StartContainer(sreq).ok());
  // A pod that is still bound keeps its sandbox.
  manager_->HandlePodEvent("ADDED", MakePod("keep"));
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());

  manager_->HandlePodsSynced();
  ASSERT_TRUE(runtime_.WaitForCalls([&](const std::vector<std::string>& calls) {
    return std::find(calls.begin(), calls.end(), "RemovePodSandbox " + sb) != calls.end();
  }));
  EXPECT_EQ(runtime_.Containers().count(ctr), 0u);
  ASSERT_EQ(runtime_.Sandboxes().size(), 1u);
  EXPECT_EQ(runtime_.Sandboxes().begin()->second.config.metadata().name(), "keep");
  // Nothing is deleted from the API server for an orphan.
  for (const auto& r : api_.Requests()) EXPECT_NE(r.verb, "DELETE");
}

// enableServiceLinks: false keeps only the master service's variables (kubelet
// getServiceEnvVarMap), and the container's own variables win over service ones.
TEST_F(PodManagerTest, EnableServiceLinksFalseKeepsOnlyTheMasterService) {
  Json pod = MakePod("nolinks");
  pod["spec"]["enableServiceLinks"] = false;
  pod["spec"]["containers"][0]["env"].push_back(
      {{"name", "KUBERNETES_SERVICE_PORT"}, {"value", "6443"}});
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  std::string id = runtime_.LatestContainer("main");
  ASSERT_FALSE(id.empty());
  std::map<std::string, std::string> env;
  const auto config = runtime_.Containers().at(id).config;
  for (const auto& kv : config.envs()) env[kv.key()] = kv.value();
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  EXPECT_EQ(env["KUBERNETES_SERVICE_PORT"], "6443");
  EXPECT_EQ(env.count("DB_SERVICE_HOST"), 0u);
}

// env valueFrom.resourceFieldRef: this container's resources, or the named container's.
TEST_F(PodManagerTest, EnvFromResourceFieldRef) {
  Json pod = MakePod("res");
  Json& main = pod["spec"]["containers"][0];
  main["resources"] = {{"limits", {{"cpu", "1500m"}, {"memory", "64Mi"}}}};
  main["env"].push_back(
      {{"name", "CPUS"}, {"valueFrom", {{"resourceFieldRef", {{"resource", "limits.cpu"}}}}}});
  main["env"].push_back(
      {{"name", "MEM_MI"},
       {"valueFrom",
        {{"resourceFieldRef",
          {{"containerName", "main"}, {"resource", "limits.memory"}, {"divisor", "1Mi"}}}}}});
  main["env"].push_back({{"name", "LIMIT_X"}, {"value", "$(MEM_MI)Mi"}});
  main["env"].push_back(
      {{"name", "SIDE_MI"},
       {"valueFrom",
        {{"resourceFieldRef",
          {{"containerName", "side"}, {"resource", "limits.memory"}, {"divisor", "1Mi"}}}}}});
  Json side = main;
  side["name"] = "side";
  side["env"] = Json::array();
  side["resources"] = {{"limits", {{"memory", "32Mi"}}}};
  pod["spec"]["containers"].push_back(side);
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  const auto config = runtime_.Containers().at(runtime_.LatestContainer("main")).config;
  std::map<std::string, std::string> env;
  for (const auto& kv : config.envs()) env[kv.key()] = kv.value();
  EXPECT_EQ(env["CPUS"], "2");
  EXPECT_EQ(env["MEM_MI"], "64");
  EXPECT_EQ(env["LIMIT_X"], "64Mi");
  EXPECT_EQ(env["SIDE_MI"], "32");  // another container's, by name
}

// The directory of a pod that is neither bound nor has a sandbox (deleted while berth was
// down, after its sandbox went) is removed at sync, its tmpfs volumes unmounted first; a bound
// pod's directory stays.
TEST_F(PodManagerTest, OrphanedPodDirectoriesAreRemovedAfterSync) {
  manager_->HandlePodEvent("ADDED", MakePod("keep"));
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  const std::string pods = (root_ / "kubelet/pods").string();
  const std::string secret = pods + "/uid-gone/volumes/kubernetes.io~secret/creds";
  ASSERT_TRUE(MkdirAll(secret).ok());
  ASSERT_EQ(::mount("tmpfs", secret.c_str(), "tmpfs", 0, "size=1m"), 0) << strerror(errno);
  ASSERT_TRUE(WriteFileAtomic(secret + "/password", "s3cr3t").ok());
  ASSERT_TRUE(MkdirAll(pods + "/uid-keep/volumes").ok());
  manager_->HandlePodsSynced();
  EXPECT_FALSE(PathExists(pods + "/uid-gone"));
  EXPECT_TRUE(MountPointsUnder(pods + "/uid-gone")->empty());
  EXPECT_TRUE(PathExists(pods + "/uid-keep"));
}

// --- Native sidecars (init containers with restartPolicy Always) ---

Json WithSidecars(Json pod, const std::vector<std::string>& names) {
  Json init = Json::array();
  for (const auto& n : names) {
    init.push_back({{"name", n},
                    {"image", "registry.local/busybox:1.36"},
                    {"restartPolicy", "Always"},
                    {"command", {"sleep", "1000"}}});
  }
  pod["spec"]["initContainers"] = init;
  return pod;
}
Json InitStatus(const Json& s, size_t i) {
  if (!s.contains("initContainerStatuses") || s["initContainerStatuses"].size() <= i)
    return Json::object();
  return s["initContainerStatuses"][i];
}
std::string ConditionOf(const Json& s, const std::string& type) {
  for (const auto& c : s["conditions"]) {
    if (c["type"] == type) return c["status"];
  }
  return "";
}

TEST_F(PodManagerTest, SidecarStartsBeforeMainKeepsRunningAndIsRestartedAlone) {
  Json pod = WithSidecars(MakePod("side", "Never"), {"proxy"});
  manager_->HandlePodEvent("ADDED", pod);
  auto running = api_.WaitForStatus([](const Json& s) {
    return Phase(s) == "Running" && MainStatus(s)["state"].contains("running");
  });
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(InitStatus(*running, 0)["started"], true);
  EXPECT_EQ(InitStatus(*running, 0)["ready"], true);
  EXPECT_TRUE(InitStatus(*running, 0)["state"].contains("running"));
  EXPECT_EQ(ConditionOf(*running, "Initialized"), "True");
  EXPECT_EQ(ConditionOf(*running, "Ready"), "True");
  auto calls = runtime_.Calls();
  auto pos = [&](const std::string& c) {
    return std::find(calls.begin(), calls.end(), c) - calls.begin();
  };
  EXPECT_LT(pos("StartContainer proxy"), pos("CreateContainer main"));

  // The sidecar exits: restarted although the pod's restartPolicy is Never; main untouched.
  std::string main_id = runtime_.LatestContainer("main");
  runtime_.ExitContainer(runtime_.LatestContainer("proxy"), 2);
  auto restarted = api_.WaitForStatus([](const Json& s) {
    return InitStatus(s, 0)["restartCount"] == 1 && InitStatus(s, 0)["state"].contains("running");
  });
  ASSERT_TRUE(restarted.has_value());
  EXPECT_EQ(InitStatus(*restarted, 0)["lastState"]["terminated"]["exitCode"], 2);
  EXPECT_EQ(Phase(*restarted), "Running");
  EXPECT_EQ(runtime_.LatestContainer("main"), main_id);
  EXPECT_EQ(MainStatus(*restarted)["restartCount"], 0);
}

TEST_F(PodManagerTest, SidecarStartupProbeGatesTheNextInitContainer) {
  {
    std::lock_guard<std::mutex> l(probes_.mu);
    probes_.started = false;
  }
  Json pod = WithSidecars(MakePod("gated"), {"proxy"});
  pod["spec"]["initContainers"][0]["startupProbe"] = {
      {"exec", {{"command", {"true"}}}}, {"periodSeconds", 1}, {"failureThreshold", 100}};
  manager_->HandlePodEvent("ADDED", pod);
  auto waiting = api_.WaitForStatus(
      [](const Json& s) { return InitStatus(s, 0)["state"].contains("running"); });
  ASSERT_TRUE(waiting.has_value());
  EXPECT_EQ(InitStatus(*waiting, 0)["started"], false);
  EXPECT_EQ(Phase(*waiting), "Pending");
  EXPECT_EQ(ConditionOf(*waiting, "Initialized"), "False");
  EXPECT_EQ(WaitingReason(*waiting), "PodInitializing");
  // Give the startup worker a few failing rounds: main must not be created meanwhile.
  ASSERT_TRUE(api_.WaitFor([](const FakeApiClient::Request&) { return true; }).has_value());
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(runtime_.LatestContainer("main"), "");
  {
    std::lock_guard<std::mutex> l(probes_.mu);
    probes_.started = true;
  }
  auto running = api_.WaitForStatus([](const Json& s) {
    return Phase(s) == "Running" && MainStatus(s)["state"].contains("running");
  });
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(InitStatus(*running, 0)["started"], true);
}

TEST_F(PodManagerTest, NeverPodWithSidecarSucceedsWhenMainExitsAndStopsTheSidecar) {
  Json pod = WithSidecars(MakePod("job", "Never"), {"proxy"});
  runtime_.ExitOnStart("main", 0);
  manager_->HandlePodEvent("ADDED", pod);
  auto done = api_.WaitForStatus([](const Json& s) { return Phase(s) == "Succeeded"; });
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(InitStatus(*done, 0)["state"].contains("terminated"));
  EXPECT_THAT(runtime_.Calls(), Contains("StopContainer proxy timeout=30"));
}

TEST_F(PodManagerTest, DeletionStopsMainThenSidecarsInReverseOrder) {
  Json pod = WithSidecars(MakePod("layers"), {"first", "second"});
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) {
                    return Phase(s) == "Running" && MainStatus(s)["state"].contains("running");
                  })
                  .has_value());
  pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:01:00Z";
  pod["metadata"]["deletionGracePeriodSeconds"] = 7;
  manager_->HandlePodEvent("MODIFIED", pod);
  ASSERT_TRUE(
      api_.WaitFor([](const FakeApiClient::Request& r) { return r.verb == "DELETE"; }).has_value());
  auto calls = runtime_.Calls();
  auto pos = [&](const std::string& prefix) { return FirstCallWithPrefix(calls, prefix); };
  ASSERT_LT(pos("StopContainer first"), static_cast<long>(calls.size()));
  EXPECT_LT(pos("StopContainer main timeout=7"), pos("StopContainer second"));
  EXPECT_LT(pos("StopContainer second"), pos("StopContainer first"));
}

// --- Lifecycle hooks ---

TEST_F(PodManagerTest, FailingPostStartHookKillsTheContainerWhichIsRestarted) {
  Json pod = MakePod("poststart");
  pod["spec"]["containers"][0]["lifecycle"] = {
      {"postStart", {{"exec", {{"command", {"hook-fail"}}}}}}};
  manager_->HandlePodEvent("ADDED", pod);
  auto restarted =
      api_.WaitForStatus([](const Json& s) { return MainStatus(s)["restartCount"] >= 1; });
  ASSERT_TRUE(restarted.has_value());
  EXPECT_EQ(MainStatus(*restarted)["lastState"]["terminated"]["exitCode"], 137);
  EXPECT_THAT(runtime_.Calls(), Contains("StopContainer main timeout=30"));
  std::lock_guard<std::mutex> l(events_mu_);
  EXPECT_THAT(
      events_,
      Contains("FailedPostStartHook: Exec lifecycle hook ([hook-fail]) for Container \"main\" "
               "failed - error: boom"));
}

TEST_F(PodManagerTest, PostStartHookRunsBeforeTheContainerIsReportedRunning) {
  Json pod = MakePod("poststart-ok");
  pod["spec"]["containers"][0]["lifecycle"] = {
      {"postStart", {{"exec", {{"command", {"touch", "/ready"}}}}}}};
  std::atomic<int> hook_runs{0};
  {
    std::lock_guard<std::mutex> l(probes_.mu);
    probes_.on_run = [&](const ProbeTarget& t) {
      if (t.probe.contains("exec") && t.probe["exec"]["command"][0] == "touch") {
        // No status shows main running while its hook runs.
        for (const auto& r : api_.Requests()) {
          if (r.verb == "PATCH" && r.body.contains("status") &&
              r.body["status"].contains("containerStatuses")) {
            EXPECT_FALSE(r.body["status"]["containerStatuses"][0]["state"].contains("running"));
          }
        }
        ++hook_runs;
      }
    };
  }
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());
  EXPECT_EQ(hook_runs.load(), 1);
  EXPECT_EQ(MainStatus(*manager_->GetPodStatus("uid-poststart-ok"))["restartCount"], 0);
}

TEST_F(PodManagerTest, PreStopHookRunsBeforeStopAndCountsAgainstTheGracePeriod) {
  Json pod = MakePod("prestop");
  pod["spec"]["containers"][0]["lifecycle"] = {{"preStop", {{"sleep", {{"seconds", 1}}}}}};
  pod["spec"]["initContainers"] =
      Json::parse(R"([{"name": "proxy", "image": "registry.local/busybox:1.36",
      "restartPolicy": "Always", "lifecycle": {"preStop": {"exec": {"command": ["hook-fail"]}}}}])");
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) {
                    return Phase(s) == "Running" && MainStatus(s)["state"].contains("running");
                  })
                  .has_value());
  pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:01:00Z";
  pod["metadata"]["deletionGracePeriodSeconds"] = 7;
  absl::Time start = absl::Now();
  manager_->HandlePodEvent("MODIFIED", pod);
  ASSERT_TRUE(
      api_.WaitFor([](const FakeApiClient::Request& r) { return r.verb == "DELETE"; }).has_value());
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));  // the sleep hook ran
  auto calls = runtime_.Calls();
  // main: 7 s minus the 1 s hook; the sidecar: what is left (>= 2 s) after its failed hook.
  EXPECT_THAT(calls, Contains("StopContainer main timeout=6"));
  auto pos = [&](const std::string& prefix) { return FirstCallWithPrefix(calls, prefix); };
  EXPECT_LT(pos("StopContainer main"), pos("StopContainer proxy"));
  ASSERT_LT(pos("StopContainer proxy"), static_cast<long>(calls.size()));
  std::lock_guard<std::mutex> l(events_mu_);
  EXPECT_THAT(
      events_,
      Contains("FailedPreStopHook: Exec lifecycle hook ([hook-fail]) for Container \"proxy\" "
               "failed - error: boom"));
  EXPECT_THAT(event_paths_, Contains("FailedPreStopHook spec.initContainers{proxy}"));
}

// --- Ephemeral containers ---

TEST_F(PodManagerTest, EphemeralContainerStartsInTheTargetsPidNamespaceAndIsNeverRestarted) {
  Json pod = MakePod("debugged");
  manager_->HandlePodEvent("ADDED", pod);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) {
                    return Phase(s) == "Running" && MainStatus(s)["state"].contains("running");
                  })
                  .has_value());
  std::string main_id = runtime_.LatestContainer("main");
  // What the ephemeralcontainers subresource adds (kubectl debug --target=main).
  pod["spec"]["ephemeralContainers"] =
      Json::parse(R"([{"name": "debugger", "image": "registry.local/busybox:1.36",
      "command": ["ps"], "targetContainerName": "main", "stdin": true, "tty": true}])");
  manager_->HandlePodEvent("MODIFIED", pod);
  auto debug = api_.WaitForStatus([](const Json& s) {
    return s.contains("ephemeralContainerStatuses") &&
           s["ephemeralContainerStatuses"][0]["state"].contains("running");
  });
  ASSERT_TRUE(debug.has_value());
  EXPECT_EQ((*debug)["ephemeralContainerStatuses"][0]["name"], "debugger");
  EXPECT_EQ(Phase(*debug), "Running");
  std::string dbg = runtime_.LatestContainer("debugger");
  const auto cfg = runtime_.Containers().at(dbg).config;
  EXPECT_EQ(cfg.linux().security_context().namespace_options().pid(), runtime::v1::TARGET);
  EXPECT_EQ(cfg.linux().security_context().namespace_options().target_id(), main_id);
  EXPECT_TRUE(cfg.tty());
  EXPECT_TRUE(cfg.stdin());
  {
    std::lock_guard<std::mutex> l(events_mu_);
    EXPECT_THAT(event_paths_, Contains("Started spec.ephemeralContainers{debugger}"));
  }
  EXPECT_EQ(runtime_.LatestContainer("main"), main_id);

  // It exits: reported terminated, not restarted although the pod's policy is Always.
  runtime_.ExitContainer(dbg, 0);
  auto exited = api_.WaitForStatus([](const Json& s) {
    return s.contains("ephemeralContainerStatuses") &&
           s["ephemeralContainerStatuses"][0]["state"].contains("terminated");
  });
  ASSERT_TRUE(exited.has_value());
  pod["metadata"]["labels"]["touched"] = "1";  // another sync
  manager_->HandlePodEvent("MODIFIED", pod);
  ASSERT_TRUE(api_.WaitFor([](const FakeApiClient::Request&) { return true; }).has_value());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(runtime_.LatestContainer("debugger"), dbg);
  EXPECT_EQ(
      (*manager_->GetPodStatus("uid-debugged"))["ephemeralContainerStatuses"][0]["restartCount"],
      0);
}

// A pod the typed model cannot read is reported as a Warning event naming the field and
// otherwise ignored: it does not crash the manager, other pods run, a known pod keeps its last
// good spec, and its deletion still applies.
TEST_F(PodManagerTest, MalformedPodIsReportedAndDoesNotAffectOtherPods) {
  Json bad = MakePod("bad");
  bad["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty";
  manager_->HandlePodEvent("ADDED", bad);
  {
    std::lock_guard<std::mutex> l(events_mu_);
    ASSERT_EQ(events_.size(), 1u);
    EXPECT_EQ(
        events_[0],
        "FailedToParsePod: berth cannot read the pod: spec.containers[0].ports[0].containerPort: "
        "want an integer, got string");
  }
  EXPECT_TRUE(manager_->PodUids().empty());

  Json good = MakePod("good");
  manager_->HandlePodEvent("ADDED", good);
  ASSERT_TRUE(api_.WaitForStatus([](const Json& s) { return Phase(s) == "Running"; }).has_value());

  // A malformed update of a running pod keeps it running on its last good spec.
  Json broken = good;
  broken["spec"]["terminationGracePeriodSeconds"] = "30";
  manager_->HandlePodEvent("MODIFIED", broken);
  EXPECT_EQ(manager_->PodUids(), std::vector<std::string>{"uid-good"});
  EXPECT_EQ(manager_->ActivePods().at(0).raw, good);

  // Its deletion, even malformed, still removes it.
  manager_->HandlePodEvent("DELETED", broken);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!manager_->PodUids().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(manager_->PodUids().empty());
}

}  // namespace
}  // namespace berth::kubelet
