#include "actors/share_actor.hpp"

#include <algorithm>
#include <memory>
#include <string_view>

#include "actors/io_pool.hpp"
#include "actors/outbox.hpp"
#include "actors/preview_gate.hpp"
#include "actors/region.hpp"
#include "adapters/ids.hpp"
#include "adapters/json.hpp"
#include "adapters/preview_template.hpp"
#include "adapters/text.hpp"

namespace vantage {

namespace {

constexpr const char* social_topic = "wishlist.social.events";
constexpr const char* social_schema = "wishlist_social_event";
constexpr int64_t day_ms = 24LL * 3600 * 1000;

} // namespace
} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::share_row)

namespace vantage {

bool share_state::live(epoch_ms now) const {
  return row.exists && !row.revoked
         && (row.expires_at == 0 || now < row.expires_at);
}

namespace {

using self_ptr = share_actor::stateful_pointer<share_state>;

std::string ms(int64_t v) {
  return std::to_string(v);
}

void nullable(json_writer& w, const std::string& s) {
  s.empty() ? w.null() : w.value(s);
}

/// One event of schemas/avro/wishlist_social_event.avsc as outbox JSON.
std::string share_event_json(const share_state& st, const char* type,
                             int item_count, const std::string& recipient,
                             const request_meta& meta, int64_t now) {
  json_writer w;
  w.begin_object()
    .key("event_id").value(new_uuid())
    .key("event_type").value(type)
    .key("wishlist_id").value(st.row.wishlist_id)
    .key("user_id").value(st.row.owner_id)
    .key("share_token").value(st.token)
    .key("share_channel");
  nullable(w, st.row.channel);
  w.key("item_count").value(item_count).key("recipient_user_id");
  nullable(w, recipient);
  w.key("timestamp").value(format_iso8601(now)).key("metadata").begin_object();
  w.key("user_agent");
  nullable(w, meta.user_agent);
  w.key("referrer");
  nullable(w, meta.referrer);
  w.key("country");
  nullable(w, meta.country);
  w.end_object().end_object();
  return w.take();
}

pg_connection::statement share_events(const share_state& st,
                                      std::vector<std::string> payloads,
                                      int64_t now) {
  return outbox_insert_many(social_topic, st.row.wishlist_id, social_schema,
                            payloads, now);
}

/// A PostgreSQL array literal of ids (ids are plausible_id-shaped, so no
/// quoting is needed; the gateway refuses anything else).
std::string id_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0)
      out += ',';
    out += ids[i];
  }
  out += '}';
  return out;
}

caf::expected<share_row> load_share(pg_connection& c,
                                       const std::string& token) {
  share_row rec;
  auto head = c.exec(
    "share_load",
    "SELECT s.id::text, s.wishlist_id, s.created_by, u.display_name,"
    " coalesce(s.share_channel, ''), coalesce(s.message, ''),"
    " (extract(epoch from s.created_at) * 1000)::bigint,"
    " coalesce((extract(epoch from s.expires_at) * 1000)::bigint, 0),"
    " s.is_revoked, s.expiry_announced, s.view_count, s.items_added"
    " FROM wishlist_shares s JOIN users u ON u.id = s.created_by"
    " WHERE s.share_token = $1",
    {token});
  if (head.empty())
    return rec;
  rec.exists = true;
  rec.share_id = head.str(0, 0);
  rec.wishlist_id = head.str(0, 1);
  rec.owner_id = head.str(0, 2);
  rec.owner_display_name = head.str(0, 3);
  rec.channel = head.str(0, 4);
  rec.message = head.str(0, 5);
  rec.created_at = head.i64(0, 6);
  rec.expires_at = head.i64(0, 7);
  rec.revoked = head.boolean(0, 8);
  rec.expiry_announced = head.boolean(0, 9);
  rec.view_count = head.i64(0, 10);
  rec.items_added = head.i64(0, 11);
  auto rows = c.exec("share_hidden",
                     "SELECT wishlist_item_id FROM wishlist_share_hidden_items"
                     " WHERE share_id = $1::uuid",
                     {rec.share_id});
  for (int i = 0; i < rows.size(); ++i)
    rec.hidden.insert(rows.str(i, 0));
  return rec;
}

caf::error share_gone() {
  return make_error(errc::share_not_found, share_gone_message);
}

