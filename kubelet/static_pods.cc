#include "kubelet/static_pods.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "kubelet/api/pod.h"

namespace berth::kubelet {
namespace {

// ---------------------------------------------------------------------------------------
// YAML -> JSON

std::optional<bool> Yaml11Bool(const std::string& s) {
  for (const char* t : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"}) {
    if (s == t) return true;
  }
  for (const char* t :
       {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"}) {
    if (s == t) return false;
  }
  return std::nullopt;
}

bool IsDecimalInt(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool IsFloat(const std::string& s) {
  bool digit = false, dot = false, exp = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else if ((c == '-' || c == '+') && (i == 0 || s[i - 1] == 'e' || s[i - 1] == 'E')) {
    } else if (c == '.' && !dot && !exp) {
      dot = true;
    } else if ((c == 'e' || c == 'E') && digit && !exp) {
      exp = true;
    } else {
      return false;
    }
  }
  return digit && (dot || exp);
}

Json ScalarToJson(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return s;  // quoted
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (std::optional<bool> b = Yaml11Bool(s)) return *b;
  if (IsDecimalInt(s)) {
    int64_t i;
    if (absl::SimpleAtoi(s, &i)) return i;
  }
  if (IsFloat(s)) {
    double d;
    if (absl::SimpleAtod(s, &d)) return d;
  }
  return s;
}

absl::StatusOr<Json> NodeToJson(const YAML::Node& n, int depth) {
  if (depth > 100) return absl::InvalidArgumentError("nested more than 100 levels");
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return Json(nullptr);
    case YAML::NodeType::Scalar:
      return ScalarToJson(n);
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : n) {
        absl::StatusOr<Json> v = NodeToJson(item, depth + 1);
        if (!v.ok()) return v.status();
        out.push_back(*std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", kv.first.Mark().line + 1, ": a mapping key must be a scalar"));
        }
        absl::StatusOr<Json> v = NodeToJson(kv.second, depth + 1);
        if (!v.ok()) return v.status();
        out[kv.first.Scalar()] = *std::move(v);
      }
      return out;
    }
  }
  return Json(nullptr);
}

// ---------------------------------------------------------------------------------------
// Defaulting and checks

// 128-bit FNV-1a (hash/fnv New128a), hex of the big-endian sum as Go's Sum(nil).
std::string Fnv128aHex(const std::vector<std::string_view>& parts) {
  using u128 = unsigned __int128;
  u128 h = (static_cast<u128>(0x6c62272e07bb0142ULL) << 64) | 0x62b821756295c58dULL;
  const u128 prime = (static_cast<u128>(0x0000000001000000ULL) << 64) | 0x000000000000013BULL;
  for (std::string_view p : parts) {
    for (unsigned char c : p) {
      h ^= c;
      h *= prime;
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 31; i >= 0; --i) {
    out[i] = kHex[static_cast<unsigned>(h & 0xf)];
    h >>= 4;
  }
  return out;
}

// RFC 1123 subdomain (object names) / label (namespaces), as apimachinery validation.
bool IsDnsSubdomain(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alnum = absl::ascii_islower(static_cast<unsigned char>(c)) ||
                 absl::ascii_isdigit(static_cast<unsigned char>(c));
    if (alnum) continue;
    if ((c == '-' || c == '.') && i > 0 && i + 1 < s.size()) continue;
    return false;
  }
  return true;
}

const Json* Field(const Json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  return it == o.end() || it->is_null() ? nullptr : &*it;
}

