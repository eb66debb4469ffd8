// Integration test of cri/image against a real registry (Debian's docker-registry) running
// inside a network namespace this test creates. Images are built with umoci from
// busybox-static and pushed with skopeo (OCI and Docker schema 2). Needs root.
// Our headers first: api.pb.h must be parsed before <signal.h> (pulled in by several system
// headers) defines SIG* macros that collide with the CRI Signal enum.
// clang-format off
#include "cri/image/image_store.h"  // first: the CRI protos clash with the SIG* macros (gtest, httplib)
// clang-format on

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/process.h"
#include "base/status.h"
#include "cri/image/registry.h"
#include "cri/store/db.h"
#include "metrics/fs_usage.h"

#include <signal.h>
#include <sys/wait.h>

namespace berth::cri::image {
namespace {

// Shared across the suite: netns, registry process, pushed images.
struct Env {
  std::string netns;
  std::string dir;
  pid_t registry_pid = -1;
  int port = 0;
  std::string host;  // "127.0.0.1:<port>"
  std::string skip_reason;
};
Env* env = nullptr;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return -1;
  }
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

absl::Status Sh(const std::vector<std::string>& argv) {
  auto r = RunOk(argv, "", std::chrono::minutes(3));
  return r.status();
}

class ImageIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    env = new Env;
    if (geteuid() != 0) {
      env->skip_reason = "needs root";
      return;
    }
    for (const char* tool : {"docker-registry", "umoci", "skopeo", "ip"}) {
      if (!LookPath(tool).ok()) {
        env->skip_reason = absl::StrCat(tool, " not installed");
        return;
      }
    }
    char tmpl[] = "/tmp/berth-image-it-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    env->dir = tmpl;
    // Network namespace, entered by this (still single) thread: everything started later
    // (registry, skopeo, our HTTP client) lives inside it.
    env->netns = absl::StrCat("berth-img-", getpid());
    ASSERT_TRUE(Sh({"ip", "netns", "add", env->netns}).ok());
    int nsfd = open(absl::StrCat("/run/netns/", env->netns).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(nsfd, 0);
    ASSERT_EQ(setns(nsfd, CLONE_NEWNET), 0) << strerror(errno);
    close(nsfd);
    ASSERT_TRUE(Sh({"ip", "link", "set", "lo", "up"}).ok());

    // Registry on a free loopback port.
    env->port = FreePort();
    ASSERT_GT(env->port, 0);
    env->host = absl::StrCat("127.0.0.1:", env->port);
    std::string config =
        absl::StrCat("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ", env->dir,
                     "/registry\n  delete:\n    enabled: true\nhttp:\n  addr: ", env->host, "\n");
    ASSERT_TRUE(WriteFileAtomic(env->dir + "/registry.yml", config).ok());
    int log =
        open((env->dir + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    SpawnOptions so;
    so.stdout_fd = log;
    so.stderr_fd = log;
    auto pid = Spawn({"docker-registry", "serve", env->dir + "/registry.yml"}, so);
    close(log);
    ASSERT_TRUE(pid.ok()) << pid.status();
    env->registry_pid = *pid;
    // Wait for the registry to answer /v2/.
    bool up = false;
    for (int i = 0; i < 200 && !up; ++i) {
      std::string body;
      auto st = HttpGet(absl::StrCat("http://", env->host, "/v2/"), {}, nullptr, &body, nullptr);
      up = st.ok() && *st == 200;
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(up) << "registry did not come up: "
                    << ReadFile(env->dir + "/registry.log").value_or("");

    // An OCI image built with umoci unpack/repack (Debian's `umoci insert` writes tars
    // without the final padding): layer 0 = busybox rootfs, layer 1 = whiteout of
    // /etc/removed plus a new /var/cache/new.
    const std::string oci = env->dir + "/oci";
    const std::string bundle = env->dir + "/bundle";
    const std::string rootfs = bundle + "/rootfs";
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"umoci", "init", "--layout", oci},
             {"umoci", "new", "--image", oci + ":latest"},
             {"umoci", "unpack", "--image", oci + ":latest", bundle}}) {
      auto r = RunOk(argv, "", std::chrono::minutes(3));
      ASSERT_TRUE(r.ok()) << r.status();
    }
    ASSERT_TRUE(MkdirAll(rootfs + "/bin").ok());
    ASSERT_TRUE(MkdirAll(rootfs + "/etc").ok());
    ASSERT_TRUE(MkdirAll(rootfs + "/var/cache").ok());
    ASSERT_TRUE(Sh({"cp", "/bin/busybox", rootfs + "/bin/busybox"}).ok());
    ASSERT_EQ(symlink("busybox", (rootfs + "/bin/sh").c_str()), 0);
    ASSERT_TRUE(WriteFileAtomic(rootfs + "/etc/removed", "gone soon\n").ok());
    ASSERT_TRUE(
        Sh({"umoci", "repack", "--refresh-bundle", "--image", oci + ":latest", bundle}).ok());
    ASSERT_EQ(unlink((rootfs + "/etc/removed").c_str()), 0);
    ASSERT_TRUE(WriteFileAtomic(rootfs + "/var/cache/new", "new\n").ok());
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"umoci", "repack", "--image", oci + ":latest", bundle},
             {"umoci",
              "config",
              "--image",
              oci + ":latest",
              "--config.entrypoint",
              "/bin/sh",
              "--config.cmd",
              "-c",
              "--config.cmd",
              "echo hi",
              "--config.env",
              "FOO=bar",
              "--config.workingdir",
              "/tmp",
              "--config.user",
              "1000:1000",
              "--config.label",
              "org.test=yes",
              "--config.stopsignal",
              "SIGINT"},
             // Same layers, another config: a second image sharing every layer.
             {"umoci", "config", "--image", oci + ":latest", "--tag", "other", "--config.label",
              "variant=other"},
             {"skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false",
              "oci:" + oci + ":latest", absl::StrCat("docker://", env->host, "/busybox:latest")},
             {"skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false",
              "oci:" + oci + ":other", absl::StrCat("docker://", env->host, "/busybox:other")},
             {"skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false", "--format", "v2s2",
              "oci:" + oci + ":latest",
              absl::StrCat("docker://", env->host, "/busybox-v2s2:latest")},
             {"skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false",
              "oci:" + oci + ":latest",
              absl::StrCat("docker://", env->host, "/library/busybox:mirrored")},
         }) {
      auto r = RunOk(argv, "", std::chrono::minutes(3));
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }

  static void TearDownTestSuite() {
    if (env->registry_pid > 0) {
      kill(env->registry_pid, SIGTERM);
      int st;
      waitpid(env->registry_pid, &st, 0);
    }
    if (!env->netns.empty()) (void)Sh({"ip", "netns", "del", env->netns});
    if (!env->dir.empty()) (void)RemoveAll(env->dir);
    delete env;
    env = nullptr;
  }

  void SetUp() override {
    if (!env->skip_reason.empty()) GTEST_SKIP() << env->skip_reason;
    ASSERT_GT(env->registry_pid, 0) << "suite setup failed";
    root_ = absl::StrCat(env->dir, "/store-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(MkdirAll(root_).ok());
    auto db = store::Db::Open(root_ + "/meta.db", ImageStore::Schema());
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    ImageStoreOptions o;
    o.root_dir = root_ + "/image";
    o.db = db_.get();
    o.registry.insecure_registries = {env->host};
    o.registry.mirrors = {{"docker.io", absl::StrCat("http://", env->host)}};
    o.pinned_images = {"busybox:mirrored"};
    // As berth runs it: ImageFsInfo from the background measurement (never refreshed here,
    // so the usage seen after pulls and removals comes from the store's own walk).
    fs_ = std::make_unique<metrics::FsUsageCache>(
        metrics::FsUsageCache::Options{std::chrono::hours(1)});
    o.fs_usage = fs_.get();
    store_ = std::make_unique<ImageStore>(o);
    ASSERT_TRUE(store_->Init().ok());
  }

  // ImageFsInfo's image filesystem used bytes (0 on error, with a failure).
  uint64_t ImageFsUsedBytes() {
    auto fs = store_->ImageFsInfo({});
    EXPECT_TRUE(fs.ok()) << fs.status();
    return fs.ok() && fs->image_filesystems_size() == 1
               ? fs->image_filesystems(0).used_bytes().value()
               : 0;
  }

  absl::StatusOr<std::string> Pull(const std::string& ref) {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    ASSIGN_OR_RETURN(auto resp, store_->PullImage(req));
    return resp.image_ref();
  }

  absl::Status Remove(const std::string& ref) {
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(ref);
    return store_->RemoveImage(req).status();
  }

  std::string root_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<metrics::FsUsageCache> fs_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImageIntegrationTest, PullOciImageUnpacksLayersAndResolves) {
  const std::string ref = env->host + "/busybox:latest";
  auto id = Pull(ref);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(IsSha256Digest(*id)) << *id;

  auto img = store_->Resolve(ref);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->id, *id);
  ASSERT_EQ(img->layer_dirs.size(), 2u);
  EXPECT_TRUE(PathExists(img->layer_dirs[0] + "/bin/busybox"));
  struct stat st;
  ASSERT_EQ(lstat((img->layer_dirs[0] + "/bin/sh").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(lstat((img->layer_dirs[1] + "/etc/removed").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) << "whiteout not converted";
  EXPECT_TRUE(PathExists(img->layer_dirs[1] + "/var/cache/new"));
  EXPECT_FALSE(PathExists(img->layer_dirs[1] + "/bin/busybox"));
  EXPECT_EQ(img->config.entrypoint, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(img->config.cmd, (std::vector<std::string>{"-c", "echo hi"}));
  EXPECT_NE(std::find(img->config.env.begin(), img->config.env.end(), "FOO=bar"),
            img->config.env.end());
  EXPECT_EQ(img->config.working_dir, "/tmp");
  EXPECT_EQ(img->config.user, "1000:1000");
  EXPECT_EQ(img->config.stop_signal, "SIGINT");
  EXPECT_EQ(img->config.labels["org.test"], "yes");
  EXPECT_EQ(img->repo_tags, std::vector<std::string>{ref});
  ASSERT_EQ(img->repo_digests.size(), 1u);

  // Also resolvable by ID, ID prefix, and repo digest.
  EXPECT_TRUE(store_->Resolve(*id).ok());
  EXPECT_TRUE(store_->Resolve(id->substr(7, 12)).ok());
  EXPECT_TRUE(store_->Resolve(img->repo_digests[0]).ok());
  auto by_digest = Pull(img->repo_digests[0]);  // pull by digest: already present, same image
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(*by_digest, *id);

  v1::ImageStatusRequest sreq;
  sreq.mutable_image()->set_image(ref);
  sreq.set_verbose(true);
  auto status = store_->ImageStatus(sreq);
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(status->has_image());
  EXPECT_EQ(status->image().id(), *id);
  EXPECT_EQ(status->image().uid().value(), 1000);
  EXPECT_GT(status->image().size(), 500000u);  // busybox-static is ~1-2 MB compressed
  EXPECT_NE(status->info().at("info").find("chainIDs"), std::string::npos);

  auto fs = store_->ImageFsInfo({});
  ASSERT_TRUE(fs.ok());
  ASSERT_EQ(fs->image_filesystems_size(), 1);
  EXPECT_GT(fs->image_filesystems(0).used_bytes().value(), 1000000u);
}

TEST_F(ImageIntegrationTest, DockerSchema2Pull) {
  auto v2_id = Pull(env->host + "/busybox-v2s2:latest");
  ASSERT_TRUE(v2_id.ok()) << v2_id.status();
  auto v2 = store_->Resolve(env->host + "/busybox-v2s2:latest");
  ASSERT_TRUE(v2.ok()) << v2.status();
  ASSERT_EQ(v2->layer_dirs.size(), 2u);
  EXPECT_TRUE(PathExists(v2->layer_dirs[0] + "/bin/busybox"));
  EXPECT_EQ(v2->config.entrypoint, std::vector<std::string>{"/bin/sh"});

  // The OCI push of the same config is the same image (same ID): one image, two tags.
  auto oci_id = Pull(env->host + "/busybox:latest");
  ASSERT_TRUE(oci_id.ok()) << oci_id.status();
  EXPECT_EQ(*oci_id, *v2_id);
  auto list = store_->ListImages({});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->images_size(), 1);
  EXPECT_EQ(list->images(0).repo_tags_size(), 2);
  EXPECT_EQ(list->images(0).repo_digests_size(), 2);
}

TEST_F(ImageIntegrationTest, RemoveImageFreesOnlyUnsharedLayers) {
  const uint64_t empty_used = ImageFsUsedBytes();
  auto a_id = Pull(env->host + "/busybox:latest");
  ASSERT_TRUE(a_id.ok()) << a_id.status();
  auto b_id = Pull(env->host + "/busybox:other");
  ASSERT_TRUE(b_id.ok()) << b_id.status();
  ASSERT_NE(*a_id, *b_id);
  auto a = store_->Resolve(*a_id);
  auto b = store_->Resolve(*b_id);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->layer_dirs, b->layer_dirs);  // same DiffIDs -> same chain IDs, unpacked once
  EXPECT_EQ(b->config.labels["variant"], "other");
  // ImageFsInfo follows pulls and removals at once, though the background cache is older.
  const uint64_t pulled_used = ImageFsUsedBytes();
  EXPECT_GT(pulled_used, empty_used + 1000000) << "busybox's layer is not in ImageFsInfo";
  EXPECT_EQ(ImageFsUsedBytes(), pulled_used);  // unchanged store: the same answer

  v1::ListImagesRequest filtered;
  filtered.mutable_filter()->mutable_image()->set_image(env->host + "/busybox:other");
  auto list = store_->ListImages(filtered);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->images_size(), 1);
  EXPECT_EQ(list->images(0).id(), *b_id);

  // Removing one image (by tag) keeps the layers the other uses.
  ASSERT_TRUE(Remove(env->host + "/busybox:latest").ok());
  for (const auto& d : a->layer_dirs) EXPECT_TRUE(PathExists(d)) << d;
  v1::ImageStatusRequest sreq;
  sreq.mutable_image()->set_image(env->host + "/busybox:latest");
  auto status = store_->ImageStatus(sreq);
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status->has_image());  // NotFound is an empty OK response

  // Removing the last user (by ID) frees them.
  ASSERT_TRUE(Remove(*b_id).ok());
  for (const auto& d : a->layer_dirs) EXPECT_FALSE(PathExists(d)) << d;
  EXPECT_TRUE(Remove(*b_id).ok());  // idempotent
  list = store_->ListImages({});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->images_size(), 0);
  auto r = store_->Resolve(*b_id);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  auto layers = ListDir(root_ + "/image/layers");
  ASSERT_TRUE(layers.ok());
  EXPECT_TRUE(layers->empty());
  EXPECT_LT(ImageFsUsedBytes(), pulled_used - 1000000) << "freed layers still in ImageFsInfo";
}

