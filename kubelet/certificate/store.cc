#include "kubelet/certificate/store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::kubelet::certificate {
namespace {

// lstat: 1 symlink, 0 other file, -1 absent; errors other than ENOENT as Status.
absl::StatusOr<int> LinkState(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return -1;
    return absl::ErrnoToStatus(errno, "lstat " + path);
  }
  return S_ISLNK(st.st_mode) ? 1 : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertStore>> CertStore::Create(const std::string& prefix,
                                                             const std::string& dir,
                                                             const std::string& cert_file,
                                                             const std::string& key_file) {
  std::unique_ptr<CertStore> s(new CertStore(prefix, dir, cert_file, key_file));
  // recover(): a crash between removing "-current" and renaming "-updated" over it.
  std::string current = s->CurrentPath();
  if (PathExists(current)) return s;
  std::string updated = s->Path("updated");
  ASSIGN_OR_RETURN(int st, LinkState(updated));
  if (st == -1) return s;
  if (st == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("expected ", updated, " to be a symlink but it is a file"));
  }
  if (rename(updated.c_str(), current.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("rename ", updated, " to ", current));
  }
  return s;
}

std::string CertStore::Path(const std::string& qualifier) const {
  return JoinPath(dir_, absl::StrCat(prefix_, "-", qualifier, ".pem"));
}

std::string CertStore::CurrentPath() const { return Path("current"); }

absl::StatusOr<std::shared_ptr<const KeyPair>> CertStore::Current() const {
  std::string current = CurrentPath();
  if (PathExists(current)) return LoadKeyPair(current, current);
  if (!cert_file_.empty() && !key_file_.empty() && PathExists(cert_file_) &&
      PathExists(key_file_)) {
    return LoadKeyPair(cert_file_, key_file_);
  }
  std::string crt = JoinPath(dir_, prefix_ + ".crt"), key = JoinPath(dir_, prefix_ + ".key");
  if (PathExists(crt) && PathExists(key)) return LoadKeyPair(crt, key);
  return absl::NotFoundError(absl::StrCat("no cert/key files read at ", current, ", (", cert_file_,
                                          ", ", key_file_, ") or (", crt, ", ", key, ")"));
}

absl::StatusOr<std::shared_ptr<const KeyPair>> CertStore::Update(const std::string& cert_pem,
                                                                 const std::string& key_pem,
                                                                 absl::Time now) {
  ASSIGN_OR_RETURN(std::shared_ptr<const KeyPair> kp, ParseKeyPair(cert_pem, key_pem));
  RETURN_IF_ERROR(MkdirAll(dir_, 0755));
  std::string file = Path(absl::FormatTime("%Y-%m-%d-%H-%M-%S", now, absl::LocalTimeZone()));
  std::string body = cert_pem;
  if (!body.empty() && body.back() != '\n') body.push_back('\n');
  body += key_pem;
  RETURN_IF_ERROR(WriteFileAtomic(file, body, 0600));

  // updateSymlink: "-updated" -> file, then rename over "-current".
  std::string current = CurrentPath(), updated = Path("updated");
  ASSIGN_OR_RETURN(int cur, LinkState(current));
  if (cur == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("expected ", current, " to be a symlink but it is a file"));
  }
  ASSIGN_OR_RETURN(int upd, LinkState(updated));
  if (upd == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("expected ", updated, " to be a symlink but it is a file"));
  }
  if (upd == 1 && unlink(updated.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, "remove " + updated);
  }
  std::string target = std::filesystem::absolute(file).string();
  if (symlink(target.c_str(), updated.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("symlink ", updated, " -> ", target));
  }
  if (rename(updated.c_str(), current.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("rename ", updated, " to ", current));
  }
  return kp;
}

}  // namespace berth::kubelet::certificate
