#pragma once

// The preview renderer of a node: cache, de-duplication and the pipeline
// around the browser pool. A request whose content (cache key) has a fresh
// image under its object key is answered at once; one whose content was
// rendered for another key gets a copy (no browser); identical requests in
// flight share one render. Otherwise: thumbnails + HTML on the blocking
// pool, a page of the render pool, upload (retried once), and a row in
// preview_objects so the cache survives restarts.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include <caf/all.hpp>

#include "adapters/clock.hpp"
#include "adapters/object_store.hpp"
#include "adapters/preview_template.hpp"
#include "messages/interfaces.hpp"

namespace vantage {

struct renderer_deps {
  /// actors/render_pool_actor.hpp
  caf::actor pool;
  /// spawn_blocking_pool: thumbnails, HTML and object store I/O.
  caf::actor blocking;
  /// The database pool (preview_objects).
  caf::actor io;
  std::shared_ptr<object_store> store;
  std::shared_ptr<const clock_source> clock;
  thumbnail_policy thumbnails;
  /// VANTAGE_PREVIEW_TTL_S (86400).
  std::chrono::milliseconds ttl{std::chrono::hours{24}};
  /// RENDER_TIMEOUT_MS (5000).
  std::chrono::milliseconds render_timeout{5000};
  std::chrono::milliseconds db_timeout{2000};
  /// Fault injection for test nodes: while true every render fails.
  std::shared_ptr<std::atomic<bool>> fault;
  /// Called after every answer that ran a browser (for metrics).
  std::function<void(const render_result&)> on_rendered;
  /// Called with every failed render.
  std::function<void(const caf::error&)> on_failed;
};

/// Spawns the renderer; it loads the cache index of fresh renders first.
renderer_actor spawn_renderer(caf::actor_system& sys, renderer_deps deps);

} // namespace vantage
