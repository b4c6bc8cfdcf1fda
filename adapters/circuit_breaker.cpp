#include "adapters/circuit_breaker.hpp"

#include "adapters/log.hpp"

#include <algorithm>
#include <stdexcept>

namespace vantage {

const char* to_string(breaker_state s) {
  switch (s) {
  case breaker_state::closed:
    return "closed";
  case breaker_state::open:
    return "open";
  case breaker_state::half_open:
    return "half_open";
  }
  return "unknown";
}

namespace {

const circuit_breaker_options& validated(const circuit_breaker_options& o) {
  auto percent = [](double p) { return p > 0.0 && p <= 100.0; };
  if (o.window_size < 1 || o.minimum_calls < 1 || o.half_open_calls < 1)
    throw std::invalid_argument(
        "circuit_breaker: window_size, minimum_calls and half_open_calls "
        "must be >= 1");
  if (!percent(o.failure_rate_threshold)
      || !percent(o.slow_call_rate_threshold))
    throw std::invalid_argument(
        "circuit_breaker: rate thresholds must be in (0, 100]");
  if (o.slow_call_duration.count() < 0 || o.open_duration.count() < 0)
    throw std::invalid_argument("circuit_breaker: durations must be >= 0");
  return o;
}

} // namespace

// -- window -------------------------------------------------------------------

circuit_breaker::window::window(int capacity, int minimum)
    : ring_(static_cast<size_t>(capacity), 0),
      // A COUNT_BASED window can never hold more than its size, so Resilience4j
      // caps the minimum there; otherwise a small window would never rate.
      minimum_(std::min(minimum, capacity)) {
  // nop
}

void circuit_breaker::window::record(bool failed, bool slow) {
  auto& slot = ring_[static_cast<size_t>(next_)];
  if (size_ == static_cast<int>(ring_.size())) {
    // Full: the oldest result (in this slot) leaves the window.
    failures_ -= (slot & failed_bit) ? 1 : 0;
    slow_ -= (slot & slow_bit) ? 1 : 0;
  } else {
    ++size_;
  }
  slot
      = static_cast<uint8_t>((failed ? failed_bit : 0) | (slow ? slow_bit : 0));
  failures_ += failed ? 1 : 0;
  slow_ += slow ? 1 : 0;
  next_ = (next_ + 1) % static_cast<int>(ring_.size());
}

double circuit_breaker::window::failure_rate() const {
  return rated() ? failures_ * 100.0 / size_ : -1.0;
}

double circuit_breaker::window::slow_call_rate() const {
  return rated() ? slow_ * 100.0 / size_ : -1.0;
}

// -- circuit_breaker ----------------------------------------------------------

circuit_breaker::circuit_breaker(circuit_breaker_options opts,
                                 std::shared_ptr<const clock_source> clock)
    : opts_(validated(opts)),
      clock_(std::move(clock)),
      window_(opts_.window_size, opts_.minimum_calls) {
  if (!clock_)
    throw std::invalid_argument("circuit_breaker: clock must not be null");
}

bool circuit_breaker::try_acquire() {
  bool permitted = false;
  bool notify = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    check_open_wait();
    switch (state_) {
    case breaker_state::closed:
      permitted = true;
      break;
    case breaker_state::open:
      break;
    case breaker_state::half_open:
      if (half_open_permits_ > 0) {
        --half_open_permits_;
        permitted = true;
      }
      break;
    }
    if (permitted)
      ++outstanding_;
    else
      refused_.fetch_add(1, std::memory_order_relaxed);
    notify = !pending_.empty();
  }
  if (notify)
    deliver();
  return permitted;
}

void circuit_breaker::on_success(std::chrono::milliseconds duration) {
  on_result(false, duration);
}

void circuit_breaker::on_failure(std::chrono::milliseconds duration) {
  on_result(true, duration);
}

