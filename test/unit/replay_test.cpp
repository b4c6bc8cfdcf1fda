#define BOOST_TEST_MODULE replay_test
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <unistd.h>

#include <httplib.h>
#include <simdjson.h>

#include "app/replay.hpp"
#include "app/replay_internal.hpp"
#include "gateway/jwt.hpp"
#include "gateway/recorder.hpp"

using namespace vantage;
using namespace vantage::replay_detail;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

bool matches(const std::string& exp, const std::string& act, std::string* why_out = nullptr,
             const capture_store& caps = capture_store{}) {
  std::string why;
  bool ok = json_match(exp, act, caps, why);
  if (why_out)
    *why_out = why;
  return ok;
}

std::string b64url(const std::string& in) {
  static const char* tbl
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += tbl[(buf >> bits) & 63];
    }
  }
  if (bits > 0)
    out += tbl[(buf << (6 - bits)) & 63];
  return out;
}

std::string temp_path(const std::string& stem) {
  auto dir = std::filesystem::temp_directory_path();
  return (dir / (stem + "-" + std::to_string(::getpid()) + ".json")).string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A tiny wishlist service: ids differ per instance (prefix) so replays
/// must go through captures.
struct fake_service {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::string prefix;
  std::atomic<int> next{1};
  std::mutex mtx;
  std::map<std::string, std::string> titles;
  std::string last_auth;

  explicit fake_service(std::string id_prefix) : prefix(std::move(id_prefix)) {
    svr.Post("/api/v2/wishlists", [this](const httplib::Request& req,
                                         httplib::Response& res) {
      auto auth = req.get_header_value("Authorization");
      {
        std::lock_guard<std::mutex> g(mtx);
        last_auth = auth;
      }
      if (auth.rfind("Bearer ", 0) != 0) {
        res.status = 401;
        res.set_content(R"({"error":"UNAUTHORIZED","message":"no token","request_id":"r"})",
                        "application/json");
        return;
      }
      simdjson::dom::parser p;
      simdjson::dom::element body;
      std::string_view title;
      if (p.parse(req.body).get(body) || body["title"].get(title)) {
        res.status = 400;
        res.set_content(R"({"error":"BAD_REQUEST"})", "application/json");
        return;
      }
      std::string id = prefix + std::to_string(next++);
      {
        std::lock_guard<std::mutex> g(mtx);
        titles[id] = std::string(title);
      }
      res.status = 201;
      if (req.has_header("X-Request-ID"))
        res.set_header("X-Request-ID", req.get_header_value("X-Request-ID"));
      res.set_content("{\"wishlist_id\":\"" + id + "\",\"title\":\"" + std::string(title)
                        + "\",\"items\":[],\"count\":2,\"created_at\":\"2025-01-0"
                        + std::to_string(next.load() % 9) + "T00:00:00Z\",\"request_id\":\"rq"
                        + std::to_string(next.load()) + "\"}",
                      "application/json");
    });
    svr.Get(R"(/api/v2/wishlists/([^/]+))", [this](const httplib::Request& req,
                                                   httplib::Response& res) {
      std::string id = req.matches[1];
      std::lock_guard<std::mutex> g(mtx);
      auto it = titles.find(id);
      if (it == titles.end()) {
        res.status = 404;
        res.set_content(R"({"error":"WISHLIST_NOT_FOUND"})", "application/json");
        return;
      }
      res.status = 200;
      res.set_content("{\"wishlist_id\":\"" + id + "\",\"title\":\"" + it->second
                        + "\",\"items\":[],\"owner\":{\"name\":\"Maya C.\"}}",
                      "application/json");
    });
    svr.Get("/page", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html><title>hello page</title></html>", "text/html");
    });
    port = svr.bind_to_any_port("127.0.0.1");
    BOOST_REQUIRE(port > 0);
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~fake_service() {
    svr.stop();
    if (thread.joinable())
      thread.join();
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port);
  }
};

} // namespace

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(durations) {
  std::chrono::milliseconds d{};
  std::string err;
  BOOST_CHECK(parse_duration("500ms", d, err) && d == 500ms);
  BOOST_CHECK(parse_duration("30s", d, err) && d == 30s);
  BOOST_CHECK(parse_duration("16m", d, err) && d == 16min);
  BOOST_CHECK(parse_duration("2h", d, err) && d == 2h);
  BOOST_CHECK(parse_duration("31d", d, err) && d == std::chrono::hours(24 * 31));
  BOOST_CHECK(parse_duration("1h30m", d, err) && d == 90min);
  for (auto bad : {"", "5", "5x", "ms", "-3s", "1.5h"}) {
    BOOST_CHECK_MESSAGE(!parse_duration(bad, d, err), bad);
    BOOST_CHECK(contains(err, "bad duration"));
  }
}

