// `vantage replay`: scenario files -> HTTP requests, clock advances, faults
// and Kafka expectations against a node. Format: scenarios/README.md.

#include "app/replay.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <httplib.h>
#include <simdjson.h>

#include "adapters/json.hpp"
#include "adapters/text.hpp"

#include "adapters/avro.hpp"
#include "adapters/kafka.hpp"
#include "adapters/topics.hpp"
#include "app/commands.hpp"
#include "app/node.hpp"
#include "app/replay_internal.hpp"
#include "gateway/jwt.hpp"
#include "messages/user.hpp"

namespace vantage {
namespace replay_detail {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string minify(element e) {
  return simdjson::minify(e);
}

/// Short rendering of a value for failure messages.
std::string show(element e) {
  auto s = minify(e);
  if (s.size() > 120)
    s = s.substr(0, 117) + "...";
  return s;
}

const char* type_name(element e) {
  switch (e.type()) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "number";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "?";
}

bool is_number(element e) {
  auto t = e.type();
  return t == element_type::INT64 || t == element_type::UINT64
         || t == element_type::DOUBLE;
}

double as_double(element e) {
  switch (e.type()) {
    case element_type::INT64: return static_cast<double>(int64_t(e));
    case element_type::UINT64: return static_cast<double>(uint64_t(e));
    case element_type::DOUBLE: return double(e);
    default: return 0;
  }
}

bool numbers_equal(element a, element b) {
  if (a.type() == element_type::INT64 && b.type() == element_type::INT64)
    return int64_t(a) == int64_t(b);
  if (a.type() == element_type::UINT64 && b.type() == element_type::UINT64)
    return uint64_t(a) == uint64_t(b);
  double x = as_double(a), y = as_double(b);
  if (x == y)
    return true;
  return std::fabs(x - y) <= 1e-9 * std::max(std::fabs(x), std::fabs(y));
}

std::string_view as_sv(element e) {
  std::string_view sv;
  if (e.get_string().get(sv))
    return {};
  return sv;
}

/// True for {"$op": ...} objects (every key starts with '$').
bool is_operator_object(element e) {
  if (e.type() != element_type::OBJECT)
    return false;
  simdjson::dom::object o = e;
  if (o.size() == 0)
    return false;
  for (auto field : o)
    if (field.key.empty() || field.key[0] != '$')
      return false;
  return true;
}

/// Avro's JSON encoding wraps union branches as {"type": value}; look
/// through that when the expectation is a plain value.
std::optional<element> avro_unwrap(element act) {
  if (act.type() != element_type::OBJECT)
    return std::nullopt;
  simdjson::dom::object o = act;
  if (o.size() != 1)
    return std::nullopt;
  for (auto field : o) {
    static const std::set<std::string_view> prims{
      "string", "int", "long", "float", "double", "boolean", "bytes", "null"};
    if (prims.count(field.key) || field.key.find('.') != std::string_view::npos)
      return field.value;
  }
  return std::nullopt;
}

/// A string of exactly "{{name}}" (whitespace allowed inside the braces):
/// returns the name.
std::optional<std::string> pure_placeholder(std::string_view s) {
  if (s.size() < 5 || s.substr(0, 2) != "{{" || s.substr(s.size() - 2) != "}}")
    return std::nullopt;
  auto inner = s.substr(2, s.size() - 4);
  if (inner.find("{{") != std::string_view::npos
      || inner.find("}}") != std::string_view::npos)
    return std::nullopt;
  while (!inner.empty() && std::isspace(static_cast<unsigned char>(inner.front())))
    inner.remove_prefix(1);
  while (!inner.empty() && std::isspace(static_cast<unsigned char>(inner.back())))
    inner.remove_suffix(1);
  if (inner.empty())
    return std::nullopt;
  return std::string(inner);
}

struct matcher {
  const capture_store& caps;

  bool fail(std::string& why, const std::string& path, const std::string& msg) {
    why = path + ": " + msg;
    return false;
  }

