#include "kubelet/certificate/csr.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status.h"
#include "kubelet/certificate/x509.h"
#include "kubelet/kubeconfig.h"

namespace berth::kubelet::certificate {
namespace {

constexpr char kCsrPath[] = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

std::string Get(const Json& j, const char* a, const char* b) {
  if (!j.is_object() || !j.contains(a) || !j[a].is_object()) return "";
  const Json& o = j[a];
  return o.contains(b) && o[b].is_string() ? o[b].get<std::string>() : "";
}

struct ReqInfo {
  std::string subject;  // one-line subject
  std::string public_key_der;
};

absl::StatusOr<ReqInfo> ParseCsrPem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (req == nullptr)
    return absl::InvalidArgumentError("PEM block type must be CERTIFICATE REQUEST");
  ReqInfo info;
  char* line = X509_NAME_oneline(X509_REQ_get_subject_name(req), nullptr, 0);
  info.subject = line != nullptr ? line : "";
  OPENSSL_free(line);
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req);
  absl::StatusOr<std::string> der =
      pub != nullptr ? PublicKeyDer(pub) : absl::InvalidArgumentError("no public key");
  int verified = pub != nullptr ? X509_REQ_verify(req, pub) : 0;
  X509_REQ_free(req);
  if (!der.ok()) return der.status();
  if (verified != 1) return absl::InvalidArgumentError("the request's signature does not verify");
  info.public_key_der = *der;
  return info;
}

// ensureCompatible: the existing object asks for what we would ask for, with our key.
absl::Status EnsureCompatible(const Json& existing, const std::string& csr_pem,
                              const std::string& signer) {
  std::string req_b64 = Get(existing, "spec", "request");
  ASSIGN_OR_RETURN(std::string existing_pem, Base64Decode(req_b64));
  ASSIGN_OR_RETURN(ReqInfo have, ParseCsrPem(existing_pem));
  ASSIGN_OR_RETURN(ReqInfo want, ParseCsrPem(csr_pem));
  if (have.subject != want.subject) {
    return absl::FailedPreconditionError(
        absl::StrCat("csr subjects differ: new: ", have.subject, ", orig: ", want.subject));
  }
  std::string have_signer = Get(existing, "spec", "signerName");
  if (!have_signer.empty() && have_signer != signer) {
    return absl::FailedPreconditionError(
        absl::StrCat("csr signerNames differ: new ", have_signer, ", orig: ", signer));
  }
  if (have.public_key_der != want.public_key_der) {
    return absl::FailedPreconditionError("the existing csr was made with another private key");
  }
  std::string cert_b64 = Get(existing, "status", "certificate");
  if (!cert_b64.empty()) {
    ASSIGN_OR_RETURN(std::string cert_pem, Base64Decode(cert_b64));
    BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
    absl::Status st;
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        st = absl::FailedPreconditionError("one of the certificates for the CSR has expired");
      }
      X509_free(x);
    }
    BIO_free(bio);
    RETURN_IF_ERROR(st);
  }
  return absl::OkStatus();
}

// The outcome of one look at the CSR: the certificate, an error, or "keep waiting".
struct Verdict {
  bool done = false;
  absl::StatusOr<std::string> cert;
  bool approved = false;
};

Verdict Judge(const Json& obj, const CsrRef& csr) {
  Verdict v;
  if (Get(obj, "metadata", "uid") != csr.uid) {
    v.done = true;
    v.cert = absl::AbortedError(absl::StrCat("csr \"", csr.name, "\" changed UIDs"));
    return v;
  }
  const Json* conds = nullptr;
  if (obj.contains("status") && obj["status"].is_object() && obj["status"].contains("conditions") &&
      obj["status"]["conditions"].is_array()) {
    conds = &obj["status"]["conditions"];
  }
  if (conds != nullptr) {
    for (const Json& c : *conds) {
      std::string type = c.value("type", "");
      std::string reason = c.value("reason", ""), message = c.value("message", "");
      if (type == "Denied") {
        v.done = true;
        v.cert = absl::PermissionDeniedError(absl::StrCat("certificate signing request ", csr.name,
                                                          " is denied, reason: ", reason,
                                                          ", message: ", message));
        return v;
      }
      if (type == "Failed") {
        v.done = true;
        v.cert =
            absl::AbortedError(absl::StrCat("certificate signing request ", csr.name,
                                            " failed, reason: ", reason, ", message: ", message));
        return v;
      }
      if (type == "Approved") v.approved = true;
    }
  }
  std::string cert_b64 = Get(obj, "status", "certificate");
  if (v.approved && !cert_b64.empty()) {
    v.done = true;
    absl::StatusOr<std::string> pem = Base64Decode(cert_b64);
    if (pem.ok()) {
      v.cert = *pem;
    } else {
      v.cert = Annotate(pem.status(), "status.certificate of csr " + csr.name);
    }
  }
  return v;
}

}  // namespace

