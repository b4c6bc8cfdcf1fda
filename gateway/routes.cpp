// The routes of API.md's "Catalog and wishlists" section plus operations
// endpoints. Each route: parse and validate, one request to a region, map
// the result, reply. No business rules here.

#include <cmath>
#include <fstream>
#include <iterator>

#include "actors/region.hpp"
#include "adapters/ids.hpp"
#include "gateway/gateway_impl.hpp"

namespace vantage {

namespace {

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return false;
  return true;
}

void write_product(json_writer& w, const product& p) {
  w.key("product_id").value(p.product_id)
    .key("name").value(p.name)
    .key("price").money(p.price_cents)
    .key("currency").value(p.currency)
    .key("image_url").value(p.image_url)
    .key("in_stock").value(p.in_stock);
}

std::string product_json(const product& p) {
  json_writer w;
  w.begin_object();
  write_product(w, p);
  w.end_object();
  return w.take();
}

std::string wishlist_json(const wishlist_view& v) {
  json_writer w;
  w.begin_object()
    .key("wishlist_id").value(v.wishlist_id)
    .key("title").value(v.title)
    .key("items").begin_array();
  for (auto& x : v.items) {
    w.begin_object().key("wishlist_item_id").value(x.item.wishlist_item_id);
    write_product(w, x.details);
    w.key("added_at").value(format_iso8601(x.item.added_at)).end_object();
  }
  w.end_array()
    .key("created_at").value(format_iso8601(v.created_at))
    .end_object();
  return w.take();
}

std::string item_added_json(const item_added& a) {
  json_writer w;
  w.begin_object()
    .key("wishlist_item_id").value(a.item.wishlist_item_id)
    .key("product_id").value(a.item.product_id)
    .key("added_at").value(format_iso8601(a.item.added_at))
    .key("wishlist_id").value(a.wishlist_id)
    .end_object();
  return w.take();
}

} // namespace

/// Reads an optional/required string field into `out`, recording problems.
bool string_field(simdjson::dom::object& obj, const char* name, bool required,
                  size_t min_chars, size_t max_chars, std::string& out,
                  std::vector<field_problem>& problems) {
  simdjson::dom::element el;
  if (obj.at_key(name).get(el) != simdjson::SUCCESS || el.is_null()) {
    if (required)
      problems.push_back({name, "is required"});
    return false;
  }
  std::string_view sv;
  if (el.get(sv) != simdjson::SUCCESS) {
    problems.push_back({name, "must be a string"});
    return false;
  }
  auto n = utf8_length(sv);
  if (n < min_chars || (min_chars > 0 && blank(sv))) {
    problems.push_back({name, "must not be empty"});
    return false;
  }
  if (n > max_chars) {
    problems.push_back({name, "must be at most " + std::to_string(max_chars)
                                + " characters"});
    return false;
  }
  out.assign(sv);
  return true;
}

/// Ids in request bodies have the same shape as ids in paths.
bool id_field(simdjson::dom::object& obj, const char* name, std::string& out,
              std::vector<field_problem>& problems) {
  if (!string_field(obj, name, true, 1, 64, out, problems))
    return false;
  if (!plausible_id(out)) {
    problems.push_back({name, "must be 1-64 characters of [A-Za-z0-9_-]"});
    return false;
  }
  return true;
}

