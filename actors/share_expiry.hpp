#pragma once

// Announces share expiries that nobody is looking at. Share actors live
// only while used, so the deadline of an idle (or never re-activated, after
// a restart) share is kept in PostgreSQL, not in memory: this actor asks
// which shares passed their expiry unannounced and sends each `expire`
// through the share region; the share actor writes the flag and the event
// in one statement, so each share_expired goes out exactly once.

#include <chrono>

#include <caf/all.hpp>

#include "actors/entity_context.hpp"

namespace vantage {

/// Spawns the sweeper. It sweeps at start, at the earliest known deadline
/// (on the injectable clock, through ctx.timers) and at least every
/// `max_interval` of clock time. `(schedule, int64_t deadline_ms)` tells it
/// about a new deadline.
caf::actor spawn_share_expiry(caf::actor_system& sys, entity_context ctx,
                              std::chrono::milliseconds max_interval
                              = std::chrono::minutes{1});

} // namespace vantage