/// Items of `view` that recipients of this share see.
int visible_count(const share_state& st, const wishlist_view& view) {
  int n = 0;
  for (auto& x : view.items)
    n += st.row.hidden.count(x.item.wishlist_item_id) == 0;
  return n;
}

share_info make_info(const share_state& st, int item_count) {
  share_info info;
  info.share_id = st.row.share_id;
  info.share_token = st.token;
  info.wishlist_id = st.row.wishlist_id;
  info.owner_id = st.row.owner_id;
  info.channel = st.row.channel;
  info.created_at = st.row.created_at;
  info.expires_at = st.row.expires_at;
  info.is_revoked = st.row.revoked;
  info.view_count = st.row.view_count;
  info.items_added = st.row.items_added;
  info.hidden_items.assign(st.row.hidden.begin(), st.row.hidden.end());
  info.item_count = item_count;
  return info;
}

/// The owner-side rule for a share named under `/wishlists/{id}/shares`:
/// a token of another wishlist is as unknown as a missing one.
caf::error check_owner(const share_state& st, const std::string& caller,
                       const std::string& wishlist_id) {
  if (!st.row.exists || st.row.wishlist_id != wishlist_id)
    return share_gone();
  if (caller != st.row.owner_id)
    return make_error(errc::forbidden, "You can only manage your own shares");
  return caf::none;
}

/// True when `item_id` is one of the wishlist's items.
bool on_wishlist(const wishlist_view& view, const std::string& item_id) {
  return std::any_of(view.items.begin(), view.items.end(), [&](auto& x) {
    return x.item.wishlist_item_id == item_id;
  });
}

/// Ownership of the wishlist and membership of every named item.
caf::error validate_request(const share_request& req,
                            const wishlist_view& view) {
  if (view.owner_id != req.owner_id)
    return make_error(errc::forbidden, "You can only share wishlists you own");
  for (auto& id : req.hidden_items) {
    if (!on_wishlist(view, id))
      return make_error(errc::validation_failed,
                        "hidden_items: " + id + " is not an item of wishlist "
                          + req.wishlist_id);
  }
  return caf::none;
}

/// Asks the wishlist for its current state and continues with `then`.
/// `timeout` may be infinite for a caller that keeps its own deadline.
template <class OnView, class OnError>
void with_wishlist(self_ptr self, const std::string& wishlist_id,
                   caf::duration timeout, OnView then, OnError fail) {
  request_entity(
    self, self->state.ctx.wishlists, timeout,
    envelope{wishlist_id, caf::make_message(atom::peek_v)},
    [=](wishlist_view& view) mutable { then(view); },
    [=](caf::error& err) mutable { fail(err); });
}

/// The same within the database timeout.
template <class OnView, class OnError>
void with_wishlist(self_ptr self, const std::string& wishlist_id,
                   OnView then, OnError fail) {
  with_wishlist(self, wishlist_id, caf::duration{self->state.ctx.db_timeout},
                std::move(then), std::move(fail));
}

/// The same for what the gateway asks (check, create, add), untimed: a
/// timed request is two events for CAF's clock thread (set and cancel),
/// ~23 us of its CPU per share creation here. An answer later than the
/// database timeout fails as the timer would have, so a slow read never
/// lets a create or an add go ahead later than before; a read never
/// answered leaves the share as it was, and the gateway's deadline for the
/// call answers its client.
template <class OnView, class OnError>
void with_wishlist_for_call(self_ptr self, const std::string& wishlist_id,
                            OnView then, OnError fail) {
  auto asked = std::chrono::steady_clock::now();
  auto limit = self->state.ctx.db_timeout;
  with_wishlist(
    self, wishlist_id, caf::duration{caf::infinite},
    [=](const wishlist_view& view) mutable {
      if (std::chrono::steady_clock::now() - asked > limit)
        fail(caf::make_error(caf::sec::request_timeout));
      else
        then(view);
    },
    std::move(fail));
}

/// Continues with the number of items recipients see now (0 when the
/// wishlist is gone), for events that report it.
template <class Then>
void with_visible_count(self_ptr self, Then then) {
  with_wishlist(
    self, self->state.row.wishlist_id,
    [=](const wishlist_view& view) mutable {
      then(visible_count(self->state, view));
    },
    [=](const caf::error&) mutable { then(0); });
}

