#include "adapters/rate_limit.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/redis.hpp"

#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <stdexcept>

#include "adapters/json.hpp"
#include "adapters/log.hpp"

namespace vantage {

namespace {

using steady = std::chrono::steady_clock;

// KEYS[1] the user's log; ARGV now_ms, window_ms, limit, member suffix.
// Returns {allowed, counted requests in the window, oldest counted score}.
// A request at t counts while now < t + window. A rejected attempt is not
// recorded, so hammering the endpoint does not push the retry time out. The
// member is "<now>-<suffix>": two requests in the same millisecond are two
// members.
constexpr const char* sliding_log_lua = R"lua(
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[1] .. '-' .. ARGV[4])
  count = count + 1
  allowed = 1
end
local oldest = now
if count > 0 then
  oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
end
if allowed == 1 then
  local newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  redis.call('PEXPIRE', key, math.max(newest + window - now, 1))
end
return {allowed, count, oldest}
)lua";

// GCRA. KEYS[1] the IP's theoretical arrival time (TAT, epoch ms); ARGV
// now_ms, emission interval T (ms), capacity limit*T (ms). A request is
// allowed when the TAT it would leave behind is at most `capacity` ahead of
// now, which admits exactly `limit` requests in a burst and one per T after.
// Returns {allowed, TAT after the decision}. The key expires when the TAT
// is reached, the moment it would be equivalent to no key at all.
constexpr const char* gcra_lua = R"lua(
local key = KEYS[1]
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', key))
if tat == nil or tat < now then
  tat = now
end
if tat + interval - now > capacity then
  return {0, tat}
end
tat = tat + interval
redis.call('SET', key, tat, 'PX', tat - now)
return {1, tat}
)lua";

enum script_id { sliding_log_script = 0, gcra_script = 1, script_count = 2 };

constexpr const char* script_source[script_count] = {sliding_log_lua, gcra_lua};

struct reply_free {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_free>;

int64_t ceil_div(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             steady::now().time_since_epoch())
      .count();
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(v));
  return buf;
}

// hiredis 0.14 writes with write(2), which raises SIGPIPE on a connection the
// server has reset, and SIGPIPE kills a process that does not ignore it.
// While the process does not ignore it, every call blocks it in the calling
// thread and swallows one that a failed write left pending.
class sigpipe_guard {
public:
  explicit sigpipe_guard(bool active) : active_(active) {
    if (!active_)
      return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    active_ = sigismember(&old_, SIGPIPE) == 0;
  }

  ~sigpipe_guard() {
    if (!active_)
      return;
    if (io_failed_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

  void io_failed() { io_failed_ = true; }

private:
  bool active_;
  bool io_failed_ = false;
  sigset_t pipe_;
  sigset_t old_;
};

std::string sha1_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("SHA1 unavailable");
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(digits[md[i] >> 4]);
    hex.push_back(digits[md[i] & 0xf]);
  }
  return hex;
}

std::atomic<uint64_t> next_limiter_id{1};

constexpr const char* waiting_to_reconnect
  = "redis unreachable (waiting to reconnect)";

} // namespace

namespace detail {

/// When a client may try Redis again. Against a hung Redis each attempt
/// costs a whole timeout, so each failure in a row doubles the pause, and
/// Redis answering a check ends the run.
struct reconnect_backoff {
  /// No connect attempt before this (steady ms).
  int64_t not_before_ms = 0;
  /// Failures since Redis last answered a check.
  int failures_in_row = 0;

  bool waiting() const { return steady_ms() < not_before_ms; }

  void failed(const rate_limiter_options& opts) {
    int64_t pause = std::max(opts.reconnect_backoff_ms, 0);
    for (int i = 0; i < failures_in_row && pause < opts.reconnect_backoff_max_ms; ++i)
      pause *= 2;
    pause = std::min<int64_t>(pause, std::max(opts.reconnect_backoff_max_ms,
                                              opts.reconnect_backoff_ms));
    not_before_ms = steady_ms() + pause;
    failures_in_row = std::min(failures_in_row + 1, 30);
  }

  void answered() { failures_in_row = 0; }
};

/// One thread's connection to Redis.
struct rl_connection {
  redisContext* ctx = nullptr;
  reconnect_backoff backoff;

  rl_connection() = default;
  rl_connection(const rl_connection&) = delete;
  rl_connection& operator=(const rl_connection&) = delete;

  ~rl_connection() { close(); }

  void close() {
    if (ctx != nullptr) {
      redisFree(ctx);
      ctx = nullptr;
    }
  }
};

struct rate_limiter_state {
  rate_limiter_options opts;
  std::string host;
  int port = 6379;
  /// Never reused, unlike an address: a thread's slot for a limiter that is
  /// gone can never be mistaken for one of a new limiter.
  uint64_t id = next_limiter_id.fetch_add(1);
  bool guard_sigpipe = true;
  /// SHA1 (hex) of each script, for every EVALSHA: what SCRIPT LOAD
  /// answers, known before it does, so a pipeline's EVALSHA can follow its
  /// SCRIPT LOAD unanswered.
  std::string script_sha[script_count];
  /// Makes sliding-log members unique across processes; the counter makes
  /// them unique within this one.
  std::string member_seed;
  std::atomic<uint64_t> member_counter{0};

  std::atomic<uint64_t> fail_open{0};
  std::atomic<uint64_t> reloads{0};
  std::atomic<uint64_t> connects{0};
  std::atomic<int64_t> last_warn_ms{std::numeric_limits<int64_t>::min()};
  std::atomic<uint64_t> unlogged_failures{0};
  std::atomic<bool> outage{false};

