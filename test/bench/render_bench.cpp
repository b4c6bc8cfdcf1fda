// Load for POST /render against a running node (test/bench/render.sh starts
// it). Every request has distinct content unless --repeat, so each one runs a
// browser. Prints one RESULT line per run for the scripts and a readable
// summary beside the seed's figures.
//
//   render_bench URL MODE [options]
//   MODE: sequential  N renders one after another (--requests)
//         load        --concurrency clients for --seconds, back to back
//                     (after a 503 a client waits its Retry-After)
//         burst       --requests clients at once, one request each
//         repeat      the same content --requests times (cache hits)
//   --images a,b,c,d  thumbnails (catalog paths); default four demo products
//   render_bench --make-photos DIR: writes photo_1..4.png (240x240, smooth
//   colour fields with grain: they compress like photographs, unlike the
//   flat demo drawings) into DIR and exits

#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fstream>

#include <httplib.h>
#include "adapters/text.hpp"
#include "test/support/photos.hpp"

namespace {

using steady = std::chrono::steady_clock;

struct sample {
  int status = 0;
  double client_ms = 0;
  double render_ms = 0; // load + capture (the browser's part)
  double queue_ms = 0;
  double load_ms = 0;
  double capture_ms = 0;
  double upload_ms = 0;
  double prepare_ms = 0;
  bool cached = false;
  int retry_after_s = 0;
};

double field(const std::string& body, const char* name) {
  auto key = std::string{"\""} + name + "\":";
  auto at = body.find(key);
  if (at == std::string::npos)
    return 0;
  return std::atof(body.c_str() + at + key.size());
}

std::string body_for(const std::string& title,
                     const std::vector<std::string>& images) {
  std::string items;
  const char* names[] = {"Wireless Headphones", "Smart Watch", "Cashmere Scarf",
                         "Espresso Machine"};
  const char* prices[] = {"$249.99", "$399.00", "$89.50", "$599.00"};
  for (size_t i = 0; i < 4; ++i) {
    if (i > 0)
      items += ",";
    items += std::string{R"({"name":")"} + names[i] + R"(","image":")"
             + images[i % images.size()] + R"(","price":")" + prices[i]
             + "\"}";
  }
  return R"({"template":"wishlist-share","data":{"wishlist_title":")" + title
         + R"(","owner_name":"Maya C.","items":[)" + items
         + R"(],"item_count":7},"output":{"format":"png","width":1200,"height":630,"quality":85}})";
}

sample post(httplib::Client& c, const std::string& body) {
  sample s;
  auto t0 = steady::now();
  auto res = c.Post("/render", body, "application/json");
  s.client_ms = std::chrono::duration<double, std::milli>(steady::now() - t0)
                  .count();
  if (!res)
    return s;
  s.status = res->status;
  // A polite client: a 503 says when to come back.
  if (s.status == 503 && res->has_header("Retry-After"))
    s.retry_after_s = std::atoi(res->get_header_value("Retry-After").c_str());
  if (s.status == 200) {
    s.load_ms = field(res->body, "load");
    s.capture_ms = field(res->body, "capture");
    s.queue_ms = field(res->body, "queue");
    s.upload_ms = field(res->body, "upload");
    s.prepare_ms = field(res->body, "prepare");
    s.render_ms = s.load_ms + s.capture_ms;
    s.cached = res->body.find("\"cached\":true") != std::string::npos;
  }
  return s;
}

