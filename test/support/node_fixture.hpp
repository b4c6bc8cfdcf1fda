#pragma once

// A whole node in the test process (real PostgreSQL, Redis and Kafka from
// the VANTAGE_* environment that `make test` sets) and a small HTTP client.

#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <simdjson.h>

#include "adapters/clock.hpp"
#include "adapters/config.hpp"
#include "app/node.hpp"
#include "gateway/jwt.hpp"
#include "test/support/eventually.hpp"

namespace vantage::test {

struct http_result {
  int status = 0;
  std::string body;
  httplib::Headers headers;

  std::string header(const std::string& name) const {
    auto i = headers.find(name);
    return i != headers.end() ? i->second : std::string{};
  }

  /// A top-level string field of the JSON body ("" if absent).
  std::string str(const char* field) const {
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    if (p.parse(body).get(doc) != simdjson::SUCCESS)
      return {};
    std::string_view sv;
    if (doc[field].get(sv) != simdjson::SUCCESS)
      return {};
    return std::string{sv};
  }
};

inline std::string token_for(const std::string& sub, const std::string& name,
                             const std::string& account_type = "customer",
                             int64_t ttl_s = 3600) {
  user_claims c;
  c.user_id = sub;
  c.display_name = name;
  c.account_type = account_type;
  auto secret = env_or("VANTAGE_JWT_SECRET", default_dev_jwt_secret);
  return mint_hs256(c, secret, system_clock_source{}.now_s() + ttl_s);
}

/// Unique per test run, so reruns against the same database never collide.
inline std::string unique(const std::string& prefix) {
  static int counter = 0;
  return prefix + std::to_string(system_clock_source{}.now_ms()) + "_"
         + std::to_string(++counter);
}

struct node_fixture {
  node_fixture() {
    std::string err;
    node = embedded_node::start(err);
    if (!node)
      throw std::runtime_error("cannot start node: " + err);
    auto url = node->base_url();
    client = std::make_unique<httplib::Client>(url);
    client->set_read_timeout(10, 0);
  }

  ~node_fixture() {
    if (node)
      node->stop();
  }

  http_result call(const std::string& method, const std::string& path,
                   const std::string& body = {},
                   const std::string& token = {},
                   const std::string& content_type = "application/json",
                   httplib::Headers extra = {}) {
    httplib::Headers h = std::move(extra);
    if (!token.empty())
      h.emplace("Authorization", "Bearer " + token);
    httplib::Result r{nullptr, httplib::Error::Unknown};
    if (method == "GET")
      r = client->Get(path.c_str(), h);
    else if (method == "POST")
      r = client->Post(path.c_str(), h, body, content_type.c_str());
    else if (method == "PUT")
      r = client->Put(path.c_str(), h, body, content_type.c_str());
    else if (method == "PATCH")
      r = client->Patch(path.c_str(), h, body, content_type.c_str());
    else if (method == "DELETE")
      r = client->Delete(path.c_str(), h);
    http_result out;
    if (!r)
      return out;
    out.status = r->status;
    out.body = r->body;
    out.headers = r->headers;
    return out;
  }

  /// The samples of `name` in /metrics, one per series whose line starts
  /// with it (so `name` may include a label set).
  std::vector<double> metric_samples(const std::string& name) {
    std::istringstream in{call("GET", "/metrics").body};
    std::string line;
    std::vector<double> out;
    while (std::getline(in, line))
      if (line.compare(0, name.size(), name) == 0 && line.size() > name.size()
          && (line[name.size()] == ' ' || line[name.size()] == '{'))
        out.push_back(std::stod(line.substr(line.rfind(' ') + 1)));
    return out;
  }

  /// The first series of `name`; -1 when absent.
  double metric(const std::string& name) {
    auto xs = metric_samples(name);
    return xs.empty() ? -1 : xs.front();
  }

  /// The sum over every series of `name` (0 when absent).
  double metric_sum(const std::string& name) {
    double sum = 0;
    for (auto x : metric_samples(name))
      sum += x;
    return sum;
  }

  std::unique_ptr<embedded_node> node;
  std::unique_ptr<httplib::Client> client;
};

/// The suite's node while the global fixture `global_node` lives.
inline node_fixture*& suite_node() {
  static node_fixture* node = nullptr;
  return node;
}

/// One node for a whole test module (BOOST_TEST_GLOBAL_FIXTURE), torn down
/// inside main, not by a static destructor that would run after CAF's own
/// statics are gone.
struct global_node {
  global_node() : fixture(std::make_unique<node_fixture>()) {
    suite_node() = fixture.get();
  }
  ~global_node() {
    suite_node() = nullptr;
  }
  std::unique_ptr<node_fixture> fixture;
};

/// The module's node (see global_node).
inline node_fixture& N() {
  return *suite_node();
}

} // namespace vantage::test
