#define BOOST_TEST_MODULE outbox_retention_test
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "adapters/config.hpp"
#include "adapters/pg.hpp"
#include "test/support/eventually.hpp"
#include "test/support/node_fixture.hpp"
#include "test/support/topic_reader.hpp"

// What becomes of a published event's outbox row: by default it is deleted
// in the round that published it; with VANTAGE_OUTBOX_RETENTION_S it stays
// that long for inspection, then the relay deletes it. Each case starts its
// own node, after setting the environment it reads.

using namespace vantage;
using namespace vantage::test;
using namespace std::chrono_literals;

namespace {

/// Outbox rows of `key`: all of them, and the published ones.
std::pair<int64_t, int64_t> outbox_rows(const std::string& key) {
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 2000};
  auto rows = c.exec("retention_rows",
                     "SELECT count(*), count(sent_at) FROM event_outbox"
                     " WHERE event_key = $1",
                     {key});
  return {rows.i64(0, 0), rows.i64(0, 1)};
}

/// A new wishlist with one item (two events, keyed by its id); its id.
std::string wishlist_with_an_item(node_fixture& n) {
  auto token = token_for(unique("usr_retention"), "Rhea");
  auto wl = n.call("POST", "/api/v2/wishlists", R"({"title":"Kept a while"})",
                   token);
  BOOST_REQUIRE_EQUAL(wl.status, 201);
  auto wl_id = wl.str("wishlist_id");
  BOOST_REQUIRE_EQUAL(n.call("POST", "/api/v2/wishlists/" + wl_id + "/items",
                             R"({"product_id":"prd_002"})", token)
                        .status,
                      201);
  return wl_id;
}

/// Records of wishlist.events keyed `key` from `from` on (all partitions,
/// read for 3 s so that a duplicate would be counted).
size_t published_with_key(const std::string& key,
                          std::map<int32_t, int64_t> from) {
  topic_query q;
  q.keep = [&](const decoded_record& d) {
    return d.record.key == key && !d.record.header("event_id").empty();
  };
  q.from = std::move(from);
  return read_topic(current_bootstrap(), "wishlist.events", "wishlist_event", q).size();
}

} // namespace

BOOST_AUTO_TEST_CASE(published_events_leave_the_outbox_in_their_round) {
  ::unsetenv("VANTAGE_OUTBOX_RETENTION_S");
  node_fixture n;
  auto from = topic_end(current_bootstrap(), "wishlist.events");
  auto wl_id = wishlist_with_an_item(n);
  // The rows existed (the writes answered 201 after committing them), and
  // are gone once published, without waiting for a purge.
  BOOST_TEST(eventually([&] { return outbox_rows(wl_id).first == 0; }, 10s));
  BOOST_TEST(published_with_key(wl_id, from) == 2u);
  BOOST_TEST(n.metric("vantage_outbox_published_total") >= 2);
  BOOST_TEST(n.metric("vantage_outbox_purged_total") == 0);
}

BOOST_AUTO_TEST_CASE(published_events_are_deleted_after_the_retention_time) {
  ::setenv("VANTAGE_OUTBOX_RETENTION_S", "2", 1);
  node_fixture n;
  auto from = topic_end(current_bootstrap(), "wishlist.events");
  auto wl_id = wishlist_with_an_item(n);
  // Published, and still there to be inspected.
  BOOST_TEST(eventually(
    [&] {
      auto [all, published] = outbox_rows(wl_id);
      return all == 2 && published == 2;
    },
    10s));
  // Then gone, counted by the metric.
  BOOST_TEST(eventually([&] { return outbox_rows(wl_id).first == 0; }, 15s));
  BOOST_TEST(n.metric("vantage_outbox_purged_total") > 0);
  BOOST_TEST(published_with_key(wl_id, from) == 2u);
  ::unsetenv("VANTAGE_OUTBOX_RETENTION_S");
}