// Upstream HasAPIObjectReference (PreventStaticPodAPIReferences, on by default): a static
// pod may not use API objects the node authorizer would not let the node read for it.
// Returns the kind of object referenced, or "".
std::string ApiObjectReference(const Json& pod) {
  const Json* spec = Field(pod, "spec");
  if (spec == nullptr) return "";
  if (const Json* sa = Field(*spec, "serviceAccountName"); sa && sa->is_string() && !sa->empty())
    return "serviceaccounts";
  if (const Json* ips = Field(*spec, "imagePullSecrets"); ips && ips->is_array() && !ips->empty())
    return "secrets";
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    const Json* cs = Field(*spec, list);
    if (cs == nullptr || !cs->is_array()) continue;
    for (const Json& c : *cs) {
      if (const Json* env = Field(c, "env"); env && env->is_array()) {
        for (const Json& e : *env) {
          const Json* from = Field(e, "valueFrom");
          if (from && Field(*from, "secretKeyRef")) return "secrets";
          if (from && Field(*from, "configMapKeyRef")) return "configmaps";
        }
      }
      if (const Json* env_from = Field(c, "envFrom"); env_from && env_from->is_array()) {
        for (const Json& e : *env_from) {
          if (Field(e, "secretRef")) return "secrets";
          if (Field(e, "configMapRef")) return "configmaps";
        }
      }
    }
  }
  if (const Json* rc = Field(*spec, "resourceClaims"); rc && rc->is_array() && !rc->empty())
    return "resourceclaims";
  if (const Json* vols = Field(*spec, "volumes"); vols && vols->is_array()) {
    for (const Json& v : *vols) {
      if (Field(v, "configMap")) return "configmaps (via configmap volumes)";
      if (Field(v, "secret")) return "secrets (via secret volumes)";
      if (Field(v, "csi")) return "csidrivers (via CSI volumes)";
      if (Field(v, "glusterfs")) return "endpoints (via glusterFS volumes)";
      if (Field(v, "persistentVolumeClaim")) return "persistentvolumeclaims";
      if (Field(v, "ephemeral")) return "persistentvolumeclaims (via ephemeral volumes)";
      const Json* projected = Field(v, "projected");
      const Json* sources = projected ? Field(*projected, "sources") : nullptr;
      if (sources == nullptr || !sources->is_array()) continue;
      for (const Json& s : *sources) {
        if (Field(s, "secret")) return "secrets (via projected volumes)";
        if (Field(s, "configMap")) return "configmaps (via projected volumes)";
        if (Field(s, "serviceAccountToken")) return "serviceaccounts (via projected volumes)";
        if (Field(s, "clusterTrustBundle")) return "clustertrustbundles";
        if (Field(s, "podCertificate")) return "podcertificates";
      }
    }
  }
  return "";
}

std::string Key(const Json& pod) {
  const Json& md = pod.value("metadata", Json::object());
  return absl::StrCat(md.value("namespace", ""), "/", md.value("name", ""));
}

std::string Uid(const Json& pod) { return pod.value("metadata", Json::object()).value("uid", ""); }

std::string Annotation(const Json& pod, const char* key) {
  const Json* md = Field(pod, "metadata");
  const Json* ann = md ? Field(*md, "annotations") : nullptr;
  const Json* v = ann ? Field(*ann, key) : nullptr;
  return v && v->is_string() ? v->get<std::string>() : "";
}

std::string FormatRfc3339Nano(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<Json> ManifestToJson(std::string_view text) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not YAML or JSON: line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  }
  std::erase_if(docs, [](const YAML::Node& d) { return d.IsNull(); });
  if (docs.empty()) return absl::InvalidArgumentError("empty manifest");
  if (docs.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(docs.size(), " YAML documents: a manifest file holds one pod"));
  }
  return NodeToJson(docs[0], 0);
}

