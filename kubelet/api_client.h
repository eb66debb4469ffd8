// Kubernetes API client: JSON over HTTPS/1.1 (cpp-httplib + OpenSSL), configured from a
// kubeconfig (server, CA, client certificate/key or bearer token).
// Thread safety: all methods may be called from many threads; each call uses its own
// connection (watches hold theirs for the duration).
// Errors map HTTP status codes: 404 NotFound, 409 AlreadyExists (create) / Aborted
// (conflict), 410 OutOfRange ("Gone": the resourceVersion is too old), 401 Unauthenticated,
// 403 PermissionDenied, 422/400 InvalidArgument, 5xx and connection failures Unavailable.
// The message carries the verb, path and the API server's Status message.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/kube_api.h"
#include "kubelet/kubeconfig.h"

typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;

namespace berth::kubelet {

using Json = nlohmann::json;

// A client certificate (leaf) and its private key, shared by the connections made with it.
struct ClientCertificate {
  std::shared_ptr<X509> cert;
  std::shared_ptr<EVP_PKEY> key;
};

// Returns the client certificate new connections present; nullptr = none (requests go
// without one, as client-go's GetClientCertificate returning an empty certificate). Called
// for every new connection and, while a watch runs, every 100 ms: it must be cheap and
// thread-safe.
using ClientCertificateSource = std::function<std::shared_ptr<const ClientCertificate>()>;

using ::berth::PatchType;  // PATCH content types (base/kube_api.h)

// Tunables of the HTTPS client. Durations in seconds.
struct ApiClientOptions {
  int connect_timeout_s = 10;      // TCP + TLS handshake
  int request_timeout_s = 60;      // per read/write of a normal request
  int watch_read_timeout_s = 660;  // per read of a watch stream (> server timeoutSeconds)
  std::string user_agent = "berth/0.1";
  // Client certificate rotation (as the kubelet's UpdateTransport): when set, it replaces the
  // kubeconfig's client certificate. When the certificate it returns changes, idle pooled
  // connections are dropped and running watches end (the ListWatch re-watches), so every
  // later request authenticates with the new certificate.
  ClientCertificateSource client_certificate;
};

// Maps an HTTP response to a Status: OK for 2xx, else the code listed at the top of this file
// with message "<verb> <path>: <http code> <reason>: <message>", where reason and message come
// from the metav1.Status in `body` when it is one (else the HTTP reason phrase / raw body).
absl::Status StatusFromHttp(const std::string& verb, const std::string& path, int http_code,
                            const std::string& body);

// The Kubernetes API client; the REST verbs are KubeApi's (base/kube_api.h).
class ApiClient : public KubeApi {
 public:
  // Loads the kubeconfig's current context. Errors: NotFound (file), InvalidArgument (content).
  static absl::StatusOr<std::unique_ptr<ApiClient>> FromKubeconfig(const std::string& path);
  // Builds a client from an already-loaded kubeconfig (server URL http:// or https://).
  // Sets SIGPIPE to SIG_IGN process-wide if it is SIG_DFL (OpenSSL writes with write(2)).
  // Errors: InvalidArgument (bad URL, unparsable PEM).
  static absl::StatusOr<std::unique_ptr<ApiClient>> Create(const Kubeconfig& config,
                                                           const ApiClientOptions& options = {});
  ~ApiClient() override = default;

  // One watch request: GET `path` with watch=1 and allowWatchBookmarks (path may carry a
  // query string). Calls `on_event(type, object)` for each event ("ADDED", "MODIFIED",
  // "DELETED", "BOOKMARK", "ERROR") until `on_event` returns false, `stop` becomes true, the
  // server ends the stream (returns OK) or an error occurs. Blocks the calling thread.
  virtual absl::Status Watch(const std::string& path,
                             const std::function<bool(const std::string&, const Json&)>& on_event,
                             const std::atomic<bool>& stop) = 0;

  // The API server URL, e.g. "https://127.0.0.1:6443".
  virtual std::string Server() const = 0;
};

}  // namespace berth::kubelet
