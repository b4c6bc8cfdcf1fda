#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace vantage {

/// Label name/value pairs, in the order they are rendered.
using metric_labels = std::vector<std::pair<std::string, std::string>>;

/// Monotonic counter (lock-free).
class counter {
public:
  void inc(uint64_t n = 1);
  uint64_t value() const;

private:
  std::atomic<uint64_t> value_{0};
};

/// Gauge holding a double (lock-free).
class gauge {
public:
  void set(double v);
  void add(double v);
  double value() const;

private:
  std::atomic<uint64_t> bits_{0}; // bit pattern of a double; 0 == 0.0
};

/// Histogram with fixed upper bounds (lock-free observe). Buckets are stored
/// per-bucket and made cumulative on render.
class histogram {
public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double v);
  uint64_t count() const;
  double sum() const;
  /// Upper bounds (sorted, without +Inf).
  const std::vector<double>& upper_bounds() const { return bounds_; }
  /// Cumulative count of observations <= upper_bounds()[i]; i == size() is +Inf.
  std::vector<uint64_t> cumulative_counts() const;

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_; // bounds_.size() + 1
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_bits_{0};
};

/// Default latency buckets in seconds:
/// .0001 .00025 .0005 .001 .0025 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10
const std::vector<double>& default_latency_buckets();

/// Registry of metric families, rendered in the Prometheus text exposition
/// format 0.0.4. Thread-safe; references it returns stay valid for its
/// lifetime, so hot paths should look a metric up once and keep the reference.
class metrics_registry {
public:
  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  /// Same name+labels returns the same object. Throws std::logic_error if
  /// `name` is already registered with another type.
  counter& get_counter(const std::string& name, const std::string& help,
                       const metric_labels& labels = {});
  gauge& get_gauge(const std::string& name, const std::string& help,
                   const metric_labels& labels = {});
  /// `buckets` only matters on first creation of name+labels.
  histogram& get_histogram(const std::string& name, const std::string& help,
                           const metric_labels& labels = {},
                           const std::vector<double>& buckets
                           = default_latency_buckets());
  /// A gauge whose value is read by `fn` at render time (e.g. actor counts).
  /// Re-adding the same name+labels replaces the callback.
  void add_callback_gauge(const std::string& name, const std::string& help,
                          const metric_labels& labels,
                          std::function<double()> fn);
  /// Whole exposition text: one # HELP and # TYPE per family, families
  /// sorted by name, label values escaped (\\ \" \n), histograms with
  /// _bucket{le=...} (+Inf) _sum _count.
  std::string render() const;

private:
  struct family;
  mutable std::mutex mtx_; // guards the maps only, never the hot path
  std::map<std::string, std::unique_ptr<family>> families_;
};

} // namespace vantage