  /// Every connection of every thread; a thread uses only its own, so the
  /// mutex guards registration and release only, never a command.
  std::mutex conns_mtx;
  std::vector<std::unique_ptr<rl_connection>> conns;

  void release(rl_connection* c) {
    std::lock_guard<std::mutex> guard{conns_mtx};
    auto i = std::find_if(conns.begin(), conns.end(),
                          [c](const auto& p) { return p.get() == c; });
    if (i != conns.end())
      conns.erase(i);
  }

  bool connect(rl_connection& c, std::string& err);
  reply_ptr eval(rl_connection& c, int script, const std::string& key,
                 const std::string* args, size_t nargs, std::string& err);
  /// `eval` for several keys with the same arguments, pipelined: one round
  /// trip for all of them. A null reply has its reason in `errs`.
  /// One EVALSHA per key, pipelined. `args` are every call's; with
  /// `last_args`, call i's last argument (args[nargs - 1]) is
  /// (*last_args)[i] instead.
  std::vector<reply_ptr> eval_many(rl_connection& c, int script,
                                   const std::vector<std::string>& keys,
                                   const std::string* args, size_t nargs,
                                   std::vector<std::string>& errs,
                                   const std::vector<std::string>* last_args
                                   = nullptr);
  void back_off(rl_connection& c) {
    c.close();
    c.backoff.failed(opts);
  }
  void note_failure(const std::string& err);
  void note_success() {
    // A relaxed load on the hot path; the exchange only after an outage.
    if (outage.load(std::memory_order_relaxed) && outage.exchange(false))
      log_event(log_level::info, "rate_limit", "redis reachable again",
                "\"redis\":\"" + host + ":" + std::to_string(port) + "\"");
  }
};

} // namespace detail

namespace {

using detail::rate_limiter_state;
using detail::rl_connection;

// The calling thread's connections, one per limiter it has used. A thread
// that ends hands its connections back to their limiters (if still alive);
// a limiter that ends frees all of them, and its slots here are pruned the
// next time this thread meets a new limiter.
struct thread_slot {
  uint64_t owner;
  std::weak_ptr<rate_limiter_state> state;
  rl_connection* conn;
};

struct thread_connections {
  std::vector<thread_slot> slots;

  ~thread_connections() {
    for (auto& s : slots)
      if (auto st = s.state.lock())
        st->release(s.conn);
  }
};

thread_local thread_connections this_thread_connections;

rl_connection& connection_for(const std::shared_ptr<rate_limiter_state>& st) {
  auto& slots = this_thread_connections.slots;
  for (auto& s : slots)
    if (s.owner == st->id)
      return *s.conn; // the limiter is alive: we are inside its call
  slots.erase(
      std::remove_if(slots.begin(), slots.end(),
                     [](const thread_slot& s) { return s.state.expired(); }),
      slots.end());
  auto conn = std::make_unique<rl_connection>();
  auto* raw = conn.get();
  {
    std::lock_guard<std::mutex> guard{st->conns_mtx};
    st->conns.push_back(std::move(conn));
  }
  slots.push_back(thread_slot{st->id, st, raw});
  return *raw;
}

bool is_error(const redisReply* r, const char* prefix) {
  return r->type == REDIS_REPLY_ERROR && r->str != nullptr
         && std::strncmp(r->str, prefix, std::strlen(prefix)) == 0;
}

bool integer_at(const redisReply* r, size_t i, int64_t& out) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements <= i
      || r->element[i]->type != REDIS_REPLY_INTEGER)
    return false;
  out = r->element[i]->integer;
  return true;
}

} // namespace

namespace {

/// The commands every new connection starts with, for both clients: CLIENT
/// SETNAME (when named; step -1), then SCRIPT LOAD of each script (step =
/// the script). SCRIPT LOAD is idempotent, so a Redis that restarted empty
/// is ready again at once instead of answering NOSCRIPT to the first call
/// of every connection. `f(step, argv, lens)` gets three arguments each.
template <class F>
void for_each_setup_command(const rate_limiter_options& opts, F f) {
  if (!opts.client_name.empty()) {
    const char* argv[] = {"CLIENT", "SETNAME", opts.client_name.c_str()};
    size_t lens[] = {6, 7, opts.client_name.size()};
    f(-1, argv, lens);
  }
  for (int s = 0; s < script_count; ++s) {
    const char* argv[] = {"SCRIPT", "LOAD", script_source[s]};
    size_t lens[] = {6, 4, std::strlen(script_source[s])};
    f(s, argv, lens);
  }
}

/// True, with the reason in `err`, when the reply to set-up `step` fails
/// the connection: a script Redis will not load. A refused CLIENT SETNAME
/// (a bad name) is not worth failing over.
bool setup_refused(int step, const redisReply* r, std::string& err) {
  if (step < 0 || r->type == REDIS_REPLY_STRING)
    return false;
  err = r->type == REDIS_REPLY_ERROR ? std::string{r->str, r->len}
                                     : std::string{"unexpected SCRIPT LOAD"};
  return true;
}

} // namespace

