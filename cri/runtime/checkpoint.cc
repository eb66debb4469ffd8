// CheckpointContainer: `runc checkpoint --leave-running` (CRIU) into a private work dir, then
// the checkpoint archive at the requested location (layout in checkpoint.h). The container
// keeps running (CRI semantics); a failed or timed-out checkpoint leaves no work dir and no
// archive behind.
#include "cri/runtime/checkpoint.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/runtime_records.h"
#include "nlohmann/json.hpp"

namespace berth::cri::runtime {
namespace {

struct ArchiveWriteDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct ArchiveReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct EntryDeleter {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

absl::Status ArchiveError(struct archive* a, absl::string_view what) {
  const char* msg = archive_error_string(a);
  return absl::InternalError(absl::StrCat(what, ": ", msg != nullptr ? msg : "libarchive error"));
}

// Copies `from` to `to` (created, mode 0600).
absl::Status CopyFile(const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(from));
  return WriteFileAtomic(to, data, 0600);
}

// Default when CheckpointContainerRequest.timeout is 0: the kubelet's default CRI request
// timeout (--runtime-request-timeout, 2m).
constexpr std::chrono::seconds kDefaultCheckpointTimeout{120};

// Thaws the container's cgroup (v1 freezer, or cgroup2 cgroup.freeze): CRIU freezes the
// container while it dumps; when CRIU is killed on timeout the cgroup may stay frozen.
void ThawCgroup(const std::string& cgroups_path) {
  if (cgroups_path.empty()) return;
  for (const CgroupMount& m : HostCgroupMounts()) {
    if (m.v2) {
      std::string f = JoinPath(JoinPath(m.mount_point, cgroups_path), "cgroup.freeze");
      if (PathExists(f)) WriteFileAtomic(f, "0", 0644).IgnoreError();
    } else if (std::find(m.controllers.begin(), m.controllers.end(), "freezer") !=
               m.controllers.end()) {
      std::string f = JoinPath(JoinPath(m.mount_point, cgroups_path), "freezer.state");
      if (PathExists(f)) {
        FILE* fp = fopen(f.c_str(), "we");
        if (fp != nullptr) {
          fputs("THAWED", fp);
          fclose(fp);
        }
      }
    }
  }
}

}  // namespace

bool IsOverlayWhiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

absl::Status WriteTarFromDir(
    const std::string& src_dir, const std::string& tar_path,
    const std::function<bool(const std::string&, const struct stat&)>& skip) {
  std::unique_ptr<struct archive, ArchiveWriteDeleter> out(archive_write_new());
  archive_write_set_format_pax_restricted(out.get());
  int fd = open(tar_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "create " + tar_path);
  if (archive_write_open_fd(out.get(), fd) != ARCHIVE_OK) {
    close(fd);
    return ArchiveError(out.get(), "tar " + tar_path);
  }
  std::unique_ptr<struct archive, ArchiveReadDeleter> disk(archive_read_disk_new());
  archive_read_disk_set_symlink_physical(disk.get());
  archive_read_disk_set_standard_lookup(disk.get());
  absl::Status result;
  if (archive_read_disk_open(disk.get(), src_dir.c_str()) != ARCHIVE_OK) {
    result = ArchiveError(disk.get(), "read " + src_dir);
  }
  const std::string prefix = src_dir.back() == '/' ? src_dir : src_dir + "/";
  std::vector<char> buf(1 << 16);
  while (result.ok()) {
    std::unique_ptr<struct archive_entry, EntryDeleter> entry(archive_entry_new());
    int r = archive_read_next_header2(disk.get(), entry.get());
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      result = ArchiveError(disk.get(), "read " + src_dir);
      break;
    }
    archive_read_disk_descend(disk.get());
    std::string path = archive_entry_pathname(entry.get());
    if (path.rfind(prefix, 0) != 0) continue;  // the root itself
    std::string rel = path.substr(prefix.size());
    const struct stat* st = archive_entry_stat(entry.get());
    if (rel.empty() || (skip && skip(rel, *st))) continue;
    archive_entry_set_pathname(entry.get(), rel.c_str());
    // Hard links are stored as separate copies (no link resolver): simple and always valid.
    archive_entry_set_nlink(entry.get(), 1);
    if (archive_write_header(out.get(), entry.get()) < ARCHIVE_WARN) {
      result = ArchiveError(out.get(), "tar " + tar_path + ": " + rel);
      break;
    }
    if (!S_ISREG(st->st_mode)) continue;
    for (;;) {
      la_ssize_t n = archive_read_data(disk.get(), buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) {
        result = ArchiveError(disk.get(), "read " + path);
        break;
      }
      if (archive_write_data(out.get(), buf.data(), static_cast<size_t>(n)) != n) {
        result = ArchiveError(out.get(), "tar " + tar_path + ": " + rel);
        break;
      }
    }
  }
  archive_read_close(disk.get());
  if (archive_write_close(out.get()) != ARCHIVE_OK && result.ok()) {
    result = ArchiveError(out.get(), "tar " + tar_path);
  }
  close(fd);
  if (!result.ok()) unlink(tar_path.c_str());
  return result;
}

