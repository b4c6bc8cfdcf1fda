// Gateway traffic -> scenario file (see recorder.hpp and scenarios/README.md).

#include "gateway/recorder.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <set>

#include <simdjson.h>

#include "adapters/files.hpp"
#include "adapters/json.hpp"
#include "adapters/text.hpp"

namespace vantage {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && s.substr(s.size() - suffix.size()) == suffix;
}

/// Keys whose values identify rather than describe: captured, not expected.
bool is_id_key(std::string_view k) {
  return k != "request_id" && (ends_with(k, "_id") || ends_with(k, "_token"));
}

/// Keys left out of expectations because they differ from run to run.
bool is_volatile_key(std::string_view k) {
  return k == "request_id" || ends_with(k, "_id") || ends_with(k, "_token")
         || ends_with(k, "_at");
}

bool is_dropped_header(const std::string& lower_name) {
  static const std::set<std::string> dropped{
    "host", "content-length", "connection", "user-agent", "accept",
    "accept-encoding", "keep-alive", "transfer-encoding", "te", "trailer",
    "upgrade", "proxy-connection", "remote_addr", "remote_port", "local_addr",
    "local_port", "authorization"};
  return dropped.count(lower_name) > 0;
}

bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return false;
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return true;
}

std::string_view as_sv(element e) {
  std::string_view sv;
  if (e.get_string().get(sv))
    return {};
  return sv;
}

} // namespace

struct traffic_recorder::state {
  std::string path;
  std::string name;
  std::string started;
  mutable std::mutex mtx;
  std::vector<std::string> steps;
  /// value -> capture name; `by_length` keeps longest values first so a
  /// value that contains another is replaced whole.
  std::map<std::string, std::string> captured;
  std::vector<std::pair<std::string, std::string>> by_length;
  std::map<std::string, int> per_key;
  /// Everything clients have sent so far: values found here are the
  /// client's own (sub, product ids...), never captures.
  std::string client_text;
  bool warned = false;

  std::string substitute(std::string_view s) const {
    auto it = captured.find(std::string(s));
    if (it != captured.end())
      return "{{" + it->second + "}}";
    std::string out(s);
    for (auto& [value, cname] : by_length) {
      if (value.size() < 4)
        continue;
      std::string repl = "{{" + cname + "}}";
      size_t pos = 0;
      while ((pos = out.find(value, pos)) != std::string::npos) {
        out.replace(pos, value.size(), repl);
        pos += repl.size();
      }
    }
    return out;
  }

  /// JSON of `e` with captured values templated; `expectation` drops
  /// volatile keys at every level.
  void render(element e, bool expectation, std::string& out) const {
    switch (e.type()) {
      case element_type::OBJECT: {
        out += '{';
        bool first = true;
        for (auto f : simdjson::dom::object(e)) {
          if (expectation && is_volatile_key(f.key))
            continue;
          if (!first)
            out += ", ";
          first = false;
          out += json_quote(f.key);
          out += ": ";
          render(f.value, expectation, out);
        }
        out += '}';
        return;
      }
      case element_type::ARRAY: {
        out += '[';
        bool first = true;
        for (auto v : simdjson::dom::array(e)) {
          if (!first)
            out += ", ";
          first = false;
          render(v, expectation, out);
        }
        out += ']';
        return;
      }
      case element_type::STRING:
        out += json_quote(substitute(as_sv(e)));
        return;
      default:
        out += simdjson::minify(e);
        return;
    }
  }

  void find_captures(element e, const std::string& path,
                     std::vector<std::pair<std::string, std::string>>& found) {
    if (e.type() == element_type::OBJECT) {
      for (auto f : simdjson::dom::object(e)) {
        std::string p = path.empty() ? std::string(f.key)
                                     : path + "." + std::string(f.key);
        if (f.value.type() == element_type::STRING && is_id_key(f.key)) {
          std::string v(as_sv(f.value));
          if (!v.empty() && !captured.count(v)
              && client_text.find(v) == std::string::npos) {
            std::string key(f.key);
            std::string cname = key + "_" + std::to_string(++per_key[key]);
            captured[v] = cname;
            by_length.emplace_back(v, cname);
            std::stable_sort(by_length.begin(), by_length.end(),
                             [](auto& a, auto& b) {
                               return a.first.size() > b.first.size();
                             });
            found.emplace_back(cname, p);
          }
        } else {
          find_captures(f.value, p, found);
        }
      }
    } else if (e.type() == element_type::ARRAY) {
      size_t i = 0;
      for (auto v : simdjson::dom::array(e))
        find_captures(v, path + "[" + std::to_string(i++) + "]", found);
    }
  }