namespace detail {

bool rate_limiter_state::connect(rl_connection& c, std::string& err) {
  if (c.backoff.waiting()) {
    err = waiting_to_reconnect;
    return false;
  }
  connects.fetch_add(1, std::memory_order_relaxed);
  timeval tv{opts.timeout_ms / 1000, (opts.timeout_ms % 1000) * 1000};
  c.ctx = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c.ctx == nullptr || c.ctx->err != 0) {
    err = c.ctx != nullptr ? c.ctx->errstr : "redis: out of memory";
    back_off(c);
    return false;
  }
  redisSetTimeout(c.ctx, tv);
  // One round trip names the connection and loads both scripts.
  std::vector<int> steps;
  for_each_setup_command(opts, [&](int step, const char** argv,
                                   const size_t* lens) {
    redisAppendCommandArgv(c.ctx, 3, argv, lens);
    steps.push_back(step);
  });
  for (int step : steps) {
    void* raw = nullptr;
    if (redisGetReply(c.ctx, &raw) != REDIS_OK) {
      err = c.ctx->errstr;
      back_off(c);
      return false;
    }
    reply_ptr r{static_cast<redisReply*>(raw)};
    if (setup_refused(step, r.get(), err)) {
      back_off(c);
      return false;
    }
  }
  return true;
}

/// The argument vector of one script call with one key: EVALSHA, or EVAL
/// with the script's text; up to 4 arguments.
struct script_call {
  const char* argv[8];
  size_t lens[8];
  int argc;

  /// `sha`: the script's SHA1 (hex), for EVALSHA.
  script_call(const std::string& sha, int script, bool as_eval,
              const std::string* args, size_t nargs) {
    if (as_eval) {
      argv[0] = "EVAL";
      lens[0] = 4;
      argv[1] = script_source[script];
      lens[1] = std::strlen(script_source[script]);
    } else {
      argv[0] = "EVALSHA";
      lens[0] = 7;
      argv[1] = sha.data();
      lens[1] = sha.size();
    }
    argv[2] = "1";
    lens[2] = 1;
    nargs = std::min<size_t>(nargs, 4);
    for (size_t i = 0; i < nargs; ++i) {
      argv[4 + i] = args[i].data();
      lens[4 + i] = args[i].size();
    }
    argc = static_cast<int>(4 + nargs);
  }

  void set_key(const std::string& key) {
    argv[3] = key.data();
    lens[3] = key.size();
  }

  /// Replaces the last script argument (for calls that differ in it).
  void set_last_arg(const std::string& arg) {
    argv[argc - 1] = arg.data();
    lens[argc - 1] = arg.size();
  }
};

// EVALSHA with one key. Two retries, each at most once per call:
//  - NOSCRIPT (SCRIPT FLUSH, or a Redis that restarted under an open
//    connection): run it again as EVAL with the script's text, which loads
//    it back into the cache for every later EVALSHA. One round trip, and
//    unlike SCRIPT LOAD + EVALSHA it cannot lose a race with another flush.
//  - An I/O error on a connection that was already open (Redis restarted, or
//    dropped an idle client): reconnect at once and run again.
// A timeout is not retried: a hung Redis must cost one timeout, not two.
reply_ptr rate_limiter_state::eval(rl_connection& c, int script,
                                   const std::string& key,
                                   const std::string* args, size_t nargs,
                                   std::string& err) {
  sigpipe_guard guard{guard_sigpipe};
  bool reconnected = false;
  bool reloaded = false;
  for (;;) {
    bool fresh = false;
    if (c.ctx == nullptr) {
      if (!connect(c, err)) {
        guard.io_failed();
        return nullptr;
      }
      fresh = true;
    }
    script_call call{script_sha[script], script, reloaded, args, nargs};
    call.set_key(key);
    errno = 0;
    reply_ptr r{static_cast<redisReply*>(
      redisCommandArgv(c.ctx, call.argc, call.argv, call.lens))};
    if (!r) {
      int saved = errno;
      guard.io_failed();
      err = c.ctx->errstr;
      bool timed_out = c.ctx->err == REDIS_ERR_IO
                       && (saved == EAGAIN || saved == EWOULDBLOCK);
      if (fresh || reconnected || timed_out) {
        back_off(c);
        return nullptr;
      }
      c.close();
      reconnected = true;
      continue;
    }
    // Redis answered a check: the next failure pauses the shortest time.
    c.backoff.answered();
    if (is_error(r.get(), "NOSCRIPT") && !reloaded) {
      reloaded = true;
      reloads.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      // Redis answered but refused (OOM, BUSY, LOADING...): the connection
      // is fine, the check is not.
      err.assign(r->str, r->len);
      return nullptr;
    }
    return r;
  }
}

