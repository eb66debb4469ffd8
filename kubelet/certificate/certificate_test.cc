#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kubelet/certificate/bootstrap.h"
#include "kubelet/certificate/csr.h"
#include "kubelet/certificate/manager.h"
#include "kubelet/certificate/metrics.h"
#include "kubelet/certificate/store.h"
#include "kubelet/certificate/x509.h"
#include "kubelet/kubeconfig.h"

namespace berth::kubelet::certificate {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fixed P-256 key and the CSR name upstream's digestedName gives it for node-a's client
// CSR, computed independently (Python hashlib sha512_256 over the documented stream).
constexpr char kFixedKey[] = R"(-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFXkPqcRJPhk7sVlCcOy1hNuN7luChIZtSDm1SBg+hEnoAoGCCqGSM49
AwEHoUQDQgAE+nqCdIKQSkeA/HAP43XVtxSpUKo8ncILHrL9XvtObFNwkLLZlAo9
WYzBETVJHKl3CcaYbmez9NbyEi1tXNIePA==
-----END EC PRIVATE KEY-----
)";
constexpr char kFixedName[] = "node-csr-LUT7g5Nek2hGzWrmjatpWHYmoe-gmx9xLCkKB_A8Az8";

std::string TempDir() {
  std::string t = (std::filesystem::temp_directory_path() / "berth-cert-XXXXXX").string();
  char* d = mkdtemp(t.data());
  EXPECT_NE(d, nullptr);
  return t;
}

// A test CA that signs CSRs with a chosen validity.
struct TestCa {
  std::shared_ptr<EVP_PKEY> key;
  std::shared_ptr<X509> cert;

  TestCa() {
    key.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
    cert.reset(X509_new(), X509_free);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
    X509_NAME* n = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("test-ca"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), n);
    X509_set_pubkey(cert.get(), key.get());
    X509_sign(cert.get(), key.get(), EVP_sha256());
  }

  // Signs `csr_pem` with NotBefore now+from_s, NotAfter now+to_s (seconds).
  std::string Sign(const std::string& csr_pem, long from_s, long to_s) {
    BIO* bio = BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size()));
    X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    EXPECT_NE(req, nullptr);
    X509* x = X509_new();
    X509_set_version(x, 2);
    static long serial = 100;
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_subject_name(x, X509_REQ_get_subject_name(req));
    X509_set_issuer_name(x, X509_get_subject_name(cert.get()));
    X509_set_pubkey(x, X509_REQ_get0_pubkey(req));
    STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
    for (int i = 0; exts != nullptr && i < sk_X509_EXTENSION_num(exts); ++i) {
      X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1);
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_sign(x, key.get(), EVP_sha256());
    BIO* out = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(out, x);
    char* data = nullptr;
    long n = BIO_get_mem_data(out, &data);
    std::string pem(data, n);
    BIO_free(out);
    X509_free(x);
    X509_REQ_free(req);
    return pem;
  }

  std::string Pem() const {
    BIO* out = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(out, cert.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(out, &data);
    std::string pem(data, n);
    BIO_free(out);
    return pem;
  }
};

// A fresh key + certificate for `t`, valid [now+from_s, now+to_s].
struct Issued {
  std::string key_pem, cert_pem;
};
Issued Issue(TestCa& ca, const CsrTemplate& t, long from_s, long to_s) {
  Issued out;
  out.key_pem = *GenerateEcPrivateKeyPem();
  auto key = *ParsePrivateKeyPem(out.key_pem);
  out.cert_pem = ca.Sign(*MakeCsrPem(key.get(), t), from_s, to_s);
  return out;
}

TEST(X509Test, GeneratedKeyIsEcP256InSec1Pem) {
  auto pem = GenerateEcPrivateKeyPem();
  ASSERT_TRUE(pem.ok());
  EXPECT_TRUE(absl::StartsWith(*pem, "-----BEGIN EC PRIVATE KEY-----")) << *pem;
  auto key = ParsePrivateKeyPem(*pem);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(EVP_PKEY_base_id(key->get()), EVP_PKEY_EC);
  char group[64] = {0};
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key->get(), group, sizeof(group), &len), 1);
  EXPECT_STREQ(group, "prime256v1");
}

