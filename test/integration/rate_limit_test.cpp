#define BOOST_TEST_MODULE rate_limit_test
#include <boost/test/unit_test.hpp>

// The Redis rate limiter against the real Redis of VANTAGE_REDIS_URL (make
// test's), plus a private redis-server for the outage-and-return case. Every
// run uses its own key prefix; time is a virtual clock passed in as "now".

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test/support/eventually.hpp"
#include "adapters/clock.hpp"
#include "adapters/config.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/rate_limit.hpp"

extern char** environ;

using namespace std::chrono_literals;
using namespace vantage;

namespace {

// 2023-11-14T22:13:20Z: any fixed start works, keys are unique per run.
constexpr int64_t t0 = 1'700'000'000'000;

std::string redis_url() {
  return node_options::from_env().redis_url;
}

using vantage::test::eventually;

std::string random_hex() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%08x%08x", rd(), rd());
  return buf;
}

struct reply_free {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_free>;

/// A plain hiredis connection for looking behind the limiter's back.
class admin_connection {
public:
  explicit admin_connection(const std::string& url) {
    auto rest = url.rfind("redis://", 0) == 0 ? url.substr(8) : url;
    rest = rest.substr(0, rest.find('/'));
    auto colon = rest.rfind(':');
    auto host = rest.substr(0, colon);
    int port
        = colon == std::string::npos ? 6379 : std::stoi(rest.substr(colon + 1));
    ctx_ = redisConnectWithTimeout(host.c_str(), port, timeval{2, 0});
    if (ctx_ == nullptr || ctx_->err != 0)
      throw std::runtime_error("cannot reach redis at " + url);
    redisSetTimeout(ctx_, timeval{2, 0});
  }

  ~admin_connection() { redisFree(ctx_); }

  reply_ptr run(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    reply_ptr r{static_cast<redisReply*>(redisCommandArgv(
        ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()))};
    if (!r)
      throw std::runtime_error(std::string{"redis: "} + ctx_->errstr);
    return r;
  }

  long long integer(const std::vector<std::string>& args) {
    auto r = run(args);
    BOOST_REQUIRE_EQUAL(r->type, REDIS_REPLY_INTEGER);
    return r->integer;
  }

  /// Ids of the connections named `name` (CLIENT LIST).
  std::vector<std::string> client_ids(const std::string& name) {
    auto r = run({"CLIENT", "LIST"});
    std::vector<std::string> ids;
    std::string list(r->str, r->len);
    size_t pos = 0;
    while (pos < list.size()) {
      auto end = list.find('\n', pos);
      auto line = list.substr(pos, end - pos);
      pos = end == std::string::npos ? list.size() : end + 1;
      if (line.find(" name=" + name + " ") == std::string::npos)
        continue;
      auto id = line.substr(3, line.find(' ') - 3); // "id=<n> ..."
      ids.push_back(id);
    }
    return ids;
  }

  /// Deletes every key under `prefix`.
  void drop_prefix(const std::string& prefix) {
    std::string cursor = "0";
    do {
      auto r = run({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (size_t i = 0; i < r->element[1]->elements; ++i) {
        auto* k = r->element[1]->element[i];
        run({"UNLINK", std::string(k->str, k->len)});
      }
    } while (cursor != "0");
  }

private:
  redisContext* ctx_ = nullptr;
};

struct limiter_fixture {
  limiter_fixture() : admin(redis_url()) {
    opts.redis_url = redis_url();
    opts.key_prefix = prefix;
    opts.client_name = "rltest-" + random_hex();
  }

  ~limiter_fixture() { admin.drop_prefix(prefix); }

  std::string key(const std::string& rule, const std::string& subject) const {
    return prefix + rule + ":" + subject;
  }

  std::string prefix = "rltest:" + random_hex() + ":";
  admin_connection admin;
  rate_limiter_options opts;
};

/// A throwaway redis-server on a free loopback port, for outages.
class private_redis {
public:
  private_redis() : port_(free_port()) { start(); }

  ~private_redis() { stop(); }

  static bool available() {
    return ::system("command -v redis-server >/dev/null 2>&1") == 0;
  }

  std::string url() const {
    return "redis://127.0.0.1:" + std::to_string(port_);
  }

  void start() {
    auto port = std::to_string(port_);
    std::vector<std::string> args
        = {"redis-server", "--port",    port,           "--bind", "127.0.0.1",
           "--save",       "",          "--appendonly", "no",     "--daemonize",
           "no",           "--logfile", "/dev/null"};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(),
                     environ)
        != 0)
      throw std::runtime_error("cannot spawn redis-server");
    BOOST_REQUIRE(eventually([&] { return answers(); }, 10s));
  }