std::vector<reply_ptr>
rate_limiter_state::eval_many(rl_connection& c, int script,
                              const std::vector<std::string>& keys,
                              const std::string* args, size_t nargs,
                              std::vector<std::string>& errs,
                              const std::vector<std::string>* last_args) {
  std::vector<reply_ptr> out(keys.size());
  errs.assign(keys.size(), std::string{});
  // Call i's own arguments, for the calls that go one by one.
  auto eval_one = [&](size_t i) {
    if (last_args == nullptr || nargs == 0)
      return eval(c, script, keys[i], args, nargs, errs[i]);
    std::vector<std::string> own(args, args + nargs);
    own.back() = (*last_args)[i];
    return eval(c, script, keys[i], own.data(), nargs, errs[i]);
  };
  if (keys.size() == 1) {
    out[0] = eval_one(0);
    return out;
  }
  sigpipe_guard guard{guard_sigpipe};
  bool fresh = false;
  if (c.ctx == nullptr) {
    std::string err;
    if (!connect(c, err)) {
      guard.io_failed();
      errs.assign(keys.size(), err);
      return out;
    }
    fresh = true;
  }
  script_call call{script_sha[script], script, false, args, nargs};
  for (size_t i = 0; i < keys.size(); ++i) {
    call.set_key(keys[i]);
    if (last_args != nullptr && nargs > 0)
      call.set_last_arg((*last_args)[i]);
    redisAppendCommandArgv(c.ctx, call.argc, call.argv, call.lens);
  }
  std::vector<size_t> one_by_one; // NOSCRIPT: `eval` reloads the script
  for (size_t i = 0; i < keys.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    if (redisGetReply(c.ctx, &raw) != REDIS_OK) {
      int saved = errno;
      guard.io_failed();
      std::string err = c.ctx->errstr;
      bool timed_out = c.ctx->err == REDIS_ERR_IO
                       && (saved == EAGAIN || saved == EWOULDBLOCK);
      if (fresh || timed_out) {
        back_off(c);
        for (size_t j = i; j < keys.size(); ++j)
          errs[j] = err;
        return out;
      }
      // A connection that went stale: the rest once more, one by one, on
      // a new one (as `eval` retries a single call).
      c.close();
      for (size_t j = i; j < keys.size(); ++j)
        one_by_one.push_back(j);
      break;
    }
    reply_ptr r{static_cast<redisReply*>(raw)};
    c.backoff.answered();
    if (is_error(r.get(), "NOSCRIPT"))
      one_by_one.push_back(i);
    else if (r->type == REDIS_REPLY_ERROR)
      errs[i].assign(r->str, r->len);
    else
      out[i] = std::move(r);
  }
  for (auto i : one_by_one)
    out[i] = eval_one(i);
  return out;
}

void rate_limiter_state::note_failure(const std::string& err) {
  auto total = fail_open.fetch_add(1, std::memory_order_relaxed) + 1;
  outage.store(true, std::memory_order_relaxed);
  // One warning per interval across all threads: whoever wins the exchange
  // logs, and says how many failures went unlogged since the last warning.
  auto now = steady_ms();
  auto last = last_warn_ms.load(std::memory_order_relaxed);
  bool due = last == std::numeric_limits<int64_t>::min()
             || now - last >= opts.log_interval_ms;
  if (!due || !last_warn_ms.compare_exchange_strong(last, now)) {
    unlogged_failures.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto unlogged = unlogged_failures.exchange(0, std::memory_order_relaxed);
  std::string fields = "\"redis\":\"";
  json_escape_to(fields, host + ":" + std::to_string(port));
  fields += "\",\"error\":\"";
  json_escape_to(fields, err);
  fields += "\",\"fail_open_total\":" + std::to_string(total);
  fields += ",\"unlogged_since_last\":" + std::to_string(unlogged);
  log_event(log_level::warn, "rate_limit",
            "redis unavailable, rate limits fail open", fields);
}

} // namespace detail

namespace {

rate_decision base_decision(const rate_limit_policy& p) {
  rate_decision d;
  d.limit = p.limit;
  d.window_s = ceil_div(p.window_ms, 1000);
  return d;
}

rate_decision failed_open(rate_limiter_state& st, const rate_limit_policy& p,
                          int64_t now_ms, const std::string& err) {
  st.note_failure(err);
  auto d = base_decision(p);
  d.allowed = true;
  d.degraded = true;
  d.remaining = p.limit;
  d.reset_epoch_s = ceil_div(now_ms, 1000);
  return d;
}

/// Each pipelined reply as a decision: the script's first N integers go to
/// `decide`; a missing or malformed reply fails open (and is counted).
template <size_t N, class Decide>
std::vector<rate_decision>
decisions_of(rate_limiter_state& st, const rate_limit_policy& p,
             int64_t now_ms, std::vector<reply_ptr>& replies,
             std::vector<std::string>& errs, const char* script,
             Decide decide) {
  std::vector<rate_decision> out;
  out.reserve(replies.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    auto& r = replies[i];
    std::array<int64_t, N> v{};
    bool ok = r != nullptr;
    for (size_t k = 0; ok && k < N; ++k)
      ok = integer_at(r.get(), k, v[k]);
    if (r && !ok)
      errs[i] = std::string{"unexpected reply to the "} + script + " script";
    if (!ok) {
      out.push_back(failed_open(st, p, now_ms, errs[i]));
      continue;
    }
    st.note_success();
    auto d = base_decision(p);
    decide(d, v);
    out.push_back(d);
  }
  return out;
}

void check_policy(const rate_limit_policy& p) {
  if (p.limit <= 0 || p.window_ms <= 0)
    throw std::invalid_argument("rate limit policy needs limit > 0 and "
                                "window_ms > 0");
}

std::string make_key(const std::string& prefix, std::string_view rule,
                     std::string_view subject) {
  std::string key;
  key.reserve(prefix.size() + rule.size() + subject.size() + 1);
  key.append(prefix).append(rule).append(1, ':').append(subject);
  return key;
}

// `after_ms` from now until reset: fills both reset forms and, when
// rejected, Retry-After (the same point in time).
void set_reset(rate_decision& d, int64_t now_ms, int64_t after_ms) {
  after_ms = std::max<int64_t>(after_ms, 1);
  d.reset_after_s = ceil_div(after_ms, 1000);
  d.reset_epoch_s = ceil_div(now_ms + after_ms, 1000);
  d.retry_after_s = d.allowed ? 0 : d.reset_after_s;
}

/// One rule's checks of several subjects: the script calls to send and
/// how their replies become decisions. The blocking calls and the loops'
/// pipelines both run them.
struct check_batch {
  int script = 0;
  std::vector<std::string> keys;
  std::string args[4];
  size_t nargs = 0;
  /// The sliding log's members: call i's last argument (else empty).
  std::vector<std::string> members;
  /// The decisions for replies[i] (null: failed, the reason in errs[i]).
  std::function<std::vector<rate_decision>(std::vector<reply_ptr>&,
                                           std::vector<std::string>&)>
    decide;