TEST(X509Test, ClientCsrHasNodeSubjectNoSansAndVerifies) {
  auto key = *ParsePrivateKeyPem(kFixedKey);
  auto pem = MakeCsrPem(key.get(), NodeClientTemplate("node-a"));
  ASSERT_TRUE(pem.ok()) << pem.status();
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(req, nullptr);
  char* subject = X509_NAME_oneline(X509_REQ_get_subject_name(req), nullptr, 0);
  EXPECT_STREQ(subject, "/O=system:nodes/CN=system:node:node-a");
  OPENSSL_free(subject);
  EXPECT_EQ(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  EXPECT_TRUE(exts == nullptr || sk_X509_EXTENSION_num(exts) == 0);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
}

TEST(X509Test, ServingCsrCarriesSans) {
  TestCa ca;
  CsrTemplate t = NodeClientTemplate("node-a");
  t.dns_names = {"node-a"};
  t.ip_addresses = {"10.0.0.7", "fd00::7"};
  Issued i = Issue(ca, t, -60, 3600);
  auto kp = ParseKeyPair(i.cert_pem, i.key_pem);
  ASSERT_TRUE(kp.ok()) << kp.status();
  EXPECT_EQ((*kp)->common_name, "system:node:node-a");
  EXPECT_THAT((*kp)->organizations, ElementsAre("system:nodes"));
  EXPECT_THAT((*kp)->dns_names, ElementsAre("node-a"));
  EXPECT_THAT((*kp)->ip_addresses, ElementsAre("10.0.0.7", "fd00::7"));
  EXPECT_TRUE(SatisfiesTemplate(**kp, t));
  CsrTemplate more = t;
  more.ip_addresses.push_back("10.0.0.8");
  EXPECT_FALSE(SatisfiesTemplate(**kp, more));
  CsrTemplate other = NodeClientTemplate("node-b");
  EXPECT_FALSE(SatisfiesTemplate(**kp, other));
  t.ip_addresses = {"not-an-ip"};
  EXPECT_FALSE(MakeCsrPem((*kp)->key.get(), t).ok());
}

TEST(X509Test, UsagesAsUpstreamForEcKeys) {
  auto key = *ParsePrivateKeyPem(kFixedKey);
  EXPECT_THAT(ClientUsages(key.get()), ElementsAre("digital signature", "client auth"));
  EXPECT_THAT(ServingUsages(key.get()), ElementsAre("digital signature", "server auth"));
}

TEST(X509Test, DigestedNameMatchesUpstreamScheme) {
  auto key = *ParsePrivateKeyPem(kFixedKey);
  CsrTemplate t = NodeClientTemplate("node-a");
  auto name = DigestedName(key.get(), t, ClientUsages(key.get()));
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(*name, kFixedName);
  // Every input counts.
  EXPECT_NE(*DigestedName(key.get(), NodeClientTemplate("node-b"), ClientUsages(key.get())), *name);
  EXPECT_NE(*DigestedName(key.get(), t, ServingUsages(key.get())), *name);
  auto other = *ParsePrivateKeyPem(*GenerateEcPrivateKeyPem());
  EXPECT_NE(*DigestedName(other.get(), t, ClientUsages(other.get())), *name);
}

TEST(X509Test, KeyPairRejectsMismatchedKey) {
  TestCa ca;
  Issued i = Issue(ca, NodeClientTemplate("n"), -60, 3600);
  EXPECT_TRUE(ParseKeyPair(i.cert_pem, i.key_pem).ok());
  EXPECT_FALSE(ParseKeyPair(i.cert_pem, *GenerateEcPrivateKeyPem()).ok());
  EXPECT_FALSE(ParseKeyPair("", i.key_pem).ok());
}

TEST(X509Test, LoadOrGenerateKeyFileReusesTheKey) {
  std::string dir = TempDir();
  std::string path = JoinPath(dir, "pki/kubelet-client.key.tmp");
  auto first = LoadOrGenerateKeyFile(path);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(*LoadOrGenerateKeyFile(path), *first);
  ASSERT_TRUE(WriteFileAtomic(path, "garbage", 0600).ok());
  auto third = LoadOrGenerateKeyFile(path);
  ASSERT_TRUE(third.ok());
  EXPECT_NE(*third, *first);
  RemoveAll(dir).IgnoreError();
}

TEST(StoreTest, UpdateWritesTimestampedPemAndCurrentSymlink) {
  std::string dir = TempDir();
  TestCa ca;
  auto store = CertStore::Create("kubelet-client", dir);
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE(absl::IsNotFound((*store)->Current().status()));
  EXPECT_EQ((*store)->CurrentPath(), JoinPath(dir, "kubelet-client-current.pem"));

  Issued a = Issue(ca, NodeClientTemplate("n"), -60, 3600);
  absl::Time t1 = absl::FromUnixSeconds(1700000000);
  ASSERT_TRUE((*store)->Update(a.cert_pem, a.key_pem, t1).ok());
  std::string file1 = JoinPath(
      dir, absl::StrCat("kubelet-client-",
                        absl::FormatTime("%Y-%m-%d-%H-%M-%S", t1, absl::LocalTimeZone()), ".pem"));
  std::error_code ec;
  EXPECT_EQ(std::filesystem::read_symlink((*store)->CurrentPath(), ec).string(), file1);
  struct stat st;
  ASSERT_EQ(stat(file1.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(*ReadFile(file1), a.cert_pem + a.key_pem);

  Issued b = Issue(ca, NodeClientTemplate("n"), -60, 7200);
  ASSERT_TRUE((*store)->Update(b.cert_pem, b.key_pem, t1 + absl::Seconds(5)).ok());
  auto cur = (*store)->Current();
  ASSERT_TRUE(cur.ok()) << cur.status();
  EXPECT_EQ((*cur)->cert_pem + (*cur)->key_pem, b.cert_pem + b.key_pem);
  EXPECT_TRUE(PathExists(file1));  // old pairs are kept, as upstream
  EXPECT_FALSE(PathExists(JoinPath(dir, "kubelet-client-updated.pem")));
  // A pair that does not match is refused and the link is left alone.
  EXPECT_FALSE((*store)->Update(a.cert_pem, b.key_pem, t1 + absl::Seconds(9)).ok());
  EXPECT_EQ((*(*store)->Current())->cert_pem, b.cert_pem);
  RemoveAll(dir).IgnoreError();
}

TEST(StoreTest, RecoversAnInterruptedUpdate) {
  std::string dir = TempDir();
  TestCa ca;
  Issued a = Issue(ca, NodeClientTemplate("n"), -60, 3600);
  std::string file = JoinPath(dir, "kubelet-client-2026-01-01-00-00-00.pem");
  ASSERT_TRUE(WriteFileAtomic(file, a.cert_pem + a.key_pem, 0600).ok());
  ASSERT_EQ(symlink(file.c_str(), JoinPath(dir, "kubelet-client-updated.pem").c_str()), 0);
  auto store = CertStore::Create("kubelet-client", dir);
  ASSERT_TRUE(store.ok());
  auto cur = (*store)->Current();
  ASSERT_TRUE(cur.ok()) << cur.status();
  EXPECT_EQ((*cur)->cert_pem + (*cur)->key_pem, a.cert_pem + a.key_pem);
  RemoveAll(dir).IgnoreError();
}

TEST(RotationTest, DeadlineIsSeventyToNinetyPercentOfTheLifetime) {
  absl::Time nb = absl::FromUnixSeconds(1000);
  absl::Time na = nb + absl::Seconds(1000);
  EXPECT_EQ(RotationDeadline(nb, na, 0.0), nb + absl::Seconds(700));
  EXPECT_EQ(RotationDeadline(nb, na, 0.5), nb + absl::Seconds(800));
  EXPECT_LT(RotationDeadline(nb, na, 0.999999), nb + absl::Seconds(900));
  EXPECT_GT(RotationDeadline(nb, na, 0.999999), nb + absl::Seconds(899));
}

TEST(RotationTest, ManagerRenewsAtOnceWithoutAValidCertificate) {
  std::string dir = TempDir();
  TestCa ca;
  ManagerOptions mo;
  mo.store = *CertStore::Create("kubelet-client", dir);
  CsrTemplate t = NodeClientTemplate("n");
  mo.get_template = [t] { return std::optional<CsrTemplate>(t); };
  mo.rand01 = [] { return 0.5; };
  mo.client_for = [](std::shared_ptr<const KeyPair>) -> absl::StatusOr<std::shared_ptr<ApiClient>> {
    return absl::UnavailableError("no API in this test");
  };
  auto m = CertificateManager::Create(std::move(mo));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->Current(), nullptr);
  absl::Time deadline = (*m)->NextRotationDeadline();
  EXPECT_LE(deadline, absl::Now());
  EXPECT_THAT((*m)->Rotate().message(), HasSubstr("no API in this test"));
  RemoveAll(dir).IgnoreError();
}

TEST(RotationTest, ManagerSchedulesFromTheStoredCertificate) {
  std::string dir = TempDir();
  TestCa ca;
  auto store = *CertStore::Create("kubelet-client", dir);
  // NotBefore now-100 s, NotAfter now+900 s: deadline NotBefore + 0.8 * 1000 s.
  Issued a = Issue(ca, NodeClientTemplate("n"), -100, 900);
  auto stored = store->Update(a.cert_pem, a.key_pem);
  ASSERT_TRUE(stored.ok());
  ManagerOptions mo;
  mo.store = std::move(store);
  CsrTemplate t = NodeClientTemplate("n");
  mo.get_template = [&t] { return std::optional<CsrTemplate>(t); };
  mo.rand01 = [] { return 0.5; };
  auto m = CertificateManager::Create(std::move(mo));
  ASSERT_TRUE(m.ok());
  ASSERT_NE((*m)->Current(), nullptr);
  EXPECT_EQ((*m)->NextRotationDeadline(),
            (*stored)->not_before + 0.8 * ((*stored)->not_after - (*stored)->not_before));
  t = NodeClientTemplate("renamed");  // a template the certificate no longer satisfies
  absl::Time now_deadline = (*m)->NextRotationDeadline();
  EXPECT_LE(now_deadline, absl::Now());
  RemoveAll(dir).IgnoreError();
}

TEST(RotationTest, ExpiredCertificateIsNotCurrent) {
  std::string dir = TempDir();
  TestCa ca;
  auto store = *CertStore::Create("kubelet-client", dir);
  Issued old = Issue(ca, NodeClientTemplate("n"), -7200, -3600);
  ASSERT_TRUE(store->Update(old.cert_pem, old.key_pem).ok());
  ManagerOptions mo;
  mo.store = std::move(store);
  mo.get_template = [] { return std::optional<CsrTemplate>(NodeClientTemplate("n")); };
  auto m = CertificateManager::Create(std::move(mo));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->Current(), nullptr);
  absl::Time deadline = (*m)->NextRotationDeadline();
  EXPECT_LE(deadline, absl::Now());
  RemoveAll(dir).IgnoreError();
}

TEST(BootstrapTest, KubeconfigIsWrittenAsUpstreamAndPointsAtTheCurrentLink) {
  std::string dir = TempDir();
  TestCa ca;
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir, "ca.crt"), ca.Pem()).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir, "bootstrap.conf"),
                              "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n"
                              "    server: https://10.0.0.1:6443\n"
                              "    certificate-authority: ca.crt\n  name: c\n"
                              "contexts:\n- context: {cluster: c, user: u}\n  name: x\n"
                              "current-context: x\nusers:\n- name: u\n"
                              "  user: {token: abcdef.0123456789abcdef}\n")
                  .ok());
  auto bootstrap = LoadKubeconfig(JoinPath(dir, "bootstrap.conf"));
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  EXPECT_EQ(bootstrap->ca_file, JoinPath(dir, "ca.crt"));
  std::string pem_path = JoinPath(dir, "pki/kubelet-client-current.pem");
  std::string kubeconfig = JoinPath(dir, "kubelet.conf");
  ASSERT_TRUE(WriteBootstrappedKubeconfig(*bootstrap, kubeconfig, pem_path).ok());
  struct stat st;
  ASSERT_EQ(stat(kubeconfig.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::string text = *ReadFile(kubeconfig);
  EXPECT_THAT(text, HasSubstr("name: default-cluster"));
  EXPECT_THAT(text, HasSubstr("name: default-auth"));
  EXPECT_THAT(text, HasSubstr("current-context: default-context"));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("certificate-authority: \"", dir, "/ca.crt\"")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("token")));

  // The certificate is not there yet: the kubeconfig is not valid, and says why.
  std::string why;
  EXPECT_FALSE(KubeconfigStillValid(kubeconfig, absl::Now(), &why));
  EXPECT_THAT(why, HasSubstr("kubelet-client-current.pem"));
  // Once the store holds a pair, the same file is a valid node kubeconfig.
  auto store = *CertStore::Create("kubelet-client", JoinPath(dir, "pki"));
  Issued a = Issue(ca, NodeClientTemplate("n"), -60, 3600);
  ASSERT_TRUE(store->Update(a.cert_pem, a.key_pem).ok());
  EXPECT_TRUE(KubeconfigStillValid(kubeconfig, absl::Now(), &why)) << why;
  auto kc = LoadKubeconfig(kubeconfig);
  ASSERT_TRUE(kc.ok()) << kc.status();
  EXPECT_EQ(kc->server, "https://10.0.0.1:6443");
  EXPECT_EQ(kc->client_cert_pem, a.cert_pem + a.key_pem);
  EXPECT_EQ(kc->client_certificate_file, pem_path);
  EXPECT_EQ(kc->ca_pem, ca.Pem());
  // ... until it expires.
  EXPECT_FALSE(KubeconfigStillValid(kubeconfig, absl::Now() + absl::Hours(2), &why));
  EXPECT_THAT(why, HasSubstr("expired"));

  // CA given as data: written as data.
  Kubeconfig inline_ca = *bootstrap;
  inline_ca.ca_file.clear();
  EXPECT_THAT(BootstrappedKubeconfig(inline_ca, pem_path),
              HasSubstr("certificate-authority-data: " + Base64(ca.Pem())));
  RemoveAll(dir).IgnoreError();
}