  /// SIGSTOP: the kernel still accepts connections, nothing answers.
  void freeze() { ::kill(pid_, SIGSTOP); }
  void thaw() { ::kill(pid_, SIGCONT); }

  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

private:
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

  bool answers() const {
    auto* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{0, 200000});
    bool ok = false;
    if (c != nullptr && c->err == 0) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
      if (r != nullptr)
        freeReplyObject(r);
    }
    if (c != nullptr)
      redisFree(c);
    return ok;
  }

  int port_;
  pid_t pid_ = 0;
};

/// Points `opts` at a private server when redis-server is on PATH (for
/// checks a concurrent run on the shared Redis could disturb, such as
/// SCRIPT FLUSH, which empties the whole server's cache), else leaves the
/// shared one. The server lives as long as the returned handle.
std::unique_ptr<private_redis> prefer_private_redis(rate_limiter_options& opts) {
  if (!private_redis::available())
    return nullptr;
  auto own = std::make_unique<private_redis>();
  opts.redis_url = own->url();
  return own;
}

/// A private server for an outage case, `opts` pointed at it with short
/// timeouts; null when redis-server is not on PATH (the case then skips).
std::unique_ptr<private_redis> outage_server(rate_limiter_options& opts,
                                             int timeout_ms, int backoff_ms,
                                             int backoff_max_ms = 4'000) {
  if (!private_redis::available()) {
    BOOST_TEST_MESSAGE("redis-server not on PATH: skipped");
    return nullptr;
  }
  auto server = std::make_unique<private_redis>();
  opts.redis_url = server->url();
  opts.timeout_ms = timeout_ms;
  opts.reconnect_backoff_ms = backoff_ms;
  opts.reconnect_backoff_max_ms = backoff_max_ms;
  return server;
}

using headers = std::vector<std::pair<std::string, std::string>>;

