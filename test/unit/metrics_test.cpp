#define BOOST_TEST_MODULE metrics_test
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "adapters/json.hpp"
#include "gateway/metrics.hpp"

using namespace vantage;

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(counter_render_exact) {
  metrics_registry reg;
  auto& c = reg.get_counter("http_requests_total", "Requests served.");
  c.inc();
  c.inc(4);
  BOOST_CHECK_EQUAL(c.value(), 5u);
  BOOST_CHECK_EQUAL(&c, &reg.get_counter("http_requests_total", "ignored"));
  BOOST_CHECK_EQUAL(reg.render(), "# HELP http_requests_total Requests served.\n"
                                  "# TYPE http_requests_total counter\n"
                                  "http_requests_total 5\n");
}

BOOST_AUTO_TEST_CASE(labelled_gauge_with_escaping) {
  metrics_registry reg;
  auto& g = reg.get_gauge("queue_depth", "Depth with \\ and\nnewline.",
                          {{"queue", "a\"b\\c\nd"}, {"node", "n1"}});
  g.set(2.5);
  g.add(-1);
  BOOST_CHECK_EQUAL(g.value(), 1.5);
  auto& other = reg.get_gauge("queue_depth", "", {{"queue", "plain"}});
  BOOST_CHECK_NE(&g, &other);
  BOOST_CHECK_EQUAL(&g, &reg.get_gauge("queue_depth", "",
                                       {{"queue", "a\"b\\c\nd"}, {"node", "n1"}}));
  other.set(-3);
  BOOST_CHECK_EQUAL(reg.render(),
                    "# HELP queue_depth Depth with \\\\ and\\nnewline.\n"
                    "# TYPE queue_depth gauge\n"
                    "queue_depth{queue=\"a\\\"b\\\\c\\nd\",node=\"n1\"} 1.5\n"
                    "queue_depth{queue=\"plain\"} -3\n");
}

BOOST_AUTO_TEST_CASE(histogram_render_cumulative) {
  metrics_registry reg;
  auto& h = reg.get_histogram("op_seconds", "Op latency.", {{"op", "get"}},
                              {0.1, 0.5, 1});
  for (double v : {0.05, 0.1, 0.3, 0.7, 2.0, 0.0})
    h.observe(v);
  BOOST_CHECK_EQUAL(h.count(), 6u);
  BOOST_CHECK_CLOSE(h.sum(), 3.15, 1e-9);
  // 0.1 falls into le="0.1" (inclusive); 2.0 only into +Inf.
  BOOST_CHECK_EQUAL(reg.render(),
                    "# HELP op_seconds Op latency.\n"
                    "# TYPE op_seconds histogram\n"
                    "op_seconds_bucket{op=\"get\",le=\"0.1\"} 3\n"
                    "op_seconds_bucket{op=\"get\",le=\"0.5\"} 4\n"
                    "op_seconds_bucket{op=\"get\",le=\"1\"} 5\n"
                    "op_seconds_bucket{op=\"get\",le=\"+Inf\"} 6\n"
                    "op_seconds_sum{op=\"get\"} 3.15\n"
                    "op_seconds_count{op=\"get\"} 6\n");
}

