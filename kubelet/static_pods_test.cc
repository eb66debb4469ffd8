#include "kubelet/static_pods.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "base/file.h"

namespace berth::kubelet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

// Writes `text` to dir/name through a hidden temporary file and a rename, as a careful
// administrator does (the source reads every file whose name does not start with ".").
void WriteManifest(const std::string& dir, const std::string& name, const std::string& text) {
  std::string tmp = JoinPath(dir, "." + name + ".tmp");
  ASSERT_TRUE(WriteFileAtomic(tmp, text).ok());
  ASSERT_EQ(rename(tmp.c_str(), JoinPath(dir, name).c_str()), 0);
}

constexpr char kYaml[] = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: main
    image: registry.local/busybox:latest
    command: ["sleep", "3600"]
    ports:
    - containerPort: 80
    env:
    - {name: DEBUG, value: "yes"}
    - {name: PLAIN, value: "on"}
)";

TEST(ManifestToJsonTest, YamlScalarsResolveAsSigsYaml) {
  absl::StatusOr<Json> j = ManifestToJson("a: yes\nb: 'yes'\nc: 12\nd: 1.5\ne: ~\nf: x\ng:\n");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["a"], true);
  EXPECT_EQ((*j)["b"], "yes");
  EXPECT_EQ((*j)["c"], 12);
  EXPECT_EQ((*j)["d"], 1.5);
  EXPECT_TRUE((*j)["e"].is_null());
  EXPECT_EQ((*j)["f"], "x");
  EXPECT_TRUE((*j)["g"].is_null());
}

TEST(ManifestToJsonTest, JsonIsYaml) {
  absl::StatusOr<Json> j = ManifestToJson(R"({"a": "1", "b": [1, true, null], "c": {"d": "e"}})");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, Json::parse(R"({"a": "1", "b": [1, true, null], "c": {"d": "e"}})"));
}

TEST(ManifestToJsonTest, ErrorsSayWhere) {
  absl::StatusOr<Json> j = ManifestToJson("a: [1, 2\nb: c\n");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(j.status().message(), HasSubstr("line "));
  EXPECT_THAT(ManifestToJson("a: 1\n---\nb: 2\n").status().message(),
              HasSubstr("2 YAML documents"));
  EXPECT_THAT(ManifestToJson("").status().message(), HasSubstr("empty manifest"));
}

TEST(ParseStaticPodManifestTest, AppliesTheFileSourceDefaults) {
  absl::StatusOr<Json> pod = ParseStaticPodManifest(kYaml, "/etc/m/web.yaml", "Node-1");
  ASSERT_TRUE(pod.ok()) << pod.status();
  const Json& md = (*pod)["metadata"];
  EXPECT_EQ(md["name"], "web-node-1");
  EXPECT_EQ(md["namespace"], "default");
  std::string uid = md["uid"];
  EXPECT_THAT(uid, SizeIs(32));  // hex of a 128-bit hash
  EXPECT_EQ(md["annotations"][kConfigHashAnnotation], uid);
  EXPECT_EQ(md["annotations"][kConfigSourceAnnotation], "file");
  EXPECT_FALSE(md["annotations"].contains(kConfigSeenAnnotation));
  EXPECT_EQ((*pod)["spec"]["nodeName"], "Node-1");
  EXPECT_THAT((*pod)["spec"]["tolerations"],
              ElementsAre(Json{{"operator", "Exists"}, {"effect", "NoExecute"}}));
  EXPECT_EQ((*pod)["status"]["phase"], "Pending");
  EXPECT_EQ((*pod)["spec"]["containers"][0]["env"][0]["value"], "yes");
}

