#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "actors/outbox_relay_actor.hpp"
#include "actors/region.hpp"
#include "actors/render_pool_actor.hpp"
#include "adapters/circuit_breaker.hpp"
#include "adapters/object_store.hpp"
#include "adapters/clock.hpp"
#include "adapters/config.hpp"
#include "gateway/jwt.hpp"
#include "gateway/metrics.hpp"

namespace vantage {

class traffic_recorder;

/// What the gateway talks to. Regions are addressed by key; the gateway
/// never holds an entity's handle beyond one request.
struct gateway_deps {
  caf::actor_system* sys = nullptr;
  region_ref products;
  region_ref wishlists;
  region_ref users;
  region_ref shares;
  caf::actor io;
  std::shared_ptr<const clock_source> clock;
  /// Set only when the node runs on a virtual clock (/_test/clock/advance):
  /// advances it and fires the timers that fell due.
  std::function<void(std::chrono::milliseconds)> advance_clock;
  std::shared_ptr<relay_status> relay;
  std::shared_ptr<region_counters> product_counters;
  std::shared_ptr<region_counters> wishlist_counters;
  std::shared_ptr<region_counters> user_counters;
  std::shared_ptr<region_counters> share_counters;
  std::shared_ptr<metrics_registry> metrics;
  std::shared_ptr<jwt_verifier> jwt;
  std::shared_ptr<traffic_recorder> recorder;
  /// The preview renderer (invalid when BROWSER_POOL_SIZE=0), its pool's
  /// live figures, the share flow's breaker and the object store.
  renderer_actor renderer;
  std::shared_ptr<render_pool_status> render_pool;
  std::shared_ptr<circuit_breaker> preview_breaker;
  std::shared_ptr<object_store> store;
  /// Test nodes: while true every render fails (POST /_test/faults).
  std::shared_ptr<std::atomic<bool>> renderer_fault;
  node_options opts;
};

/// The HTTP gateway: routes -> messages -> HTTP, behind the event-driven
/// front of gateway/http_front.hpp.
class gateway {
public:
  explicit gateway(gateway_deps deps);
  ~gateway();

  /// Binds and starts serving on a background thread. Returns false with
  /// `err` when the port cannot be bound.
  bool start(std::string& err);

  /// The bound port (useful with port 0).
  uint16_t port() const;

  /// Stops accepting, finishes in-flight requests, joins threads.
  void stop();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace vantage