  bool match_operators(element exp, const element* act, const std::string& path,
                       std::string& why) {
    simdjson::dom::object ops = exp;
    // $exists first: it decides what "missing" means.
    std::optional<bool> exists;
    for (auto op : ops) {
      if (op.key == "$exists") {
        bool b = false;
        if (op.value.get_bool().get(b))
          return fail(why, path, "$exists needs true or false");
        exists = b;
      }
    }
    if (act == nullptr) {
      if (exists && !*exists)
        return true;
      return fail(why, path, "missing (expected " + show(exp) + ")");
    }
    if (exists && !*exists)
      return fail(why, path, "expected to be absent, got " + show(*act));
    for (auto op : ops) {
      auto k = op.key;
      if (k == "$exists") {
        continue;
      } else if (k == "$length") {
        if (!is_number(op.value))
          return fail(why, path, "$length needs a number");
        auto want = static_cast<int64_t>(as_double(op.value));
        int64_t got = -1;
        switch (act->type()) {
          case element_type::ARRAY:
            got = static_cast<int64_t>(simdjson::dom::array(*act).size());
            break;
          case element_type::OBJECT:
            got = static_cast<int64_t>(simdjson::dom::object(*act).size());
            break;
          case element_type::STRING:
            got = static_cast<int64_t>(as_sv(*act).size());
            break;
          default:
            return fail(why, path, std::string("expected length ")
                                     + std::to_string(want) + ", got "
                                     + type_name(*act) + " " + show(*act));
        }
        if (got != want)
          return fail(why, path, "expected length " + std::to_string(want)
                                   + ", got " + std::to_string(got));
      } else if (k == "$regex") {
        std::string_view pat_raw;
        if (op.value.get_string().get(pat_raw))
          return fail(why, path, "$regex needs a string");
        std::string pat, err;
        if (!caps.substitute(pat_raw, pat, err))
          return fail(why, path, err);
        std::string subject;
        if (act->type() == element_type::STRING)
          subject = std::string(as_sv(*act));
        else if (is_number(*act) || act->type() == element_type::BOOL)
          subject = minify(*act);
        else
          return fail(why, path, "expected a string matching /" + pat
                                   + "/, got " + type_name(*act));
        try {
          std::regex re(pat, std::regex::ECMAScript);
          if (!std::regex_search(subject, re))
            return fail(why, path, json_quote(subject) + " does not match /" + pat + "/");
        } catch (const std::regex_error& e) {
          return fail(why, path, "bad $regex /" + pat + "/: " + e.what());
        }
      } else if (k == "$type") {
        std::string_view want;
        if (op.value.get_string().get(want))
          return fail(why, path, "$type needs a string");
        std::string got = type_name(*act);
        bool ok = want == got;
        if (want == "integer")
          ok = act->type() == element_type::INT64
               || act->type() == element_type::UINT64;
        if (!ok)
          return fail(why, path, "expected type " + std::string(want) + ", got "
                                   + got + " " + show(*act));
      } else {
        return fail(why, path, "unknown operator " + std::string(k));
      }
    }
    return true;
  }

