// The preview renderer through whole nodes: real headless Chromium (Debian's
// chromium), the local object store and PostgreSQL. Browser faults are made
// for real: the test process is the node, so its Chromium children are
// found in /proc and stopped or killed with signals.

#define BOOST_TEST_MODULE renderer
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "adapters/chromium.hpp"
#include "adapters/ids.hpp"
#include "adapters/json.hpp"
#include "adapters/png.hpp"
#include "adapters/preview_fallback.hpp"
#include "adapters/preview_template.hpp"
#include "test/support/node_fixture.hpp"
#include "test/support/photos.hpp"

using namespace vantage;
using namespace vantage::test;
using namespace std::chrono_literals;

namespace {

/// Sets environment variables for the next node start, restoring them after.
struct scoped_env {
  explicit scoped_env(std::vector<std::pair<std::string, std::string>> vars) {
    for (auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved.emplace_back(k, old ? std::optional<std::string>{old} : std::nullopt);
      ::setenv(k.c_str(), v.c_str(), 1);
    }
  }
  ~scoped_env() {
    for (auto& [k, v] : saved)
      v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
};

/// Chromium main processes started by this (test = node) process.
std::vector<pid_t> browser_pids() {
  std::vector<pid_t> out;
  for (auto& p : list_processes())
    if (p.ppid == ::getpid() && p.comm.find("chrom") != std::string::npos
        && p.state != 'Z')
      out.push_back(p.pid);
  return out;
}

int64_t json_int(const std::string& body, const char* a, const char* b = nullptr) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(body).get(doc) != simdjson::SUCCESS)
    return -1;
  int64_t v = -1;
  auto el = b ? doc[a][b] : doc[a];
  if (el.get(v) != simdjson::SUCCESS)
    return -1;
  return v;
}

bool json_bool(const std::string& body, const char* a) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  bool v = false;
  return p.parse(body).get(doc) == simdjson::SUCCESS
         && doc[a].get(v) == simdjson::SUCCESS && v;
}

/// Width and height from a PNG's IHDR; {0, 0} if it is not a PNG.
std::pair<uint32_t, uint32_t> png_size(const std::string& png) {
  if (png.size() < 24 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0)
    return {0, 0};
  auto be = [&](size_t at) {
    return (uint32_t{static_cast<unsigned char>(png[at])} << 24)
           | (uint32_t{static_cast<unsigned char>(png[at + 1])} << 16)
           | (uint32_t{static_cast<unsigned char>(png[at + 2])} << 8)
           | uint32_t{static_cast<unsigned char>(png[at + 3])};
  };
  return {be(16), be(20)};
}

std::string render_body(const std::string& title,
                        std::vector<std::string> images
                        = {"/catalog/images/prd_001.png",
                           "/catalog/images/prd_002.png"},
                        const std::string& output
                        = R"({"format":"png","width":1200,"height":630,"quality":85})") {
  static const char* names[] = {"Wireless Headphones", "Smart Watch",
                                "Cashmere Scarf", "Espresso Machine"};
  std::string items;
  for (size_t i = 0; i < images.size(); ++i)
    items += std::string{i ? "," : ""} + R"({"name":")" + names[i % 4]
             + R"(","image":)" + json_quote(images[i]) + R"(,"price":"$249.99"})";
  return R"({"template":"wishlist-share","data":{"wishlist_title":)"
         + json_quote(title) + R"(,"owner_name":"Maya C.","items":[)" + items
         + R"(],"item_count":7},"output":)" + output + "}";
}

/// Path part of an absolute URL.
std::string path_of(const std::string& url) {
  auto at = url.find("://");
  return url.substr(url.find('/', at + 3));
}

bool wait_for_pages(node_fixture& n, int64_t pages) {
  return eventually(
    [&] {
      return json_int(n.call("GET", "/healthz").body, "browser_pool",
                      "available")
             >= pages;
    },
    30s);
}

/// Stops (SIGSTOP) the node's only browser once it is warm and returns its
/// pid: a render sent now certainly hangs inside the browser.
pid_t stop_the_browser(node_fixture& n) {
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto pids = browser_pids();
  BOOST_REQUIRE_EQUAL(pids.size(), 1u);
  ::kill(pids[0], SIGSTOP);
  return pids[0];
}