  const std::vector<std::string>* last_args() const {
    return members.empty() ? nullptr : &members;
  }
};

/// What both algorithms' batches start with: a valid policy, the script,
/// and one key per subject of the rule.
check_batch batch_of(const rate_limiter_state& st, script_id script,
                     std::string_view rule,
                     const std::vector<std::string>& subjects,
                     const rate_limit_policy& p) {
  check_policy(p);
  check_batch b;
  b.script = script;
  b.keys.reserve(subjects.size());
  for (auto& subject : subjects)
    b.keys.push_back(make_key(st.opts.key_prefix, rule, subject));
  return b;
}

check_batch sliding_log_batch(rate_limiter_state& st, std::string_view rule,
                              const std::vector<std::string>& subjects,
                              const rate_limit_policy& p, int64_t now_ms) {
  auto b = batch_of(st, sliding_log_script, rule, subjects, p);
  b.members.reserve(subjects.size());
  // Each counted request is its own log entry, also within one pipeline.
  for (size_t i = 0; i < subjects.size(); ++i) {
    auto n = st.member_counter.fetch_add(1, std::memory_order_relaxed);
    b.members.push_back(st.member_seed + "-" + std::to_string(n));
  }
  b.args[0] = std::to_string(now_ms);
  b.args[1] = std::to_string(p.window_ms);
  b.args[2] = std::to_string(p.limit);
  b.nargs = 4; // the fourth is each call's member
  b.decide = [&st, p, now_ms](std::vector<reply_ptr>& replies,
                              std::vector<std::string>& errs) {
    return decisions_of<3>(
      st, p, now_ms, replies, errs, "sliding-log",
      [&](rate_decision& d, const std::array<int64_t, 3>& v) {
        auto [allowed, count, oldest] = v;
        d.allowed = allowed == 1;
        d.remaining = std::clamp<int64_t>(p.limit - count, 0, p.limit);
        // Reset: the oldest counted request leaves the window. Clamped to
        // the window in case another node's clock runs ahead of ours.
        set_reset(d, now_ms,
                  std::min(oldest + p.window_ms - now_ms, p.window_ms));
      });
  };
  return b;
}

check_batch gcra_batch(rate_limiter_state& st, std::string_view rule,
                       const std::vector<std::string>& subjects,
                       const rate_limit_policy& p, int64_t now_ms) {
  auto b = batch_of(st, gcra_script, rule, subjects, p);
  // Whole milliseconds keep the script's arithmetic exact; the capacity is
  // limit * T (not the window) so a burst is exactly `limit` even when the
  // window does not divide evenly (the sustained rate then rounds up a
  // hair: 7 per minute becomes one per 8571 ms).
  int64_t interval = std::max<int64_t>(p.window_ms / p.limit, 1);
  int64_t capacity = interval * p.limit;
  b.args[0] = std::to_string(now_ms);
  b.args[1] = std::to_string(interval);
  b.args[2] = std::to_string(capacity);
  b.nargs = 3;
  b.decide = [&st, p, now_ms, interval, capacity](
               std::vector<reply_ptr>& replies,
               std::vector<std::string>& errs) {
    return decisions_of<2>(
      st, p, now_ms, replies, errs, "GCRA",
      [&](rate_decision& d, const std::array<int64_t, 2>& v) {
        auto [allowed, tat] = v;
        d.allowed = allowed == 1;
        int64_t ahead = std::max<int64_t>(tat - now_ms, 0);
        int64_t spare = capacity - ahead;
        d.remaining = spare > 0 ? std::min(spare / interval, p.limit) : 0;
        // Reset: the moment one more request fits, i.e. when `ahead` has
        // shrunk to capacity - (remaining + 1) * T. With remaining 0 that
        // is exactly when a rejected request would pass.
        set_reset(d, now_ms, ahead + (d.remaining + 1) * interval - capacity);
      });
  };
  return b;
}

/// `b` on the calling thread's blocking connection.
std::vector<rate_decision> run_blocking(
  const std::shared_ptr<rate_limiter_state>& st, check_batch b) {
  std::vector<std::string> errs;
  auto replies = st->eval_many(connection_for(st), b.script, b.keys, b.args,
                               b.nargs, errs, b.last_args());
  return b.decide(replies, errs);
}

} // namespace

rate_limiter::rate_limiter(rate_limiter_options opts)
    : state_(std::make_shared<detail::rate_limiter_state>()) {
  auto& st = *state_;
  st.opts = std::move(opts);
  parse_redis_url(st.opts.redis_url, st.host, st.port);
  std::random_device rd;
  st.member_seed = hex64((static_cast<uint64_t>(rd()) << 32) ^ rd());
  struct sigaction current {};
  sigaction(SIGPIPE, nullptr, &current);
  st.guard_sigpipe = current.sa_handler != SIG_IGN;
  check_policy(st.opts.share_create);
  check_policy(st.opts.share_lookup);
  for (int i = 0; i < script_count; ++i)
    st.script_sha[i] = sha1_hex(script_source[i]);
}