  bool match(element exp, const element* act_in, const std::string& path,
             std::string& why) {
    if (is_operator_object(exp))
      return match_operators(exp, act_in, path, why);
    if (act_in == nullptr)
      return fail(why, path, "missing (expected " + show(exp) + ")");
    element act = *act_in;
    if (exp.type() != element_type::OBJECT) {
      if (auto inner = avro_unwrap(act))
        act = *inner;
    }
    switch (exp.type()) {
      case element_type::OBJECT: {
        if (act.type() != element_type::OBJECT)
          return fail(why, path, std::string("expected an object, got ")
                                   + type_name(act) + " " + show(act));
        simdjson::dom::object ao = act;
        for (auto field : simdjson::dom::object(exp)) {
          element sub;
          bool found = !ao.at_key(field.key).get(sub);
          if (!match(field.value, found ? &sub : nullptr,
                     path + "." + std::string(field.key), why))
            return false;
        }
        return true;
      }
      case element_type::ARRAY: {
        if (act.type() != element_type::ARRAY)
          return fail(why, path, std::string("expected an array, got ")
                                   + type_name(act) + " " + show(act));
        simdjson::dom::array ea = exp, aa = act;
        if (aa.size() < ea.size())
          return fail(why, path, "expected at least " + std::to_string(ea.size())
                                   + " elements, got " + std::to_string(aa.size()));
        size_t i = 0;
        for (auto ev : ea) {
          element av;
          if (aa.at(i).get(av))
            return fail(why, path, "index out of range");
          if (!match(ev, &av, path + "[" + std::to_string(i) + "]", why))
            return false;
          ++i;
        }
        return true;
      }
      case element_type::STRING: {
        std::string want, err;
        auto raw = as_sv(exp);
        if (!caps.substitute(raw, want, err))
          return fail(why, path, err);
        if (act.type() == element_type::STRING) {
          if (as_sv(act) == want)
            return true;
          return fail(why, path, "expected " + json_quote(want) + ", got " + show(act));
        }
        // A capture of a number used as "{{n}}" compares as that number.
        if (pure_placeholder(raw) && is_number(act)) {
          char* end = nullptr;
          double d = std::strtod(want.c_str(), &end);
          if (end && *end == '\0' && !want.empty() && d == as_double(act))
            return true;
        }
        return fail(why, path, "expected " + json_quote(want) + ", got "
                                 + type_name(act) + " " + show(act));
      }
      case element_type::INT64:
      case element_type::UINT64:
      case element_type::DOUBLE:
        if (!is_number(act))
          return fail(why, path, "expected " + minify(exp) + ", got "
                                   + type_name(act) + " " + show(act));
        if (!numbers_equal(exp, act))
          return fail(why, path, "expected " + minify(exp) + ", got " + show(act));
        return true;
      case element_type::BOOL:
        if (act.type() != element_type::BOOL || bool(exp) != bool(act))
          return fail(why, path, "expected " + minify(exp) + ", got " + show(act));
        return true;
      case element_type::NULL_VALUE:
        if (act.type() != element_type::NULL_VALUE)
          return fail(why, path, "expected null, got " + show(act));
        return true;
    }
    return fail(why, path, "unsupported expectation");
  }
};

/// Serializes `e` substituting captures in every string (and key). A string
/// that is exactly "{{name}}" becomes the capture's JSON form.
bool render_json(element e, const capture_store& caps, std::string& out,
                 std::string& err) {
  switch (e.type()) {
    case element_type::OBJECT: {
      out += '{';
      bool first = true;
      for (auto field : simdjson::dom::object(e)) {
        if (!first)
          out += ',';
        first = false;
        std::string k;
        if (!caps.substitute(field.key, k, err))
          return false;
        out += json_quote(k);
        out += ':';
        if (!render_json(field.value, caps, out, err))
          return false;
      }
      out += '}';
      return true;
    }
    case element_type::ARRAY: {
      out += '[';
      bool first = true;
      for (auto v : simdjson::dom::array(e)) {
        if (!first)
          out += ',';
        first = false;
        if (!render_json(v, caps, out, err))
          return false;
      }
      out += ']';
      return true;
    }
    case element_type::STRING: {
      auto raw = as_sv(e);
      if (auto name = pure_placeholder(raw)) {
        auto it = caps.values.find(*name);
        if (it != caps.values.end()) {
          out += it->second.json;
          return true;
        }
      }
      std::string s;
      if (!caps.substitute(raw, s, err))
        return false;
      out += json_quote(s);
      return true;
    }
    default:
      out += minify(e);
      return true;
  }
}

/// Walks "a.b[0].c" (optionally starting with "$" or "$.").
bool walk_path(element root, std::string_view path, element& out,
               std::string& err) {
  if (!path.empty() && path[0] == '$')
    path.remove_prefix(1);
  element cur = root;
  size_t i = 0;
  std::string walked = "$";
  while (i < path.size()) {
    if (path[i] == '.') {
      ++i;
      continue;
    }
    if (path[i] == '[') {
      auto close = path.find(']', i);
      if (close == std::string_view::npos) {
        err = "bad path '" + std::string(path) + "': unclosed [";
        return false;
      }
      auto idx_text = std::string(path.substr(i + 1, close - i - 1));
      char* end = nullptr;
      long idx = std::strtol(idx_text.c_str(), &end, 10);
      if (idx_text.empty() || *end != '\0' || idx < 0) {
        err = "bad path '" + std::string(path) + "': index '" + idx_text + "'";
        return false;
      }
      walked += "[" + idx_text + "]";
      if (cur.type() != element_type::ARRAY) {
        err = walked + " is not in the response (" + type_name(cur) + " there)";
        return false;
      }
      if (simdjson::dom::array(cur).at(static_cast<size_t>(idx)).get(cur)) {
        err = walked + " is not in the response (array too short)";
        return false;
      }
      i = close + 1;
      continue;
    }
    auto j = i;
    while (j < path.size() && path[j] != '.' && path[j] != '[')
      ++j;
    auto key = path.substr(i, j - i);
    walked += "." + std::string(key);
    if (cur.type() != element_type::OBJECT
        || simdjson::dom::object(cur).at_key(key).get(cur)) {
      err = walked + " is not in the response";
      return false;
    }
    i = j;
  }
  out = cur;
  return true;
}

capture_value capture_of(element e) {
  capture_value v;
  if (e.type() == element_type::STRING) {
    v.text = std::string(as_sv(e));
    v.json = json_quote(v.text);
  } else {
    v.text = v.json = minify(e);
  }
  return v;
}

int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// ---------------------------------------------------------------------------
// Scenario runner

struct step_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct scenario_run {
  replay_target& target;
  std::ostream& out;
  std::string label;
  capture_store caps;
  int64_t started_wall_ms = wall_now_ms();
  /// topic -> partition -> high-water offset at scenario start.
  std::map<std::string, std::map<int32_t, int64_t>> high_water;
  std::map<std::string, std::string> high_water_error;
  std::map<std::string, std::unique_ptr<avro_codec>> codecs;
  /// One consumer per topic for the whole scenario (a unique group reading
  /// from the beginning), opened at scenario start so the group join runs
  /// while the first steps do; every record read is kept for later steps.
  struct topic_feed {
    std::unique_ptr<kafka_consumer> consumer;
    std::string error;
    std::vector<consumed_record> seen;
  };
  std::map<std::string, topic_feed> feeds;

  /// Topics some `expect_event` reads with `after_step: false`.
  std::set<std::string> needs_history;

  void open_feed(const std::string& topic, topic_feed& feed) {
    // Read from the high-water marks taken at scenario start: no group join
    // to wait for, and no backlog of older records to wade through. A topic
    // whose history is wanted (or whose marks are unknown) starts at the
    // beginning instead.
    std::map<int32_t, int64_t> start;
    auto hw = high_water.find(topic);
    if (needs_history.count(topic) == 0 && hw != high_water.end())
      start = hw->second;
    feed.consumer = kafka_consumer::create_at_offsets(target.kafka_bootstrap,
                                                      topic, start, feed.error);
  }
  replay_summary summary;

  scenario_run(replay_target& t, std::ostream& o, std::string l)
    : target(t), out(o), label(std::move(l)) {
    // {{run_id}}: unique per replay, so ids a scenario invents (user subs,
    // product ids) are fresh even on a database kept from earlier runs.
    caps.set_string("run_id", std::to_string(started_wall_ms) + "_"
                                + std::to_string(::getpid()));
  }

  void report(const std::string& step, const std::string& failure) {
    if (failure.empty()) {
      out << "PASS " << label << "/" << step << "\n";
      ++summary.passed;
    } else {
      std::string why = failure;
      for (auto& c : why)
        if (c == '\n' || c == '\r')
          c = ' ';
      out << "FAIL " << label << "/" << step << ": " << why << "\n";
      ++summary.failed;
    }
    out.flush();
  }

  std::string sub(std::string_view s) {
    std::string r, err;
    if (!caps.substitute(s, r, err))
      throw step_failure(err);
    return r;
  }