TEST(ParseStaticPodManifestTest, UidIsStableForTheSameContentAndChangesWithIt) {
  std::string a = ParseStaticPodManifest(kYaml, "/m/web.yaml", "n1")->at("metadata")["uid"];
  // Same content, other formatting and key order (JSON): the same pod.
  Json as_json = *ManifestToJson(kYaml);
  std::string b =
      ParseStaticPodManifest(as_json.dump(2), "/m/web.yaml", "n1")->at("metadata")["uid"];
  EXPECT_EQ(a, b);
  std::string changed = std::string(kYaml) + "  restartPolicy: Never\n";
  std::string c = ParseStaticPodManifest(changed, "/m/web.yaml", "n1")->at("metadata")["uid"];
  EXPECT_NE(a, c);
  std::string other_file =
      ParseStaticPodManifest(kYaml, "/m/web2.yaml", "n1")->at("metadata")["uid"];
  EXPECT_NE(a, other_file);
  std::string other_node =
      ParseStaticPodManifest(kYaml, "/m/web.yaml", "n2")->at("metadata")["uid"];
  EXPECT_NE(a, other_node);
  // A UID in the manifest is kept.
  Json with_uid = as_json;
  with_uid["metadata"]["uid"] = "fixed";
  EXPECT_EQ(ParseStaticPodManifest(with_uid.dump(), "/m/web.yaml", "n1")->at("metadata")["uid"],
            "fixed");
}

TEST(ParseStaticPodManifestTest, KeepsNamespaceAndTolerations) {
  Json pod = *ManifestToJson(kYaml);
  pod["metadata"]["namespace"] = "kube-system";
  pod["spec"]["tolerations"] = Json::array({{{"operator", "Exists"}, {"effect", "NoExecute"}}});
  absl::StatusOr<Json> p = ParseStaticPodManifest(pod.dump(), "/m/x", "n1");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["metadata"]["namespace"], "kube-system");
  EXPECT_THAT((*p)["spec"]["tolerations"], SizeIs(1));
}

TEST(ParseStaticPodManifestTest, MalformedManifestsSayWhy) {
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {"kind: Pod\napiVersion: v1\nspec: [", "not YAML or JSON"},
      {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", "kind is \"Deployment\""},
      {"apiVersion: v2\nkind: Pod\nmetadata: {name: x}\n", "apiVersion is \"v2\""},
      {"apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: [{name: a, image: b}]}\n",
       "metadata.name is required"},
      {"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n",
       "at least one container"},
      {"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: a}]}\n",
       "spec.containers[0].image is required"},
      {"apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\n"
       "spec: {containers: [{name: a, image: b}]}\n",
       "not a lowercase RFC 1123 subdomain"},
      {"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"
       "spec: {containers: [{name: a, image: b, ports: [{containerPort: eighty}]}]}\n",
       "spec.containers[0].ports[0].containerPort"},
      {"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"
       "spec: {serviceAccountName: sa, containers: [{name: a, image: b}]}\n",
       "static pods may not reference serviceaccounts"},
      {"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: a, image: b}],"
       " volumes: [{name: v, secret: {secretName: s}}]}\n",
       "static pods may not reference secrets (via secret volumes)"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Json> p = ParseStaticPodManifest(c.text, "/m/x", "n1");
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(p.status().message(), HasSubstr(c.want)) << c.text;
  }
}

// ---------------------------------------------------------------------------------------
// FilePodSource

class FilePodSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/static_pods_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  void Write(const std::string& name, const std::string& text) { WriteManifest(dir_, name, text); }
  static std::string Manifest(const std::string& name, const std::string& extra = "") {
    return absl::StrCat("apiVersion: v1\nkind: Pod\nmetadata: {name: ", name,
                        "}\nspec:\n  containers: [{name: c, image: busybox}]\n", extra);
  }
  std::unique_ptr<FilePodSource> Source() {
    FilePodSourceOptions o;
    o.path = dir_;
    o.node_name = "n1";
    o.clock = [] { return absl::FromUnixSeconds(1700000000); };
    return std::make_unique<FilePodSource>(o, [this](const std::string& type, const Json& pod) {
      std::lock_guard<std::mutex> l(mu_);
      events_.push_back(type + " " + pod["metadata"]["name"].get<std::string>());
      last_[type] = pod;
    });
  }
  std::vector<std::string> TakeEvents() {
    std::lock_guard<std::mutex> l(mu_);
    return std::exchange(events_, {});
  }
  std::string dir_;
  std::mutex mu_;
  std::vector<std::string> events_;
  std::map<std::string, Json> last_;
};