absl::StatusOr<Json> ParseStaticPodManifest(std::string_view text, const std::string& source,
                                            const std::string& node_name) {
  if (text.size() > kMaxManifestBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("larger than ", kMaxManifestBytes, " bytes (upstream maxConfigLength)"));
  }
  absl::StatusOr<Json> parsed = ManifestToJson(text);
  if (!parsed.ok()) return parsed.status();
  Json pod = *std::move(parsed);
  if (!pod.is_object()) return absl::InvalidArgumentError("not an object: want a v1 Pod");
  std::string kind = pod.value("kind", Json("")).is_string() ? pod.value("kind", "") : "";
  std::string version =
      pod.value("apiVersion", Json("")).is_string() ? pod.value("apiVersion", "") : "";
  if (kind != "Pod") {
    return absl::InvalidArgumentError(
        absl::StrCat("kind is \"", kind, "\", want Pod (one pod per file; a PodList is not read)"));
  }
  if (version != "v1") {
    return absl::InvalidArgumentError(absl::StrCat("apiVersion is \"", version, "\", want v1"));
  }
  if (pod.contains("metadata") && !pod["metadata"].is_object()) {
    return absl::InvalidArgumentError("metadata: want an object");
  }
  Json& md = pod["metadata"];
  if (md.is_null()) md = Json::object();
  if (!md.value("name", Json("")).is_string() || md.value("name", "").empty()) {
    return absl::InvalidArgumentError("metadata.name is required");
  }
  if (!pod.contains("spec") || !pod["spec"].is_object()) {
    return absl::InvalidArgumentError("spec: want an object");
  }
  const Json* containers = Field(pod["spec"], "containers");
  if (containers == nullptr || !containers->is_array() || containers->empty()) {
    return absl::InvalidArgumentError("spec.containers: at least one container is required");
  }
  for (size_t i = 0; i < containers->size(); ++i) {
    const Json& c = (*containers)[i];
    for (const char* f : {"name", "image"}) {
      const Json* v = Field(c, f);
      if (v == nullptr || !v->is_string() || v->get<std::string>().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("spec.containers[", i, "].", f, " is required"));
      }
    }
  }
  if (std::string ref = ApiObjectReference(pod); !ref.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("static pods may not reference ", ref));
  }

  // applyDefaults (pkg/kubelet/config/common.go). The UID hashes the manifest as written.
  if (!md.value("uid", Json("")).is_string() || md.value("uid", "").empty()) {
    std::string canonical = pod.dump();
    std::string host = absl::StrCat("host:", node_name);
    std::string file = absl::StrCat("file:", source);
    md["uid"] = Fnv128aHex({canonical, host, file});
  }
  const std::string uid = md["uid"].get<std::string>();
  md["name"] = absl::StrCat(md["name"].get<std::string>(), "-", absl::AsciiStrToLower(node_name));
  if (!md.value("namespace", Json("")).is_string() || md.value("namespace", "").empty()) {
    md["namespace"] = "default";
  }
  if (!IsDnsSubdomain(md["name"].get<std::string>(), 253)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metadata.name \"", md["name"].get<std::string>(),
        "\": not a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.'; at most 253 characters)"));
  }
  const std::string ns = md["namespace"].get<std::string>();
  if (!IsDnsSubdomain(ns, 63) || absl::StrContains(ns, '.')) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.namespace \"", ns, "\": not a lowercase RFC 1123 label"));
  }
  pod["spec"]["nodeName"] = node_name;
  if (!md.contains("annotations") || !md["annotations"].is_object()) {
    md["annotations"] = Json::object();
  }
  md["annotations"][kConfigHashAnnotation] = uid;
  md["annotations"][kConfigSourceAnnotation] = "file";
  // AddOrUpdateTolerationInPod: added unless an equal toleration is there.
  Json toleration = {{"operator", "Exists"}, {"effect", "NoExecute"}};
  Json& tolerations = pod["spec"]["tolerations"];
  if (tolerations.is_null()) tolerations = Json::array();
  if (!tolerations.is_array()) return absl::InvalidArgumentError("spec.tolerations: want a list");
  if (std::find(tolerations.begin(), tolerations.end(), toleration) == tolerations.end()) {
    tolerations.push_back(toleration);
  }
  pod["status"] = {{"phase", "Pending"}};

  absl::StatusOr<api::Pod> typed = api::ParsePod(pod);
  if (!typed.ok()) return typed.status();
  return pod;
}

bool IsMirrorPod(const Json& pod) {
  const Json* md = Field(pod, "metadata");
  const Json* ann = md ? Field(*md, "annotations") : nullptr;
  return ann != nullptr && ann->is_object() && ann->contains(kConfigMirrorAnnotation);
}