/// Clients posting distinct renders back to back, from construction until
/// `stop()` (or `limit`).
class render_load {
public:
  render_load(node_fixture& n, int clients, std::string base,
              std::chrono::seconds limit) {
    for (int c = 0; c < clients; ++c)
      clients_.push_back(std::async(std::launch::async, [this, &n, base, c, limit] {
        httplib::Client cli{n.node->base_url()};
        cli.set_read_timeout(30, 0);
        int sent = 0;
        int ok = 0;
        auto until = std::chrono::steady_clock::now() + limit;
        while (!enough_ && std::chrono::steady_clock::now() < until) {
          auto title = base + " " + std::to_string(c) + "." + std::to_string(sent++);
          auto res = cli.Post("/render", render_body(title), "application/json");
          ok += res && res->status == 200;
        }
        return std::make_pair(sent, ok);
      }));
  }
  ~render_load() {
    stop();
  }
  /// Ends the load; renders sent and renders answered 200, over all clients.
  std::pair<int, int> stop() {
    enough_ = true;
    for (auto& f : clients_)
      if (f.valid()) {
        auto [s, o] = f.get();
        totals_.first += s;
        totals_.second += o;
      }
    return totals_;
  }

private:
  std::atomic<bool> enough_{false};
  std::vector<std::future<std::pair<int, int>>> clients_;
  std::pair<int, int> totals_{0, 0};
};

/// Until a render occupies a page.
bool wait_busy(node_fixture& n) {
  return eventually(
    [&] {
      return json_int(n.call("GET", "/healthz").body, "browser_pool", "busy")
             == 1;
    },
    10s);
}

} // namespace

BOOST_AUTO_TEST_CASE(render_answers_with_a_stored_png_and_caches_it) {
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto before = n.metric("og_renderer_renders_total");
  auto title = unique("Holiday Gift Ideas ");
  auto r = n.call("POST", "/render", render_body(title));
  BOOST_REQUIRE_EQUAL(r.status, 200);
  BOOST_TEST(!r.header("X-Render-Time-Ms").empty());
  BOOST_TEST(r.str("cache_key").rfind("sha256:", 0) == 0u);
  BOOST_TEST(json_int(r.body, "cache_ttl_seconds") == 86400);
  BOOST_TEST(json_int(r.body, "render_time_ms") >= 0);
  BOOST_TEST(!json_bool(r.body, "cached"));
  BOOST_TEST(json_int(r.body, "timings_ms", "capture") >= 0);
  auto img = n.call("GET", path_of(r.str("image_url")));
  BOOST_REQUIRE_EQUAL(img.status, 200);
  BOOST_TEST(img.header("Content-Type") == "image/png");
  auto [w, h] = png_size(img.body);
  BOOST_TEST(w == 1200u);
  BOOST_TEST(h == 630u);
  BOOST_TEST(static_cast<int64_t>(img.body.size())
             == json_int(r.body, "image_size_bytes"));
  BOOST_TEST(img.body.size() < 600u * 1024u); // WhatsApp's limit
  BOOST_TEST(n.metric("og_renderer_renders_total") == before + 1);

  // The same content again: from the cache, no browser.
  auto again = n.call("POST", "/render", render_body(title));
  BOOST_REQUIRE_EQUAL(again.status, 200);
  BOOST_TEST(json_bool(again.body, "cached"));
  BOOST_TEST(again.str("cache_key") == r.str("cache_key"));
  BOOST_TEST(n.metric("og_renderer_renders_total") == before + 1);

  // Identical concurrent requests share one render.
  auto burst = unique("Burst ");
  std::vector<std::future<int>> calls;
  for (int i = 0; i < 8; ++i)
    calls.push_back(std::async(std::launch::async, [&] {
      httplib::Client c{n.node->base_url()};
      c.set_read_timeout(20, 0);
      auto res = c.Post("/render", render_body(burst), "application/json");
      return res ? res->status : 0;
    }));
  for (auto& f : calls)
    BOOST_TEST(f.get() == 200);
  // Answers go out when the first render ends; extra renders, had there
  // been any, would end within the next second or so.
  BOOST_TEST(!eventually(
    [&] { return n.metric("og_renderer_renders_total") > before + 2; }, 2s));
  BOOST_TEST(n.metric("og_renderer_renders_total") == before + 2);
}

