#pragma once

// What each entity actor accepts, readable in one place. Entities are
// addressed through a region (actors/region.hpp) by key; these interfaces
// let callers check at compile time that a payload is something the entity
// understands (see actors/region.hpp, `ask`).

#include <caf/typed_actor.hpp>

#include "messages/type_ids.hpp"

namespace vantage {

/// `product:<product_id>`: one catalog product, cached from PostgreSQL.
/// `get, watch, actor` also registers the actor for `update, product` after
/// every change and `evict, product_id` when the product passivates, so
/// readers can keep a snapshot that is never stale for longer than one
/// message hop.
using product_actor = caf::typed_actor<
  caf::replies_to<atom::get>::with<product>,
  caf::replies_to<atom::get, atom::watch, caf::actor>::with<product>,
  caf::replies_to<atom::put, product>::with<product>,
  caf::reacts_to<atom::stop>>;

/// `wishlist:<wishlist_id>`: one wishlist and its items; the single writer of
/// its rows. The `std::string` after the atom is always the caller's user id.
using wishlist_actor = caf::typed_actor<
  caf::replies_to<atom::get, std::string>::with<wishlist_view>,
  caf::replies_to<atom::create, std::string, std::string>::with<wishlist_view>,
  caf::replies_to<atom::add, std::string, std::string>::with<item_added>,
  caf::replies_to<atom::remove, std::string, std::string>::with<atom::ok>,
  caf::reacts_to<atom::update, product>,
  caf::reacts_to<atom::evict, std::string>,
  caf::reacts_to<atom::stop>>;

/// `user:<user_id>`: a user's record and default wishlist.
using user_actor = caf::typed_actor<
  caf::replies_to<atom::ensure, user_claims>::with<atom::ok>,
  caf::replies_to<atom::add, std::string>::with<item_added>,
  caf::reacts_to<atom::stop>>;

} // namespace vantage
