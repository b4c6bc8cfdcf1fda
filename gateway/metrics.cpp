#include "gateway/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <variant>

namespace vantage {

namespace {

uint64_t to_bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

double from_bits(uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

void atomic_add_double(std::atomic<uint64_t>& bits, double delta) {
  auto cur = bits.load(std::memory_order_relaxed);
  while (!bits.compare_exchange_weak(cur, to_bits(from_bits(cur) + delta),
                                     std::memory_order_relaxed))
    ; // retry with the refreshed `cur`
}

/// Prometheus sample value: +Inf/-Inf/NaN, plain decimals where readable
/// (0.0001 rather than 1e-04), shortest round-trip otherwise.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  auto a = std::fabs(v);
  std::to_chars_result res;
  if (a == 0.0 || (a >= 1e-6 && a < 1e15))
    res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  else
    res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

void append_escaped_label_value(std::string& out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_escaped_help(std::string& out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

/// `{a="x",b="y"}` (plus an optional trailing `le`), or nothing without labels.
void append_labels(std::string& out, const metric_labels& labels,
                   const char* le = nullptr) {
  if (labels.empty() && le == nullptr)
    return;
  out += '{';
  bool first = true;
  for (auto& [k, v] : labels) {
    if (!first)
      out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped_label_value(out, v);
    out += '"';
  }
  if (le != nullptr) {
    if (!first)
      out += ',';
    out += "le=\"";
    out += le;
    out += '"';
  }
  out += '}';
}

bool valid_metric_name(const std::string& n) {
  if (n.empty())
    return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
              || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

bool valid_label_name(const std::string& n) {
  if (n.empty() || n.rfind("__", 0) == 0)
    return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
              || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

enum class metric_type { counter, gauge, histogram };

const char* type_name(metric_type t) {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

using callback_ptr = std::shared_ptr<const std::function<double()>>;

} // namespace

// -- counter / gauge / histogram ---------------------------------------------

void counter::inc(uint64_t n) {
  value_.fetch_add(n, std::memory_order_relaxed);
}

uint64_t counter::value() const {
  return value_.load(std::memory_order_relaxed);
}

void gauge::set(double v) {
  bits_.store(to_bits(v), std::memory_order_relaxed);
}

void gauge::add(double v) {
  atomic_add_double(bits_, v);
}

double gauge::value() const {
  return from_bits(bits_.load(std::memory_order_relaxed));
}

histogram::histogram(std::vector<double> upper_bounds)
  : bounds_(std::move(upper_bounds)) {
  bounds_.erase(std::remove_if(bounds_.begin(), bounds_.end(),
                               [](double b) { return std::isnan(b) || b == std::numeric_limits<double>::infinity(); }),
                bounds_.end());
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_.reset(new std::atomic<uint64_t>[bounds_.size() + 1]);
  for (size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double v) {
  // First bucket whose upper bound is >= v (le is inclusive); NaN -> +Inf.
  auto idx = static_cast<size_t>(
    std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  if (std::isnan(v))
    idx = bounds_.size();
  buckets_[idx].fetch_add(1, std::memory_order_relaxed);
  atomic_add_double(sum_bits_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t histogram::count() const {
  return count_.load(std::memory_order_relaxed);
}

double histogram::sum() const {
  return from_bits(sum_bits_.load(std::memory_order_relaxed));
}

std::vector<uint64_t> histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> buckets{0.0001, 0.00025, 0.0005, 0.001,
                                           0.0025, 0.005,   0.01,   0.025,
                                           0.05,   0.1,     0.25,   0.5,
                                           1,      2.5,     5,      10};
  return buckets;
}

// -- registry ------------------------------------------------------------------

struct metrics_registry::family {
  std::string help;
  metric_type type;
  // Children sorted by label set so render output is deterministic.
  std::map<metric_labels, std::unique_ptr<counter>> counters;
  std::map<metric_labels, std::unique_ptr<gauge>> gauges;
  std::map<metric_labels, callback_ptr> callbacks;
  std::map<metric_labels, std::unique_ptr<histogram>> histograms;
};

metrics_registry::metrics_registry() = default;
metrics_registry::~metrics_registry() = default;

namespace {

template <class Family>
Family& find_or_add_family(
  std::map<std::string, std::unique_ptr<Family>>& families,
  const std::string& name, const std::string& help, metric_type type,
  const metric_labels& labels) {
  if (!valid_metric_name(name))
    throw std::invalid_argument("invalid metric name: " + name);
  for (auto& kv : labels)
    if (!valid_label_name(kv.first))
      throw std::invalid_argument("invalid label name for " + name + ": "
                                  + kv.first);
  if (type == metric_type::histogram)
    for (auto& kv : labels)
      if (kv.first == "le")
        throw std::invalid_argument("histogram " + name
                                    + " may not use label 'le'");
  auto i = families.find(name);
  if (i == families.end()) {
    auto f = std::make_unique<Family>();
    f->help = help;
    f->type = type;
    i = families.emplace(name, std::move(f)).first;
  } else if (i->second->type != type) {
    throw std::logic_error("metric " + name + " already registered as "
                           + type_name(i->second->type));
  }
  return *i->second;
}

} // namespace

counter& metrics_registry::get_counter(const std::string& name,
                                       const std::string& help,
                                       const metric_labels& labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& f = find_or_add_family(families_, name, help, metric_type::counter,
                               labels);
  auto& slot = f.counters[labels];
  if (!slot)
    slot = std::make_unique<counter>();
  return *slot;
}

gauge& metrics_registry::get_gauge(const std::string& name,
                                   const std::string& help,
                                   const metric_labels& labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& f = find_or_add_family(families_, name, help, metric_type::gauge,
                               labels);
  if (f.callbacks.count(labels) > 0)
    throw std::logic_error("metric " + name
                           + " with these labels is a callback gauge");
  auto& slot = f.gauges[labels];
  if (!slot)
    slot = std::make_unique<gauge>();
  return *slot;
}

histogram& metrics_registry::get_histogram(const std::string& name,
                                           const std::string& help,
                                           const metric_labels& labels,
                                           const std::vector<double>& buckets) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& f = find_or_add_family(families_, name, help, metric_type::histogram,
                               labels);
  auto& slot = f.histograms[labels];
  if (!slot)
    slot = std::make_unique<histogram>(buckets);
  return *slot;
}

void metrics_registry::add_callback_gauge(const std::string& name,
                                          const std::string& help,
                                          const metric_labels& labels,
                                          std::function<double()> fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& f = find_or_add_family(families_, name, help, metric_type::gauge,
                               labels);
  if (f.gauges.count(labels) > 0)
    throw std::logic_error("metric " + name
                           + " with these labels is a plain gauge");
  f.callbacks[labels] = std::make_shared<const std::function<double()>>(
    std::move(fn));
}

std::string metrics_registry::render() const {
  // Snapshot the structure under the lock, then read values and run callbacks
  // without it (a callback may itself use the registry).
  struct child {
    const metric_labels* labels;
    const counter* c = nullptr;
    const gauge* g = nullptr;
    callback_ptr cb;
    const histogram* h = nullptr;
  };
  struct fam_snapshot {
    const std::string* name;
    const std::string* help;
    metric_type type;
    std::vector<child> children;
  };
  std::vector<fam_snapshot> snap;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    snap.reserve(families_.size());
    for (auto& [name, f] : families_) { // std::map: sorted by name
      fam_snapshot fs{&name, &f->help, f->type, {}};
      for (auto& [l, c] : f->counters)
        fs.children.push_back(child{&l, c.get(), nullptr, nullptr, nullptr});
      if (f->type == metric_type::gauge) {
        // Merge plain and callback gauges in label order.
        auto gi = f->gauges.begin();
        auto ci = f->callbacks.begin();
        while (gi != f->gauges.end() || ci != f->callbacks.end()) {
          if (ci == f->callbacks.end()
              || (gi != f->gauges.end() && gi->first < ci->first)) {
            fs.children.push_back(
              child{&gi->first, nullptr, gi->second.get(), nullptr, nullptr});
            ++gi;
          } else {
            fs.children.push_back(
              child{&ci->first, nullptr, nullptr, ci->second, nullptr});
            ++ci;
          }
        }
      }
      for (auto& [l, h] : f->histograms)
        fs.children.push_back(child{&l, nullptr, nullptr, nullptr, h.get()});
      snap.push_back(std::move(fs));
    }
  }
  // Families and children are never removed, so the pointers stay valid.
  std::string out;
  out.reserve(256 * snap.size());
  for (auto& fs : snap) {
    out += "# HELP ";
    out += *fs.name;
    out += ' ';
    append_escaped_help(out, *fs.help);
    out += "\n# TYPE ";
    out += *fs.name;
    out += ' ';
    out += type_name(fs.type);
    out += '\n';
    for (auto& ch : fs.children) {
      if (ch.c != nullptr) {
        out += *fs.name;
        append_labels(out, *ch.labels);
        out += ' ';
        append_uint(out, ch.c->value());
        out += '\n';
      } else if (ch.g != nullptr || ch.cb) {
        double v;
        if (ch.g != nullptr) {
          v = ch.g->value();
        } else {
          try {
            v = (*ch.cb)();
          } catch (...) {
            v = std::numeric_limits<double>::quiet_NaN();
          }
        }
        out += *fs.name;
        append_labels(out, *ch.labels);
        out += ' ';
        append_number(out, v);
        out += '\n';
      } else if (ch.h != nullptr) {
        auto cum = ch.h->cumulative_counts();
        auto& bounds = ch.h->upper_bounds();
        std::string le;
        for (size_t i = 0; i <= bounds.size(); ++i) {
          le.clear();
          if (i < bounds.size())
            append_number(le, bounds[i]);
          else
            le = "+Inf";
          out += *fs.name;
          out += "_bucket";
          append_labels(out, *ch.labels, le.c_str());
          out += ' ';
          append_uint(out, cum[i]);
          out += '\n';
        }
        out += *fs.name;
        out += "_sum";
        append_labels(out, *ch.labels);
        out += ' ';
        append_number(out, ch.h->sum());
        out += '\n';
        // _count equals the +Inf bucket so the sample is self-consistent.
        out += *fs.name;
        out += "_count";
        append_labels(out, *ch.labels);
        out += ' ';
        append_uint(out, cum.back());
        out += '\n';
      }
    }
  }
  return out;
}

} // namespace vantage
