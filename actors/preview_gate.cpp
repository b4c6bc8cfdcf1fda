#include "actors/preview_gate.hpp"

#include <unordered_map>

namespace vantage {

namespace {

using steady = std::chrono::steady_clock;

struct gate_state {
  renderer_actor renderer;
  std::shared_ptr<circuit_breaker> breaker;
  std::chrono::milliseconds render_wait{0};
  std::shared_ptr<render_pool_status> pool;
  uint64_t next = 0;
  /// Callers still waiting, by call number.
  std::unordered_map<uint64_t, caf::response_promise> waiting;
  static inline const char* name = "preview_gate";
};

using gate_actor = caf::stateful_actor<gate_state>;

void answer(gate_actor* self, uint64_t id, const char* status) {
  auto it = self->state.waiting.find(id);
  if (it == self->state.waiting.end())
    return;
  auto rp = std::move(it->second);
  self->state.waiting.erase(it);
  rp.deliver(std::string{status});
}

caf::behavior preview_gate(gate_actor* self, renderer_actor renderer,
                           std::shared_ptr<circuit_breaker> breaker,
                           std::chrono::milliseconds render_wait,
                           std::shared_ptr<render_pool_status> pool) {
  self->state.pool = std::move(pool);
  self->state.renderer = std::move(renderer);
  self->state.breaker = std::move(breaker);
  self->state.render_wait = render_wait;
  return {
    [=](atom::render, render_request& req,
        int32_t budget_ms) -> caf::response_promise {
      auto& st = self->state;
      auto rp = self->make_response_promise();
      if (!st.renderer || !st.breaker->try_acquire()) {
        rp.deliver(std::string{preview_fallback});
        return rp;
      }
      auto id = ++st.next;
      st.waiting.emplace(id, rp);
      auto started = steady::now();
      auto breaker = st.breaker;
      self->request(st.renderer, st.render_wait, atom::render_v, std::move(req))
        .then(
          [=](render_result&) {
            breaker->on_success(std::chrono::duration_cast<
                                std::chrono::milliseconds>(steady::now()
                                                           - started));
            answer(self, id, preview_rendered);
          },
          [=](caf::error&) {
            breaker->on_failure(std::chrono::duration_cast<
                                std::chrono::milliseconds>(steady::now()
                                                           - started));
            answer(self, id, preview_fallback);
          });
      if (st.pool && st.pool->expected_wait_ms + st.pool->page_ms > budget_ms) {
        answer(self, id, preview_pending); // it cannot make it: do not wait
        return rp;
      }
      self->delayed_send(self, std::chrono::milliseconds{std::max(0, budget_ms)},
                         atom::tick_v, id);
      return rp;
    },
    [=](atom::tick, uint64_t id) { answer(self, id, preview_pending); },
  };
}

} // namespace

caf::actor spawn_preview_gate(caf::actor_system& sys, renderer_actor renderer,
                              std::shared_ptr<circuit_breaker> breaker,
                              std::chrono::milliseconds render_wait,
                              std::shared_ptr<render_pool_status> pool) {
  return sys.spawn(preview_gate, std::move(renderer), std::move(breaker),
                   render_wait, std::move(pool));
}

} // namespace vantage
