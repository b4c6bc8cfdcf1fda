#pragma once

// Redis-backed rate limits for the sharing feature:
//  - share creation: 20 per rolling hour per user, an exact sliding-window
//    log (one ZSET per user, one member per counted request);
//  - shared-token lookups: 60 per minute per client IP, GCRA (one key per IP
//    holding the theoretical arrival time: O(1) memory however hot the IP).
// Each rule is one Lua script, loaded with SCRIPT LOAD when a connection
// opens and run with EVALSHA, so the check-and-record is atomic across nodes;
// a NOSCRIPT reply (SCRIPT FLUSH) is answered by one EVAL of the text.
//
// "now" is always the caller's (the injectable clock_source, epoch ms) and
// never Redis TIME, so a virtual clock can move a scenario past a window.
// Key expiry is only a backstop that frees memory; the scripts never rely on
// it for correctness.
//
// Redis unreachable: the check FAILS OPEN (allowed, degraded), is counted in
// fail_open_total() and logged at most once per log interval. Sharing must
// keep working through a cache outage; the limit is a guard, not a quota.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vantage {

class loop_io;

namespace detail {
struct rate_limiter_state;
struct rl_pipeline;
} // namespace detail

/// `limit` requests per `window_ms`.
struct rate_limit_policy {
  int64_t limit = 0;
  int64_t window_ms = 0;
};

