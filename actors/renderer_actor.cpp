#include "actors/renderer_actor.hpp"

#include <unordered_map>
#include <vector>

#include "actors/browser_slot_actor.hpp"
#include "actors/io_pool.hpp"
#include "adapters/log.hpp"

namespace vantage {

namespace {

using steady = std::chrono::steady_clock;

struct index_entry {
  std::string cache_key;
  int64_t rendered_at = 0;
  int64_t size_bytes = 0;
};

/// A row of preview_objects.
struct stored_preview {
  std::string object_key;
  index_entry entry;
};

/// What the thumbnails + HTML step hands to the browser step.
struct prepared_card {
  std::string html;
  /// The same card with softened thumbnails, for a capture over the limit.
  std::string compact_html;
  int32_t prepare_ms = 0;
};

struct waiter {
  caf::typed_response_promise<render_result> rp;
  std::string object_key;
};

} // namespace
} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::prepared_card)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<vantage::stored_preview>)

namespace vantage {
namespace {

struct renderer_state {
  renderer_deps deps;
  std::unordered_map<std::string, index_entry> by_object;
  /// cache key -> an object holding a render of it.
  std::unordered_map<std::string, std::string> by_cache;
  /// cache key -> requests waiting for the one render in flight.
  std::unordered_map<std::string, std::vector<waiter>> in_flight;
  static inline const char* name = "renderer";

  bool fresh(const index_entry& e) const {
    return deps.clock->now_ms() - e.rendered_at < deps.ttl.count();
  }
};

using self_ptr = renderer_actor::stateful_pointer<renderer_state>;

int32_t ms_since(steady::time_point t) {
  return static_cast<int32_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t)
      .count());
}

/// One put, retried once (the seed's upload rule).
store_result put_with_retry(object_store& store, const std::string& key,
                            const std::string& png) {
  auto r = store.put(key, png, "image/png");
  if (!r.ok())
    r = store.put(key, png, "image/png");
  return r;
}

/// Stores `png` under `key` (one put, retried once). Blocking.
caf::expected<bool> upload(object_store& store, const std::string& key,
                           const std::string& png) {
  auto put = put_with_retry(store, key, png);
  if (!put.ok())
    return make_error(errc::render_failed, "upload failed: " + put.error);
  return true;
}

/// upload() on a blocking worker.
blocking_task upload_task(std::shared_ptr<object_store> store, std::string key,
                          std::string png) {
  return make_blocking_task<bool>(
    [store = std::move(store), key = std::move(key), png = std::move(png)] {
      return upload(*store, key, png);
    });
}

void finish_render(self_ptr self, const std::string& cache_key,
                   caf::expected<render_result> out);

/// Ends the render of `cache_key` with an error (for `.then` failures).
auto fail_render(self_ptr self, std::string cache_key) {
  return [self, cache_key = std::move(cache_key)](caf::error& err) {
    finish_render(self, cache_key, std::move(err));
  };
}

void remember(self_ptr self, const std::string& object_key, index_entry e) {
  auto& st = self->state;
  st.by_cache[e.cache_key] = object_key;
  st.by_object[object_key] = e;
  self->request(st.deps.io, st.deps.db_timeout,
                make_db_task<bool>([object_key, e](pg_connection& c)
                                     -> caf::expected<bool> {
                  c.exec("preview_upsert",
                         "INSERT INTO preview_objects(object_key, cache_key,"
                         " rendered_at, size_bytes) VALUES ($1, $2,"
                         " to_timestamp($3::bigint / 1000.0), $4::int)"
                         " ON CONFLICT (object_key) DO UPDATE SET"
                         " cache_key = EXCLUDED.cache_key,"
                         " rendered_at = EXCLUDED.rendered_at,"
                         " size_bytes = EXCLUDED.size_bytes",
                         {object_key, e.cache_key, std::to_string(e.rendered_at),
                          std::to_string(e.size_bytes)});
                  return true;
                }))
    .then([](bool) {},
          [object_key](caf::error& err) {
            // The image is stored; only its cache row is missing, which
            // costs one extra render after a restart.
            log_event(log_level::warn, "renderer",
                      "cannot record preview " + object_key + ": "
                        + to_string(err));
          });
}

render_result cached_result(const std::string& object_key,
                            const index_entry& e) {
  render_result r;
  r.object_key = object_key;
  r.cache_key = e.cache_key;
  r.image_size_bytes = e.size_bytes;
  r.rendered_at = e.rendered_at;
  r.cached = true;
  return r;
}

