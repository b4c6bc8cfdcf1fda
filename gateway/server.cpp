#include "gateway/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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
  auto id = rq.req.matches[index].str();
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

/// Re-listens the bound socket with a deep backlog: httplib 0.11's compiled
/// build listens with a backlog of 5, which drops connections under load.
void deepen_backlog(uint16_t port) {
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      continue;
    int type = 0;
    socklen_t tlen = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0
        || type != SOCK_STREAM)
      continue;
    int accepting = 0;
    socklen_t alen = sizeof(accepting);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &alen) != 0
        || accepting == 0)
      continue;
    uint16_t p = 0;
    if (addr.ss_family == AF_INET)
      p = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    else if (addr.ss_family == AF_INET6)
      p = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (p == port)
      ::listen(fd, 4096);
  }
}

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

caf::error gateway::impl::ensure_user(const user_claims& claims) {
  auto cache_key = claims.user_id + '\x1f' + claims.display_name;
  {
    std::lock_guard<std::mutex> guard{known_users_mtx};
    if (known_users.count(cache_key) > 0)
      return caf::none;
  }
  auto r = ask<user_actor, atom::ok>(self(), deps.users, claims.user_id,
                                     timeout, atom::ensure_v, claims);
  if (!r)
    return r.error();
  std::lock_guard<std::mutex> guard{known_users_mtx};
  if (known_users.size() > 100000)
    known_users.clear();
  known_users.insert(cache_key);
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

user_claims gateway::impl::authenticate(request_scope& rq) {
  std::string why;
  auto claims = bearer_claims(rq, why);
  if (!claims)
    fail(401, "UNAUTHORIZED", why);
  if (auto err = ensure_user(*claims))
    fail_with(err);
  return *claims;
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

void gateway::impl::route(const char* method, const std::string& pattern,
                          const std::string& name, handler_fn fn) {
  auto& rm = routes.emplace_back();
  rm.name = name;
  rm.latency = &deps.metrics->get_histogram(
    "vantage_http_request_duration_seconds",
    "HTTP request latency by route", {{"route", name}});
  auto wrapped = [this, &rm, fn = std::move(fn),
                  method](const httplib::Request& req, httplib::Response& res) {
    auto start = std::chrono::steady_clock::now();
    request_scope rq{req, res, request_id_of(req)};
    res.set_header("X-Request-ID", rq.request_id);
    try {
      fn(rq);
    } catch (const http_reply_error& e) {
      res.status = e.status;
      res.set_content(error_body(e.code, e.message, rq.request_id, e.details,
                                 e.extra),
                      "application/json; charset=utf-8");
    } catch (const std::exception& e) {
      log_event(log_level::error, "gateway", e.what(),
                "\"request_id\":\"" + rq.request_id + "\"");
      res.status = 500;
      res.set_content(error_body("INTERNAL", "Internal error", rq.request_id),
                      "application/json; charset=utf-8");
    }
    std::chrono::duration<double> took = std::chrono::steady_clock::now()
                                         - start;
    rm.latency->observe(took.count());
    auto status = res.status >= 100 && res.status < 600 ? res.status : 500;
    auto* c = rm.by_status[status].load(std::memory_order_acquire);
    if (c == nullptr) {
      c = &deps.metrics->get_counter("vantage_http_requests_total",
                                     "HTTP requests by route, method, status",
                                     {{"route", rm.name},
                                      {"method", method},
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
  };
  std::string m = method;
  if (m == "GET")
    svr.Get(pattern, wrapped);
  else if (m == "POST")
    svr.Post(pattern, wrapped);
  else if (m == "PUT")
    svr.Put(pattern, wrapped);
  else if (m == "PATCH")
    svr.Patch(pattern, wrapped);
  else if (m == "DELETE")
    svr.Delete(pattern, wrapped);
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
  auto threads = static_cast<size_t>(std::max(4, d.deps.opts.http_threads));
  d.svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  d.svr.set_tcp_nodelay(true);
  d.svr.set_keep_alive_max_count(100000);
  d.svr.set_keep_alive_timeout(10);
  d.svr.set_read_timeout(10, 0);
  d.svr.set_payload_max_length(max_body_bytes);
  d.unmatched_requests = &d.deps.metrics->get_counter(
    "vantage_http_unmatched_requests_total",
    "Requests that matched no route or failed before routing");
  // Errors httplib produces itself (no route, body too large, bad request
  // line) still get the contract's envelope and a request id.
  d.svr.set_error_handler(httplib::Server::HandlerWithResponse{
    [this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty())
      return httplib::Server::HandlerResponse::Unhandled;
    // Every id we serve is short: a URI too long for httplib names nothing
    // here, which is a 404 (a 1 MB share token must look like any other
    // unknown one), not a 414.
    if (res.status == 414)
      res.status = 404;
    auto id = res.has_header("X-Request-ID")
                ? res.get_header_value("X-Request-ID")
                : request_id_of(req);
    res.set_header("X-Request-ID", id);
    res.set_content(error_body(default_code(res.status),
                               default_message(res.status), id),
                    "application/json; charset=utf-8");
    impl_->unmatched_requests->inc();
    return httplib::Server::HandlerResponse::Handled;
  }});
  d.register_routes();
  uint16_t port = d.deps.opts.http_port;
  if (port == 0) {
    auto p = d.svr.bind_to_any_port(d.deps.opts.http_bind);
    if (p <= 0) {
      err = "cannot bind an ephemeral port on " + d.deps.opts.http_bind;
      return false;
    }
    port = static_cast<uint16_t>(p);
  } else if (!d.svr.bind_to_port(d.deps.opts.http_bind, port)) {
    err = "cannot bind " + d.deps.opts.http_bind + ":" + std::to_string(port);
    return false;
  }
  d.bound_port = port;
  deepen_backlog(port);
  d.thread = std::thread([&d] { d.svr.listen_after_bind(); });
  return true;
}

uint16_t gateway::port() const {
  return impl_->bound_port;
}

void gateway::stop() {
  auto& d = *impl_;
  if (d.thread.joinable()) {
    d.svr.stop();
    d.thread.join();
  }
}

void gateway::wait() {
  if (impl_->thread.joinable())
    impl_->thread.join();
}

} // namespace vantage