rate_limiter::~rate_limiter() = default;

const rate_limiter_options& rate_limiter::options() const {
  return state_->opts;
}

uint64_t rate_limiter::fail_open_total() const {
  return state_->fail_open.load(std::memory_order_relaxed);
}

uint64_t rate_limiter::script_reloads_total() const {
  return state_->reloads.load(std::memory_order_relaxed);
}

uint64_t rate_limiter::connect_attempts_total() const {
  return state_->connects.load(std::memory_order_relaxed);
}

rate_decision rate_limiter::check_share_create(std::string_view user_id,
                                               int64_t now_ms) {
  return check_sliding_log("share_create", user_id, state_->opts.share_create,
                           now_ms);
}

rate_decision rate_limiter::check_share_lookup(std::string_view client_ip,
                                               int64_t now_ms) {
  return check_gcra("share_lookup", client_ip, state_->opts.share_lookup,
                    now_ms);
}

rate_decision rate_limiter::check_sliding_log(std::string_view rule,
                                              std::string_view subject,
                                              const rate_limit_policy& p,
                                              int64_t now_ms) {
  return check_sliding_log_many(rule, {std::string{subject}}, p, now_ms)
    .front();
}

std::vector<rate_decision>
rate_limiter::check_sliding_log_many(std::string_view rule,
                                     const std::vector<std::string>& subjects,
                                     const rate_limit_policy& p,
                                     int64_t now_ms) {
  return run_blocking(state_, sliding_log_batch(*state_, rule, subjects, p,
                                                 now_ms));
}

std::vector<rate_decision>
rate_limiter::check_share_creates(const std::vector<std::string>& user_ids,
                                  int64_t now_ms) {
  return check_sliding_log_many("share_create", user_ids,
                                state_->opts.share_create, now_ms);
}

std::vector<rate_decision>
rate_limiter::check_share_lookups(const std::vector<std::string>& client_ips,
                                  int64_t now_ms) {
  return check_gcra_many("share_lookup", client_ips, state_->opts.share_lookup,
                         now_ms);
}

rate_decision rate_limiter::check_gcra(std::string_view rule,
                                       std::string_view subject,
                                       const rate_limit_policy& p,
                                       int64_t now_ms) {
  return check_gcra_many(rule, {std::string{subject}}, p, now_ms).front();
}

std::vector<rate_decision>
rate_limiter::check_gcra_many(std::string_view rule,
                              const std::vector<std::string>& subjects,
                              const rate_limit_policy& p, int64_t now_ms) {
  return run_blocking(state_, gcra_batch(*state_, rule, subjects, p, now_ms));
}

namespace detail {

/// A loop's non-blocking connection to Redis and the batches waiting on it.
/// Commands are formatted by hiredis and replies parsed by its reader; the
/// socket is this pipeline's own (sent with MSG_NOSIGNAL: no SIGPIPE).
struct rl_pipeline final : loop_watcher {
  struct batch {
    check_batch checks;
    std::vector<reply_ptr> replies;
    std::vector<std::string> errs;
    std::vector<bool> answered;
    size_t unanswered = 0;
    rate_limit_pipeline::decisions_fn done;
    steady::time_point deadline;
    bool resent = false;
  };

  /// What the next reply answers: a batch's call, or the connection's
  /// set-up (batch null; index the set-up step, for_each_setup_command).
  struct expected_reply {
    batch* owner;
    int index;
    bool as_eval;
  };

  std::shared_ptr<rate_limiter_state> st;
  loop_io& io;
  int fd = -1;
  bool connected = false;   // the TCP connect has completed
  bool proven = false;      // Redis answered on this socket
  bool write_watched = false;
  steady::time_point connect_deadline;
  std::string out;
  size_t out_sent = 0;
  redisReader* reader = nullptr;
  std::deque<expected_reply> expected;
  std::vector<std::unique_ptr<batch>> batches;
  reconnect_backoff backoff;
  /// Counts closed connections: a reply's callback may end the one being
  /// read (and open another).
  uint64_t generation = 0;

  rl_pipeline(std::shared_ptr<rate_limiter_state> state, loop_io& loop)
    : st(std::move(state)), io(loop) {
    // nop
  }

  ~rl_pipeline() override { close_socket(); }

  void submit(check_batch checks, rate_limit_pipeline::decisions_fn done) {
    auto b = std::make_unique<batch>();
    auto n = checks.keys.size();
    b->checks = std::move(checks);
    b->replies.resize(n);
    b->errs.assign(n, std::string{});
    b->answered.assign(n, false);
    b->unanswered = n;
    b->done = std::move(done);
    if (n == 0) {
      complete(std::move(b));
      return;
    }
    if (fd < 0 && !open()) {
      fail_unanswered(*b, last_error);
      complete(std::move(b));
      return;
    }
    b->deadline = steady::now() + std::chrono::milliseconds{st->opts.timeout_ms};
    for (size_t i = 0; i < n; ++i)
      append_call(*b, static_cast<int>(i), false);
    batches.push_back(std::move(b));
    flush();
  }

  // -- loop_watcher ------------------------------------------------------------

  void on_ready(uint32_t events) override {
    if (fd < 0)
      return;
    if (!connected) {
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
      if (soerr != 0) {
        fail_connection(std::string{"redis connect: "} + std::strerror(soerr),
                        false);
        return;
      }
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
        return;
      connected = true;
    }
    if (!out.empty() && !flush())
      return;
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0)
      read_replies();
  }