/// Answers `w` from the render stored under `source`: directly when it is
/// the object asked for, else by copying it there (no browser).
void serve_copy(self_ptr self, waiter w, const std::string& source) {
  auto& st = self->state;
  auto entry = st.by_object[source];
  if (w.object_key == source) {
    w.rp.deliver(cached_result(source, entry));
    return;
  }
  auto store = st.deps.store;
  auto started = steady::now();
  self
    ->request(st.deps.blocking, st.deps.db_timeout + st.deps.render_timeout,
              make_blocking_task<bool>([store, source, dst = w.object_key]()
                                         -> caf::expected<bool> {
                auto got = store->get(source);
                if (!got.ok())
                  return make_error(errc::render_failed,
                                    "cannot read " + source + ": " + got.error);
                return upload(*store, dst, got.bytes);
              }))
    .then(
      [=](bool) mutable {
        auto r = cached_result(w.object_key, entry);
        r.upload_ms = ms_since(started);
        r.total_ms = r.upload_ms;
        remember(self, w.object_key, entry);
        w.rp.deliver(std::move(r));
      },
      [=](caf::error& err) mutable { w.rp.deliver(std::move(err)); });
}

void finish_render(self_ptr self, const std::string& cache_key,
                   caf::expected<render_result> out) {
  auto& st = self->state;
  auto waiters = std::move(st.in_flight[cache_key]);
  st.in_flight.erase(cache_key);
  if (!out) {
    if (st.deps.on_failed)
      st.deps.on_failed(out.error());
    for (auto& w : waiters)
      w.rp.deliver(out.error());
    return;
  }
  if (st.deps.on_rendered)
    st.deps.on_rendered(*out);
  for (auto& w : waiters) {
    if (w.object_key == out->object_key)
      w.rp.deliver(*out);
    else
      serve_copy(self, std::move(w), out->object_key);
  }
}

/// The browser step and the upload. A capture over WhatsApp's 600 KB goes
/// once more with softened thumbnails; still over, the render fails (the
/// share keeps the fallback) rather than storing an image unfurlers drop.
void capture_card(self_ptr self, const render_request& req, prepared_card card,
                  steady::time_point started, bool compact) {
  auto& st = self->state;
  auto cache_key = req.cache_key;
  auto fail = fail_render(self, cache_key);
  page_render page;
  page.html = compact ? card.compact_html : card.html;
  page.width = req.width;
  page.height = req.height;
  page.timeout = st.deps.render_timeout;
  auto at_pool = steady::now();
  self
    ->request(st.deps.pool, st.deps.render_timeout * 3 + std::chrono::seconds{20},
              std::move(page))
    .then(
      [=](page_output& out) mutable {
        auto& st = self->state;
        if (out.png.size() > max_preview_png_bytes) {
          if (!compact) {
            capture_card(self, req, std::move(card), started, true);
            return;
          }
          caf::error err = make_error(
            errc::render_failed, "the preview is over 600 KB ("
                                   + std::to_string(out.png.size()) + " bytes)");
          fail(err);
          return;
        }
        render_result r;
        r.object_key = req.object_key;
        r.cache_key = req.cache_key;
        r.image_size_bytes = static_cast<int64_t>(out.png.size());
        r.prepare_ms = card.prepare_ms;
        r.load_ms = out.load_ms;
        r.capture_ms = out.capture_ms;
        r.queue_ms = std::max(0, ms_since(at_pool) - out.load_ms - out.capture_ms);
        auto at_upload = steady::now();
        self
          ->request(st.deps.blocking, st.deps.db_timeout + st.deps.render_timeout,
                    upload_task(st.deps.store, req.object_key,
                                std::move(out.png)))
          .then(
            [=](bool) mutable {
              auto& st = self->state;
              r.upload_ms = ms_since(at_upload);
              r.total_ms = ms_since(started);
              r.rendered_at = st.deps.clock->now_ms();
              remember(self, r.object_key,
                       index_entry{r.cache_key, r.rendered_at,
                                   r.image_size_bytes});
              finish_render(self, cache_key, std::move(r));
            },
            fail);
      },
      fail);
}