BOOST_AUTO_TEST_CASE(the_cache_lasts_its_ttl_and_the_metrics_are_exported) {
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto body = render_body(unique("TTL "));
  BOOST_REQUIRE_EQUAL(n.call("POST", "/render", body).status, 200);
  n.node->advance(23h);
  auto hit = n.call("POST", "/render", body);
  BOOST_TEST(json_bool(hit.body, "cached"));
  BOOST_TEST(json_int(hit.body, "cache_ttl_seconds") <= 3600);
  n.node->advance(2h); // 25 h after the render: stale
  auto again = n.call("POST", "/render", body);
  BOOST_REQUIRE_EQUAL(again.status, 200);
  BOOST_TEST(!json_bool(again.body, "cached"));
  auto text = n.call("GET", "/metrics").body;
  for (auto name : {"og_renderer_browser_pool_available ", "og_renderer_browser_pool_busy ",
                    "og_renderer_render_duration_ms_bucket{le=",
                    "og_renderer_render_errors_total{kind=\"timeout\"} ",
                    "og_renderer_upload_duration_ms_bucket{le=", "og_renderer_memory_bytes ",
                    "og_renderer_queue_depth ", "og_renderer_rejections_total{reason=",
                    "vantage_preview_breaker_state{state=\"closed\"} 1"})
    BOOST_TEST(text.find(name) != std::string::npos, name);
  BOOST_TEST(n.metric("og_renderer_memory_bytes") > 0);
  auto h = n.call("GET", "/healthz");
  BOOST_TEST(h.str("object_store") == "ok");
  BOOST_TEST(json_int(h.body, "browser_pool", "total") == 2);
}

BOOST_AUTO_TEST_CASE(the_cache_survives_a_restart) {
  auto body = render_body(unique("Restart "));
  {
    node_fixture n;
    BOOST_REQUIRE(wait_for_pages(n, 1));
    auto r = n.call("POST", "/render", body);
    BOOST_REQUIRE_EQUAL(r.status, 200);
    BOOST_TEST(!json_bool(r.body, "cached"));
  }
  node_fixture again; // a new node: its cache index comes from PostgreSQL
  BOOST_REQUIRE(wait_for_pages(again, 1));
  auto before = again.metric("og_renderer_renders_total");
  auto r = again.call("POST", "/render", body);
  BOOST_REQUIRE_EQUAL(r.status, 200);
  BOOST_TEST(json_bool(r.body, "cached"));
  BOOST_TEST(again.metric("og_renderer_renders_total") == before);
}

BOOST_AUTO_TEST_CASE(a_failed_upload_is_retried_once_through_the_s3_store) {
  // A loopback S3 stand-in (the S3 adapter itself is tested against s3rver
  // in object_store_test): each object's first PUT fails with 500 while
  // `flaky`, every PUT fails while `down`.
  std::mutex mtx;
  std::map<std::string, std::string> objects;
  std::map<std::string, int> puts;
  std::atomic<bool> flaky{true};
  std::atomic<bool> down{false};
  httplib::Server s3;
  s3.set_payload_max_length(8 << 20);
  s3.Put(R"(/bucket/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> g{mtx};
    auto key = req.matches[1].str();
    if (down || (flaky && puts[key]++ == 0)) {
      res.status = 500;
      res.set_content("<Error><Code>InternalError</Code></Error>", "application/xml");
      return;
    }
    objects[key] = req.body;
    res.status = 200;
  });
  s3.Get(R"(/bucket/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> g{mtx};
    auto it = objects.find(req.matches[1].str());
    if (it == objects.end()) {
      res.status = 404;
      return;
    }
    res.set_content(it->second, "image/png");
  });
  s3.Get("/bucket", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  auto port = s3.bind_to_any_port("127.0.0.1");
  std::thread t{[&] { s3.listen_after_bind(); }};
  // Stopped and joined however the test ends (a failed REQUIRE included).
  struct stop_at_exit {
    httplib::Server& server;
    std::thread& thread;
    ~stop_at_exit() {
      server.stop();
      thread.join();
    }
  } stopper{s3, t};
  {
    scoped_env env{{{"VANTAGE_OBJECT_STORE", "s3"},
                    {"VANTAGE_S3_ENDPOINT", "http://127.0.0.1:" + std::to_string(port)},
                    {"VANTAGE_S3_BUCKET", "bucket"},
                    {"VANTAGE_S3_ACCESS_KEY_ID", "test"},
                    {"VANTAGE_S3_SECRET_ACCESS_KEY", "test-secret"}}};
    node_fixture n;
    BOOST_REQUIRE(wait_for_pages(n, 1));
    auto r = n.call("POST", "/render", render_body(unique("S3 ")));
    BOOST_REQUIRE_EQUAL(r.status, 200);
    auto key = path_of(r.str("image_url")).substr(1);
    {
      std::lock_guard<std::mutex> g{mtx};
      BOOST_TEST(puts[key] == 2); // one failure, one retry
      BOOST_TEST(png_size(objects[key]).first == 1200u);
    }
    // The gateway serves what the store holds.
    BOOST_TEST(n.call("GET", "/" + key).body.size() > 1000u);
    // Both attempts fail: the render fails, a share falls back.
    down = true;
    auto failed = n.call("POST", "/render", render_body(unique("S3 down ")));
    BOOST_TEST(failed.status == 502);
    BOOST_TEST(failed.str("message").find("upload failed") != std::string::npos,
               failed.body);
    down = false;
    flaky = false;
  }
}

