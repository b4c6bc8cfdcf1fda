#include "actors/clock_timers.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "messages/type_ids.hpp"

namespace vantage {

namespace {

struct timers_state {
  std::shared_ptr<const clock_source> clock;
  std::multimap<int64_t, std::pair<caf::actor, caf::message>> due;
  /// Identifies the one self-wake-up that counts; older ones are ignored,
  /// so re-arming never piles up messages.
  uint64_t wake_generation = 0;
  static inline const char* name = "clock_timers";

  void fire_due() {
    auto now = clock->now_ms();
    while (!due.empty() && due.begin()->first <= now) {
      auto node = due.extract(due.begin());
      auto& [target, msg] = node.mapped();
      caf::anon_send(target, std::move(msg));
    }
  }
};

using self_ptr = caf::stateful_actor<timers_state>*;

/// Wakes the service when the earliest deadline should have come. On a
/// virtual clock the wake-up finds nothing due (time moves only by
/// advances, which tick explicitly); the cap keeps such probes rare.
void arm(self_ptr self) {
  auto& st = self->state;
  auto gen = ++st.wake_generation;
  if (st.due.empty())
    return;
  auto wait_ms = std::clamp<int64_t>(st.due.begin()->first
                                       - st.clock->now_ms(),
                                     1, 60'000);
  self->delayed_send(self, std::chrono::milliseconds{wait_ms}, atom::tick_v,
                     gen);
}

caf::behavior timers_actor(self_ptr self,
                           std::shared_ptr<const clock_source> clock) {
  self->state.clock = std::move(clock);
  return {
    [=](atom::schedule, int64_t deadline_ms, caf::actor& target,
        caf::message& msg) {
      auto& st = self->state;
      bool earliest = st.due.empty() || deadline_ms < st.due.begin()->first;
      st.due.emplace(deadline_ms, std::make_pair(std::move(target),
                                                 std::move(msg)));
      if (earliest) {
        st.fire_due();
        arm(self);
      }
    },
    [=](atom::tick) {
      self->state.fire_due();
      arm(self);
      return atom::ok_v;
    },
    [=](atom::tick, uint64_t generation) {
      if (generation != self->state.wake_generation)
        return;
      self->state.fire_due();
      arm(self);
    },
  };
}

} // namespace

caf::actor spawn_clock_timers(caf::actor_system& sys,
                              std::shared_ptr<const clock_source> clock) {
  return sys.spawn(timers_actor, std::move(clock));
}

} // namespace vantage