  void on_tick(steady::time_point now) override {
    if (fd < 0)
      return;
    if (!connected && now >= connect_deadline) {
      fail_connection("redis connect timed out", true);
      return;
    }
    for (auto& b : batches)
      if (now >= b->deadline) {
        fail_connection("redis timed out", true);
        return;
      }
  }

  // -- the connection ----------------------------------------------------------

  std::string last_error;

  /// Starts a connection (its set-up commands queued first); false, with
  /// `last_error`, when none can start now.
  bool open() {
    if (backoff.waiting()) {
      last_error = waiting_to_reconnect;
      return false;
    }
    st->connects.fetch_add(1, std::memory_order_relaxed);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    auto port = std::to_string(st->port);
    int rc = getaddrinfo(st->host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0 || found == nullptr) {
      last_error = std::string{"redis address: "} + gai_strerror(rc);
      backoff.failed(st->opts);
      return false;
    }
    fd = ::socket(found->ai_family,
                  found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      freeaddrinfo(found);
      last_error = std::string{"redis socket: "} + std::strerror(errno);
      backoff.failed(st->opts);
      return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = ::connect(fd, found->ai_addr, found->ai_addrlen);
    int connect_errno = errno;
    freeaddrinfo(found);
    if (rc != 0 && connect_errno != EINPROGRESS) {
      ::close(fd);
      fd = -1;
      last_error = std::string{"redis connect: "} + std::strerror(connect_errno);
      backoff.failed(st->opts);
      return false;
    }
    connected = rc == 0;
    connect_deadline
      = steady::now() + std::chrono::milliseconds{st->opts.timeout_ms};
    reader = redisReaderCreate();
    write_watched = true;
    if (reader == nullptr || !io.watch(fd, true, this)) {
      last_error = "redis: cannot poll the connection";
      close_socket();
      backoff.failed(st->opts);
      return false;
    }
    // Ahead of the first calls, in the same write: their EVALSHA names the
    // SHA1 computed here, the one SCRIPT LOAD answers.
    for_each_setup_command(st->opts, [&](int step, const char** argv,
                                         const size_t* lens) {
      append_command(3, argv, lens);
      expected.push_back({nullptr, step, false});
    });
    return true;
  }

  void close_socket() {
    ++generation;
    if (fd >= 0) {
      io.unwatch(fd);
      ::close(fd);
      fd = -1;
    }
    if (reader != nullptr) {
      redisReaderFree(reader);
      reader = nullptr;
    }
    connected = false;
    proven = false;
    write_watched = false;
    out.clear();
    out_sent = 0;
    expected.clear();
  }

  void append_command(int argc, const char** argv, const size_t* lens) {
    char* cmd = nullptr;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
      throw std::bad_alloc{};
    out.append(cmd, static_cast<size_t>(len));
    redisFreeCommand(cmd);
  }

  void append_call(batch& b, int i, bool as_eval) {
    auto& c = b.checks;
    script_call call{st->script_sha[c.script], c.script, as_eval, c.args,
                     c.nargs};
    call.set_key(c.keys[static_cast<size_t>(i)]);
    if (auto* last = c.last_args(); last != nullptr && c.nargs > 0)
      call.set_last_arg((*last)[static_cast<size_t>(i)]);
    append_command(call.argc, call.argv, call.lens);
    expected.push_back({&b, i, as_eval});
  }

  /// Writes what the socket takes; false when the connection failed.
  bool flush() {
    if (!connected)
      return true; // the connect's completion calls again
    while (out_sent < out.size()) {
      auto n = ::send(fd, out.data() + out_sent, out.size() - out_sent,
                      MSG_NOSIGNAL);
      if (n > 0) {
        out_sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (n < 0 && errno == EINTR)
        continue;
      fail_connection(std::string{"redis write: "} + std::strerror(errno),
                      false);
      return false;
    }
    if (out_sent == out.size()) {
      out.clear();
      out_sent = 0;
    }
    bool want_write = !out.empty();
    if (want_write != write_watched) {
      write_watched = want_write;
      io.watch(fd, want_write, this);
    }
    return true;
  }

  void read_replies() {
    char buf[16384];
    bool closed = false;
    std::string error;
    for (;;) {
      auto n = ::recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        redisReaderFeed(reader, buf, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof(buf))
          break;
        continue;
      }
      if (n == 0) {
        closed = true;
        error = "redis closed the connection";
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        closed = true;
        error = std::string{"redis read: "} + std::strerror(errno);
      }
      break;
    }
    // The replies that arrived count even when the connection then ended.
    auto reading = generation;
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
        fail_connection(std::string{"redis protocol: "}
                          + redisReaderGetError(reader),
                        false);
        return;
      }
      if (raw == nullptr)
        break;
      on_reply(reply_ptr{static_cast<redisReply*>(raw)});
      if (generation != reading)
        return; // the connection ended, its calls are answered
    }
    if (closed)
      fail_connection(error, false);
  }

  void on_reply(reply_ptr r) {
    if (expected.empty()) {
      fail_connection("redis: a reply nothing asked for", false);
      return;
    }
    auto e = expected.front();
    expected.pop_front();
    proven = true;
    if (e.owner == nullptr) {
      std::string err;
      if (setup_refused(e.index, r.get(), err))
        fail_connection(err, false, true);
      return;
    }
    backoff.answered();
    auto& b = *e.owner;
    auto i = static_cast<size_t>(e.index);
    if (is_error(r.get(), "NOSCRIPT") && !e.as_eval) {
      // The script cache was flushed under this connection: EVAL with the
      // text loads it back, as the blocking calls do.
      st->reloads.fetch_add(1, std::memory_order_relaxed);
      append_call(b, e.index, true);
      flush();
      return;
    }
    if (r->type == REDIS_REPLY_ERROR)
      b.errs[i].assign(r->str, r->len);
    else
      b.replies[i] = std::move(r);
    b.answered[i] = true;
    if (--b.unanswered == 0)
      complete(take(e.owner));
  }

  std::unique_ptr<batch> take(batch* b) {
    auto at = std::find_if(batches.begin(), batches.end(),
                           [b](const auto& p) { return p.get() == b; });
    auto owned = std::move(*at);
    batches.erase(at);
    return owned;
  }

  void complete(std::unique_ptr<batch> b) {
    auto decisions = b->checks.decide(b->replies, b->errs);
    auto done = std::move(b->done);
    b.reset();
    done(std::move(decisions));
  }

  void fail_unanswered(batch& b, const std::string& err) {
    for (size_t i = 0; i < b.answered.size(); ++i)
      if (!b.answered[i]) {
        b.errs[i] = err;
        b.answered[i] = true;
      }
    b.unanswered = 0;
  }

  /// Ends the connection. On one Redis had answered on, an I/O failure
  /// that is not a timeout means it went stale (Redis restarted, or dropped
  /// the client): the unanswered calls go once more on a new connection,
  /// as the blocking calls retry. Otherwise they fail open and the back-off
  /// starts (a hung Redis: one timeout, then none until the pause ends).
  void fail_connection(const std::string& err, bool timed_out,
                       bool refused = false) {
    bool stale = proven && !timed_out && !refused;
    close_socket();
    if (!stale)
      backoff.failed(st->opts);
    auto waiting = std::move(batches);
    batches.clear();
    std::vector<std::unique_ptr<batch>> failed;
    for (auto& b : waiting) {
      if (stale && !b->resent)
        batches.push_back(std::move(b));
      else
        failed.push_back(std::move(b));
    }
    if (!batches.empty() && open()) {
      auto now = steady::now();
      for (auto& b : batches) {
        b->resent = true;
        b->deadline = now + std::chrono::milliseconds{st->opts.timeout_ms};
        for (size_t i = 0; i < b->answered.size(); ++i)
          if (!b->answered[i])
            append_call(*b, static_cast<int>(i), false);
      }
      flush();
    } else {
      for (auto& b : batches)
        failed.push_back(std::move(b));
      batches.clear();
    }
    for (auto& b : failed) {
      fail_unanswered(*b, err);
      complete(std::move(b));
    }
  }
};

} // namespace detail

