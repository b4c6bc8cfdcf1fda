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
  // Add-from-share (from the user actor, never from clients): the same add,
  // plus the share's credit committed in the same transaction as the item.
  caf::replies_to<atom::add, std::string, std::string,
                  share_credit>::with<credited_add>,
  caf::replies_to<atom::remove, std::string, std::string>::with<atom::ok>,
  // For other entities (shares), never for clients: the wishlist whoever
  // asks, owner included, so the caller applies its own access rule.
  caf::replies_to<atom::peek>::with<wishlist_view>,
  // The owner's shares of this wishlist, newest first.
  caf::replies_to<atom::list, std::string>::with<std::vector<share_info>>,
  caf::reacts_to<atom::update, product>,
  caf::reacts_to<atom::evict, std::string>,
  caf::reacts_to<atom::stop>>;

/// `share:<share_token>`: one share link; the single writer of its row,
/// hidden items, view count and items added. Strings after the atom: the
/// caller's user id, then the wishlist id named in the path where the route
/// has one (a token of another wishlist answers like an unknown token).
using share_actor = caf::typed_actor<
  // Ownership and hidden items only, before the rate limit is spent.
  caf::replies_to<atom::check, share_request>::with<atom::ok>,
  caf::replies_to<atom::create, share_request>::with<share_info>,
  // One recipient view, counted durably before the answer.
  caf::replies_to<atom::view, request_meta>::with<shared_wishlist>,
  caf::replies_to<atom::update, std::string, std::string,
                  share_visibility_change>::with<share_info>,
  caf::replies_to<atom::revoke, std::string, std::string,
                  request_meta>::with<atom::ok>,
  // Add-from-share: recipient, product, request context.
  caf::replies_to<atom::add, std::string, std::string,
                  request_meta>::with<item_added>,
  // From the expiry sweeper: announce the expiry if it passed; answered
  // once that is done (or not needed).
  caf::replies_to<atom::expire>::with<atom::ok>,
  // The object key of a fresh preview of what the share shows now, or ""
  // (then a render is started and the caller shows the fallback).
  caf::replies_to<atom::preview>::with<std::string>,
  caf::reacts_to<atom::stop>>;

/// The node's preview renderer (actors/renderer_actor.hpp): renders a card
/// to PNG in the object store, or answers from its cache. `lookup, object
/// key, cache key` says whether that object holds a fresh render of that
/// content, without rendering; `lookup, object key` whether it holds any
/// render at all (so probes of unknown tokens activate no share).
using renderer_actor = caf::typed_actor<
  caf::replies_to<atom::render, render_request>::with<render_result>,
  caf::replies_to<atom::lookup, std::string, std::string>::with<bool>,
  caf::replies_to<atom::lookup, std::string>::with<bool>>;

/// `user:<user_id>`: a user's record and default wishlist.
using user_actor = caf::typed_actor<
  caf::replies_to<atom::ensure, user_claims>::with<atom::ok>,
  caf::replies_to<atom::add, std::string>::with<item_added>,
  // Add-from-share (from the share actor): add to the default wishlist and
  // commit the share's credit with the item (wishlist_actor's add above).
  caf::replies_to<atom::add, std::string, share_credit>::with<credited_add>,
  caf::reacts_to<atom::stop>>;

} // namespace vantage