absl::StatusOr<std::vector<std::string>> OverlayWhiteouts(const std::string& upper_dir) {
  std::vector<std::string> out;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    std::string rel = todo.back();
    todo.pop_back();
    std::string dir = rel.empty() ? upper_dir : JoinPath(upper_dir, rel);
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
    for (const auto& name : names) {
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (lstat(JoinPath(upper_dir, child_rel).c_str(), &st) != 0) continue;  // raced away
      if (IsOverlayWhiteout(st)) {
        out.push_back(child_rel);
      } else if (S_ISDIR(st.st_mode)) {
        todo.push_back(child_rel);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string LastLines(const std::string& path, int n, const std::string& needle) {
  auto data = ReadFile(path);
  if (!data.ok()) return "";
  std::deque<std::string> lines;
  std::istringstream in(*data);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (!needle.empty() && line.find(needle) == std::string::npos) continue;
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > n) lines.pop_front();
  }
  return absl::StrJoin(lines, "\n");
}

std::string CriuLogSummary(const std::string& path) {
  std::string errors = LastLines(path, 6, "Error (");
  return errors.empty() ? LastLines(path, 6) : errors;
}

absl::StatusOr<v1::CheckpointContainerResponse> Runtime::CheckpointContainer(
    const v1::CheckpointContainerRequest& req) {
  const auto start = std::chrono::steady_clock::now();
  const std::string what = "CheckpointContainer " + req.container_id();
  auto c = FindContainer(req.container_id());
  if (!c) return absl::NotFoundError(what + ": container not found");
  if (req.location().empty()) return absl::InvalidArgumentError(what + ": location is empty");
  if (req.timeout() < 0) return absl::InvalidArgumentError(what + ": negative timeout");
  const std::chrono::seconds timeout =
      req.timeout() > 0 ? std::chrono::seconds(req.timeout()) : kDefaultCheckpointTimeout;

  // Stop/Remove of this container wait until the checkpoint is done.
  absl::MutexLock ol(&c->op_mu);
  std::string id, name, bundle, log_path, image_name, image_ref, image_id, cgroups_path;
  int64_t created_at = 0;
  {
    absl::MutexLock l(&mu_);
    if (!c->created) return absl::NotFoundError(what + ": container not found");
    if (c->state != v1::CONTAINER_RUNNING) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": container is ", v1::ContainerState_Name(c->state),
                       ", only a running container can be checkpointed"));
    }
    id = c->id;
    name = c->config.metadata().name();
    bundle = c->bundle;
    log_path = c->log_path;
    image_name = c->image_name;
    image_ref = c->image_ref;
    image_id = c->image_id;
    cgroups_path = c->cgroups_path;
    created_at = c->created_at;
  }
  oci::OciRuntime* rt = RuntimeOf(*c);

  // The work dir is the archive's root: CRIU writes its images to checkpoint/ and its log
  // (dump.log) to the root. Removed whatever happens.
  const std::string work_parent = JoinPath(opts_.root_dir, "checkpoint-work");
  RETURN_IF_ERROR(Annotate(MkdirAll(work_parent, 0700), what));
  std::string tmpl = JoinPath(work_parent, id.substr(0, 12) + ".XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr)
    return ErrnoStatus(errno, what + ": work dir in " + work_parent);
  const std::string work = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      absl::Status s = RemoveAll(dir);
      if (!s.ok()) {
        LOG(WARNING) << "checkpoint: removing " << dir << ": " << s;
      }
    }
  } cleanup{work};

  const std::string image_dir = JoinPath(work, kCheckpointDirectory);
  std::vector<std::string> argv = {rt->options().runtime_path};
  if (!rt->options().runtime_root.empty()) {
    argv.insert(argv.end(), {"--root", rt->options().runtime_root});
  }
  argv.insert(argv.end(), {"checkpoint", "--leave-running", "--image-path", image_dir,
                           "--work-path", work, id});
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
      timeout - (std::chrono::steady_clock::now() - start));
  if (remaining.count() <= 0) remaining = std::chrono::milliseconds(1);
  ASSIGN_OR_RETURN(RunResult r, Run(argv, "", remaining));
  auto criu_log = [&] {
    std::string tail = CriuLogSummary(JoinPath(work, kCheckpointDumpLog));
    return tail.empty() ? std::string() : "; CRIU dump.log:\n" + tail;
  };
  if (r.timed_out) {
    ThawCgroup(cgroups_path);
    return absl::DeadlineExceededError(absl::StrCat(
        what, ": runc checkpoint did not finish within ", timeout.count(), "s", criu_log()));
  }
  if (r.exit_code != 0) {
    ThawCgroup(cgroups_path);
    std::string err(absl::StripAsciiWhitespace(r.err));
    return absl::InternalError(absl::StrCat(what, ": runc checkpoint failed (exit ", r.exit_code,
                                            "): ", err.empty() ? "no message" : err, criu_log()));
  }

  // Metadata and the writable layer, next to CRIU's images.
  const std::string& runtime_path = rt->options().runtime_path;
  const std::string runtime_name = runtime_path.substr(runtime_path.find_last_of('/') + 1);
  nlohmann::json config = {
      {"id", id},
      {"name", name},
      {"rootfsImage", image_id},
      {"rootfsImageRef", image_ref.empty() ? image_id : image_ref},
      {"rootfsImageName", image_name},
      {"runtime", runtime_name},
      {"createdTime",
       absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(created_at), absl::UTCTimeZone())},
      {"checkpointedTime", absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone())},
  };
  RETURN_IF_ERROR(
      Annotate(WriteFileAtomic(JoinPath(work, kCheckpointConfigDump), config.dump(2), 0600), what));
  RETURN_IF_ERROR(Annotate(
      CopyFile(JoinPath(bundle, "config.json"), JoinPath(work, kCheckpointSpecDump)), what));
  const std::string upper = JoinPath(bundle, "upper");
  if (PathExists(upper)) {
    RETURN_IF_ERROR(Annotate(WriteTarFromDir(upper, JoinPath(work, kCheckpointRootfsDiff),
                                             [](const std::string&, const struct stat& st) {
                                               return IsOverlayWhiteout(st);
                                             }),
                             what));
    ASSIGN_OR_RETURN(std::vector<std::string> deleted, OverlayWhiteouts(upper));
    if (!deleted.empty()) {
      RETURN_IF_ERROR(Annotate(WriteFileAtomic(JoinPath(work, kCheckpointDeletedFiles),
                                               nlohmann::json(deleted).dump(), 0600),
                               what));
    }
  }
  if (!log_path.empty() && PathExists(log_path)) {
    RETURN_IF_ERROR(Annotate(CopyFile(log_path, JoinPath(work, kCheckpointContainerLog)), what));
  }

  // The archive appears at `location` only when complete.
  const std::string partial = req.location() + ".partial";
  RETURN_IF_ERROR(Annotate(WriteTarFromDir(work, partial), what));
  if (rename(partial.c_str(), req.location().c_str()) != 0) {
    int err = errno;
    unlink(partial.c_str());
    return ErrnoStatus(err, what + ": rename to " + req.location());
  }
  LOG(INFO) << "checkpointed container " << id << " to " << req.location();
  return v1::CheckpointContainerResponse();
}

}  // namespace berth::cri::runtime
