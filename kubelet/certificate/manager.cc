#include "kubelet/certificate/manager.h"

#include <arpa/inet.h>

#include <algorithm>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status.h"
#include "kubelet/certificate/csr.h"

namespace berth::kubelet::certificate {

absl::Time RotationDeadline(absl::Time not_before, absl::Time not_after, double rand01) {
  absl::Duration total = not_after - not_before;
  return not_before + total * (0.7 + 0.2 * rand01);
}

bool SatisfiesTemplate(const KeyPair& cert, const CsrTemplate& t) {
  auto contains_all = [](const std::vector<std::string>& have,
                         const std::vector<std::string>& want) {
    return std::all_of(want.begin(), want.end(), [&](const std::string& w) {
      return std::find(have.begin(), have.end(), w) != have.end();
    });
  };
  return cert.common_name == t.common_name && contains_all(cert.dns_names, t.dns_names) &&
         contains_all(cert.ip_addresses, t.ip_addresses) &&
         contains_all(cert.organizations, t.organizations);
}

CertificateManager::CertificateManager(ManagerOptions options) : opts_(std::move(options)) {
  if (!opts_.rand01) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    auto mu = std::make_shared<absl::Mutex>();
    opts_.rand01 = [rng, mu] {
      absl::MutexLock lock(mu.get());
      return std::uniform_real_distribution<double>(0, 1)(*rng);
    };
  }
}

absl::StatusOr<std::unique_ptr<CertificateManager>> CertificateManager::Create(
    ManagerOptions options) {
  std::unique_ptr<CertificateManager> m(new CertificateManager(std::move(options)));
  // getCurrentCertificateOrBootstrap.
  absl::StatusOr<std::shared_ptr<const KeyPair>> current = m->opts_.store->Current();
  if (current.ok() && m->opts_.now() < (*current)->not_after) {
    absl::MutexLock lock(&m->mu_);
    m->cert_ = *current;
    return m;
  }
  if (!current.ok() && !absl::IsNotFound(current.status())) return current.status();
  absl::MutexLock lock(&m->mu_);
  m->force_rotation_ = true;
  if (!m->opts_.bootstrap_cert_pem.empty() && !m->opts_.bootstrap_key_pem.empty()) {
    ASSIGN_OR_RETURN(m->cert_,
                     ParseKeyPair(m->opts_.bootstrap_cert_pem, m->opts_.bootstrap_key_pem));
    if (auto s = m->opts_.store->Update(m->opts_.bootstrap_cert_pem, m->opts_.bootstrap_key_pem);
        !s.ok()) {
      LOG(WARNING) << "certificate: unable to store the initial " << m->opts_.name
                   << " certificate: " << s.status();
    }
  }
  return m;
}

CertificateManager::~CertificateManager() { Stop(); }

std::shared_ptr<const KeyPair> CertificateManager::Current() const {
  absl::MutexLock lock(&mu_);
  if (cert_ != nullptr && opts_.now() > cert_->not_after) return nullptr;
  return cert_;
}

int CertificateManager::rotations() const {
  absl::MutexLock lock(&mu_);
  return rotations_;
}

absl::Time CertificateManager::NextRotationDeadline() {
  std::optional<CsrTemplate> t = opts_.get_template ? opts_.get_template() : std::nullopt;
  absl::MutexLock lock(&mu_);
  if (force_rotation_ || cert_ == nullptr) return opts_.now();
  if (t.has_value() && !SatisfiesTemplate(*cert_, *t)) return opts_.now();
  return RotationDeadline(cert_->not_before, cert_->not_after, opts_.rand01());
}

absl::Status CertificateManager::Rotate() {
  std::optional<CsrTemplate> t = opts_.get_template();
  if (!t.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no ", opts_.name, " certificate template yet (no node addresses)"));
  }
  ASSIGN_OR_RETURN(std::string key_pem, GenerateEcPrivateKeyPem());
  ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> key, ParsePrivateKeyPem(key_pem));
  ASSIGN_OR_RETURN(std::string csr_pem, MakeCsrPem(key.get(), *t));
  std::vector<std::string> usages =
      opts_.serving ? ServingUsages(key.get()) : ClientUsages(key.get());
  std::shared_ptr<const KeyPair> current = Current();
  ASSIGN_OR_RETURN(std::shared_ptr<ApiClient> client, opts_.client_for(current));
  ASSIGN_OR_RETURN(CsrRef ref,
                   RequestCertificate(client.get(), "", csr_pem, opts_.signer_name, usages));
  ASSIGN_OR_RETURN(std::string cert_pem,
                   certificate::WaitForCertificate(client.get(), ref, opts_.wait_timeout, stop_));
  ASSIGN_OR_RETURN(std::shared_ptr<const KeyPair> kp, opts_.store->Update(cert_pem, key_pem));
  {
    absl::MutexLock lock(&mu_);
    cert_ = kp;
    force_rotation_ = false;
    ++rotations_;
  }
  LOG(INFO) << "certificate: new " << opts_.name << " certificate from csr " << ref.name << " (CN "
            << kp->common_name << ", valid until "
            << absl::FormatTime(absl::RFC3339_sec, kp->not_after, absl::UTCTimeZone())
            << "), stored as " << opts_.store->CurrentPath();
  return absl::OkStatus();
}