  std::string get_string(simdjson::dom::object o, std::string_view key,
                         const std::string& def = {}) {
    element e;
    if (o.at_key(key).get(e))
      return def;
    if (e.type() != element_type::STRING)
      throw step_failure("\"" + std::string(key) + "\" must be a string");
    return std::string(as_sv(e));
  }

  // --- watermarks -----------------------------------------------------------

  void record_high_water(const std::set<std::string>& topics) {
    if (topics.empty() || target.kafka_bootstrap.empty())
      return;
    std::vector<std::string> known;
    for (auto& t : topics)
      if (find_topic(t))
        known.push_back(t);
    // Brokers may be coming back from a `kafka_up` of the previous
    // scenario: transient errors are retried for a few seconds.
    for (auto& [t, ends] :
         query_topic_ends(target.kafka_bootstrap, known, std::chrono::seconds(5))) {
      if (ends.error.empty())
        high_water[t] = std::move(ends.partitions);
      else
        high_water_error[t] = ends.error;
    }
  }

  // --- steps ----------------------------------------------------------------

  void run_request(simdjson::dom::object step, simdjson::dom::object req) {
    httplib::Request r;
    r.method = get_string(req, "method", "GET");
    for (auto& c : r.method)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto path = get_string(req, "path");
    if (path.empty())
      throw step_failure("request.path is missing");
    r.path = sub(path);
    bool has_content_type = false;
    element hdrs;
    if (!req.at_key("headers").get(hdrs)) {
      if (hdrs.type() != element_type::OBJECT)
        throw step_failure("request.headers must be an object");
      for (auto h : simdjson::dom::object(hdrs)) {
        if (h.value.type() != element_type::STRING)
          throw step_failure("request header " + std::string(h.key)
                             + " must be a string");
        if (ascii_lower(h.key) == "content-type")
          has_content_type = true;
        r.headers.emplace(std::string(h.key), sub(as_sv(h.value)));
      }
    }
    element body;
    if (!req.at_key("json").get(body)) {
      std::string err;
      if (!render_json(body, caps, r.body, err))
        throw step_failure(err);
      if (!has_content_type)
        r.headers.emplace("Content-Type", "application/json");
    } else if (!req.at_key("body").get(body)) {
      if (body.type() != element_type::STRING)
        throw step_failure("request.body must be a string (use \"json\" for JSON)");
      r.body = sub(as_sv(body));
      if (!has_content_type)
        r.headers.emplace("Content-Type", "text/plain");
    }
    element auth;
    if (!step.at_key("auth").get(auth) && auth.type() == element_type::OBJECT) {
      simdjson::dom::object a = auth;
      std::string token = get_string(a, "token");
      if (!token.empty()) {
        token = sub(token);
      } else {
        user_claims c;
        c.user_id = sub(get_string(a, "sub"));
        if (c.user_id.empty())
          throw step_failure("auth.sub is missing");
        c.display_name = sub(get_string(a, "name"));
        c.email = sub(get_string(a, "email"));
        c.tz = sub(get_string(a, "tz", c.tz));
        c.region = sub(get_string(a, "region", c.region));
        c.account_type = sub(get_string(a, "account_type", c.account_type));
        int64_t exp_in = 3600;
        element e;
        if (!a.at_key("exp_in_s").get(e) && is_number(e))
          exp_in = static_cast<int64_t>(as_double(e));
        // The node's clock may be virtual and already advanced by this
        // scenario: count the advances so the token is live "now" there.
        int64_t now_s = (wall_now_ms() + target.advanced.count()) / 1000;
        const char* env_secret = std::getenv("VANTAGE_JWT_SECRET");
        std::string secret = env_secret && *env_secret ? env_secret
                                                        : default_dev_jwt_secret;
        token = mint_hs256(c, secret, now_s + exp_in);
      }
      r.headers.emplace("Authorization", "Bearer " + token);
    }

    httplib::Client cli(target.base_url);
    cli.set_connection_timeout(std::chrono::seconds(5));
    cli.set_read_timeout(std::chrono::seconds(60));
    cli.set_write_timeout(std::chrono::seconds(10));
    auto res = cli.send(r);
    if (!res)
      throw step_failure(r.method + " " + r.path + ": request failed: "
                         + httplib::to_string(res.error()));

    std::vector<std::string> failures;
    // Response JSON (if any).
    simdjson::dom::parser parser;
    element rj;
    bool have_json = false;
    std::string json_err;
    {
      auto err = parser.parse(res->body).get(rj);
      have_json = !err && !res->body.empty();
      if (err)
        json_err = simdjson::error_message(err);
    }

    // Captures first, so expectations may use values from this response.
    element cap;
    if (!step.at_key("capture").get(cap)) {
      if (cap.type() != element_type::OBJECT)
        throw step_failure("capture must be an object");
      for (auto c : simdjson::dom::object(cap)) {
        std::string name(c.key);
        std::string err;
        if (c.value.type() == element_type::STRING) {
          element v;
          if (!have_json) {
            err = "response is not JSON";
          } else if (walk_path(rj, as_sv(c.value), v, err)) {
            caps.values[name] = capture_of(v);
            caps.failed.erase(name);
            continue;
          }
        } else if (c.value.type() == element_type::OBJECT) {
          simdjson::dom::object co = c.value;
          std::string h = get_string(co, "header");
          if (h.empty()) {
            err = "capture spec needs \"header\" or a path string";
          } else if (res->has_header(h.c_str())) {
            caps.set_string(name, res->get_header_value(h.c_str()));
            caps.failed.erase(name);
            continue;
          } else {
            err = "response has no header " + h;
          }
        } else {
          err = "capture spec must be a path string or {\"header\": ...}";
        }
        caps.values.erase(name);
        caps.failed[name] = "capture '" + name + "' failed: " + err;
        failures.push_back(caps.failed[name]);
      }
    }

    element exp;
    if (!step.at_key("expect").get(exp)) {
      if (exp.type() != element_type::OBJECT)
        throw step_failure("expect must be an object");
      simdjson::dom::object eo = exp;
      element st;
      if (!eo.at_key("status").get(st)) {
        if (!is_number(st))
          throw step_failure("expect.status must be a number");
        auto want = static_cast<int>(as_double(st));
        if (res->status != want) {
          std::string snippet = res->body.substr(0, 200);
          failures.insert(failures.begin(),
                          "status: expected " + std::to_string(want) + ", got "
                            + std::to_string(res->status) + " " + snippet);
        }
      }
      element eh;
      if (!eo.at_key("headers").get(eh)) {
        if (eh.type() != element_type::OBJECT)
          throw step_failure("expect.headers must be an object");
        // Actual headers as a JSON object with lower-case names.
        std::string hj = "{";
        std::set<std::string> seen;
        for (auto& [k, v] : res->headers) {
          auto lk = ascii_lower(k);
          if (!seen.insert(lk).second)
            continue;
          if (hj.size() > 1)
            hj += ',';
          hj += json_quote(lk) + ":" + json_quote(v);
        }
        hj += "}";
        simdjson::dom::parser hp;
        element ha;
        if (hp.parse(hj).get(ha))
          throw step_failure("internal: header JSON");
        simdjson::dom::object hao = ha;
        matcher m{caps};
        for (auto h : simdjson::dom::object(eh)) {
          element av;
          bool found = !hao.at_key(ascii_lower(h.key)).get(av);
          std::string why;
          if (!m.match(h.value, found ? &av : nullptr,
                       "header " + std::string(h.key), why))
            failures.push_back(why);
        }
      }
      element ej;
      if (!eo.at_key("json").get(ej)) {
        if (!have_json) {
          failures.push_back("response body is not JSON ("
                             + (res->body.empty() ? std::string("empty")
                                                  : json_err)
                             + "): " + res->body.substr(0, 120));
        } else {
          matcher m{caps};
          std::string why;
          if (!m.match(ej, &rj, "$", why))
            failures.push_back(why);
        }
      }
      element bc;
      if (!eo.at_key("body_contains").get(bc)) {
        std::vector<element> items;
        if (bc.type() == element_type::ARRAY)
          for (auto v : simdjson::dom::array(bc))
            items.push_back(v);
        else
          items.push_back(bc);
        for (auto v : items) {
          if (v.type() != element_type::STRING)
            throw step_failure("expect.body_contains must be strings");
          auto want = sub(as_sv(v));
          if (res->body.find(want) == std::string::npos)
            failures.push_back("body does not contain " + json_quote(want));
        }
      }
    }
    if (!failures.empty()) {
      std::string all;
      for (auto& f : failures) {
        if (!all.empty())
          all += "; ";
        all += f;
      }
      throw step_failure(all);
    }
  }

