#pragma once

#include <set>
#include <string>
#include <vector>

#include "actors/entity_context.hpp"
#include "adapters/pg.hpp"
#include "messages/interfaces.hpp"

namespace vantage {

/// A view waiting for the wishlist's current state.
struct arriving_view {
  caf::typed_response_promise<shared_wishlist> rp;
  request_meta meta;
};

/// A view waiting for the group commit that counts it.
struct pending_view {
  caf::typed_response_promise<shared_wishlist> rp;
  shared_wishlist answer;
  request_meta meta;
};

/// A share as stored (wishlist_shares and its hidden items).
struct share_row {
  bool exists = false;
  std::string share_id;
  std::string wishlist_id;
  std::string owner_id;
  std::string owner_display_name;
  std::string channel;
  std::string message;
  epoch_ms created_at = 0;
  /// 0: never expires.
  epoch_ms expires_at = 0;
  bool revoked = false;
  bool expiry_announced = false;
  int64_t view_count = 0;
  int64_t items_added = 0;
  std::set<std::string> hidden;
};

/// State of one share link, owned by its actor. Loaded from PostgreSQL on
/// activation; every change is written (with its event, through the
/// outbox) before the caller hears about it.
struct share_state {
  entity_context ctx;
  std::string token;
  share_row row;
  /// Views answered only after one commit counts them all (group commit):
  /// while a commit is in flight, new views wait here for the next one.
  std::vector<pending_view> pending_views;
  bool committing_views = false;
  /// Views waiting for the wishlist's state: one read serves every view
  /// that arrived before it was sent; later ones wait for the next read.
  std::vector<arriving_view> arriving_views;
  /// The read in flight (null: none): its views, when it was sent and its
  /// number (an answer to a read given up on is ignored).
  std::shared_ptr<std::vector<arriving_view>> reading;
  std::chrono::steady_clock::time_point read_sent;
  uint64_t read_seq = 0;
  /// Cache key of the preview last asked for: a view whose content has
  /// another key (items added, removed, hidden) starts a new render.
  std::string preview_key;
  static inline const char* name = "share";

  /// Neither revoked nor past its expiry at `now`.
  bool live(epoch_ms now) const;
};

share_actor::behavior_type
share_actor_impl(share_actor::stateful_pointer<share_state> self,
                 std::string token, entity_context ctx);

/// The statements that commit `credit` (an add-from-share): the share's
/// `items_added + 1` and its `share_item_added` outbox row. The wishlist
/// actor appends them to the atomic batch of the item insert they count.
/// The first statement answers one row, one column: the share's new
/// `items_added`. When the share row is gone or revoked it fails, and with
/// it the whole batch (see share_credit_refused): no item is added that
/// no share counts, and no event is written for it.
std::vector<pg_connection::statement>
share_credit_statements(const share_credit& credit, int64_t now_ms);

/// True when `e` is the failure of share_credit_statements' guard (the share
/// is no longer live), which callers answer like an unknown token.
bool share_credit_refused(const pg_error& e);

/// The shares of `wishlist_id` as stored, newest first (the owner's list).
std::vector<share_info> load_shares_of(pg_connection& c,
                                       const std::string& wishlist_id);

} // namespace vantage
