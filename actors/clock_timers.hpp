#pragma once

// Deadlines on the injectable clock. Every timing rule that must fire by
// itself (share expiry now; session expiry, digests and delivery windows
// later) schedules here instead of calling delayed_send, so the same code
// runs on the system clock and, in scenario replay, on a virtual clock
// that fires whatever fell due when a step advances it.

#include <cstdint>
#include <memory>

#include <caf/all.hpp>

#include "adapters/clock.hpp"

namespace vantage {

/// Spawns the timer service for `clock`. It accepts:
/// - `(schedule, int64_t deadline_ms, actor target, message msg)`: sends
///   `msg` to `target` once the clock reads `deadline_ms` or later;
/// - `(tick)`: fires everything due now and answers `ok` after the messages
///   went out. Advancing a virtual clock sends this and waits for it.
/// On the system clock the service wakes itself at the earliest deadline.
caf::actor spawn_clock_timers(caf::actor_system& sys,
                              std::shared_ptr<const clock_source> clock);

} // namespace vantage