/// 20 share links per user per rolling hour (sliding-window log).
inline constexpr rate_limit_policy share_create_policy{20, 3'600'000};
/// 60 shared-token lookups per client IP per minute (GCRA).
inline constexpr rate_limit_policy share_lookup_policy{60, 60'000};

/// The outcome of one check. "reset" is the earliest moment `remaining`
/// grows again: for the sliding log, when the oldest counted request leaves
/// the window; for GCRA, when the next emission interval has passed. So a
/// client that waits until reset whenever remaining is 0 retries exactly when
/// it will pass, and on a rejection reset and Retry-After name the same
/// point in time (draft-ietf-httpapi-ratelimit-headers-07, section 4).
/// It does not say when the whole quota is back (the draft allows this for
/// sliding windows, section 3.4).
struct rate_decision {
  /// Serve the request (false: answer 429).
  bool allowed = true;
  /// Redis was unreachable or failed: allowed without counting (fail open).
  /// remaining/reset are then unknown and rate_limit_headers() is empty.
  bool degraded = false;
  /// The policy's limit and window (X-RateLimit-Limit, RateLimit-Policy).
  int64_t limit = 0;
  int64_t window_s = 0;
  /// Requests still allowed right now, after this one (0 when rejected).
  int64_t remaining = 0;
  /// X-RateLimit-Reset: epoch seconds, rounded up.
  int64_t reset_epoch_s = 0;
  /// RateLimit "reset": seconds from now until reset, rounded up (>= 1).
  int64_t reset_after_s = 0;
  /// Retry-After in seconds, rounded up (>= 1); 0 when allowed.
  int64_t retry_after_s = 0;
};

/// Response header fields for `d`, HTTP-library free:
///   X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (epoch
///   seconds, as GitHub does); RateLimit-Policy ("20;w=3600") and RateLimit
///   ("limit=20, remaining=5, reset=42", delta seconds) in the form of
///   draft-ietf-httpapi-ratelimit-headers-07 (June 2023, sections 3.1-3.5);
///   Retry-After (delta seconds) when rejected.
/// A degraded decision yields no fields: nothing was counted, so any numbers
/// would be invented.
std::vector<std::pair<std::string, std::string>>
rate_limit_headers(const rate_decision& d);

struct rate_limiter_options {
  /// redis://host:port (the VANTAGE_REDIS_URL form).
  std::string redis_url = "redis://127.0.0.1:56379";
  /// Connect and per-command timeout. Short: a hung Redis must cost a
  /// request at most this long before it fails open.
  int timeout_ms = 250;
  /// After a failed connect (or a failed command), a thread answers degraded
  /// without touching the network for this long, so a down Redis is not
  /// hammered with connects by every request of every worker. Each further
  /// failure in a row doubles the pause, up to `reconnect_backoff_max_ms`:
  /// against a hung Redis each attempt costs a whole timeout on the calling
  /// thread (an HTTP loop), so a long hang must cost few of them.
  int reconnect_backoff_ms = 250;
  int reconnect_backoff_max_ms = 4'000;
  /// Warn about failing open at most once per this interval.
  int log_interval_ms = 10'000;
  /// Every key starts with this ("rl:" -> "rl:share_create:<user_id>").
  /// Tests use a unique prefix per run.
  std::string key_prefix = "rl:";
  /// CLIENT SETNAME of every connection, so they can be told apart in
  /// CLIENT LIST (and killed by tests).
  std::string client_name = "vantage-ratelimit";
  rate_limit_policy share_create = share_create_policy;
  rate_limit_policy share_lookup = share_lookup_policy;
};

/// Thread-safe. Every calling thread gets its own hiredis connection (created
/// on its first call, closed when the thread or the limiter ends), so the
/// HTTP loops and pool threads never wait for one another. Calls block for
/// at most about two timeouts (one stale-connection retry).
class rate_limiter {
public:
  explicit rate_limiter(rate_limiter_options opts);
  ~rate_limiter();
  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  /// Counts one share creation by `user_id` at `now_ms` if under the limit
  /// (sliding log, key <prefix>share_create:<user_id>). Rejected attempts
  /// are not recorded.
  rate_decision check_share_create(std::string_view user_id, int64_t now_ms);

  /// `check_share_create` for several creations at once, in one pipelined
  /// round trip, in order (the same user twice counts twice). A Redis
  /// failure fails open every creation the pipeline did not answer.
  std::vector<rate_decision>
  check_share_creates(const std::vector<std::string>& user_ids,
                      int64_t now_ms);

  /// Counts one shared-token lookup from `client_ip` at `now_ms` if under
  /// the limit (GCRA, key <prefix>share_lookup:<client_ip>).
  rate_decision check_share_lookup(std::string_view client_ip, int64_t now_ms);

  /// `check_share_lookup` for several lookups at once, in one pipelined
  /// round trip (in order: the same IP twice counts twice). A Redis failure
  /// fails open every lookup the pipeline did not answer.
  std::vector<rate_decision>
  check_share_lookups(const std::vector<std::string>& client_ips,
                      int64_t now_ms);

  /// The two algorithms for any other rule; the key is
  /// <prefix><rule>:<subject>. `p.limit` and `p.window_ms` must be > 0
  /// (std::invalid_argument otherwise; the constructor checks its two).
  rate_decision check_sliding_log(std::string_view rule,
                                  std::string_view subject,
                                  const rate_limit_policy& p, int64_t now_ms);
  /// `check_sliding_log` for several subjects, pipelined (one round trip).
  std::vector<rate_decision>
  check_sliding_log_many(std::string_view rule,
                         const std::vector<std::string>& subjects,
                         const rate_limit_policy& p, int64_t now_ms);
  rate_decision check_gcra(std::string_view rule, std::string_view subject,
                           const rate_limit_policy& p, int64_t now_ms);
  /// `check_gcra` for several subjects, pipelined (one round trip).
  std::vector<rate_decision>
  check_gcra_many(std::string_view rule,
                  const std::vector<std::string>& subjects,
                  const rate_limit_policy& p, int64_t now_ms);

  /// Checks answered allowed+degraded because Redis failed (for /metrics).
  uint64_t fail_open_total() const;
  /// NOSCRIPT replies answered by re-running the script as EVAL (Redis
  /// flushed its script cache under an open connection).
  uint64_t script_reloads_total() const;
  /// Connection attempts, successful or not (shows the back-off working).
  uint64_t connect_attempts_total() const;

  const rate_limiter_options& options() const;

private:
  friend class rate_limit_pipeline;
  // Held weakly by each thread's connection slot: a thread that ends after
  // the limiter finds it gone instead of touching freed memory.
  std::shared_ptr<detail::rate_limiter_state> state_;
};

/// The limiter's checks from an event loop without ever blocking it. A
/// batch goes to Redis as one pipelined write on a non-blocking socket the
/// loop polls, and its decisions come back in a callback on the loop's
/// thread; the loop serves its other requests meanwhile. A hung Redis then
/// costs only the checks waiting on it: they fail open at the timeout and
/// the back-off starts, as with the blocking calls, whose scripts, keys,
/// counters and fail-open rules these share. One per loop, only on its
/// thread.
class rate_limit_pipeline {
public:
  using decisions_fn = std::function<void(std::vector<rate_decision>)>;

  /// `io`'s pipeline for `limiter`, made on first use and kept by the loop
  /// (it holds the limiter's state, not the limiter).
  static rate_limit_pipeline& of(rate_limiter& limiter, loop_io& io);

  rate_limit_pipeline(rate_limiter& limiter, loop_io& io);
  ~rate_limit_pipeline();
  rate_limit_pipeline(const rate_limit_pipeline&) = delete;
  rate_limit_pipeline& operator=(const rate_limit_pipeline&) = delete;

  /// `rate_limiter::check_share_lookups`; `done` gets the decisions in
  /// order. It runs at once (before this returns) when the answer needs no
  /// Redis (waiting to reconnect: all fail open), else from the loop. A
  /// loop that ends first drops it uncalled.
  void check_share_lookups(const std::vector<std::string>& client_ips,
                           int64_t now_ms, decisions_fn done);
  /// `rate_limiter::check_share_creates` the same way.
  void check_share_creates(const std::vector<std::string>& user_ids,
                           int64_t now_ms, decisions_fn done);

private:
  std::unique_ptr<detail::rl_pipeline> impl_;
};

} // namespace vantage