// A fake API client serving one CSR object.
class FakeCsrApi : public ApiClient {
 public:
  Json csr;
  Json created;
  absl::Status post_error;
  int gets = 0;
  absl::StatusOr<Json> Get(const std::string& path) override {
    ++gets;
    if (!absl::StrContains(path, "certificatesigningrequests/")) return absl::NotFoundError(path);
    return csr;
  }
  absl::StatusOr<Json> Post(const std::string&, const Json& body) override {
    if (!post_error.ok()) return post_error;
    created = body;
    Json out = body;
    out["metadata"]["name"] = body["metadata"].value("name", "csr-abcde");
    out["metadata"]["uid"] = "uid-1";
    return out;
  }
  absl::StatusOr<Json> Put(const std::string&, const Json&) override { return Json(); }
  absl::StatusOr<Json> Patch(const std::string&, const Json&, PatchType) override { return Json(); }
  absl::Status Delete(const std::string&, const Json&) override { return absl::OkStatus(); }
  absl::Status Watch(const std::string&,
                     const std::function<bool(const std::string&, const Json&)>& f,
                     const std::atomic<bool>&) override {
    f("MODIFIED", csr);
    return absl::OkStatus();
  }
  std::string Server() const override { return "https://fake"; }
};

TEST(CsrTest, ObjectAsUpstream) {
  Json o = CsrObject("", "PEM", kKubeletClientSigner, {"digital signature", "client auth"});
  EXPECT_EQ(o["apiVersion"], "certificates.k8s.io/v1");
  EXPECT_EQ(o["metadata"]["generateName"], "csr-");
  EXPECT_EQ(o["spec"]["request"], Base64("PEM"));
  EXPECT_EQ(o["spec"]["signerName"], "kubernetes.io/kube-apiserver-client-kubelet");
  Json named = CsrObject("node-csr-x", "PEM", kKubeletServingSigner, {});
  EXPECT_EQ(named["metadata"]["name"], "node-csr-x");
  EXPECT_FALSE(named["metadata"].contains("generateName"));
}