TEST_F(FilePodSourceTest, AddsChangesAndRemovesPods) {
  Write("a.yaml", Manifest("a"));
  Write("b.json", ManifestToJson(Manifest("b"))->dump());
  Write(".hidden.yaml", Manifest("hidden"));
  ASSERT_TRUE(MkdirAll(JoinPath(dir_, "sub")).ok());
  auto src = Source();
  src->Sync();
  EXPECT_THAT(TakeEvents(), UnorderedElementsAre("ADDED a-n1", "ADDED b-n1"));
  EXPECT_EQ(last_["ADDED"]["metadata"]["annotations"][kConfigSeenAnnotation],
            "2023-11-14T22:13:20Z");
  src->Sync();  // nothing changed
  EXPECT_THAT(TakeEvents(), IsEmpty());

  std::string old_uid;
  for (const auto& [uid, pod] : src->Pods()) {
    if (pod["metadata"]["name"] == "a-n1") old_uid = uid;
  }
  Write("a.yaml", Manifest("a", "  restartPolicy: Never\n"));
  src->Sync();
  EXPECT_THAT(TakeEvents(), ElementsAre("DELETED a-n1", "ADDED a-n1"));
  EXPECT_EQ(last_["DELETED"]["metadata"]["uid"], old_uid);
  EXPECT_NE(last_["ADDED"]["metadata"]["uid"], old_uid);

  ASSERT_TRUE(RemoveAll(JoinPath(dir_, "b.json")).ok());
  src->Sync();
  EXPECT_THAT(TakeEvents(), ElementsAre("DELETED b-n1"));
  EXPECT_THAT(src->Pods(), SizeIs(1));
}

TEST_F(FilePodSourceTest, MalformedFileIsSkippedAndLosesNothing) {
  Write("a.yaml", Manifest("a"));
  Write("b.yaml", Manifest("b"));
  auto src = Source();
  src->Sync();
  EXPECT_THAT(TakeEvents(), UnorderedElementsAre("ADDED a-n1", "ADDED b-n1"));
  std::map<std::string, Json> before = src->Pods();

  // A new malformed file adds nothing; a good file turned bad keeps its pod.
  Write("c.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec: [\n");
  Write("b.yaml", "kind: Pod\n");
  src->Sync();
  EXPECT_THAT(TakeEvents(), IsEmpty());
  EXPECT_EQ(src->Pods(), before);

  // Fixed: read again.
  Write("c.yaml", Manifest("c"));
  src->Sync();
  EXPECT_THAT(TakeEvents(), ElementsAre("ADDED c-n1"));
  // Removing the bad file removes the pod it gave before.
  ASSERT_TRUE(RemoveAll(JoinPath(dir_, "b.yaml")).ok());
  src->Sync();
  EXPECT_THAT(TakeEvents(), ElementsAre("DELETED b-n1"));
}

TEST_F(FilePodSourceTest, DuplicateNameFirstFileWins) {
  Write("a.yaml", Manifest("same"));
  Write("b.yaml", Manifest("same", "  restartPolicy: Never\n"));
  auto src = Source();
  src->Sync();
  EXPECT_THAT(TakeEvents(), ElementsAre("ADDED same-n1"));
  EXPECT_FALSE(last_["ADDED"]["spec"].contains("restartPolicy"));
}

TEST_F(FilePodSourceTest, MissingPathIsEmptyAndWatchedFromStart) {
  FilePodSourceOptions o;
  o.path = JoinPath(dir_, "later");
  o.node_name = "n1";
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> events;
  FilePodSource src(o, [&](const std::string& type, const Json& pod) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(type + " " + pod["metadata"]["name"].get<std::string>());
    cv.notify_all();
  });
  src.Start();
  EXPECT_THAT(src.Pods(), IsEmpty());
  ASSERT_TRUE(MkdirAll(o.path).ok());
  WriteManifest(o.path, "a.yaml", Manifest("a"));
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return !events.empty(); }));
    EXPECT_THAT(events, ElementsAre("ADDED a-n1"));
  }
  // inotify: a removal is seen without waiting for the 20 s period.
  ASSERT_TRUE(RemoveAll(JoinPath(o.path, "a.yaml")).ok());
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return events.size() == 2; }));
    EXPECT_EQ(events[1], "DELETED a-n1");
  }
  src.Stop();
}