void start_render(self_ptr self, render_request req) {
  auto& st = self->state;
  if (st.deps.fault && st.deps.fault->load()) {
    finish_render(self, req.cache_key,
                  make_error(errc::render_failed, "injected fault"));
    return;
  }
  auto started = steady::now();
  auto policy = st.deps.thumbnails;
  auto fail = fail_render(self, req.cache_key);
  self
    ->request(st.deps.blocking, st.deps.render_timeout,
              make_blocking_task<prepared_card>([req, policy] {
                auto t0 = steady::now();
                std::vector<std::string> thumbs;
                for (size_t i = 0; i < req.items.size() && i < 4; ++i)
                  thumbs.push_back(load_thumbnail(req.items[i].image, policy));
                prepared_card card;
                card.html = preview_html(req, thumbs);
                card.compact_html = preview_html(req, thumbs, true);
                card.prepare_ms = ms_since(t0);
                return caf::expected<prepared_card>{std::move(card)};
              }))
    .then(
      [=](prepared_card& card) {
        capture_card(self, req, card, started, false);
      },
      fail);
}

caf::error check_request(const render_request& req) {
  if (req.cache_key.empty() || !valid_object_key(req.object_key))
    return make_error(errc::validation_failed,
                      "a render needs a cache key and a valid object key");
  return caf::none;
}

} // namespace

renderer_actor spawn_renderer(caf::actor_system& sys, renderer_deps deps) {
  return sys.spawn([deps = std::move(deps)](self_ptr self) mutable
                     -> renderer_actor::behavior_type {
    auto& st = self->state;
    st.deps = std::move(deps);
    auto since = st.deps.clock->now_ms() - st.deps.ttl.count();
    // Fresh renders from before a restart: nothing renders twice in the TTL.
    self
      ->request(st.deps.io, st.deps.db_timeout,
                make_db_task<std::vector<stored_preview>>(
                  [since](pg_connection& c)
                    -> caf::expected<std::vector<stored_preview>> {
                    auto rows = c.exec(
                      "preview_index",
                      "SELECT object_key, cache_key,"
                      " (extract(epoch from rendered_at) * 1000)::bigint,"
                      " size_bytes FROM preview_objects WHERE rendered_at >"
                      " to_timestamp($1::bigint / 1000.0)"
                      " ORDER BY rendered_at LIMIT 200000",
                      {std::to_string(since)});
                    std::vector<stored_preview> out;
                    for (int i = 0; i < rows.size(); ++i)
                      out.push_back({rows.str(i, 0),
                                     {rows.str(i, 1), rows.i64(i, 2),
                                      rows.i64(i, 3)}});
                    return out;
                  }))
      .await(
        [self](std::vector<stored_preview>& rows) {
          auto& st = self->state;
          for (auto& row : rows) {
            st.by_cache[row.entry.cache_key] = row.object_key;
            st.by_object[row.object_key] = std::move(row.entry);
          }
        },
        [](caf::error& err) {
          log_event(log_level::warn, "renderer",
                    "starting with an empty preview cache: " + to_string(err));
        });
    return {
      [=](atom::render, render_request& req) -> caf::result<render_result> {
        if (auto err = check_request(req))
          return err;
        auto& st = self->state;
        auto rp = self->make_response_promise<render_result>();
        auto own = st.by_object.find(req.object_key);
        if (own != st.by_object.end() && own->second.cache_key == req.cache_key
            && st.fresh(own->second)) {
          rp.deliver(cached_result(req.object_key, own->second));
          return rp;
        }
        if (auto flight = st.in_flight.find(req.cache_key);
            flight != st.in_flight.end()) {
          flight->second.push_back({rp, req.object_key});
          return rp;
        }
        if (auto other = st.by_cache.find(req.cache_key);
            other != st.by_cache.end()) {
          auto e = st.by_object.find(other->second);
          if (e != st.by_object.end() && e->second.cache_key == req.cache_key
              && st.fresh(e->second)) {
            serve_copy(self, {rp, req.object_key}, other->second);
            return rp;
          }
        }
        st.in_flight[req.cache_key].push_back({rp, req.object_key});
        start_render(self, std::move(req));
        return rp;
      },
      [=](atom::lookup, const std::string& object_key) -> bool {
        return self->state.by_object.count(object_key) > 0;
      },
      [=](atom::lookup, const std::string& object_key,
          const std::string& cache_key) -> bool {
        auto& st = self->state;
        auto it = st.by_object.find(object_key);
        return it != st.by_object.end() && it->second.cache_key == cache_key
               && st.fresh(it->second);
      },
    };
  });
}

} // namespace vantage