TEST(CsrTest, WaitReturnsTheIssuedCertificateAndReportsDenial) {
  FakeCsrApi api;
  std::atomic<bool> stop{false};
  auto ref = RequestCertificate(&api, "", "PEM", kKubeletClientSigner, {"client auth"});
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->name, "csr-abcde");
  api.csr = {{"metadata", {{"name", "csr-abcde"}, {"uid", "uid-1"}, {"resourceVersion", "5"}}},
             {"status",
              {{"conditions", Json::array({{{"type", "Approved"}, {"reason", "AutoApproved"}}})},
               {"certificate", Base64("CERT")}}}};
  auto cert = WaitForCertificate(&api, *ref, absl::Seconds(5), stop);
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(*cert, "CERT");

  api.csr["status"] = {
      {"conditions",
       Json::array({{{"type", "Denied"}, {"reason", "NotAllowed"}, {"message", "no way"}}})}};
  auto denied = WaitForCertificate(&api, *ref, absl::Seconds(5), stop);
  EXPECT_TRUE(absl::IsPermissionDenied(denied.status()));
  EXPECT_THAT(denied.status().message(), HasSubstr("csr-abcde is denied, reason: NotAllowed"));

  api.csr["metadata"]["uid"] = "uid-2";
  EXPECT_TRUE(absl::IsAborted(WaitForCertificate(&api, *ref, absl::Seconds(5), stop).status()));

  // Approved without a certificate: keeps waiting until the deadline.
  api.csr["metadata"]["uid"] = "uid-1";
  api.csr["status"] = {{"conditions", Json::array({{{"type", "Approved"}}})}};
  auto pending = WaitForCertificate(&api, *ref, absl::Milliseconds(300), stop);
  EXPECT_TRUE(absl::IsDeadlineExceeded(pending.status())) << pending.status();
}

