// ImageStore behaviour that needs no registry: empty-store answers of the CRI calls.
// Pulls are covered by tests/integration/image_integration_test.cc.
#include "cri/image/image_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <thread>

#include "base/file.h"
#include "metrics/fs_usage.h"

namespace berth::cri::image {
namespace {

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-image-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Db::Open(dir_ + "/meta.db", "");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    ImageStoreOptions o;
    o.root_dir = dir_ + "/image";
    o.db = db_.get();
    store_ = std::make_unique<ImageStore>(o);
    ASSERT_TRUE(store_->Init().ok());
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  std::string dir_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImageStoreTest, InitCreatesLayoutAndIsIdempotent) {
  for (const char* d : {"/image/blobs/sha256", "/image/layers", "/image/tmp"})
    EXPECT_TRUE(PathExists(dir_ + d)) << d;
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/image/tmp/leftover", "x").ok());
  EXPECT_TRUE(store_->Init().ok());
  EXPECT_FALSE(PathExists(dir_ + "/image/tmp/leftover"));  // interrupted work is discarded
  // A layer dir with no metadata (crash between unpack and commit) is removed too.
  const std::string orphan = store_->LayerDir("sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(MkdirAll(orphan + "/bin").ok());
  EXPECT_TRUE(store_->Init().ok());
  EXPECT_FALSE(PathExists(orphan));
}

TEST_F(ImageStoreTest, EmptyStoreAnswers) {
  auto r = store_->Resolve("busybox");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("busybox"), std::string::npos);

  v1::ImageStatusRequest sreq;
  sreq.mutable_image()->set_image("127.0.0.1:5000/busybox:latest");
  auto status = store_->ImageStatus(sreq);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->has_image());

  v1::RemoveImageRequest rreq;
  rreq.mutable_image()->set_image(
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(store_->RemoveImage(rreq).ok());

  auto list = store_->ListImages({});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->images_size(), 0);

  auto fs = store_->ImageFsInfo({});
  ASSERT_TRUE(fs.ok()) << fs.status();
  ASSERT_EQ(fs->image_filesystems_size(), 1);
  EXPECT_EQ(fs->image_filesystems(0).fs_id().mountpoint(), dir_ + "/image");
  EXPECT_GE(fs->image_filesystems(0).inodes_used().value(), 4u);
  EXPECT_GT(fs->image_filesystems(0).used_bytes().value(), 0u);
  // One filesystem for images and writable layers: the same fs_id (not split).
  ASSERT_EQ(fs->container_filesystems_size(), 1);
  EXPECT_EQ(fs->container_filesystems(0).fs_id().mountpoint(), dir_ + "/image");
}

// With an FsUsageCache, ImageFsInfo answers from its background measurement of the store
// (a walk on the call only before the first one), as containerd answers from its snapshot
// syncer: a file added since shows up after the next measurement, not before.
TEST_F(ImageStoreTest, ImageFsInfoFromTheBackgroundMeasurement) {
  metrics::FsUsageCache fs({std::chrono::hours(1)});
  ImageStoreOptions o;
  o.root_dir = dir_ + "/image";
  o.db = db_.get();
  o.fs_usage = &fs;
  ImageStore store(o);
  ASSERT_TRUE(store.Init().ok());
  auto used = [&]() -> uint64_t {
    auto r = store.ImageFsInfo({});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->image_filesystems(0).used_bytes().value() : 0;
  };
  const uint64_t before = used();  // walked: nothing measured yet
  EXPECT_GT(before, 0u);
  // The cache measures a new path once at once in the background; wait for that walk.
  for (int i = 0; i < 1000 && fs.walks() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(fs.walks(), 1u) << "ImageFsInfo did not ask the cache for the store";
  fs.RefreshNow();  // stands for the cache's next periodic pass
  ASSERT_TRUE(fs.Get(o.root_dir).has_value());
  const uint64_t walks = fs.walks();
  ASSERT_TRUE(WriteFileAtomic(o.root_dir + "/blobs/sha256/big", std::string(1 << 20, 'x')).ok());
  EXPECT_EQ(used(), fs.Get(o.root_dir)->used_bytes);
  EXPECT_LT(used(), before + (1 << 20)) << "the call walked the store";
  EXPECT_EQ(fs.walks(), walks);
  fs.RefreshNow();
  EXPECT_GE(used(), before + (1 << 20));
}

TEST_F(ImageStoreTest, PullRejectsBadReference) {
  v1::PullImageRequest req;
  req.mutable_image()->set_image("Not/A:valid tag");
  auto resp = store_->PullImage(req);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::cri::image