std::string header(const headers& h, const std::string& name) {
  for (auto& [k, v] : h)
    if (k == name)
      return v;
  return "<absent>";
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(sliding_log, limiter_fixture)

BOOST_AUTO_TEST_CASE(twenty_per_hour_then_retry_when_the_oldest_leaves) {
  rate_limiter rl{opts};
  virtual_clock clock{t0};
  // 20 creations, one per second.
  for (int i = 0; i < 20; ++i) {
    auto d = rl.check_share_create("usr_a", clock.now_ms());
    BOOST_TEST_REQUIRE(d.allowed);
    BOOST_TEST(!d.degraded);
    BOOST_TEST(d.limit == 20);
    BOOST_TEST(d.window_s == 3600);
    BOOST_TEST(d.remaining == 19 - i);
    // Reset: the first creation (at t0) leaves the window.
    BOOST_TEST(d.reset_epoch_s == (t0 + 3'600'000) / 1000);
    BOOST_TEST(d.retry_after_s == 0);
    clock.advance(1s);
  }
  // The 21st at t0+20 s: the oldest leaves at t0+3600 s, 3580 s from now.
  auto d = rl.check_share_create("usr_a", clock.now_ms());
  BOOST_TEST(!d.allowed);
  BOOST_TEST(!d.degraded);
  BOOST_TEST(d.remaining == 0);
  BOOST_TEST(d.retry_after_s == 3580);
  BOOST_TEST(d.reset_after_s == 3580);
  BOOST_TEST(d.reset_epoch_s == (t0 + 3'600'000) / 1000);
  auto h = rate_limit_headers(d);
  BOOST_TEST(header(h, "Retry-After") == "3580");
  BOOST_TEST(header(h, "RateLimit") == "limit=20, remaining=0, reset=3580");
  BOOST_TEST(header(h, "RateLimit-Policy") == "20;w=3600");

  // Rejected attempts half an hour later are not recorded.
  clock.advance(1780s); // t0 + 1800 s
  for (int i = 0; i < 5; ++i) {
    auto r = rl.check_share_create("usr_a", clock.now_ms());
    BOOST_TEST(!r.allowed);
    BOOST_TEST(r.retry_after_s == 1800);
  }
  BOOST_TEST(admin.integer({"ZCARD", key("share_create", "usr_a")}) == 20);

  // At t0 + 3600 s exactly the first creation has left: one more fits, and
  // the next waits for the second (t0 + 1 s + 1 h), one second away.
  clock.advance(1800s);
  auto again = rl.check_share_create("usr_a", clock.now_ms());
  BOOST_TEST(again.allowed);
  BOOST_TEST(again.remaining == 0);
  BOOST_TEST(again.reset_after_s == 1);
  auto next = rl.check_share_create("usr_a", clock.now_ms());
  BOOST_TEST(!next.allowed);
  BOOST_TEST(next.retry_after_s == 1);
  BOOST_TEST(admin.integer({"ZCARD", key("share_create", "usr_a")}) == 20);
  // The key's expiry is a backstop: it lives one window past its newest.
  auto pttl = admin.integer({"PTTL", key("share_create", "usr_a")});
  BOOST_TEST(pttl > 3'500'000);
  BOOST_TEST(pttl <= 3'600'000);
}

BOOST_AUTO_TEST_CASE(users_are_independent) {
  rate_limiter rl{opts};
  for (int i = 0; i < 20; ++i)
    BOOST_TEST_REQUIRE(rl.check_share_create("usr_a", t0).allowed);
  BOOST_TEST(!rl.check_share_create("usr_a", t0).allowed);
  auto b = rl.check_share_create("usr_b", t0);
  BOOST_TEST(b.allowed);
  BOOST_TEST(b.remaining == 19);
}

BOOST_AUTO_TEST_CASE(two_requests_in_one_millisecond_both_count) {
  rate_limiter rl{opts};
  auto first = rl.check_share_create("usr_c", t0);
  auto second = rl.check_share_create("usr_c", t0);
  BOOST_TEST(first.remaining == 19);
  BOOST_TEST(second.remaining == 18);
  BOOST_TEST(admin.integer({"ZCARD", key("share_create", "usr_c")}) == 2);
}

BOOST_AUTO_TEST_CASE(a_pipelined_batch_counts_each_creation_in_order) {
  rate_limiter rl{opts};
  for (int i = 0; i < 18; ++i)
    BOOST_TEST_REQUIRE(rl.check_share_create("usr_p", t0).allowed);
  // One pipeline, in one millisecond: each call is its own log entry, and
  // the refused third one of usr_p is not recorded.
  auto ds = rl.check_share_creates({"usr_p", "usr_q", "usr_p", "usr_p"}, t0);
  BOOST_TEST_REQUIRE(ds.size() == 4u);
  BOOST_TEST(ds[0].allowed);
  BOOST_TEST(ds[0].remaining == 1);
  BOOST_TEST(ds[1].allowed);
  BOOST_TEST(ds[1].remaining == 19);
  BOOST_TEST(ds[2].allowed);
  BOOST_TEST(ds[2].remaining == 0);
  BOOST_TEST(!ds[3].allowed);
  BOOST_TEST(ds[3].retry_after_s == 3600);
  for (auto& d : ds)
    BOOST_TEST(!d.degraded);
  BOOST_TEST(admin.integer({"ZCARD", key("share_create", "usr_p")}) == 20);
  BOOST_TEST(admin.integer({"ZCARD", key("share_create", "usr_q")}) == 1);
  BOOST_TEST(rl.fail_open_total() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(gcra, limiter_fixture)

BOOST_AUTO_TEST_CASE(sixty_per_minute_61st_rejected_62nd_after_a_minute) {
  rate_limiter rl{opts};
  virtual_clock clock{t0};
  for (int i = 0; i < 60; ++i) {
    auto d = rl.check_share_lookup("203.0.113.7", clock.now_ms());
    BOOST_TEST_REQUIRE(d.allowed);
    BOOST_TEST(!d.degraded);
    BOOST_TEST(d.limit == 60);
    BOOST_TEST(d.window_s == 60);
    BOOST_TEST(d.remaining == 59 - i);
    BOOST_TEST(d.reset_after_s == 1); // one more fits a second later
  }
  // 61st in the same minute: 429, one request's worth of time to wait.
  auto d61 = rl.check_share_lookup("203.0.113.7", clock.now_ms());
  BOOST_TEST(!d61.allowed);
  BOOST_TEST(d61.remaining == 0);
  BOOST_TEST(d61.retry_after_s == 1);
  BOOST_TEST(d61.reset_epoch_s == t0 / 1000 + 1);
  BOOST_TEST(header(rate_limit_headers(d61), "Retry-After") == "1");
  // 62nd after advancing 60 s: 200, and the whole burst is back.
  clock.advance(60s);
  auto d62 = rl.check_share_lookup("203.0.113.7", clock.now_ms());
  BOOST_TEST(d62.allowed);
  BOOST_TEST(d62.remaining == 59);
  // One key per IP, a plain string, expiring when it would be empty anyway.
  auto k = key("share_lookup", "203.0.113.7");
  auto type = admin.run({"TYPE", k});
  BOOST_TEST(std::string(type->str) == "string");
  auto pttl = admin.integer({"PTTL", k});
  BOOST_TEST(pttl > 0);
  BOOST_TEST(pttl <= 1000);
}

BOOST_AUTO_TEST_CASE(after_a_burst_one_more_per_second) {
  rate_limiter rl{opts};
  virtual_clock clock{t0};
  for (int i = 0; i < 60; ++i)
    BOOST_TEST_REQUIRE(rl.check_share_lookup("::1", clock.now_ms()).allowed);
  clock.advance(999ms);
  BOOST_TEST(!rl.check_share_lookup("::1", clock.now_ms()).allowed);
  clock.advance(1ms);
  auto d = rl.check_share_lookup("::1", clock.now_ms());
  BOOST_TEST(d.allowed);
  BOOST_TEST(d.remaining == 0);
  BOOST_TEST(!rl.check_share_lookup("::1", clock.now_ms()).allowed);
  // Other IPs are untouched.
  BOOST_TEST(rl.check_share_lookup("198.51.100.1", clock.now_ms()).remaining
             == 59);
}

BOOST_AUTO_TEST_CASE(a_pipelined_batch_counts_each_lookup_in_order) {
  rate_limiter rl{opts};
  virtual_clock clock{t0};
  // 58 single lookups, then a batch: the same IP three times (the 59th,
  // 60th and 61st of the minute) and another IP between them.
  for (int i = 0; i < 58; ++i)
    BOOST_TEST_REQUIRE(rl.check_share_lookup("203.0.113.9", clock.now_ms())
                         .allowed);
  auto ds = rl.check_share_lookups(
    {"203.0.113.9", "198.51.100.9", "203.0.113.9", "203.0.113.9"},
    clock.now_ms());
  BOOST_TEST_REQUIRE(ds.size() == 4u);
  BOOST_TEST(ds[0].allowed);
  BOOST_TEST(ds[0].remaining == 1);
  BOOST_TEST(ds[1].allowed);
  BOOST_TEST(ds[1].remaining == 59);
  BOOST_TEST(ds[2].allowed);
  BOOST_TEST(ds[2].remaining == 0);
  BOOST_TEST(!ds[3].allowed);
  BOOST_TEST(ds[3].retry_after_s == 1);
  for (auto& d : ds)
    BOOST_TEST(!d.degraded);
  BOOST_TEST(rl.fail_open_total() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(resilience, limiter_fixture)

BOOST_AUTO_TEST_CASE(a_batch_survives_noscript_and_a_killed_connection) {
  auto own = prefer_private_redis(opts);
  admin_connection other{opts.redis_url};
  rate_limiter rl{opts};
  BOOST_TEST_REQUIRE(rl.check_share_lookup("192.0.2.20", t0).allowed);
  // The scripts flushed: every EVALSHA of the pipeline answers NOSCRIPT
  // and each lookup is run again as EVAL, counted once.
  BOOST_TEST_REQUIRE(other.run({"SCRIPT", "FLUSH"})->type
                     == REDIS_REPLY_STATUS);
  auto ds = rl.check_share_lookups({"192.0.2.20", "192.0.2.21"}, t0);
  BOOST_TEST(!ds[0].degraded);
  BOOST_TEST(ds[0].remaining == 58);
  BOOST_TEST(!ds[1].degraded);
  BOOST_TEST(ds[1].remaining == 59);
  // The connection killed under the limiter: the batch goes out again on a
  // new one within the call, nothing fails open.
  auto ids = other.client_ids(opts.client_name);
  BOOST_TEST_REQUIRE(ids.size() == 1u);
  other.run({"CLIENT", "KILL", "ID", ids[0]});
  ds = rl.check_share_lookups({"192.0.2.20", "192.0.2.21"}, t0);
  BOOST_TEST(!ds[0].degraded);
  BOOST_TEST(ds[0].remaining == 57);
  BOOST_TEST(!ds[1].degraded);
  BOOST_TEST(ds[1].remaining == 58);
  BOOST_TEST(rl.fail_open_total() == 0u);
}

BOOST_AUTO_TEST_CASE(a_batch_fails_open_whole_when_redis_is_unreachable) {
  opts.redis_url = "redis://127.0.0.1:1";
  opts.reconnect_backoff_ms = 60'000;
  rate_limiter rl{opts};
  auto ds = rl.check_share_lookups({"192.0.2.30", "192.0.2.31", "192.0.2.30"},
                                   t0);
  BOOST_TEST_REQUIRE(ds.size() == 3u);
  for (auto& d : ds) {
    BOOST_TEST(d.allowed);
    BOOST_TEST(d.degraded);
  }
  BOOST_TEST(rl.fail_open_total() == 3u);
  BOOST_TEST(rl.connect_attempts_total() == 1u);
}

BOOST_AUTO_TEST_CASE(noscript_after_script_flush_reruns_the_script) {
  // SCRIPT FLUSH empties the whole server's cache: on the shared Redis a
  // concurrent run that connects loads the scripts back, possibly before our
  // next call. So the exact counts are checked on a private server.
  auto own = prefer_private_redis(opts);
  admin_connection flusher{opts.redis_url};
  rate_limiter rl{opts};
  BOOST_TEST_REQUIRE(rl.check_share_lookup("192.0.2.1", t0).allowed);
  BOOST_TEST_REQUIRE(rl.check_share_create("usr_n", t0).allowed);
  BOOST_TEST(rl.script_reloads_total() == 0u);
  auto flushed = flusher.run({"SCRIPT", "FLUSH"});
  BOOST_TEST_REQUIRE(flushed->type == REDIS_REPLY_STATUS);

  auto lookup = rl.check_share_lookup("192.0.2.1", t0);
  BOOST_TEST(lookup.allowed);
  BOOST_TEST(!lookup.degraded);
  BOOST_TEST(lookup.remaining == 58);
  auto create = rl.check_share_create("usr_n", t0);
  BOOST_TEST(create.allowed);
  BOOST_TEST(!create.degraded);
  BOOST_TEST(create.remaining == 18);
  BOOST_TEST(rl.fail_open_total() == 0u);
  if (own) {
    BOOST_TEST(rl.script_reloads_total() == 2u);
    // The EVAL put both back in the cache: EVALSHA works again.
    BOOST_TEST(rl.check_share_lookup("192.0.2.1", t0).remaining == 57);
    BOOST_TEST(rl.check_share_create("usr_n", t0).remaining == 17);
    BOOST_TEST(rl.script_reloads_total() == 2u);
  }
}

BOOST_AUTO_TEST_CASE(fails_open_fast_when_redis_is_unreachable) {
  opts.redis_url = "redis://127.0.0.1:1"; // nothing listens on port 1
  opts.timeout_ms = 300;
  opts.reconnect_backoff_ms = 60'000; // so the count of attempts is exact
  rate_limiter rl{opts};
  auto start = std::chrono::steady_clock::now();
  auto d = rl.check_share_lookup("192.0.2.2", t0);
  auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
  BOOST_TEST(d.allowed);
  BOOST_TEST(d.degraded);
  BOOST_TEST(took_ms < 300);
  BOOST_TEST(rl.fail_open_total() == 1u);
  BOOST_TEST(rate_limit_headers(d).empty());
  // Within the back-off nothing touches the network.
  auto c = rl.check_share_create("usr_x", t0);
  BOOST_TEST(c.allowed);
  BOOST_TEST(c.degraded);
  BOOST_TEST(rl.fail_open_total() == 2u);
  BOOST_TEST(rl.connect_attempts_total() == 1u);
}

BOOST_AUTO_TEST_CASE(a_killed_connection_is_replaced_within_the_call) {
  rate_limiter rl{opts};
  BOOST_TEST_REQUIRE(rl.check_share_lookup("192.0.2.3", t0).allowed);
  auto ids = admin.client_ids(opts.client_name);
  BOOST_TEST_REQUIRE(ids.size() == 1u);
  admin.run({"CLIENT", "KILL", "ID", ids[0]});
  auto d = rl.check_share_lookup("192.0.2.3", t0);
  BOOST_TEST(d.allowed);
  BOOST_TEST(!d.degraded);
  BOOST_TEST(d.remaining == 58);
  BOOST_TEST(rl.connect_attempts_total() == 2u);
  BOOST_TEST(rl.fail_open_total() == 0u);
}

BOOST_AUTO_TEST_CASE(threads_share_one_limit_exactly) {
  rate_limiter rl{opts};
  constexpr int threads = 8;
  constexpr int calls = 40; // 320 attempts at one IP and one user
  std::atomic<int> lookups{0};
  std::atomic<int> creations{0};
  std::atomic<int> degraded{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int i = 0; i < calls; ++i) {
        auto l = rl.check_share_lookup("192.0.2.4", t0);
        auto c = rl.check_share_create("usr_t", t0);
        lookups += l.allowed ? 1 : 0;
        creations += c.allowed ? 1 : 0;
        degraded += (l.degraded ? 1 : 0) + (c.degraded ? 1 : 0);
      }
    });
  for (auto& th : pool)
    th.join();
  BOOST_TEST(degraded.load() == 0);
  BOOST_TEST(lookups.load() == 60);
  BOOST_TEST(creations.load() == 20);
  BOOST_TEST(rl.connect_attempts_total() == static_cast<uint64_t>(threads));
  // A thread that ends closes its connection.
  BOOST_TEST(eventually(
      [&] { return admin.client_ids(opts.client_name).empty(); }, 5s));
}

BOOST_AUTO_TEST_CASE(reconnects_by_itself_after_redis_returns) {
  auto server = outage_server(opts, 200, 100);
  if (!server)
    return;
  rate_limiter rl{opts};
  BOOST_TEST_REQUIRE(!rl.check_share_lookup("192.0.2.5", t0).degraded);

  server->stop();
  auto start = std::chrono::steady_clock::now();
  auto down = rl.check_share_lookup("192.0.2.5", t0);
  BOOST_TEST(down.allowed);
  BOOST_TEST(down.degraded);
  auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
  BOOST_TEST(took_ms < 200);
  BOOST_TEST(rl.fail_open_total() == 1u);

  // A Redis that comes back empty: the connection is made again and the
  // scripts are loaded with it, no restart of anything.
  server->start();
  BOOST_TEST(eventually(
      [&] { return !rl.check_share_lookup("192.0.2.6", t0).degraded; }, 5s));
  auto d = rl.check_share_create("usr_r", t0);
  BOOST_TEST(d.allowed);
  BOOST_TEST(!d.degraded);
  BOOST_TEST(d.remaining == 19);
}

BOOST_AUTO_TEST_CASE(a_hung_redis_costs_fewer_timeouts_the_longer_it_hangs) {
  // A hung Redis (it accepts connections and answers nothing) costs a
  // caller a whole timeout per connect attempt, and on an HTTP loop every
  // request of the loop waits that long. The pause between attempts grows
  // while they keep failing, so a long hang costs a few timeouts, not one
  // every pause.
  auto server = outage_server(opts, 100, 100, 1600);
  if (!server)
    return;
  rate_limiter rl{opts};
  BOOST_TEST_REQUIRE(!rl.check_share_lookup("192.0.2.7", t0).degraded);
  server->freeze();
  auto start = std::chrono::steady_clock::now();
  auto blocked = std::chrono::steady_clock::duration::zero();
  int calls = 0;
  int degraded = 0;
  while (std::chrono::steady_clock::now() - start < 4s) {
    auto t = std::chrono::steady_clock::now();
    degraded += rl.check_share_lookup("192.0.2.7", t0).degraded ? 1 : 0;
    blocked += std::chrono::steady_clock::now() - t;
    ++calls;
    std::this_thread::sleep_for(5ms);
  }
  server->thaw();
  BOOST_TEST(degraded == calls);
  // Pauses of 100, 200, 400, 800, 1600 ms: five or six attempts in 4 s
  // (the first on the open connection), against ~20 at a fixed 100 ms.
  BOOST_TEST(rl.connect_attempts_total() <= 7u);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(blocked).count()
             < 1000);
  // Answering again, the limiter comes back within the longest pause.
  BOOST_TEST(eventually(
      [&] { return !rl.check_share_lookup("192.0.2.8", t0).degraded; }, 5s));
}

BOOST_AUTO_TEST_SUITE_END()

/// A minimal event loop for the pipeline: epoll, a tick per turn, and a
/// record of the longest time the pipeline kept the loop in one call.
class test_loop final : public loop_io {
public:
  test_loop() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
    BOOST_REQUIRE(epoll_fd_ >= 0);
  }
  ~test_loop() override {
    locals_.clear(); // the pipeline unwatches while the loop can
    ::close(epoll_fd_);
  }

  bool watch(int fd, bool want_write, loop_watcher* w) override {
    epoll_event ev{};
    ev.events = EPOLLIN | (want_write ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    bool known = watchers_.count(fd) != 0;
    watchers_[fd] = w;
    return epoll_ctl(epoll_fd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev)
           == 0;
  }
  void unwatch(int fd) override {
    if (watchers_.erase(fd) != 0)
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  }
  std::shared_ptr<void>& local(const void* key) override {
    return locals_[key];
  }

  /// Runs `f` as a loop turn would, timing it.
  template <class F>
  void in_turn(F f) {
    auto t = std::chrono::steady_clock::now();
    f();
    longest_ = std::max(longest_, std::chrono::steady_clock::now() - t);
  }

  /// Turns until `done()` or `within` has passed; false on the timeout.
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds within) {
    auto until = std::chrono::steady_clock::now() + within;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= until)
        return false;
      epoll_event events[16];
      int n = epoll_wait(epoll_fd_, events, 16, 10);
      for (int i = 0; i < n; ++i)
        if (auto w = watchers_.find(events[i].data.fd); w != watchers_.end())
          in_turn([&] { w->second->on_ready(events[i].events); });
      auto now = std::chrono::steady_clock::now();
      std::vector<loop_watcher*> ticked;
      for (auto& [fd, w] : watchers_)
        ticked.push_back(w);
      for (auto* w : ticked)
        if (std::find_if(watchers_.begin(), watchers_.end(),
                         [w](auto& p) { return p.second == w; })
            != watchers_.end())
          in_turn([&] { w->on_tick(now); });
    }
    return true;
  }

  std::chrono::milliseconds longest_turn() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(longest_);
  }