TEST(CsrTest, ExistingNamedCsrIsReusedOnlyWhenCompatible) {
  FakeCsrApi api;
  auto key = *ParsePrivateKeyPem(kFixedKey);
  std::string csr_pem = *MakeCsrPem(key.get(), NodeClientTemplate("node-a"));
  api.post_error = absl::AlreadyExistsError("exists");
  api.csr = {{"metadata", {{"name", kFixedName}, {"uid", "uid-7"}}},
             {"spec", {{"request", Base64(csr_pem)}, {"signerName", kKubeletClientSigner}}}};
  auto ref = RequestCertificate(&api, kFixedName, csr_pem, kKubeletClientSigner, {});
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->uid, "uid-7");
  // Made with another key: refused.
  auto other = *ParsePrivateKeyPem(*GenerateEcPrivateKeyPem());
  std::string other_pem = *MakeCsrPem(other.get(), NodeClientTemplate("node-a"));
  EXPECT_FALSE(RequestCertificate(&api, kFixedName, other_pem, kKubeletClientSigner, {}).ok());
}

}  // namespace
}  // namespace berth::kubelet::certificate

namespace berth::kubelet::certificate {
namespace {

TEST(ServingTemplateTest, AddressesBecomeSortedSans) {
  auto t = ServingTemplate("node-a", {{"Hostname", "node-a"},
                                      {"InternalIP", "10.0.0.9"},
                                      {"ExternalIP", "192.0.2.1"},
                                      {"InternalIP", "10.0.0.9"},
                                      {"InternalDNS", "node-a.internal"},
                                      {"ExternalIP", "not-an-ip"}});
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->common_name, "system:node:node-a");
  EXPECT_THAT(t->organizations, ::testing::ElementsAre("system:nodes"));
  EXPECT_THAT(t->dns_names, ::testing::ElementsAre("node-a", "node-a.internal"));
  EXPECT_THAT(t->ip_addresses, ::testing::ElementsAre("10.0.0.9", "192.0.2.1"));
  // No IP: nothing to request (upstream requires one).
  EXPECT_FALSE(ServingTemplate("node-a", {{"Hostname", "node-a"}}).has_value());
  // A Hostname that is an IP is an IP SAN.
  auto ip_host = ServingTemplate("n", {{"Hostname", "10.1.1.1"}});
  ASSERT_TRUE(ip_host.has_value());
  EXPECT_THAT(ip_host->ip_addresses, ::testing::ElementsAre("10.1.1.1"));
  EXPECT_TRUE(ip_host->dns_names.empty());
}

}  // namespace
}  // namespace berth::kubelet::certificate

