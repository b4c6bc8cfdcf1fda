#include "gateway/server.hpp"

#include "actors/io_pool.hpp"
#include "adapters/ids.hpp"
#include "adapters/log.hpp"
#include "gateway/error_mapping.hpp"
#include "gateway/gateway_impl.hpp"
#include "gateway/recorder.hpp"

namespace vantage {

// -- errors ---------------------------------------------------------------------

void fail(int status, const char* code, std::string message) {
  throw http_reply_error{status, code, std::move(message), {}};
}

void fail_validation(const std::vector<field_problem>& problems) {
  json_writer w;
  w.begin_array();
  for (auto& p : problems)
    w.begin_object()
      .key("field").value(p.field)
      .key("problem").value(p.problem)
      .end_object();
  w.end_array();
  std::string msg = "Request validation failed";
  if (!problems.empty())
    msg += ": " + problems.front().field + " " + problems.front().problem;
  throw http_reply_error{422, "VALIDATION_FAILED", msg, w.take()};
}

void fail_with(const caf::error& err) {
  auto h = to_http_error(err);
  throw http_reply_error{h.status, h.code, h.message, {}};
}

std::string path_id(request_scope& rq, size_t index, int status,
                    const char* code, const char* what) {
  auto id = rq.path_params.at(index);
  if (!plausible_id(id))
    fail(status, code, std::string{what} + " does not exist");
  return id;
}

std::string error_body(
  const std::string& code, const std::string& message,
  const std::string& request_id, const std::string& details,
  const std::vector<std::pair<std::string, std::string>>& extra) {
  json_writer w;
  w.begin_object()
    .key("error").value(code)
    .key("message").value(message)
    .key("request_id").value(request_id);
  if (!details.empty())
    w.key("details").raw(details);
  for (auto& [key, json] : extra)
    w.key(key).raw(json);
  w.end_object();
  return w.take();
}

namespace {

/// Accepts a client's X-Request-ID when it is short and printable.
std::string request_id_of(const httplib::Request& req) {
  auto given = req.get_header_value("X-Request-ID");
  bool ok = !given.empty() && given.size() <= 128;
  for (char c : given)
    ok = ok && c > 0x20 && c < 0x7f;
  return ok ? given : new_id("req_");
}

const char* default_code(int status) {
  switch (status) {
    case 400: return "BAD_REQUEST";
    case 401: return "UNAUTHORIZED";
    case 403: return "FORBIDDEN";
    case 404: return "NOT_FOUND";
    case 405: return "METHOD_NOT_ALLOWED";
    case 409: return "CONFLICT";
    case 413: return "PAYLOAD_TOO_LARGE";
    case 415: return "UNSUPPORTED_MEDIA_TYPE";
    case 422: return "VALIDATION_FAILED";
    case 429: return "RATE_LIMIT_EXCEEDED";
    case 503: return "SERVICE_UNAVAILABLE";
    default: return status >= 500 ? "INTERNAL" : "BAD_REQUEST";
  }
}

const char* default_message(int status) {
  switch (status) {
    case 404: return "No route matches this path";
    case 413: return "Request body exceeds 64 KiB";
    case 400: return "Malformed request";
    default: return "Request failed";
  }
}

constexpr size_t max_body_bytes = 64 * 1024;

} // namespace

// -- gateway::impl ----------------------------------------------------------------

gateway::impl::impl(gateway_deps d)
  : deps(std::move(d)),
    timeout(std::chrono::milliseconds{deps.opts.request_timeout_ms}) {
  redis = std::make_unique<redis_connection>(deps.opts.redis_url, 500);
  rate_limiter_options rl;
  rl.redis_url = deps.opts.redis_url;
  rl.key_prefix = deps.opts.rate_limit_prefix;
  rl.share_create = {deps.opts.share_create_limit, 3'600'000};
  rl.share_lookup = {deps.opts.share_lookup_limit, 60'000};
  limiter = std::make_unique<rate_limiter>(rl);
  auto* l = limiter.get();
  deps.metrics->add_callback_gauge(
    "vantage_rate_limit_fail_open_total",
    "Rate-limit checks let through because Redis was unreachable", {},
    [l] { return static_cast<double>(l->fail_open_total()); });
  // Fine below a millisecond, where a check on a healthy Redis falls (the
  // issue's bar is a p50 under 0.3 ms); up to the timeout and past it.
  static const std::vector<double> check_buckets{
    0.00005, 0.0001, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005,
    0.00075, 0.001,  0.0025,  0.005,  0.01,    0.025,  0.05,   0.1,
    0.25,    0.5,    1};
  auto check_latency = [&](const char* rule) {
    return &deps.metrics->get_histogram(
      "vantage_rate_limit_check_seconds",
      "Rate-limit checks of the share routes, from the route's ask to the "
      "decision (the loop's batching and the Redis round trip)",
      {{"rule", rule}}, check_buckets);
  };
  lookup_check_seconds = check_latency("share_lookup");
  create_check_seconds = check_latency("share_create");
}

caf::scoped_actor& gateway::impl::self() {
  // One blocking actor per HTTP worker thread, renewed every few dozen
  // requests: CAF 0.17 delivers a request's timeout message even after the
  // answer came, and a blocking actor keeps such stale messages in its
  // mailbox, scanning them on every receive (throughput fell from 19k to
  // 5.5k req/s within 15 s). A renewed actor leaves them to a dead address.
  // The threads belong to this server and end before the actor system does.
  constexpr int uses_per_actor = 64;
  thread_local std::unique_ptr<caf::scoped_actor> handle;
  thread_local caf::actor_system* owner = nullptr;
  thread_local int uses = 0;
  if (!handle || owner != deps.sys || ++uses >= uses_per_actor) {
    if (owner != deps.sys)
      handle.release(); // belongs to a system already gone: never touch it
    handle = std::make_unique<caf::scoped_actor>(*deps.sys);
    owner = deps.sys;
    uses = 0;
  }
  return *handle;
}

void gateway::impl::reply_json(request_scope& rq, int status,
                               std::string body) {
  rq.res.status = status;
  rq.res.set_content(std::move(body), "application/json; charset=utf-8");
}

void gateway::impl::reply_empty(request_scope& rq, int status) {
  rq.res.status = status;
}

bool gateway::impl::user_known(const user_claims& claims) {
  auto cache_key = claims.user_id + '\x1f' + claims.display_name;
  std::lock_guard<std::mutex> guard{known_users_mtx};
  return known_users.count(cache_key) > 0;
}

void gateway::impl::remember_user(const user_claims& claims) {
  auto cache_key = claims.user_id + '\x1f' + claims.display_name;
  std::lock_guard<std::mutex> guard{known_users_mtx};
  if (known_users.size() > 100000)
    known_users.clear();
  known_users.insert(std::move(cache_key));
}

caf::error gateway::impl::ensure_user(const user_claims& claims) {
  if (user_known(claims))
    return caf::none;
  auto r = ask<user_actor, atom::ok>(self(), deps.users, claims.user_id,
                                     timeout, atom::ensure_v, claims);
  if (!r)
    return r.error();
  remember_user(claims);
  return caf::none;
}

std::optional<user_claims>
gateway::impl::bearer_claims(request_scope& rq, std::string& why) {
  auto header = rq.req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (header.size() <= prefix.size()
      || strncasecmp(header.c_str(), prefix.c_str(), prefix.size()) != 0) {
    why = "Missing bearer token";
    return std::nullopt;
  }
  std::string reason;
  auto claims = deps.jwt->verify(std::string_view{header}.substr(prefix.size()),
                                 deps.clock->now_s(), reason);
  if (!claims)
    why = "Invalid token: " + reason;
  return claims;
}

std::optional<user_claims> gateway::impl::optional_user(request_scope& rq) {
  std::string why;
  return bearer_claims(rq, why);
}

user_claims gateway::impl::verified_bearer(request_scope& rq) {
  std::string why;
  auto claims = bearer_claims(rq, why);
  if (!claims)
    fail(401, "UNAUTHORIZED", why);
  return std::move(*claims);
}

user_claims gateway::impl::authenticate(request_scope& rq) {
  auto claims = verified_bearer(rq);
  if (auto err = ensure_user(claims))
    fail_with(err);
  return claims;
}

simdjson::dom::object gateway::impl::json_body(request_scope& rq) {
  if (rq.req.body.size() > max_body_bytes)
    fail(413, "PAYLOAD_TOO_LARGE", "Request body exceeds 64 KiB");
  auto type = rq.req.get_header_value("Content-Type");
  auto semi = type.find(';');
  auto media = type.substr(0, semi);
  while (!media.empty() && media.back() == ' ')
    media.pop_back();
  if (strcasecmp(media.c_str(), "application/json") != 0)
    fail(415, "UNSUPPORTED_MEDIA_TYPE",
         "Content-Type must be application/json");
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(rq.req.body).get(doc))
    fail(400, "BAD_REQUEST",
         std::string{"Malformed JSON: "} + simdjson::error_message(err));
  simdjson::dom::object obj;
  if (doc.get(obj) != simdjson::SUCCESS)
    fail(400, "BAD_REQUEST", "Request body must be a JSON object");
  return obj;
}

gateway::impl::route_entry&
gateway::impl::add_route(const char* method, const std::string& pattern,
                         const std::string& name) {
  auto& rm = metrics_of_routes.emplace_back();
  rm.name = name;
  rm.method = method;
  rm.latency = &deps.metrics->get_histogram(
    "vantage_http_request_duration_seconds",
    "HTTP request latency by route", {{"route", name}});
  auto& entry = routes.emplace_back(route_entry{route_template{pattern}});
  entry.metrics = &rm;
  return entry;
}

void gateway::impl::route(const char* method, const std::string& pattern,
                          const std::string& name, handler_fn fn) {
  add_route(method, pattern, name).blocking = std::move(fn);
}

void gateway::impl::async_route(const char* method, const std::string& pattern,
                                const std::string& name, async_handler_fn fn) {
  add_route(method, pattern, name).async = std::move(fn);
}

void gateway::impl::dispatch(exchange_ptr x) {
  auto& req = x->req;
  // HEAD is GET without the body (the front drops it).
  std::string_view method = req.method;
  if (x->head)
    method = "GET";
  route_entry* found = nullptr;
  std::vector<std::string> params;
  for (auto& r : routes)
    if (method == r.metrics->method && r.path.match(req.path, params)) {
      found = &r;
      break;
    }
  if (found == nullptr) {
    x->res.status = 404;
    answer_refused(*x, request_id_of(req));
    x->respond();
    return;
  }
  auto c = std::make_shared<request_scope>(std::move(x));
  c->started = std::chrono::steady_clock::now();
  c->request_id = request_id_of(c->req);
  c->path_params = std::move(params);
  c->metrics = found->metrics;
  c->res.set_header("X-Request-ID", c->request_id);
  if (found->async) {
    guarded(c, [&] { found->async(c); });
    return;
  }
  front->run_blocking([this, c, fn = &found->blocking] {
    guarded(c, [&] { (*fn)(*c); });
    if (!c->answered)
      finish(*c);
  });
}

void gateway::impl::answer_refused(http_exchange& x,
                                   const std::string& request_id) {
  x.res.set_header("X-Request-ID", request_id);
  x.res.set_content(error_body(default_code(x.res.status),
                               default_message(x.res.status), request_id),
                    "application/json; charset=utf-8");
  unmatched_requests->inc();
}

void gateway::impl::arm_deadline(const call_ptr& c) {
  arm_deadline(c, timeout);
}

void gateway::impl::arm_deadline(const call_ptr& c,
                                 std::chrono::milliseconds after) {
  if (c->deadline_armed)
    return;
  c->deadline_armed = true;
  std::weak_ptr<request_scope> weak = c;
  c->exchange->expire_after(after, [this, weak] {
    if (auto c = weak.lock())
      answer_error(c, caf::make_error(caf::sec::request_timeout));
  });
}

void gateway::impl::answer(const call_ptr& c) {
  finish(*c);
}

void gateway::impl::answer_json(const call_ptr& c, int status,
                                std::string body) {
  reply_json(*c, status, std::move(body));
  answer(c);
}

void gateway::impl::answer_error(const call_ptr& c, const http_reply_error& e) {
  if (c->on_error && c->on_error(*c, e))
    return;
  c->res.status = e.status;
  c->res.set_content(error_body(e.code, e.message, c->request_id, e.details,
                                e.extra),
                     "application/json; charset=utf-8");
  finish(*c);
}

void gateway::impl::answer_error(const call_ptr& c, const caf::error& err) {
  auto h = to_http_error(err);
  answer_error(c, http_reply_error{h.status, h.code, h.message, {}});
}

void gateway::impl::answer_internal(const call_ptr& c,
                                    const std::exception& e) {
  log_event(log_level::error, "gateway", e.what(),
            "\"request_id\":\"" + c->request_id + "\"");
  c->res.status = 500;
  c->res.set_content(error_body("INTERNAL", "Internal error", c->request_id),
                     "application/json; charset=utf-8");
  finish(*c);
}

void gateway::impl::finish(request_scope& rq) {
  if (rq.answered)
    return;
  rq.answered = true;
  auto& rm = *rq.metrics;
  auto& req = rq.req;
  auto& res = rq.res;
  std::chrono::duration<double> took = std::chrono::steady_clock::now()
                                       - rq.started;
  rm.latency->observe(took.count());
  auto status = res.status >= 100 && res.status < 600 ? res.status : 500;
  auto* c = rm.by_status[status].load(std::memory_order_acquire);
  if (c == nullptr) {
    c = &deps.metrics->get_counter("vantage_http_requests_total",
                                   "HTTP requests by route, method, status",
                                   {{"route", rm.name},
                                    {"method", rm.method},
                                    {"status", std::to_string(status)}});
    rm.by_status[status].store(c, std::memory_order_release);
  }
  c->inc();
  if (deps.recorder) {
    recorded_exchange x;
    x.method = req.method;
    x.path = req.target.empty() ? req.path : req.target;
    for (auto& h : req.headers)
      x.request_headers.emplace_back(h.first, h.second);
    x.request_body = req.body;
    x.status = res.status;
    for (auto& h : res.headers)
      x.response_headers.emplace_back(h.first, h.second);
    x.response_body = res.body;
    deps.recorder->record(x);
  }
  rq.exchange->respond();
}

std::string gateway::impl::healthz(int& status) {
  auto pg = ask_db_ok();
  std::string redis_err;
  bool redis_ok;
  {
    std::lock_guard<std::mutex> guard{redis_mtx};
    redis_ok = redis->ping(redis_err);
  }
  bool kafka_ok = deps.relay && deps.relay->kafka_ok.load();
  bool store_ok = !deps.store || deps.store->check().ok();
  // With rendering on, a pool with no browser up cannot render; shares
  // still work (fallback previews), so it is reported, not fatal.
  bool healthy = pg && redis_ok && kafka_ok && store_ok;
  status = healthy ? 200 : 503;
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::steady_clock::now() - started_at)
                  .count();
  json_writer w;
  w.begin_object()
    .key("status").value(healthy ? "healthy" : "unhealthy")
    .key("postgres").value(pg ? "ok" : "error")
    .key("redis").value(redis_ok ? "ok" : "error")
    .key("kafka").value(kafka_ok ? "ok" : "error")
    .key("object_store").value(store_ok ? "ok" : "error");
  auto* pool = deps.render_pool.get();
  w.key("browser_pool").begin_object()
    .key("total").value(pool ? pool->total_pages() : 0)
    .key("available").value(pool ? pool->available_pages() : 0)
    .key("busy").value(pool ? pool->busy_pages() : 0)
    .key("queued").value(pool ? pool->queued.load() : 0)
    .end_object();
  w.key("preview_breaker")
    .value(deps.preview_breaker ? to_string(deps.preview_breaker->state())
                                : "off")
    .key("outbox_pending").value(deps.relay ? deps.relay->pending.load()
                                            : int64_t{0})
    .key("uptime_seconds").value(static_cast<int64_t>(uptime))
    .end_object();
  return w.take();
}