// ---------------------------------------------------------------------------------------
// Mirror pods

Json StaticPod(const std::string& name, const std::string& hash) {
  return {{"metadata",
           {{"name", name},
            {"namespace", "default"},
            {"uid", hash},
            {"annotations", {{kConfigHashAnnotation, hash}, {kConfigSourceAnnotation, "file"}}}}},
          {"spec", {{"nodeName", "n1"}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}},
          {"status", {{"phase", "Pending"}}}};
}

Json Mirror(const std::string& name, const std::string& hash, const std::string& uid) {
  Json m = MakeMirrorPod(StaticPod(name, hash), "n1", "node-uid");
  m["metadata"]["uid"] = uid;
  return m;
}

TEST(DecideMirrorTest, Table) {
  Json s = StaticPod("web-n1", "h1");
  Json m = Mirror("web-n1", "h1", "m1");
  Json other_hash = Mirror("web-n1", "h0", "m0");
  Json deleting = m;
  deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  Json not_mirror = m;
  not_mirror["metadata"]["annotations"].erase(kConfigMirrorAnnotation);
  EXPECT_EQ(DecideMirror(nullptr, nullptr), MirrorAction::kNone);
  EXPECT_EQ(DecideMirror(&s, nullptr), MirrorAction::kCreate);
  EXPECT_EQ(DecideMirror(&s, &m), MirrorAction::kNone);
  EXPECT_EQ(DecideMirror(nullptr, &m), MirrorAction::kDelete);
  EXPECT_EQ(DecideMirror(&s, &other_hash), MirrorAction::kDeleteAndCreate);
  EXPECT_EQ(DecideMirror(&s, &deleting), MirrorAction::kDeleteAndCreate);
  EXPECT_EQ(DecideMirror(&s, &not_mirror), MirrorAction::kDeleteAndCreate);
}

TEST(MakeMirrorPodTest, AnnotationAndNodeOwner) {
  Json m = MakeMirrorPod(StaticPod("web-n1", "h1"), "n1", "node-uid");
  EXPECT_EQ(m["metadata"]["annotations"][kConfigMirrorAnnotation], "h1");
  EXPECT_EQ(m["metadata"]["annotations"][kConfigHashAnnotation], "h1");
  EXPECT_FALSE(m["metadata"].contains("uid"));
  EXPECT_FALSE(m.contains("status"));
  EXPECT_EQ(m["metadata"]["ownerReferences"],
            Json::parse(R"([{"apiVersion":"v1","kind":"Node","name":"n1","uid":"node-uid",
                             "controller":true}])"));
  EXPECT_TRUE(IsMirrorPod(m));
  EXPECT_FALSE(IsMirrorPod(StaticPod("web-n1", "h1")));
}

// An in-memory API server for pods: POST assigns a UID, DELETE checks the UID precondition;
// every call is recorded.
class FakePodApi : public KubeApi {
 public:
  absl::StatusOr<Json> Get(const std::string& path) override {
    return absl::NotFoundError("GET " + path);
  }
  absl::StatusOr<Json> Post(const std::string& path, const Json& body) override {
    std::lock_guard<std::mutex> l(mu);
    calls.push_back("POST " + path);
    if (!post_error.ok()) return post_error;
    std::string key = absl::StrCat(path, "/", body["metadata"]["name"].get<std::string>());
    if (objects.count(key)) return absl::AlreadyExistsError("POST " + path);
    Json o = body;
    o["metadata"]["uid"] = absl::StrCat("mirror-", ++next_uid);
    objects[key] = o;
    return o;
  }
  absl::StatusOr<Json> Put(const std::string& path, const Json&) override {
    return absl::UnimplementedError(path);
  }
  absl::StatusOr<Json> Patch(const std::string& path, const Json&, PatchType) override {
    return absl::UnimplementedError(path);
  }
  absl::Status Delete(const std::string& path, const Json& options) override {
    std::lock_guard<std::mutex> l(mu);
    std::string uid = options["preconditions"]["uid"];
    calls.push_back(absl::StrCat("DELETE ", path, " uid=", uid,
                                 " grace=", options["gracePeriodSeconds"].get<int>()));
    auto it = objects.find(path);
    if (it == objects.end()) return absl::NotFoundError("DELETE " + path);
    if (it->second["metadata"]["uid"] != uid) return absl::AbortedError("precondition");
    objects.erase(it);
    return absl::OkStatus();
  }
  std::vector<std::string> TakeCalls() {
    std::lock_guard<std::mutex> l(mu);
    return std::exchange(calls, {});
  }
  std::mutex mu;
  std::vector<std::string> calls;
  std::map<std::string, Json> objects;  // "/api/v1/namespaces/ns/pods/name"
  absl::Status post_error;
  int next_uid = 0;
};