namespace berth::kubelet::certificate {
namespace {

using ::testing::HasSubstr;

TEST(TtlGaugeTest, SecondsUntilExpiryOrInfinity) {
  KeyPair kp;
  kp.not_after = absl::FromUnixSeconds(1000);
  EXPECT_EQ(TtlSeconds(&kp, absl::FromUnixSeconds(900) + absl::Milliseconds(300)), 99);
  EXPECT_EQ(TtlSeconds(&kp, absl::FromUnixSeconds(1010)), -10);
  EXPECT_TRUE(std::isinf(TtlSeconds(nullptr, absl::FromUnixSeconds(0))));
}

TEST(TtlGaugeTest, ExportedUnderTheUpstreamName) {
  std::string dir = TempDir();
  TestCa ca;
  auto store = *CertStore::Create("kubelet-client", dir);
  Issued a = Issue(ca, NodeClientTemplate("n"), -100, 600);
  ASSERT_TRUE(store->Update(a.cert_pem, a.key_pem).ok());
  ManagerOptions mo;
  mo.store = std::move(store);
  mo.get_template = [] { return std::optional<CsrTemplate>(NodeClientTemplate("n")); };
  auto m = CertificateManager::Create(std::move(mo));
  ASSERT_TRUE(m.ok());
  metrics::Registry registry;
  RegisterTtlGauge(&registry, "kubelet_certificate_manager_client_ttl_seconds", m->get());
  std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("# TYPE kubelet_certificate_manager_client_ttl_seconds gauge"));
  size_t at = text.find("\nkubelet_certificate_manager_client_ttl_seconds ");
  ASSERT_NE(at, std::string::npos) << text;
  double v = std::stod(text.substr(at + 48));
  EXPECT_GT(v, 590);
  EXPECT_LE(v, 600);
  RemoveAll(dir).IgnoreError();
}

}  // namespace
}  // namespace berth::kubelet::certificate