BOOST_AUTO_TEST_CASE(capture_substitution) {
  capture_store caps;
  caps.set_string("wl", "wl_42");
  std::string out, err;
  BOOST_CHECK(caps.substitute("/api/v2/wishlists/{{wl}}/items", out, err));
  BOOST_CHECK_EQUAL(out, "/api/v2/wishlists/wl_42/items");
  BOOST_CHECK(caps.substitute("{{ wl }}-{{wl}}", out, err));
  BOOST_CHECK_EQUAL(out, "wl_42-wl_42");
  BOOST_CHECK(caps.substitute("no braces {{ here", out, err));
  BOOST_CHECK_EQUAL(out, "no braces {{ here");
  BOOST_CHECK(!caps.substitute("/x/{{nope}}", out, err));
  BOOST_CHECK(contains(err, "capture 'nope' is not set"));
  caps.failed["tok"] = "capture 'tok' failed: $.share_token is not in the response";
  BOOST_CHECK(!caps.substitute("{{tok}}", out, err));
  BOOST_CHECK(contains(err, "unavailable"));
  BOOST_CHECK(contains(err, "share_token"));

  capture_value v;
  BOOST_CHECK(json_path_capture(R"({"items":[{"id":"a"},{"id":"b","n":7}]})",
                                "items[1].id", v, err));
  BOOST_CHECK_EQUAL(v.text, "b");
  BOOST_CHECK_EQUAL(v.json, "\"b\"");
  BOOST_CHECK(json_path_capture(R"({"items":[{"id":"a"},{"id":"b","n":7}]})",
                                "$.items[1].n", v, err));
  BOOST_CHECK_EQUAL(v.text, "7");
  BOOST_CHECK(!json_path_capture(R"({"items":[]})", "items[0].id", v, err));
  BOOST_CHECK(contains(err, "items[0]"));
  BOOST_CHECK(!json_path_capture(R"({"a":1})", "b", v, err));
  BOOST_CHECK(contains(err, "$.b is not in the response"));
}

BOOST_AUTO_TEST_CASE(matcher_partial_and_nested) {
  std::string why;
  const std::string actual
    = R"({"title":"Birthday","items":[{"id":"i1","price":249.99},{"id":"i2","price":5}],
         "owner":{"name":"Maya","tz":"UTC"},"count":2,"ok":true,"gone":null})";
  BOOST_CHECK(matches(R"({"title":"Birthday"})", actual));
  BOOST_CHECK(matches(R"({"owner":{"name":"Maya"}})", actual));
  BOOST_CHECK(matches(R"({"items":[{"id":"i1"}]})", actual));
  BOOST_CHECK(matches(R"({"items":[{"id":"i1"},{"price":5.0}]})", actual));
  BOOST_CHECK(matches(R"({"count":2.0,"ok":true,"gone":null})", actual));
  BOOST_CHECK(matches(R"({"items":[{"price":249.99}]})", actual));

  BOOST_CHECK(!matches(R"({"title":"Xmas"})", actual, &why));
  BOOST_CHECK_EQUAL(why, R"($.title: expected "Xmas", got "Birthday")");
  BOOST_CHECK(!matches(R"({"owner":{"name":"Bob"}})", actual, &why));
  BOOST_CHECK(contains(why, "$.owner.name: expected \"Bob\""));
  BOOST_CHECK(!matches(R"({"items":[{},{"id":"i3"}]})", actual, &why));
  BOOST_CHECK(contains(why, "$.items[1].id"));
  BOOST_CHECK(!matches(R"({"missing":1})", actual, &why));
  BOOST_CHECK(contains(why, "$.missing: missing"));
  BOOST_CHECK(!matches(R"({"count":3})", actual, &why));
  BOOST_CHECK_EQUAL(why, "$.count: expected 3, got 2");
  BOOST_CHECK(!matches(R"({"count":2.5})", actual, &why));
  BOOST_CHECK(!matches(R"({"items":[{"price":249.98}]})", actual, &why));
  BOOST_CHECK_EQUAL(why, "$.items[0].price: expected 249.98, got 249.99");
  BOOST_CHECK(!matches(R"({"count":"2"})", actual, &why));
  BOOST_CHECK(contains(why, "got number"));
  BOOST_CHECK(!matches(R"({"ok":false})", actual, &why));
  BOOST_CHECK(!matches(R"({"gone":0})", actual, &why));
  BOOST_CHECK(!matches(R"({"owner":[]})", actual, &why));
  BOOST_CHECK(contains(why, "expected an array, got object"));
  BOOST_CHECK(!matches(R"({"items":[{},{},{}]})", actual, &why));
  BOOST_CHECK(contains(why, "at least 3"));
}

