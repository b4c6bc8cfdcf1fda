#pragma once

// Internals shared by server.cpp (plumbing) and routes.cpp (the routes).

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include <httplib.h>
#include <simdjson.h>

#include "actors/region.hpp"
#include "adapters/ids.hpp"
#include "adapters/rate_limit.hpp"
#include "adapters/redis.hpp"
#include "adapters/json.hpp"
#include "gateway/http_front.hpp"
#include "gateway/route_template.hpp"
#include "gateway/server.hpp"
#include "messages/interfaces.hpp"
#include "messages/render.hpp"
#include "messages/share.hpp"
#include "messages/user.hpp"

namespace vantage {

/// Thrown inside a route to answer with an error envelope; caught by the
/// request wrapper. Never crosses an actor boundary.
struct http_reply_error {
  int status;
  std::string code;
  std::string message;
  /// Serialized JSON array for `details`, or empty.
  std::string details;
  /// More members of the envelope: key and serialized JSON value.
  std::vector<std::pair<std::string, std::string>> extra = {};
};

/// One field problem for a 422 `details` list.
struct field_problem {
  std::string field;
  std::string problem;
};

[[noreturn]] void fail(int status, const char* code, std::string message);

/// Reads string field `name` of a request body into `out` when it is
/// present and holds 1..max characters (0..max when min_chars is 0);
/// records a problem otherwise (absent is one only when `required`).
bool string_field(simdjson::dom::object& obj, const char* name, bool required,
                  size_t min_chars, size_t max_chars, std::string& out,
                  std::vector<field_problem>& problems);

/// A required id field: the shape of ids in paths (plausible_id).
bool id_field(simdjson::dom::object& obj, const char* name, std::string& out,
              std::vector<field_problem>& problems);
[[noreturn]] void fail_validation(const std::vector<field_problem>& problems);
/// Throws the envelope matching a caf::error (error_mapping).
[[noreturn]] void fail_with(const caf::error& err);

/// The value of an actor's answer, or the matching error envelope.
template <class T>
T unwrap(caf::expected<T> r) {
  if (!r)
    fail_with(r.error());
  return std::move(*r);
}

/// Per-route metrics, resolved once at registration.
struct route_metrics {
  std::string name;
  const char* method = "";
  histogram* latency = nullptr;
  std::array<std::atomic<counter*>, 600> by_status{};
};

/// One request on its way through a route. Routes in continuation form
/// hold it by `call_ptr` until they answer.
struct request_scope {
  explicit request_scope(exchange_ptr x)
    : exchange(std::move(x)), req(exchange->req), res(exchange->res) {
    // nop
  }

  exchange_ptr exchange;
  const httplib::Request& req;
  httplib::Response& res;
  std::string request_id;
  /// The values of the route's `{name}` parameters, in order.
  std::vector<std::string> path_params;
  route_metrics* metrics = nullptr;
  std::chrono::steady_clock::time_point started;
  bool answered = false;
  bool deadline_armed = false;
  /// A route that renders some errors itself (an HTML page) sets this; it
  /// returns true when it answered `e`.
  std::function<bool(request_scope&, const http_reply_error&)> on_error;
};

using call_ptr = std::shared_ptr<request_scope>;

/// Path parameter `index`; an id that cannot exist answers like an unknown
/// one, without a lookup.
std::string path_id(request_scope& rq, size_t index, int status,
                    const char* code, const char* what);

struct gateway::impl {
  explicit impl(gateway_deps d);

  gateway_deps deps;
  std::unique_ptr<http_front> front;
  std::atomic<uint16_t> bound_port{0};
  std::chrono::steady_clock::time_point started_at
    = std::chrono::steady_clock::now();
  std::chrono::milliseconds timeout;
  std::deque<route_metrics> metrics_of_routes;
  counter* unmatched_requests = nullptr;

  using handler_fn = std::function<void(request_scope&)>;
  using async_handler_fn = std::function<void(const call_ptr&)>;

  /// A route: a blocking handler (runs on the front's blocking pool, the
  /// wrapper answers when it returns) or one in continuation form (runs on
  /// the loop that read the request and answers through `answer`).
  struct route_entry {
    route_template path;
    /// Its name and method too.
    route_metrics* metrics = nullptr;
    handler_fn blocking;
    async_handler_fn async;
  };
  std::vector<route_entry> routes;

  std::mutex known_users_mtx;
  std::unordered_set<std::string> known_users;

  std::mutex redis_mtx;
  std::unique_ptr<redis_connection> redis;
  std::unique_ptr<rate_limiter> limiter;