BOOST_AUTO_TEST_CASE(bad_render_input_is_refused_and_renders_nothing) {
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto before = n.metric("og_renderer_renders_total");
  auto t = unique("Bad ");
  auto body = render_body(t);
  auto swap = [&](const std::string& from, const std::string& to) {
    auto b = body;
    b.replace(b.find(from), from.size(), to);
    return b;
  };
  auto expect = [&](const std::string& b, int status, const char* why) {
    auto r = n.call("POST", "/render", b);
    BOOST_TEST(r.status == status, why << ": " << r.status << " " << r.body);
    if (status == 422)
      BOOST_TEST(r.str("error") == "VALIDATION_FAILED", why);
  };
  expect(swap("wishlist-share", "party-invite"), 422, "unknown template");
  expect(swap("\"width\":1200", "\"width\":100"), 422, "width 100");
  expect(swap("\"width\":1200", "\"width\":3000"), 422, "width 3000");
  expect(swap("\"height\":630", "\"height\":\"630\""), 422, "height as text");
  expect(swap("\"format\":\"png\"", "\"format\":\"jpeg\""), 422, "jpeg");
  expect(swap("\"item_count\":7", "\"item_count\":-1"), 422, "negative count");
  std::string many = "[";
  for (int i = 0; i < 101; ++i)
    many += std::string{i ? "," : ""} + R"({"name":"x"})";
  many += "]";
  auto items_at = body.find("\"items\":[");
  auto items_end = body.find("],", items_at);
  auto with_many = body.substr(0, items_at) + "\"items\":" + many
                   + body.substr(items_end + 1);
  expect(with_many, 422, "101 items");
  expect(swap("\"items\":[", "\"items\":[7,"), 422, "item not an object");
  expect(R"({"template":"wishlist-share"})", 422, "no data");
  expect("{\"template\":", 400, "malformed JSON");
  expect(render_body(std::string(1024 * 1024, 'x')), 413, "1 MB title");
  auto r = n.call("POST", "/render", body, {}, "text/plain");
  BOOST_TEST(r.status == 415);
  BOOST_TEST(n.metric("og_renderer_renders_total") == before);
}

