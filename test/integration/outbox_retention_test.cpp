#define BOOST_TEST_MODULE outbox_retention_test
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "adapters/pg.hpp"
#include "test/support/eventually.hpp"
#include "test/support/node_fixture.hpp"

// Published events leave the outbox after VANTAGE_OUTBOX_RETENTION_S; until
// then they stay for inspection.

using namespace vantage;
using namespace vantage::test;
using namespace std::chrono_literals;

namespace {

/// This module's node keeps published events for 2 s; set before the node
/// reads its environment.
struct short_retention {
  short_retention() {
    ::setenv("VANTAGE_OUTBOX_RETENTION_S", "2", 1);
  }
};

struct module_fixture : short_retention, global_node {};

/// Outbox rows of `key`: all of them, and the published ones.
std::pair<int64_t, int64_t> outbox_rows(const std::string& key) {
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 2000};
  auto rows = c.exec("retention_rows",
                     "SELECT count(*), count(sent_at) FROM event_outbox"
                     " WHERE event_key = $1",
                     {key});
  return {rows.i64(0, 0), rows.i64(0, 1)};
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(module_fixture);

BOOST_AUTO_TEST_CASE(published_events_are_deleted_after_the_retention_time) {
  auto token = token_for(unique("usr_retention"), "Rhea");
  auto wl = N().call("POST", "/api/v2/wishlists", R"({"title":"Kept a while"})",
                     token);
  BOOST_REQUIRE_EQUAL(wl.status, 201);
  auto wl_id = wl.str("wishlist_id");
  BOOST_REQUIRE_EQUAL(N().call("POST", "/api/v2/wishlists/" + wl_id + "/items",
                               R"({"product_id":"prd_002"})", token)
                        .status,
                      201);
  // Published, and still there to be inspected.
  // (Its creation and the item added: two events.)
  BOOST_TEST(eventually(
    [&] {
      auto [all, published] = outbox_rows(wl_id);
      return all == 2 && published == 2;
    },
    10s));
  // Then gone, counted by the metric.
  BOOST_TEST(eventually([&] { return outbox_rows(wl_id).first == 0; }, 15s));
  auto metrics = N().call("GET", "/metrics", "", "");
  BOOST_TEST(metrics.body.find("vantage_outbox_purged_total 0\n")
             == std::string::npos);
  BOOST_TEST(metrics.body.find("vantage_outbox_purged_total")
             != std::string::npos);
}
