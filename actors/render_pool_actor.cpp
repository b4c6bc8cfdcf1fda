#include "actors/render_pool_actor.hpp"

#include <deque>

#include "adapters/log.hpp"
#include "messages/type_ids.hpp"

namespace vantage {

int32_t render_pool_status::busy_pages() const {
  int32_t n = 0;
  for (auto& s : slots)
    n += s->busy;
  return n;
}

int32_t render_pool_status::available_pages() const {
  int32_t n = 0;
  for (auto& s : slots)
    n += s->pages_ready;
  return n;
}

int64_t render_pool_status::browsers_pss_bytes() const {
  int64_t n = 0;
  for (auto& s : slots)
    for (int32_t pid : {s->pid.load(), s->other_pid.load()})
      if (pid > 0)
        n += process_group_pss_bytes(pid);
  return n;
}

namespace {

using steady = std::chrono::steady_clock;

struct queued_render {
  caf::response_promise rp;
  page_render req;
  steady::time_point enqueued;
  bool retried = false;
  /// The slot whose browser was lost under the first try.
  int avoid = -1;
};

struct pool_state {
  render_pool_options opts;
  std::shared_ptr<render_pool_status> status;
  std::vector<caf::actor> slots;
  /// Pages of each slot not handed a render by us.
  std::vector<int> free;
  std::deque<queued_render> queue;
  bool ticking = false;
  /// Moving average of a page's time per render (dispatch to answer), ms.
  double page_ms = 0;
  static inline const char* name = "render_pool";
};

using pool_actor = caf::stateful_actor<pool_state>;

/// The slot to use next: a free page, preferring slots whose pages are warm
/// (a restarting browser keeps its capacity but would make the render wait),
/// then the emptiest; the avoided slot only when nothing else is free.
int pick_slot(pool_state& st, int avoid) {
  int best = -1;
  int best_score = -1;
  for (size_t i = 0; i < st.slots.size(); ++i) {
    if (st.free[i] <= 0)
      continue;
    int score = (static_cast<int>(i) != avoid ? 1000 : 0)
                + (st.status->slots[i]->pages_ready > 0 ? 100 : 0) + st.free[i];
    if (score > best_score) {
      best = static_cast<int>(i);
      best_score = score;
    }
  }
  return best;
}

void pump(pool_actor* self);

/// How long a request with `ahead` requests before it waits for a page, at
/// the pages' current pace (ms).
double expected_wait_ms(const pool_state& st, size_t ahead) {
  return static_cast<double>(ahead) * st.page_ms
         / std::max(1, st.status->total_pages());
}

void dispatch(pool_actor* self, int slot, queued_render job) {
  auto& st = self->state;
  --st.free[static_cast<size_t>(slot)];
  // The slot enforces the render timeout; this bound only catches a slot
  // that never answers at all.
  auto bound = job.req.timeout + st.opts.slot.start_timeout
               + std::chrono::seconds{5};
  auto req = job.req;
  auto sent = steady::now();
  self->request(st.slots[static_cast<size_t>(slot)], bound, std::move(req))
    .then(
      [=](page_output& out) mutable {
        auto& st = self->state;
        ++st.free[static_cast<size_t>(slot)];
        double ms = std::chrono::duration<double, std::milli>(steady::now()
                                                              - sent)
                      .count();
        st.page_ms = st.page_ms == 0 ? ms : 0.9 * st.page_ms + 0.1 * ms;
        job.rp.deliver(std::move(out));
        pump(self);
      },
      [=](caf::error& err) mutable {
        auto& st = self->state;
        ++st.free[static_cast<size_t>(slot)];
        if (is_browser_lost(err) && !job.retried) {
          ++st.status->retries;
          job.retried = true;
          job.avoid = slot;
          st.queue.push_front(std::move(job));
        } else {
          job.rp.deliver(std::move(err));
        }
        pump(self);
      });
}

void expire_waiting(pool_actor* self) {
  auto& st = self->state;
  auto now = steady::now();
  for (auto it = st.queue.begin(); it != st.queue.end();) {
    // A retry keeps its place even if the first try used up the wait.
    if (!it->retried && now - it->enqueued > st.opts.queue_wait) {
      ++st.status->rejected_wait;
      it->rp.deliver(make_error(
        errc::pool_exhausted,
        "no render slot became free within "
          + std::to_string(st.opts.queue_wait.count()) + " ms"));
      it = st.queue.erase(it);
    } else {
      ++it;
    }
  }
}

void pump(pool_actor* self) {
  auto& st = self->state;
  expire_waiting(self);
  while (!st.queue.empty()) {
    int slot = pick_slot(st, st.queue.front().avoid);
    if (slot < 0)
      break;
    auto job = std::move(st.queue.front());
    st.queue.pop_front();
    dispatch(self, slot, std::move(job));
  }
  st.status->queued = static_cast<int32_t>(st.queue.size());
  st.status->page_ms = static_cast<int32_t>(st.page_ms);
  st.status->expected_wait_ms
    = static_cast<int32_t>(expected_wait_ms(st, st.queue.size()));
  if (!st.queue.empty() && !st.ticking) {
    st.ticking = true;
    self->delayed_send(self, std::chrono::milliseconds{50}, atom::tick_v);
  }
}

caf::behavior render_pool(pool_actor* self, render_pool_options opts,
                          std::shared_ptr<render_pool_status> status) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.status = std::move(status);
  for (int i = 0; i < st.opts.browsers; ++i) {
    auto s = st.status->slots[static_cast<size_t>(i)];
    auto slot = spawn_browser_slot(self->system(), i, st.opts.slot, s);
    self->link_to(slot);
    st.slots.push_back(slot);
    st.free.push_back(std::max(1, st.opts.slot.pages));
  }
  return {
    [=](page_render& req) -> caf::response_promise {
      auto& st = self->state;
      auto rp = self->make_response_promise();
      // Refused at once when it could not get a page within the wait
      // anyway: the queue is full, or at the pages' current pace the
      // requests ahead of it take longer than the wait. Waiting 2 s for a
      // certain 503 helps no one, and accepted requests stay fast.
      if (static_cast<int>(st.queue.size()) >= st.opts.queue_limit
          || expected_wait_ms(st, st.queue.size() + 1)
               > static_cast<double>(st.opts.queue_wait.count())) {
        ++st.status->rejected_full;
        rp.deliver(make_error(errc::pool_exhausted,
                              "the render queue is full; try again shortly"));
        return rp;
      }
      st.queue.push_back({rp, std::move(req), steady::now()});
      pump(self);
      return rp;
    },
    [=](atom::tick) {
      self->state.ticking = false;
      pump(self);
    },
  };
}

} // namespace

caf::actor spawn_render_pool(caf::actor_system& sys, render_pool_options opts,
                             std::shared_ptr<render_pool_status> status) {
  // Filled before the actor runs: readers (metrics) see it complete.
  status->pages_per_browser = std::max(1, opts.slot.pages);
  opts.slot.recycle_turns = std::make_shared<recycle_gate>();
  for (int i = 0; i < opts.browsers; ++i)
    status->slots.push_back(std::make_shared<slot_status>());
  return sys.spawn(render_pool, std::move(opts), std::move(status));
}

} // namespace vantage