private:
  int epoll_fd_;
  std::map<int, loop_watcher*> watchers_;
  std::map<const void*, std::shared_ptr<void>> locals_;
  std::chrono::steady_clock::duration longest_{};
};

/// One batch of lookups or creations through `loop`'s pipeline, waited for.
struct pipelined {
  rate_limiter& rl;
  test_loop& loop;

  std::vector<rate_decision> lookups(const std::vector<std::string>& ips,
                                     std::chrono::milliseconds within = 5s) {
    return run(ips, within, &rate_limit_pipeline::check_share_lookups);
  }
  std::vector<rate_decision> creates(const std::vector<std::string>& users,
                                     std::chrono::milliseconds within = 5s) {
    return run(users, within, &rate_limit_pipeline::check_share_creates);
  }

  template <class Check>
  std::vector<rate_decision> run(const std::vector<std::string>& subjects,
                                 std::chrono::milliseconds within,
                                 Check check) {
    auto got = std::make_shared<std::optional<std::vector<rate_decision>>>();
    loop.in_turn([&] {
      (rate_limit_pipeline::of(rl, loop).*check)(
        subjects, t0, [got](std::vector<rate_decision> ds) { *got = ds; });
    });
    BOOST_REQUIRE_MESSAGE(loop.run_until([&] { return got->has_value(); }, within),
                          "no decisions within the wait");
    BOOST_REQUIRE_EQUAL((*got)->size(), subjects.size());
    return **got;
  }
};

