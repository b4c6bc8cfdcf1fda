// The routes of API.md's "Shares" section: create, list, hide/show, revoke,
// the JSON and HTML views, the preview image, and the rate limits in front
// of them. Each route: parse and validate, ask the share (or wishlist)
// actor, map the result, reply. The rules live in actors/share_actor.cpp.

#include <algorithm>

#include "actors/region.hpp"
#include "adapters/ids.hpp"
#include "adapters/event_loop.hpp"
#include "gateway/gateway_impl.hpp"
#include "gateway/share_page.hpp"

namespace vantage {

namespace {

constexpr const char* channels[]
  = {"link", "copy_link", "email", "facebook", "twitter", "whatsapp"};
/// More hidden items than any wishlist sensibly has: refused before any
/// lookup, so a huge list costs nothing.
constexpr size_t max_item_ids = 1000;
constexpr size_t max_message_chars = 500;

/// Reads an optional array of item ids; records problems.
std::vector<std::string> item_ids(simdjson::dom::object& body,
                                  const char* name,
                                  std::vector<field_problem>& problems) {
  std::vector<std::string> out;
  simdjson::dom::element el;
  if (body.at_key(name).get(el) != simdjson::SUCCESS || el.is_null())
    return out;
  simdjson::dom::array arr;
  if (el.get(arr) != simdjson::SUCCESS) {
    problems.push_back({name, "must be an array of wishlist item ids"});
    return out;
  }
  if (arr.size() > max_item_ids) {
    problems.push_back({name, "must have at most "
                                + std::to_string(max_item_ids) + " items"});
    return out;
  }
  for (auto x : arr) {
    std::string_view sv;
    if (x.get(sv) != simdjson::SUCCESS || !plausible_id(std::string{sv})) {
      problems.push_back({name, "must hold wishlist item ids (strings)"});
      return {};
    }
    out.emplace_back(sv);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string clipped_header(const httplib::Request& req, const char* name,
                           size_t max) {
  auto v = req.get_header_value(name);
  if (v.size() > max)
    v.resize(max);
  return v;
}

} // namespace

std::string gateway::impl::public_base() const {
  if (!deps.opts.public_base_url.empty())
    return deps.opts.public_base_url;
  return "http://localhost:" + std::to_string(bound_port.load());
}

std::string gateway::impl::share_url(const std::string& token) const {
  return public_base() + "/wishlists/shared/" + token;
}

std::string gateway::impl::cdn_base() const {
  return deps.opts.cdn_base_url.empty() ? public_base()
                                        : deps.opts.cdn_base_url;
}

std::string gateway::impl::preview_url(const std::string& token) const {
  return cdn_base() + "/social/" + token + "/preview.png";
}

request_meta gateway::impl::meta_of(const httplib::Request& req) const {
  request_meta m;
  m.user_agent = clipped_header(req, "User-Agent", 512);
  m.referrer = clipped_header(req, "Referer", 2048);
  // Set by CDNs in front of us (Cloudflare's name); trusted only when the
  // forwarded headers are.
  auto country = req.get_header_value("CF-IPCountry");
  if (deps.opts.trust_forwarded && country.size() == 2
      && std::all_of(country.begin(), country.end(),
                     [](char c) { return c >= 'A' && c <= 'Z'; }))
    m.country = country;
  return m;
}

std::string gateway::impl::client_address(const httplib::Request& req) const {
  if (deps.opts.trust_forwarded) {
    // The last hop is the one our proxy appended; earlier ones are the
    // client's word.
    auto xff = req.get_header_value("X-Forwarded-For");
    auto comma = xff.rfind(',');
    auto last = comma == std::string::npos ? xff : xff.substr(comma + 1);
    last.erase(0, last.find_first_not_of(' '));
    while (!last.empty() && last.back() == ' ')
      last.pop_back();
    if (!last.empty() && last.size() <= 64)
      return last;
  }
  return req.remote_addr;
}

void gateway::impl::apply_limit(request_scope& rq, const rate_decision& d) {
  for (auto& [name, value] : rate_limit_headers(d))
    rq.res.set_header(name.c_str(), value);
  if (d.allowed)
    return;
  throw http_reply_error{
    429, "RATE_LIMIT_EXCEEDED",
    "Too many requests; retry in " + std::to_string(d.retry_after_s) + " s",
    {}, {{"retry_after_seconds", std::to_string(d.retry_after_s)}}};
}

namespace {

/// The checks waiting for this loop's next pipeline, per rule (each loop
/// is one thread, and one gateway's).
std::vector<gateway::impl::pending_limit>& pending_lookups() {
  thread_local std::vector<gateway::impl::pending_limit> pending;
  return pending;
}

std::vector<gateway::impl::pending_limit>& pending_creates() {
  thread_local std::vector<gateway::impl::pending_limit> pending;
  return pending;
}

} // namespace

void gateway::impl::limit_then(const call_ptr& c,
                               std::vector<pending_limit>& pending,
                               check_many_fn check, histogram& latency,
                               std::string subject,
                               std::function<void()> then) {
  if (pending.empty())
    c->exchange->defer([this, &pending, check, &latency,
                        &io = c->exchange->io()] {
      auto batch = std::make_shared<std::vector<pending_limit>>(
        std::move(pending));
      pending.clear();
      // A call answered meanwhile (its deadline) is neither counted nor
      // continued: a creation must not spend the user's quota for nobody.
      batch->erase(std::remove_if(batch->begin(), batch->end(),
                                  [](auto& p) { return p.call->answered; }),
                   batch->end());
      if (batch->empty())
        return;
      std::vector<std::string> subjects;
      subjects.reserve(batch->size());
      for (auto& p : *batch)
        subjects.push_back(std::move(p.subject));
      auto& pipeline = rate_limit_pipeline::of(*limiter, io);
      (pipeline.*check)(
        subjects, deps.clock->now_ms(),
        [this, batch, &latency](std::vector<rate_decision> decisions) {
          auto decided = std::chrono::steady_clock::now();
          for (size_t i = 0; i < batch->size(); ++i) {
            auto& p = (*batch)[i];
            latency.observe(
              std::chrono::duration<double>(decided - p.asked).count());
            // Its deadline may have answered it while Redis did.
            if (p.call->answered)
              continue;
            guarded(p.call, [&] {
              apply_limit(*p.call, decisions[i]);
              p.then();
            });
          }
        });
    });
  pending.push_back({c, std::move(subject), std::move(then),
                     std::chrono::steady_clock::now()});
}

void gateway::impl::limit_lookup_then(const call_ptr& c,
                                      std::function<void()> then) {
  limit_then(c, pending_lookups(), &rate_limit_pipeline::check_share_lookups,
             *lookup_check_seconds,
             client_address(c->req), std::move(then));
}

void gateway::impl::limit_create_then(const call_ptr& c, std::string user_id,
                                      std::function<void()> then) {
  limit_then(c, pending_creates(), &rate_limit_pipeline::check_share_creates,
             *create_check_seconds,
             std::move(user_id), std::move(then));
}

void gateway::impl::write_share_fields(json_writer& w, const share_info& s) {
  w.key("share_id").value(s.share_id)
    .key("share_token").value(s.share_token)
    .key("share_url").value(share_url(s.share_token))
    .key("channel").value(s.channel)
    .key("created_at").value(format_iso8601(s.created_at))
    .key("expires_at");
  s.expires_at == 0 ? w.null() : w.value(format_iso8601(s.expires_at));
  w.key("hidden_items_count")
    .value(static_cast<int64_t>(s.hidden_items.size()));
}

std::string gateway::impl::share_json(const share_info& s) {
  json_writer w;
  w.begin_object();
  write_share_fields(w, s);
  w.key("is_revoked").value(s.is_revoked)
    .key("view_count").value(s.view_count)
    .key("items_added").value(s.items_added)
    .end_object();
  return w.take();
}

void gateway::impl::register_share_routes() {
  async_route("POST", "/api/v2/wishlists/{id}/share", "share_create",
        [this](const call_ptr& c) {
          auto& rq = *c;
          auto user = verified_bearer(rq);
          auto wishlist_id = path_id(rq, 0, 404, "WISHLIST_NOT_FOUND",
                                     "Wishlist");
          auto body = json_body(rq);
          std::vector<field_problem> problems;
          share_request req;
          req.wishlist_id = wishlist_id;
          req.owner_id = user.user_id;
          req.owner_display_name = user.display_name;
          req.meta = meta_of(rq.req);
          simdjson::dom::element el;
          std::string_view sv;
          if (body.at_key("channel").get(el) != simdjson::SUCCESS
              || el.is_null())
            problems.push_back({"channel", "is required"});
          else if (el.get(sv) != simdjson::SUCCESS
                   || std::none_of(std::begin(channels), std::end(channels),
                                   [&](const char* c) { return sv == c; }))
            problems.push_back({"channel",
                                "must be one of link, copy_link, email,"
                                " facebook, twitter, whatsapp"});
          else
            req.channel.assign(sv);
          if (body.at_key("expires_in_days").get(el) == simdjson::SUCCESS) {
            int64_t days = 0;
            if (el.is_null())
              req.expires_in_days = 0;
            else if (!el.is_int64() || el.get(days) != simdjson::SUCCESS
                     || (days != 7 && days != 30))
              problems.push_back({"expires_in_days",
                                  "must be 7, 30 or null (never)"});
            else
              req.expires_in_days = static_cast<int>(days);
          }
          req.hidden_items = item_ids(body, "hidden_items", problems);
          string_field(body, "message", false, 0, max_message_chars,
                       req.message, problems);
          if (!problems.empty())
            fail_validation(problems);
          auto token = new_share_token();
          ensure_user_then(c, user, [this, c, token, req, user] {
            // Ownership and hidden items first: a request that would fail
            // anyway does not spend one of the user's 20 creations.
            ask_new_then<share_actor, atom::ok>(
              c, deps.shares, token,
              [this, c, token, req, user](atom::ok) {
                limit_create_then(c, user.user_id, [this, c, token, req] {
                  ask_then<share_actor, share_info>(
                    c, deps.shares, token,
                    [this, c](share_info& info) {
                      json_writer w;
                      w.begin_object();
                      write_share_fields(w, info);
                      w.key("preview_image_url")
                        .value(preview_url(info.share_token))
                        .key("preview_status").value(info.preview_status)
                        .key("item_count")
                        .value(static_cast<int64_t>(info.item_count))
                        .end_object();
                      answer_json(c, 201, w.take());
                    },
                    atom::create_v, req);
                });
              },
              atom::check_v, req);
          });
        });

  route("GET", "/api/v2/wishlists/{id}/shares", "share_list",
        [this](request_scope& rq) {
          auto user = authenticate(rq);
          auto wishlist_id = path_id(rq, 0, 404, "WISHLIST_NOT_FOUND",
                                     "Wishlist");
          auto shares = unwrap(ask<wishlist_actor, std::vector<share_info>>(
            self(), deps.wishlists, wishlist_id, timeout, atom::list_v,
            user.user_id));
          std::string out = "{\"shares\":[";
          for (size_t i = 0; i < shares.size(); ++i) {
            if (i > 0)
              out += ',';
            out += share_json(shares[i]);
          }
          out += "]}";
          reply_json(rq, 200, std::move(out));
        });

  route("PATCH", "/api/v2/wishlists/{id}/shares/{token}", "share_update",
        [this](request_scope& rq) {
          auto user = authenticate(rq);
          auto wishlist_id = rq.path_params[0];
          auto token = rq.path_params[1];
          if (!plausible_id(wishlist_id) || !plausible_share_token(token))
            fail(404, "SHARE_NOT_FOUND", share_gone_message);
          auto body = json_body(rq);
          std::vector<field_problem> problems;
          share_visibility_change change;
          change.hide = item_ids(body, "hide", problems);
          change.show = item_ids(body, "show", problems);
          if (problems.empty() && change.hide.empty() && change.show.empty())
            problems.push_back({"hide", "hide or show must name an item"});
          for (auto& id : change.hide)
            if (std::binary_search(change.show.begin(), change.show.end(), id))
              problems.push_back({"show", id + " is also in hide"});
          if (!problems.empty())
            fail_validation(problems);
          auto info = unwrap(ask<share_actor, share_info>(
            self(), deps.shares, token, timeout, atom::update_v, user.user_id,
            wishlist_id, change));
          reply_json(rq, 200, share_json(info));
        });

  route("DELETE", "/api/v2/wishlists/{id}/shares/{token}",
        "share_revoke", [this](request_scope& rq) {
          auto user = authenticate(rq);
          auto wishlist_id = rq.path_params[0];
          auto token = rq.path_params[1];
          if (!plausible_id(wishlist_id) || !plausible_share_token(token))
            fail(404, "SHARE_NOT_FOUND", share_gone_message);
          unwrap(ask<share_actor, atom::ok>(self(), deps.shares, token,
                                            timeout, atom::revoke_v,
                                            user.user_id, wishlist_id,
                                            meta_of(rq.req)));
          reply_empty(rq, 204);
        });

  async_route("GET", "/api/v2/wishlists/shared/{token}", "share_view_json",
        [this](const call_ptr& c) {
          auto viewer = optional_user(*c);
          view_share_then(c, [this, c, viewer](shared_wishlist& w) {
          int64_t total = 0;
          json_writer out;
          out.begin_object().key("wishlist").begin_object()
            .key("title").value(w.title)
            .key("owner_display_name").value(w.owner_display_name)
            .key("item_count").value(static_cast<int64_t>(w.items.size()))
            .key("items").begin_array();
          for (auto& p : w.items) {
            total += p.price_cents;
            out.begin_object()
              .key("product_id").value(p.product_id)
              .key("name").value(p.name)
              .key("price").money(p.price_cents)
              .key("currency").value(p.currency)
              .key("image_url").value(p.image_url)
              .key("in_stock").value(p.in_stock)
              .end_object();
          }
          out.end_array()
            .key("total_value").money(total)
            .key("created_at").value(format_iso8601(w.created_at))
            .key("share_view_count").value(w.view_count)
            .end_object()
            .key("can_add_to_own_list")
            .value(viewer.has_value() && viewer->user_id != w.owner_id)
            .key("is_authenticated").value(viewer.has_value())
            .end_object();
          answer_json(c, 200, out.take());
          });
        });

  async_route(
    "GET", "/wishlists/shared/{token}", "share_view_html",
    [this](const call_ptr& c) {
      // The page of a share that is gone is HTML too, not the envelope.
      c->on_error = [this](request_scope& rq, const http_reply_error& e) {
        if (e.status != 404)
          return false;
        rq.res.status = 404;
        rq.res.set_content(share_gone_html(), "text/html; charset=utf-8");
        finish(rq);
        return true;
      };
      view_share_then(c, [this, c](shared_wishlist& w) {
        c->res.status = 200;
        c->res.set_header("Cache-Control", "public, max-age=300");
        c->res.set_content(shared_page_html(w, share_url(w.share_token),
                                            preview_url(w.share_token)),
                           "text/html; charset=utf-8");
        answer(c);
      });
    });
}

} // namespace vantage
