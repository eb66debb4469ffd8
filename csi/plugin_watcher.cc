#include "csi/plugin_watcher.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/log.h"
#include "csi/api/pluginregistration.grpc.pb.h"
#include "csi/csi_client.h"

namespace berth::csi {
namespace {

// Tells the plugin the outcome of its registration (upstream notifyPlugin). A failure to
// tell is only logged: the plugin may have gone already.
void Notify(const std::string& socket, const absl::Status& outcome) {
  auto stub = pluginregistration::Registration::NewStub(DialUnix(socket));
  pluginregistration::RegistrationStatus req;
  req.set_plugin_registered(outcome.ok());
  if (!outcome.ok()) req.set_error(std::string(outcome.message()));
  pluginregistration::RegistrationStatusResponse resp;
  auto ctx = ContextWithTimeout(kNotifyTimeout);
  grpc::Status s = stub->NotifyRegistrationStatus(ctx.get(), req, &resp);
  if (!s.ok()) {
    LOG(WARNING) << "plugin " << socket << ": NotifyRegistrationStatus: " << s.error_message();
  }
}

}  // namespace

PluginWatcher::PluginWatcher(std::string dir, absl::Duration rescan_period)
    : dir_(std::move(dir)), rescan_period_(rescan_period) {}

PluginWatcher::~PluginWatcher() { Stop(); }

void PluginWatcher::AddHandler(const std::string& type, PluginHandler* handler) {
  handlers_[type] = handler;
}

void PluginWatcher::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void PluginWatcher::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PluginWatcher::Run() {
  LOG(INFO) << "plugin watcher: watching " << dir_;
  while (true) {
    ReconcileOnce();
    std::unique_lock<std::mutex> l(mu_);
    if (cv_.wait_for(l, absl::ToChronoMilliseconds(rescan_period_), [this] { return stop_; }))
      return;
  }
}

std::map<std::string, PluginWatcher::Identity> PluginWatcher::Scan() const {
  std::map<std::string, Identity> out;
  std::vector<std::string> dirs = {dir_};
  while (!dirs.empty()) {
    std::string d = dirs.back();
    dirs.pop_back();
    auto names = ListDir(d);
    if (!names.ok()) continue;
    for (const auto& name : *names) {
      if (name.empty() || name[0] == '.') continue;
      std::string path = JoinPath(d, name);
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        dirs.push_back(path);
      } else if (S_ISSOCK(st.st_mode)) {
        out[path] =
            Identity{static_cast<unsigned long>(st.st_dev), static_cast<unsigned long>(st.st_ino),
                     static_cast<long>(st.st_mtim.tv_sec) * 1000000000L + st.st_mtim.tv_nsec};
      }
    }
  }
  return out;
}

void PluginWatcher::ReconcileOnce() {
  if (!PathExists(dir_)) {
    if (auto s = MkdirAll(dir_, 0750); !s.ok()) {
      LOG(WARNING) << "plugin watcher: " << s;
    }
  }
  const std::map<std::string, Identity> sockets = Scan();
  // Deregister removed and recreated sockets.
  std::vector<Registered> gone;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = registered_.begin(); it != registered_.end();) {
      auto now = sockets.find(it->first);
      if (now == sockets.end() || !(now->second == it->second.identity)) {
        gone.push_back(it->second);
        it = registered_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& r : gone) {
    LOG(INFO) << "plugin watcher: deregistering " << r.info.type << " plugin " << r.info.name
              << " (" << r.info.socket_path << ")";
    r.handler->DeregisterPlugin(r.info);
  }
  for (auto it = failed_.begin(); it != failed_.end();) {
    it = sockets.count(it->first) ? std::next(it) : failed_.erase(it);
  }
  // Register new ones (and failed ones when their backoff is over or the socket changed).
  const absl::Time now = absl::Now();
  for (const auto& [socket, id] : sockets) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (registered_.count(socket)) continue;
    }
    auto f = failed_.find(socket);
    if (f != failed_.end() && f->second.identity == id && now < f->second.retry_at) continue;
    absl::Status s = Register(socket, id);
    if (s.ok()) {
      failed_.erase(socket);
      continue;
    }
    LOG(WARNING) << "plugin watcher: registration of " << socket << " failed: " << s;
    absl::Duration backoff = absl::Seconds(1);
    if (f != failed_.end() && f->second.identity == id) {
      backoff = std::min(f->second.backoff * 2, absl::Minutes(2));
    }
    failed_[socket] = Failed{id, now + backoff, backoff};
  }
}

absl::Status PluginWatcher::Register(const std::string& socket, const Identity& id) {
  auto stub = pluginregistration::Registration::NewStub(DialUnix(socket));
  pluginregistration::InfoRequest req;
  pluginregistration::PluginInfo resp;
  auto ctx = ContextWithTimeout(kGetInfoTimeout);
  absl::Status s = FromGrpc(stub->GetInfo(ctx.get(), req, &resp), "GetInfo");
  if (!s.ok()) {
    // Upstream reports nothing when GetInfo itself failed (there is no plugin to tell).
    return s;
  }
  PluginInfo info;
  info.socket_path = socket;
  info.type = resp.type();
  info.name = resp.name();
  info.endpoint = resp.endpoint().empty() ? socket : resp.endpoint();
  info.supported_versions.assign(resp.supported_versions().begin(),
                                 resp.supported_versions().end());
  auto h = handlers_.find(info.type);
  if (h == handlers_.end()) {
    s = absl::InvalidArgumentError(
        absl::StrCat("no handler registered for plugin type: ", info.type, " at socket ", socket));
  }
  if (s.ok()) s = h->second->ValidatePlugin(info);
  if (s.ok()) s = h->second->RegisterPlugin(info);
  Notify(socket, s);
  if (!s.ok()) return s;
  LOG(INFO) << "plugin watcher: registered " << info.type << " plugin " << info.name << " at "
            << info.endpoint << " (versions " << absl::StrJoin(info.supported_versions, ",") << ")";
  std::lock_guard<std::mutex> l(mu_);
  registered_[socket] = Registered{id, info, h->second};
  return absl::OkStatus();
}

std::vector<std::string> PluginWatcher::RegisteredSockets() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  for (const auto& [k, _] : registered_) out.push_back(k);
  return out;
}

}  // namespace berth::csi