BOOST_FIXTURE_TEST_SUITE(loop_pipeline, limiter_fixture)

BOOST_AUTO_TEST_CASE(decides_as_the_blocking_calls_do) {
  rate_limiter rl{opts};
  test_loop loop;
  pipelined p{rl, loop};
  // 61 lookups from one IP in three batches: the first 60 pass.
  std::vector<std::string> twenty(20, "192.0.2.40");
  for (int b = 0; b < 3; ++b) {
    auto ds = p.lookups(twenty);
    for (size_t i = 0; i < ds.size(); ++i) {
      BOOST_TEST(ds[i].allowed);
      BOOST_TEST(!ds[i].degraded);
      BOOST_TEST(ds[i].remaining == 59 - (b * 20 + static_cast<int64_t>(i)));
    }
  }
  auto refused = p.lookups({"192.0.2.40", "192.0.2.41"});
  BOOST_TEST(!refused[0].allowed);
  BOOST_TEST(refused[0].retry_after_s == 1);
  BOOST_TEST(refused[1].allowed); // another IP, in the same batch
  // 21 creations of one user in one batch: the 21st is refused and not
  // recorded.
  auto cs = p.creates(std::vector<std::string>(21, "usr_p"));
  for (int i = 0; i < 20; ++i)
    BOOST_TEST(cs[static_cast<size_t>(i)].allowed);
  BOOST_TEST(!cs[20].allowed);
  BOOST_TEST(cs[20].retry_after_s == 3600);
  BOOST_TEST(admin.integer({"ZCARD", key("share_create", "usr_p")}) == 20);
  BOOST_TEST(rl.fail_open_total() == 0u);
  BOOST_TEST(rl.connect_attempts_total() == 1u);
  // The blocking calls see the same counts.
  BOOST_TEST(!rl.check_share_create("usr_p", t0).allowed);
}