  void run_advance(element adv) {
    std::chrono::milliseconds d{0};
    if (adv.type() == element_type::STRING) {
      std::string err;
      if (!parse_duration(as_sv(adv), d, err))
        throw step_failure(err);
    } else if (is_number(adv)) {
      d = std::chrono::milliseconds(static_cast<int64_t>(as_double(adv)));
    } else {
      throw step_failure("advance must be a duration string like \"16m\"");
    }
    if (!target.advance_clock)
      throw step_failure("the target cannot advance its clock");
    try {
      target.advance_clock(d);
    } catch (const std::exception& e) {
      throw step_failure(std::string("clock advance failed: ") + e.what());
    }
    target.advanced += d;
  }

  void run_fault(const std::string& fault) {
    if (fault == "renderer_down" || fault == "renderer_up") {
      // Fault injection on the target node (test nodes only): every render
      // fails while it is down, as if the browsers could not render.
      httplib::Client cli(target.base_url);
      auto res = cli.Post("/_test/faults",
                          fault == "renderer_down" ? R"({"renderer":"down"})"
                                                   : R"({"renderer":"up"})",
                          "application/json");
      if (!res || res->status != 200)
        throw step_failure("fault " + fault + ": the target refused it");
      return;
    }
    int sig = 0;
    if (fault == "kafka_down")
      sig = SIGUSR1;
    else if (fault == "kafka_up")
      sig = SIGUSR2;
    else
      throw step_failure("unknown fault '" + fault
                         + "' (known: kafka_down, kafka_up, renderer_down,"
                           " renderer_up)");
    const char* pid_file = std::getenv("VANTAGE_KAFKA_PID_FILE");
    if (!pid_file || !*pid_file)
      throw step_failure("fault " + fault
                         + ": VANTAGE_KAFKA_PID_FILE is not set");
    std::ifstream in(pid_file);
    long pid = 0;
    if (!(in >> pid) || pid <= 1)
      throw step_failure("fault " + fault + ": no pid in " + pid_file);
    if (::kill(static_cast<pid_t>(pid), sig) != 0)
      throw step_failure("fault " + fault + ": kill(" + std::to_string(pid)
                         + "): " + std::strerror(errno));
  }

