#include "cri/image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "cri/image/digest.h"

namespace berth::cri::image {
namespace {

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueWhiteout[] = ".wh..wh..opq";

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ArchiveReadDeleter>;
using WriteArchive = std::unique_ptr<archive, ArchiveWriteDeleter>;

// Decompressed bytes of the blob, hashed as the tar reader pulls them.
struct RawSource {
  archive* raw = nullptr;
  Sha256 hash;
  std::string error;
  char buf[1 << 16];
};

la_ssize_t ReadDecompressed(archive*, void* user, const void** out) {
  auto* src = static_cast<RawSource*>(user);
  la_ssize_t n = archive_read_data(src->raw, src->buf, sizeof(src->buf));
  if (n < 0) {
    src->error = archive_error_string(src->raw) ? archive_error_string(src->raw) : "read error";
    return -1;
  }
  src->hash.Update(src->buf, static_cast<size_t>(n));
  *out = src->buf;
  return n;
}

std::string Parent(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

std::string Base(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

// Fails when any existing component of `rel` (a directory path relative to `root`) is a
// symlink or not a directory. Missing components are fine (they are created as dirs).
absl::Status CheckNoSymlinks(const std::string& root, const std::string& rel,
                             const std::string& entry) {
  std::string cur = root;
  size_t start = 0;
  while (start < rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    cur = absl::StrCat(cur, "/", rel.substr(start, end - start));
    struct stat st;
    if (lstat(cur.c_str(), &st) != 0) {
      if (errno == ENOENT) return absl::OkStatus();
      return ErrnoStatus(errno, absl::StrCat("lstat ", cur));
    }
    if (S_ISLNK(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("entry \"", entry,
                                                     "\": path goes through symlink \"",
                                                     rel.substr(0, end), "\" inside the layer"));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("entry \"", entry, "\": parent \"",
                                                     rel.substr(0, end), "\" is not a directory"));
    }
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::Status Unpack(const std::string& blob_path, const std::string& dest,
                    const std::string& expected_diff_id, std::string* diff_id) {
  ReadArchive raw(archive_read_new());
  archive_read_support_filter_all(raw.get());
  archive_read_support_format_raw(raw.get());
  if (archive_read_open_filename(raw.get(), blob_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("open ", blob_path, ": ", archive_error_string(raw.get())));
  }
  archive_entry* raw_entry = nullptr;
  if (archive_read_next_header(raw.get(), &raw_entry) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "read ", blob_path, ": ",
        archive_error_string(raw.get()) ? archive_error_string(raw.get()) : "empty blob"));
  }
  auto src = std::make_unique<RawSource>();
  src->raw = raw.get();

  ReadArchive tar(archive_read_new());
  archive_read_support_format_tar(tar.get());
  if (archive_read_open(tar.get(), src.get(), nullptr, ReadDecompressed, nullptr) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("read tar ", blob_path, ": ", archive_error_string(tar.get())));
  }

  if (mkdir(dest.c_str(), 0755) != 0) return ErrnoStatus(errno, absl::StrCat("mkdir ", dest));

  WriteArchive disk(archive_write_disk_new());
  archive_write_disk_set_options(
      disk.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                      ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK |
                      ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);

  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(tar.get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    const char* pn = archive_entry_pathname(entry);
    std::string name = pn ? pn : "";
    ASSIGN_OR_RETURN(std::string rel, CleanEntryPath(name));
    if (rel.empty()) continue;  // the layer root itself
    std::string parent = Parent(rel);
    std::string base = Base(rel);
    RETURN_IF_ERROR(CheckNoSymlinks(dest, parent, name));

    if (base == kOpaqueWhiteout) {
      std::string dir = parent.empty() ? dest : absl::StrCat(dest, "/", parent);
      RETURN_IF_ERROR(MkdirAll(dir));
      if (setxattr(dir.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
        return ErrnoStatus(errno, absl::StrCat("set trusted.overlay.opaque on ", dir));
      }
      continue;
    }
    if (base.compare(0, sizeof(kWhiteoutPrefix) - 1, kWhiteoutPrefix) == 0) {
      std::string target = base.substr(sizeof(kWhiteoutPrefix) - 1);
      if (target.empty() || target == "." || target == "..") {
        return absl::InvalidArgumentError(absl::StrCat("entry \"", name, "\": invalid whiteout"));
      }
      std::string dir = parent.empty() ? dest : absl::StrCat(dest, "/", parent);
      RETURN_IF_ERROR(MkdirAll(dir));
      std::string path = absl::StrCat(dir, "/", target);
      RETURN_IF_ERROR(RemoveAll(path));
      if (mknod(path.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
        return ErrnoStatus(errno, absl::StrCat("mknod whiteout ", path));
      }
      if (lchown(path.c_str(), static_cast<uid_t>(archive_entry_uid(entry)),
                 static_cast<gid_t>(archive_entry_gid(entry))) != 0) {
        return ErrnoStatus(errno, absl::StrCat("chown whiteout ", path));
      }
      continue;
    }

    if (const char* hl = archive_entry_hardlink(entry); hl != nullptr) {
      std::string link = hl;
      if (!link.empty() && link[0] == '/') {
        return absl::InvalidArgumentError(absl::StrCat(
            "entry \"", name, "\": hard link to absolute path \"", link, "\" outside the layer"));
      }
      ASSIGN_OR_RETURN(std::string link_rel, CleanEntryPath(link));
      if (link_rel.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("entry \"", name, "\": hard link to the layer root"));
      }
      RETURN_IF_ERROR(CheckNoSymlinks(dest, Parent(link_rel), name));
      std::string link_abs = absl::StrCat(dest, "/", link_rel);
      struct stat st;
      if (lstat(link_abs.c_str(), &st) != 0) {
        return absl::InvalidArgumentError(absl::StrCat("entry \"", name, "\": hard link target \"",
                                                       link, "\" is not in the layer"));
      }
      archive_entry_set_hardlink(entry, link_abs.c_str());
    }
    std::string abs = absl::StrCat(dest, "/", rel);
    archive_entry_set_pathname(entry, abs.c_str());
    if (archive_write_header(disk.get(), entry) < ARCHIVE_WARN) {
      return absl::InternalError(
          absl::StrCat("extract \"", name, "\": ", archive_error_string(disk.get())));
    }
    if (archive_entry_size(entry) > 0 && archive_entry_hardlink(entry) == nullptr) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      int rd;
      while ((rd = archive_read_data_block(tar.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        // libarchive reports a failed write(2) (ENOSPC, EIO) as ARCHIVE_WARN, and would then
        // extend the file to its size with a hole: anything but OK is an error here.
        if (archive_write_data_block(disk.get(), buf, size, offset) != ARCHIVE_OK) {
          std::string what = absl::StrCat("write \"", name, "\"");
          if (int err = archive_errno(disk.get()); err > 0) return ErrnoStatus(err, what);
          return absl::InternalError(absl::StrCat(what, ": ", archive_error_string(disk.get())));
        }
      }
      if (rd != ARCHIVE_EOF) {
        return absl::InvalidArgumentError(absl::StrCat("read data of \"", name,
                                                       "\": ", archive_error_string(tar.get()),
                                                       src->error.empty() ? "" : ": ", src->error));
      }
    }
    if (archive_write_finish_entry(disk.get()) < ARCHIVE_WARN) {
      return absl::InternalError(
          absl::StrCat("finish \"", name, "\": ", archive_error_string(disk.get())));
    }
  }
  if (r != ARCHIVE_EOF) {
    return absl::InvalidArgumentError(absl::StrCat("read tar ", blob_path, ": ",
                                                   archive_error_string(tar.get()),
                                                   src->error.empty() ? "" : ": ", src->error));
  }
  if (archive_write_close(disk.get()) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("finish extraction into ", dest, ": ", archive_error_string(disk.get())));
  }
  // Hash the rest of the stream (padding after the end-of-archive blocks).
  const void* ignored;
  la_ssize_t n;
  while ((n = ReadDecompressed(nullptr, src.get(), &ignored)) > 0) {
  }
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("read ", blob_path, ": ", src->error));
  *diff_id = src->hash.Digest();
  if (!expected_diff_id.empty() && *diff_id != expected_diff_id) {
    return absl::DataLossError(absl::StrCat("layer ", blob_path, ": DiffID mismatch: config says ",
                                            expected_diff_id, ", uncompressed content is ",
                                            *diff_id));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> CleanEntryPath(const std::string& name) {
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string comp = name.substr(start, end - start);
    if (comp == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("entry \"", name, "\": path escapes the layer root (\"..\")"));
    }
    if (!comp.empty() && comp != ".") {
      if (!out.empty()) out.push_back('/');
      out += comp;
    }
    start = end + 1;
  }
  return out;
}

absl::StatusOr<std::string> UnpackLayer(const std::string& blob_path, const std::string& dest_dir,
                                        const std::string& expected_diff_id) {
  if (PathExists(dest_dir)) {
    return absl::AlreadyExistsError(
        absl::StrCat("unpack layer into ", dest_dir, ": destination exists"));
  }
  std::string diff_id;
  absl::Status s = Unpack(blob_path, dest_dir, expected_diff_id, &diff_id);
  if (!s.ok()) {
    (void)RemoveAll(dest_dir);
    return Annotate(s, absl::StrCat("unpack layer into ", dest_dir));
  }
  return diff_id;
}

}  // namespace berth::cri::image
