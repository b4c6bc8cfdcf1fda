// Fixed-rate HTTP load: C connections share a target rate; each request has
// a scheduled send time and its latency is measured from that time, so a
// stalled server shows up in the percentiles instead of slowing the load
// down (no coordinated omission). Complements wrk, which measures at
// saturation. Each connection waits for its answer before the next request,
// so when this returns nothing it sent is still in flight: the 200s it
// prints are exactly the answered requests (a shared view counts one view).
// Several paths are used round-robin. Loopback targets only.
//
//   fixed_rate URL RATE SECONDS CONNECTIONS PATH [PATH...] ["Header: value"...]
// (arguments starting with "/" are paths, the others headers) prints:
//   RESULT <achieved req/s> <p50 ms> <p99 ms> <p999 ms> <errors>
//   COUNTS <200s> <requests> <late: sent over 1 ms after schedule>
// The achieved rate is requests over the time until the last one was sent, so
// a server that falls behind shows a rate below the target.

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
    std::fprintf(stderr, "usage: fixed_rate URL RATE SECONDS CONNECTIONS "
                         "PATH [PATH...] [\"Header: value\"...]\n");
    return 2;
  }
  std::string url = argv[1];
  double rate = std::atof(argv[2]);
  double seconds = std::atof(argv[3]);
  int conns = std::atoi(argv[4]);
  std::vector<std::string> paths;
  httplib::Headers headers;
  for (int i = 5; i < argc; ++i) {
    std::string arg = argv[i];
    auto colon = arg.find(':');
    if (!arg.empty() && arg[0] == '/')
      paths.push_back(arg);
    else if (colon != std::string::npos)
      headers.emplace(arg.substr(0, colon),
                      arg.substr(arg.find_first_not_of(' ', colon + 1)));
  }
  if (paths.empty()) {
    std::fprintf(stderr, "fixed_rate: at least one PATH (starting with /)\n");
    return 2;
  }
  if (url.rfind("http://127.", 0) != 0 && url.rfind("http://localhost", 0) != 0) {
    std::fprintf(stderr, "fixed_rate: loopback targets only\n");
    return 2;
  }
  if (rate <= 0 || seconds <= 0 || conns <= 0) {
    std::fprintf(stderr, "fixed_rate: RATE, SECONDS and CONNECTIONS must be positive\n");
    return 2;
  }
  auto per_conn_interval = duration<double>(conns / rate);
  auto start = steady_clock::now() + milliseconds{100};
  auto end = start + duration_cast<steady_clock::duration>(duration<double>(seconds));
  std::vector<std::vector<double>> lat(conns);
  std::atomic<long> errors{0};
  std::atomic<long> ok{0};
  std::atomic<long> late{0};
  std::vector<steady_clock::time_point> last_send(conns, start);
  std::vector<std::thread> threads;
  for (int c = 0; c < conns; ++c)
    threads.emplace_back([&, c] {
      httplib::Client cli{url};
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      auto offset = duration_cast<steady_clock::duration>(per_conn_interval * c / conns);
      for (long i = 0;; ++i) {
        auto scheduled = start + offset
                         + duration_cast<steady_clock::duration>(per_conn_interval * i);
        if (scheduled >= end)
          break;
        std::this_thread::sleep_until(scheduled);
        if (steady_clock::now() - scheduled > milliseconds{1})
          ++late;
        last_send[c] = steady_clock::now();
        auto& path = paths[static_cast<size_t>(i * conns + c) % paths.size()];
        auto r = cli.Get(path.c_str(), headers);
        if (r && r->status == 200)
          ++ok;
        else
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
  auto sent_until = *std::max_element(last_send.begin(), last_send.end());
  auto span = std::max(seconds, duration<double>(sent_until - start).count());
  std::printf("RESULT %.0f %.2f %.2f %.2f %ld\n", all.size() / span, pct(0.5),
              pct(0.99), pct(0.999), errors.load());
  std::printf("COUNTS %ld %zu %ld\n", ok.load(), all.size(), late.load());
  return 0;
}
