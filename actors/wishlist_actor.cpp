#include "actors/wishlist_actor.hpp"

#include <algorithm>
#include <memory>
#include <optional>

#include "actors/io_pool.hpp"
#include "actors/outbox.hpp"
#include "actors/share_actor.hpp"
#include "adapters/ids.hpp"
#include "adapters/json.hpp"

namespace vantage {

namespace {

constexpr const char* events_topic = "wishlist.events";
constexpr const char* events_schema = "wishlist_event";

/// What activation reads from storage.
struct wishlist_record {
  bool exists = false;
  std::string owner_id;
  std::string title;
  epoch_ms created_at = 0;
  int64_t version = 0;
  std::vector<wishlist_item> items;
};

} // namespace
} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::wishlist_record)

namespace vantage {

pg_connection::statement
wishlist_event(const std::string& event_type, const std::string& wishlist_id,
               const std::string& user_id, const std::string& product_id,
               const std::string& item_id, int item_count, int64_t now_ms) {
  auto event_id = new_uuid();
  json_writer w;
  w.begin_object()
      .key("event_id")
      .value(event_id)
      .key("event_type")
      .value(event_type)
      .key("wishlist_id")
      .value(wishlist_id)
      .key("user_id")
      .value(user_id);
  w.key("product_id");
  product_id.empty() ? w.null() : w.value(product_id);
  w.key("wishlist_item_id");
  item_id.empty() ? w.null() : w.value(item_id);
  w.key("item_count")
      .value(item_count)
      .key("timestamp")
      .value(format_iso8601(now_ms))
      .end_object();
  return outbox_insert(event_id, events_topic, wishlist_id, events_schema,
                       w.take(), now_ms);
}

caf::error wishlist_state::not_found() const {
  return make_error(errc::wishlist_not_found,
                    "Wishlist " + wishlist_id
                      + " does not exist or you do not have access");
}

caf::error wishlist_state::check_writer(const std::string& caller) const {
  if (!exists)
    return not_found();
  if (caller != owner_id)
    return make_error(errc::forbidden, "You can only modify wishlists you own");
  return caf::none;
}

const wishlist_item*
wishlist_state::find_product(const std::string& product_id) const {
  auto i = std::find_if(items.begin(), items.end(),
                        [&](auto& x) { return x.product_id == product_id; });
  return i != items.end() ? &*i : nullptr;
}

namespace {

using self_ptr = wishlist_actor::stateful_pointer<wishlist_state>;

caf::expected<wishlist_record> load_wishlist(pg_connection& c,
                                             const std::string& id) {
  wishlist_record rec;
  auto head = c.exec("wl_load",
                     "SELECT owner_id, title,"
                     " (extract(epoch from created_at) * 1000)::bigint,"
                     " version FROM wishlists WHERE id = $1",
                     {id});
  if (head.empty())
    return rec;
  rec.exists = true;
  rec.owner_id = head.str(0, 0);
  rec.title = head.str(0, 1);
  rec.created_at = head.i64(0, 2);
  rec.version = head.i64(0, 3);
  auto rows = c.exec("wl_items",
                     "SELECT id, product_id,"
                     " (extract(epoch from added_at) * 1000)::bigint"
                     " FROM wishlist_items WHERE wishlist_id = $1"
                     " ORDER BY added_at, id",
                     {id});
  for (int i = 0; i < rows.size(); ++i)
    rec.items.push_back({rows.str(i, 0), rows.str(i, 1), rows.i64(i, 2)});
  return rec;
}

/// The version guard of an item change: fails the whole batch with 40001
/// (errc::conflict) unless the row still has the version this activation
/// loaded, so a brief double activation cannot lose a write.
///
/// The update itself is plain SQL; bump_wishlist_version (plpgsql, which
/// can raise 40001) runs only when it matched no row, and then raises, as
/// its own update cannot match either. COALESCE evaluates its second
/// argument only when the first is null, so a write that keeps the guard
/// skips the function call (~10 us of the one write backend per item).
pg_connection::statement bump_version(const std::string& id, int64_t expected,
                                      int64_t now) {
  return {"wl_bump",
          "WITH bumped AS (UPDATE wishlists SET version = version + 1,"
          " updated_at = to_timestamp($3::bigint / 1000.0)"
          " WHERE id = $1 AND version = $2::bigint RETURNING version)"
          " SELECT coalesce((SELECT version FROM bumped),"
          " bump_wishlist_version($1, $2::bigint, $3::bigint))",
          {id, std::to_string(expected), std::to_string(now)}};
}

/// After a write: the new version, or on a conflict the end of this
/// activation (its state is stale; the next message loads a fresh one).
template <class Self>
void settle_write(Self* self, const caf::error& err) {
  if (!err)
    ++self->state.version;
  else if (is(err, errc::conflict))
    self->quit();
}

/// The view from the item list and the product snapshots. Items whose
/// product vanished from the catalog are left out.
wishlist_view make_view(const wishlist_state& st) {
  wishlist_view view{st.wishlist_id, st.owner_id, st.title, st.created_at, {}};
  view.items.reserve(st.items.size());
  for (auto& item : st.items) {
    auto i = st.products.find(item.product_id);
    if (i != st.products.end())
      view.items.push_back({item, i->second});
  }
  return view;
}

/// Fetches (and watches) the products not yet in the snapshot, then answers
/// `rp`. Usually nothing is missing and this answers at once.
void reply_view(self_ptr self, caf::typed_response_promise<wishlist_view> rp) {
  auto& st = self->state;
  std::vector<std::string> missing;
  for (auto& item : st.items)
    if (st.products.count(item.product_id) == 0)
      missing.push_back(item.product_id);
  if (missing.empty()) {
    rp.deliver(make_view(st));
    return;
  }
  auto pending = std::make_shared<size_t>(missing.size());
  auto failed = std::make_shared<bool>(false);
  auto me = caf::actor_cast<caf::actor>(self);
  for (auto& product_id : missing) {
    auto finish = [=]() mutable {
      if (--*pending == 0 && !*failed)
        rp.deliver(make_view(self->state));
    };
    self->request(st.ctx.products.actor, st.ctx.db_timeout,
                  envelope{product_id,
                           caf::make_message(atom::get_v, atom::watch_v, me)})
        .then(
            [=](product& p) mutable {
              self->state.products[p.product_id] = std::move(p);
              finish();
            },
            [=](caf::error& err) mutable {
              if (is(err, errc::not_found)) {
                finish();
                return;
              }
              if (!*failed) {
                *failed = true;
                rp.deliver(std::move(err));
              }
            });
  }
}

/// Adds `product_id` to the list for `caller`: the item, the version guard
/// and the wishlist_item_added event in one atomic batch, plus, for an
/// add-from-share, the share's credit (share_credit_statements: its
/// `items_added + 1` and its share_item_added event), so all of them
/// commit or none does. A product already on the list is answered as it is
/// and credits nothing. `answer(added, items_added)` makes the reply;
/// `items_added` is the share's new count (0 without a credit).
template <class Result, class Answer>
caf::result<Result> add_item(self_ptr self, const std::string& caller,
                             const std::string& product_id,
                             std::optional<share_credit> credit,
                             Answer answer) {
  auto& st = self->state;
  if (auto err = st.check_writer(caller))
    return err;
  if (auto* existing = st.find_product(product_id))
    return answer(item_added{st.wishlist_id, *existing, false}, 0);
  auto rp = self->make_response_promise<Result>();
  auto now = st.ctx.clock->now_ms();
  wishlist_item item{new_id("wli_"), product_id, now};
  auto id = st.wishlist_id;
  auto expected = st.version;
  auto count = static_cast<int>(st.items.size()) + 1;
  std::vector<pg_connection::statement> batch{
    {"wli_insert",
     "INSERT INTO wishlist_items(id, wishlist_id,"
     " product_id, added_at) VALUES ($1, $2, $3,"
     " to_timestamp($4::bigint / 1000.0))",
     {item.wishlist_item_id, id, product_id, std::to_string(now)}},
    bump_version(id, expected, now),
    wishlist_event("wishlist_item_added", id, caller, product_id,
                   item.wishlist_item_id, count, now)};
  auto credit_at = batch.size();
  if (credit)
    for (auto& x : share_credit_statements(*credit, now))
      batch.push_back(std::move(x));
  auto write = make_atomic_write<int64_t>(
    std::move(batch),
    [credited = credit.has_value(),
     credit_at](std::vector<pg_rows>& results) -> caf::expected<int64_t> {
      return credited ? results.at(credit_at).i64(0, 0) : int64_t{0};
    });
  write.refused = [product_id, credited = credit.has_value()](
                    const pg_error& e) -> caf::error {
    if (e.sqlstate == "23503")
      return make_error(errc::not_found,
                        "Product " + product_id + " does not exist");
    if (credited && share_credit_refused(e))
      return make_error(errc::share_not_found, share_gone_message);
    return caf::none;
  };
  self->request(st.ctx.writes, write_timeout, std::move(write))
    .await(
      [=](int64_t items_added) mutable {
        auto& st = self->state;
        settle_write(self, caf::none);
        st.items.push_back(item);
        wake_relay(st.ctx);
        rp.deliver(answer(item_added{st.wishlist_id, item, true}, items_added));
      },
      [=](caf::error& err) mutable {
        rp.deliver(err);
        settle_write(self, err);
      });
  return rp;
}

} // namespace

wishlist_actor::behavior_type wishlist_actor_impl(self_ptr self,
                                                  std::string wishlist_id,
                                                  entity_context ctx) {
  self->state.ctx = std::move(ctx);
  self->state.wishlist_id = wishlist_id;
  // Activation: nothing else is processed until the state is loaded.
  self->request(self->state.ctx.io, self->state.ctx.db_timeout,
                make_db_task<wishlist_record>([wishlist_id](pg_connection& c) {
                  return load_wishlist(c, wishlist_id);
                }))
      .await(
          [=](wishlist_record& rec) {
            auto& st = self->state;
            st.exists = rec.exists;
            st.owner_id = std::move(rec.owner_id);
            st.title = std::move(rec.title);
            st.created_at = rec.created_at;
            st.version = rec.version;
            st.items = std::move(rec.items);
          },
          [=](caf::error& err) { self->quit(std::move(err)); });
  return {
      [=](atom::get, const std::string& caller) -> caf::result<wishlist_view> {
        auto& st = self->state;
        // A reader learns nothing about lists that are not theirs.
        if (!st.exists || caller != st.owner_id)
          return st.not_found();
        auto rp = self->make_response_promise<wishlist_view>();
        reply_view(self, rp);
        return rp;
      },
      [=](atom::create, const std::string& owner,
          const std::string& title) -> caf::result<wishlist_view> {
        auto& st = self->state;
        if (st.exists)
          return make_error(errc::conflict, "wishlist already exists");
        auto rp = self->make_response_promise<wishlist_view>();
        auto now = st.ctx.clock->now_ms();
        auto id = st.wishlist_id;
        self->request(st.ctx.writes, write_timeout,
                      make_atomic_write(
                          {{"wl_insert",
                            "INSERT INTO wishlists(id, owner_id, title,"
                            " created_at, updated_at) VALUES ($1, $2, $3,"
                            " to_timestamp($4::bigint / 1000.0),"
                            " to_timestamp($4::bigint / 1000.0))",
                            {id, owner, title, std::to_string(now)}},
                           wishlist_event("wishlist_created", id, owner, "",
                                          "", 0, now)}))
            .await(
                [=](bool) mutable {
                  auto& st = self->state;
                  st.exists = true;
                  st.version = 1;
                  st.owner_id = owner;
                  st.title = title;
                  st.created_at = now;
                  wake_relay(st.ctx);
                  rp.deliver(
                      wishlist_view{st.wishlist_id, owner, title, now, {}});
                },
                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [=](atom::add, const std::string& caller,
          const std::string& product_id) -> caf::result<item_added> {
        return add_item<item_added>(self, caller, product_id, std::nullopt,
                                    [](item_added added, int64_t) {
                                      return added;
                                    });
      },
      [=](atom::add, const std::string& caller, const std::string& product_id,
          share_credit& credit) -> caf::result<credited_add> {
        return add_item<credited_add>(
          self, caller, product_id, std::move(credit),
          [](item_added added, int64_t items_added) {
            return credited_add{std::move(added), items_added};
          });
      },
      [=](atom::remove, const std::string& caller,
          const std::string& item_id) -> caf::result<atom::ok> {
        auto& st = self->state;
        if (auto err = st.check_writer(caller))
          return err;
        auto i = std::find_if(st.items.begin(), st.items.end(), [&](auto& x) {
          return x.wishlist_item_id == item_id;
        });
        if (i == st.items.end())
          return make_error(errc::not_found,
                            "Item " + item_id + " is not on this wishlist");
        auto rp = self->make_response_promise<atom::ok>();
        auto now = st.ctx.clock->now_ms();
        auto id = st.wishlist_id;
        auto product_id = i->product_id;
        auto count = static_cast<int>(st.items.size()) - 1;
        auto expected = st.version;
        self->request(
                st.ctx.writes, write_timeout,
                make_atomic_write(
                    {{"wli_delete",
                      "DELETE FROM wishlist_items"
                      " WHERE id = $1 AND wishlist_id = $2",
                      {item_id, id}},
                     bump_version(id, expected, now),
                     wishlist_event("wishlist_item_removed", id, caller,
                                    product_id, item_id, count, now)}))
            .await(
                [=](bool) mutable {
                  settle_write(self, caf::none);
                  auto& items = self->state.items;
                  items.erase(std::remove_if(items.begin(), items.end(),
                                             [&](auto& x) {
                                               return x.wishlist_item_id
                                                      == item_id;
                                             }),
                              items.end());
                  wake_relay(self->state.ctx);
                  rp.deliver(atom::ok_v);
                },
                [=](caf::error& err) mutable {
                  rp.deliver(err);
                  settle_write(self, err);
                });
        return rp;
      },
      [=](atom::peek) -> caf::result<wishlist_view> {
        auto& st = self->state;
        if (!st.exists)
          return st.not_found();
        auto rp = self->make_response_promise<wishlist_view>();
        reply_view(self, rp);
        return rp;
      },
      [=](atom::list,
          const std::string& caller) -> caf::result<std::vector<share_info>> {
        auto& st = self->state;
        // Listing is a read: a reader learns nothing about others' lists.
        if (!st.exists || caller != st.owner_id)
          return st.not_found();
        auto rp = self->make_response_promise<std::vector<share_info>>();
        auto id = st.wishlist_id;
        // Counters are committed before any view or add is answered, so
        // the stored rows are as current as the share actors.
        self->request(st.ctx.io, st.ctx.db_timeout,
                      make_db_task<std::vector<share_info>>(
                          [id](pg_connection& c)
                              -> caf::expected<std::vector<share_info>> {
                            return load_shares_of(c, id);
                          }))
            .then([=](std::vector<share_info>& xs) mutable {
                    rp.deliver(std::move(xs));
                  },
                  [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [=](atom::update, product& p) {
        auto i = self->state.products.find(p.product_id);
        if (i != self->state.products.end())
          i->second = std::move(p);
      },
      [=](atom::evict, const std::string& product_id) {
        self->state.products.erase(product_id);
      },
      [=](atom::stop) { self->quit(); },
  };
}

} // namespace vantage