BOOST_AUTO_TEST_CASE(thumbnails_come_only_from_the_catalog_and_allowed_hosts) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / unique("vantage-thumbs-");
  fs::create_directories(dir / "images");
  std::vector<uint8_t> pixels(8 * 8 * 3, 120);
  std::string png = encode_png_rgb(pixels, 8, 8);
  std::ofstream{dir / "images" / "ok.png", std::ios::binary} << png;
  std::ofstream{dir / "secret.png", std::ios::binary} << png;
  thumbnail_policy policy;
  policy.catalog_images_dir = (dir / "images").string();
  policy.timeout_ms = 500;
  BOOST_TEST(load_thumbnail("/catalog/images/ok.png", policy)
               .rfind("data:image/png;base64,", 0)
             == 0u);
  BOOST_TEST(!load_thumbnail("file://" + (dir / "images" / "ok.png").string(),
                             policy)
                .empty());
  for (auto bad : {std::string{"/catalog/images/../secret.png"},
                   std::string{"/catalog/images/%2e%2e/secret.png"},
                   std::string{"/catalog/images/../../../../etc/passwd"},
                   "file://" + (dir / "secret.png").string(),
                   std::string{"file:///etc/passwd"}, std::string{"/etc/passwd"},
                   std::string{"data:image/png;base64,AAAA"},
                   std::string{"https://cdn.example.com/x.png"},
                   std::string{"http://user@127.0.0.1/x.png"},
                   std::string{"/catalog/images/missing.png"}})
    BOOST_TEST(load_thumbnail(bad, policy).empty(), bad);

  // A loopback image server: PNG, 404, HTML and a hang.
  httplib::Server srv;
  srv.Get("/ok.png", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(png, "image/png");
  });
  srv.Get("/page.png", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<html><script>alert(1)</script></html>", "image/png");
  });
  std::atomic<bool> release{false};
  srv.Get("/slow.png", [&](const httplib::Request&, httplib::Response& res) {
    for (int i = 0; i < 100 && !release; ++i)
      std::this_thread::sleep_for(50ms);
    res.set_content(png, "image/png");
  });
  auto port = srv.bind_to_any_port("127.0.0.1");
  std::thread t{[&] { srv.listen_after_bind(); }};
  auto base = "http://127.0.0.1:" + std::to_string(port);
  BOOST_TEST(!load_thumbnail(base + "/ok.png", policy).empty());
  BOOST_TEST(load_thumbnail(base + "/missing.png", policy).empty());
  BOOST_TEST(load_thumbnail(base + "/page.png", policy).empty());
  auto started = std::chrono::steady_clock::now();
  BOOST_TEST(load_thumbnail(base + "/slow.png", policy).empty());
  BOOST_TEST(((std::chrono::steady_clock::now() - started) < 2s));
  policy.allowed_hosts = {"example.org"};
  BOOST_TEST(load_thumbnail(base + "/ok.png", policy).empty());
  release = true;
  srv.stop();
  t.join();
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_card_of_grainy_photos_stays_under_600_kb) {
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto dir = node_options::from_env().catalog_dir + "/images/";
  std::vector<std::string> images;
  for (unsigned i = 0; i < 4; ++i) {
    auto name = unique("grain_") + ".png";
    std::ofstream{dir + name, std::ios::binary} << grainy_photo_png(7 + i, 9);
    images.push_back("/catalog/images/" + name);
  }
  auto r = n.call("POST", "/render", render_body(unique("Grain "), images));
  BOOST_REQUIRE_EQUAL(r.status, 200);
  // Plain, this card is about 625 KB; the softened second capture is not.
  BOOST_TEST(json_int(r.body, "image_size_bytes") <= 600 * 1024, r.body);
  auto img = n.call("GET", path_of(r.str("image_url")));
  BOOST_TEST(img.body.size() <= 600u * 1024u);
}

BOOST_AUTO_TEST_CASE(render_with_unusable_images_draws_placeholders) {
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  for (auto image : {"file:///etc/passwd", "http://10.1.2.3/x.png",
                     "/catalog/images/../../../etc/shadow", "javascript:alert(1)"}) {
    auto r = n.call("POST", "/render", render_body(unique("Placeholder "), {image}));
    BOOST_TEST(r.status == 200, image << ": " << r.body);
  }
}

BOOST_AUTO_TEST_CASE(a_browser_killed_mid_render_is_restarted_and_the_render_retried) {
  scoped_env env{{{"BROWSER_PAGES", "1"}}};
  node_fixture n;
  // Stopped first, so the render is certainly inside the browser when the
  // kill lands.
  auto pid = stop_the_browser(n);
  auto call = std::async(std::launch::async, [&] {
    httplib::Client c{n.node->base_url()};
    c.set_read_timeout(30, 0);
    auto res = c.Post("/render", render_body(unique("Crash ")), "application/json");
    return res ? res->status : 0;
  });
  BOOST_REQUIRE(wait_busy(n));
  ::kill(pid, SIGKILL);
  BOOST_TEST(call.get() == 200);
  BOOST_TEST(n.metric_sum("og_renderer_browser_crashes_total") >= 1);
  BOOST_TEST(n.metric("og_renderer_retries_total") >= 1);
  auto now = browser_pids();
  BOOST_REQUIRE_EQUAL(now.size(), 1u);
  BOOST_TEST(now[0] != pid);
}