Json CsrObject(const std::string& name, const std::string& csr_pem, const std::string& signer,
               const std::vector<std::string>& usages) {
  Json meta = Json::object();
  if (name.empty()) {
    meta["generateName"] = "csr-";
  } else {
    meta["name"] = name;
  }
  return Json{{"apiVersion", "certificates.k8s.io/v1"},
              {"kind", "CertificateSigningRequest"},
              {"metadata", meta},
              {"spec", {{"request", Base64(csr_pem)}, {"signerName", signer}, {"usages", usages}}}};
}

absl::StatusOr<CsrRef> RequestCertificate(ApiClient* client, const std::string& name,
                                          const std::string& csr_pem, const std::string& signer,
                                          const std::vector<std::string>& usages) {
  absl::StatusOr<Json> created = client->Post(kCsrPath, CsrObject(name, csr_pem, signer, usages));
  if (created.ok()) {
    CsrRef ref{Get(*created, "metadata", "name"), Get(*created, "metadata", "uid")};
    LOG(INFO) << "certificate: created certificate signing request " << ref.name << " (signer "
              << signer << ")";
    return ref;
  }
  if (!absl::IsAlreadyExists(created.status()) || name.empty()) {
    return Annotate(created.status(), "cannot create certificate signing request");
  }
  LOG(INFO) << "certificate: csr " << name << " for this node already exists, reusing";
  absl::StatusOr<Json> existing_or = client->Get(absl::StrCat(kCsrPath, "/", name));
  if (!existing_or.ok()) {
    return Annotate(existing_or.status(), "cannot retrieve certificate signing request");
  }
  const Json& existing = *existing_or;
  if (absl::Status s = EnsureCompatible(existing, csr_pem, signer); !s.ok()) {
    return Annotate(s, "retrieved csr " + name + " is not compatible");
  }
  return CsrRef{name, Get(existing, "metadata", "uid")};
}

absl::StatusOr<std::string> WaitForCertificate(ApiClient* client, const CsrRef& csr,
                                               absl::Duration timeout,
                                               const std::atomic<bool>& stop) {
  const absl::Time deadline = absl::Now() + timeout;
  LOG(INFO) << "certificate: waiting for certificate signing request " << csr.name
            << " to be approved and issued";
  bool logged_approval = false;
  absl::Duration backoff = absl::Seconds(1);
  const std::string path = absl::StrCat(kCsrPath, "/", csr.name);
  absl::Status last;
  while (true) {
    if (stop.load()) return absl::CancelledError("stopped while waiting for csr " + csr.name);
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("certificate signing request ", csr.name,
                       " was not approved and issued within ", absl::FormatDuration(timeout),
                       last.ok() ? "" : absl::StrCat(" (last error: ", last.message(), ")")));
    }
    // GET, then watch from its resourceVersion (a List+Watch of one object).
    absl::StatusOr<Json> obj = client->Get(path);
    absl::Status watch_status;
    if (obj.ok()) {
      Verdict v = Judge(*obj, csr);
      if (v.done) return v.cert;
      if (v.approved && !logged_approval) {
        LOG(INFO) << "certificate: csr " << csr.name << " is approved, waiting to be issued";
        logged_approval = true;
      }
      std::string rv = Get(*obj, "metadata", "resourceVersion");
      int64_t seconds = std::max<int64_t>(
          1, std::min<int64_t>(300, absl::ToInt64Seconds(deadline - absl::Now())));
      std::optional<absl::StatusOr<std::string>> result;
      watch_status = client->Watch(
          absl::StrCat(kCsrPath, "?fieldSelector=metadata.name%3D", csr.name,
                       "&resourceVersion=", rv, "&timeoutSeconds=", seconds),
          [&](const std::string& type, const Json& o) {
            if (type == "DELETED") {
              result = absl::AbortedError(absl::StrCat("csr \"", csr.name, "\" was deleted"));
              return false;
            }
            if (type != "ADDED" && type != "MODIFIED") return true;
            Verdict w = Judge(o, csr);
            if (w.done) {
              result = std::move(w.cert);
              return false;
            }
            if (w.approved && !logged_approval) {
              LOG(INFO) << "certificate: csr " << csr.name << " is approved, waiting to be issued";
              logged_approval = true;
            }
            return true;
          },
          stop);
      if (result.has_value()) return *result;
      if (watch_status.ok()) {
        backoff = absl::Seconds(1);
        continue;  // the server ended the stream: look again
      }
      last = watch_status;
    } else {
      if (absl::IsNotFound(obj.status())) {
        return absl::AbortedError(absl::StrCat("csr \"", csr.name, "\" was deleted"));
      }
      last = obj.status();
    }
    LOG(WARNING) << "certificate: csr " << csr.name << ": " << last << " (retrying in "
                 << absl::FormatDuration(backoff) << ")";
    absl::Time until = std::min(deadline, absl::Now() + backoff);
    while (!stop.load() && absl::Now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

}  // namespace berth::kubelet::certificate