/// Commits `stmts` atomically through the group committer, then
/// `done(first)` or `fail`.
template <class Done, class Fail>
void commit(self_ptr self, std::vector<pg_connection::statement> stmts,
            Done done, Fail fail) {
  self
    ->request(self->state.ctx.writes, write_timeout,
              make_atomic_write<int64_t>(
                std::move(stmts),
                [](std::vector<pg_rows>& results) -> caf::expected<int64_t> {
                  // The first statement's first column, when it returns one.
                  if (!results.empty() && !results.front().empty())
                    return results.front().i64(0, 0);
                  return int64_t{0};
                }))
    .then([=](int64_t first) mutable { done(first); },
          [=](caf::error& err) mutable { fail(err); });
}

/// Commits every waiting view (up to the batch limit) in one round trip:
/// one counter update and one multi-row outbox insert. Each view is
/// answered only after that commit, so a crash loses no answered view.
void commit_views(self_ptr self) {
  auto& st = self->state;
  if (st.committing_views || st.pending_views.empty())
    return;
  auto n = std::min<size_t>(st.pending_views.size(),
                            static_cast<size_t>(std::max(1, st.ctx.view_batch_max)));
  auto batch = std::make_shared<std::vector<pending_view>>(
    std::make_move_iterator(st.pending_views.begin()),
    std::make_move_iterator(st.pending_views.begin()
                            + static_cast<std::ptrdiff_t>(n)));
  st.pending_views.erase(st.pending_views.begin(),
                         st.pending_views.begin()
                           + static_cast<std::ptrdiff_t>(n));
  st.committing_views = true;
  auto now = st.ctx.clock->now_ms();
  std::vector<std::string> events;
  events.reserve(n);
  for (auto& v : *batch)
    events.push_back(share_event_json(
      st, "share_viewed", static_cast<int>(v.answer.items.size()), "", v.meta,
      now));
  commit(
    self,
    {{"share_count_views",
      "UPDATE wishlist_shares SET view_count = view_count + $2::int,"
      " updated_at = to_timestamp($3::bigint / 1000.0)"
      " WHERE id = $1::uuid RETURNING view_count",
      {st.row.share_id, ms(static_cast<int64_t>(n)), ms(now)}},
     share_events(st, std::move(events), now)},
    [=](int64_t total) {
      auto& st = self->state;
      st.row.view_count = total;
      auto first = total - static_cast<int64_t>(batch->size());
      for (size_t i = 0; i < batch->size(); ++i) {
        auto& v = (*batch)[i];
        v.answer.view_count = first + static_cast<int64_t>(i) + 1;
        v.rp.deliver(std::move(v.answer));
      }
      wake_relay(st.ctx);
      st.committing_views = false;
      commit_views(self);
    },
    [=](const caf::error& err) {
      for (auto& v : *batch)
        v.rp.deliver(err);
      self->state.committing_views = false;
      commit_views(self);
    });
}

void refresh_preview(self_ptr self, const wishlist_view& view);

/// Answers every arriving view with one read of the wishlist, then hands
/// them to the group commit. Views that arrive while a read is in flight
/// wait for the next one, so none is answered with state older than its
/// own arrival.
///
/// The read is untimed: a timer per read would cost a clock entry, a
/// wake-up of CAF's clock thread and a late timeout message, several
/// hundred times a second. Its deadline is checked when the next view
/// arrives instead; a read nobody follows is bounded by the gateway's own
/// deadline for each call.
void read_for_views(self_ptr self) {
  auto& st = self->state;
  if (st.arriving_views.empty())
    return;
  if (st.reading) {
    if (std::chrono::steady_clock::now() - st.read_sent < st.ctx.db_timeout)
      return;
    auto late = make_error(errc::unavailable, "wishlist did not answer");
    for (auto& v : *st.reading)
      v.rp.deliver(late);
  }
  st.read_sent = std::chrono::steady_clock::now();
  auto seq = ++st.read_seq;
  auto batch = std::make_shared<std::vector<arriving_view>>(
    std::move(st.arriving_views));
  st.arriving_views.clear();
  st.reading = batch;
  with_wishlist(
    self, st.row.wishlist_id, caf::duration{caf::infinite},
    [=](const wishlist_view& view) mutable {
      auto& st = self->state;
      if (seq != st.read_seq)
        return; // given up on; its views were answered
      st.reading = nullptr;
      shared_wishlist answer;
      answer.share_token = st.token;
      answer.owner_id = st.row.owner_id;
      answer.title = view.title;
      answer.owner_display_name = st.row.owner_display_name;
      answer.created_at = view.created_at;
      for (auto& x : view.items)
        if (st.row.hidden.count(x.item.wishlist_item_id) == 0)
          answer.items.push_back(x.details);
      refresh_preview(self, view);
      for (auto& v : *batch)
        st.pending_views.push_back(
          pending_view{std::move(v.rp), answer, std::move(v.meta)});
      commit_views(self);
      read_for_views(self);
    },
    [=](const caf::error& err) mutable {
      auto& st = self->state;
      if (seq != st.read_seq)
        return;
      // The wishlist was deleted under the share: gone, like the share.
      auto answer = is(err, errc::wishlist_not_found) ? share_gone() : err;
      for (auto& v : *batch)
        v.rp.deliver(answer);
      st.reading = nullptr;
      read_for_views(self);
    });
}