BOOST_AUTO_TEST_CASE(a_hung_browser_is_detected_and_replaced) {
  scoped_env env{{{"BROWSER_PAGES", "1"}}};
  node_fixture n;
  auto pid = stop_the_browser(n);
  auto started = std::chrono::steady_clock::now();
  auto r = n.call("POST", "/render", render_body(unique("Hang ")));
  BOOST_TEST(r.status == 200, r.body);
  // Heartbeat (2 s without an answer) plus a restart, well inside the
  // render timeout of 5 s: the render was retried, not timed out.
  BOOST_TEST(((std::chrono::steady_clock::now() - started) < 5s));
  BOOST_TEST(n.metric_sum("og_renderer_browser_hangs_total") >= 1);
  ::kill(pid, SIGKILL); // already killed by the slot; harmless
}

BOOST_AUTO_TEST_CASE(slow_renders_time_out_and_a_full_pool_refuses_fast) {
  scoped_env env{{{"BROWSER_PAGES", "1"},
                  {"RENDER_TIMEOUT_MS", "800"},
                  {"VANTAGE_RENDER_QUEUE_WAIT_MS", "300"},
                  {"VANTAGE_HTTP_THREADS", "2"}}};
  node_fixture n;
  auto pid = stop_the_browser(n);
  auto post = [&](const std::string& title) {
    return std::async(std::launch::async, [&n, title] {
      httplib::Client c{n.node->base_url()};
      c.set_read_timeout(30, 0);
      auto t0 = std::chrono::steady_clock::now();
      auto res = c.Post("/render", render_body(title), "application/json");
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
      // Boost.Test checks stay on the test's thread: hand everything back.
      return std::make_tuple(res ? res->status : 0, ms,
                             res ? res->get_header_value("Retry-After") : "");
    });
  };
  auto slow = post(unique("Slow "));
  BOOST_REQUIRE(wait_busy(n));
  // More waiting requests than the front has blocking threads (2 here):
  // every one reaches the pool and is refused within its wait; none queues
  // behind the others.
  std::vector<decltype(post(""))> waiting;
  for (int i = 0; i < 12; ++i)
    waiting.push_back(post(unique("Waiting ")));
  for (auto& w : waiting) {
    auto [wait_status, wait_ms, retry_after] = w.get();
    BOOST_TEST(wait_status == 503);
    BOOST_TEST(wait_ms < 1500);
    BOOST_TEST(retry_after == "1");
  }
  auto [slow_status, slow_ms, unused] = slow.get();
  BOOST_TEST(slow_status == 504);
  BOOST_TEST(slow_ms < 2500);
  BOOST_TEST(n.metric("og_renderer_rejections_total{reason=\"queue_wait\"}") >= 1);
  ::kill(pid, SIGCONT);
  // The slot recovers (page reset, or the browser replaced).
  BOOST_TEST(n.call("POST", "/render", render_body(unique("After "))).status == 200);
}

BOOST_AUTO_TEST_CASE(browsers_are_recycled_without_a_gap_in_capacity) {
  // One browser, recycled every 3 renders, under constant load on both
  // pages and a queue wait of 1 s: shorter than a browser start with its
  // warm-up captures (1.5-3 s here), so a render that had to wait for a
  // restart would get 503. The successor warms up while the old browser
  // keeps rendering, so none waits for a start.
  scoped_env env{{{"BROWSER_RECYCLE_AFTER", "3"},
                  {"BROWSER_PAGES", "2"},
                  {"VANTAGE_RENDER_QUEUE_WAIT_MS", "1000"}}};
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 2));
  auto first = browser_pids();
  BOOST_REQUIRE_EQUAL(first.size(), 1u);
  render_load load{n, 4, unique("Recycle "), 90s};
  // Until two browsers have replaced the first (the load runs meanwhile).
  bool recycled = eventually(
    [&] { return n.metric_sum("og_renderer_browser_restarts_total") >= 2; },
    90s);
  auto [sent, ok] = load.stop();
  BOOST_TEST(recycled);
  BOOST_TEST(sent > 0);
  BOOST_TEST(ok == sent);
  BOOST_TEST(n.metric("og_renderer_rejections_total{reason=\"queue_wait\"}") == 0);
  // The replaced browsers end once their last render is done.
  BOOST_TEST(eventually(
    [&] {
      auto now = browser_pids();
      return now.size() == 1 && now != first;
    },
    20s));
}

