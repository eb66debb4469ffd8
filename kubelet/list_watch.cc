#include "kubelet/list_watch.h"

#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace berth::kubelet {

std::string UrlQueryEscape(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

ListWatch::ListWatch(ApiClient* client, ListWatchOptions options, ListWatchHandlers handlers)
    : client_(client), options_(std::move(options)), handlers_(std::move(handlers)) {}

ListWatch::~ListWatch() { Stop(); }

void ListWatch::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ListWatch::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string ListWatch::ResourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resource_version_;
}

std::string ListWatch::KeyOf(const Json& obj) {
  const Json& md = obj.contains("metadata") ? obj["metadata"] : Json::object();
  std::string ns = md.value("namespace", "");
  std::string name = md.value("name", "");
  return ns.empty() ? name : ns + "/" + name;
}

std::string ListWatch::Query(bool watch) const {
  std::string q;
  auto add = [&q](const std::string& k, const std::string& v) {
    q += q.empty() ? "?" : "&";
    q += k + "=" + UrlQueryEscape(v);
  };
  if (!options_.field_selector.empty()) add("fieldSelector", options_.field_selector);
  if (!options_.label_selector.empty()) add("labelSelector", options_.label_selector);
  if (watch) add("resourceVersion", ResourceVersion());
  return q;
}

bool ListWatch::SleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stop_.load(); });
}

absl::Status ListWatch::List() {
  list_count_++;
  auto list = client_->Get(options_.path + Query(false));
  if (!list.ok()) return list.status();
  if (!list->contains("items") || !(*list)["items"].is_array()) {
    return absl::InternalError(absl::StrCat("LIST ", options_.path, ": response has no items"));
  }
  std::string rv = (*list)["metadata"].value("resourceVersion", "");
  // Items of a list carry no apiVersion/kind; fill them from the list's kind (FooList -> Foo).
  std::string api_version = list->value("apiVersion", "");
  std::string kind = list->value("kind", "");
  if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0) {
    kind.resize(kind.size() - 4);
  }
  std::set<std::string> seen;
  for (Json& item : (*list)["items"]) {
    if (!item.contains("apiVersion") && !api_version.empty()) item["apiVersion"] = api_version;
    if (!item.contains("kind") && !kind.empty()) item["kind"] = kind;
    std::string key = KeyOf(item);
    seen.insert(key);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      cache_[key] = item;
      if (handlers_.on_add) handlers_.on_add(item);
    } else {
      std::string old_rv = it->second["metadata"].value("resourceVersion", "");
      std::string new_rv = item["metadata"].value("resourceVersion", "");
      if (old_rv != new_rv) {
        Json old = std::move(it->second);
        it->second = item;
        if (handlers_.on_update) handlers_.on_update(old, item);
      }
    }
  }
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (seen.count(it->first) == 0) {
      Json old = std::move(it->second);
      it = cache_.erase(it);
      if (handlers_.on_delete) handlers_.on_delete(old);
    } else {
      ++it;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    resource_version_ = rv;
  }
  if (!synced_.exchange(true) && handlers_.on_synced) handlers_.on_synced();
  return absl::OkStatus();
}

bool ListWatch::HandleEvent(const std::string& type, const Json& obj, absl::Status* out) {
  if (type == "ERROR") {
    int code = obj.value("code", 0);
    std::string msg = obj.value("message", "");
    if (code == 410) {
      *out = absl::OutOfRangeError(absl::StrCat("WATCH ", options_.path, ": 410 Gone: ", msg));
    } else {
      *out = absl::UnavailableError(
          absl::StrCat("WATCH ", options_.path, ": ERROR event ", code, ": ", msg));
    }
    return false;
  }
  std::string rv;
  if (obj.contains("metadata") && obj["metadata"].is_object()) {
    rv = obj["metadata"].value("resourceVersion", "");
  }
  if (type == "BOOKMARK") {
    std::lock_guard<std::mutex> lock(mu_);
    if (!rv.empty()) resource_version_ = rv;
    return true;
  }
  std::string key = KeyOf(obj);
  if (type == "ADDED" || type == "MODIFIED") {
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      cache_[key] = obj;
      if (handlers_.on_add) handlers_.on_add(obj);
    } else {
      Json old = std::move(it->second);
      it->second = obj;
      if (handlers_.on_update) handlers_.on_update(old, obj);
    }
  } else if (type == "DELETED") {
    cache_.erase(key);
    if (handlers_.on_delete) handlers_.on_delete(obj);
  } else {
    LOG(WARNING) << "WATCH " << options_.path << ": ignoring event type " << type;
  }
  if (!rv.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    resource_version_ = rv;
  }
  return true;
}

absl::Status ListWatch::WatchOnce() {
  absl::Status event_status;
  absl::Status s = client_->Watch(
      options_.path + Query(true),
      [&](const std::string& type, const Json& obj) {
        return HandleEvent(type, obj, &event_status);
      },
      stop_);
  if (!event_status.ok()) return event_status;
  return s;
}

void ListWatch::Run() {
  std::mt19937_64 rng(std::random_device{}());
  std::chrono::milliseconds backoff = options_.initial_backoff;
  bool need_list = true;
  auto wait_backoff = [&]() {
    // Full jitter in [backoff/2, backoff].
    auto half = backoff.count() / 2;
    std::chrono::milliseconds d(half + static_cast<long>(rng() % (half + 1)));
    backoff = std::min(backoff * 2, options_.max_backoff);
    return SleepUnlessStopped(d);
  };
  while (!stop_) {
    if (need_list) {
      absl::Status s = List();
      if (!s.ok()) {
        LOG(WARNING) << "list " << options_.path << " failed (retrying): " << s;
        if (!wait_backoff()) break;
        continue;
      }
      need_list = false;
    }
    auto started = std::chrono::steady_clock::now();
    absl::Status s = WatchOnce();
    if (stop_) break;
    if (s.ok()) {
      backoff = options_.initial_backoff;
      continue;  // server-side timeout: re-watch from the last resourceVersion
    }
    if (absl::IsOutOfRange(s)) {
      LOG(INFO) << "watch " << options_.path << ": " << s.message() << "; relisting";
      need_list = true;
      continue;
    }
    LOG(WARNING) << "watch " << options_.path << " failed (retrying): " << s;
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(30)) {
      backoff = options_.initial_backoff;  // the watch worked for a while
    }
    if (!wait_backoff()) break;
  }
}

}  // namespace berth::kubelet