  /// Registers `fn` under `method` and `pattern` with request ids, metrics,
  /// error envelopes and recording around it.
  void route(const char* method, const std::string& pattern,
             const std::string& name, handler_fn fn);
  /// The same for a route in continuation form: it must end every request
  /// with `answer` (or an error through `answer_error`), typically from
  /// the continuation of `ask_then`.
  void async_route(const char* method, const std::string& pattern,
                   const std::string& name, async_handler_fn fn);
  route_entry& add_route(const char* method, const std::string& pattern,
                         const std::string& name);
  /// Called on a loop with each request: finds its route and runs it.
  void dispatch(exchange_ptr x);
  /// Fills the envelope of an error the front or the router produced.
  void answer_refused(http_exchange& x, const std::string& request_id);
  /// Records metrics and the exchange, then hands the answer back.
  void finish(request_scope& rq);
  /// Ends a continuation-form request with what `rq.res` holds.
  void answer(const call_ptr& c);
  /// `reply_json`, then `answer`.
  void answer_json(const call_ptr& c, int status, std::string body);
  void answer_error(const call_ptr& c, const http_reply_error& e);
  void answer_error(const call_ptr& c, const caf::error& err);
  /// Runs `f` for `c`; an error it throws becomes the answer.
  template <class F>
  void guarded(const call_ptr& c, F&& f) {
    try {
      f();
    } catch (const http_reply_error& e) {
      answer_error(c, e);
    } catch (const std::exception& e) {
      answer_internal(c, e);
    }
  }
  void answer_internal(const call_ptr& c, const std::exception& e);

  /// The first request of a call in continuation form starts its deadline
  /// (the gateway's request timeout, for the whole call): the loop answers
  /// it as a timeout unless an answer came first. Its actor requests go
  /// untimed.
  void arm_deadline(const call_ptr& c);
  /// The same with a deadline of the route's own (a render outlasts the
  /// request timeout).
  void arm_deadline(const call_ptr& c, std::chrono::milliseconds after);

  /// The continuation-form `ask`: a request from the call's loop to the
  /// entity `key`; `f(Result&)` runs on that loop, an error answers.
  template <class Iface, class Result, class F, class... Ts>
  void ask_then(const call_ptr& c, const region_ref& region, std::string key,
                F f, Ts... xs) {
    static_assert(answers_with<Iface, Result, Ts...>(),
                  "the entity does not accept this message with this answer");
    send_then<Result>(c, region,
                      envelope{std::move(key),
                               caf::make_message(std::move(xs)...)},
                      std::move(f));
  }
  /// `ask_then` for a key this call has just made and never stored: the
  /// entity it activates skips its database read (envelope::never_stored).
  template <class Iface, class Result, class F, class... Ts>
  void ask_new_then(const call_ptr& c, const region_ref& region,
                    std::string key, F f, Ts... xs) {
    static_assert(answers_with<Iface, Result, Ts...>(),
                  "the entity does not accept this message with this answer");
    envelope env{std::move(key), caf::make_message(std::move(xs)...)};
    env.never_stored = true;
    send_then<Result>(c, region, std::move(env), std::move(f));
  }
  /// What both send: `env` to its entity, `f(Result&)` on this loop.
  template <class Result, class F>
  void send_then(const call_ptr& c, const region_ref& region, envelope env,
                 F f) {
    arm_deadline(c);
    request_entity(
      c->exchange->self(), region, caf::duration{caf::infinite}, std::move(env),
      [this, c, f](Result& r) mutable {
        // Past its deadline the call was answered: the rest of its steps
        // (a rate-limit count, a create) must not run for nobody.
        if (!c->answered)
          guarded(c, [&] { f(r); });
      },
      [this, c](caf::error& err) { answer_error(c, err); });
  }
  void register_routes();
  void register_share_routes();
  void register_render_routes();
  render_request parse_render(simdjson::dom::object& body,
                              std::vector<field_problem>& problems);
  /// True when the object store holds a render for the share `token` (the
  /// renderer's index; no share is activated).
  bool rendered_once(const std::string& token);
  /// The 200 of POST /render.
  void answer_render(const call_ptr& c, const render_result& r);
  /// Where images are linked from: VANTAGE_CDN_BASE_URL or the public base.
  std::string cdn_base() const;

