// The certificate store of the kubelet (client-go util/certificate fileStore): a pair is kept
// as one PEM file "<prefix>-<YYYY-MM-DD-HH-MM-SS>.pem" (certificate chain then key, mode
// 0600) in the certificate directory, and "<prefix>-current.pem" is a symlink to the one in
// use, replaced atomically through "<prefix>-updated.pem" (so a crash leaves either the old
// or the new link). Thread-safety: Current/Update may be called from any thread, but two
// Updates of one store must not race (the certificate manager serializes them).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kubelet/certificate/x509.h"

namespace berth::kubelet::certificate {

class CertStore {
 public:
  // `prefix`: "kubelet-client" or "kubelet-server"; `dir`: the certificate directory.
  // `cert_file`/`key_file` (optional): a pair used when no current link exists (upstream's
  // certFile/keyFile: --tls-cert-file, a kubeconfig's client-certificate). Recovers an
  // interrupted update ("-updated.pem" without "-current.pem"). Errors: the filesystem's,
  // FailedPrecondition when "-updated.pem" is not a symlink.
  static absl::StatusOr<std::unique_ptr<CertStore>> Create(const std::string& prefix,
                                                           const std::string& dir,
                                                           const std::string& cert_file = "",
                                                           const std::string& key_file = "");

  // "<dir>/<prefix>-current.pem".
  std::string CurrentPath() const;

  // The pair in use: the current link, else cert_file/key_file, else "<prefix>.crt" and
  // "<prefix>.key" in the directory. NotFound when none exists; InvalidArgument when the
  // found files do not hold a matching pair.
  absl::StatusOr<std::shared_ptr<const KeyPair>> Current() const;

  // Writes `cert_pem` + `key_pem` to a new timestamped file (local time of `now`, as upstream)
  // and points the current link at it. InvalidArgument when they do not form a pair.
  absl::StatusOr<std::shared_ptr<const KeyPair>> Update(const std::string& cert_pem,
                                                        const std::string& key_pem,
                                                        absl::Time now = absl::Now());

 private:
  CertStore(std::string prefix, std::string dir, std::string cert_file, std::string key_file)
      : prefix_(std::move(prefix)),
        dir_(std::move(dir)),
        cert_file_(std::move(cert_file)),
        key_file_(std::move(key_file)) {}
  std::string Path(const std::string& qualifier) const;

  const std::string prefix_, dir_, cert_file_, key_file_;
};

}  // namespace berth::kubelet::certificate