bool CertificateManager::SleepUntil(absl::Time until) {
  absl::MutexLock lock(&stop_mu_);
  while (!stopping_) {
    absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    stop_mu_.AwaitWithTimeout(absl::Condition(&stopping_), left);
  }
  return false;
}

void CertificateManager::Run() {
  while (!stop_.load()) {
    absl::Time deadline = NextRotationDeadline();
    absl::Time now = opts_.now();
    if (deadline > now) {
      LOG(INFO) << "certificate: " << opts_.name << " certificate rotation in "
                << absl::FormatDuration(absl::Trunc(deadline - now, absl::Seconds(1))) << " (at "
                << absl::FormatTime(absl::RFC3339_sec, deadline, absl::UTCTimeZone()) << ")";
      // Wake for template changes (node addresses) and to recompute after a clock jump.
      absl::Duration step = std::min(deadline - now, opts_.template_check_period);
      while (opts_.now() < deadline) {
        if (!SleepUntil(absl::Now() + std::min(step, deadline - opts_.now()))) return;
        std::optional<CsrTemplate> t = opts_.get_template();
        auto c = Current();
        if (t.has_value() && c != nullptr && !SatisfiesTemplate(*c, *t)) {
          LOG(INFO) << "certificate: " << opts_.name << " certificate template changed, rotating";
          break;
        }
      }
    }
    if (!opts_.get_template().has_value()) {
      if (!SleepUntil(absl::Now() + absl::Seconds(1))) return;
      continue;
    }
    absl::Duration delay = absl::Seconds(2);
    while (!stop_.load()) {
      absl::Status s = Rotate();
      if (s.ok()) break;
      if (stop_.load()) return;
      absl::Duration jittered = delay * (1 + 0.1 * opts_.rand01());
      LOG(WARNING) << "certificate: renewing the " << opts_.name << " certificate failed: " << s
                   << " (retrying in "
                   << absl::FormatDuration(absl::Trunc(jittered, absl::Milliseconds(100))) << ")";
      if (!SleepUntil(absl::Now() + jittered)) return;
      delay = std::min(delay * 2, absl::Seconds(32));
    }
  }
}

void CertificateManager::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void CertificateManager::Stop() {
  stop_.store(true);
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool CertificateManager::WaitForCertificate(const std::atomic<bool>& stop, absl::Duration timeout) {
  absl::Time until = absl::Now() + timeout;
  while (Current() == nullptr) {
    if (stop.load() || absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return true;
}

std::optional<CsrTemplate> ServingTemplate(const std::string& node_name,
                                           const std::vector<NodeAddress>& addresses) {
  auto is_ip = [](const std::string& a) {
    unsigned char buf[16];
    return inet_pton(AF_INET, a.c_str(), buf) == 1 || inet_pton(AF_INET6, a.c_str(), buf) == 1;
  };
  std::set<std::string> dns, ips;
  for (const NodeAddress& a : addresses) {
    if (a.address.empty()) continue;
    if (a.type == "Hostname") {
      (is_ip(a.address) ? ips : dns).insert(a.address);
    } else if (a.type == "InternalIP" || a.type == "ExternalIP") {
      if (is_ip(a.address)) ips.insert(a.address);
    } else if (a.type == "InternalDNS" || a.type == "ExternalDNS") {
      dns.insert(a.address);
    }
  }
  if (ips.empty()) return std::nullopt;
  CsrTemplate t = NodeClientTemplate(node_name);
  t.dns_names.assign(dns.begin(), dns.end());
  t.ip_addresses.assign(ips.begin(), ips.end());
  return t;
}

absl::StatusOr<std::unique_ptr<CertificateManager>> NewServingCertificateManager(
    ApiClient* client, const std::string& node_name, const std::string& cert_dir,
    std::function<std::vector<NodeAddress>()> addresses) {
  ManagerOptions mo;
  mo.name = "serving";
  mo.signer_name = kKubeletServingSigner;
  mo.serving = true;
  ASSIGN_OR_RETURN(mo.store, CertStore::Create("kubelet-server", cert_dir));
  mo.get_template = [node_name, addresses = std::move(addresses)] {
    return ServingTemplate(node_name, addresses());
  };
  std::shared_ptr<ApiClient> shared(client, [](ApiClient*) {});
  mo.client_for =
      [shared](std::shared_ptr<const KeyPair>) -> absl::StatusOr<std::shared_ptr<ApiClient>> {
    return shared;
  };
  return CertificateManager::Create(std::move(mo));
}

}  // namespace berth::kubelet::certificate
