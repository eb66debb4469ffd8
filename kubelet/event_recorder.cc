#include "kubelet/event_recorder.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace berth::kubelet {
namespace {

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Str(const Json& j, const char* a, const char* b) {
  if (!j.contains(a) || !j[a].is_object() || !j[a].contains(b) || !j[a][b].is_string()) return "";
  return j[a][b].get<std::string>();
}

}  // namespace

EventRecorder::EventRecorder(ApiClient* client, std::string node_name, size_t max_queue)
    : client_(client), node_name_(std::move(node_name)), max_queue_(max_queue) {}

EventRecorder::~EventRecorder() { Stop(); }

void EventRecorder::Start() {
  thread_ = std::thread([this] { Run(); });
}

void EventRecorder::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Json EventRecorder::MakeEvent(const Json& pod, const std::string& type, const std::string& reason,
                              const std::string& message, const std::string& field_path) const {
  std::string name = Str(pod, "metadata", "name");
  std::string ns = Str(pod, "metadata", "namespace");
  auto ns_now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  char suffix[24];
  snprintf(suffix, sizeof(suffix), "%llx", static_cast<unsigned long long>(ns_now));
  std::string now = NowRfc3339();
  Json involved = {{"apiVersion", "v1"},
                   {"kind", "Pod"},
                   {"name", name},
                   {"namespace", ns},
                   {"uid", Str(pod, "metadata", "uid")}};
  if (!field_path.empty()) involved["fieldPath"] = field_path;
  return Json{{"apiVersion", "v1"},
              {"kind", "Event"},
              {"metadata", {{"name", absl::StrCat(name, ".", suffix)}, {"namespace", ns}}},
              {"involvedObject", involved},
              {"reason", reason},
              {"message", message},
              {"type", type},
              {"source", {{"component", "kubelet"}, {"host", node_name_}}},
              {"reportingComponent", "kubelet"},
              {"reportingInstance", node_name_},
              {"firstTimestamp", now},
              {"lastTimestamp", now},
              {"count", 1}};
}

void EventRecorder::Record(const Json& pod, const std::string& type, const std::string& reason,
                           const std::string& message, const std::string& field_path) {
  Json ev = MakeEvent(pod, type, reason, message, field_path);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return;
    if (queue_.size() >= max_queue_) queue_.pop_front();
    queue_.push_back(std::move(ev));
  }
  cv_.notify_one();
}

void EventRecorder::RecordNode(const std::string& type, const std::string& reason,
                               const std::string& message) {
  Json node = {{"metadata", {{"name", node_name_}, {"namespace", "default"}, {"uid", node_name_}}}};
  Json ev = MakeEvent(node, type, reason, message, "");
  ev["involvedObject"] = {{"kind", "Node"}, {"name", node_name_}, {"uid", node_name_}};
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return;
    if (queue_.size() >= max_queue_) queue_.pop_front();
    queue_.push_back(std::move(ev));
  }
  cv_.notify_one();
}

void EventRecorder::Run() {
  while (true) {
    Json ev;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      ev = std::move(queue_.front());
      queue_.pop_front();
    }
    std::string ns = ev["metadata"]["namespace"].get<std::string>();
    auto r = client_->Post(absl::StrCat("/api/v1/namespaces/", ns, "/events"), ev);
    if (!r.ok()) {
      LOG(DEBUG) << "event " << ev["reason"] << " for " << ns << "/" << ev["involvedObject"]["name"]
                 << ": " << r.status();
    }
  }
}

}  // namespace berth::kubelet
