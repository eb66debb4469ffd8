#include "kubelet/kubelet_config.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::kubelet {
namespace {

constexpr char kApiVersion[] = "kubelet.config.k8s.io/v1beta1";
constexpr char kKind[] = "KubeletConfiguration";

// How a field berth does not implement counts as set, as Go decodes it.
enum class Presence {
  kValue,    // non-pointer: its zero value (0, "", "0s", false, {}, []) means unset
  kPointer,  // pointer: any non-null value is set, an explicit zero too
};

// A KubeletConfiguration field berth ignores. Set to anything but `berth_value` (the
// behaviour berth has anyway; nullptr = none), it is named in the "not implemented" warning.
struct IgnoredField {
  const char* name;
  Presence presence;
  const char* berth_value;
};

// Every v1beta1 KubeletConfiguration field (k8s.io/kubelet v0.36 config/v1beta1/types.go)
// that no berth flag stands for. The mapped ones are read in Parser::Read.
constexpr IgnoredField kIgnoredFields[] = {
    {"syncFrequency", Presence::kValue, nullptr},
    {"httpCheckFrequency", Presence::kValue, nullptr},
    {"staticPodURL", Presence::kValue, nullptr},
    {"staticPodURLHeader", Presence::kValue, nullptr},
    {"tlsCipherSuites", Presence::kValue, nullptr},
    {"tlsCurvePreferences", Presence::kValue, nullptr},
    {"tlsMinVersion", Presence::kValue, nullptr},
    {"registryPullQPS", Presence::kPointer, nullptr},
    {"registryBurst", Presence::kValue, nullptr},
    {"imagePullCredentialsVerificationPolicy", Presence::kValue, nullptr},
    {"preloadedImagesVerificationAllowlist", Presence::kValue, nullptr},
    {"eventRecordQPS", Presence::kPointer, nullptr},
    {"eventBurst", Presence::kValue, nullptr},
    {"enableDebuggingHandlers", Presence::kPointer, "true"},  // berth serves logs/exec/...
    {"enableContentionProfiling", Presence::kValue, nullptr},
    {"oomScoreAdj", Presence::kPointer, nullptr},
    {"streamingConnectionIdleTimeout", Presence::kValue, nullptr},
    {"nodeStatusUpdateFrequency", Presence::kValue, nullptr},
    {"nodeStatusReportFrequency", Presence::kValue, nullptr},
    {"nodeLeaseDurationSeconds", Presence::kValue, nullptr},
    {"imageMaximumGCAge", Presence::kValue, nullptr},
    {"volumeStatsAggPeriod", Presence::kValue, nullptr},
    {"kubeletCgroups", Presence::kValue, nullptr},
    {"systemCgroups", Presence::kValue, nullptr},
    {"cgroupsPerQOS", Presence::kPointer, "true"},  // kubepods/{burstable,besteffort}
    {"cpuManagerPolicy", Presence::kValue, "none"},
    {"singleProcessOOMKill", Presence::kPointer, nullptr},
    {"cpuManagerPolicyOptions", Presence::kValue, nullptr},
    {"cpuManagerReconcilePeriod", Presence::kValue, nullptr},
    {"memoryManagerPolicy", Presence::kValue, "None"},
    {"topologyManagerPolicy", Presence::kValue, "none"},
    {"topologyManagerScope", Presence::kValue, nullptr},
    {"topologyManagerPolicyOptions", Presence::kValue, nullptr},
    {"qosReserved", Presence::kValue, nullptr},
    {"runtimeRequestTimeout", Presence::kValue, nullptr},
    {"hairpinMode", Presence::kValue, nullptr},
    {"podPidsLimit", Presence::kPointer, nullptr},
    {"runOnce", Presence::kValue, nullptr},
    {"cpuCFSQuota", Presence::kPointer, "true"},  // limits become CFS quotas
    {"cpuCFSQuotaPeriod", Presence::kPointer, nullptr},
    {"nodeStatusMaxImages", Presence::kPointer, nullptr},
    {"maxOpenFiles", Presence::kValue, nullptr},
    {"contentType", Presence::kValue, "application/json"},  // berth speaks JSON
    {"kubeAPIQPS", Presence::kPointer, nullptr},
    {"kubeAPIBurst", Presence::kValue, nullptr},
    {"serializeImagePulls", Presence::kPointer, nullptr},
    {"maxParallelImagePulls", Presence::kPointer, nullptr},
    {"podsPerCore", Presence::kValue, nullptr},
    {"enableControllerAttachDetach", Presence::kPointer, "true"},  // berth attaches nothing
    {"protectKernelDefaults", Presence::kValue, nullptr},
    {"makeIPTablesUtilChains", Presence::kPointer, nullptr},
    {"iptablesMasqueradeBit", Presence::kPointer, nullptr},
    {"iptablesDropBit", Presence::kPointer, nullptr},
    {"featureGates", Presence::kValue, nullptr},
    {"failSwapOn", Presence::kPointer, "false"},  // berth starts with swap on
    {"memorySwap", Presence::kValue, nullptr},
    {"containerLogMaxWorkers", Presence::kPointer, nullptr},
    {"containerLogMonitorInterval", Presence::kPointer, nullptr},
    {"configMapAndSecretChangeDetectionStrategy", Presence::kValue, nullptr},
    {"systemReserved", Presence::kValue, nullptr},
    {"kubeReserved", Presence::kValue, nullptr},
    {"reservedSystemCPUs", Presence::kValue, nullptr},
    {"showHiddenMetricsForVersion", Presence::kValue, nullptr},
    {"systemReservedCgroup", Presence::kValue, nullptr},
    {"kubeReservedCgroup", Presence::kValue, nullptr},
    {"enforceNodeAllocatable", Presence::kValue, nullptr},
    {"volumePluginDir", Presence::kValue, nullptr},
    {"providerID", Presence::kValue, nullptr},
    {"kernelMemcgNotification", Presence::kValue, nullptr},
    {"enableSystemLogHandler", Presence::kPointer, nullptr},
    {"enableSystemLogQuery", Presence::kPointer, nullptr},
    {"shutdownGracePeriod", Presence::kValue, nullptr},
    {"shutdownGracePeriodCriticalPods", Presence::kValue, nullptr},
    {"shutdownGracePeriodByPodPriority", Presence::kValue, nullptr},
    {"crashLoopBackOff", Presence::kValue, nullptr},
    {"reservedMemory", Presence::kValue, nullptr},
    {"enableProfilingHandler", Presence::kPointer, nullptr},
    {"enableDebugFlagsHandler", Presence::kPointer, nullptr},
    {"memoryThrottlingFactor", Presence::kPointer, nullptr},
    {"memoryReservationPolicy", Presence::kValue, "None"},
    {"registerNode", Presence::kPointer, "true"},  // berth registers its Node
    {"tracing", Presence::kPointer, nullptr},
    {"localStorageCapacityIsolation", Presence::kPointer, "true"},  // ephemeral-storage eviction
    {"failCgroupV1", Presence::kPointer, nullptr},
    {"userNamespaces", Presence::kPointer, nullptr},
};

// The fields Parser::Read maps (or judges) itself.
constexpr const char* kMappedFields[] = {
    "apiVersion",
    "kind",
    "enableServer",
    "podLogsDir",
    "address",
    "port",
    "readOnlyPort",
    "tlsCertFile",
    "tlsPrivateKeyFile",
    "authentication",
    "authorization",
    "healthzPort",
    "healthzBindAddress",
    "clusterDomain",
    "clusterDNS",
    "cgroupRoot",
    "cgroupDriver",
    "maxPods",
    "podCIDR",
    "resolvConf",
    "containerLogMaxSize",
    "containerLogMaxFiles",
    "allowedUnsafeSysctls",
    "logging",
    "seccompDefault",
    "registerWithTaints",
    "containerRuntimeEndpoint",
    "imageServiceEndpoint",
    "rotateCertificates",
    "serverTLSBootstrap",
    "staticPodPath",
    "fileCheckFrequency",
    "evictionHard",
    "evictionSoft",
    "evictionSoftGracePeriod",
    "evictionPressureTransitionPeriod",
    "evictionMaxPodGracePeriod",
    "evictionMinimumReclaim",
    "mergeDefaultEvictionSettings",
    "imageMinimumGCAge",
    "imageGCHighThresholdPercent",
    "imageGCLowThresholdPercent",
};

const IgnoredField* FindIgnored(const std::string& name) {
  for (const IgnoredField& f : kIgnoredFields) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

bool IsMapped(const std::string& name) {
  return std::find_if(std::begin(kMappedFields), std::end(kMappedFields),
                      [&](const char* m) { return name == m; }) != std::end(kMappedFields);
}

// Null or not there: an unset field.
bool Absent(const YAML::Node& n) { return !n.IsDefined() || n.IsNull(); }

// A plain (unquoted) scalar: YAML resolves it to a bool, a number or null; a quoted one is a
// string.
bool IsPlain(const YAML::Node& n) { return n.IsScalar() && n.Tag() != "!"; }

// YAML 1.1 booleans, as sigs.k8s.io/yaml (go-yaml v2) resolves them.
std::optional<bool> PlainBool(const std::string& s) {
  for (const char* t : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"}) {
    if (s == t) return true;
  }
  for (const char* t :
       {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"}) {
    if (s == t) return false;
  }
  return std::nullopt;
}

// Go's zero value: what a non-pointer field holds when the file does not set it.
bool IsZero(const YAML::Node& n) {
  if (Absent(n)) return true;
  if (n.IsSequence()) return n.size() == 0;
  if (n.IsMap()) {
    for (const auto& kv : n) {
      if (!IsZero(kv.second)) return false;
    }
    return true;
  }
  const std::string& s = n.Scalar();
  if (s.empty() || s == "0") return true;
  if (IsPlain(n) && PlainBool(s) == false) return true;
  absl::StatusOr<absl::Duration> d = ParseGoDuration(s);
  return d.ok() && *d == absl::ZeroDuration();
}

// The value shown next to an ignored field's name: scalars only, as written.
std::string Shown(const std::string& name, const YAML::Node& n) {
  if (!n.IsScalar()) return name;
  return absl::StrCat(name, " (", n.Scalar().empty() ? "\"\"" : n.Scalar(), ")");
}

std::string Quoted(const YAML::Node& n) {
  if (n.IsScalar()) return absl::StrCat("\"", n.Scalar(), "\"");
  return n.IsMap() ? "an object" : n.IsSequence() ? "a list" : "null";
}

// "unix:///run/berth/berth.sock", "/var/run/berth/berth.sock" -> "/run/berth/berth.sock".
std::string SocketPath(absl::string_view endpoint) {
  absl::ConsumePrefix(&endpoint, "unix://");
  std::string path = std::filesystem::path(std::string(endpoint)).lexically_normal().string();
  if (absl::StartsWith(path, "/var/run/")) path = path.substr(4);
  return path;
}

// Reads one KubeletConfiguration document. The first error wins; reading goes on so that
// the code stays linear, and Read() returns it.
class Parser {
 public:
  Parser(std::string base_dir, const KubeletConfigContext& ctx)
      : base_dir_(std::move(base_dir)), ctx_(ctx) {}

  absl::StatusOr<KubeletConfig> Read(const YAML::Node& root) {
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("want a KubeletConfiguration object, got ", Quoted(root)));
    }
    Object top = Fields(root, "", {});
    std::optional<std::string> api_version = String(Get(top, "apiVersion"), "apiVersion");
    std::optional<std::string> kind = String(Get(top, "kind"), "kind");
    if (!error_.ok()) return error_;
    if (api_version.value_or("") != kApiVersion || kind.value_or("") != kKind) {
      return absl::InvalidArgumentError(
          absl::StrCat("apiVersion \"", api_version.value_or(""), "\", kind \"", kind.value_or(""),
                       "\": berth reads only apiVersion ", kApiVersion, ", kind ", kKind));
    }
    ReadServer(top);
    ReadCertificates(top);
    ReadAuth(top);
    ReadNode(top);
    ReadPods(top);
    ReadLogging(top);
    ReadEviction(top);
    ReadIgnored(top);
    if (!error_.ok()) return error_;

    KubeletConfig out;
    out.settings = std::move(settings_);
    if (!ignored_.empty()) {
      out.warnings.push_back(absl::StrCat("fields not implemented by berth, ignored: ",
                                          absl::StrJoin(ignored_, ", ")));
    }
    if (!unknown_.empty()) {
      out.warnings.push_back(absl::StrCat("unknown fields (not in ", kKind, " ", kApiVersion,
                                          "), ignored: ", absl::StrJoin(unknown_, ", ")));
    }
    if (!duplicates_.empty()) {
      out.warnings.push_back(absl::StrCat("fields given more than once (the last one counts): ",
                                          absl::StrJoin(duplicates_, ", ")));
    }
    return out;
  }

 private:
  using Object = std::map<std::string, YAML::Node>;

  // The fields of the object `n` at `path` ("" = the document): the last of duplicated keys
  // counts. With `known` non-empty, other keys are unknown fields; with it empty, the caller
  // judges every key. Null is an empty object.
  Object Fields(const YAML::Node& n, const std::string& path,
                std::initializer_list<const char*> known) {
    Object out;
    if (Absent(n)) return out;
    if (!n.IsMap()) {
      Fail(path, absl::StrCat("want an object, got ", Quoted(n)));
      return out;
    }
    for (const auto& kv : n) {
      std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      std::string full = path.empty() ? key : absl::StrCat(path, ".", key);
      // (erase + emplace: assigning to a YAML::Node would rebind the node it refers to)
      if (out.erase(key) != 0) duplicates_.push_back(full);
      out.emplace(key, kv.second);
      if (known.size() != 0 && std::find_if(known.begin(), known.end(), [&](const char* k) {
                                 return key == k;
                               }) == known.end()) {
        unknown_.push_back(full);
      }
    }
    return out;
  }

  void Fail(const std::string& field, const std::string& why) {
    if (error_.ok()) error_ = absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
  }

  // Typed readers: nullopt for null/absent (and after a type error, recorded in error_).
  std::optional<std::string> String(const YAML::Node& n, const std::string& field) {
    if (Absent(n)) return std::nullopt;
    if (!n.IsScalar()) {
      Fail(field, absl::StrCat("want a string, got ", Quoted(n)));
      return std::nullopt;
    }
    return n.Scalar();
  }
  std::optional<int64_t> Int(const YAML::Node& n, const std::string& field) {
    if (Absent(n)) return std::nullopt;
    int64_t v = 0;
    if (!IsPlain(n) || !absl::SimpleAtoi(n.Scalar(), &v)) {
      Fail(field, absl::StrCat("want an integer, got ", Quoted(n)));
      return std::nullopt;
    }
    return v;
  }
  std::optional<bool> Bool(const YAML::Node& n, const std::string& field) {
    if (Absent(n)) return std::nullopt;
    std::optional<bool> b = IsPlain(n) ? PlainBool(n.Scalar()) : std::nullopt;
    if (!b) Fail(field, absl::StrCat("want true or false, got ", Quoted(n)));
    return b;
  }
  std::optional<std::vector<std::string>> Strings(const YAML::Node& n, const std::string& field) {
    if (Absent(n)) return std::nullopt;
    std::vector<std::string> out;
    if (!n.IsSequence()) {
      Fail(field, absl::StrCat("want a list of strings, got ", Quoted(n)));
      return std::nullopt;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      std::string item = absl::StrCat(field, "[", i, "]");
      if (Absent(n[i])) Fail(item, "want a string, got null");
      std::optional<std::string> s = String(n[i], item);
      if (!s) return std::nullopt;
      out.push_back(*s);
    }
    return out;
  }
  // metav1.Duration: zero is unset (nullopt), as the v1beta1 defaulting treats it.
  std::optional<std::string> Duration(const YAML::Node& n, const std::string& field) {
    std::optional<std::string> s = String(n, field);
    if (!s || s->empty()) return std::nullopt;
    absl::StatusOr<absl::Duration> d = ParseGoDuration(*s);
    if (!d.ok()) {
      Fail(field, absl::StrCat("\"", *s, "\" is not a duration (Go format, e.g. 2m0s)"));
      return std::nullopt;
    }
    if (*d == absl::ZeroDuration()) return std::nullopt;
    return *s;
  }
  // A path field: relative paths resolve against the file's directory (upstream
  // resolveRelativePaths); "" stays "".
  std::string Path(const std::string& p) const {
    if (p.empty() || p.front() == '/') return p;
    return std::filesystem::path(JoinPath(base_dir_, p)).lexically_normal().string();
  }

  void Set(std::string field, std::string flag, std::vector<std::string> values) {
    // A later setting of the same flag replaces an earlier one (enableServer after port).
    std::erase_if(settings_, [&](const KubeletConfigSetting& s) { return s.flag == flag; });
    settings_.push_back({std::move(field), std::move(flag), std::move(values)});
  }
  void SetString(const Object& o, const char* field, const char* flag, bool path = false) {
    std::optional<std::string> v = String(Get(o, field), field);
    if (v && !v->empty()) Set(field, flag, {path ? Path(*v) : *v});
  }
  void Ignore(std::string shown) { ignored_.push_back(std::move(shown)); }

  static YAML::Node Get(const Object& o, const std::string& key) {
    auto it = o.find(key);
    return it == o.end() ? YAML::Node() : it->second;
  }

  // A port: non-pointer `port` treats 0 as unset; `healthzPort` is a pointer and 0 disables.
  void ReadPort(const Object& o, const char* field, const char* flag, bool zero_is_unset) {
    std::optional<int64_t> p = Int(Get(o, field), field);
    if (!p || (zero_is_unset && *p == 0)) return;
    if (*p < (zero_is_unset ? 1 : 0) || *p > 65535) {
      Fail(field,
           absl::StrCat(*p, " must be between ", zero_is_unset ? 1 : 0, " and 65535, inclusive"));
      return;
    }
    Set(field, flag, {std::to_string(*p)});
  }

  // The kubelet server on :10250 and the healthz server.
  void ReadServer(const Object& top) {
    SetString(top, "address", "--address");
    ReadPort(top, "port", "--port", /*zero_is_unset=*/true);
    // enableServer: false is berth's --port 0 (no server).
    if (std::optional<bool> on = Bool(Get(top, "enableServer"), "enableServer"); on == false) {
      Set("enableServer", "--port", {"0"});
    }
    if (std::optional<int64_t> ro = Int(Get(top, "readOnlyPort"), "readOnlyPort"); ro && *ro != 0) {
      Ignore(absl::StrCat("readOnlyPort (", *ro, "; berth serves no read-only port)"));
    }
    SetString(top, "tlsCertFile", "--tls-cert-file", /*path=*/true);
    SetString(top, "tlsPrivateKeyFile", "--tls-private-key-file", /*path=*/true);
    ReadPort(top, "healthzPort", "--healthz-port", /*zero_is_unset=*/false);
    SetString(top, "healthzBindAddress", "--healthz-bind-address");
  }

  // TLS bootstrap and rotation (kubelet/certificate/): non-pointer booleans, false = unset.
  void ReadCertificates(const Object& top) {
    if (Bool(Get(top, "rotateCertificates"), "rotateCertificates") == true) {
      Set("rotateCertificates", "--rotate-certificates", {"true"});
    }
    if (Bool(Get(top, "serverTLSBootstrap"), "serverTLSBootstrap") == true) {
      Set("serverTLSBootstrap", "--rotate-server-certificates", {"true"});
    }
  }

  void ReadAuth(const Object& top) {
    Object authn =
        Fields(Get(top, "authentication"), "authentication", {"x509", "webhook", "anonymous"});
    Object x509 = Fields(Get(authn, "x509"), "authentication.x509", {"clientCAFile"});
    if (std::optional<std::string> ca =
            String(Get(x509, "clientCAFile"), "authentication.x509.clientCAFile");
        ca && !ca->empty()) {
      Set("authentication.x509.clientCAFile", "--client-ca-file", {Path(*ca)});
    }
    Object webhook =
        Fields(Get(authn, "webhook"), "authentication.webhook", {"enabled", "cacheTTL"});
    if (std::optional<bool> on = Bool(Get(webhook, "enabled"), "authentication.webhook.enabled")) {
      Set("authentication.webhook.enabled", "--authentication-token-webhook",
          {*on ? "true" : "false"});
    }
    if (std::optional<std::string> ttl =
            Duration(Get(webhook, "cacheTTL"), "authentication.webhook.cacheTTL")) {
      Set("authentication.webhook.cacheTTL", "--authentication-token-webhook-cache-ttl", {*ttl});
    }
    Object anonymous = Fields(Get(authn, "anonymous"), "authentication.anonymous", {"enabled"});
    if (std::optional<bool> on =
            Bool(Get(anonymous, "enabled"), "authentication.anonymous.enabled")) {
      Set("authentication.anonymous.enabled", "--anonymous-auth", {*on ? "true" : "false"});
    }

    Object authz = Fields(Get(top, "authorization"), "authorization", {"mode", "webhook"});
    if (std::optional<std::string> mode = String(Get(authz, "mode"), "authorization.mode");
        mode && !mode->empty()) {
      Set("authorization.mode", "--authorization-mode", {*mode});
    }
    Object authz_webhook = Fields(Get(authz, "webhook"), "authorization.webhook",
                                  {"cacheAuthorizedTTL", "cacheUnauthorizedTTL"});
    if (std::optional<std::string> ttl = Duration(Get(authz_webhook, "cacheAuthorizedTTL"),
                                                  "authorization.webhook.cacheAuthorizedTTL")) {
      Set("authorization.webhook.cacheAuthorizedTTL",
          "--authorization-webhook-cache-authorized-ttl", {*ttl});
    }
    if (std::optional<std::string> ttl = Duration(Get(authz_webhook, "cacheUnauthorizedTTL"),
                                                  "authorization.webhook.cacheUnauthorizedTTL")) {
      Set("authorization.webhook.cacheUnauthorizedTTL",
          "--authorization-webhook-cache-unauthorized-ttl", {*ttl});
    }
  }

  // The Node object, the runtime and the cgroups.
  void ReadNode(const Object& top) {
    if (std::optional<int64_t> n = Int(Get(top, "maxPods"), "maxPods"); n && *n != 0) {
      if (*n < 0) {
        Fail("maxPods", absl::StrCat(*n, " must not be a negative number"));
      } else {
        Set("maxPods", "--max-pods", {std::to_string(*n)});
      }
    }
    ReadTaints(Get(top, "registerWithTaints"));
    if (std::optional<std::string> cidr = String(Get(top, "podCIDR"), "podCIDR");
        cidr && !cidr->empty()) {
      Ignore(
          absl::StrCat("podCIDR (", *cidr, "; berth takes the pod CIDR from Node.spec.podCIDR)"));
    }
    // cgroupRoot "/" is the host's root: berth's --cgroup-root is a prefix, "" for it.
    if (std::optional<std::string> root = String(Get(top, "cgroupRoot"), "cgroupRoot")) {
      std::string prefix = *root;
      while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
      if (!prefix.empty() && prefix.front() != '/') prefix.insert(prefix.begin(), '/');
      if (!prefix.empty()) Set("cgroupRoot", "--cgroup-root", {prefix});
    }
    if (std::optional<std::string> driver = String(Get(top, "cgroupDriver"), "cgroupDriver");
        driver && !driver->empty() && *driver != "cgroupfs") {
      Ignore(absl::StrCat("cgroupDriver (", *driver, "; berth uses cgroupfs)"));
    }
    for (const char* field : {"containerRuntimeEndpoint", "imageServiceEndpoint"}) {
      std::optional<std::string> ep = String(Get(top, field), field);
      if (!ep || ep->empty() || SocketPath(*ep) == SocketPath(ctx_.cri_socket)) continue;
      Ignore(absl::StrCat(field, " (", *ep, "; berth's kubelet uses its own runtime, served on ",
                          ctx_.cri_socket, ")"));
    }
  }

  // registerWithTaints: [{key, value, effect}] -> "key=value:Effect,..." (timeAdded ignored,
  // as the kubelet sets it when it applies the taint).
  void ReadTaints(const YAML::Node& n) {
    if (Absent(n)) return;
    if (!n.IsSequence()) {
      Fail("registerWithTaints", absl::StrCat("want a list of taints, got ", Quoted(n)));
      return;
    }
    std::vector<std::string> taints;
    for (size_t i = 0; i < n.size(); ++i) {
      std::string field = absl::StrCat("registerWithTaints[", i, "]");
      Object t = Fields(n[i], field, {"key", "value", "effect", "timeAdded"});
      std::string key = String(Get(t, "key"), field + ".key").value_or("");
      std::string value = String(Get(t, "value"), field + ".value").value_or("");
      std::string effect = String(Get(t, "effect"), field + ".effect").value_or("");
      if (!error_.ok()) return;
      if (key.empty()) return Fail(field, "a taint needs a key");
      if (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
        return Fail(field + ".effect", absl::StrCat("\"", effect,
                                                    "\": want NoSchedule, PreferNoSchedule or "
                                                    "NoExecute"));
      }
      for (const std::string& part : {key, value}) {
        if (part.find_first_of(",:=") != std::string::npos) {
          return Fail(field, absl::StrCat("\"", part, "\" contains ',', ':' or '='"));
        }
      }
      taints.push_back(absl::StrCat(key, value.empty() ? "" : "=", value, ":", effect));
    }
    if (!taints.empty()) {
      Set("registerWithTaints", "--register-with-taints", {absl::StrJoin(taints, ",")});
    }
  }

  // What the pod workers see: DNS, sysctls, seccomp, logs.
  void ReadPods(const Object& top) {
    SetString(top, "clusterDomain", "--cluster-domain");
    if (auto dns = Strings(Get(top, "clusterDNS"), "clusterDNS"); dns && !dns->empty()) {
      Set("clusterDNS", "--cluster-dns", *dns);
    }
    // resolvConf is a pointer: "" is kept (pods get no host DNS configuration, as upstream).
    if (std::optional<std::string> rc = String(Get(top, "resolvConf"), "resolvConf")) {
      Set("resolvConf", "--resolv-conf", {Path(*rc)});
    }
    if (auto s = Strings(Get(top, "allowedUnsafeSysctls"), "allowedUnsafeSysctls");
        s && !s->empty()) {
      Set("allowedUnsafeSysctls", "--allowed-unsafe-sysctls", *s);
    }
    if (std::optional<bool> on = Bool(Get(top, "seccompDefault"), "seccompDefault")) {
      Set("seccompDefault", "--seccomp-default", {*on ? "true" : "false"});
    }
    SetString(top, "containerLogMaxSize", "--container-log-max-size");
    if (std::optional<int64_t> n = Int(Get(top, "containerLogMaxFiles"), "containerLogMaxFiles")) {
      Set("containerLogMaxFiles", "--container-log-max-files", {std::to_string(*n)});
    }
    SetString(top, "podLogsDir", "--log-root", /*path=*/true);
    // Static pods (upstream's flag name is the deprecated --pod-manifest-path).
    SetString(top, "staticPodPath", "--pod-manifest-path", /*path=*/true);
    if (std::optional<std::string> d =
            Duration(Get(top, "fileCheckFrequency"), "fileCheckFrequency")) {
      Set("fileCheckFrequency", "--file-check-frequency", {*d});
    }
  }

  // A map[string]string field; nullopt when absent.
  std::optional<std::map<std::string, std::string>> StringMap(const YAML::Node& n,
                                                              const std::string& field) {
    if (Absent(n)) return std::nullopt;
    if (!n.IsMap()) {
      Fail(field, absl::StrCat("want an object of strings, got ", Quoted(n)));
      return std::nullopt;
    }
    std::map<std::string, std::string> out;
    for (const auto& kv : n) {
      std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      std::optional<std::string> v = String(kv.second, absl::StrCat(field, ".", key));
      if (!v) return std::nullopt;
      out[key] = *v;
    }
    return out;
  }

  // Node-pressure eviction and image GC. evictionHard absent keeps the flag's default (upstream
  // DefaultEvictionHard); given, it replaces it, with the defaults merged in for the signals it
  // leaves out when mergeDefaultEvictionSettings is true (upstream loadConfigFile).
  void ReadEviction(const Object& top) {
    auto joined = [](const std::map<std::string, std::string>& m, const char* sep) {
      std::vector<std::string> parts;
      for (const auto& [k, v] : m) parts.push_back(absl::StrCat(k, sep, v));
      return absl::StrJoin(parts, ",");
    };
    if (auto hard = StringMap(Get(top, "evictionHard"), "evictionHard")) {
      if (Bool(Get(top, "mergeDefaultEvictionSettings"), "mergeDefaultEvictionSettings") == true) {
        for (const auto& [k, v] :
             std::map<std::string, std::string>{{"memory.available", "100Mi"},
                                                {"nodefs.available", "10%"},
                                                {"nodefs.inodesFree", "5%"},
                                                {"imagefs.available", "15%"},
                                                {"imagefs.inodesFree", "5%"}}) {
          hard->emplace(k, v);
        }
      }
      Set("evictionHard", "--eviction-hard", {joined(*hard, "<")});
    }
    for (auto [field, flag, sep] :
         {std::tuple{"evictionSoft", "--eviction-soft", "<"},
          std::tuple{"evictionSoftGracePeriod", "--eviction-soft-grace-period", "="},
          std::tuple{"evictionMinimumReclaim", "--eviction-minimum-reclaim", "="}}) {
      if (auto m = StringMap(Get(top, field), field); m && !m->empty()) {
        Set(field, flag, {joined(*m, sep)});
      }
    }
    if (auto d = Duration(Get(top, "evictionPressureTransitionPeriod"),
                          "evictionPressureTransitionPeriod")) {
      Set("evictionPressureTransitionPeriod", "--eviction-pressure-transition-period", {*d});
    }
    if (auto n = Int(Get(top, "evictionMaxPodGracePeriod"), "evictionMaxPodGracePeriod");
        n && *n != 0) {
      Set("evictionMaxPodGracePeriod", "--eviction-max-pod-grace-period", {std::to_string(*n)});
    }
    if (auto d = Duration(Get(top, "imageMinimumGCAge"), "imageMinimumGCAge")) {
      Set("imageMinimumGCAge", "--minimum-image-ttl-duration", {*d});
    }
    for (auto [field, flag] :
         {std::pair{"imageGCHighThresholdPercent", "--image-gc-high-threshold"},
          std::pair{"imageGCLowThresholdPercent", "--image-gc-low-threshold"}}) {
      if (auto n = Int(Get(top, field), field)) {
        if (*n < 0 || *n > 100) {
          Fail(field, absl::StrCat(*n, " must be between 0 and 100, inclusive"));
          continue;
        }
        Set(field, flag, {std::to_string(*n)});
      }
    }
  }

  // logging (component-base LoggingConfiguration): verbosity is berth's --v; the text format
  // is berth's; the rest is ignored.
  void ReadLogging(const Object& top) {
    Object logging = Fields(Get(top, "logging"), "logging",
                            {"format", "flushFrequency", "verbosity", "vmodule", "options"});
    if (std::optional<int64_t> v = Int(Get(logging, "verbosity"), "logging.verbosity");
        v && *v != 0) {
      Set("logging.verbosity", "--v", {std::to_string(*v)});
    }
    if (std::optional<std::string> format = String(Get(logging, "format"), "logging.format");
        format && !format->empty() && *format != "text") {
      Ignore(absl::StrCat("logging.format (", *format, "; berth logs text)"));
    }
    for (const char* sub : {"flushFrequency", "vmodule", "options"}) {
      YAML::Node n = Get(logging, sub);
      if (!IsZero(n)) Ignore(Shown(absl::StrCat("logging.", sub), n));
    }
  }

  void ReadIgnored(const Object& top) {
    for (const auto& [name, value] : top) {
      if (IsMapped(name)) continue;
      const IgnoredField* f = FindIgnored(name);
      if (f == nullptr) {
        unknown_.push_back(name);
        continue;
      }
      bool set = f->presence == Presence::kPointer ? !Absent(value) : !IsZero(value);
      if (!set) continue;
      if (f->berth_value != nullptr && value.IsScalar()) {
        // Compare as Go would decode: booleans in any YAML spelling.
        std::optional<bool> have = IsPlain(value) ? PlainBool(value.Scalar()) : std::nullopt;
        std::optional<bool> want = PlainBool(f->berth_value);
        if (value.Scalar() == f->berth_value || (have && want && *have == *want)) continue;
      }
      Ignore(Shown(name, value));
    }
  }

  const std::string base_dir_;
  const KubeletConfigContext& ctx_;
  absl::Status error_;
  std::vector<KubeletConfigSetting> settings_;
  std::vector<std::string> ignored_, unknown_, duplicates_;
};

}  // namespace