MirrorAction DecideMirror(const Json* static_pod, const Json* mirror) {
  if (static_pod == nullptr) return mirror != nullptr ? MirrorAction::kDelete : MirrorAction::kNone;
  if (mirror == nullptr) return MirrorAction::kCreate;
  const Json* md = Field(*mirror, "metadata");
  bool deleting = md != nullptr && Field(*md, "deletionTimestamp") != nullptr;
  // IsMirrorPodOf: same namespace/name (the caller pairs them so), and the mirror's
  // config.mirror annotation is the static pod's config.hash.
  bool matches = IsMirrorPod(*mirror) && Key(*mirror) == Key(*static_pod) &&
                 Annotation(*mirror, kConfigMirrorAnnotation) ==
                     Annotation(*static_pod, kConfigHashAnnotation);
  if (deleting || !matches) return MirrorAction::kDeleteAndCreate;
  return MirrorAction::kNone;
}

Json MakeMirrorPod(const Json& static_pod, const std::string& node_name,
                   const std::string& node_uid) {
  Json mirror = static_pod;
  Json& md = mirror["metadata"];
  md.erase("uid");
  md.erase("resourceVersion");
  md.erase("creationTimestamp");
  md["annotations"][kConfigMirrorAnnotation] = Annotation(static_pod, kConfigHashAnnotation);
  md["ownerReferences"] = Json::array({{{"apiVersion", "v1"},
                                        {"kind", "Node"},
                                        {"name", node_name},
                                        {"uid", node_uid},
                                        {"controller", true}}});
  mirror.erase("status");
  return mirror;
}

// ---------------------------------------------------------------------------------------
// FilePodSource

FilePodSource::FilePodSource(FilePodSourceOptions options, Handler handler)
    : opts_(std::move(options)), handler_(std::move(handler)) {}

FilePodSource::~FilePodSource() { Stop(); }

void FilePodSource::Start() {
  Sync();
  if (thread_.joinable()) return;
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    LOG(ERROR) << "static pods: eventfd: " << strerror(errno) << "; not watching " << opts_.path;
    return;
  }
  thread_ = std::thread([this] { Run(); });
}

void FilePodSource::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t unused = write(stop_fd_, &one, sizeof(one));
  (void)unused;
  thread_.join();
  close(stop_fd_);
  stop_fd_ = -1;
}

void FilePodSource::Run() {
  int ifd = -1;
  // 0 (or less) is the default, as a zero fileCheckFrequency in the kubelet's config.
  const absl::Duration period = opts_.file_check_frequency > absl::ZeroDuration()
                                    ? opts_.file_check_frequency
                                    : absl::Seconds(20);
  absl::Time next_sync = absl::Now() + period;
  while (true) {
    if (ifd < 0) {
      // (Re)establish the watch; retried every second while the path is missing.
      ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (ifd >= 0 &&
          inotify_add_watch(ifd, opts_.path.c_str(),
                            IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB |
                                IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
        close(ifd);
        ifd = -1;
      } else if (ifd >= 0) {
        Sync();  // what changed before the watch existed
      }
    }
    absl::Duration wait = next_sync - absl::Now();
    if (ifd < 0) wait = std::min(wait, absl::Seconds(1));
    int timeout_ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(wait)));
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {ifd, POLLIN, 0}};
    int n = poll(fds, ifd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR) {
      LOG(ERROR) << "static pods: poll: " << strerror(errno);
      break;
    }
    if (fds[0].revents & POLLIN) break;
    bool changed = false;
    if (ifd >= 0 && (fds[1].revents & POLLIN)) {
      alignas(inotify_event) char buf[8192];
      while (true) {
        ssize_t r = read(ifd, buf, sizeof(buf));
        if (r <= 0) break;
        for (char* p = buf; p < buf + r;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          // Names starting with "." (editors' and atomic writers' temporary files) are
          // ignored, as upstream.
          if (ev->len == 0 || ev->name[0] != '.') changed = true;
          if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
            changed = true;
            close(ifd);
            ifd = -1;
            break;
          }
          p += sizeof(inotify_event) + ev->len;
        }
        if (ifd < 0) break;
      }
    }
    if (changed || absl::Now() >= next_sync) {
      Sync();
      if (absl::Now() >= next_sync) next_sync = absl::Now() + period;
    }
  }
  if (ifd >= 0) close(ifd);
}

