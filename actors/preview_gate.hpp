#pragma once

// How the share flow calls the renderer: through a circuit breaker (the
// seed's Resilience4j settings for og-renderer-cb) and within a time budget.
// A caller gets "rendered" when the preview is ready within the budget,
// "pending" when the render goes on in the background, and "fallback" at
// once while the breaker is open or when the render failed. The render's
// outcome always reaches the breaker, also after the caller stopped
// waiting.

#include <chrono>
#include <memory>

#include <caf/all.hpp>

#include "actors/render_pool_actor.hpp"
#include "adapters/circuit_breaker.hpp"
#include "messages/interfaces.hpp"

namespace vantage {

inline constexpr const char* preview_rendered = "rendered";
inline constexpr const char* preview_pending = "pending";
inline constexpr const char* preview_fallback = "fallback";

/// Spawns the gate. It answers `render, render_request, budget_ms (int32)`
/// with the preview status (std::string). `renderer` may be invalid
/// (rendering off): then every answer is "fallback". With `pool`, a caller
/// hears "pending" at once when the pool's current wait and pace say the
/// render cannot finish within its budget.
caf::actor spawn_preview_gate(caf::actor_system& sys, renderer_actor renderer,
                              std::shared_ptr<circuit_breaker> breaker,
                              std::chrono::milliseconds render_wait,
                              std::shared_ptr<render_pool_status> pool = nullptr);

} // namespace vantage
