#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/catalog.hpp"
#include "messages/wishlist.hpp"

namespace vantage {

/// The one answer for unknown, revoked and expired share tokens (JSON and
/// HTML alike): a prober learns nothing about which it was.
inline constexpr const char* share_gone_message
  = "This shared wishlist is no longer available";

/// Where a request came from, for the metadata of share events. Empty
/// strings are unknown (encoded as null).
struct request_meta {
  std::string user_agent;
  std::string referrer;
  std::string country;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_meta& x) {
  return f(caf::meta::type_name("request_meta"), x.user_agent, x.referrer,
           x.country);
}

/// An owner's request to share a wishlist, validated for shape by the
/// gateway; the share actor checks ownership and the hidden items.
struct share_request {
  std::string wishlist_id;
  std::string owner_id;
  /// From the owner's token (the users row was just synced with it).
  std::string owner_display_name;
  std::string channel;
  /// 7 or 30; 0 means the share never expires.
  int expires_in_days = 30;
  std::vector<std::string> hidden_items;
  std::string message;
  request_meta meta;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, share_request& x) {
  return f(caf::meta::type_name("share_request"), x.wishlist_id, x.owner_id,
           x.owner_display_name, x.channel, x.expires_in_days, x.hidden_items, x.message, x.meta);
}

/// A share as its owner sees it (create response, list, PATCH).
struct share_info {
  std::string share_id;
  std::string share_token;
  std::string wishlist_id;
  std::string owner_id;
  std::string channel;
  epoch_ms created_at = 0;
  /// 0: never expires.
  epoch_ms expires_at = 0;
  bool is_revoked = false;
  int64_t view_count = 0;
  int64_t items_added = 0;
  std::vector<std::string> hidden_items;
  /// Visible items when the answer was made.
  int32_t item_count = 0;
  /// Create only: "rendered", "pending" or "fallback" (actors/preview_gate).
  std::string preview_status;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, share_info& x) {
  return f(caf::meta::type_name("share_info"), x.share_id, x.share_token,
           x.wishlist_id, x.owner_id, x.channel, x.created_at, x.expires_at,
           x.is_revoked, x.view_count, x.items_added, x.hidden_items,
           x.item_count, x.preview_status);
}

/// What a recipient of a share link sees: current items minus hidden ones,
/// with current product data, and nothing private about the owner.
struct shared_wishlist {
  std::string share_token;
  /// For the gateway's "can add to own list" only; never rendered.
  std::string owner_id;
  std::string title;
  std::string owner_display_name;
  epoch_ms created_at = 0;
  std::vector<product> items;
  /// The share's view count including this view.
  int64_t view_count = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shared_wishlist& x) {
  return f(caf::meta::type_name("shared_wishlist"), x.share_token, x.owner_id,
           x.title,
           x.owner_display_name, x.created_at, x.items, x.view_count);
}

/// What an add-from-share commits together with the item it adds: the
/// share sends it along with the add (share -> user -> wishlist), and the
/// wishlist appends the share's statements (share_credit_statements in
/// actors/share_actor.hpp) to the same atomic batch as its item insert, so
/// the item, the share's `items_added + 1` and the `share_item_added` event
/// commit together or not at all. Data only: the SQL stays with the share
/// module and every value is a statement parameter.
struct share_credit {
  /// wishlist_shares.id (a UUID).
  std::string share_id;
  /// The shared wishlist: the share row's wishlist and the event's key.
  std::string share_wishlist_id;
  /// The share_item_added outbox payload (schemas/avro/
  /// wishlist_social_event.avsc), with its own "event_id".
  std::string event_json;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, share_credit& x) {
  return f(caf::meta::type_name("share_credit"), x.share_id,
           x.share_wishlist_id, x.event_json);
}

/// Answer to an add that carried a share_credit. When `added.created`, the
/// credit was committed with the item and `items_added` is the share's count
/// it produced; otherwise (the product was already there) nothing was
/// credited and `items_added` is 0.
struct credited_add {
  item_added added;
  int64_t items_added = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, credited_add& x) {
  return f(caf::meta::type_name("credited_add"), x.added, x.items_added);
}

/// A hide/show change to a share's hidden items.
struct share_visibility_change {
  std::vector<std::string> hide;
  std::vector<std::string> show;
};

template <class Inspector>
typename Inspector::result_type
inspect(Inspector& f, share_visibility_change& x) {
  return f(caf::meta::type_name("share_visibility_change"), x.hide, x.show);
}

} // namespace vantage