  void run_expect_event(element ev) {
    if (ev.type() != element_type::OBJECT)
      throw step_failure("expect_event must be an object");
    simdjson::dom::object eo = ev;
    auto topic = sub(get_string(eo, "topic"));
    if (topic.empty())
      throw step_failure("expect_event.topic is missing");
    auto* spec = find_topic(topic);
    if (!spec)
      throw step_failure("unknown topic " + topic);
    if (target.kafka_bootstrap.empty())
      throw step_failure("no Kafka bootstrap (set KAFKA_BOOTSTRAP_SERVERS)");
    std::optional<std::string> key;
    element ke;
    if (!eo.at_key("key").get(ke)) {
      if (ke.type() != element_type::STRING)
        throw step_failure("expect_event.key must be a string");
      key = sub(as_sv(ke));
    }
    int64_t within_ms = 5000;
    element we;
    if (!eo.at_key("within_ms").get(we)) {
      if (!is_number(we))
        throw step_failure("within_ms must be a number");
      within_ms = static_cast<int64_t>(as_double(we));
    }
    std::optional<int64_t> count;
    element ce;
    if (!eo.at_key("count").get(ce)) {
      if (!is_number(ce))
        throw step_failure("count must be a number");
      count = static_cast<int64_t>(as_double(ce));
    }
    bool after_start = true;
    element ae;
    if (!eo.at_key("after_step").get(ae) && ae.type() == element_type::BOOL)
      after_start = bool(ae);
    element expected;
    bool has_expected = !eo.at_key("json").get(expected);
    // Make sure {{captures}} in the expectation are available before waiting.
    if (has_expected) {
      std::string scratch, err;
      if (!render_json(expected, caps, scratch, err))
        throw step_failure(err);
    }

    auto& codec = codecs[spec->schema];
    if (!codec) {
      std::string err;
      codec = avro_codec::builtin(spec->schema, err);
      if (!codec)
        throw step_failure("schema " + std::string(spec->schema) + ": " + err);
    }
    const std::map<int32_t, int64_t>* hw = nullptr;
    if (after_start) {
      auto it = high_water.find(topic);
      if (it != high_water.end())
        hw = &it->second;
    }

    auto& feed = feeds[topic];
    if (!feed.consumer) {
      open_feed(topic, feed);
      if (!feed.consumer)
        throw step_failure("kafka consumer: " + feed.error);
    }

    auto deadline = std::chrono::steady_clock::now()
                    + std::chrono::milliseconds(within_ms);
    int64_t matched = 0, considered = 0;
    std::string closest, decode_error;
    size_t scanned = 0;
    auto scan = [&]() {
      for (; scanned < feed.seen.size(); ++scanned) {
        auto& rec = feed.seen[scanned];
        if (after_start) {
          if (hw) {
            auto p = hw->find(rec.partition);
            if (p != hw->end() && rec.offset < p->second)
              continue;
          } else if (rec.timestamp_ms < started_wall_ms - 1000) {
            continue;
          }
        }
        ++considered;
        if (key && rec.key != *key) {
          if (closest.empty())
            closest = "key " + json_quote(rec.key) + " != " + json_quote(*key);
          continue;
        }
        if (has_expected) {
          std::string json, derr;
          if (!codec->decode(rec.value, json, derr)) {
            decode_error = derr;
            continue;
          }
          simdjson::dom::parser p;
          element actual;
          if (p.parse(json).get(actual)) {
            decode_error = "decoded value is not JSON";
            continue;
          }
          matcher m{caps};
          std::string why;
          if (!m.match(expected, &actual, "$", why)) {
            if (closest.empty() || closest.rfind("key ", 0) == 0)
              closest = why;
            continue;
          }
        }
        ++matched;
      }
    };
    scan();
    while (count || matched == 0) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline)
        break;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      auto recs = feed.consumer->poll(1000, std::min(left, std::chrono::milliseconds(100)));
      for (auto& r : recs)
        feed.seen.push_back(std::move(r));
      scan();
    }
    if (count) {
      if (matched == *count)
        return;
      throw step_failure("expected " + std::to_string(*count)
                         + " matching records on " + topic + " within "
                         + std::to_string(within_ms) + " ms, got "
                         + std::to_string(matched));
    }
    if (matched > 0)
      return;
    std::string msg = "no matching record on " + topic + " within "
                      + std::to_string(within_ms) + " ms (" + std::to_string(considered)
                      + " records considered";
    if (!closest.empty())
      msg += "; closest: " + closest;
    if (!decode_error.empty())
      msg += "; decode error: " + decode_error;
    if (after_start && !hw) {
      auto e = high_water_error.find(topic);
      if (e != high_water_error.end())
        msg += "; start offsets unknown (" + e->second + "), filtered by timestamp";
    }
    msg += ")";
    throw step_failure(msg);
  }