void gateway::impl::register_routes() {
  // -- catalog --------------------------------------------------------------------

  route("PUT", "/api/v2/admin/products/{id}", "product_upsert",
        [this](request_scope& rq) {
          auto user = authenticate(rq);
          if (user.account_type != "admin")
            fail(403, "FORBIDDEN", "Admin access required");
          auto id = path_id(rq, 0, 422, "VALIDATION_FAILED", "Product id");
          auto body = json_body(rq);
          std::vector<field_problem> problems;
          product p;
          p.product_id = id;
          string_field(body, "name", true, 1, 200, p.name, problems);
          simdjson::dom::element el;
          double price = 0;
          if (body.at_key("price").get(el) != simdjson::SUCCESS)
            problems.push_back({"price", "is required"});
          else if (el.get(price) != simdjson::SUCCESS || !std::isfinite(price))
            problems.push_back({"price", "must be a number"});
          else if (price < 0 || price > 1e9)
            problems.push_back({"price", "must be between 0 and 1000000000"});
          else {
            p.price_cents = std::llround(price * 100);
            if (std::fabs(price * 100 - static_cast<double>(p.price_cents))
                > 1e-6)
              problems.push_back({"price", "must have at most 2 decimals"});
          }
          if (string_field(body, "currency", true, 3, 3, p.currency, problems))
            for (char c : p.currency)
              if (c < 'A' || c > 'Z') {
                problems.push_back({"currency", "must be an ISO 4217 code"});
                break;
              }
          string_field(body, "image_url", false, 0, 2048, p.image_url,
                       problems);
          if (body.at_key("in_stock").get(el) == simdjson::SUCCESS
              && el.get(p.in_stock) != simdjson::SUCCESS)
            problems.push_back({"in_stock", "must be a boolean"});
          if (!problems.empty())
            fail_validation(problems);
          auto saved = unwrap(ask<product_actor, product>(
            self(), deps.products, id, timeout, atom::put_v, p));
          reply_json(rq, 200, product_json(saved));
        });

  async_route("GET", "/api/v2/products/{id}", "product_get",
              [this](const call_ptr& c) {
                auto id = path_id(*c, 0, 404, "NOT_FOUND", "Product");
                ask_then<product_actor, product>(
                  c, deps.products, id,
                  [this, c](product& p) {
                    answer_json(c, 200, product_json(p));
                  },
                  atom::get_v);
              });

  // -- wishlists (the literal "my" route first: it would match {id}) ------------

  async_route(
    "POST", "/api/v2/wishlists/my/items", "wishlist_my_items_add",
    [this](const call_ptr& c) {
      auto user = verified_bearer(*c);
      auto body = json_body(*c);
      std::vector<field_problem> problems;
      std::string product_id;
      std::string source;
      std::string source_token;
      id_field(body, "product_id", product_id, problems);
      string_field(body, "source", false, 1, 64, source, problems);
      string_field(body, "source_token", false, 1, 64, source_token, problems);
      if (!source.empty() && source != "shared_wishlist")
        problems.push_back({"source", "must be \"shared_wishlist\""});
      if (source == "shared_wishlist" && source_token.empty())
        problems.push_back({"source_token", "is required with source"});
      if (!problems.empty())
        fail_validation(problems);
      ensure_user_then(c, user, [=] {
        auto reply = [this, c](item_added& added) {
          answer_json(c, added.created ? 201 : 200, item_added_json(added));
        };
        if (!source.empty()) {
          // Add-from-share: the share checks the token is live and the
          // product visible in it, adds, and counts it.
          if (!plausible_share_token(source_token))
            fail(404, "SHARE_NOT_FOUND", share_gone_message);
          ask_then<share_actor, item_added>(c, deps.shares, source_token,
                                            reply, atom::add_v, user.user_id,
                                            product_id, meta_of(c->req));
          return;
        }
        ask_then<user_actor, item_added>(c, deps.users, user.user_id, reply,
                                         atom::add_v, product_id);
      });
    });

  route("POST", "/api/v2/wishlists", "wishlist_create",
        [this](request_scope& rq) {
          auto user = authenticate(rq);
          auto body = json_body(rq);
          std::vector<field_problem> problems;
          std::string title;
          string_field(body, "title", true, 1, 200, title, problems);
          if (!problems.empty())
            fail_validation(problems);
          auto view = unwrap(ask<wishlist_actor, wishlist_view>(
            self(), deps.wishlists, new_id("wl_"), timeout, atom::create_v,
            user.user_id, title));
          json_writer w;
          w.begin_object()
            .key("wishlist_id").value(view.wishlist_id)
            .key("title").value(view.title)
            .key("created_at").value(format_iso8601(view.created_at))
            .end_object();
          reply_json(rq, 201, w.take());
        });

  async_route("GET", "/api/v2/wishlists/{id}", "wishlist_get",
              [this](const call_ptr& c) {
                auto user = verified_bearer(*c);
                auto id = path_id(*c, 0, 404, "WISHLIST_NOT_FOUND",
                                  "Wishlist");
                ensure_user_then(c, user, [=] {
                  ask_then<wishlist_actor, wishlist_view>(
                    c, deps.wishlists, id,
                    [this, c](wishlist_view& view) {
                      answer_json(c, 200, wishlist_json(view));
                    },
                    atom::get_v, user.user_id);
                });
              });

  async_route("POST", "/api/v2/wishlists/{id}/items",
              "wishlist_items_add", [this](const call_ptr& c) {
                auto user = verified_bearer(*c);
                auto id = path_id(*c, 0, 404, "WISHLIST_NOT_FOUND",
                                  "Wishlist");
                auto body = json_body(*c);
                std::vector<field_problem> problems;
                std::string product_id;
                id_field(body, "product_id", product_id, problems);
                if (!problems.empty())
                  fail_validation(problems);
                ensure_user_then(c, user, [=] {
                  ask_then<wishlist_actor, item_added>(
                    c, deps.wishlists, id,
                    [this, c](item_added& added) {
                      answer_json(c, added.created ? 201 : 200,
                                  item_added_json(added));
                    },
                    atom::add_v, user.user_id, product_id);
                });
              });

  route("DELETE", "/api/v2/wishlists/{id}/items/{product}",
        "wishlist_items_remove", [this](request_scope& rq) {
          auto user = authenticate(rq);
          auto id = path_id(rq, 0, 404, "WISHLIST_NOT_FOUND", "Wishlist");
          std::string item = rq.path_params[1];
          if (!plausible_id(item))
            fail(404, "NOT_FOUND", "Item does not exist");
          unwrap(ask<wishlist_actor, atom::ok>(self(), deps.wishlists, id,
                                               timeout, atom::remove_v,
                                               user.user_id, item));
          reply_empty(rq, 204);
        });

  register_share_routes();
  register_render_routes();

  // -- operations -------------------------------------------------------------------

  route("GET", "/healthz", "healthz", [this](request_scope& rq) {
    int status = 200;
    auto body = healthz(status);
    reply_json(rq, status, std::move(body));
  });

  route("GET", "/metrics", "metrics", [this](request_scope& rq) {
    rq.res.status = 200;
    rq.res.set_content(deps.metrics->render(),
                       "text/plain; version=0.0.4; charset=utf-8");
  });

  if (deps.advance_clock) {
    route("POST", "/_test/clock/advance", "test_clock_advance",
          [this](request_scope& rq) {
            auto body = json_body(rq);
            int64_t ms = 0;
            if (body.at_key("ms").get(ms) != simdjson::SUCCESS || ms < 0)
              fail_validation({{"ms", "must be a non-negative integer"}});
            deps.advance_clock(std::chrono::milliseconds{ms});
            json_writer w;
            w.begin_object()
              .key("now").value(format_iso8601(deps.clock->now_ms()))
              .end_object();
            reply_json(rq, 200, w.take());
          });
  }

  if (deps.advance_clock && deps.renderer_fault) {
    // Test nodes only (virtual clock): scenario fault injection.
    route("POST", "/_test/faults", "test_faults", [this](request_scope& rq) {
      auto body = json_body(rq);
      std::string renderer;
      std::vector<field_problem> problems;
      string_field(body, "renderer", true, 1, 8, renderer, problems);
      if (problems.empty() && renderer != "down" && renderer != "up")
        problems.push_back({"renderer", "must be down or up"});
      if (!problems.empty())
        fail_validation(problems);
      deps.renderer_fault->store(renderer == "down");
      reply_json(rq, 200, "{\"renderer\":\"" + renderer + "\"}");
    });
  }

  // Product images of the catalog folder (demo thumbnails): plain file
  // names only, so no path leaves the folder.
  route("GET", "/catalog/images/{name:file}", "catalog_image",
        [this](request_scope& rq) {
          auto name = rq.path_params[0];
          auto dot = name.rfind('.');
          auto ext = dot == std::string::npos ? "" : name.substr(dot + 1);
          const char* type = ext == "png"                   ? "image/png"
                             : ext == "jpg" || ext == "jpeg" ? "image/jpeg"
                             : ext == "webp"                 ? "image/webp"
                             : ext == "svg" ? "image/svg+xml"
                                            : "application/octet-stream";
          std::ifstream in{deps.opts.catalog_dir + "/images/" + name,
                           std::ios::binary};
          if (name.front() == '.' || !in)
            fail(404, "NOT_FOUND", "No such image");
          std::string body{std::istreambuf_iterator<char>{in}, {}};
          rq.res.status = 200;
          rq.res.set_header("Cache-Control", "public, max-age=3600");
          rq.res.set_content(std::move(body), type);
        });
}

} // namespace vantage
