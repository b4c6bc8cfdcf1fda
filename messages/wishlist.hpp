#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/catalog.hpp"

namespace vantage {

/// Milliseconds since the Unix epoch, UTC. Rendered as ISO 8601 with `Z`.
using epoch_ms = int64_t;

/// One entry of a wishlist as stored.
struct wishlist_item {
  std::string wishlist_item_id;
  std::string product_id;
  epoch_ms added_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wishlist_item& x) {
  return f(caf::meta::type_name("wishlist_item"), x.wishlist_item_id,
           x.product_id, x.added_at);
}

/// An item joined with the product's current data, for reads.
struct wishlist_item_view {
  wishlist_item item;
  product details;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wishlist_item_view& x) {
  return f(caf::meta::type_name("wishlist_item_view"), x.item, x.details);
}

/// A wishlist as its owner reads it.
struct wishlist_view {
  std::string wishlist_id;
  std::string owner_id;
  std::string title;
  epoch_ms created_at = 0;
  std::vector<wishlist_item_view> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wishlist_view& x) {
  return f(caf::meta::type_name("wishlist_view"), x.wishlist_id, x.owner_id,
           x.title, x.created_at, x.items);
}

/// Result of adding a product to a wishlist. `created` is false when the
/// product was already there and `item` is the existing entry.
struct item_added {
  std::string wishlist_id;
  wishlist_item item;
  bool created = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_added& x) {
  return f(caf::meta::type_name("item_added"), x.wishlist_id, x.item,
           x.created);
}

} // namespace vantage