void FilePodSource::Sync() {
  absl::MutexLock serial(&sync_mu_);
  std::string path = opts_.path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  // The files to read: every regular file directly in the directory whose name does not
  // start with "." (lexical order), or the path itself when it is a file.
  std::vector<std::string> files;
  struct stat st;
  bool readable = true;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      LOG(ERROR) << "static pods: " << path << ": " << strerror(errno);
      readable = false;  // keep what we have
    }
  } else if (S_ISDIR(st.st_mode)) {
    absl::StatusOr<std::vector<std::string>> names = ListDir(path);
    if (!names.ok()) {
      LOG(ERROR) << "static pods: " << names.status();
      readable = false;
    } else {
      std::sort(names->begin(), names->end());
      for (const std::string& name : *names) {
        if (name.empty() || name[0] == '.') continue;
        std::string file = JoinPath(path, name);
        struct stat fst;
        if (stat(file.c_str(), &fst) != 0) continue;  // gone meanwhile
        if (!S_ISREG(fst.st_mode)) {
          LOG(DEBUG) << "static pods: " << file << " is not a regular file, not read";
          continue;
        }
        files.push_back(file);
      }
    }
  } else if (S_ISREG(st.st_mode)) {
    files.push_back(path);
  } else {
    LOG(ERROR) << "static pods: " << path << " is neither a directory nor a file";
  }
  if (!readable) return;

  std::map<std::string, Json> old_pods;
  std::map<std::string, std::string> old_good;
  {
    absl::MutexLock l(&mu_);
    old_pods = pods_;
    old_good = last_good_;
  }
  std::map<std::string, Json> next;              // uid -> pod
  std::map<std::string, std::string> next_good;  // file -> uid
  std::map<std::string, std::string> keys;       // namespace/name -> file
  std::map<std::string, std::string> errors;     // file -> error
  for (const std::string& file : files) {
    absl::StatusOr<Json> pod = absl::InternalError("");
    absl::StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) {
      if (absl::IsNotFound(text.status())) continue;  // removed meanwhile
      pod = text.status();
    } else {
      pod = ParseStaticPodManifest(*text, file, opts_.node_name);
    }
    if (!pod.ok()) {
      errors[file] = std::string(pod.status().message());
      // Keep the pod this file gave before: bad input loses nothing.
      auto good = old_good.find(file);
      if (good == old_good.end()) continue;
      auto old = old_pods.find(good->second);
      if (old == old_pods.end()) continue;
      pod = old->second;
    }
    std::string key = Key(*pod);
    if (auto dup = keys.find(key); dup != keys.end()) {
      errors[file] = absl::StrCat("pod ", key, " is already defined by ", dup->second);
      continue;
    }
    keys[key] = file;
    std::string uid = Uid(*pod);
    next_good[file] = uid;
    next[uid] = *std::move(pod);
  }

  std::vector<Json> added, deleted;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [file, error] : errors) {
      if (reported_[file] == error) continue;
      reported_[file] = error;
      bool kept = next_good.count(file) > 0;
      LOG(ERROR) << "static pods: cannot use manifest " << file << ": " << error
                 << (kept ? " (the pod read from it before keeps running)" : "");
    }
    std::erase_if(reported_, [&](const auto& kv) { return !errors.count(kv.first); });
    for (auto& [uid, pod] : next) {
      if (pods_.count(uid)) {
        pod = pods_[uid];  // unchanged: same content, same seen time
        continue;
      }
      absl::Time seen = opts_.clock();
      seen_.emplace(uid, seen);
      pod["metadata"]["annotations"][kConfigSeenAnnotation] = FormatRfc3339Nano(seen_[uid]);
      added.push_back(pod);
    }
    for (const auto& [uid, pod] : pods_) {
      if (!next.count(uid)) {
        deleted.push_back(pod);
        seen_.erase(uid);
      }
    }
    pods_ = std::move(next);
    last_good_ = std::move(next_good);
  }
  for (const Json& pod : deleted) {
    LOG(INFO) << "static pod " << Key(pod) << " (" << Uid(pod) << ") removed from " << opts_.path;
    handler_("DELETED", pod);
  }
  for (const Json& pod : added) {
    LOG(INFO) << "static pod " << Key(pod) << " (" << Uid(pod) << ") read from " << opts_.path;
    handler_("ADDED", pod);
  }
}

