#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace vantage {

/// The one source of "now" for every timing rule (expiry, TTLs, windows,
/// token exp). Production reads the system clock; scenario replay advances a
/// virtual clock explicitly.
class clock_source {
public:
  virtual ~clock_source() = default;

  /// Milliseconds since the Unix epoch.
  virtual int64_t now_ms() const = 0;

  int64_t now_s() const {
    return now_ms() / 1000;
  }
};

/// Reads std::chrono::system_clock.
class system_clock_source final : public clock_source {
public:
  int64_t now_ms() const override;
};

/// A clock that moves only when told to. Thread-safe.
class virtual_clock final : public clock_source {
public:
  explicit virtual_clock(int64_t start_ms) : now_(start_ms) {
    // nop
  }

  int64_t now_ms() const override {
    return now_.load(std::memory_order_acquire);
  }

  void advance(std::chrono::milliseconds d) {
    now_.fetch_add(d.count(), std::memory_order_acq_rel);
  }

private:
  std::atomic<int64_t> now_;
};

/// "2025-10-16T10:22:14Z" (seconds precision, UTC).
std::string format_iso8601(int64_t epoch_ms);

} // namespace vantage