  /// Verifies the bearer token and makes sure the user exists. 401 if not.
  user_claims authenticate(request_scope& rq);
  /// The claims of a bearer token that verifies; 401 otherwise.
  user_claims verified_bearer(request_scope& rq);
  /// `ensure_user` in continuation form: `f()` runs once the user exists
  /// (at once when this gateway has seen it before).
  template <class F>
  void ensure_user_then(const call_ptr& c, const user_claims& claims, F f) {
    if (user_known(claims)) {
      f();
      return;
    }
    ask_then<user_actor, atom::ok>(c, deps.users, claims.user_id,
                                   [this, f, claims](atom::ok) {
                                     remember_user(claims);
                                     f();
                                   },
                                   atom::ensure_v, claims);
  }
  bool user_known(const user_claims& claims);
  void remember_user(const user_claims& claims);
  /// Content type, size and syntax checks; returns the parsed object.
  simdjson::dom::object json_body(request_scope& rq);

  void reply_json(request_scope& rq, int status, std::string body);
  void reply_empty(request_scope& rq, int status);

  /// The claims of the request's bearer token; nullopt with the reason in
  /// `why` when it has none or it does not verify.
  std::optional<user_claims> bearer_claims(request_scope& rq,
                                           std::string& why);
  /// Verifies a bearer token if there is one; no user is created.
  std::optional<user_claims> optional_user(request_scope& rq);

  /// Sets the rate-limit headers of `d`; throws 429 when it refuses.
  void apply_limit(request_scope& rq, const rate_decision& d);
  /// The address rate limits count against (X-Forwarded-For only when
  /// VANTAGE_TRUST_FORWARDED=1).
  std::string client_address(const httplib::Request& req) const;
  /// User agent, referrer and country for share events.
  request_meta meta_of(const httplib::Request& req) const;

  std::string public_base() const;
  std::string share_url(const std::string& token) const;
  std::string preview_url(const std::string& token) const;
  /// The fields every answer about a share carries (create, list, PATCH).
  void write_share_fields(json_writer& w, const share_info& s);
  std::string share_json(const share_info& s);
  /// Looks a shared token up for a recipient: rate limit, shape check,
  /// one counted view; `f(shared_wishlist&)` gets it. Throws or answers
  /// the contract's 404/429 otherwise.
  template <class F>
  void view_share_then(const call_ptr& c, F f) {
    limit_lookup_then(c, [this, c, f] {
      const auto& token = c->path_params[0];
      if (!plausible_share_token(token))
        fail(404, "SHARE_NOT_FOUND", share_gone_message);
      ask_then<share_actor, shared_wishlist>(c, deps.shares, token, f,
                                             atom::view_v, meta_of(c->req));
    });
  }
  /// The share-lookup rate limit in continuation form: the lookups of one
  /// loop iteration go to Redis as one pipeline, on the loop's own
  /// non-blocking connection (rate_limit_pipeline), so the loop serves
  /// other requests while Redis answers, and a hung Redis stalls only the
  /// checks waiting on it. `then()` runs when this one is allowed; a
  /// refusal answers 429.
  void limit_lookup_then(const call_ptr& c, std::function<void()> then);
  /// The share-creation limit of `user_id` the same way.
  void limit_create_then(const call_ptr& c, std::string user_id,
                         std::function<void()> then);

  /// A check waiting for its loop's next pipeline of one rate-limit rule.
  struct pending_limit {
    call_ptr call;
    std::string subject;
    std::function<void()> then;
    /// When the route asked (vantage_rate_limit_check_seconds).
    std::chrono::steady_clock::time_point asked;
  };
  using check_many_fn = void (rate_limit_pipeline::*)(
    const std::vector<std::string>&, int64_t,
    rate_limit_pipeline::decisions_fn);
  /// Queues a check in `pending` (this loop's, for one rule); the first
  /// one of an iteration defers the pipeline to the iteration's end.
  void limit_then(const call_ptr& c, std::vector<pending_limit>& pending,
                  check_many_fn check, histogram& latency,
                  std::string subject, std::function<void()> then);
  /// Per check, from the route's ask to its decision (the wait for the
  /// loop's batch and the Redis round trip), per rule.
  histogram* lookup_check_seconds = nullptr;
  histogram* create_check_seconds = nullptr;

  caf::scoped_actor& self();
  caf::error ensure_user(const user_claims& claims);

  std::string healthz(int& status);
  bool ask_db_ok();
};

/// Serialized error envelope.
std::string error_body(
  const std::string& code, const std::string& message,
  const std::string& request_id, const std::string& details = {},
  const std::vector<std::pair<std::string, std::string>>& extra = {});

} // namespace vantage
