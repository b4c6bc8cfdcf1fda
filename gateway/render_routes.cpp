// The renderer's routes (API.md "Renderer"): POST /render with the seed
// trace's body and answer, and the share preview image. The rendering
// itself lives in actors/renderer_actor.cpp.

#include "adapters/ids.hpp"
#include "adapters/preview_fallback.hpp"
#include "adapters/preview_template.hpp"
#include "gateway/gateway_impl.hpp"

namespace vantage {

namespace {

/// More tiles than a card shows are accepted (only 4 are drawn), within
/// reason.
constexpr size_t max_render_items = 100;
constexpr int32_t min_side = 200;
constexpr int32_t max_side = 2400;

/// Object field `name` into `out`; false (with a problem when required or
/// of the wrong type) when there is none.
bool object_field(simdjson::dom::object& body, const char* name, bool required,
                  simdjson::dom::object& out,
                  std::vector<field_problem>& problems) {
  simdjson::dom::element el;
  if (body.at_key(name).get(el) != simdjson::SUCCESS || el.is_null()) {
    if (required)
      problems.push_back({name, "is required"});
    return false;
  }
  if (el.get(out) != simdjson::SUCCESS) {
    problems.push_back({name, "must be an object"});
    return false;
  }
  return true;
}

int32_t side_field(simdjson::dom::object& output, const char* name,
                   std::vector<field_problem>& problems) {
  simdjson::dom::element el;
  if (output.at_key(name).get(el) != simdjson::SUCCESS)
    return name[0] == 'w' ? 1200 : 630;
  int64_t v = 0;
  if (!el.is_int64() || el.get(v) != simdjson::SUCCESS || v < min_side
      || v > max_side) {
    problems.push_back({std::string{"output."} + name,
                        "must be an integer from 200 to 2400"});
    return 0;
  }
  return static_cast<int32_t>(v);
}

} // namespace

/// The body of POST /render as a render request; records problems.
render_request gateway::impl::parse_render(simdjson::dom::object& body,
                                           std::vector<field_problem>& problems) {
  render_request req;
  string_field(body, "template", true, 1, 64, req.template_name, problems);
  if (!req.template_name.empty() && req.template_name != preview_template_name)
    problems.push_back({"template", "unknown template (known: wishlist-share)"});
  simdjson::dom::object data;
  if (!object_field(body, "data", true, data, problems) || !problems.empty())
    return req;
  {
    string_field(data, "wishlist_title", true, 1, 1000, req.wishlist_title,
                 problems);
    string_field(data, "owner_name", true, 1, 200, req.owner_name, problems);
    simdjson::dom::element el;
    if (data.at_key("item_count").get(el) == simdjson::SUCCESS) {
      int64_t n = 0;
      if (!el.is_int64() || el.get(n) != simdjson::SUCCESS || n < 0
          || n > 1000000)
        problems.push_back({"data.item_count",
                            "must be a non-negative integer"});
      else
        req.item_count = n;
    }
    simdjson::dom::array items;
    if (data.at_key("items").get(el) == simdjson::SUCCESS && !el.is_null()) {
      if (el.get(items) != simdjson::SUCCESS)
        problems.push_back({"data.items", "must be an array"});
      else if (items.size() > max_render_items)
        problems.push_back({"data.items",
                            "must have at most "
                              + std::to_string(max_render_items) + " items"});
      else
        for (auto x : items) {
          simdjson::dom::object item;
          if (x.get(item) != simdjson::SUCCESS) {
            problems.push_back({"data.items", "must hold objects"});
            break;
          }
          render_item ri;
          string_field(item, "name", true, 1, 300, ri.name, problems);
          string_field(item, "image", false, 0, 2048, ri.image, problems);
          string_field(item, "price", false, 0, 64, ri.price, problems);
          req.items.push_back(std::move(ri));
          if (!problems.empty())
            break;
        }
    }
    if (data.at_key("item_count").get(el) != simdjson::SUCCESS)
      req.item_count = static_cast<int64_t>(req.items.size());
  }
  simdjson::dom::object output;
  if (object_field(body, "output", false, output, problems)) {
    std::string format = "png";
    string_field(output, "format", false, 1, 16, format, problems);
    if (format != "png")
      problems.push_back({"output.format", "must be png"});
    req.width = side_field(output, "width", problems);
    req.height = side_field(output, "height", problems);
  }
  // Optional routing fields (our additions to the seed's body): the share
  // the image is for, and the wishlist content that makes its cache key.
  std::string token;
  if (string_field(body, "share_token", false, 0, 64, token, problems)
      && !plausible_share_token(token))
    problems.push_back({"share_token", "must be a share token"});
  std::string wishlist_id;
  string_field(data, "wishlist_id", false, 0, 64, wishlist_id, problems);
  if (!wishlist_id.empty()) {
    std::vector<std::string> ids;
    simdjson::dom::element el;
    simdjson::dom::array arr;
    if (data.at_key("item_ids").get(el) == simdjson::SUCCESS
        && el.get(arr) == simdjson::SUCCESS)
      for (auto x : arr) {
        std::string_view sv;
        if (x.get(sv) == simdjson::SUCCESS)
          ids.emplace_back(sv);
      }
    req.cache_key = share_preview_cache_key(wishlist_id, std::move(ids));
  } else {
    req.cache_key = content_cache_key(req);
  }
  req.object_key = token.empty()
                     ? "social/renders/" + req.cache_key.substr(7) + ".png"
                     : "social/" + token + "/preview.png";
  return req;
}

bool gateway::impl::rendered_once(const std::string& token) {
  bool known = false;
  self()
    ->request(deps.renderer, timeout, atom::lookup_v,
              "social/" + token + "/preview.png")
    .receive([&](bool b) { known = b; }, [](caf::error&) {});
  return known;
}

void gateway::impl::answer_render(const call_ptr& c, const render_result& r) {
  auto age_s = (deps.clock->now_ms() - r.rendered_at) / 1000;
  json_writer w;
  w.begin_object()
    .key("image_url").value(cdn_base() + "/" + r.object_key)
    .key("cache_key").value(r.cache_key)
    .key("cache_ttl_seconds")
    .value(std::max<int64_t>(0, deps.opts.preview_ttl_s - age_s))
    .key("render_time_ms").value(static_cast<int64_t>(r.total_ms))
    .key("image_size_bytes").value(r.image_size_bytes)
    .key("cached").value(r.cached)
    .key("timings_ms").begin_object()
    .key("queue").value(r.queue_ms)
    .key("prepare").value(r.prepare_ms)
    .key("load").value(r.load_ms)
    .key("capture").value(r.capture_ms)
    .key("upload").value(r.upload_ms)
    .end_object()
    .end_object();
  c->res.set_header("X-Render-Time-Ms", std::to_string(r.total_ms));
  answer_json(c, 200, w.take());
}

void gateway::impl::register_render_routes() {
  // On the loop, not the blocking pool: a burst must reach the render
  // pool, whose admission refuses at once what could not get a page within
  // its wait. Queued behind the blocking pool's threads, requests waited
  // there unbounded and unseen (a burst of 500: every one accepted, p99
  // 35 s).
  async_route("POST", "/render", "render", [this](const call_ptr& c) {
    auto body = json_body(*c);
    std::vector<field_problem> problems;
    auto req = parse_render(body, problems);
    if (!problems.empty())
      fail_validation(problems);
    if (!deps.renderer)
      fail(503, "SERVICE_UNAVAILABLE", "Rendering is off on this node");
    // A render may wait for a page, run, and run once more after a lost
    // browser.
    arm_deadline(c, std::chrono::milliseconds{deps.opts.render_timeout_ms * 3
                                              + deps.opts.render_queue_wait_ms
                                              + 5000});
    c->exchange->self()
      ->request(deps.renderer, caf::infinite, atom::render_v, std::move(req))
      .then(
        [this, c](render_result& r) {
          if (!c->answered)
            guarded(c, [&] { answer_render(c, r); });
        },
        [this, c](caf::error& err) {
          if (c->answered)
            return;
          if (is(err, errc::pool_exhausted))
            c->res.set_header("Retry-After", "1"); // a page frees up within seconds
          answer_error(c, err);
        });
  });

  route("GET", "/social/{token}/preview.png", "share_preview",
        [this](request_scope& rq) {
          auto token = rq.path_params[0];
          if (!plausible_share_token(token) && token != "default")
            fail(404, "NOT_FOUND", "No such preview");
          std::string object_key;
          if (token != "default" && deps.renderer) {
            // A token with no render yet may be a probe: it counts against
            // the address's lookup limit, like the view routes.
            if (!rendered_once(token))
              apply_limit(rq, limiter->check_share_lookup(
                                client_address(rq.req), deps.clock->now_ms()));
            auto r = ask<share_actor, std::string>(self(), deps.shares, token,
                                                   timeout, atom::preview_v);
            if (r)
              object_key = std::move(*r);
          }
          if (!object_key.empty() && deps.store) {
            auto got = deps.store->get(object_key);
            if (got.ok()) {
              rq.res.status = 200;
              rq.res.set_header("Cache-Control", "public, max-age=300");
              rq.res.set_content(std::move(got.bytes), "image/png");
              return;
            }
          }
          // Not rendered yet (or rendering is off): the generic card, with
          // a short max-age so the real preview replaces it soon.
          rq.res.status = 200;
          rq.res.set_header("Cache-Control", "public, max-age=60");
          rq.res.set_content(fallback_preview_png(), "image/png");
        });

  // The fallback under its contract key, for CDNs pointed at the gateway.
  route("GET", "/social/default/wishlist-share-preview.png",
        "share_preview_default", [this](request_scope& rq) {
          rq.res.status = 200;
          rq.res.set_header("Cache-Control", "public, max-age=86400");
          rq.res.set_content(fallback_preview_png(), "image/png");
        });

  route("GET", "/social/renders/{hash:sha256}.png", "render_image",
        [this](request_scope& rq) {
          auto got = deps.store
                       ? deps.store->get("social/renders/"
                                         + rq.path_params[0] + ".png")
                       : store_result{};
          if (!got.ok())
            fail(404, "NOT_FOUND", "No such image");
          rq.res.status = 200;
          rq.res.set_header("Cache-Control", "public, max-age=86400");
          rq.res.set_content(std::move(got.bytes), "image/png");
        });
}

} // namespace vantage
