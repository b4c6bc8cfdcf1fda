#pragma once

#include <optional>
#include <string>
#include <vector>

#include "actors/entity_context.hpp"
#include "adapters/pg.hpp"
#include "messages/interfaces.hpp"

namespace vantage {

/// One catalog product, cached in memory after activation; upserts write
/// through to PostgreSQL before the cache changes.
struct product_state {
  entity_context ctx;
  std::string product_id;
  std::optional<product> current;
  /// Readers holding a snapshot of this product (see product_actor).
  std::vector<caf::actor> watchers;
  static inline const char* name = "product";

  void add_watcher(const caf::actor& who);
  /// Tells every watcher; `evict` when this activation ends.
  void notify_update() const;
  void notify_evict() const;
};

product_actor::behavior_type
product_actor_impl(product_actor::stateful_pointer<product_state> self,
                   std::string product_id, entity_context ctx);

/// Inserts or updates a product row (used by the actor and the demo loader).
void upsert_product(pg_connection& c, const product& p, int64_t now_ms);

} // namespace vantage
