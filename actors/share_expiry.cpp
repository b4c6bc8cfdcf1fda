#include "actors/share_expiry.hpp"

#include <algorithm>
#include <vector>

#include "actors/io_pool.hpp"

namespace vantage {

namespace {

/// One sweep's findings: tokens due now, and the next deadline (0: none).
struct due_shares {
  std::vector<std::string> tokens;
  /// Expiry of the last token (ms), where the next page starts.
  int64_t last_expiry_ms = 0;
  int64_t next_deadline_ms = 0;
};

} // namespace
} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::due_shares)

namespace vantage {

namespace {

constexpr int sweep_batch = 500;
/// Shares announcing their expiry at once: each activation and commit is a
/// database job, and a mass expiry (a month of shares due after an outage,
/// or a clock jump) must leave the queue to live traffic.
constexpr size_t expiries_in_flight = 8;

struct expiry_state {
  entity_context ctx;
  std::chrono::milliseconds max_interval{60000};
  /// The earliest deadline a timer is already set for (0: none).
  int64_t armed_for = 0;
  bool sweeping = false;
  bool sweep_again = false;
  /// Within one sweep, the (expiry, token) after which the next page
  /// starts: expire messages are asynchronous, so re-reading from the
  /// start would send the same tokens again.
  int64_t cursor_expiry_ms = 0;
  std::string cursor_token;
  /// The page being announced: tokens not yet sent, answers outstanding,
  /// and what to do once all are answered.
  std::vector<std::string> to_expire;
  size_t in_flight = 0;
  bool page_was_full = false;
  int64_t next_deadline_ms = 0;
  static inline const char* name = "share_expiry";
};

using self_ptr = caf::stateful_actor<expiry_state>*;

void arm(self_ptr self, int64_t deadline) {
  auto& st = self->state;
  if (st.armed_for != 0 && st.armed_for <= deadline)
    return;
  st.armed_for = deadline;
  caf::anon_send(st.ctx.timers, atom::schedule_v, deadline,
                 caf::actor_cast<caf::actor>(self),
                 caf::make_message(atom::tick_v));
}

void sweep(self_ptr self);

/// What follows a page once every share of it answered.
void page_done(self_ptr self) {
  auto& st = self->state;
  st.sweeping = false;
  // A full page means more are due: the next page, at once.
  if (st.page_was_full) {
    sweep(self);
    return;
  }
  st.cursor_expiry_ms = 0;
  st.cursor_token.clear();
  if (st.sweep_again) {
    st.sweep_again = false;
    sweep(self);
    return;
  }
  auto next = st.ctx.clock->now_ms() + st.max_interval.count();
  if (st.next_deadline_ms > 0)
    next = std::min(next, st.next_deadline_ms);
  arm(self, next);
}

/// Sends the page's expire messages, a few at a time.
void announce(self_ptr self) {
  auto& st = self->state;
  while (st.in_flight < expiries_in_flight && !st.to_expire.empty()) {
    auto token = std::move(st.to_expire.back());
    st.to_expire.pop_back();
    ++st.in_flight;
    auto settled = [self] {
      --self->state.in_flight;
      announce(self);
    };
    self
      ->request(st.ctx.shares.actor, st.ctx.db_timeout * 4,
                envelope{std::move(token), caf::make_message(atom::expire_v)})
      .then([settled](atom::ok) { settled(); },
            [settled](caf::error&) { settled(); });
  }
  if (st.in_flight == 0 && st.to_expire.empty())
    page_done(self);
}

void sweep(self_ptr self) {
  auto& st = self->state;
  if (st.sweeping) {
    st.sweep_again = true;
    return;
  }
  st.sweeping = true;
  auto now = st.ctx.clock->now_ms();
  auto after_ms = st.cursor_expiry_ms;
  auto after_token = st.cursor_token;
  self
    ->request(st.ctx.io, st.ctx.db_timeout,
              make_db_task<due_shares>(
                [now, after_ms, after_token](
                  pg_connection& c) -> caf::expected<due_shares> {
                  due_shares out;
                  auto rows = c.exec(
                    "expiry_due",
                    "SELECT share_token,"
                    " (extract(epoch from expires_at) * 1000)::bigint"
                    " FROM wishlist_shares"
                    " WHERE expires_at IS NOT NULL AND NOT expiry_announced"
                    " AND NOT is_revoked"
                    " AND expires_at <= to_timestamp($1::bigint / 1000.0)"
                    " AND (expires_at, share_token) >"
                    " (to_timestamp($3::bigint / 1000.0), $4)"
                    " ORDER BY expires_at, share_token LIMIT $2",
                    {std::to_string(now), std::to_string(sweep_batch),
                     std::to_string(after_ms), after_token});
                  for (int i = 0; i < rows.size(); ++i)
                    out.tokens.push_back(rows.str(i, 0));
                  if (!rows.empty())
                    out.last_expiry_ms = rows.i64(rows.size() - 1, 1);
                  auto next = c.exec(
                    "expiry_next",
                    "SELECT coalesce((extract(epoch from min(expires_at))"
                    " * 1000)::bigint, 0) FROM wishlist_shares"
                    " WHERE expires_at IS NOT NULL AND NOT expiry_announced"
                    " AND NOT is_revoked"
                    " AND expires_at > to_timestamp($1::bigint / 1000.0)",
                    {std::to_string(now)});
                  out.next_deadline_ms = next.i64(0, 0);
                  return out;
                }))
    .then(
      [=](due_shares& due) {
        auto& st = self->state;
        st.page_was_full = due.tokens.size() == sweep_batch;
        if (st.page_was_full) {
          st.cursor_expiry_ms = due.last_expiry_ms;
          st.cursor_token = due.tokens.back();
        }
        st.next_deadline_ms = due.next_deadline_ms;
        st.to_expire = std::move(due.tokens);
        std::reverse(st.to_expire.begin(), st.to_expire.end());
        announce(self);
      },
      [=](caf::error&) {
        // PostgreSQL away: try again after the interval.
        auto& st = self->state;
        st.sweeping = false;
        st.cursor_expiry_ms = 0;
        st.cursor_token.clear();
        arm(self, st.ctx.clock->now_ms() + st.max_interval.count());
      });
}

caf::behavior expiry_actor(self_ptr self, entity_context ctx,
                           std::chrono::milliseconds max_interval) {
  self->state.ctx = std::move(ctx);
  self->state.max_interval = max_interval;
  sweep(self);
  return {
    [=](atom::tick) {
      self->state.armed_for = 0;
      sweep(self);
    },
    [=](atom::schedule, int64_t deadline_ms) { arm(self, deadline_ms); },
  };
}

} // namespace

caf::actor spawn_share_expiry(caf::actor_system& sys, entity_context ctx,
                              std::chrono::milliseconds max_interval) {
  return sys.spawn(expiry_actor, std::move(ctx), max_interval);
}

} // namespace vantage