BOOST_AUTO_TEST_CASE(matcher_operators) {
  std::string why;
  const std::string actual
    = R"({"title":"Birthday","items":[1,2],"token":"AbCdEfGhIjKlMnOpQrStUv","n":3,"o":{}})";
  BOOST_CHECK(matches(R"({"items":{"$length":2},"title":{"$length":8},"o":{"$length":0}})", actual));
  BOOST_CHECK(!matches(R"({"items":{"$length":0}})", actual, &why));
  BOOST_CHECK_EQUAL(why, "$.items: expected length 0, got 2");
  BOOST_CHECK(matches(R"({"title":{"$exists":true},"nope":{"$exists":false}})", actual));
  BOOST_CHECK(!matches(R"({"title":{"$exists":false}})", actual, &why));
  BOOST_CHECK(contains(why, "expected to be absent"));
  BOOST_CHECK(!matches(R"({"nope":{"$exists":true}})", actual, &why));
  BOOST_CHECK(contains(why, "$.nope: missing"));
  BOOST_CHECK(matches(R"({"token":{"$regex":"^[A-Za-z0-9]{22}$"}})", actual));
  BOOST_CHECK(!matches(R"({"token":{"$regex":"^[0-9]+$"}})", actual, &why));
  BOOST_CHECK(contains(why, "does not match"));
  BOOST_CHECK(!matches(R"({"token":{"$regex":"("}})", actual, &why));
  BOOST_CHECK(contains(why, "bad $regex"));
  BOOST_CHECK(matches(R"({"title":{"$type":"string"},"n":{"$type":"number"},
                          "items":{"$type":"array"},"o":{"$type":"object"}})", actual));
  BOOST_CHECK(matches(R"({"n":{"$type":"integer"}})", actual));
  BOOST_CHECK(!matches(R"({"n":{"$type":"string"}})", actual, &why));
  BOOST_CHECK(contains(why, "expected type string, got number"));
  BOOST_CHECK(!matches(R"({"n":{"$bogus":1}})", actual, &why));
  BOOST_CHECK(contains(why, "unknown operator $bogus"));
  BOOST_CHECK(matches(R"({"title":{"$type":"string","$length":8}})", actual));
}

BOOST_AUTO_TEST_CASE(matcher_captures_and_avro_unions) {
  capture_store caps;
  caps.set_string("wl", "wl_9");
  caps.values["n"] = capture_value{"5", "5"};
  std::string why;
  BOOST_CHECK(matches(R"({"id":"{{wl}}","url":"/w/{{wl}}","count":"{{n}}"})",
                      R"({"id":"wl_9","url":"/w/wl_9","count":5})", &why, caps));
  BOOST_CHECK(!matches(R"({"id":"{{wl}}"})", R"({"id":"wl_8"})", &why, caps));
  BOOST_CHECK(contains(why, "expected \"wl_9\""));
  BOOST_CHECK(!matches(R"({"id":"{{other}}"})", R"({"id":"wl_8"})", &why, caps));
  BOOST_CHECK(contains(why, "capture 'other' is not set"));
  // Avro JSON wraps union branches; a plain expectation looks through.
  BOOST_CHECK(matches(R"({"message":"hi","n":3})",
                      R"({"message":{"string":"hi"},"n":{"long":3}})"));
  BOOST_CHECK(!matches(R"({"message":"bye"})", R"({"message":{"string":"hi"}})"));
}

BOOST_AUTO_TEST_CASE(recorder_output) {
  auto path = temp_path("vantage-recorder");
  std::remove(path.c_str());
  std::string jwt = b64url(R"({"alg":"HS256","typ":"JWT"})") + "."
                    + b64url(R"({"sub":"usr_maya","name":"Maya C.","tz":"UTC","exp":1999999999})")
                    + ".c2ln";
  {
    traffic_recorder rec(path, "recorded basics");
    BOOST_CHECK(std::filesystem::exists(path));
    recorded_exchange a;
    a.method = "POST";
    a.path = "/api/v2/wishlists";
    a.request_headers = {{"Host", "localhost:8080"},
                         {"Authorization", "Bearer " + jwt},
                         {"Content-Type", "application/json"},
                         {"User-Agent", "curl/7"},
                         {"X-Request-ID", "req_1"}};
    a.request_body = R"({"title":"Birthday","product_id":"prod_1"})";
    a.status = 201;
    a.response_headers = {{"X-Request-ID", "req_1"}, {"Content-Length", "99"}};
    a.response_body
      = R"({"wishlist_id":"wl_abc123","title":"Birthday","owner_id":"usr_maya","product_id":"prod_1",)"
        R"("created_at":"2025-01-01T00:00:00Z","request_id":"req_1","items":[],)"
        R"("share":{"share_token":"TOKEN12345","url":"http://x/shared/TOKEN12345"}})";
    rec.record(a);

    recorded_exchange b;
    b.method = "GET";
    b.path = "/api/v2/wishlists/wl_abc123?t=TOKEN12345";
    b.request_headers = {{"Authorization", "Bearer " + jwt}, {"Accept", "*/*"}};
    b.status = 200;
    b.response_body = R"({"wishlist_id":"wl_abc123","title":"Birthday"})";
    rec.record(b);
    BOOST_CHECK_EQUAL(rec.size(), 2u);
  }
  auto text = read_all(path);
  BOOST_TEST_MESSAGE(text);
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  BOOST_REQUIRE_MESSAGE(!p.parse(text).get(doc), "recorded file is valid JSON");
  BOOST_CHECK_EQUAL(std::string_view(doc["name"]), "recorded basics");
  simdjson::dom::array steps = doc["steps"];
  BOOST_REQUIRE_EQUAL(steps.size(), 2u);
  auto s0 = steps.at(0).value();
  auto s1 = steps.at(1).value();
  // Auth block instead of the token.
  BOOST_CHECK_EQUAL(std::string_view(s0["auth"]["sub"]), "usr_maya");
  BOOST_CHECK_EQUAL(std::string_view(s0["auth"]["name"]), "Maya C.");
  BOOST_CHECK(!contains(text, jwt));
  BOOST_CHECK(!contains(text, "Authorization"));
  // Hop-by-hop headers dropped, request id kept; JSON body kept as JSON.
  BOOST_CHECK(!contains(text, "Host"));
  BOOST_CHECK(!contains(text, "User-Agent"));
  BOOST_CHECK(!contains(text, "curl"));
  BOOST_CHECK_EQUAL(std::string_view(s0["request"]["headers"]["X-Request-ID"]), "req_1");
  BOOST_CHECK_EQUAL(std::string_view(s0["request"]["json"]["title"]), "Birthday");
  BOOST_CHECK_EQUAL(std::string_view(s0["expect"]["headers"]["X-Request-ID"]), "req_1");
  // Captures: server-made ids only (not the client's own sub / product id).
  BOOST_CHECK_EQUAL(std::string_view(s0["capture"]["wishlist_id_1"]), "wishlist_id");
  BOOST_CHECK_EQUAL(std::string_view(s0["capture"]["share_token_1"]), "share.share_token");
  BOOST_CHECK(s0["capture"]["owner_id_1"].error());
  BOOST_CHECK(s0["capture"]["product_id_1"].error());
  // Expectations: status and non-volatile fields, ids templated in values.
  BOOST_CHECK_EQUAL(int64_t(s0["expect"]["status"]), 201);
  BOOST_CHECK_EQUAL(std::string_view(s0["expect"]["json"]["title"]), "Birthday");
  BOOST_CHECK(s0["expect"]["json"]["wishlist_id"].error());
  BOOST_CHECK(s0["expect"]["json"]["created_at"].error());
  BOOST_CHECK(s0["expect"]["json"]["request_id"].error());
  BOOST_CHECK(s0["expect"]["json"]["share"]["share_token"].error());
  BOOST_CHECK_EQUAL(std::string_view(s0["expect"]["json"]["share"]["url"]),
                    "http://x/shared/{{share_token_1}}");
  BOOST_CHECK_EQUAL(simdjson::dom::array(s0["expect"]["json"]["items"]).size(), 0u);
  // Later uses of the value become the capture.
  BOOST_CHECK_EQUAL(std::string_view(s1["request"]["path"]),
                    "/api/v2/wishlists/{{wishlist_id_1}}?t={{share_token_1}}");
  BOOST_CHECK(s1["capture"].error());
  BOOST_CHECK(!contains(std::string(simdjson::minify(s1)), "wl_abc123"));
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(scenario_run_pass_and_fail) {
  fake_service svc("wl_");
  replay_target target;
  target.base_url = svc.url();
  std::chrono::milliseconds advanced{0};
  target.advance_clock = [&](std::chrono::milliseconds d) { advanced += d; };
  const std::string scenario = R"({
    "name": "t",
    "steps": [
      {"name": "create", "auth": {"sub": "usr_maya", "name": "Maya C."},
       "request": {"method": "POST", "path": "/api/v2/wishlists",
                   "headers": {"X-Request-ID": "req_1"}, "json": {"title": "Birthday"}},
       "expect": {"status": 201, "headers": {"x-request-id": "req_1"},
                  "json": {"title": "Birthday", "items": {"$length": 0}, "count": 2.0}},
       "capture": {"wl": "wishlist_id", "rid": {"header": "X-Request-ID"}}},
      {"name": "read", "request": {"method": "GET", "path": "/api/v2/wishlists/{{wl}}"},
       "expect": {"status": 200, "json": {"wishlist_id": "{{wl}}", "owner": {"name": {"$regex": "^Maya"}}}}},
      {"name": "wrong title", "request": {"path": "/api/v2/wishlists/{{wl}}"},
       "expect": {"json": {"title": "Xmas"}}},
      {"name": "wrong status", "request": {"path": "/api/v2/wishlists/nope"},
       "expect": {"status": 200}},
      {"name": "bad capture", "request": {"path": "/api/v2/wishlists/{{wl}}"},
       "capture": {"tok": "share_token"}},
      {"name": "uses bad capture", "request": {"path": "/x/{{tok}}"}},
      {"name": "html", "request": {"path": "/page"}, "expect": {"status": 200, "body_contains": ["hello page"]}},
      {"name": "html wrong", "request": {"path": "/page"}, "expect": {"body_contains": "goodbye"}},
      {"name": "later", "advance": "16m"},
      {"name": "bad advance", "advance": "16 minutes"},
      {"name": "bad fault", "fault": "disk_full"},
      {"name": "no token", "request": {"method": "POST", "path": "/api/v2/wishlists", "json": {"title": "x"}},
       "expect": {"status": 401, "json": {"error": "UNAUTHORIZED"}}},
      {"name": "gate", "required": true, "request": {"path": "/api/v2/wishlists/nope"}, "expect": {"status": 200}},
      {"name": "after gate", "request": {"path": "/page"}, "expect": {"status": 200}}
    ]})";
  std::ostringstream out;
  auto s = run_scenario_text(scenario, "fallback", target, out);
  auto text = out.str();
  BOOST_TEST_MESSAGE(text);
  BOOST_CHECK(contains(text, "PASS t/create\n"));
  BOOST_CHECK(contains(text, "PASS t/read\n"));
  BOOST_CHECK(contains(text, "FAIL t/wrong title: $.title: expected \"Xmas\", got \"Birthday\"\n"));
  BOOST_CHECK(contains(text, "FAIL t/wrong status: status: expected 200, got 404"));
  BOOST_CHECK(contains(text, "FAIL t/bad capture: capture 'tok' failed: $.share_token is not in the response"));
  BOOST_CHECK(contains(text, "FAIL t/uses bad capture: capture 'tok' is unavailable"));
  BOOST_CHECK(contains(text, "PASS t/html\n"));
  BOOST_CHECK(contains(text, "FAIL t/html wrong: body does not contain \"goodbye\""));
  BOOST_CHECK(contains(text, "PASS t/later\n"));
  BOOST_CHECK(contains(text, "FAIL t/bad advance: bad duration"));
  BOOST_CHECK(contains(text, "FAIL t/bad fault: unknown fault 'disk_full'"));
  BOOST_CHECK(contains(text, "PASS t/no token\n"));
  BOOST_CHECK(contains(text, "FAIL t/gate: status: expected 200, got 404"));
  BOOST_CHECK(contains(text, "FAIL t/after gate: skipped: required step 'gate' failed"));
  BOOST_CHECK_EQUAL(s.passed, 5);
  BOOST_CHECK_EQUAL(s.failed, 9);
  BOOST_CHECK(advanced == 16min);
  // The token carried the auth block's claims.
  auto bearer = svc.last_auth;
  BOOST_CHECK(bearer.empty() || bearer.rfind("Bearer ", 0) == 0);
}

