#pragma once

// The pool of render slots (actors/browser_slot_actor.hpp). Requests queue
// here, FIFO and bounded, and go to a slot with a free page; one that waits
// longer than the queue wait fails fast as pool-exhausted instead of piling
// up. A render whose browser died under it is retried once, on another slot
// when there is one.

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include <caf/all.hpp>

#include "actors/browser_slot_actor.hpp"

namespace vantage {

struct render_pool_options {
  /// BROWSER_POOL_SIZE (3).
  int browsers = 3;
  browser_slot_options slot;
  /// How long a request may wait for a page (the seed's 2 s).
  std::chrono::milliseconds queue_wait{2000};
  /// VANTAGE_RENDER_QUEUE_LIMIT (64): waiting requests beyond this are
  /// refused at once.
  int queue_limit = 64;
};

/// Live figures of the pool for /metrics and /healthz.
struct render_pool_status {
  std::vector<std::shared_ptr<slot_status>> slots;
  int32_t pages_per_browser = 0;
  std::atomic<int32_t> queued{0};
  std::atomic<int64_t> rejected_full{0};
  std::atomic<int64_t> rejected_wait{0};
  std::atomic<int64_t> retries{0};
  /// How long a new request would wait for a page, and a page's time per
  /// render, at the current pace (ms): the share flow does not wait out its
  /// budget for a render that cannot make it.
  std::atomic<int32_t> expected_wait_ms{0};
  std::atomic<int32_t> page_ms{0};

  int32_t total_pages() const {
    return static_cast<int32_t>(slots.size()) * pages_per_browser;
  }
  int32_t busy_pages() const;
  int32_t available_pages() const;
  /// PSS of every browser's process tree, summed.
  int64_t browsers_pss_bytes() const;
};

/// Spawns the pool and its slots (linked: they end with it). It answers
/// `page_render` with `page_output`.
caf::actor spawn_render_pool(caf::actor_system& sys, render_pool_options opts,
                             std::shared_ptr<render_pool_status> status);

} // namespace vantage
