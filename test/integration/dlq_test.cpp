#define BOOST_TEST_MODULE dlq_test
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "adapters/pg.hpp"
#include "test/support/node_fixture.hpp"
#include "test/support/topic_reader.hpp"

// An event the broker rejects for good (here: larger than the producer's
// message.max.bytes) goes to wishlist.social.events.dlq with the reason in a
// header, and does not hold up the events after it.

using namespace vantage;
using namespace vantage::test;
using namespace std::chrono_literals;

namespace {

/// The node of this module publishes with a small message limit; set before
/// the node reads its environment.
struct small_messages {
  small_messages() {
    ::setenv("VANTAGE_KAFKA_MESSAGE_MAX_BYTES", "1500", 1);
  }
};

struct module_fixture : small_messages, global_node {};

std::string outbox_error(const std::string& token, const std::string& type) {
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 2000};
  auto rows = c.exec("outbox_error",
                     "SELECT coalesce(last_error, ''), sent_at IS NOT NULL"
                     " FROM event_outbox WHERE payload->>'share_token' = $1"
                     " AND payload->>'event_type' = $2",
                     {token, type});
  if (rows.empty() || !rows.boolean(0, 1))
    return {};
  return rows.str(0, 0).empty() ? "sent" : rows.str(0, 0);
}

/// Outbox rows of the share's events of `type`, in any state.
int64_t outbox_rows(const std::string& token, const std::string& type) {
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 2000};
  return c
    .exec("outbox_rows",
          "SELECT count(*) FROM event_outbox WHERE payload->>'share_token' = $1"
          " AND payload->>'event_type' = $2",
          {token, type})
    .i64(0, 0);
}

/// Every record of `topic` from `from` on (all partitions, read for 3 s so
/// that none is missed or counted twice) whose decoded value mentions
/// `needle`.
std::vector<decoded_record> read_matching(const std::string& topic,
                                          const std::string& needle,
                                          std::map<int32_t, int64_t> from) {
  topic_query q;
  q.keep = [&](const decoded_record& d) {
    return d.json.find(needle) != std::string::npos;
  };
  q.from = std::move(from);
  return read_topic(current_bootstrap(), topic, "wishlist_social_event", q);
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(module_fixture);

BOOST_AUTO_TEST_CASE(an_event_too_large_for_kafka_goes_to_the_dlq) {
  auto dlq_from = topic_end(current_bootstrap(), "wishlist.social.events.dlq");
  auto main_from = topic_end(current_bootstrap(), "wishlist.social.events");
  auto user = unique("usr_dlq");
  auto token = token_for(user, "Dee");
  auto wl = N().call("POST", "/api/v2/wishlists", R"({"title":"Big"})", token);
  BOOST_REQUIRE_EQUAL(wl.status, 201);
  auto wl_id = wl.str("wishlist_id");
  auto share = N().call("POST", "/api/v2/wishlists/" + wl_id + "/share",
                        R"({"channel":"link"})", token);
  BOOST_REQUIRE_EQUAL(share.status, 201);
  auto share_token = share.str("share_token");
  // A 2000-character referrer makes the share_viewed event ~2.5 KB.
  auto view = N().call("GET", "/api/v2/wishlists/shared/" + share_token, "", "",
                       "application/json",
                       {{"Referer", "https://example.com/" + std::string(2000, 'r')}});
  BOOST_REQUIRE_EQUAL(view.status, 200);
  BOOST_REQUIRE_EQUAL(N().call("DELETE", "/api/v2/wishlists/" + wl_id + "/shares/"
                                           + share_token, "", token)
                        .status,
                      204);
  // The outbox row is settled with the reason, and later events still flow.
  BOOST_TEST(eventually(
    [&] { return outbox_error(share_token, "share_viewed").find(".dlq") != std::string::npos; },
    10s));
  BOOST_TEST(outbox_error(share_token, "share_viewed").find("MSG_SIZE_TOO_LARGE")
             != std::string::npos);
  // A published event's row is deleted (this node keeps no retention); the
  // dead-lettered one above stays with its reason for an operator.
  BOOST_TEST(eventually([&] { return outbox_rows(share_token, "share_revoked") == 0; },
                        10s));
  BOOST_TEST(outbox_rows(share_token, "share_viewed") == 1);

  auto letters = read_matching("wishlist.social.events.dlq", share_token, dlq_from);
  BOOST_REQUIRE_EQUAL(letters.size(), 1u);
  auto& [rec, json] = letters.front();
  BOOST_TEST(rec.key == wl_id);
  BOOST_TEST(rec.header("dlq_reason").find("MSG_SIZE_TOO_LARGE") != std::string::npos);
  BOOST_TEST(rec.header("dlq_original_topic") == "wishlist.social.events");
  BOOST_TEST(rec.header("dlq_value_truncated") == "true");
  BOOST_TEST(!rec.header("event_id").empty());
  BOOST_TEST(json.find("\"event_type\":\"share_viewed\"") != std::string::npos);
  BOOST_TEST(json.find(rec.header("event_id")) != std::string::npos);

  auto main_topic = read_matching("wishlist.social.events", share_token, main_from);
  int created = 0, viewed = 0, revoked = 0;
  for (auto& [r, j] : main_topic) {
    created += j.find("share_created") != std::string::npos;
    viewed += j.find("share_viewed") != std::string::npos;
    revoked += j.find("share_revoked") != std::string::npos;
  }
  BOOST_TEST(created == 1);
  BOOST_TEST(viewed == 0);
  BOOST_TEST(revoked == 1);
}
