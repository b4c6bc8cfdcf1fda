#pragma once

// Internals shared by server.cpp (plumbing) and routes.cpp (the routes).

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>

#include <httplib.h>
#include <simdjson.h>

#include "adapters/rate_limit.hpp"
#include "adapters/redis.hpp"
#include "adapters/json.hpp"
#include "gateway/server.hpp"
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
  histogram* latency = nullptr;
  std::array<std::atomic<counter*>, 600> by_status{};
};

struct request_scope {
  const httplib::Request& req;
  httplib::Response& res;
  std::string request_id;
};

/// Path segment `index`; an id that cannot exist answers like an unknown
/// one, without a lookup.
std::string path_id(request_scope& rq, size_t index, int status,
                    const char* code, const char* what);

struct gateway::impl {
  explicit impl(gateway_deps d);

  gateway_deps deps;
  httplib::Server svr;
  std::thread thread;
  std::atomic<uint16_t> bound_port{0};
  std::chrono::steady_clock::time_point started_at
    = std::chrono::steady_clock::now();
  std::chrono::milliseconds timeout;
  std::deque<route_metrics> routes;
  counter* unmatched_requests = nullptr;

  std::mutex known_users_mtx;
  std::unordered_set<std::string> known_users;

  std::mutex redis_mtx;
  std::unique_ptr<redis_connection> redis;
  std::unique_ptr<rate_limiter> limiter;

  using handler_fn = std::function<void(request_scope&)>;

  /// Registers `fn` under `method` and `pattern` with request ids, metrics,
  /// error envelopes and recording around it.
  void route(const char* method, const std::string& pattern,
             const std::string& name, handler_fn fn);
  void register_routes();
  void register_share_routes();
  void register_render_routes();
  render_request parse_render(simdjson::dom::object& body,
                              std::vector<field_problem>& problems);
  /// True when the object store holds a render for the share `token` (the
  /// renderer's index; no share is activated).
  bool rendered_once(const std::string& token);
  /// Where images are linked from: VANTAGE_CDN_BASE_URL or the public base.
  std::string cdn_base() const;

  /// Verifies the bearer token and makes sure the user exists. 401 if not.
  user_claims authenticate(request_scope& rq);
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
  shared_wishlist view_share(request_scope& rq);

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
