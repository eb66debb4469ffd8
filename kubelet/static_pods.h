// Static pods: pods read from manifest files on the node (the kubelet's staticPodPath /
// --pod-manifest-path), and their mirror pods in the API server.
//
// Upstream: pkg/kubelet/config/{file.go,file_linux.go,common.go} (the file source and
// applyDefaults), pkg/kubelet/pod/mirror_client.go and kubelet.go tryReconcileMirrorPods
// (mirror pods), pkg/kubelet/status/status_manager.go (a static pod's status is written to
// its mirror pod).
//
// FilePodSource reads the manifest directory (one pod per file, YAML or JSON, names
// starting with "." ignored), on inotify events and every file_check_frequency, and feeds
// the pods to a handler as the API watch feeds PodManager ("ADDED"/"DELETED"; a changed
// file is a new pod with a new UID). MirrorPodManager keeps one mirror pod per static pod
// in the API server: created with the kubernetes.io/config.mirror annotation and a
// controller ownerReference to the Node, deleted and recreated when it does not match the
// static pod (or is being deleted), deleted when its static pod is gone.
//
// Example (main):
//   MirrorPodManager mirrors(api, {.node_name = "n1", .node_uid = ...});
//   FilePodSource files({.path = "/etc/kubernetes/manifests", .node_name = "n1"},
//                       [&](auto& type, auto& pod) { pods.HandlePodEvent(type, pod);
//                                                   mirrors.HandleStaticPodEvent(type, pod); });
//   files.Start();     // the first read is synchronous: static pods are known before the
//   mirrors.Start();   // API pods' first LIST (orphan cleanup must not kill them)
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/kube_api.h"
#include "nlohmann/json.hpp"

namespace berth::kubelet {

using Json = nlohmann::json;

// The annotations the kubelet puts on static and mirror pods (pkg/kubelet/types).
inline constexpr char kConfigHashAnnotation[] = "kubernetes.io/config.hash";
inline constexpr char kConfigSourceAnnotation[] = "kubernetes.io/config.source";
inline constexpr char kConfigSeenAnnotation[] = "kubernetes.io/config.seen";
inline constexpr char kConfigMirrorAnnotation[] = "kubernetes.io/config.mirror";

// Largest manifest file read (upstream maxConfigLength, 10 MiB).
inline constexpr size_t kMaxManifestBytes = 10 << 20;

// YAML (1.1 scalars, as sigs.k8s.io/yaml resolves them: plain true/false/yes/no, numbers,
// null; quoted scalars stay strings) or JSON text as JSON. Exactly one document.
// Errors: InvalidArgument naming the line and column.
absl::StatusOr<Json> ManifestToJson(std::string_view text);

// One static pod from the text of manifest file `source` on node `node_name`, defaulted as
// upstream applyDefaults for the file source: UID (when the manifest has none) = hex of a
// 128-bit FNV-1a hash of the manifest's canonical JSON, "host:<node>" and "file:<source>"
// (stable for the same content, node and path; any change of content gives a new UID); name
// suffixed "-<node name in lower case>"; namespace "default" when empty; spec.nodeName; the
// annotations kubernetes.io/config.hash (= UID) and kubernetes.io/config.source ("file");
// a toleration {operator: Exists, effect: NoExecute}; status.phase Pending. The pod must
// also parse as the kubelet's typed pod (api::ParsePod). Errors: InvalidArgument saying
// what is wrong ("kind is \"Deployment\", want Pod", "metadata.name is required", ...).
// kubernetes.io/config.seen is not set here (FilePodSource sets it when it first sees the
// pod). Pure; thread-safe.
absl::StatusOr<Json> ParseStaticPodManifest(std::string_view text, const std::string& source,
                                            const std::string& node_name);

// A pod object from the API server that mirrors a static pod (it has the
// kubernetes.io/config.mirror annotation): never run as a pod (upstream IsMirrorPod).
bool IsMirrorPod(const Json& pod);

// What MirrorPodManager does about one static pod's mirror (upstream tryReconcileMirrorPods
// and deleteOrphanedMirrorPods).
enum class MirrorAction {
  kNone,             // the mirror matches the static pod (or neither exists)
  kCreate,           // no mirror: create it
  kDelete,           // a mirror without its static pod: delete it
  kDeleteAndCreate,  // the mirror is being deleted or its config.mirror annotation is not the
                     // static pod's config.hash: delete it (UID precondition), then create
};
// The action for static pod `static_pod` (nullptr: none of that namespace/name) and the
// API's mirror pod of the same namespace/name `mirror` (nullptr: none). Pure.
MirrorAction DecideMirror(const Json* static_pod, const Json* mirror);

// The mirror pod object created for `static_pod` (upstream CreateMirrorPod): the static pod
// with the annotation kubernetes.io/config.mirror = its config.hash, ownerReferences = the
// Node (apiVersion v1, controller true), and no uid, resourceVersion or status. Pure.
Json MakeMirrorPod(const Json& static_pod, const std::string& node_name,
                   const std::string& node_uid);

// Configuration of a FilePodSource.
struct FilePodSourceOptions {
  // A directory of manifests (files directly in it; sub-directories are not read) or a
  // single manifest file. May not exist yet (then no static pods, retried).
  std::string path;
  std::string node_name;
  // Re-read period besides the inotify events (upstream fileCheckFrequency; <= 0: 20 s).
  absl::Duration file_check_frequency = absl::Seconds(20);
  // kubernetes.io/config.seen timestamps (tests inject a fake clock).
  std::function<absl::Time()> clock = absl::Now;
};

// The file pod source (see the file comment). A file that cannot be read or parsed is
// logged (once per distinct error) and skipped: it adds nothing, and a pod read earlier from
// the same file stays as it was (bad input loses nothing; upstream's periodic re-list would
// drop it); the other files are not affected. Two files with the same pod
// (namespace/name): the first in lexical order wins, the other is reported.
// Thread safety: all public methods may be called from any thread; the handler is called
// from Start()'s thread and then the watch thread, never concurrently, without locks held.
class FilePodSource {
 public:
  // `type` is "ADDED" or "DELETED"; `pod` the defaulted v1.Pod JSON.
  using Handler = std::function<void(const std::string& type, const Json& pod)>;
  FilePodSource(FilePodSourceOptions options, Handler handler);
  ~FilePodSource();  // Stop()