class MirrorPodManagerTest : public ::testing::Test {
 protected:
  MirrorPodManagerTest() {
    MirrorPodManagerOptions o;
    o.node_name = "n1";
    o.node_uid = [this] { return node_uid_; };
    o.on_mirror_changed = [this](const std::string& uid) { changed_.push_back(uid); };
    mgr_ = std::make_unique<MirrorPodManager>(&api_, o);
  }
  static constexpr char kPath[] = "/api/v1/namespaces/default/pods/web-n1";
  FakePodApi api_;
  std::string node_uid_ = "node-uid";
  std::vector<std::string> changed_;
  std::unique_ptr<MirrorPodManager> mgr_;
};

TEST_F(MirrorPodManagerTest, CreatesOnlyAfterTheFirstListAndOnceTheNodeIsKnown) {
  mgr_->HandleStaticPodEvent("ADDED", StaticPod("web-n1", "h1"));
  EXPECT_EQ(mgr_->MirrorUidOf("h1"), "");
  EXPECT_EQ(mgr_->MirrorUidOf("api-pod"), std::nullopt);
  EXPECT_FALSE(mgr_->ReconcileAll());  // the API's mirror pods are not known yet
  EXPECT_THAT(api_.TakeCalls(), IsEmpty());
  mgr_->HandleMirrorPodsSynced();
  node_uid_ = "";
  EXPECT_FALSE(mgr_->ReconcileAll());  // no Node yet: retried
  EXPECT_THAT(api_.TakeCalls(), IsEmpty());
  node_uid_ = "node-uid";
  EXPECT_TRUE(mgr_->ReconcileAll());
  EXPECT_THAT(api_.TakeCalls(), ElementsAre("POST /api/v1/namespaces/default/pods"));
  const Json& created = api_.objects[kPath];
  EXPECT_EQ(created["metadata"]["annotations"][kConfigMirrorAnnotation], "h1");
  EXPECT_EQ(created["metadata"]["ownerReferences"][0]["uid"], "node-uid");
  EXPECT_EQ(mgr_->MirrorUidOf("h1"), "mirror-1");
  EXPECT_THAT(changed_, ElementsAre("h1"));
  // The watch then reports it (and our status writes): nothing more to do.
  mgr_->HandleMirrorPodEvent("ADDED", created);
  mgr_->HandleMirrorPodEvent("MODIFIED", created);
  EXPECT_TRUE(mgr_->ReconcileAll());
  EXPECT_THAT(api_.TakeCalls(), IsEmpty());
  EXPECT_THAT(changed_, SizeIs(1));
}

TEST_F(MirrorPodManagerTest, RecreatesADeletedMirror) {
  mgr_->HandleMirrorPodsSynced();
  mgr_->HandleStaticPodEvent("ADDED", StaticPod("web-n1", "h1"));
  ASSERT_TRUE(mgr_->ReconcileAll());
  Json created = api_.objects[kPath];
  mgr_->HandleMirrorPodEvent("ADDED", created);
  api_.TakeCalls();
  // kubectl delete: graceful first (deletionTimestamp), then gone.
  Json deleting = created;
  deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  mgr_->HandleMirrorPodEvent("MODIFIED", deleting);
  EXPECT_EQ(mgr_->MirrorUidOf("h1"), "");
  ASSERT_TRUE(mgr_->ReconcileAll());
  EXPECT_THAT(api_.TakeCalls(), ElementsAre(absl::StrCat("DELETE ", kPath, " uid=mirror-1 grace=0"),
                                            "POST /api/v1/namespaces/default/pods"));
  EXPECT_EQ(mgr_->MirrorUidOf("h1"), "mirror-2");
  EXPECT_THAT(changed_, ElementsAre("h1", "h1"));
  // The late DELETED event of the old mirror does not forget the new one.
  mgr_->HandleMirrorPodEvent("DELETED", created);
  EXPECT_EQ(mgr_->MirrorUidOf("h1"), "mirror-2");
}

