#pragma once

#include <chrono>
#include <memory>

#include <caf/all.hpp>

#include "actors/outbox_relay_actor.hpp"
#include "actors/region.hpp"
#include "adapters/clock.hpp"
#include "messages/interfaces.hpp"
#include "messages/type_ids.hpp"

namespace vantage {

/// What every entity actor needs from its node: the I/O pool for reads, the
/// group committer for writes,
/// the outbox relay to wake after a commit, the regions it talks to, and the
/// injectable clock. Passed by value into behaviour functions; no globals.
struct entity_context {
  caf::actor io;
  /// The group committer (actors/io_pool.hpp): every atomic write goes here.
  caf::actor writes;
  caf::actor relay;
  std::shared_ptr<relay_status> relay_state;
  region_ref products;
  region_ref wishlists;
  region_ref users;
  region_ref shares;
  /// Timers on the injectable clock (actors/clock_timers.hpp).
  caf::actor timers;
  /// Told about new share expiries (actors/share_expiry.hpp).
  caf::actor share_expiry;
  /// Share previews go through this gate (actors/preview_gate.hpp); the
  /// renderer answers cache lookups. Both invalid when rendering is off.
  caf::actor preview_gate;
  renderer_actor renderer;
  /// How long share creation waits for its preview.
  int32_t preview_budget_ms = 150;
  /// Views committed per round trip at most; 1 commits each view alone.
  int view_batch_max = 256;
  std::shared_ptr<const clock_source> clock;
  std::chrono::milliseconds db_timeout{2000};
  /// This entity's key was never stored (see envelope::never_stored): it
  /// starts empty without a database read.
  bool never_stored = false;
};

/// Tells the relay that events were committed. Under load one message
/// covers many commits: it is sent only when none is already pending.
inline void wake_relay(const entity_context& ctx) {
  if (!ctx.relay_state || !ctx.relay_state->wake_pending.exchange(true))
    caf::anon_send(ctx.relay, atom::wake_v);
}

} // namespace vantage
