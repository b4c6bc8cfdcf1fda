#pragma once

#include <chrono>
#include <memory>

#include <caf/all.hpp>

#include "adapters/clock.hpp"

namespace vantage {

/// What every entity actor needs from its node: the I/O pool for storage,
/// the outbox relay to wake after a commit, the regions it talks to, and the
/// injectable clock. Passed by value into behaviour functions; no globals.
struct entity_context {
  caf::actor io;
  caf::actor relay;
  caf::actor products;
  caf::actor wishlists;
  caf::actor users;
  std::shared_ptr<const clock_source> clock;
  std::chrono::milliseconds db_timeout{2000};
};

} // namespace vantage