rate_limit_pipeline& rate_limit_pipeline::of(rate_limiter& limiter,
                                             loop_io& io) {
  // Keyed by the state, which the pipeline holds: its address cannot be
  // another limiter's while the pipeline lives.
  auto& slot = io.local(limiter.state_.get());
  if (!slot)
    slot = std::make_shared<rate_limit_pipeline>(limiter, io);
  return *static_cast<rate_limit_pipeline*>(slot.get());
}

rate_limit_pipeline::rate_limit_pipeline(rate_limiter& limiter, loop_io& io)
  : impl_(std::make_unique<detail::rl_pipeline>(limiter.state_, io)) {
  // nop
}

rate_limit_pipeline::~rate_limit_pipeline() = default;

void rate_limit_pipeline::check_share_lookups(
  const std::vector<std::string>& client_ips, int64_t now_ms,
  decisions_fn done) {
  auto& st = *impl_->st;
  impl_->submit(gcra_batch(st, "share_lookup", client_ips,
                           st.opts.share_lookup, now_ms),
                std::move(done));
}

void rate_limit_pipeline::check_share_creates(
  const std::vector<std::string>& user_ids, int64_t now_ms,
  decisions_fn done) {
  auto& st = *impl_->st;
  impl_->submit(sliding_log_batch(st, "share_create", user_ids,
                                  st.opts.share_create, now_ms),
                std::move(done));
}

std::vector<std::pair<std::string, std::string>>
rate_limit_headers(const rate_decision& d) {
  std::vector<std::pair<std::string, std::string>> h;
  if (d.degraded)
    return h;
  auto limit = std::to_string(d.limit);
  auto remaining = std::to_string(d.remaining);
  h.reserve(6);
  h.emplace_back("X-RateLimit-Limit", limit);
  h.emplace_back("X-RateLimit-Remaining", remaining);
  h.emplace_back("X-RateLimit-Reset", std::to_string(d.reset_epoch_s));
  // draft-ietf-httpapi-ratelimit-headers-07, 3.5 and 3.1: a quota policy is
  // "<limit>;w=<window seconds>"; RateLimit is a dictionary whose reset is
  // delta seconds (3.4), the same point in time as Retry-After (section 4).
  h.emplace_back("RateLimit-Policy",
                 limit + ";w=" + std::to_string(d.window_s));
  h.emplace_back("RateLimit",
                 "limit=" + limit + ", remaining=" + remaining
                     + ", reset=" + std::to_string(d.reset_after_s));
  if (!d.allowed)
    h.emplace_back("Retry-After", std::to_string(d.retry_after_s));
  return h;
}

} // namespace vantage