BOOST_AUTO_TEST_CASE(default_buckets_and_unlabelled_histogram) {
  const auto& b = default_latency_buckets();
  BOOST_REQUIRE_EQUAL(b.size(), 16u);
  BOOST_CHECK_EQUAL(b.front(), 0.0001);
  BOOST_CHECK_EQUAL(b.back(), 10.0);
  metrics_registry reg;
  reg.get_histogram("lat", "L.").observe(0.0003);
  auto text = reg.render();
  BOOST_CHECK(text.find("lat_bucket{le=\"0.0001\"} 0\n") != std::string::npos);
  BOOST_CHECK(text.find("lat_bucket{le=\"0.00025\"} 0\n") != std::string::npos);
  BOOST_CHECK(text.find("lat_bucket{le=\"0.0005\"} 1\n") != std::string::npos);
  BOOST_CHECK(text.find("lat_bucket{le=\"2.5\"} 1\n") != std::string::npos);
  BOOST_CHECK(text.find("lat_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
  BOOST_CHECK(text.find("lat_sum 0.0003\n") != std::string::npos);
  BOOST_CHECK(text.find("lat_count 1\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(callback_gauge_and_family_order) {
  metrics_registry reg;
  double actors = 3;
  reg.add_callback_gauge("vantage_actors", "Live actors.", {{"kind", "user"}},
                         [&] { return actors; });
  reg.get_counter("a_total", "First.").inc(2);
  reg.get_gauge("zz", "Last.").set(1e-9);
  actors = 42;
  BOOST_CHECK_EQUAL(reg.render(), "# HELP a_total First.\n"
                                  "# TYPE a_total counter\n"
                                  "a_total 2\n"
                                  "# HELP vantage_actors Live actors.\n"
                                  "# TYPE vantage_actors gauge\n"
                                  "vantage_actors{kind=\"user\"} 42\n"
                                  "# HELP zz Last.\n"
                                  "# TYPE zz gauge\n"
                                  "zz 1e-09\n");
}

BOOST_AUTO_TEST_CASE(type_conflict_and_bad_names_throw) {
  metrics_registry reg;
  reg.get_counter("x_total", "x");
  BOOST_CHECK_THROW(reg.get_gauge("x_total", "x"), std::logic_error);
  BOOST_CHECK_THROW(reg.get_counter("bad name", "x"), std::invalid_argument);
  BOOST_CHECK_THROW(reg.get_counter("ok", "x", {{"bad-label", "v"}}),
                    std::invalid_argument);
  BOOST_CHECK_THROW(reg.get_histogram("h", "x", {{"le", "1"}}),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(concurrent_increments_are_exact) {
  metrics_registry reg;
  constexpr int threads = 4;
  constexpr int per_thread = 100000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&reg] {
      // Lookups race with each other and with render().
      auto& c = reg.get_counter("hits_total", "Hits.", {{"route", "/x"}});
      auto& h = reg.get_histogram("hit_seconds", "Hit latency.", {}, {1.0});
      auto& g = reg.get_gauge("inflight", "In flight.");
      for (int i = 0; i < per_thread; ++i) {
        c.inc();
        g.add(1);
        if (i % 10 == 0)
          h.observe(0.5);
      }
    });
  std::thread renderer([&reg] {
    for (int i = 0; i < 50; ++i)
      (void) reg.render();
  });
  for (auto& th : pool)
    th.join();
  renderer.join();
  BOOST_CHECK_EQUAL(reg.get_counter("hits_total", "", {{"route", "/x"}}).value(),
                    uint64_t{threads * per_thread});
  BOOST_CHECK_EQUAL(reg.get_gauge("inflight", "").value(),
                    double{threads * per_thread});
  auto& h = reg.get_histogram("hit_seconds", "");
  BOOST_CHECK_EQUAL(h.count(), uint64_t{threads * per_thread / 10});
  BOOST_CHECK_EQUAL(h.sum(), 0.5 * threads * per_thread / 10);
  auto text = reg.render();
  BOOST_CHECK(text.find("hits_total{route=\"/x\"} 400000\n")
              != std::string::npos);
  BOOST_CHECK(text.find("hit_seconds_bucket{le=\"1\"} 40000\n")
              != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(json)

std::string esc(std::string_view s) {
  std::string out;
  json_escape_to(out, s);
  return out;
}

BOOST_AUTO_TEST_CASE(escaping) {
  BOOST_CHECK_EQUAL(esc("plain"), "plain");
  BOOST_CHECK_EQUAL(esc("a\"b\\c"), "a\\\"b\\\\c");
  BOOST_CHECK_EQUAL(esc("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
  BOOST_CHECK_EQUAL(esc(std::string_view("\x00\x01\x1f", 3)),
                    "\\u0000\\u0001\\u001f");
  BOOST_CHECK_EQUAL(esc("/ and \x7f"), "/ and \x7f");
  // Valid UTF-8 passes through: 2, 3 and 4 byte sequences.
  BOOST_CHECK_EQUAL(esc("Müller €5 😀"), "Müller €5 😀");
  // Invalid bytes become U+FFFD each.
  BOOST_CHECK_EQUAL(esc("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  BOOST_CHECK_EQUAL(esc("\xC3"), "\xEF\xBF\xBD");                 // truncated
  BOOST_CHECK_EQUAL(esc("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD"); // overlong
  BOOST_CHECK_EQUAL(esc("\xED\xA0\x80"),                          // surrogate
                    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  BOOST_CHECK_EQUAL(esc("\xF4\x90\x80\x80x"),                     // > U+10FFFF
                    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx");
}

BOOST_AUTO_TEST_CASE(money_formatting) {
  auto m = [](int64_t cents) { return json_writer{}.money(cents).take(); };
  BOOST_CHECK_EQUAL(m(24999), "249.99");
  BOOST_CHECK_EQUAL(m(5), "0.05");
  BOOST_CHECK_EQUAL(m(0), "0.00");
  BOOST_CHECK_EQUAL(m(100), "1.00");
  BOOST_CHECK_EQUAL(m(-150), "-1.50");
  BOOST_CHECK_EQUAL(m(-5), "-0.05");
  BOOST_CHECK_EQUAL(m(std::numeric_limits<int64_t>::min()),
                    "-92233720368547758.08");
}

BOOST_AUTO_TEST_CASE(commas_in_nested_structures) {
  json_writer w;
  w.begin_object()
    .key("id").value("w1")
    .key("n").value(3)
    .key("big").value(uint64_t{18446744073709551615ull})
    .key("neg").value(int64_t{-7})
    .key("ratio").value(0.25)
    .key("ok").value(true)
    .key("none").null()
    .key("price").money(24999)
    .key("items").begin_array()
      .begin_object().key("a").value(1).end_object()
      .begin_object().end_object()
      .begin_array().value(false).begin_array().end_array().value("x").end_array()
      .raw(R"({"pre":[1,2]})")
    .end_array()
    .key("empty").begin_array().end_array()
    .key("raw").raw("[true]")
    .end_object();
  BOOST_CHECK_EQUAL(
    w.str(),
    R"({"id":"w1","n":3,"big":18446744073709551615,"neg":-7,"ratio":0.25,)"
    R"("ok":true,"none":null,"price":249.99,"items":[{"a":1},{},[false,[],"x"],)"
    R"({"pre":[1,2]}],"empty":[],"raw":[true]})");
  auto taken = w.take();
  BOOST_CHECK(w.str().empty());
  BOOST_CHECK_EQUAL(taken.front(), '{');
}

BOOST_AUTO_TEST_CASE(keys_escaped_and_non_finite_is_null) {
  json_writer w;
  w.begin_object()
    .key("a\"b\n").value(std::string("line1\nline2"))
    .key("inf").value(std::numeric_limits<double>::infinity())
    .key("nan").value(std::numeric_limits<double>::quiet_NaN())
    .key("cstr").value(static_cast<const char*>(nullptr))
    .end_object();
  BOOST_CHECK_EQUAL(
    w.str(),
    R"({"a\"b\n":"line1\nline2","inf":null,"nan":null,"cstr":null})");
  json_writer top;
  top.value(1).value(2); // top-level sequence still gets commas
  BOOST_CHECK_EQUAL(top.str(), "1,2");
}

BOOST_AUTO_TEST_SUITE_END()