std::map<std::string, Json> FilePodSource::Pods() {
  absl::MutexLock l(&mu_);
  return pods_;
}

// ---------------------------------------------------------------------------------------
// MirrorPodManager

MirrorPodManager::MirrorPodManager(KubeApi* api, MirrorPodManagerOptions options)
    : api_(api), opts_(std::move(options)) {}

MirrorPodManager::~MirrorPodManager() { Stop(); }

void MirrorPodManager::Start() {
  absl::MutexLock l(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void MirrorPodManager::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void MirrorPodManager::Kick() {
  dirty_ = true;
  cv_.Signal();
}

void MirrorPodManager::HandleStaticPodEvent(const std::string& type, const Json& static_pod) {
  std::string key = Key(static_pod);
  std::string uid = Uid(static_pod);
  absl::MutexLock l(&mu_);
  Entry& e = pods_[key];
  if (type == "DELETED") {
    // A newer static pod of the same name may have replaced it already.
    if (e.static_pod && Uid(*e.static_pod) == uid) e.static_pod.reset();
    static_keys_.erase(uid);
  } else {
    if (e.static_pod) static_keys_.erase(Uid(*e.static_pod));
    e.static_pod = static_pod;
    static_keys_[uid] = key;
  }
  Kick();
}

void MirrorPodManager::HandleMirrorPodEvent(const std::string& type, const Json& mirror) {
  std::string key = Key(mirror);
  absl::MutexLock l(&mu_);
  Entry& e = pods_[key];
  if (type == "DELETED") {
    if (e.mirror && Uid(*e.mirror) == Uid(mirror)) e.mirror.reset();
  } else {
    e.mirror = mirror;
  }
  Kick();
}

void MirrorPodManager::HandleMirrorPodsSynced() {
  absl::MutexLock l(&mu_);
  synced_ = true;
  Kick();
}

std::optional<std::string> MirrorPodManager::MirrorUidOf(const std::string& pod_uid) {
  absl::MutexLock l(&mu_);
  auto k = static_keys_.find(pod_uid);
  if (k == static_keys_.end()) return std::nullopt;
  const Entry& e = pods_[k->second];
  if (!e.static_pod || !e.mirror) return std::string();
  if (DecideMirror(&*e.static_pod, &*e.mirror) != MirrorAction::kNone) return std::string();
  return Uid(*e.mirror);
}

bool MirrorPodManager::ReconcileAll() {
  std::vector<std::string> keys;
  {
    absl::MutexLock l(&mu_);
    if (!synced_) return false;
    for (const auto& [key, _] : pods_) keys.push_back(key);
  }
  bool ok = true;
  for (const std::string& key : keys) ok &= Reconcile(key);
  return ok;
}

bool MirrorPodManager::Reconcile(const std::string& key) {
  std::optional<Json> static_pod, mirror;
  {
    absl::MutexLock l(&mu_);
    auto it = pods_.find(key);
    if (it == pods_.end()) return true;
    static_pod = it->second.static_pod;
    mirror = it->second.mirror;
  }
  const Json* sp = static_pod ? &*static_pod : nullptr;
  const Json* mp = mirror ? &*mirror : nullptr;
  MirrorAction action = DecideMirror(sp, mp);
  size_t slash = key.find('/');
  std::string path =
      absl::StrCat("/api/v1/namespaces/", key.substr(0, slash), "/pods/", key.substr(slash + 1));
  bool ok = true;
  if (action == MirrorAction::kDelete || action == MirrorAction::kDeleteAndCreate) {
    // DeleteMirrorPod: no grace period, UID precondition (never another pod of that name).
    const std::string muid = Uid(*mirror);
    LOG(INFO) << "mirror pod " << key << " (" << muid << "): deleting"
              << (action == MirrorAction::kDelete ? ", its static pod is gone"
                                                  : ", it does not match its static pod");
    Json options = {{"kind", "DeleteOptions"},
                    {"apiVersion", "v1"},
                    {"gracePeriodSeconds", 0},
                    {"preconditions", {{"uid", muid}}}};
    absl::Status s = api_->Delete(path, options);
    if (!s.ok() && !absl::IsNotFound(s) && !absl::IsAborted(s) && !absl::IsFailedPrecondition(s)) {
      LOG(WARNING) << "mirror pod " << key << ": " << s.message() << "; retrying";
      return false;
    }
    absl::MutexLock l(&mu_);
    auto it = pods_.find(key);
    if (it != pods_.end() && it->second.mirror && Uid(*it->second.mirror) == muid) {
      it->second.mirror.reset();  // the DELETED event may come later
    }
  }
  if (action == MirrorAction::kCreate || action == MirrorAction::kDeleteAndCreate) {
    std::string node_uid = opts_.node_uid ? opts_.node_uid() : "";
    if (node_uid.empty()) {
      LOG(DEBUG) << "mirror pod " << key << ": the Node is not registered yet";
      return false;
    }
    Json body = MakeMirrorPod(*static_pod, opts_.node_name, node_uid);
    absl::StatusOr<Json> created =
        api_->Post(absl::StrCat("/api/v1/namespaces/", key.substr(0, slash), "/pods"), body);
    if (!created.ok() && !absl::IsAlreadyExists(created.status())) {
      LOG(WARNING) << "mirror pod " << key << ": create: " << created.status().message()
                   << "; retrying";
      return false;
    }
    if (created.ok()) {
      LOG(INFO) << "mirror pod " << key << " created (" << Uid(*created) << ") for static pod "
                << Uid(*static_pod);
      absl::MutexLock l(&mu_);
      auto it = pods_.find(key);
      // Unless the watch has already told of a newer state.
      if (it != pods_.end() && !it->second.mirror) it->second.mirror = *created;
    } else {
      // AlreadyExists: the watch brings it; the next pass judges it.
      ok = false;
    }
  }
  // Announce a new matching mirror (the status manager writes the status to it).
  std::string announce;
  {
    absl::MutexLock l(&mu_);
    auto it = pods_.find(key);
    if (it == pods_.end()) return ok;
    Entry& e = it->second;
    std::string muid;
    if (e.static_pod && e.mirror &&
        DecideMirror(&*e.static_pod, &*e.mirror) == MirrorAction::kNone) {
      muid = Uid(*e.mirror);
    }
    if (!muid.empty() && muid != e.notified_mirror_uid) announce = Uid(*e.static_pod);
    e.notified_mirror_uid = muid;
    if (!e.static_pod && !e.mirror) pods_.erase(it);
  }
  if (!announce.empty() && opts_.on_mirror_changed) opts_.on_mirror_changed(announce);
  return ok;
}

void MirrorPodManager::Run() {
  absl::Time next = absl::Now();
  mu_.Lock();
  while (!stopping_) {
    if (!dirty_ && absl::Now() < next) {
      cv_.WaitWithDeadline(&mu_, next);
      continue;
    }
    dirty_ = false;
    mu_.Unlock();
    bool ok = ReconcileAll();
    mu_.Lock();
    next = absl::Now() + (ok ? opts_.resync_period : opts_.retry_period);
  }
  mu_.Unlock();
}

}  // namespace berth::kubelet