BOOST_AUTO_TEST_CASE(the_slots_of_a_pool_recycle_one_at_a_time) {
  // Three browsers under even load reach their render count at about the
  // same moment; each recycle runs two browsers in its slot for seconds.
  // One recycle at a time keeps the pool at most one browser over its size.
  scoped_env env{{{"BROWSER_POOL_SIZE", "3"},
                  {"BROWSER_RECYCLE_AFTER", "4"},
                  {"BROWSER_PAGES", "1"},
                  {"VANTAGE_RENDER_QUEUE_WAIT_MS", "10000"}}};
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 3));
  BOOST_REQUIRE_EQUAL(browser_pids().size(), 3u);
  render_load load{n, 6, unique("Stagger "), 120s};
  // Until six recycles (first starts do not count), watching how many
  // browsers are alive meanwhile.
  size_t most = 0;
  bool recycled = eventually(
    [&] {
      most = std::max(most, browser_pids().size());
      return n.metric_sum("og_renderer_browser_restarts_total") >= 6;
    },
    120s);
  auto [sent, ok] = load.stop();
  BOOST_TEST(recycled);
  BOOST_TEST(most <= 4u);
  BOOST_TEST(ok == sent);
}

BOOST_AUTO_TEST_CASE(a_successor_that_dies_warming_up_leaves_the_old_browser_serving) {
  scoped_env env{{{"BROWSER_RECYCLE_AFTER", "2"}, {"BROWSER_PAGES", "1"}}};
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto first = browser_pids();
  BOOST_REQUIRE_EQUAL(first.size(), 1u);
  for (int i = 0; i < 2; ++i)
    BOOST_REQUIRE_EQUAL(
      n.call("POST", "/render", render_body(unique("Before "))).status, 200);
  // The second render's end starts the successor; it is killed long before
  // its warm-up (seconds) can finish.
  pid_t successor = 0;
  BOOST_REQUIRE(eventually(
    [&] {
      for (auto pid : browser_pids())
        if (pid != first[0])
          successor = pid;
      return successor != 0;
    },
    10s));
  ::kill(successor, SIGKILL);
  BOOST_TEST(eventually(
    [&] { return n.metric_sum("og_renderer_browser_crashes_total") >= 1; }, 10s));
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(n.call("POST", "/render", render_body(unique("After "))).status
               == 200);
  BOOST_TEST((browser_pids() == first));
  BOOST_TEST(n.metric("og_renderer_retries_total") == 0);
}

namespace {

struct shared_list {
  std::string token;
  std::string wishlist_id;
  std::string share_token;
  std::vector<std::string> item_ids;
};

shared_list make_shared_list(node_fixture& n, std::vector<std::string> products) {
  shared_list s;
  s.token = token_for(unique("usr_prev_"), "Maya C.");
  auto w = n.call("POST", "/api/v2/wishlists", R"({"title":"Preview list"})", s.token);
  BOOST_REQUIRE_EQUAL(w.status, 201);
  s.wishlist_id = w.str("wishlist_id");
  for (auto& p : products) {
    auto r = n.call("POST", "/api/v2/wishlists/" + s.wishlist_id + "/items",
                    R"({"product_id":")" + p + "\"}", s.token);
    BOOST_REQUIRE_EQUAL(r.status, 201);
    s.item_ids.push_back(r.str("wishlist_item_id"));
  }
  return s;
}

std::string share(node_fixture& n, shared_list& s, std::string& status) {
  auto r = n.call("POST", "/api/v2/wishlists/" + s.wishlist_id + "/share",
                  R"({"channel":"link"})", s.token);
  BOOST_REQUIRE_EQUAL(r.status, 201);
  status = r.str("preview_status");
  return r.str("share_token");
}

} // namespace