BOOST_AUTO_TEST_CASE(survives_noscript_and_a_killed_connection) {
  auto own = prefer_private_redis(opts);
  admin_connection other{opts.redis_url};
  rate_limiter rl{opts};
  test_loop loop;
  pipelined p{rl, loop};
  BOOST_TEST_REQUIRE(!p.lookups({"192.0.2.42"})[0].degraded);
  BOOST_TEST_REQUIRE(other.run({"SCRIPT", "FLUSH"})->type
                     == REDIS_REPLY_STATUS);
  auto ds = p.lookups({"192.0.2.42", "192.0.2.43"});
  BOOST_TEST(!ds[0].degraded);
  BOOST_TEST(ds[0].remaining == 58);
  BOOST_TEST(!ds[1].degraded);
  BOOST_TEST(ds[1].remaining == 59);
  if (own)
    BOOST_TEST(rl.script_reloads_total() == 2u);
  // Killed under the pipeline: the batch goes out again on a new
  // connection, nothing fails open.
  auto ids = other.client_ids(opts.client_name);
  BOOST_TEST_REQUIRE(ids.size() == 1u);
  other.run({"CLIENT", "KILL", "ID", ids[0]});
  ds = p.lookups({"192.0.2.42", "192.0.2.43"});
  BOOST_TEST(!ds[0].degraded);
  BOOST_TEST(ds[0].remaining == 57);
  BOOST_TEST(!ds[1].degraded);
  BOOST_TEST(ds[1].remaining == 58);
  BOOST_TEST(rl.fail_open_total() == 0u);
  BOOST_TEST(rl.connect_attempts_total() == 2u);
}