TEST_F(ImageIntegrationTest, ConcurrentPullsCoalesce) {
  const std::string ref = env->host + "/busybox:latest";
  std::vector<absl::StatusOr<std::string>> results(4, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { results[i] = Pull(ref); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, *results[0]);
  }
  auto entries = ListDir(root_ + "/image/layers");
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 2u);
  auto tmp = ListDir(root_ + "/image/tmp");
  ASSERT_TRUE(tmp.ok());
  EXPECT_TRUE(tmp->empty());
}

TEST_F(ImageIntegrationTest, MirrorServesDockerHubNames) {
  auto id = Pull("busybox:mirrored");  // docker.io/library/busybox via the mirror
  ASSERT_TRUE(id.ok()) << id.status();
  auto img = store_->Resolve("docker.io/library/busybox:mirrored");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->repo_tags, std::vector<std::string>{"docker.io/library/busybox:mirrored"});
  // Pinned by its normalized name (ImageStoreOptions.pinned_images); other images are not.
  v1::ImageStatusRequest sreq;
  sreq.mutable_image()->set_image("busybox:mirrored");
  auto st = store_->ImageStatus(sreq);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->image().pinned());
  ASSERT_TRUE(Pull(env->host + "/busybox:other").ok());  // another image ID
  sreq.mutable_image()->set_image(env->host + "/busybox:other");
  EXPECT_FALSE(store_->ImageStatus(sreq)->image().pinned());
}