/// Tells the expiry sweeper about a deadline it may not know yet.
void announce_deadline(const share_state& st) {
  if (st.row.expires_at > 0 && st.ctx.share_expiry)
    caf::anon_send(st.ctx.share_expiry, atom::schedule_v, st.row.expires_at);
}

/// "$249.99", "€89.50"; other currencies as "249.99 CHF".
std::string display_price(const product& p) {
  json_writer w;
  w.money(p.price_cents);
  auto amount = w.take();
  if (p.currency == "USD")
    return "$" + amount;
  if (p.currency == "EUR")
    return "\xE2\x82\xAC" + amount;
  if (p.currency == "GBP")
    return "\xC2\xA3" + amount;
  return amount + " " + p.currency;
}

/// The preview of what recipients of this share see in `view` now.
render_request preview_of(const share_state& st, const wishlist_view& view) {
  render_request req;
  req.wishlist_title = view.title;
  req.owner_name = st.row.owner_display_name;
  std::vector<std::string> visible;
  for (auto& x : view.items) {
    if (st.row.hidden.count(x.item.wishlist_item_id) > 0)
      continue;
    visible.push_back(x.item.wishlist_item_id);
    if (req.items.size() < 4)
      req.items.push_back(
        {x.details.name, x.details.image_url, display_price(x.details)});
  }
  req.item_count = static_cast<int64_t>(visible.size());
  req.cache_key = share_preview_cache_key(st.row.wishlist_id,
                                          std::move(visible));
  req.object_key = "social/" + st.token + "/preview.png";
  return req;
}

/// Starts a background render when the share's content changed since the
/// preview last asked for (nobody waits for it).
void refresh_preview(self_ptr self, const wishlist_view& view) {
  auto& st = self->state;
  if (!st.ctx.preview_gate)
    return;
  auto req = preview_of(st, view);
  if (req.cache_key == st.preview_key)
    return;
  st.preview_key = req.cache_key;
  caf::anon_send(st.ctx.preview_gate, atom::render_v, std::move(req),
                 int32_t{0});
}

} // namespace

std::vector<pg_connection::statement>
share_credit_statements(const share_credit& credit, int64_t now_ms) {
  // This row has two writers: this statement (run by the recipient's
  // wishlist actor) and the share's own view commits. Both change their own
  // column relative to the stored value (`items_added + n` here,
  // `view_count + n` there) and PostgreSQL re-reads the row after waiting
  // for its lock, so neither can lose the other's update.
  //
  // No row updated means the share is gone or was revoked while the add was
  // on its way; then the guard's cast fails (22P02, "share_credit: ...")
  // and with it the batch of every add merged into it. Plain SQL has no
  // RAISE (a plpgsql function like bump_wishlist_version would need a
  // migration), and the cast's input depends on the row count, so the
  // planner cannot fold it early.
  //
  // The credit is a counter the group committer merges: the adds from one
  // share that commit together update its row once (one row version per
  // transaction instead of one per add, each of which the next update of
  // the row would walk past).
  pg_connection::statement credit_row{
    "share_credit_add",
    "WITH credited AS (UPDATE wishlist_shares"
    " SET items_added = items_added + $4::int,"
    " updated_at = to_timestamp($3::bigint / 1000.0)"
    " WHERE id = $1::uuid AND wishlist_id = $2 AND NOT is_revoked"
    " RETURNING items_added)"
    " SELECT coalesce(max(items_added)::text,"
    " 'share_credit: share ' || $1 || ' is not live')::bigint"
    " FROM credited",
    {credit.share_id, credit.share_wishlist_id, ms(now_ms), "1"},
    credit.share_id,
    3,
    pg_connection::merge_kind::sum};
  return {std::move(credit_row),
          outbox_insert_many(social_topic, credit.share_wishlist_id,
                             social_schema, {credit.event_json}, now_ms)};
}

