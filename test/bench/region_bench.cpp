// CAF-level benchmarks, no HTTP:
//  1. request/response to an entity actor through its region (msgs/s), from
//     N concurrent blocking requesters;
//  2. the I/O pool: latency of fast queries while slow queries (pg_sleep)
//     occupy some workers, to show a slow query stalls nothing unrelated.
// Prints figures; never asserts (benchmarks are not tests).

#include <algorithm>
#include <string>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "actors/io_pool.hpp"
#include "actors/region.hpp"
#include "adapters/config.hpp"
#include "messages/type_ids.hpp"

using namespace vantage;
using namespace std::chrono;

namespace {

using echo_actor = caf::typed_actor<caf::replies_to<atom::get>::with<product>,
                                    caf::reacts_to<atom::stop>>;

echo_actor::behavior_type echo_impl(echo_actor::pointer self,
                                    std::string key) {
  return {
    [key](atom::get) { return product{key, "bench", 100, "USD", "", true}; },
    [self](atom::stop) { self->quit(); },
  };
}

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

class bench_config : public caf::actor_system_config {
public:
  explicit bench_config(const char* policy) {
    register_message_types(*this);
    if (std::string{policy} == "stealing")
      set("scheduler.policy", caf::atom("stealing"));
    else
      set("scheduler.policy", caf::atom("sharing"));
    set("logger.verbosity", caf::atom("quiet"));
  }
};

void region_round_trips(const char* policy) {
  bench_config cfg{policy};
  caf::actor_system sys{cfg};
  auto counters = std::make_shared<region_counters>();
  auto region = spawn_region(
    sys, region_options{"bench", minutes{10}, "local"},
    [](caf::local_actor* self, const std::string& key, bool) {
      return caf::actor_cast<caf::actor>(self->spawn(echo_impl, key));
    },
    counters);
  constexpr int requesters = 8;
  constexpr int keys = 1000;
  auto deadline = steady_clock::now() + seconds{3};
  std::atomic<int64_t> done{0};
  std::vector<std::vector<double>> lat(requesters);
  std::vector<std::thread> threads;
  for (int t = 0; t < requesters; ++t)
    threads.emplace_back([&, t] {
      caf::scoped_actor self{sys};
      int i = t;
      while (steady_clock::now() < deadline) {
        auto t0 = steady_clock::now();
        auto r = ask<echo_actor, product>(self, region,
                                          "k" + std::to_string(i++ % keys),
                                          seconds{5}, atom::get_v);
        if (!r)
          std::abort();
        lat[t].push_back(duration<double, std::micro>(steady_clock::now() - t0)
                           .count());
        ++done;
      }
    });
  for (auto& th : threads)
    th.join();
  std::vector<double> all;
  for (auto& v : lat)
    all.insert(all.end(), v.begin(), v.end());
  std::printf("region round trip  %-8s %8.0f req/s  p50 %6.1f us  p99 %6.1f "
              "us  (%d blocking requesters, %d entities, 2 messages each)\n",
              policy, done / 3.0, percentile(all, 0.5), percentile(all, 0.99),
              requesters, keys);
  caf::anon_send_exit(region, caf::exit_reason::user_shutdown);
}

void slow_query_isolation() {
  bench_config cfg{"sharing"};
  caf::actor_system sys{cfg};
  auto url = env_or("VANTAGE_DATABASE_URL", "");
  auto pool = spawn_io_pool(sys, io_pool_options{url, 4, 1024, 5000});
  auto fast_job = make_db_task<bool>([](pg_connection& c) -> caf::expected<bool> {
    c.exec("bench_fast", "SELECT 1");
    return true;
  });
  auto slow_job = make_db_task<bool>([](pg_connection& c) -> caf::expected<bool> {
    c.exec("bench_slow", "SELECT pg_sleep(2)");
    return true;
  });
  caf::scoped_actor self{sys};
  auto measure = [&](const char* label) {
    std::vector<double> lat;
    auto until = steady_clock::now() + milliseconds{1500};
    while (steady_clock::now() < until) {
      auto t0 = steady_clock::now();
      bool ok = false;
      self->request(pool, seconds{5}, fast_job)
        .receive([&](bool) { ok = true; }, [&](caf::error&) {});
      if (!ok) {
        std::printf("  query failed (is PostgreSQL up?)\n");
        return;
      }
      lat.push_back(duration<double, std::micro>(steady_clock::now() - t0)
                      .count());
    }
    std::printf("io pool %-28s %6zu queries  p50 %7.1f us  p99 %7.1f us  max "
                "%8.1f us\n",
                label, lat.size(), percentile(lat, 0.5), percentile(lat, 0.99),
                percentile(lat, 1.0));
  };
  measure("SELECT 1 alone");
  // Occupy 3 of 4 workers with 2-second queries, then measure again.
  for (int i = 0; i < 3; ++i)
    self->send(pool, slow_job);
  std::this_thread::sleep_for(milliseconds{100});
  measure("SELECT 1 beside 3 x pg_sleep(2)");
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
}

} // namespace

int main() {
  region_round_trips("sharing");
  region_round_trips("stealing");
  slow_query_isolation();
  return 0;
}
