#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "actors/entity_context.hpp"
#include "adapters/pg.hpp"
#include "messages/interfaces.hpp"

namespace vantage {

/// State of one wishlist, owned by its actor (the single writer of its
/// rows). Loaded from PostgreSQL when the actor activates.
struct wishlist_state {
  entity_context ctx;
  std::string wishlist_id;
  bool exists = false;
  std::string owner_id;
  std::string title;
  epoch_ms created_at = 0;
  /// The row's version as this activation last wrote or read it.
  int64_t version = 0;
  std::vector<wishlist_item> items;
  /// Current product data of the items, kept fresh by the product actors
  /// (they send `update`/`evict` to their watchers), so reads are one hop.
  std::unordered_map<std::string, product> products;
  static inline const char* name = "wishlist";

  /// Access rule for writes: unknown -> WISHLIST_NOT_FOUND, other owner ->
  /// FORBIDDEN. Returns none when `caller` may write.
  caf::error check_writer(const std::string& caller) const;

  /// The one answer for "no such list, or not yours to read".
  caf::error not_found() const;

  const wishlist_item* find_product(const std::string& product_id) const;
};

wishlist_actor::behavior_type
wishlist_actor_impl(wishlist_actor::stateful_pointer<wishlist_state> self,
                    std::string wishlist_id, entity_context ctx);

/// The outbox row of one wishlist event (schemas/avro/wishlist_event.avsc,
/// topic wishlist.events, keyed by wishlist id) with a fresh event id; put
/// it in the same atomic batch as the change it reports. Empty product or
/// item ids encode as null.
pg_connection::statement wishlist_event(const std::string& event_type,
                                        const std::string& wishlist_id,
                                        const std::string& user_id,
                                        const std::string& product_id,
                                        const std::string& item_id,
                                        int item_count, int64_t now_ms);

} // namespace vantage