BOOST_AUTO_TEST_CASE(scenario_parse_errors) {
  replay_target target;
  target.base_url = "http://127.0.0.1:1";
  std::ostringstream out;
  auto s = run_scenario_text("{\"steps\": [", "broken", target, out, "scenarios/broken.json");
  BOOST_CHECK_EQUAL(s.failed, 1);
  BOOST_CHECK_EQUAL(s.passed, 0);
  BOOST_CHECK(contains(out.str(), "FAIL broken/parse: scenarios/broken.json is not valid JSON"));
  std::ostringstream out2;
  s = run_scenario_text(R"({"name":"n","steps":{}})", "n", target, out2);
  BOOST_CHECK_EQUAL(s.failed, 1);
  BOOST_CHECK(contains(out2.str(), "\"steps\" must be an array"));
  std::ostringstream out3;
  s = run_scenario_text(R"({"name":"n","steps":[{"name":"odd"}, 3]})", "n", target, out3);
  BOOST_CHECK_EQUAL(s.failed, 2);
  BOOST_CHECK(contains(out3.str(), "FAIL n/odd: step has none of"));
  std::ostringstream out4;
  s = run_scenario_file("/nonexistent/x.json", target, out4);
  BOOST_CHECK_EQUAL(s.failed, 1);
  BOOST_CHECK(contains(out4.str(), "FAIL x/parse: cannot read"));
}