bool share_credit_refused(const pg_error& e) {
  return e.sqlstate == "22P02"
         && std::string_view{e.what()}.find("share_credit: ")
              != std::string_view::npos;
}

std::vector<share_info> load_shares_of(pg_connection& c,
                                       const std::string& wishlist_id) {
  auto rows = c.exec(
    "share_list",
    "SELECT s.id::text, s.share_token, s.created_by,"
    " coalesce(s.share_channel, ''),"
    " (extract(epoch from s.created_at) * 1000)::bigint,"
    " coalesce((extract(epoch from s.expires_at) * 1000)::bigint, 0),"
    " s.is_revoked, s.view_count, s.items_added,"
    " coalesce(array_to_string(array(SELECT h.wishlist_item_id"
    "   FROM wishlist_share_hidden_items h WHERE h.share_id = s.id"
    "   ORDER BY 1), ','), '')"
    " FROM wishlist_shares s WHERE s.wishlist_id = $1"
    " ORDER BY s.created_at DESC, s.id",
    {wishlist_id});
  std::vector<share_info> out;
  out.reserve(static_cast<size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) {
    share_info x;
    x.share_id = rows.str(i, 0);
    x.share_token = rows.str(i, 1);
    x.wishlist_id = wishlist_id;
    x.owner_id = rows.str(i, 2);
    x.channel = rows.str(i, 3);
    x.created_at = rows.i64(i, 4);
    x.expires_at = rows.i64(i, 5);
    x.is_revoked = rows.boolean(i, 6);
    x.view_count = rows.i64(i, 7);
    x.items_added = rows.i64(i, 8);
    x.hidden_items = split_list(rows.str(i, 9));
    out.push_back(std::move(x));
  }
  return out;
}

