#include "actors/user_actor.hpp"

#include "actors/io_pool.hpp"
#include "actors/outbox.hpp"
#include "actors/region.hpp"
#include "actors/wishlist_actor.hpp"
#include "adapters/ids.hpp"

namespace vantage {

namespace {

struct user_record {
  bool exists = false;
  std::string display_name;
  std::string default_wishlist_id;
};

constexpr const char* default_wishlist_title = "My Wishlist";

} // namespace
} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::user_record)

namespace vantage {

namespace {

using self_ptr = user_actor::stateful_pointer<user_state>;

/// Hands an add to the user's default wishlist (`request(wishlist_id)` makes
/// the envelope), creating that wishlist first on first use; the wishlist's
/// answer goes straight back to the caller.
template <class Result, class MakeRequest>
caf::result<Result> add_to_default(self_ptr self, MakeRequest request) {
  auto& st = self->state;
  if (!st.exists)
    return make_error(errc::not_found, "unknown user");
  auto rp = self->make_response_promise<Result>();
  auto forward = [=](const std::string& wishlist_id) mutable {
    // The answer goes straight to our caller, which retries through our
    // region if this bounces (see entity_route).
    auto [dest, msg] = entity_route(self->state.ctx.wishlists,
                                    request(wishlist_id));
    rp.delegate(dest, std::move(msg));
  };
  if (!st.default_wishlist_id.empty()) {
    forward(st.default_wishlist_id);
    return rp;
  }
  // First use: create the default wishlist and remember it, atomically.
  auto now = st.ctx.clock->now_ms();
  auto wl = new_id("wl_");
  auto uid = st.user_id;
  self->request(st.ctx.writes, write_timeout,
                make_atomic_write(
                    {{"wl_insert_default",
                      "INSERT INTO wishlists(id, owner_id, title,"
                      " is_default, created_at, updated_at)"
                      " VALUES ($1, $2, $3, true,"
                      " to_timestamp($4::bigint / 1000.0),"
                      " to_timestamp($4::bigint / 1000.0))",
                      {wl, uid, default_wishlist_title, std::to_string(now)}},
                     {"user_set_default",
                      "UPDATE users SET default_wishlist_id = $2"
                      " WHERE id = $1",
                      {uid, wl}},
                     wishlist_event("wishlist_created", wl, uid, "", "", 0,
                                    now)}))
      .await(
          [=](bool) mutable {
            self->state.default_wishlist_id = wl;
            wake_relay(self->state.ctx);
            forward(wl);
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

} // namespace

user_actor::behavior_type
user_actor_impl(user_actor::stateful_pointer<user_state> self,
                std::string user_id, entity_context ctx) {
  self->state.ctx = std::move(ctx);
  self->state.user_id = user_id;
  self->request(self->state.ctx.io, self->state.ctx.db_timeout,
                make_db_task<user_record>(
                    [user_id](pg_connection& c) -> caf::expected<user_record> {
                      auto rows = c.exec("user_load",
                                         "SELECT display_name,"
                                         " coalesce(default_wishlist_id, '')"
                                         " FROM users WHERE id = $1",
                                         {user_id});
                      user_record rec;
                      if (!rows.empty())
                        rec = user_record{true, rows.str(0, 0), rows.str(0, 1)};
                      return rec;
                    }))
      .await(
          [=](user_record& rec) {
            auto& st = self->state;
            st.exists = rec.exists;
            st.display_name = std::move(rec.display_name);
            st.default_wishlist_id = std::move(rec.default_wishlist_id);
          },
          [=](caf::error& err) { self->quit(std::move(err)); });
  return {
      [=](atom::ensure, user_claims& claims) -> caf::result<atom::ok> {
        auto& st = self->state;
        if (st.exists && st.display_name == claims.display_name)
          return atom::ok_v;
        auto rp = self->make_response_promise<atom::ok>();
        auto now = std::to_string(st.ctx.clock->now_ms());
        claims.user_id = st.user_id;
        self->request(st.ctx.writes, write_timeout,
                      make_atomic_write(
                          {{"user_upsert",
                            "INSERT INTO users(id, display_name, email, tz,"
                            " region, account_type, created_at, updated_at)"
                            " VALUES ($1, $2, nullif($3, ''), $4, $5, $6,"
                            " to_timestamp($7::bigint / 1000.0),"
                            " to_timestamp($7::bigint / 1000.0))"
                            " ON CONFLICT (id) DO UPDATE SET"
                            " display_name = EXCLUDED.display_name,"
                            " updated_at = EXCLUDED.updated_at",
                            {claims.user_id, claims.display_name, claims.email,
                             claims.tz, claims.region, claims.account_type,
                             now}}}))
            .await(
                [=](bool) mutable {
                  self->state.exists = true;
                  self->state.display_name = claims.display_name;
                  rp.deliver(atom::ok_v);
                },
                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [=](atom::add, const std::string& product_id) -> caf::result<item_added> {
        return add_to_default<item_added>(
          self, [=](const std::string& wishlist_id) {
            return entity_request<wishlist_actor, item_added>(
              wishlist_id, atom::add_v, self->state.user_id, product_id);
          });
      },
      [=](atom::add, const std::string& product_id,
          share_credit& credit) -> caf::result<credited_add> {
        // The credit travels on to the wishlist, which commits it with
        // the item (actors/wishlist_actor.cpp, add_item).
        return add_to_default<credited_add>(
          self, [=](const std::string& wishlist_id) {
            return entity_request<wishlist_actor, credited_add>(
              wishlist_id, atom::add_v, self->state.user_id, product_id,
              credit);
          });
      },
      [=](atom::stop) { self->quit(); },
  };
}

} // namespace vantage