void circuit_breaker::on_ignored() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (settle_permit() && state_ == breaker_state::half_open)
    ++half_open_permits_;
}

void circuit_breaker::on_result(bool failed,
                                std::chrono::milliseconds duration) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!settle_permit())
      return;
    // Only closed and half_open hand out permits, so a counted result is
    // never recorded while open.
    window_.record(failed, duration > opts_.slow_call_duration);
    if (!window_.rated())
      return;
    bool exceeded = thresholds_exceeded(window_);
    if (state_ == breaker_state::closed) {
      if (!exceeded)
        return;
      transition_to(breaker_state::open);
    } else {
      transition_to(exceeded ? breaker_state::open : breaker_state::closed);
    }
  }
  deliver();
}

breaker_state circuit_breaker::state() {
  breaker_state s;
  bool notify = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    check_open_wait();
    s = state_;
    notify = !pending_.empty();
  }
  if (notify)
    deliver();
  return s;
}

double circuit_breaker::failure_rate() {
  std::lock_guard<std::mutex> guard{mtx_};
  return window_.failure_rate();
}

double circuit_breaker::slow_call_rate() {
  std::lock_guard<std::mutex> guard{mtx_};
  return window_.slow_call_rate();
}

void circuit_breaker::on_transition(
    std::function<void(breaker_state, breaker_state)> fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  on_transition_ = std::move(fn);
}

int64_t circuit_breaker::transitions() const {
  return transitions_.load(std::memory_order_relaxed);
}

int64_t circuit_breaker::refused() const {
  return refused_.load(std::memory_order_relaxed);
}

bool circuit_breaker::settle_permit() {
  if (outstanding_ > 0) {
    --outstanding_;
    return true;
  }
  // A permit from an earlier state (or none at all: a caller bug); its
  // result says nothing about the window the current state is judging.
  if (stale_ > 0)
    --stale_;
  return false;
}

bool circuit_breaker::thresholds_exceeded(const window& w) const {
  return w.failure_rate() >= opts_.failure_rate_threshold
         || w.slow_call_rate() >= opts_.slow_call_rate_threshold;
}

void circuit_breaker::check_open_wait() {
  if (state_ == breaker_state::open
      && clock_->now_ms() > opened_at_ms_ + opts_.open_duration.count())
    transition_to(breaker_state::half_open);
}

void circuit_breaker::transition_to(breaker_state to) {
  breaker_state from = state_;
  state_ = to;
  stale_ += outstanding_;
  outstanding_ = 0;
  switch (to) {
  case breaker_state::closed:
    window_ = window{opts_.window_size, opts_.minimum_calls};
    break;
  case breaker_state::open:
    // The window that tripped the breaker stays readable while open.
    opened_at_ms_ = clock_->now_ms();
    break;
  case breaker_state::half_open:
    window_ = window{opts_.half_open_calls, opts_.minimum_calls};
    half_open_permits_ = opts_.half_open_calls;
    break;
  }
  transitions_.fetch_add(1, std::memory_order_relaxed);
  pending_.emplace_back(from, to);
}

void circuit_breaker::deliver() {
  std::unique_lock<std::mutex> guard{mtx_};
  // One thread delivers at a time, so callbacks never overlap or reorder even
  // though they run outside the lock.
  if (delivering_)
    return;
  delivering_ = true;
  while (!pending_.empty()) {
    std::vector<transition> batch;
    batch.swap(pending_);
    auto fn = on_transition_;
    guard.unlock();
    if (fn) {
      for (auto& [from, to] : batch) {
        // As Resilience4j does with its event consumers: a throwing callback
        // is logged, and neither the caller (who only asked for a permit or
        // reported a result) nor the later transitions pay for it.
        try {
          fn(from, to);
        } catch (...) {
          log_event(log_level::warn, "circuit_breaker",
                    "transition callback threw");
        }
      }
    }
    guard.lock();
  }
  delivering_ = false;
}

} // namespace vantage