share_actor::behavior_type share_actor_impl(self_ptr self, std::string token,
                                            entity_context ctx) {
  self->state.ctx = std::move(ctx);
  self->state.token = token;
  // Activation: nothing else is processed until the state is loaded. A
  // token the create route has just minted cannot be stored yet, so it
  // skips the read (a collision, 2^-128, fails the insert on the unique
  // index instead).
  if (!self->state.ctx.never_stored) {
    self
      ->request(self->state.ctx.io, self->state.ctx.db_timeout,
                make_db_task<share_row>([token](pg_connection& c) {
                  return load_share(c, token);
                }))
      .await(
        [=](share_row& rec) {
          auto& st = self->state;
          st.row = std::move(rec);
          // A share that expired while nobody was looking is announced now
          // (the sweeper would, too; the flag makes it happen once).
          if (st.row.exists && !st.row.expiry_announced && !st.row.revoked
              && st.row.expires_at > 0
              && st.ctx.clock->now_ms() >= st.row.expires_at)
            caf::anon_send(caf::actor_cast<caf::actor>(self), atom::expire_v);
        },
        [=](caf::error& err) { self->quit(std::move(err)); });
  }
  return {
    [=](atom::check, share_request& req) -> caf::result<atom::ok> {
      auto rp = self->make_response_promise<atom::ok>();
      with_wishlist_for_call(
        self, req.wishlist_id,
        [=](const wishlist_view& view) mutable {
          if (auto err = validate_request(req, view))
            rp.deliver(std::move(err));
          else
            rp.deliver(atom::ok_v);
        },
        [=](const caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](atom::create, share_request& req) -> caf::result<share_info> {
      if (self->state.row.exists)
        return make_error(errc::conflict, "share token already in use");
      auto rp = self->make_response_promise<share_info>();
      with_wishlist_for_call(
        self, req.wishlist_id,
        [=](const wishlist_view& view) mutable {
          if (auto err = validate_request(req, view)) {
            rp.deliver(std::move(err));
            return;
          }
          auto& st = self->state;
          if (st.row.exists) { // a second create raced this one
            rp.deliver(make_error(errc::conflict, "share token already in use"));
            return;
          }
          auto now = st.ctx.clock->now_ms();
          // Fill the state first (events are built from it); undone below
          // if the commit fails.
          st.row.share_id = new_uuid();
          st.row.wishlist_id = req.wishlist_id;
          st.row.owner_id = req.owner_id;
          st.row.owner_display_name = req.owner_display_name;
          st.row.channel = req.channel;
          st.row.message = req.message;
          st.row.created_at = now;
          st.row.expires_at = req.expires_in_days > 0
                            ? now + req.expires_in_days * day_ms
                            : 0;
          st.row.hidden = std::set<std::string>(req.hidden_items.begin(),
                                            req.hidden_items.end());
          auto visible = visible_count(st, view);
          std::vector<std::string> hidden(st.row.hidden.begin(), st.row.hidden.end());
          std::vector<pg_connection::statement> stmts{
            {"share_insert",
             "INSERT INTO wishlist_shares(id, wishlist_id, share_token,"
             " created_by, expires_at, share_channel, created_at,"
             " updated_at, message) VALUES ($1::uuid, $2, $3, $4,"
             " CASE WHEN $5::bigint = 0 THEN NULL"
             " ELSE to_timestamp($5::bigint / 1000.0) END, $6,"
             " to_timestamp($7::bigint / 1000.0),"
             " to_timestamp($7::bigint / 1000.0), nullif($8, ''))",
             {st.row.share_id, st.row.wishlist_id, st.token, st.row.owner_id,
              ms(st.row.expires_at), st.row.channel, ms(now), st.row.message}},
            share_events(st,
                         {share_event_json(st, "share_created", visible, "",
                                           req.meta, now)},
                         now)};
          if (!hidden.empty())
            stmts.push_back(
              {"share_insert_hidden",
               "INSERT INTO wishlist_share_hidden_items(share_id,"
               " wishlist_item_id) SELECT $1::uuid, unnest($2::text[])",
               {st.row.share_id, id_array(hidden)}});
          commit(
            self, std::move(stmts),
            [=](int64_t) mutable {
              auto& st = self->state;
              st.row.exists = true;
              wake_relay(st.ctx);
              announce_deadline(st);
              auto info = make_info(st, visible);
              if (!st.ctx.preview_gate) {
                info.preview_status = preview_fallback;
                rp.deliver(std::move(info));
                return;
              }
              // The share exists now; its preview gets at most the budget
              // before the answer (the gate always answers by then).
              auto req = preview_of(st, view);
              st.preview_key = req.cache_key;
              auto budget = st.ctx.preview_budget_ms;
              self
                ->request(st.ctx.preview_gate,
                          std::chrono::milliseconds{budget + 2000},
                          atom::render_v, std::move(req), budget)
                .then(
                  [=](std::string& status) mutable {
                    // No render is coming: the next view asks again.
                    if (status == preview_fallback)
                      self->state.preview_key.clear();
                    info.preview_status = std::move(status);
                    rp.deliver(std::move(info));
                  },
                  [=](caf::error&) mutable {
                    self->state.preview_key.clear();
                    info.preview_status = preview_fallback;
                    rp.deliver(std::move(info));
                  });
            },
            [=](const caf::error& err) mutable {
              auto& st = self->state;
              st.row = share_row{};
              rp.deliver(err);
            });
        },
        [=](const caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](atom::view, request_meta& meta) -> caf::result<shared_wishlist> {
      auto& st = self->state;
      if (!st.live(st.ctx.clock->now_ms()))
        return share_gone();
      auto rp = self->make_response_promise<shared_wishlist>();
      st.arriving_views.push_back(arriving_view{rp, std::move(meta)});
      read_for_views(self);
      return rp;
    },
    [=](atom::update, const std::string& caller, const std::string& wishlist_id,
        share_visibility_change& change) -> caf::result<share_info> {
      auto& st = self->state;
      if (auto err = check_owner(st, caller, wishlist_id))
        return err;
      auto rp = self->make_response_promise<share_info>();
      with_wishlist(
        self, st.row.wishlist_id,
        [=](const wishlist_view& view) mutable {
          auto& st = self->state;
          std::vector<std::string> unknown;
          for (auto* ids : {&change.hide, &change.show})
            for (auto& id : *ids)
              if (!on_wishlist(view, id))
                unknown.push_back(id);
          if (!unknown.empty()) {
            std::string list;
            for (auto& id : unknown)
              list += (list.empty() ? "" : ", ") + id;
            rp.deliver(make_error(errc::validation_failed,
                                  "unknown wishlist items: " + list));
            return;
          }
          auto next = st.row.hidden;
          for (auto& id : change.show)
            next.erase(id);
          for (auto& id : change.hide)
            next.insert(id);
          auto now = st.ctx.clock->now_ms();
          std::vector<pg_connection::statement> stmts{
            {"share_touch",
             "UPDATE wishlist_shares SET updated_at ="
             " to_timestamp($2::bigint / 1000.0) WHERE id = $1::uuid",
             {st.row.share_id, ms(now)}}};
          if (!change.show.empty())
            stmts.push_back(
              {"share_show",
               "DELETE FROM wishlist_share_hidden_items WHERE share_id ="
               " $1::uuid AND wishlist_item_id = ANY($2::text[])",
               {st.row.share_id, id_array(change.show)}});
          if (!change.hide.empty())
            stmts.push_back(
              {"share_hide",
               "INSERT INTO wishlist_share_hidden_items(share_id,"
               " wishlist_item_id) SELECT $1::uuid, unnest($2::text[])"
               " ON CONFLICT DO NOTHING",
               {st.row.share_id, id_array(change.hide)}});
          commit(
            self, std::move(stmts),
            [=](int64_t) mutable {
              auto& st = self->state;
              st.row.hidden = next;
              rp.deliver(make_info(st, visible_count(st, view)));
            },
            [=](const caf::error& err) mutable { rp.deliver(err); });
        },
        [=](const caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](atom::revoke, const std::string& caller, const std::string& wishlist_id,
        request_meta& meta) -> caf::result<atom::ok> {
      auto& st = self->state;
      if (auto err = check_owner(st, caller, wishlist_id))
        return err;
      if (st.row.revoked)
        return atom::ok_v;
      auto rp = self->make_response_promise<atom::ok>();
      with_visible_count(self, [=](int visible) mutable {
        auto& st = self->state;
        if (st.row.revoked) { // a concurrent revoke got there first
          rp.deliver(atom::ok_v);
          return;
        }
        auto now = st.ctx.clock->now_ms();
        commit(
          self,
          {{"share_revoke",
            "UPDATE wishlist_shares SET is_revoked = TRUE,"
            " updated_at = to_timestamp($2::bigint / 1000.0)"
            " WHERE id = $1::uuid AND NOT is_revoked",
            {st.row.share_id, ms(now)}},
           share_events(st,
                        {share_event_json(st, "share_revoked", visible, "",
                                          meta, now)},
                        now)},
          [=](int64_t) mutable {
            self->state.row.revoked = true;
            wake_relay(self->state.ctx);
            rp.deliver(atom::ok_v);
          },
          [=](const caf::error& err) mutable { rp.deliver(err); });
      });
      return rp;
    },
    [=](atom::add, const std::string& recipient, const std::string& product_id,
        request_meta& meta) -> caf::result<item_added> {
      auto& st = self->state;
      if (!st.live(st.ctx.clock->now_ms()))
        return share_gone();
      auto rp = self->make_response_promise<item_added>();
      with_wishlist_for_call(
        self, st.row.wishlist_id,
        [=](const wishlist_view& view) mutable {
          auto& st = self->state;
          auto visible = std::any_of(
            view.items.begin(), view.items.end(), [&](auto& x) {
              return x.item.product_id == product_id
                     && st.row.hidden.count(x.item.wishlist_item_id) == 0;
            });
          if (!visible) {
            rp.deliver(share_gone());
            return;
          }
          // The recipient's item, this share's `items_added + 1` and the
          // share_item_added event commit in one batch, which the
          // recipient's wishlist runs (share_credit_statements): a crash
          // cannot leave an item counted nowhere or an event unwritten, and
          // the add costs one round trip.
          auto now = st.ctx.clock->now_ms();
          share_credit credit{st.row.share_id, st.row.wishlist_id,
                              share_event_json(st, "share_item_added", 1,
                                               recipient, meta, now)};
          // Untimed (see with_wishlist_for_call): the user's add has its
          // own deadlines (its reads and the committer's watchdog), and a
          // late answer still brings the count of an add that committed.
          request_entity(
              self, st.ctx.users, caf::duration{caf::infinite},
              entity_request<user_actor, credited_add>(
                recipient, atom::add_v, product_id, std::move(credit)),
              [=](credited_add& r) mutable {
                // Only a real insert was credited (a product already on the
                // recipient's list is answered as it is, uncounted). The
                // count comes back from the commit: this actor stays the
                // only one that changes its in-memory state. Adds of several
                // recipients commit concurrently and may answer out of
                // order; the count only grows, so the largest is current.
                if (r.added.created)
                  self->state.row.items_added
                    = std::max(self->state.row.items_added, r.items_added);
                rp.deliver(std::move(r.added));
              },
              [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
        },
        [=](const caf::error& err) mutable {
          rp.deliver(is(err, errc::wishlist_not_found) ? share_gone() : err);
        });
      return rp;
    },
    [=](atom::expire) -> caf::result<atom::ok> {
      auto due = [self] {
        auto& st = self->state;
        return st.row.exists && !st.row.revoked && !st.row.expiry_announced
               && st.row.expires_at != 0
               && st.ctx.clock->now_ms() >= st.row.expires_at;
      };
      if (!due())
        return atom::ok_v;
      // Answered when done (announced or not): the sweeper paces itself by
      // the answers, so a mass expiry never floods the database queue.
      auto rp = self->make_response_promise<atom::ok>();
      with_visible_count(self, [=](int visible) mutable {
        if (!due()) {
          rp.deliver(atom::ok_v);
          return;
        }
        auto& st = self->state;
        auto now = st.ctx.clock->now_ms();
        // The flag and the event in one statement: whichever node or
        // activation gets there first writes the event; later ones write
        // nothing, so share_expired goes out exactly once.
        auto payload = share_event_json(st, "share_expired", visible, "", {},
                                        now);
        commit(
          self,
          {{"share_expire",
            "WITH flagged AS (UPDATE wishlist_shares SET"
            " expiry_announced = TRUE,"
            " updated_at = to_timestamp($5::bigint / 1000.0)"
            " WHERE id = $1::uuid AND NOT expiry_announced RETURNING id)"
            " INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
            " payload, created_at) SELECT ($4::json->>'event_id')::uuid, $2,"
            " $3, $6, $4::json, to_timestamp($5::bigint / 1000.0)"
            " FROM flagged",
            {st.row.share_id, social_topic, st.row.wishlist_id, payload,
             ms(now), social_schema}}},
          [=](int64_t) mutable {
            self->state.row.expiry_announced = true;
            wake_relay(self->state.ctx);
            rp.deliver(atom::ok_v);
          },
          [=](const caf::error&) mutable {
            // Left unannounced: the sweeper asks again on its next round.
            rp.deliver(atom::ok_v);
          });
      });
      return rp;
    },
    [=](atom::preview) -> caf::result<std::string> {
      auto& st = self->state;
      if (!st.live(st.ctx.clock->now_ms()) || !st.ctx.renderer)
        return std::string{};
      auto rp = self->make_response_promise<std::string>();
      with_wishlist(
        self, st.row.wishlist_id,
        [=](const wishlist_view& view) mutable {
          auto& st = self->state;
          auto req = preview_of(st, view);
          auto object_key = req.object_key;
          self
            ->request(st.ctx.renderer, st.ctx.db_timeout, atom::lookup_v,
                      object_key, req.cache_key)
            .then(
              [=](bool fresh) mutable {
                if (fresh) {
                  rp.deliver(object_key);
                  return;
                }
                // Not rendered (or stale): show the fallback, render now.
                self->state.preview_key.clear();
                refresh_preview(self, view);
                rp.deliver(std::string{});
              },
              [=](caf::error&) mutable { rp.deliver(std::string{}); });
        },
        [=](const caf::error&) mutable { rp.deliver(std::string{}); });
      return rp;
    },
    [=](atom::stop) { self->quit(); },
  };
}

} // namespace vantage