BOOST_AUTO_TEST_CASE(record_then_replay_is_green) {
  auto path = temp_path("vantage-roundtrip");
  std::remove(path.c_str());
  {
    fake_service live("live_");
    traffic_recorder rec(path, "roundtrip");
    httplib::Client cli(live.url());
    user_claims c;
    c.user_id = "usr_rt";
    c.display_name = "Round Trip";
    auto token = mint_hs256(c, default_dev_jwt_secret, 4102444800);
    auto exchange = [&](const std::string& method, const std::string& p,
                        const std::string& body) {
      httplib::Request req;
      req.method = method;
      req.path = p;
      req.body = body;
      req.headers.emplace("Authorization", "Bearer " + token);
      req.headers.emplace("Host", "127.0.0.1");
      if (!body.empty())
        req.headers.emplace("Content-Type", "application/json");
      auto res = cli.send(req);
      BOOST_REQUIRE(res);
      recorded_exchange x;
      x.method = method;
      x.path = p;
      x.request_headers.assign(req.headers.begin(), req.headers.end());
      x.request_body = body;
      x.status = res->status;
      x.response_headers.assign(res->headers.begin(), res->headers.end());
      x.response_body = res->body;
      rec.record(x);
      return res->body;
    };
    auto created = exchange("POST", "/api/v2/wishlists", R"({"title":"Trip"})");
    capture_value id;
    std::string err;
    BOOST_REQUIRE(json_path_capture(created, "wishlist_id", id, err));
    exchange("GET", "/api/v2/wishlists/" + id.text, "");
    exchange("GET", "/api/v2/wishlists/missing", "");
  }
  auto text = read_all(path);
  BOOST_TEST_MESSAGE(text);
  BOOST_CHECK(contains(text, "{{wishlist_id_1}}"));

  // A fresh service makes different ids: replay must still be green.
  fake_service fresh("fresh_");
  fresh.next = 100;
  replay_target target;
  target.base_url = fresh.url();
  std::ostringstream out;
  auto s = run_scenario_file(path, target, out);
  BOOST_TEST_MESSAGE(out.str());
  BOOST_CHECK_EQUAL(s.failed, 0);
  BOOST_CHECK_EQUAL(s.passed, 3);
  BOOST_CHECK(contains(out.str(), "PASS roundtrip/2 GET /api/v2/wishlists/{{wishlist_id_1}}"));
  BOOST_CHECK(contains(fresh.last_auth, "Bearer "));

  // And a tampered expectation fails.
  std::string tampered = text;
  auto pos = tampered.find("\"title\": \"Trip\"", tampered.find("\"expect\""));
  BOOST_REQUIRE(pos != std::string::npos);
  tampered.replace(pos, 15, "\"title\": \"Tip\"");
  std::ostringstream out2;
  fake_service fresh2("again_");
  target.base_url = fresh2.url();
  s = run_scenario_text(tampered, "tampered", target, out2);
  BOOST_CHECK_EQUAL(s.failed, 1);
  BOOST_CHECK(contains(out2.str(), "expected \"Tip\", got \"Trip\""));
  std::remove(path.c_str());
}