TEST_F(MirrorPodManagerTest, ReplacesAStaleMirrorAndDeletesOrphans) {
  // Mirrors in the API from before: one of an older version of web, one of a removed pod.
  api_.objects[kPath] = Mirror("web-n1", "h0", "old");
  api_.objects["/api/v1/namespaces/default/pods/gone-n1"] = Mirror("gone-n1", "hx", "gone");
  mgr_->HandleMirrorPodEvent("ADDED", api_.objects[kPath]);
  mgr_->HandleMirrorPodEvent("ADDED", api_.objects["/api/v1/namespaces/default/pods/gone-n1"]);
  mgr_->HandleStaticPodEvent("ADDED", StaticPod("web-n1", "h1"));
  mgr_->HandleMirrorPodsSynced();
  ASSERT_TRUE(mgr_->ReconcileAll());
  EXPECT_THAT(api_.TakeCalls(),
              ElementsAre("DELETE /api/v1/namespaces/default/pods/gone-n1 uid=gone grace=0",
                          absl::StrCat("DELETE ", kPath, " uid=old grace=0"),
                          "POST /api/v1/namespaces/default/pods"));
  EXPECT_EQ(api_.objects[kPath]["metadata"]["annotations"][kConfigMirrorAnnotation], "h1");

  // The file changes (new UID h2): the old static pod goes, the new one comes.
  Json mirror = api_.objects[kPath];
  mgr_->HandleMirrorPodEvent("ADDED", mirror);
  mgr_->HandleStaticPodEvent("DELETED", StaticPod("web-n1", "h1"));
  mgr_->HandleStaticPodEvent("ADDED", StaticPod("web-n1", "h2"));
  EXPECT_EQ(mgr_->MirrorUidOf("h1"), std::nullopt);
  EXPECT_EQ(mgr_->MirrorUidOf("h2"), "");
  ASSERT_TRUE(mgr_->ReconcileAll());
  EXPECT_THAT(api_.TakeCalls(),
              ElementsAre(absl::StrCat("DELETE ", kPath, " uid=",
                                       mirror["metadata"]["uid"].get<std::string>(), " grace=0"),
                          "POST /api/v1/namespaces/default/pods"));
  EXPECT_EQ(api_.objects[kPath]["metadata"]["annotations"][kConfigMirrorAnnotation], "h2");

  // The file is removed: the mirror goes.
  mgr_->HandleMirrorPodEvent("ADDED", api_.objects[kPath]);
  mgr_->HandleStaticPodEvent("DELETED", StaticPod("web-n1", "h2"));
  ASSERT_TRUE(mgr_->ReconcileAll());
  EXPECT_THAT(api_.TakeCalls(), SizeIs(1));
  EXPECT_FALSE(api_.objects.count(kPath));
}

TEST_F(MirrorPodManagerTest, FailedCreateIsRetried) {
  mgr_->HandleMirrorPodsSynced();
  mgr_->HandleStaticPodEvent("ADDED", StaticPod("web-n1", "h1"));
  api_.post_error = absl::UnavailableError("apiserver down");
  EXPECT_FALSE(mgr_->ReconcileAll());
  EXPECT_EQ(mgr_->MirrorUidOf("h1"), "");
  api_.post_error = absl::OkStatus();
  EXPECT_TRUE(mgr_->ReconcileAll());
  EXPECT_EQ(mgr_->MirrorUidOf("h1"), "mirror-1");
}

}  // namespace
}  // namespace berth::kubelet
