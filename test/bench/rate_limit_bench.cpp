// Rate limiter latency against the real Redis of VANTAGE_REDIS_URL: each
// check is one EVALSHA round trip on the calling thread's own connection.
//   rate_limit_bench [THREADS=8] [CHECKS_PER_THREAD=20000]
// Runs the GCRA lookup limit (distinct IP keys) and the sliding-log creation
// limit (distinct user keys, each within its 20) with one thread and with
// THREADS threads; prints latency percentiles and throughput beside the
// seed's figures. Deletes its keys afterwards. Never asserts.

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "adapters/clock.hpp"
#include "adapters/config.hpp"
#include "adapters/rate_limit.hpp"

using namespace vantage;
using namespace std::chrono;

namespace {

struct result {
  const char* name;
  int threads;
  int64_t checks;
  double per_s;
  double p50_us;
  double p99_us;
  double p999_us;
  double allowed_pct;
  int64_t degraded;
};

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return 0;
  return sorted[static_cast<size_t>(p
                                    * static_cast<double>(sorted.size() - 1))];
}

enum class rule { lookup, create };

result run(rate_limiter& rl, const char* name, rule which, int threads,
           int checks) {
  system_clock_source clock;
  std::vector<std::vector<double>> lat(threads);
  std::atomic<int64_t> allowed{0};
  std::atomic<int64_t> degraded{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  auto check = [&](int t, int i) {
    if (which == rule::lookup) {
      // 10k IPs per thread: each sees 2 lookups in 20k checks (allowed).
      auto ip = "10." + std::to_string(t) + "." + std::to_string(i % 10000);
      return rl.check_share_lookup(ip, clock.now_ms());
    }
    // 1k users per thread: each creates 20 in 20k checks (all allowed, so
    // every check takes the ZADD path).
    auto user = "usr_" + std::to_string(t) + "_" + std::to_string(i % 1000);
    return rl.check_share_create(user, clock.now_ms());
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      // Connect and load the scripts outside the measurement.
      check(t, -1);
      auto& mine = lat[t];
      mine.reserve(static_cast<size_t>(checks));
      ++ready;
      while (!go.load())
        std::this_thread::yield();
      int64_t ok = 0;
      int64_t deg = 0;
      for (int i = 0; i < checks; ++i) {
        auto t0 = steady_clock::now();
        auto d = check(t, i);
        auto t1 = steady_clock::now();
        mine.push_back(duration<double, std::micro>(t1 - t0).count());
        ok += d.allowed && !d.degraded ? 1 : 0;
        deg += d.degraded ? 1 : 0;
      }
      allowed += ok;
      degraded += deg;
    });
  while (ready.load() < threads)
    std::this_thread::yield();
  auto start = steady_clock::now();
  go = true;
  for (auto& th : pool)
    th.join();
  auto secs = duration<double>(steady_clock::now() - start).count();
  std::vector<double> all;
  for (auto& v : lat)
    all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto total = static_cast<int64_t>(all.size());
  return result{name,
                threads,
                total,
                static_cast<double>(total) / secs,
                percentile(all, 0.50),
                percentile(all, 0.99),
                percentile(all, 0.999),
                100.0 * static_cast<double>(allowed.load())
                    / static_cast<double>(std::max<int64_t>(total, 1)),
                degraded.load()};
}

void drop_prefix(const std::string& url, const std::string& prefix) {
  auto rest = url.rfind("redis://", 0) == 0 ? url.substr(8) : url;
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  auto host = rest.substr(0, colon);
  int port
      = colon == std::string::npos ? 6379 : std::atoi(rest.c_str() + colon + 1);
  auto* c = redisConnectWithTimeout(host.c_str(), port, timeval{2, 0});
  if (c == nullptr || c->err != 0) {
    if (c != nullptr)
      redisFree(c);
    return;
  }
  std::string cursor = "0";
  auto pattern = prefix + "*";
  do {
    auto* r = static_cast<redisReply*>(redisCommand(
        c, "SCAN %s MATCH %s COUNT 1000", cursor.c_str(), pattern.c_str()));
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      if (r != nullptr)
        freeReplyObject(r);
      break;
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    auto* keys = r->element[1];
    if (keys->elements > 0) {
      std::vector<const char*> argv{"UNLINK"};
      std::vector<size_t> lens{6};
      for (size_t i = 0; i < keys->elements; ++i) {
        argv.push_back(keys->element[i]->str);
        lens.push_back(keys->element[i]->len);
      }
      auto* d = redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(),
                                 lens.data());
      if (d != nullptr)
        freeReplyObject(d);
    }
    freeReplyObject(r);
  } while (cursor != "0");
  redisFree(c);
}

} // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 8;
  int checks = argc > 2 ? std::max(1, std::atoi(argv[2])) : 20000;
  auto url = node_options::from_env().redis_url;
  std::random_device rd;
  auto prefix = "rlbench:" + std::to_string(rd()) + ":";

  rate_limiter_options opts;
  opts.redis_url = url;
  opts.key_prefix = prefix;
  opts.client_name = "vantage-ratelimit-bench";

  std::printf("rate limiter: one EVALSHA per check against %s, "
              "%d checks per thread\n",
              url.c_str(), checks);
  std::printf("seed: p50 0.6 ms / p99 1.8 ms; bar: p50 under 0.3 ms\n\n");
  std::printf("%-26s %7s %8s %10s %8s %8s %8s %8s\n", "check", "threads",
              "checks", "checks/s", "p50 us", "p99 us", "p999 us", "allowed");

  // Each run gets fresh keys, so every check is an allowed one.
  auto under = [&](const char* run_prefix) {
    auto o = opts;
    o.key_prefix = prefix + run_prefix;
    return o;
  };
  std::vector<result> results;
  {
    rate_limiter l1{under("l1:")};
    rate_limiter ln{under("ln:")};
    rate_limiter c1{under("c1:")};
    rate_limiter cn{under("cn:")};
    results.push_back(run(l1, "lookup (GCRA)", rule::lookup, 1, checks));
    results.push_back(run(ln, "lookup (GCRA)", rule::lookup, threads, checks));
    results.push_back(run(c1, "create (sliding log)", rule::create, 1, checks));
    results.push_back(
        run(cn, "create (sliding log)", rule::create, threads, checks));
  }
  int64_t degraded = 0;
  for (auto& r : results) {
    std::printf("%-26s %7d %8lld %10.0f %8.1f %8.1f %8.1f %7.1f%%\n", r.name,
                r.threads, static_cast<long long>(r.checks), r.per_s, r.p50_us,
                r.p99_us, r.p999_us, r.allowed_pct);
    degraded += r.degraded;
  }
  if (degraded > 0)
    std::printf("\nWARNING: %lld checks failed open (Redis unreachable?); "
                "the figures above are not Redis round trips\n",
                static_cast<long long>(degraded));
  drop_prefix(url, prefix);
  return 0;
}