namespace {
volatile std::sig_atomic_t g_usr1 = 0;
volatile std::sig_atomic_t g_usr2 = 0;
extern "C" void on_usr(int sig) {
  if (sig == SIGUSR1)
    g_usr1 = 1;
  else
    g_usr2 = 1;
}
} // namespace

BOOST_AUTO_TEST_CASE(faults_signal_the_kafka_pid) {
  auto pid_file = temp_path("vantage-kafka-pid");
  {
    std::ofstream f(pid_file);
    f << ::getpid() << "\n";
  }
  auto old1 = std::signal(SIGUSR1, on_usr);
  auto old2 = std::signal(SIGUSR2, on_usr);
  ::setenv("VANTAGE_KAFKA_PID_FILE", pid_file.c_str(), 1);
  replay_target target;
  target.base_url = "http://127.0.0.1:1";
  std::ostringstream out;
  auto s = run_scenario_text(
    R"({"name":"f","steps":[{"name":"down","fault":"kafka_down"},{"name":"up","fault":"kafka_up"}]})",
    "f", target, out);
  for (int i = 0; i < 100 && !(g_usr1 && g_usr2); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  BOOST_CHECK_EQUAL(s.passed, 2);
  BOOST_CHECK(g_usr1 == 1);
  BOOST_CHECK(g_usr2 == 1);
  ::setenv("VANTAGE_KAFKA_PID_FILE", "/nonexistent/pid", 1);
  std::ostringstream out2;
  s = run_scenario_text(R"({"name":"f","steps":[{"name":"down","fault":"kafka_down"}]})",
                        "f", target, out2);
  BOOST_CHECK_EQUAL(s.failed, 1);
  BOOST_CHECK(contains(out2.str(), "FAIL f/down: fault kafka_down: no pid in /nonexistent/pid"));
  ::unsetenv("VANTAGE_KAFKA_PID_FILE");
  std::signal(SIGUSR1, old1);
  std::signal(SIGUSR2, old2);
  std::remove(pid_file.c_str());
}

BOOST_AUTO_TEST_CASE(expect_event_without_kafka_fails_clearly) {
  replay_target target;
  target.base_url = "http://127.0.0.1:1";
  std::ostringstream out;
  auto s = run_scenario_text(
    R"({"name":"e","steps":[
      {"name":"no bootstrap","expect_event":{"topic":"wishlist.events","within_ms":10}},
      {"name":"bad topic","expect_event":{"topic":"nope.events","within_ms":10}}]})",
    "e", target, out);
  BOOST_CHECK_EQUAL(s.failed, 2);
  BOOST_CHECK(contains(out.str(), "FAIL e/no bootstrap: no Kafka bootstrap"));
  BOOST_CHECK(contains(out.str(), "FAIL e/bad topic: unknown topic nope.events"));
}