BOOST_AUTO_TEST_CASE(a_share_preview_follows_its_content_and_renders_once) {
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto list = make_shared_list(n, {"prd_003", "prd_008", "prd_013"});
  auto before = n.metric("og_renderer_renders_total");
  std::string status;
  auto token = share(n, list, status);
  BOOST_TEST(status == "rendered");
  auto preview = "/social/" + token + "/preview.png";
  auto first = n.call("GET", preview);
  BOOST_REQUIRE_EQUAL(first.status, 200);
  BOOST_TEST(first.body != fallback_preview_png());
  BOOST_TEST(png_size(first.body).first == 1200u);
  BOOST_TEST(first.header("Cache-Control") == "public, max-age=300");
  BOOST_TEST(n.metric("og_renderer_renders_total") == before + 1);

  // Views and preview fetches of unchanged content render nothing.
  for (int i = 0; i < 30; ++i) {
    BOOST_TEST(n.call("GET", "/api/v2/wishlists/shared/" + token).status == 200);
    BOOST_TEST(n.call("GET", preview).body == first.body);
  }
  // A second share of the same content reuses the image (a copy).
  std::string status2;
  auto token2 = share(n, list, status2);
  BOOST_TEST(status2 == "rendered");
  BOOST_TEST(n.call("GET", "/social/" + token2 + "/preview.png").body == first.body);
  BOOST_TEST(n.metric("og_renderer_renders_total") == before + 1);

  // An added item invalidates it: the fallback until the new one is ready.
  auto add = n.call("POST", "/api/v2/wishlists/" + list.wishlist_id + "/items",
                    R"({"product_id":"prd_020"})", list.token);
  BOOST_REQUIRE_EQUAL(add.status, 201);
  auto stale = n.call("GET", preview);
  BOOST_TEST(stale.body != first.body);
  std::string second;
  BOOST_TEST(eventually(
    [&] {
      second = n.call("GET", preview).body;
      return second != first.body && second != fallback_preview_png();
    },
    15s));
  BOOST_TEST(n.metric("og_renderer_renders_total") == before + 2);

  // Hiding an item changes the content again.
  auto patch = n.call("PATCH",
                      "/api/v2/wishlists/" + list.wishlist_id + "/shares/" + token,
                      R"({"hide":[")" + list.item_ids[0] + "\"]}", list.token);
  BOOST_REQUIRE_EQUAL(patch.status, 200);
  BOOST_TEST(eventually(
    [&] {
      auto now = n.call("GET", preview).body;
      return now != second && now != fallback_preview_png();
    },
    15s));
}

BOOST_AUTO_TEST_CASE(preview_probes_of_unknown_tokens_are_rate_limited) {
  scoped_env env{{{"VANTAGE_SHARE_LOOKUP_LIMIT", "3"}}};
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto list = make_shared_list(n, {"prd_007"});
  std::string status;
  auto token = share(n, list, status);
  BOOST_REQUIRE(status == "rendered");
  // A rendered share's image is never limited (unfurlers fetch it a lot).
  for (int i = 0; i < 6; ++i)
    BOOST_TEST(n.call("GET", "/social/" + token + "/preview.png").status == 200);
  // Tokens with no render behind them count like lookups: the fallback,
  // then 429 once the address's 3 per minute are spent.
  for (int i = 0; i < 3; ++i) {
    auto r = n.call("GET", "/social/" + new_share_token() + "/preview.png");
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == fallback_preview_png());
  }
  auto refused = n.call("GET", "/social/" + new_share_token() + "/preview.png");
  BOOST_TEST(refused.status == 429);
  BOOST_TEST(!refused.header("Retry-After").empty());
}

BOOST_AUTO_TEST_CASE(share_creation_does_not_wait_past_its_budget) {
  scoped_env env{{{"VANTAGE_PREVIEW_BUDGET_MS", "0"}}};
  node_fixture n;
  BOOST_REQUIRE(wait_for_pages(n, 1));
  auto list = make_shared_list(n, {"prd_005", "prd_009"});
  std::string status;
  auto token = share(n, list, status);
  BOOST_TEST(status == "pending");
  // The render finishes in the background.
  BOOST_TEST(eventually(
    [&] {
      return n.call("GET", "/social/" + token + "/preview.png").body
             != fallback_preview_png();
    },
    15s));
}

BOOST_AUTO_TEST_CASE(without_browsers_shares_show_the_fallback) {
  scoped_env env{{{"BROWSER_POOL_SIZE", "0"}}};
  node_fixture n;
  auto list = make_shared_list(n, {"prd_006"});
  std::string status;
  auto token = share(n, list, status);
  BOOST_TEST(status == "fallback");
  BOOST_TEST(n.call("GET", "/social/" + token + "/preview.png").body
             == fallback_preview_png());
  auto h = n.call("GET", "/healthz");
  BOOST_TEST(json_int(h.body, "browser_pool", "total") == 0);
  BOOST_TEST(n.call("POST", "/render", render_body("Off")).status == 503);
}
