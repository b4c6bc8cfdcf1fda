#pragma once

// A count-based circuit breaker with the semantics of Resilience4j's
// CircuitBreakerStateMachine (v2.x, COUNT_BASED sliding window), the library
// the seed configured for og-renderer-cb. The rules, as in Resilience4j:
//
//  - closed: every call is permitted; each result goes into a ring of the
//    last window_size results. Rates are computed only once
//    min(minimum_calls, window_size) results are in the ring; from then on
//    every result checks them, and failure rate >= failure_rate_threshold OR
//    slow-call rate >= slow_call_rate_threshold opens the breaker.
//  - a call is slow when its duration is strictly greater than
//    slow_call_duration, whether it succeeded or failed.
//  - open: every call is refused until the clock is strictly after
//    opened_at + open_duration (Resilience4j: clock.instant().isAfter(...)).
//    There is no timer thread: the next try_acquire() or state() moves the
//    breaker to half_open.
//  - half_open: a fresh window of half_open_calls results; exactly
//    half_open_calls permits are handed out and a result does not give one
//    back (only on_ignored does), so further calls are refused until the
//    breaker decides. It decides once min(minimum_calls, half_open_calls)
//    results are in (with the seed's settings: both probes): either rate at
//    or above its threshold -> open, else -> closed with an empty window.
//
// Results reported after a state change (our choice; Resilience4j differs):
// results are anonymous, so the breaker counts the permits it handed out in
// the current state. On every transition the permits still outstanding
// become "stale". A result is recorded only while the current state has an
// outstanding permit; otherwise it settles a stale permit and is dropped
// (as is a result for which no permit was handed out at all).
// So while open (which hands out no permits) every result is dropped, and
// the rates shown while open stay those that opened it; a late result can
// never close a half-open breaker on its own. Resilience4j instead records a
// late result in whatever state the breaker is in now (in open, into the
// frozen window, which is thrown away on the way to half_open; in half_open,
// as if it were a probe). The one case counting cannot tell apart is a
// stale result arriving while half-open probes are also in flight: it is
// taken as a probe's result (the newest evidence about the dependency), and
// the probe it displaced is dropped when it reports. Exact attribution would
// need a permit token passed back with the result.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "adapters/clock.hpp"

namespace vantage {

/// Settings of one breaker; the defaults are the seed's og-renderer-cb.
struct circuit_breaker_options {
  /// Results kept while closed (COUNT_BASED sliding window size).
  int window_size = 10;
  /// Results needed before any rate is computed (capped at the window).
  int minimum_calls = 3;
  /// Percent of failed calls that opens the breaker (>=).
  double failure_rate_threshold = 50.0;
  /// A call longer than this (strictly) is slow.
  std::chrono::milliseconds slow_call_duration{5000};
  /// Percent of slow calls that opens the breaker (>=).
  double slow_call_rate_threshold = 80.0;
  /// How long the breaker stays open before it lets probes through.
  std::chrono::milliseconds open_duration{30000};
  /// Probes permitted in half_open.
  int half_open_calls = 2;
};

enum class breaker_state { closed, open, half_open };

/// "closed" | "open" | "half_open".
const char* to_string(breaker_state s);

/// Thread-safe (a mutex); time comes only from the injected clock.
class circuit_breaker {
public:
  /// Throws std::invalid_argument for a null clock, a size or count below 1,
  /// or a threshold outside (0, 100] (Resilience4j rejects the same).
  circuit_breaker(circuit_breaker_options opts,
                  std::shared_ptr<const clock_source> clock);

  circuit_breaker(const circuit_breaker&) = delete;
  circuit_breaker& operator=(const circuit_breaker&) = delete;

  /// Permission for one call. false: refused (open, or half-open permits all
  /// in use). When true the caller must report exactly one of
  /// on_success/on_failure (or on_ignored to release the permit without a
  /// result).
  bool try_acquire();

  /// The permitted call succeeded after `duration`.
  void on_success(std::chrono::milliseconds duration);

  /// The permitted call failed after `duration`.
  void on_failure(std::chrono::milliseconds duration);

  /// The permitted call ends without a result that counts (e.g. cancelled):
  /// in half_open its permit goes back to the pool.
  void on_ignored();

  /// Current state (moves open -> half_open when the wait has passed).
  breaker_state state();

  /// Of the current window, in percent; -1 when fewer than the minimum calls
  /// were recorded. While open: the window that opened the breaker.
  double failure_rate();
  double slow_call_rate();

  /// Called (outside the lock) on every transition, e.g. for a log line and
  /// a metric. Calls come one at a time and in the order of the transitions,
  /// possibly on another thread that also caused one. The callback may call
  /// back into the breaker; an exception from it is logged and dropped.
  void
  on_transition(std::function<void(breaker_state from, breaker_state to)> fn);

  /// Transitions since construction, for metrics.
  int64_t transitions() const;

  /// Calls refused since construction (not permitted), for metrics.
  int64_t refused() const;

private:
  /// The last `capacity` results as a ring, with running counts.
  class window {
  public:
    window(int capacity, int minimum);
    void record(bool failed, bool slow);
    int size() const { return size_; }
    /// True once rates are defined (at least `minimum` results).
    bool rated() const { return size_ > 0 && size_ >= minimum_; }
    double failure_rate() const;
    double slow_call_rate() const;

  private:
    static constexpr uint8_t failed_bit = 1;
    static constexpr uint8_t slow_bit = 2;
    std::vector<uint8_t> ring_;
    int minimum_;
    int next_ = 0;
    int size_ = 0;
    int failures_ = 0;
    int slow_ = 0;
  };

  using transition = std::pair<breaker_state, breaker_state>;

  void on_result(bool failed, std::chrono::milliseconds duration);
  /// Under the lock: settles one permit; true when the result counts.
  bool settle_permit();
  bool thresholds_exceeded(const window& w) const;
  /// Under the lock: open -> half_open once the wait has passed.
  void check_open_wait();
  /// Under the lock: changes state, resets what the new state starts with
  /// and queues the callback.
  void transition_to(breaker_state to);
  /// Outside the lock: runs queued callbacks unless another thread does.
  void deliver();

  const circuit_breaker_options opts_;
  const std::shared_ptr<const clock_source> clock_;

  std::mutex mtx_;
  breaker_state state_ = breaker_state::closed;
  window window_;
  int64_t opened_at_ms_ = 0;
  int half_open_permits_ = 0;
  /// Permits handed out in the current state and not yet reported.
  int64_t outstanding_ = 0;
  /// Permits handed out in earlier states and not yet reported.
  int64_t stale_ = 0;

  std::function<void(breaker_state, breaker_state)> on_transition_;
  std::vector<transition> pending_;
  bool delivering_ = false;

  std::atomic<int64_t> transitions_{0};
  std::atomic<int64_t> refused_{0};
};

} // namespace vantage
