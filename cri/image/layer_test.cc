#include "cri/image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/file.h"
#include "cri/image/digest.h"

namespace berth::cri::image {
namespace {

struct Entry {
  std::string path;
  mode_t type = AE_IFREG;
  int perm = 0644;
  std::string data;
  std::string symlink;
  std::string hardlink;
  int uid = 0;
  int gid = 0;
};

enum class Compression { kNone, kGzip, kZstd };

// Writes a tar (pax) with `entries` to `path`; returns false when the filter is unsupported.
bool WriteTar(const std::string& path, const std::vector<Entry>& entries,
              Compression c = Compression::kNone) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (c == Compression::kGzip && archive_write_add_filter_gzip(a) != ARCHIVE_OK) return false;
  if (c == Compression::kZstd && archive_write_add_filter_zstd(a) != ARCHIVE_OK) return false;
  EXPECT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_filetype(ae, e.type);
    archive_entry_set_perm(ae, e.perm);
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    if (!e.symlink.empty()) archive_entry_set_symlink(ae, e.symlink.c_str());
    if (!e.hardlink.empty()) {
      archive_entry_set_hardlink(ae, e.hardlink.c_str());
    } else {
      archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
    }
    EXPECT_EQ(archive_write_header(a, ae), ARCHIVE_OK) << e.path;
    if (!e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return true;
}

// The uncompressed tar's sha256 (the DiffID).
std::string TarDiffId(const std::vector<Entry>& entries, const std::string& scratch) {
  EXPECT_TRUE(WriteTar(scratch, entries));
  auto data = ReadFile(scratch);
  EXPECT_TRUE(data.ok());
  return Sha256Digest(*data);
}

class LayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-layer-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    dest_ = dir_ + "/root";
    blob_ = dir_ + "/layer.tar";
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  std::string dir_, dest_, blob_;
};

TEST(CleanEntryPathTest, Normalizes) {
  EXPECT_EQ(*CleanEntryPath("./a/b"), "a/b");
  EXPECT_EQ(*CleanEntryPath("/etc//passwd"), "etc/passwd");
  EXPECT_EQ(*CleanEntryPath("./"), "");
  EXPECT_EQ(*CleanEntryPath("a/./b/"), "a/b");
  EXPECT_FALSE(CleanEntryPath("../evil").ok());
  EXPECT_FALSE(CleanEntryPath("a/../../evil").ok());
  EXPECT_FALSE(CleanEntryPath("a/..").ok());
  EXPECT_TRUE(CleanEntryPath("a/..b").ok());
}

TEST_F(LayerTest, UnpacksFilesLinksAndVerifiesDiffId) {
  std::vector<Entry> entries = {
      {.path = "./", .type = AE_IFDIR, .perm = 0755},
      {.path = "bin/", .type = AE_IFDIR, .perm = 0755},
      {.path = "bin/tool", .perm = 04755, .data = "#!/bin/sh\necho hi\n"},
      {.path = "bin/sh", .type = AE_IFLNK, .perm = 0777, .symlink = "tool"},
      {.path = "bin/tool2", .hardlink = "bin/tool"},
      {.path = "etc/abs", .type = AE_IFLNK, .perm = 0777, .symlink = "/etc/passwd"},
      {.path = "home/user/file", .perm = 0600, .data = "x", .uid = 1000, .gid = 1001},
  };
  std::string want = TarDiffId(entries, dir_ + "/plain.tar");
  ASSERT_TRUE(WriteTar(blob_, entries, Compression::kGzip));
  auto diff = UnpackLayer(blob_, dest_, want);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(*diff, want);

  EXPECT_EQ(*ReadFile(dest_ + "/bin/tool"), "#!/bin/sh\necho hi\n");
  struct stat st, st2;
  ASSERT_EQ(lstat((dest_ + "/bin/tool").c_str(), &st), 0);
  // libarchive keeps setuid only when it could also restore the owner (root).
  EXPECT_EQ(st.st_mode & 07777, geteuid() == 0 ? 04755u : 0755u);
  ASSERT_EQ(lstat((dest_ + "/bin/tool2").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);  // hard link
  char buf[256] = {};
  ASSERT_GT(readlink((dest_ + "/bin/sh").c_str(), buf, sizeof(buf) - 1), 0);
  EXPECT_STREQ(buf, "tool");
  ASSERT_GT(readlink((dest_ + "/etc/abs").c_str(), buf, sizeof(buf) - 1), 0);
  EXPECT_STREQ(buf, "/etc/passwd");  // kept as is, never followed
  if (geteuid() == 0) {
    ASSERT_EQ(lstat((dest_ + "/home/user/file").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1001u);
  }
}

TEST_F(LayerTest, DiffIdMismatchFailsAndLeavesNothing) {
  ASSERT_TRUE(WriteTar(blob_, {{.path = "a", .data = "a"}}));
  auto diff = UnpackLayer(blob_, dest_, Sha256Digest("something else"));
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(diff.status().message().find("DiffID mismatch"), std::string::npos);
  EXPECT_FALSE(PathExists(dest_));
}

TEST_F(LayerTest, ZstdLayer) {
  std::vector<Entry> entries = {{.path = "z", .data = "zstd data"}};
  std::string want = TarDiffId(entries, dir_ + "/plain.tar");
  if (!WriteTar(blob_, entries, Compression::kZstd))
    GTEST_SKIP() << "libarchive without zstd writer";
  auto diff = UnpackLayer(blob_, dest_, want);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(*ReadFile(dest_ + "/z"), "zstd data");
}

TEST_F(LayerTest, WhiteoutsAndOpaqueDirs) {
  if (geteuid() != 0) GTEST_SKIP() << "overlay whiteouts need root (mknod, trusted.* xattrs)";
  ASSERT_TRUE(WriteTar(blob_, {
                                  {.path = "etc/", .type = AE_IFDIR, .perm = 0755},
                                  {.path = "etc/.wh.removed", .uid = 5, .gid = 6},
                                  {.path = "var/", .type = AE_IFDIR, .perm = 0755},
                                  {.path = "var/.wh..wh..opq"},
                                  {.path = "var/kept", .data = "k"},
                              }));
  auto diff = UnpackLayer(blob_, dest_, "");
  ASSERT_TRUE(diff.ok()) << diff.status();
  struct stat st;
  ASSERT_EQ(lstat((dest_ + "/etc/removed").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(st.st_uid, 5u);
  EXPECT_FALSE(PathExists(dest_ + "/etc/.wh.removed"));
  char v[8] = {};
  ASSERT_EQ(getxattr((dest_ + "/var").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 1)
      << strerror(errno);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(PathExists(dest_ + "/var/.wh..wh..opq"));
  EXPECT_EQ(*ReadFile(dest_ + "/var/kept"), "k");
}

TEST_F(LayerTest, RefusesDotDot) {
  ASSERT_TRUE(WriteTar(blob_, {{.path = "ok", .data = "1"}, {.path = "../evil", .data = "pwned"}}));
  auto diff = UnpackLayer(blob_, dest_, "");
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(diff.status().message().find("../evil"), std::string::npos) << diff.status();
  EXPECT_FALSE(PathExists(dir_ + "/evil"));
  EXPECT_FALSE(PathExists(dest_));
}

TEST_F(LayerTest, RefusesWritingThroughSymlink) {
  std::string outside = dir_ + "/outside";
  ASSERT_TRUE(MkdirAll(outside).ok());
  ASSERT_TRUE(WriteTar(blob_, {{.path = "lnk", .type = AE_IFLNK, .perm = 0777, .symlink = outside},
                               {.path = "lnk/planted", .data = "pwned"}}));
  auto diff = UnpackLayer(blob_, dest_, "");
  ASSERT_FALSE(diff.ok());
  EXPECT_NE(diff.status().message().find("symlink"), std::string::npos) << diff.status();
  EXPECT_FALSE(PathExists(outside + "/planted"));
  EXPECT_FALSE(PathExists(dest_));

  // A relative symlink escaping upwards, then a whiteout through it.
  ASSERT_TRUE(
      WriteTar(blob_, {{.path = "up", .type = AE_IFLNK, .perm = 0777, .symlink = "../outside"},
                       {.path = "up/.wh.x"}}));
  diff = UnpackLayer(blob_, dest_, "");
  ASSERT_FALSE(diff.ok());
  EXPECT_FALSE(PathExists(outside + "/x"));
}

TEST_F(LayerTest, RefusesHardLinkOutsideRoot) {
  ASSERT_TRUE(WriteTar(blob_, {{.path = "passwd", .hardlink = "/etc/passwd"}}));
  auto diff = UnpackLayer(blob_, dest_, "");
  ASSERT_FALSE(diff.ok());
  EXPECT_NE(diff.status().message().find("/etc/passwd"), std::string::npos) << diff.status();
  EXPECT_FALSE(PathExists(dest_));

  ASSERT_TRUE(WriteTar(blob_, {{.path = "passwd", .hardlink = "../../../../etc/passwd"}}));
  EXPECT_FALSE(UnpackLayer(blob_, dest_, "").ok());
  EXPECT_FALSE(PathExists(dest_));

  // Through a symlink to /etc.
  ASSERT_TRUE(WriteTar(blob_, {{.path = "e", .type = AE_IFLNK, .perm = 0777, .symlink = "/etc"},
                               {.path = "passwd", .hardlink = "e/passwd"}}));
  diff = UnpackLayer(blob_, dest_, "");
  ASSERT_FALSE(diff.ok());
  EXPECT_FALSE(PathExists(dest_));
}

// Multi-megabyte layers cross many decompression buffers: the DiffID must cover them all.
TEST_F(LayerTest, LargeGzipLayer) {
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) ^ (i >> 9));
  std::vector<Entry> entries = {{.path = "big", .data = big}, {.path = "after", .data = "tail"}};
  std::string want = TarDiffId(entries, dir_ + "/plain.tar");
  ASSERT_TRUE(WriteTar(blob_, entries, Compression::kGzip));
  auto diff = UnpackLayer(blob_, dest_, want);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(*ReadFile(dest_ + "/after"), "tail");
  EXPECT_EQ(ReadFile(dest_ + "/big")->size(), big.size());
}
}  // namespace
}  // namespace berth::cri::image