absl::StatusOr<absl::Duration> ParseGoDuration(absl::string_view text) {
  // abseil's grammar is Go's, plus "inf"; Go also spells microseconds µs (U+00B5, U+03BC).
  std::string s = absl::StrReplaceAll(text, {{"\xc2\xb5s", "us"}, {"\xce\xbcs", "us"}});
  absl::Duration d;
  if (absl::StrContains(s, "inf") || !absl::ParseDuration(s, &d)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a duration"));
  }
  return d;
}

absl::StatusOr<KubeletConfig> ParseKubeletConfig(const std::string& text,
                                                 const std::string& base_dir,
                                                 const KubeletConfigContext& ctx) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("the file is empty");
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed YAML at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  }
  try {
    return Parser(base_dir, ctx).Read(root);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on nodes it cannot convert; the typed readers check first, so this is
    // a document shape they missed.
    return absl::InvalidArgumentError(absl::StrCat("unreadable KubeletConfiguration: ", e.what()));
  }
}

absl::StatusOr<KubeletConfig> LoadKubeletConfig(const std::string& path,
                                                const KubeletConfigContext& ctx) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) abs = path;
  const std::string prefix = absl::StrCat("kubelet config file ", path);
  absl::StatusOr<std::string> text = ReadFile(abs.string());
  if (!text.ok()) return Annotate(text.status(), prefix);
  absl::StatusOr<KubeletConfig> config = ParseKubeletConfig(*text, abs.parent_path().string(), ctx);
  if (!config.ok()) return Annotate(config.status(), prefix);
  for (std::string& w : config->warnings) w = absl::StrCat(prefix, ": ", w);
  return config;
}

absl::Status ApplyKubeletConfig(const KubeletConfig& config, CLI::App* app) {
  for (const KubeletConfigSetting& s : config.settings) {
    CLI::Option* opt = app->get_option_no_throw(s.flag);
    if (opt == nullptr) {
      return absl::InternalError(absl::StrCat("field ", s.field, ": berth has no flag ", s.flag));
    }
    if (opt->count() > 0) continue;  // given on the command line: it wins
    try {
      opt->add_result(s.values);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field ", s.field, " (", s.flag, " ", absl::StrJoin(s.values, ","), "): ", e.what()));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::kubelet
