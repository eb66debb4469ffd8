// Prometheus metrics for berth: a Registry of metric families (Counter, Gauge, Histogram,
// each with a fixed list of label names) rendered in the Prometheus text exposition format
// 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Families are registered from main() (or from the constructor of the component that owns
// them, given the Registry), never from static initializers. Values are updated lock-free
// (atomics); looking up a labelled child takes the family's mutex, so hot paths should keep
// the returned child pointer.
//
// Example:
//   metrics::Registry registry;
//   auto* requests = registry.AddCounter("berth_cri_requests_total", "CRI requests.",
//                                        {"method", "code"});
//   requests->WithLabelValues({"Version", "OK"})->Inc();
//   std::string text = registry.Expose();
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace berth::metrics {

// The TYPE of a metric family in the exposition format.
enum class MetricType { kCounter, kGauge, kHistogram, kUntyped };

// Label (name, value) pairs in exposition order.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing value. Thread-safe.
class Counter {
 public:
  // Adds `v` (must be >= 0; negative values are ignored, as a counter never decreases).
  void Inc(double v = 1);
  // The current value.
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that can go up and down. Thread-safe.
class Gauge {
 public:
  // Replaces the value.
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  // Adds `v` (may be negative).
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  // Adds 1 / subtracts 1.
  void Inc() { Add(1); }
  void Dec() { Add(-1); }
  // The current value.
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into buckets with upper bounds (le), plus their sum and count, as
// Prometheus histograms. Thread-safe. A scrape reads each bucket atomically, but the
// whole histogram is not a single snapshot (as in client_golang).
class Histogram {
 public:
  // `upper_bounds`: strictly increasing finite bucket bounds; +Inf is implicit.
  explicit Histogram(std::vector<double> upper_bounds);
  // Records one observation `v` (e.g. seconds).
  void Observe(double v);
  // Cumulative counts per bucket, one per upper bound plus the +Inf bucket last.
  std::vector<uint64_t> CumulativeCounts() const;
  // Sum of all observed values.
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  // Number of observations (the +Inf bucket).
  uint64_t Count() const;
  // The finite bucket upper bounds given at construction.
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  const std::vector<double> upper_bounds_;
  // Non-cumulative counts; index upper_bounds_.size() is the +Inf bucket.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Default buckets of client_golang (seconds): .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10.
std::vector<double> DefaultBuckets();
// `count` buckets: start, start*factor, start*factor^2, ... (start > 0, factor > 1).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// One sample line of a family collected at scrape time: `name_suffix` is appended to the
// family name ("" for counters and gauges; "_bucket", "_sum", "_count" for histograms).
struct Sample {
  std::string name_suffix;
  Labels labels;
  double value = 0;
};

// A metric family as produced by a Collector at scrape time.
struct FamilySnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::kUntyped;
  std::vector<Sample> samples;
};

// Called on every scrape (on the scraping thread) to append families whose values are read
// then (process stats, cgroup files). Must be thread-safe and not call back into the
// Registry.
using Collector = std::function<void(std::vector<FamilySnapshot>* out)>;

// A family of metrics of type M sharing a name, help and label names; one child per
// distinct tuple of label values. Thread-safe; children live as long as the Registry.
template <typename M>
class Family {
 public:
  // The child for `values` (one per label name, in the declared order), created on first
  // use. Crashes (a programming error) when the number of values is wrong.
  M* WithLabelValues(const std::vector<std::string>& values);
  // Removes the child for `values` (e.g. when a container is gone). No-op when absent.
  // Pointers previously returned for these values must no longer be used.
  void Remove(const std::vector<std::string>& values);

  // The family's metric name, HELP text and label names, as registered.
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<M>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}
  // Snapshot of (label values, child) pairs sorted by label values.
  std::vector<std::pair<std::vector<std::string>, const M*>> Children() const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<M>()> make_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// The set of metric families served on one /metrics endpoint. Thread-safe.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers a family and returns it (owned by the Registry). Registering the same name
  // again with the same type, help and label names returns the existing family; anything
  // else (another type, an invalid metric or label name, a histogram label "le") is a
  // programming error and crashes with a message.
  CounterFamily* AddCounter(const std::string& name, const std::string& help,
                            const std::vector<std::string>& label_names = {});
  GaugeFamily* AddGauge(const std::string& name, const std::string& help,
                        const std::vector<std::string>& label_names = {});
  // `buckets`: strictly increasing finite upper bounds (DefaultBuckets() when empty).
  HistogramFamily* AddHistogram(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names = {},
                                std::vector<double> buckets = {});
  // Adds a callback run on every Expose().
  void AddCollector(Collector collector);

  // All families (registered and collected) in text format 0.0.4, sorted by family name;
  // children sorted by label values. Families with no samples are omitted.
  std::string Expose() const;

 private:
  struct Entry {
    MetricType type;
    std::string help;
    std::vector<std::string> label_names;
    std::vector<double> buckets;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
  };
  Entry* AddEntry(const std::string& name, MetricType type, const std::string& help,
                  const std::vector<std::string>& label_names, const std::vector<double>& buckets)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> families_ ABSL_GUARDED_BY(mu_);
  std::vector<Collector> collectors_ ABSL_GUARDED_BY(mu_);
};

// Renders one family in text format 0.0.4 (HELP, TYPE, then the samples), appending to
// `out`. Exposed for collectors' tests and for other endpoints that merge families.
void WriteFamily(const FamilySnapshot& family, std::string* out);

// Formats a sample value as Prometheus does: shortest round-trip decimal, "+Inf", "-Inf",
// "NaN".
std::string FormatValue(double v);

// True when `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsValidMetricName(const std::string& name);
// True when `name` matches [a-zA-Z_][a-zA-Z0-9_]* and does not start with "__".
bool IsValidLabelName(const std::string& name);

// ---- implementation of the Family template ----

template <typename M>
M* Family<M>::WithLabelValues(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    // A programming error, like client_golang's panic in WithLabelValues.
    std::fprintf(stderr, "metric %s: %zu label values for %zu label names\n", name_.c_str(),
                 values.size(), label_names_.size());
    std::abort();
  }
  absl::MutexLock lock(&mu_);
  auto& child = children_[values];
  if (child == nullptr) child = make_();
  return child.get();
}

template <typename M>
void Family<M>::Remove(const std::vector<std::string>& values) {
  absl::MutexLock lock(&mu_);
  children_.erase(values);
}

template <typename M>
std::vector<std::pair<std::vector<std::string>, const M*>> Family<M>::Children() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::vector<std::string>, const M*>> out;
  out.reserve(children_.size());
  for (const auto& [values, child] : children_) out.emplace_back(values, child.get());
  return out;
}

}  // namespace berth::metrics
