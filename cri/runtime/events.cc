// GetContainerEvents (kubelet's evented PLEG): lifecycle events of containers and sandboxes.

#include "base/log.h"
#include "cri/runtime/runtime_records.h"

namespace berth::cri::runtime {

void Runtime::EmitEvent(v1::ContainerEventType type, const std::string& id,
                        const std::string& sandbox_id) {
  v1::ContainerEventResponse ev;
  ev.set_container_id(id);
  ev.set_container_event_type(type);
  ev.set_created_at(NowNs());
  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(sandbox_id);
  if (auto s = PodSandboxStatus(sreq); s.ok()) *ev.mutable_pod_sandbox_status() = s->status();
  std::vector<std::string> ids;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [cid, c] : containers_) {
      if (c->sandbox_id == sandbox_id && c->created) ids.push_back(cid);
    }
  }
  for (const auto& cid : ids) {
    v1::ContainerStatusRequest creq;
    creq.set_container_id(cid);
    if (auto s = ContainerStatus(creq); s.ok()) *ev.add_containers_statuses() = s->status();
  }
  absl::MutexLock l(&events_mu_);
  events_.emplace_back(next_event_seq_++, std::move(ev));
  while (events_.size() > kMaxBufferedEvents) events_.pop_front();
}

absl::Status Runtime::GetContainerEvents(
    const v1::GetEventsRequest&, const std::function<bool(const v1::ContainerEventResponse&)>& send,
    const std::function<bool()>& cancelled) {
  uint64_t cursor;
  {
    absl::MutexLock l(&events_mu_);
    cursor = next_event_seq_;
  }
  while (!cancelled()) {
    std::vector<v1::ContainerEventResponse> pending;
    {
      absl::MutexLock l(&events_mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(events_mu_) {
        return next_event_seq_ > cursor;
      };
      events_mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(1));
      if (!events_.empty() && events_.front().first > cursor) {
        LOG(WARNING) << "runtime: GetContainerEvents subscriber fell behind; "
                     << events_.front().first - cursor << " events dropped";
        cursor = events_.front().first;
      }
      for (const auto& [seq, ev] : events_) {
        if (seq >= cursor) pending.push_back(ev);
      }
      cursor = next_event_seq_;
    }
    for (const auto& ev : pending) {
      if (!send(ev)) return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::cri::runtime