BOOST_AUTO_TEST_CASE(fails_open_at_once_when_redis_is_unreachable) {
  opts.redis_url = "redis://127.0.0.1:1";
  opts.reconnect_backoff_ms = 60'000;
  rate_limiter rl{opts};
  test_loop loop;
  pipelined p{rl, loop};
  auto ds = p.lookups({"192.0.2.44", "192.0.2.45"}, 1s);
  for (auto& d : ds) {
    BOOST_TEST(d.allowed);
    BOOST_TEST(d.degraded);
  }
  // Within the back-off the answer needs no network.
  auto c = p.creates({"usr_u"}, 1s);
  BOOST_TEST(c[0].allowed);
  BOOST_TEST(c[0].degraded);
  BOOST_TEST(rl.fail_open_total() == 3u);
  BOOST_TEST(rl.connect_attempts_total() == 1u);
}

BOOST_AUTO_TEST_CASE(a_hung_redis_never_holds_the_loop) {
  auto server = outage_server(opts, 200, 100, 400);
  if (!server)
    return;
  rate_limiter rl{opts};
  test_loop loop;
  pipelined p{rl, loop};
  BOOST_TEST_REQUIRE(!p.lookups({"192.0.2.46"})[0].degraded);
  server->freeze();
  // On the open connection: fails open at the timeout (ticks every 10 ms
  // here, every 100 ms on the HTTP loop).
  auto start = std::chrono::steady_clock::now();
  auto d = p.lookups({"192.0.2.46", "192.0.2.47"}, 2s);
  auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count();
  BOOST_TEST(d[0].degraded);
  BOOST_TEST(d[1].degraded);
  BOOST_TEST(took_ms >= 190);
  BOOST_TEST(took_ms < 600);
  // Reconnect attempts into the hang, each failing open at its timeout.
  int degraded = 0;
  auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until)
    degraded += p.lookups({"192.0.2.46"}, 2s)[0].degraded ? 1 : 0;
  BOOST_TEST(degraded > 0);
  server->thaw();
  // The loop was never held: no call into the pipeline took over 20 ms
  // (a blocking check held it for a whole timeout, 200 ms).
  BOOST_TEST(loop.longest_turn().count() < 20);
  BOOST_TEST(rl.connect_attempts_total() >= 2u);
  bool back = loop.run_until(
    [&] { return !p.lookups({"192.0.2.48"}, 2s)[0].degraded; }, 5s);
  BOOST_TEST(back);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(headers_of_a_decision) {
  rate_decision d;
  d.allowed = true;
  d.limit = 20;
  d.window_s = 3600;
  d.remaining = 5;
  d.reset_epoch_s = 1'700'000'042;
  d.reset_after_s = 42;
  headers expected = {
      {"X-RateLimit-Limit", "20"},
      {"X-RateLimit-Remaining", "5"},
      {"X-RateLimit-Reset", "1700000042"},
      {"RateLimit-Policy", "20;w=3600"},
      {"RateLimit", "limit=20, remaining=5, reset=42"},
  };
  BOOST_TEST((rate_limit_headers(d) == expected));

  d.allowed = false;
  d.remaining = 0;
  d.retry_after_s = 42;
  expected[1].second = "0";
  expected[4].second = "limit=20, remaining=0, reset=42";
  expected.emplace_back("Retry-After", "42");
  BOOST_TEST((rate_limit_headers(d) == expected));

  d.degraded = true;
  BOOST_TEST(rate_limit_headers(d).empty());
}