  std::string auth_block(const std::string& token) {
    auto d1 = token.find('.');
    auto d2 = d1 == std::string::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string::npos)
      return {};
    std::string payload;
    if (!base64url_decode(std::string_view(token).substr(d1 + 1, d2 - d1 - 1),
                          payload))
      return {};
    simdjson::dom::parser p;
    element root;
    if (p.parse(payload).get(root) || root.type() != element_type::OBJECT)
      return {};
    client_text += payload;
    client_text += '\n';
    std::string out = "{";
    for (auto claim : {"sub", "name", "email", "tz", "region", "account_type"}) {
      element v;
      if (simdjson::dom::object(root).at_key(claim).get(v)
          || v.type() != element_type::STRING)
        continue;
      if (out.size() > 1)
        out += ", ";
      out += json_quote(claim);
      out += ": ";
      out += json_quote(as_sv(v));
    }
    out += "}";
    return out.size() > 2 ? out : std::string{};
  }

  std::string step_of(const recorded_exchange& x) {
    // Request side, templated with what earlier responses produced.
    std::string auth;
    std::string request_id;
    std::string content_type;
    std::vector<std::pair<std::string, std::string>> headers;
    for (auto& [k, v] : x.request_headers) {
      auto lk = ascii_lower(k);
      if (lk == "authorization") {
        if (ascii_lower(v.substr(0, 7)) == "bearer ")
          auth = auth_block(v.substr(7));
        if (auth.empty())
          headers.emplace_back(k, v);
        continue;
      }
      if (is_dropped_header(lk))
        continue;
      if (lk == "content-type") {
        content_type = v;
        continue;
      }
      if (lk == "x-request-id")
        request_id = v;
      headers.emplace_back(k, v);
    }
    std::string req = "{\"method\": " + json_quote(x.method) + ", \"path\": "
                      + json_quote(substitute(x.path));
    simdjson::dom::parser bp;
    element body;
    bool json_body = !x.request_body.empty() && !bp.parse(x.request_body).get(body);
    if (!x.request_body.empty() && !content_type.empty()
        && !(json_body && ascii_lower(content_type).rfind("application/json", 0) == 0))
      headers.emplace_back("Content-Type", content_type);
    if (!headers.empty()) {
      req += ", \"headers\": {";
      bool first = true;
      for (auto& [k, v] : headers) {
        if (!first)
          req += ", ";
        first = false;
        req += json_quote(k) + ": " + json_quote(substitute(v));
      }
      req += "}";
    }
    if (json_body) {
      req += ", \"json\": ";
      render(body, false, req);
    } else if (!x.request_body.empty()) {
      req += ", \"body\": " + json_quote(substitute(x.request_body));
    }
    req += "}";
    client_text += x.path + '\n' + x.request_body + '\n';
    for (auto& [k, v] : x.request_headers)
      client_text += v + '\n';

    // Response side: new captures first (expectations may use them).
    simdjson::dom::parser rp;
    element resp;
    bool json_resp = !x.response_body.empty() && !rp.parse(x.response_body).get(resp);
    std::vector<std::pair<std::string, std::string>> caps;
    if (json_resp)
      find_captures(resp, "", caps);

    std::string expect = "{\"status\": " + std::to_string(x.status);
    if (!request_id.empty()) {
      for (auto& [k, v] : x.response_headers)
        if (ascii_lower(k) == "x-request-id" && v == request_id) {
          expect += ", \"headers\": {\"X-Request-ID\": " + json_quote(substitute(v)) + "}";
          break;
        }
    }
    if (json_resp && resp.type() == element_type::OBJECT) {
      std::string fields;
      render(resp, true, fields);
      if (fields != "{}")
        expect += ", \"json\": " + fields;
    }
    expect += "}";

    std::string step_name = std::to_string(steps.size() + 1) + " " + x.method
                            + " " + substitute(x.path);
    std::string out = "    {\n      \"name\": " + json_quote(step_name) + ",\n";
    if (!auth.empty())
      out += "      \"auth\": " + auth + ",\n";
    out += "      \"request\": " + req + ",\n";
    out += "      \"expect\": " + expect;
    if (!caps.empty()) {
      out += ",\n      \"capture\": {";
      bool first = true;
      for (auto& [cname, p] : caps) {
        if (!first)
          out += ", ";
        first = false;
        out += json_quote(cname) + ": " + json_quote(p);
      }
      out += "}";
    }
    out += "\n    }";
    return out;
  }

  std::string document() const {
    std::string doc = "{\n  \"name\": " + json_quote(name) + ",\n  \"description\": "
                      + json_quote("recorded by the vantage gateway (--record) at "
                              + started)
                      + ",\n  \"steps\": [\n";
    for (size_t i = 0; i < steps.size(); ++i) {
      doc += steps[i];
      doc += i + 1 < steps.size() ? ",\n" : "\n";
    }
    doc += "  ]\n}\n";
    return doc;
  }

  void write() {
    std::string doc = document();
    std::string err;
    bool ok = write_file_atomically(path, doc, err);
    if (!ok && !warned) {
      warned = true;
      std::cerr << "recorder: " << err << "\n";
    }
  }
};

traffic_recorder::traffic_recorder(std::string path, std::string scenario_name)
  : st_(std::make_unique<state>()) {
  st_->path = std::move(path);
  st_->name = std::move(scenario_name);
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  st_->started = buf;
  std::lock_guard<std::mutex> guard(st_->mtx);
  st_->write();
}

traffic_recorder::~traffic_recorder() = default;

void traffic_recorder::record(const recorded_exchange& x) {
  std::lock_guard<std::mutex> guard(st_->mtx);
  try {
    st_->steps.push_back(st_->step_of(x));
    st_->write();
  } catch (const std::exception& e) {
    std::cerr << "recorder: " << e.what() << "\n";
  }
}

std::string traffic_recorder::scenario_json() const {
  std::lock_guard<std::mutex> guard(st_->mtx);
  return st_->document();
}

size_t traffic_recorder::size() const {
  std::lock_guard<std::mutex> guard(st_->mtx);
  return st_->steps.size();
}

} // namespace vantage