  void run(simdjson::dom::element root) {
    if (root.type() != element_type::OBJECT)
      throw step_failure("a scenario must be a JSON object");
    simdjson::dom::object so = root;
    element name_e;
    if (!so.at_key("name").get(name_e) && name_e.type() == element_type::STRING
        && !as_sv(name_e).empty())
      label = std::string(as_sv(name_e));
    element steps_e;
    if (so.at_key("steps").get(steps_e) || steps_e.type() != element_type::ARRAY)
      throw step_failure("\"steps\" must be an array");
    simdjson::dom::array steps = steps_e;

    // Remember where each topic we will look at stands before anything runs.
    std::set<std::string> topics;
    for (auto s : steps) {
      element ev, t;
      if (s.type() == element_type::OBJECT
          && !simdjson::dom::object(s).at_key("expect_event").get(ev)
          && ev.type() == element_type::OBJECT
          && !simdjson::dom::object(ev).at_key("topic").get(t)
          && t.type() == element_type::STRING) {
        topics.insert(std::string(as_sv(t)));
        element after;
        if (!simdjson::dom::object(ev).at_key("after_step").get(after)
            && after.type() == element_type::BOOL && !bool(after))
          needs_history.insert(std::string(as_sv(t)));
      }
    }
    record_high_water(topics);
    if (!target.kafka_bootstrap.empty())
      for (auto& t : topics)
        if (find_topic(t))
          open_feed(t, feeds[t]);

    int index = 0;
    std::string stopped_by;
    for (auto s : steps) {
      ++index;
      std::string name = "step " + std::to_string(index);
      if (s.type() != element_type::OBJECT) {
        report(name, "a step must be a JSON object");
        continue;
      }
      simdjson::dom::object st = s;
      element ne;
      if (!st.at_key("name").get(ne) && ne.type() == element_type::STRING
          && !as_sv(ne).empty())
        name = std::string(as_sv(ne));
      if (!stopped_by.empty()) {
        report(name, "skipped: required step '" + stopped_by + "' failed");
        continue;
      }
      std::string failure;
      try {
        element e;
        if (!st.at_key("request").get(e)) {
          if (e.type() != element_type::OBJECT)
            throw step_failure("request must be an object");
          // "repeat": n sends the same request n times; each answer must
          // meet the expectations (e.g. the 20 shares before a 429).
          int64_t times = 1;
          element rep;
          if (!st.at_key("repeat").get(rep)
              && (rep.get(times) != simdjson::SUCCESS || times < 1
                  || times > 10000))
            throw step_failure("repeat must be an integer 1..10000");
          for (int64_t i = 0; i < times; ++i) {
            try {
              run_request(st, e);
            } catch (const step_failure& f) {
              if (times == 1)
                throw;
              throw step_failure("repetition " + std::to_string(i + 1) + "/"
                                 + std::to_string(times) + ": " + f.what());
            }
          }
        } else if (!st.at_key("advance").get(e)) {
          run_advance(e);
        } else if (!st.at_key("expect_event").get(e)) {
          run_expect_event(e);
        } else if (!st.at_key("fault").get(e)) {
          if (e.type() != element_type::STRING)
            throw step_failure("fault must be a string");
          run_fault(std::string(as_sv(e)));
        } else {
          throw step_failure("step has none of request, advance, expect_event, fault");
        }
      } catch (const step_failure& e) {
        failure = e.what();
      } catch (const std::exception& e) {
        failure = std::string("error: ") + e.what();
      }
      report(name, failure);
      element req;
      if (!failure.empty() && !st.at_key("required").get(req)
          && req.type() == element_type::BOOL && bool(req))
        stopped_by = name;
    }
  }
};

} // namespace

// ---------------------------------------------------------------------------

bool parse_duration(std::string_view text, std::chrono::milliseconds& out,
                    std::string& err) {
  int64_t total = 0;
  size_t i = 0;
  auto bad = [&](const std::string& why) {
    err = "bad duration '" + std::string(text) + "': " + why
          + " (use e.g. 500ms, 30s, 16m, 2h, 31d)";
    return false;
  };
  if (text.empty())
    return bad("empty");
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])))
      ++j;
    if (j == i)
      return bad("expected a number");
    if (j - i > 12)
      return bad("number too large");
    int64_t n = std::stoll(std::string(text.substr(i, j - i)));
    size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k])))
      ++k;
    auto unit = text.substr(j, k - j);
    int64_t mult = 0;
    if (unit == "ms")
      mult = 1;
    else if (unit == "s")
      mult = 1000;
    else if (unit == "m")
      mult = 60 * 1000;
    else if (unit == "h")
      mult = 3600 * 1000;
    else if (unit == "d")
      mult = 24 * 3600 * 1000;
    else
      return bad(unit.empty() ? "missing unit" : "unknown unit '" + std::string(unit) + "'");
    total += n * mult;
    i = k;
  }
  out = std::chrono::milliseconds(total);
  return true;
}

void capture_store::set_string(const std::string& name, const std::string& value) {
  values[name] = capture_value{value, json_quote(value)};
}

bool capture_store::substitute(std::string_view in, std::string& out,
                               std::string& err) const {
  out.clear();
  size_t i = 0;
  while (i < in.size()) {
    auto open = in.find("{{", i);
    if (open == std::string_view::npos) {
      out.append(in.substr(i));
      break;
    }
    auto close = in.find("}}", open + 2);
    if (close == std::string_view::npos) {
      out.append(in.substr(i));
      break;
    }
    out.append(in.substr(i, open - i));
    auto name = in.substr(open + 2, close - open - 2);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front())))
      name.remove_prefix(1);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back())))
      name.remove_suffix(1);
    std::string key(name);
    auto it = values.find(key);
    if (it == values.end()) {
      auto f = failed.find(key);
      if (f != failed.end())
        err = "capture '" + key + "' is unavailable (" + f->second + ")";
      else
        err = "capture '" + key + "' is not set (no earlier step captured it)";
      return false;
    }
    out += it->second.text;
    i = close + 2;
  }
  return true;
}