double pct(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

template <class F>
std::vector<double> pick(const std::vector<sample>& xs, int status, F f) {
  std::vector<double> out;
  for (auto& s : xs)
    if (s.status == status)
      out.push_back(f(s));
  return out;
}

std::unique_ptr<httplib::Client> client(const std::string& url) {
  auto c = std::make_unique<httplib::Client>(url);
  c->set_read_timeout(60, 0);
  c->set_connection_timeout(10, 0);
  c->set_keep_alive(true);
  // Without it the body's write waits for a delayed ACK (40 ms a request).
  c->set_tcp_nodelay(true);
  return c;
}

int make_photos(const std::string& dir) {
  for (unsigned n = 1; n <= 4; ++n) {
    std::ofstream out{dir + "/photo_" + std::to_string(n) + ".png",
                      std::ios::binary};
    out << vantage::test::grainy_photo_png(41 + n, 4);
    if (!out)
      return 1;
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 3 && !std::strcmp(argv[1], "--make-photos"))
    return make_photos(argv[2]);
  if (argc < 3) {
    std::fprintf(stderr, "usage: render_bench URL MODE [--concurrency N]"
                         " [--seconds S] [--requests N] [--images a,b,c,d]\n");
    return 2;
  }
  std::string url = argv[1];
  std::string mode = argv[2];
  int concurrency = 50;
  int seconds = 60;
  int requests = 50;
  std::vector<std::string> images{"/catalog/images/prd_001.png",
                                  "/catalog/images/prd_002.png",
                                  "/catalog/images/prd_003.png",
                                  "/catalog/images/prd_004.png"};
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--concurrency"))
      concurrency = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds"))
      seconds = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--requests"))
      requests = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--images")) {
      images = vantage::split_list(argv[i + 1]);
    }
  }
  auto run_id = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
  std::atomic<int64_t> seq{0};
  auto next_body = [&] {
    return body_for("Bench " + run_id + " " + std::to_string(seq++), images);
  };
  std::vector<sample> samples;
  std::mutex mtx;
  auto started = steady::now();
  if (mode == "sequential" || mode == "repeat") {
    auto c = client(url);
    auto same = next_body();
    for (int i = 0; i < requests; ++i)
      samples.push_back(post(*c, mode == "repeat" ? same : next_body()));
  } else if (mode == "load") {
    auto until = steady::now() + std::chrono::seconds{seconds};
    std::vector<std::thread> ts;
    for (int t = 0; t < concurrency; ++t)
      ts.emplace_back([&] {
        auto c = client(url);
        std::vector<sample> mine;
        while (steady::now() < until) {
          mine.push_back(post(*c, next_body()));
          if (mine.back().retry_after_s > 0)
            std::this_thread::sleep_for(std::chrono::seconds{mine.back().retry_after_s});
        }
        std::lock_guard<std::mutex> g{mtx};
        samples.insert(samples.end(), mine.begin(), mine.end());
      });
    for (auto& t : ts)
      t.join();
  } else if (mode == "burst") {
    std::vector<std::string> bodies;
    for (int i = 0; i < requests; ++i)
      bodies.push_back(next_body());
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < requests; ++t)
      ts.emplace_back([&, t] {
        auto c = client(url);
        ++ready;
        while (!go)
          std::this_thread::yield();
        auto s = post(*c, bodies[static_cast<size_t>(t)]);
        std::lock_guard<std::mutex> g{mtx};
        samples.push_back(s);
      });
    while (ready < requests)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    started = steady::now();
    go = true;
    for (auto& t : ts)
      t.join();
  } else {
    std::fprintf(stderr, "render_bench: unknown mode %s\n", mode.c_str());
    return 2;
  }
  double wall = std::chrono::duration<double>(steady::now() - started).count();
  int ok = 0, rejected = 0, timeouts = 0, other = 0, cached = 0;
  for (auto& s : samples) {
    ok += s.status == 200;
    rejected += s.status == 503;
    timeouts += s.status == 504;
    other += s.status != 200 && s.status != 503 && s.status != 504;
    cached += s.cached;
  }
  auto client_ok = pick(samples, 200, [](const sample& s) { return s.client_ms; });
  auto render = pick(samples, 200, [](const sample& s) { return s.render_ms; });
  auto load = pick(samples, 200, [](const sample& s) { return s.load_ms; });
  auto capture = pick(samples, 200, [](const sample& s) { return s.capture_ms; });
  auto queue = pick(samples, 200, [](const sample& s) { return s.queue_ms; });
  auto upload = pick(samples, 200, [](const sample& s) { return s.upload_ms; });
  auto prepare = pick(samples, 200, [](const sample& s) { return s.prepare_ms; });
  auto reject_ms = pick(samples, 503, [](const sample& s) { return s.client_ms; });
  std::printf("RESULT mode=%s requests=%zu ok=%d rejected=%d timeouts=%d"
              " other=%d cached=%d wall_s=%.1f ok_per_s=%.2f"
              " e2e_p50=%.1f e2e_p99=%.1f render_p50=%.1f render_p99=%.1f"
              " load_p50=%.1f capture_p50=%.1f queue_p50=%.1f queue_p99=%.1f"
              " upload_p50=%.1f prepare_p50=%.1f reject_p50=%.1f"
              " reject_p99=%.1f\n",
              mode.c_str(), samples.size(), ok, rejected, timeouts, other,
              cached, wall, ok / wall, pct(client_ok, 50), pct(client_ok, 99),
              pct(render, 50), pct(render, 99), pct(load, 50),
              pct(capture, 50), pct(queue, 50), pct(queue, 99),
              pct(upload, 50), pct(prepare, 50), pct(reject_ms, 50),
              pct(reject_ms, 99));
  std::printf("  %s: %zu requests, %d ok (%d from cache), %d pool-exhausted"
              " (p50 %.0f ms, p99 %.0f ms to the 503), %d timeouts, %d other;"
              " %.2f renders/s\n",
              mode.c_str(), samples.size(), ok, cached, rejected,
              pct(reject_ms, 50), pct(reject_ms, 99), timeouts, other, ok / wall);
  std::printf("  accepted end to end p50 %.0f ms p99 %.0f ms; render step"
              " (layout+capture+encode) p50 %.0f ms p99 %.0f ms; phases p50:"
              " queue %.0f, prepare %.0f, load %.0f, capture+encode %.0f,"
              " upload %.0f ms\n",
              pct(client_ok, 50), pct(client_ok, 99), pct(render, 50),
              pct(render, 99), pct(queue, 50), pct(prepare, 50), pct(load, 50),
              pct(capture, 50), pct(upload, 50));
  std::printf("  seed: single render p50 478-521 ms; under load p50 512 ms,"
              " p99 4,210 ms, 1.8%% errors (6 concurrent slots)\n");
  return other == 0 ? 0 : 1;
}
