#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "base/log.h"

namespace berth::metrics {
namespace {

[[noreturn]] void Fatal(const std::string& msg) {
  LOG(ERROR) << "metrics registry: " << msg;
  std::fprintf(stderr, "metrics registry: %s\n", msg.c_str());
  std::abort();
}

void AtomicAdd(std::atomic<double>& a, double v) { a.fetch_add(v, std::memory_order_relaxed); }

const char* TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kUntyped:
      return "untyped";
  }
  return "untyped";
}

// HELP text escaping: backslash and line feed.
void AppendEscapedHelp(const std::string& s, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// Label value escaping: backslash, double quote and line feed.
void AppendEscapedLabelValue(const std::string& s, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

Labels Zip(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  Labels labels;
  labels.reserve(names.size() + 1);
  for (size_t i = 0; i < names.size(); ++i) labels.emplace_back(names[i], values[i]);
  return labels;
}

}  // namespace

void Counter::Inc(double v) {
  if (!(v >= 0)) return;
  AtomicAdd(value_, v);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  // First bucket whose upper bound is >= v (le is inclusive); +Inf otherwise.
  size_t i =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v) - upper_bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(upper_bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

uint64_t Histogram::Count() const { return CumulativeCounts().back(); }

std::vector<double> DefaultBuckets() { return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}; }

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) {
    Fatal("ExponentialBuckets needs start > 0, factor > 1, count >= 1");
  }
  std::vector<double> out;
  out.reserve(count);
  for (int i = 0; i < count; ++i) {
    out.push_back(start);
    start *= factor;
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // As Go's strconv.FormatFloat(v, 'g', -1, 64), which client_golang and cAdvisor use:
  // shortest round-trip digits, plain notation unless the exponent is < -4 or >= 21
  // (100000 prints as "100000", not "1e+05").
  char buf[400];
  double a = std::fabs(v);
  auto fmt = (a == 0 || (a >= 1e-4 && a < 1e21)) ? std::chars_format::fixed
                                                 : std::chars_format::scientific;
  auto res = std::to_chars(buf, buf + sizeof(buf), v, fmt);
  return std::string(buf, res.ptr);
}

bool IsValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(const std::string& name) {
  if (name.empty() || name.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void WriteFamily(const FamilySnapshot& family, std::string* out) {
  if (family.samples.empty()) return;
  out->append("# HELP ").append(family.name).push_back(' ');
  AppendEscapedHelp(family.help, out);
  out->append("\n# TYPE ").append(family.name).push_back(' ');
  out->append(TypeName(family.type)).push_back('\n');
  for (const Sample& s : family.samples) {
    out->append(family.name).append(s.name_suffix);
    if (!s.labels.empty()) {
      out->push_back('{');
      for (size_t i = 0; i < s.labels.size(); ++i) {
        if (i > 0) out->push_back(',');
        out->append(s.labels[i].first).append("=\"");
        AppendEscapedLabelValue(s.labels[i].second, out);
        out->push_back('"');
      }
      out->push_back('}');
    }
    out->push_back(' ');
    out->append(FormatValue(s.value)).push_back('\n');
  }
}

Registry::Entry* Registry::AddEntry(const std::string& name, MetricType type,
                                    const std::string& help,
                                    const std::vector<std::string>& label_names,
                                    const std::vector<double>& buckets) {
  if (!IsValidMetricName(name)) Fatal("invalid metric name \"" + name + "\"");
  for (const auto& l : label_names) {
    if (!IsValidLabelName(l)) Fatal("metric " + name + ": invalid label name \"" + l + "\"");
    if (type == MetricType::kHistogram && l == "le") {
      Fatal("histogram " + name + ": label name \"le\" is reserved");
    }
  }
  std::vector<std::string> sorted = label_names;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    Fatal("metric " + name + ": duplicate label name");
  }
  auto it = families_.find(name);
  if (it != families_.end()) {
    const Entry& e = it->second;
    if (e.type != type || e.help != help || e.label_names != label_names || e.buckets != buckets) {
      Fatal("metric " + name + " registered twice with different type, help, labels or buckets");
    }
    return &it->second;
  }
  Entry& e = families_[name];
  e.type = type;
  e.help = help;
  e.label_names = label_names;
  e.buckets = buckets;
  return &e;
}

CounterFamily* Registry::AddCounter(const std::string& name, const std::string& help,
                                    const std::vector<std::string>& label_names) {
  absl::MutexLock lock(&mu_);
  Entry* e = AddEntry(name, MetricType::kCounter, help, label_names, {});
  if (e->counter == nullptr) {
    e->counter.reset(
        new CounterFamily(name, help, label_names, [] { return std::make_unique<Counter>(); }));
  }
  return e->counter.get();
}

GaugeFamily* Registry::AddGauge(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names) {
  absl::MutexLock lock(&mu_);
  Entry* e = AddEntry(name, MetricType::kGauge, help, label_names, {});
  if (e->gauge == nullptr) {
    e->gauge.reset(
        new GaugeFamily(name, help, label_names, [] { return std::make_unique<Gauge>(); }));
  }
  return e->gauge.get();
}

HistogramFamily* Registry::AddHistogram(const std::string& name, const std::string& help,
                                        const std::vector<std::string>& label_names,
                                        std::vector<double> buckets) {
  if (buckets.empty()) buckets = DefaultBuckets();
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
      Fatal("histogram " + name + ": buckets must be finite and strictly increasing");
    }
  }
  absl::MutexLock lock(&mu_);
  Entry* e = AddEntry(name, MetricType::kHistogram, help, label_names, buckets);
  if (e->histogram == nullptr) {
    e->histogram.reset(new HistogramFamily(
        name, help, label_names, [buckets] { return std::make_unique<Histogram>(buckets); }));
  }
  return e->histogram.get();
}

