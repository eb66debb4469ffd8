#include "kubelet/certificate/bootstrap.h"

#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "kubelet/certificate/csr.h"
#include "kubelet/certificate/store.h"
#include "kubelet/certificate/x509.h"

namespace berth::kubelet::certificate {
namespace {

constexpr char kTmpPrivateKeyFile[] = "kubelet-client.key.tmp";

// YAML double-quoted scalar.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// waitForServer: GET /healthz with the bootstrap credentials, every 2 s (20% jitter), up to
// `deadline`. Logs each failure.
bool WaitForServer(ApiClient* client, absl::Duration deadline, const std::atomic<bool>& stop) {
  std::mt19937 rng(std::random_device{}());
  absl::Time until = absl::Now() + deadline;
  while (!stop.load()) {
    absl::StatusOr<Json> r = client->Get("/healthz");
    // /healthz answers "ok" (not JSON): the client reports that as Internal, which still
    // means the server answered 2xx.
    if (r.ok() || absl::IsInternal(r.status())) return true;
    LOG(INFO) << "certificate: failed to connect to apiserver: " << r.status();
    if (absl::Now() >= until) return false;
    absl::Duration d = absl::Seconds(2) * (1 + 0.2 * (rng() % 1000) / 1000.0);
    for (absl::Time t = absl::Now() + d; absl::Now() < t && !stop.load();) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return false;
}

}  // namespace

bool KubeconfigStillValid(const std::string& path, absl::Time now, std::string* why) {
  auto say = [&](std::string w) {
    if (why != nullptr) *why = std::move(w);
    return false;
  };
  if (!PathExists(path)) return say(path + " does not exist");
  absl::StatusOr<Kubeconfig> kc = LoadKubeconfig(path);
  if (!kc.ok()) return say(absl::StrCat("unable to read ", path, ": ", kc.status().message()));
  if (kc->client_cert_pem.empty()) return say(path + " has no client certificate");
  absl::StatusOr<std::shared_ptr<const KeyPair>> kp =
      ParseKeyPair(kc->client_cert_pem, kc->client_key_pem);
  if (!kp.ok()) {
    return say(absl::StrCat("unable to load the client certificate of ", path, ": ",
                            kp.status().message()));
  }
  if (now > (*kp)->not_after) {
    return say(
        absl::StrCat("the client certificate in ", path, " expired at ",
                     absl::FormatTime(absl::RFC3339_sec, (*kp)->not_after, absl::UTCTimeZone())));
  }
  return true;
}

std::string BootstrappedKubeconfig(const Kubeconfig& bootstrap, const std::string& pem_path) {
  std::string cluster = absl::StrCat("    server: ", Quote(bootstrap.server), "\n");
  if (bootstrap.insecure_skip_tls_verify)
    absl::StrAppend(&cluster, "    insecure-skip-tls-verify: true\n");
  if (!bootstrap.ca_file.empty()) {
    absl::StrAppend(&cluster, "    certificate-authority: ", Quote(bootstrap.ca_file), "\n");
  } else if (!bootstrap.ca_pem.empty()) {
    absl::StrAppend(&cluster, "    certificate-authority-data: ", Base64(bootstrap.ca_pem), "\n");
  }
  if (!bootstrap.tls_server_name.empty()) {
    absl::StrAppend(&cluster, "    tls-server-name: ", Quote(bootstrap.tls_server_name), "\n");
  }
  return absl::StrCat("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n", cluster,
                      "  name: default-cluster\n"
                      "contexts:\n- context:\n    cluster: default-cluster\n"
                      "    namespace: default\n    user: default-auth\n  name: default-context\n"
                      "current-context: default-context\npreferences: {}\n"
                      "users:\n- name: default-auth\n  user:\n",
                      "    client-certificate: ", Quote(pem_path), "\n",
                      "    client-key: ", Quote(pem_path), "\n");
}

absl::Status WriteBootstrappedKubeconfig(const Kubeconfig& bootstrap, const std::string& path,
                                         const std::string& pem_path) {
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (!dir.empty()) RETURN_IF_ERROR(MkdirAll(dir, 0755));
  return Annotate(WriteFileAtomic(path, BootstrappedKubeconfig(bootstrap, pem_path), 0600),
                  "write kubeconfig " + path);
}

absl::Status LoadClientCert(const std::string& kubeconfig_path, const std::string& bootstrap_path,
                            const std::string& cert_dir, const std::string& node_name,
                            const std::atomic<bool>& stop) {
  std::string why;
  if (KubeconfigStillValid(kubeconfig_path, absl::Now(), &why)) {
    LOG(INFO) << "certificate: kubeconfig " << kubeconfig_path << " is valid, skipping bootstrap";
    return absl::OkStatus();
  }
  LOG(INFO) << "certificate: TLS bootstrap with " << bootstrap_path << " (" << why << ")";
  absl::StatusOr<Kubeconfig> bootstrap = LoadKubeconfig(bootstrap_path);
  if (!bootstrap.ok()) return Annotate(bootstrap.status(), "unable to load bootstrap kubeconfig");
  ASSIGN_OR_RETURN(std::unique_ptr<ApiClient> client, ApiClient::Create(*bootstrap));
  ASSIGN_OR_RETURN(std::unique_ptr<CertStore> store, CertStore::Create("kubelet-client", cert_dir));

  // The current pair's key if it still parses (its certificate may have expired), else the
  // key cached in kubelet-client.key.tmp until a CSR succeeds.
  std::string key_pem;
  if (absl::StatusOr<std::shared_ptr<const KeyPair>> cur = store->Current(); cur.ok()) {
    key_pem = (*cur)->key_pem;
  }
  const std::string tmp_key = JoinPath(cert_dir, kTmpPrivateKeyFile);
  if (key_pem.empty() || !ParsePrivateKeyPem(key_pem).ok()) {
    ASSIGN_OR_RETURN(key_pem, LoadOrGenerateKeyFile(tmp_key));
  }
  if (!WaitForServer(client.get(), absl::Minutes(1), stop)) {
    if (stop.load()) return absl::CancelledError("stopped during TLS bootstrap");
    LOG(WARNING) << "certificate: timed out waiting for the apiserver; requesting anyway";
  }
  ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> key, ParsePrivateKeyPem(key_pem));
  CsrTemplate t = NodeClientTemplate(node_name);
  ASSIGN_OR_RETURN(std::string csr_pem, MakeCsrPem(key.get(), t));
  std::vector<std::string> usages = ClientUsages(key.get());
  ASSIGN_OR_RETURN(std::string name, DigestedName(key.get(), t, usages));
  ASSIGN_OR_RETURN(CsrRef ref,
                   RequestCertificate(client.get(), name, csr_pem, kKubeletClientSigner, usages));
  ASSIGN_OR_RETURN(std::string cert_pem,
                   WaitForCertificate(client.get(), ref, absl::Hours(1), stop));
  ASSIGN_OR_RETURN(std::shared_ptr<const KeyPair> kp, store->Update(cert_pem, key_pem));
  if (unlink(tmp_key.c_str()) != 0 && errno != ENOENT) {
    LOG(WARNING) << "certificate: failed cleaning up private key file " << tmp_key;
  }
  RETURN_IF_ERROR(WriteBootstrappedKubeconfig(*bootstrap, kubeconfig_path, store->CurrentPath()));
  LOG(INFO) << "certificate: bootstrap done: " << kp->common_name << " valid until "
            << absl::FormatTime(absl::RFC3339_sec, kp->not_after, absl::UTCTimeZone())
            << ", kubeconfig " << kubeconfig_path;
  return absl::OkStatus();
}

absl::StatusOr<NodeCredentials> SetUpNodeCredentials(const NodeCredentialsOptions& o,
                                                     const std::atomic<bool>& stop) {
  NodeCredentials out;
  if (!o.rotate) {
    if (!o.bootstrap_kubeconfig.empty()) {
      RETURN_IF_ERROR(
          LoadClientCert(o.kubeconfig, o.bootstrap_kubeconfig, o.cert_dir, o.node_name, stop));
    }
    ASSIGN_OR_RETURN(out.config, LoadKubeconfig(o.kubeconfig));
    return out;
  }
  // LoadClientConfig: cert_config requests certificates while there is none; user_config is
  // the kubelet's (cluster of the kubeconfig, certificate from the manager).
  Kubeconfig cert_config, user_config;
  std::string why;
  if (o.bootstrap_kubeconfig.empty() || KubeconfigStillValid(o.kubeconfig, absl::Now(), &why)) {
    absl::StatusOr<Kubeconfig> kc = LoadKubeconfig(o.kubeconfig);
    if (!kc.ok()) return Annotate(kc.status(), "unable to load kubeconfig");
    cert_config = user_config = *kc;
  } else {
    absl::StatusOr<Kubeconfig> bootstrap = LoadKubeconfig(o.bootstrap_kubeconfig);
    if (!bootstrap.ok()) return Annotate(bootstrap.status(), "unable to load bootstrap kubeconfig");
    ASSIGN_OR_RETURN(std::unique_ptr<CertStore> probe,
                     CertStore::Create("kubelet-client", o.cert_dir));
    std::string pem_path = probe->CurrentPath();
    RETURN_IF_ERROR(WriteBootstrappedKubeconfig(*bootstrap, o.kubeconfig, pem_path));
    LOG(INFO) << "certificate: " << why << "; wrote " << o.kubeconfig << " pointing at " << pem_path
              << ", requesting a client certificate with " << o.bootstrap_kubeconfig;
    cert_config = *bootstrap;
    user_config = *bootstrap;
    user_config.client_certificate_file = user_config.client_key_file = pem_path;
    user_config.client_cert_pem.clear();
    user_config.client_key_pem.clear();
    user_config.token.clear();
  }
  ASSIGN_OR_RETURN(
      std::unique_ptr<CertStore> store,
      CertStore::Create("kubelet-client", o.cert_dir, user_config.client_certificate_file,
                        user_config.client_key_file));
  ManagerOptions mo;
  mo.name = "client";
  mo.signer_name = kKubeletClientSigner;
  CsrTemplate t = NodeClientTemplate(o.node_name);
  mo.get_template = [t] { return std::optional<CsrTemplate>(t); };
  mo.store = std::move(store);
  // A kubeconfig with inline credentials (kubeadm's first control-plane kubeconfig): they are
  // stored and rotated out at once.
  if (user_config.client_certificate_file.empty() && !user_config.client_cert_pem.empty()) {
    mo.bootstrap_cert_pem = user_config.client_cert_pem;
    mo.bootstrap_key_pem = user_config.client_key_pem;
  }
  Kubeconfig anonymous = user_config;  // AnonymousClientConfig: cluster only
  anonymous.client_cert_pem.clear();
  anonymous.client_key_pem.clear();
  anonymous.token.clear();
  mo.client_for =
      [cert_config, anonymous](
          std::shared_ptr<const KeyPair> current) -> absl::StatusOr<std::shared_ptr<ApiClient>> {
    if (current == nullptr) {
      ASSIGN_OR_RETURN(std::unique_ptr<ApiClient> c, ApiClient::Create(cert_config));
      return std::shared_ptr<ApiClient>(std::move(c));
    }
    ApiClientOptions ao;
    std::shared_ptr<const ClientCertificate> cc = current->client;
    ao.client_certificate = [cc] { return cc; };
    ASSIGN_OR_RETURN(std::unique_ptr<ApiClient> c, ApiClient::Create(anonymous, ao));
    return std::shared_ptr<ApiClient>(std::move(c));
  };
  ASSIGN_OR_RETURN(out.client_manager, CertificateManager::Create(std::move(mo)));
  out.config = anonymous;
  CertificateManager* m = out.client_manager.get();
  out.api_options.client_certificate = [m]() -> std::shared_ptr<const ClientCertificate> {
    std::shared_ptr<const KeyPair> kp = m->Current();
    return kp ? kp->client : nullptr;
  };
  return out;
}

}  // namespace berth::kubelet::certificate
