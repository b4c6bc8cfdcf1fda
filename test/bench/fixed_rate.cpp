// Fixed-rate HTTP load: C connections share a target rate; each request has
// a scheduled send time and its latency is measured from that time, so a
// stalled server shows up in the percentiles instead of slowing the load
// down (no coordinated omission). Complements wrk, which measures at
// saturation. Loopback targets only.
//
//   fixed_rate URL PATH RATE SECONDS CONNECTIONS [HEADER...]
// prints: RESULT <achieved req/s> <p50 ms> <p99 ms> <p999 ms> <errors>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

using namespace std::chrono;

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: fixed_rate URL PATH RATE SECONDS CONNECTIONS "
                         "[Header: value ...]\n");
    return 2;
  }
  std::string url = argv[1];
  std::string path = argv[2];
  double rate = std::atof(argv[3]);
  double seconds = std::atof(argv[4]);
  int conns = std::atoi(argv[5]);
  httplib::Headers headers;
  for (int i = 6; i < argc; ++i) {
    std::string h = argv[i];
    auto colon = h.find(':');
    if (colon != std::string::npos)
      headers.emplace(h.substr(0, colon), h.substr(h.find_first_not_of(' ', colon + 1)));
  }
  if (url.rfind("http://127.", 0) != 0 && url.rfind("http://localhost", 0) != 0) {
    std::fprintf(stderr, "fixed_rate: loopback targets only\n");
    return 2;
  }
  auto per_conn_interval = duration<double>(conns / rate);
  auto start = steady_clock::now() + milliseconds{100};
  auto end = start + duration_cast<steady_clock::duration>(duration<double>(seconds));
  std::vector<std::vector<double>> lat(conns);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < conns; ++c)
    threads.emplace_back([&, c] {
      httplib::Client cli{url};
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      // Spread the connections' schedules evenly over one interval.
      auto offset = duration_cast<steady_clock::duration>(per_conn_interval * c / conns);
      for (long i = 0;; ++i) {
        auto scheduled = start + offset
                         + duration_cast<steady_clock::duration>(per_conn_interval * i);
        if (scheduled >= end)
          break;
        std::this_thread::sleep_until(scheduled);
        auto r = cli.Get(path.c_str(), headers);
        if (!r || r->status != 200)
          ++errors;
        lat[c].push_back(duration<double, std::milli>(steady_clock::now() - scheduled).count());
      }
    });
  for (auto& t : threads)
    t.join();
  std::vector<double> all;
  for (auto& v : lat)
    all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[static_cast<size_t>(p * (all.size() - 1))];
  };
  std::printf("RESULT %.0f %.2f %.2f %.2f %d\n", all.size() / seconds, pct(0.5),
              pct(0.99), pct(0.999), errors.load());
  return 0;
}