void Registry::AddCollector(Collector collector) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::Expose() const {
  std::vector<FamilySnapshot> families;
  std::vector<Collector> collectors;
  {
    absl::MutexLock lock(&mu_);
    collectors = collectors_;
    for (const auto& [name, e] : families_) {
      FamilySnapshot f;
      f.name = name;
      f.help = e.help;
      f.type = e.type;
      if (e.counter != nullptr) {
        for (const auto& [values, c] : e.counter->Children()) {
          f.samples.push_back({"", Zip(e.label_names, values), c->Value()});
        }
      } else if (e.gauge != nullptr) {
        for (const auto& [values, g] : e.gauge->Children()) {
          f.samples.push_back({"", Zip(e.label_names, values), g->Value()});
        }
      } else if (e.histogram != nullptr) {
        for (const auto& [values, h] : e.histogram->Children()) {
          Labels base = Zip(e.label_names, values);
          std::vector<uint64_t> cumulative = h->CumulativeCounts();
          const auto& bounds = h->upper_bounds();
          for (size_t i = 0; i < cumulative.size(); ++i) {
            Labels l = base;
            l.emplace_back("le", i < bounds.size() ? FormatValue(bounds[i]) : "+Inf");
            f.samples.push_back({"_bucket", std::move(l), static_cast<double>(cumulative[i])});
          }
          f.samples.push_back({"_sum", base, h->Sum()});
          f.samples.push_back({"_count", base, static_cast<double>(cumulative.back())});
        }
      }
      families.push_back(std::move(f));
    }
  }
  // Collectors run without the registry lock: they may be slow (file reads).
  for (const Collector& c : collectors) {
    std::vector<FamilySnapshot> collected;
    c(&collected);
    for (auto& f : collected) {
      if (!IsValidMetricName(f.name)) {
        LOG(WARNING) << "metrics: collector returned invalid metric name \"" << f.name
                     << "\"; dropped";
        continue;
      }
      families.push_back(std::move(f));
    }
  }
  std::stable_sort(
      families.begin(), families.end(),
      [](const FamilySnapshot& a, const FamilySnapshot& b) { return a.name < b.name; });
  std::string out;
  for (size_t i = 0; i < families.size(); ++i) {
    if (i > 0 && families[i].name == families[i - 1].name) {
      // The format forbids a family appearing twice; keep the first (registered) one.
      LOG(WARNING) << "metrics: family " << families[i].name << " exposed twice; dropped";
      continue;
    }
    WriteFamily(families[i], &out);
  }
  return out;
}

}  // namespace berth::metrics