TEST_F(ImageIntegrationTest, UnknownTagIsNotFoundAndDeadRegistryUnavailable) {
  auto id = Pull(env->host + "/busybox:nope");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound) << id.status();
  EXPECT_NE(id.status().message().find("pull " + env->host + "/busybox:nope"), std::string::npos)
      << id.status();
  EXPECT_NE(id.status().message().find("manifest unknown"), std::string::npos) << id.status();

  id = Pull(env->host + "/nosuchrepo:latest");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound) << id.status();

  int dead = FreePort();
  ImageStoreOptions o;
  o.root_dir = root_ + "/image2";
  o.db = db_.get();
  o.registry.insecure_registries = {absl::StrCat("127.0.0.1:", dead)};
  ImageStore other(o);
  ASSERT_TRUE(other.Init().ok());
  auto r = other.Pull(absl::StrCat("127.0.0.1:", dead, "/busybox:latest"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();

  // A loopback registry not listed as insecure: HTTPS first, then plain HTTP when HTTPS cannot
  // connect, as containerd does for localhost and 127.0.0.0/8 (other hosts stay HTTPS-only:
  // cri/image/registry_test.cc).
  ImageStoreOptions s;
  s.root_dir = root_ + "/image3";
  s.db = db_.get();
  ImageStore loopback(s);
  ASSERT_TRUE(loopback.Init().ok());
  auto fallback = loopback.Pull(env->host + "/busybox:latest", {});
  EXPECT_TRUE(fallback.ok()) << fallback.status();
}

// A registry front requiring bearer tokens (token endpoint behind basic auth, as Docker Hub
// does), proxying manifests to the real registry and redirecting blob requests to it. With
// `corrupt_blobs` it needs no auth and serves every blob with one byte flipped.
class TokenAuthFront {
 public:
  explicit TokenAuthFront(bool corrupt_blobs = false) : corrupt_blobs_(corrupt_blobs) {
    srv_.Get("/token", [this](const httplib::Request& req, httplib::Response& res) {
      // base64("user:pass")
      if (req.get_header_value("Authorization") != "Basic dXNlcjpwYXNz") {
        res.status = 401;
        return;
      }
      scope_ = req.get_param_value("scope");
      res.set_content(R"({"token":"tok123"})", "application/json");
    });
    srv_.Get(R"(/v2/(.*))", [this](const httplib::Request& req, httplib::Response& res) {
      if (!corrupt_blobs_ && req.get_header_value("Authorization") != "Bearer tok123") {
        res.status = 401;
        res.set_header(
            "WWW-Authenticate",
            absl::StrCat("Bearer realm=\"http://127.0.0.1:", port_,
                         "/token\",service=\"front\",scope=\"repository:busybox:pull\""));
        res.set_content(
            R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
            "application/json");
        return;
      }
      std::string real = absl::StrCat("http://", env->host, req.path);
      if (corrupt_blobs_ && req.path.find("/blobs/") != std::string::npos) {
        std::string body;
        auto st = HttpGet(real, {}, nullptr, &body, nullptr);
        res.status = st.ok() ? *st : 502;
        if (!body.empty()) body[body.size() / 2] ^= 0x55;
        res.set_content(body, "application/octet-stream");
        return;
      }
      if (req.path.find("/blobs/") != std::string::npos) {
        res.status = 307;
        res.set_header("Location", real);
        return;
      }
      std::multimap<std::string, std::string> h{{"Accept", req.get_header_value("Accept")}}, rh;
      std::string body;
      auto st = HttpGet(real, h, &rh, &body, nullptr);
      res.status = st.ok() ? *st : 502;
      std::string ct = "application/json";
      for (const auto& [k, v] : rh) {
        if (k == "Content-Type") ct = v;
      }
      res.set_content(body, ct.c_str());
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~TokenAuthFront() {
    srv_.stop();
    thread_.join();
  }
  std::string host() const { return absl::StrCat("127.0.0.1:", port_); }
  const std::string& scope() const { return scope_; }

 private:
  bool corrupt_blobs_;
  httplib::Server srv_;
  int port_ = -1;
  std::thread thread_;
  std::string scope_;
};

TEST_F(ImageIntegrationTest, BearerTokenAuthWithBasicCredentials) {
  TokenAuthFront front;
  ImageStoreOptions o;
  o.root_dir = root_ + "/auth";
  o.db = db_.get();
  o.registry.insecure_registries = {front.host()};
  ImageStore authed(o);
  ASSERT_TRUE(authed.Init().ok());
  const std::string ref = front.host() + "/busybox:latest";

  auto anon = authed.Pull(ref, {});
  ASSERT_FALSE(anon.ok());
  EXPECT_EQ(anon.status().code(), absl::StatusCode::kUnauthenticated) << anon.status();

  RegistryAuth wrong;
  wrong.username = "user";
  wrong.password = "nope";
  EXPECT_EQ(authed.Pull(ref, wrong).status().code(), absl::StatusCode::kUnauthenticated);

  // CRI AuthConfig.auth form: base64("user:pass").
  v1::PullImageRequest req;
  req.mutable_image()->set_image(ref);
  req.mutable_auth()->set_auth("dXNlcjpwYXNz");
  auto resp = authed.PullImage(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(front.scope(), "repository:busybox:pull");
  auto img = authed.Resolve(ref);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->id, resp->image_ref());
  EXPECT_TRUE(PathExists(img->layer_dirs[0] + "/bin/busybox"));
}

TEST_F(ImageIntegrationTest, BlobDigestMismatchFailsPullAndKeepsNothing) {
  TokenAuthFront front(/*corrupt_blobs=*/true);
  ImageStoreOptions o;
  o.root_dir = root_ + "/corrupt";
  o.db = db_.get();
  o.registry.insecure_registries = {front.host()};
  ImageStore store(o);
  ASSERT_TRUE(store.Init().ok());
  auto id = store.Pull(front.host() + "/busybox:latest", {});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kDataLoss) << id.status();
  EXPECT_NE(id.status().message().find("digest mismatch"), std::string::npos) << id.status();
  EXPECT_NE(id.status().message().find("@sha256:"), std::string::npos) << id.status();
  for (const char* d : {"/corrupt/tmp", "/corrupt/layers", "/corrupt/blobs/sha256"}) {
    auto entries = ListDir(root_ + d);
    ASSERT_TRUE(entries.ok());
    EXPECT_TRUE(entries->empty()) << d;
  }
  EXPECT_FALSE(store.Resolve(front.host() + "/busybox:latest").ok());
}

// Every file under `root` as "path size" and every directory as "path/", sorted: the
// store's on-disk state.
std::set<std::string> FilesUnder(const std::string& root) {
  auto out =
      RunOk({"find", root, "(", "-type", "d", "-printf", "%P/\n", ")", "-o", "-printf", "%P %s\n"});
  EXPECT_TRUE(out.ok()) << out.status();
  std::set<std::string> files;
  std::istringstream in(out.value_or(""));
  std::string line;
  while (std::getline(in, line)) {
    files.insert(line);
  }
  return files;
}

// Issue "Bad input": a disk that fills during a pull fails the pull with a clear error,
// leaves no partial blob or layer, and keeps the images pulled before usable.
TEST_F(ImageIntegrationTest, DiskFullDuringPullFailsAndKeepsEarlierImages) {
  // Images that cannot fit, busybox plus 12 MiB in one layer: random data (the download
  // fills the disk) and repeated text (a small blob whose unpacking fills it).
  for (const char* kind : {"random", "text"}) {
    const std::string oci = env->dir + "/oci-" + kind, bundle = env->dir + "/bundle-" + kind;
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"umoci", "init", "--layout", oci},
             {"umoci", "new", "--image", oci + ":latest"},
             {"umoci", "unpack", "--image", oci + ":latest", bundle}}) {
      auto r = RunOk(argv, "", std::chrono::minutes(3));
      ASSERT_TRUE(r.ok()) << r.status();
    }
    ASSERT_TRUE(MkdirAll(bundle + "/rootfs/bin").ok());
    ASSERT_TRUE(Sh({"cp", "/bin/busybox", bundle + "/rootfs/bin/busybox"}).ok());
    // (Repeated text, not zeros: zero blocks may be unpacked as holes.)
    ASSERT_TRUE(Sh({"sh", "-c",
                    absl::StrCat(kind == std::string("random")
                                     ? "head -c 12582912 /dev/urandom"
                                     : "yes berth-fills-the-disk | head -c 12582912",
                                 " > ", bundle, "/rootfs/big")})
                    .ok());
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"umoci", "repack", "--image", oci + ":latest", bundle},
             {"skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false",
              "oci:" + oci + ":latest",
              absl::StrCat("docker://", env->host, "/big-", kind, ":latest")}}) {
      auto r = RunOk(argv, "", std::chrono::minutes(3));
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }

  // The store's root on its own small tmpfs (unmounted whatever happens).
  const std::string mnt = root_ + "/small";
  ASSERT_TRUE(MkdirAll(mnt).ok());
  ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64m,mode=0755"), 0) << strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  ImageStoreOptions o;
  o.root_dir = mnt + "/image";
  o.db = db_.get();
  o.registry.insecure_registries = {env->host};
  auto store = std::make_unique<ImageStore>(o);
  ASSERT_TRUE(store->Init().ok());
  const std::string small_ref = env->host + "/busybox:latest";
  auto first = store->Pull(small_ref, {});
  ASSERT_TRUE(first.ok()) << first.status();

  // Shrink the file system to what is used plus 2 MiB: the big layer cannot fit.
  struct statvfs vfs;
  ASSERT_EQ(statvfs(mnt.c_str(), &vfs), 0);
  uint64_t used = (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
  ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT,
                  absl::StrCat("size=", used + (2 << 20)).c_str()),
            0)
      << strerror(errno);
  const std::set<std::string> before = FilesUnder(o.root_dir);

  for (const char* kind : {"random", "text"}) {
    const std::string ref = absl::StrCat(env->host, "/big-", kind, ":latest");
    auto big = store->Pull(ref, {});
    ASSERT_FALSE(big.ok()) << kind;
    std::cout << "pull on a full disk (" << kind << "): " << big.status() << std::endl;
    EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
    EXPECT_NE(absl::AsciiStrToLower(big.status().message()).find("no space left"),
              std::string::npos)
        << big.status();
    EXPECT_NE(big.status().message().find(ref), std::string::npos) << big.status();
    // Nothing partial stays behind: the store's files are those from before the pull.
    EXPECT_EQ(FilesUnder(o.root_dir), before) << kind;
    EXPECT_FALSE(store->Resolve(ref).ok());
  }

  // The first image is still listed and a process still runs from its rootfs (its layers
  // stacked as the runtime mounts them; the image has only busybox's sh, so builtins).
  auto list = store->ListImages({});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->images_size(), 1);
  EXPECT_EQ(list->images(0).id(), *first);
  auto img = store->Resolve(small_ref);
  ASSERT_TRUE(img.ok()) << img.status();
  const std::string merged = root_ + "/merged";
  ASSERT_TRUE(MkdirAll(merged).ok());
  std::vector<std::string> lower(img->layer_dirs.rbegin(), img->layer_dirs.rend());
  ASSERT_EQ(mount("overlay", merged.c_str(), "overlay", MS_RDONLY,
                  absl::StrCat("lowerdir=", absl::StrJoin(lower, ":")).c_str()),
            0)
      << strerror(errno);
  auto ran = berth::Run({"chroot", merged, "/bin/sh", "-c",
                         "read x < /var/cache/new && echo $x && test ! -e /etc/removed"});
  umount2(merged.c_str(), MNT_DETACH);
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->exit_code, 0) << ran->err;
  EXPECT_EQ(ran->out, "new\n");
  store.reset();
}

}  // namespace
}  // namespace berth::cri::image
