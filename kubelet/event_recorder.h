// Kubernetes Events about pods, as the upstream kubelet records them (core/v1 Event with
// source.component "kubelet"): Pulling/Pulled/Failed/BackOff for images, Created/Started/
// Killing for containers. Events are posted asynchronously by one thread from a bounded
// queue; when the queue is full the oldest event is dropped (events are best effort, as in
// client-go's broadcaster). Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "kubelet/api_client.h"

namespace berth::kubelet {

class EventRecorder {
 public:
  // `client` must outlive the recorder; `node_name` is the event's source host.
  EventRecorder(ApiClient* client, std::string node_name, size_t max_queue = 1000);
  ~EventRecorder();  // Stops and joins the thread; queued events are dropped.

  void Start();
  void Stop();

  // Records an event about `pod` (a v1.Pod). `type` is "Normal" or "Warning"; `field_path`
  // names a container as "spec.containers{name}" (empty for the pod itself).
  // Records an event about this node (involvedObject kind Node, name and uid the node name,
  // namespace "default", as the kubelet's nodeRef), e.g. Warning "EvictionThresholdMet".
  void RecordNode(const std::string& type, const std::string& reason, const std::string& message);
  void Record(const Json& pod, const std::string& type, const std::string& reason,
              const std::string& message, const std::string& field_path = "");

  // Builds the Event object Record posts (exposed for tests).
  Json MakeEvent(const Json& pod, const std::string& type, const std::string& reason,
                 const std::string& message, const std::string& field_path) const;

 private:
  void Run();

  ApiClient* const client_;
  const std::string node_name_;
  const size_t max_queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Json> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace berth::kubelet