bool gateway::impl::ask_db_ok() {
  bool ok = false;
  self()
    ->request(deps.io, std::chrono::milliseconds{1000},
              make_db_task<bool>([](pg_connection& c) -> caf::expected<bool> {
                c.exec("health", "SELECT 1");
                return true;
              }))
    .receive([&](bool) { ok = true; },
             [&](caf::error& e) {
               ok = false;
               log_event(log_level::warn, "healthz",
                         "postgres check failed: " + caf::to_string(e));
             });
  return ok;
}

// -- gateway ------------------------------------------------------------------------

gateway::gateway(gateway_deps deps)
  : impl_(std::make_unique<impl>(std::move(deps))) {
  // nop
}

gateway::~gateway() {
  stop();
}

bool gateway::start(std::string& err) {
  auto& d = *impl_;
  d.unmatched_requests = &d.deps.metrics->get_counter(
    "vantage_http_unmatched_requests_total",
    "Requests that matched no route or failed before routing");
  d.register_routes();
  http_front_options fo;
  fo.bind = d.deps.opts.http_bind;
  fo.port = d.deps.opts.http_port;
  fo.loops = d.deps.opts.http_loops;
  fo.blocking_threads = std::max(1, d.deps.opts.http_threads);
  fo.max_body_bytes = max_body_bytes;
  fo.idle_timeout_s = 10;
  d.front = std::make_unique<http_front>(
    *d.deps.sys, fo, [&d](exchange_ptr x) { d.dispatch(std::move(x)); },
    // Errors the front produces itself (body too large, malformed request,
    // a target too long to name anything) get the contract's envelope too.
    [&d](http_exchange& x) { d.answer_refused(x, request_id_of(x.req)); });
  if (!d.front->start(err))
    return false;
  d.bound_port = d.front->port();
  return true;
}

uint16_t gateway::port() const {
  return impl_->bound_port;
}

void gateway::stop() {
  if (impl_->front)
    impl_->front->stop();
}

} // namespace vantage