bool json_match(std::string_view expected_json, std::string_view actual_json,
                const capture_store& caps, std::string& why) {
  simdjson::dom::parser pe, pa;
  element e, a;
  if (auto err = pe.parse(expected_json.data(), expected_json.size()).get(e)) {
    why = std::string("expected is not JSON: ") + simdjson::error_message(err);
    return false;
  }
  if (auto err = pa.parse(actual_json.data(), actual_json.size()).get(a)) {
    why = std::string("actual is not JSON: ") + simdjson::error_message(err);
    return false;
  }
  matcher m{caps};
  return m.match(e, &a, "$", why);
}

bool json_path_capture(std::string_view json, std::string_view path,
                       capture_value& out, std::string& err) {
  simdjson::dom::parser p;
  element root, v;
  if (auto e = p.parse(json.data(), json.size()).get(root)) {
    err = simdjson::error_message(e);
    return false;
  }
  if (!walk_path(root, path, v, err))
    return false;
  out = capture_of(v);
  return true;
}

replay_summary run_scenario_text(const std::string& text, const std::string& label,
                                 replay_target& target, std::ostream& out,
                                 const std::string& source) {
  scenario_run run(target, out, label);
  const std::string& src = source.empty() ? label : source;
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(text).get(root)) {
    run.report("parse", src + " is not valid JSON: " + simdjson::error_message(err));
    return run.summary;
  }
  try {
    run.run(root);
  } catch (const std::exception& e) {
    run.report("parse", src + ": " + e.what());
  }
  return run.summary;
}

} // namespace replay_detail

replay_summary run_scenario_file(const std::string& path, replay_target& target,
                                 std::ostream& out) {
  std::ifstream in(path, std::ios::binary);
  std::string label = std::filesystem::path(path).stem().string();
  if (!in) {
    replay_summary s;
    out << "FAIL " << label << "/parse: cannot read " << path << "\n";
    s.failed = 1;
    return s;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return replay_detail::run_scenario_text(ss.str(), label, target, out, path);
}

namespace {

int replay_usage(std::ostream& os) {
  os << "usage: vantage replay [--target URL] FILE|DIR...\n"
        "  Replays scenario files (see scenarios/README.md). Without --target an\n"
        "  in-process node with a virtual clock is started. With --target, the\n"
        "  clock is advanced through POST URL/_test/clock/advance and Kafka is\n"
        "  read from $KAFKA_BOOTSTRAP_SERVERS.\n";
  return 2;
}

} // namespace

int replay_main(int argc, char** argv) {
  std::string target_url;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--target" && i + 1 < argc) {
      target_url = argv[++i];
    } else if (a.rfind("--target=", 0) == 0) {
      target_url = a.substr(9);
    } else if (a == "-h" || a == "--help") {
      replay_usage(std::cout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "unknown option " << a << "\n";
      return replay_usage(std::cerr);
    } else if (std::filesystem::is_directory(a)) {
      std::vector<std::string> found;
      for (auto& entry : std::filesystem::directory_iterator(a))
        if (entry.path().extension() == ".json")
          found.push_back(entry.path().string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(a);
    }
  }
  if (files.empty())
    return replay_usage(std::cerr);

  replay_target target;
  std::unique_ptr<embedded_node> node;
  if (target_url.empty()) {
    std::string err;
    node = embedded_node::start(err);
    if (!node) {
      std::cerr << "replay: cannot start an embedded node: " << err << "\n";
      return 1;
    }
    target.base_url = node->base_url();
    target.kafka_bootstrap = node->kafka_bootstrap();
    auto* n = node.get();
    target.advance_clock = [n](std::chrono::milliseconds d) { n->advance(d); };
  } else {
    while (!target_url.empty() && target_url.back() == '/')
      target_url.pop_back();
    target.base_url = target_url;
    if (const char* b = std::getenv("KAFKA_BOOTSTRAP_SERVERS"))
      target.kafka_bootstrap = b;
    target.advance_clock = [target_url](std::chrono::milliseconds d) {
      httplib::Client cli(target_url);
      cli.set_read_timeout(std::chrono::seconds(60));
      auto res = cli.Post("/_test/clock/advance",
                          "{\"ms\":" + std::to_string(d.count()) + "}",
                          "application/json");
      if (!res)
        throw std::runtime_error("POST /_test/clock/advance: "
                                 + httplib::to_string(res.error()));
      if (res->status < 200 || res->status > 299)
        throw std::runtime_error("POST /_test/clock/advance answered "
                                 + std::to_string(res->status) + " "
                                 + res->body.substr(0, 200));
    };
  }

  replay_summary total;
  for (auto& f : files) {
    auto s = run_scenario_file(f, target, std::cout);
    total.passed += s.passed;
    total.failed += s.failed;
  }
  std::cout << total.passed << " passed, " << total.failed << " failed\n";
  std::cout.flush();
  if (node)
    node->stop();
  return total.failed == 0 ? 0 : 1;
}

} // namespace vantage