  // Reads the path once (the handler sees every static pod before Start returns), then
  // watches it (inotify on the directory, re-read every file_check_frequency) on a thread.
  void Start();
  void Stop();

  // Reads the path now and reports the differences. Called by the watch thread; tests call
  // it directly (without Start).
  void Sync();

  // The current static pods (defaulted JSON), by UID.
  std::map<std::string, Json> Pods();

 private:
  void Run();

  const FilePodSourceOptions opts_;
  const Handler handler_;
  absl::Mutex sync_mu_;  // one Sync at a time (serializes handler calls)
  absl::Mutex mu_;
  std::map<std::string, Json> pods_ ABSL_GUARDED_BY(mu_);              // uid -> pod
  std::map<std::string, std::string> last_good_ ABSL_GUARDED_BY(mu_);  // file -> uid
  std::map<std::string, std::string> reported_ ABSL_GUARDED_BY(mu_);   // file -> error logged
  std::map<std::string, absl::Time> seen_ ABSL_GUARDED_BY(mu_);        // uid -> first seen
  int stop_fd_ = -1;  // eventfd that wakes the watch thread
  std::thread thread_;
};

// Configuration of a MirrorPodManager.
struct MirrorPodManagerOptions {
  std::string node_name;
  // The Node's metadata.uid ("" until the Node is registered: creation waits).
  std::function<std::string()> node_uid;
  // Called (from the manager's thread, no lock held) when the mirror pod of static pod
  // `static_uid` appeared or was replaced: its status must be written again.
  std::function<void(const std::string& static_uid)> on_mirror_changed;
  // Retry period after a failed API call, and the safety-net reconcile period.
  absl::Duration retry_period = absl::Seconds(2);
  absl::Duration resync_period = absl::Seconds(30);
};

// Keeps the mirror pods of the static pods (see the file comment). Reconciles on its own
// thread after every change (static pod, mirror pod event) and periodically; nothing is
// created or deleted before HandleMirrorPodsSynced (the first LIST of the node's pods)
// tells which mirror pods exist.
// Thread safety: all public methods may be called from any thread.
class MirrorPodManager {
 public:
  // `api` is not owned and must outlive this object.
  MirrorPodManager(KubeApi* api, MirrorPodManagerOptions options);
  ~MirrorPodManager();  // Stop()

  void Start();
  void Stop();

  // A static pod from the file source ("ADDED" / "DELETED").
  void HandleStaticPodEvent(const std::string& type, const Json& static_pod);
  // A mirror pod from the API watch of the node's pods ("ADDED", "MODIFIED", "DELETED").
  void HandleMirrorPodEvent(const std::string& type, const Json& mirror);
  // The watch's first LIST is complete.
  void HandleMirrorPodsSynced();

  // For the status manager: nullopt when `pod_uid` is not a static pod (its status goes to
  // the object of that UID); "" when it is one without a matching mirror pod yet (its status
  // waits for on_mirror_changed); else the UID of its mirror pod.
  std::optional<std::string> MirrorUidOf(const std::string& pod_uid);

  // One reconcile pass over every static and mirror pod, on the calling thread. Returns
  // true when everything is as it should be (false: something to retry).
  bool ReconcileAll();

 private:
  struct Entry {
    std::optional<Json> static_pod;
    std::optional<Json> mirror;
    std::string notified_mirror_uid;  // the mirror UID on_mirror_changed last announced
  };
  void Run();
  bool Reconcile(const std::string& key);
  void Kick();

  KubeApi* const api_;
  const MirrorPodManagerOptions opts_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, Entry> pods_ ABSL_GUARDED_BY(mu_);               // by "namespace/name"
  std::map<std::string, std::string> static_keys_ ABSL_GUARDED_BY(mu_);  // static uid -> key
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace berth::kubelet
