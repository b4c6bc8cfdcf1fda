#define BOOST_TEST_MODULE outbox_purge_test
#include <boost/test/unit_test.hpp>

#include "actors/outbox_relay_actor.hpp"
#include "adapters/config.hpp"
#include "adapters/pg.hpp"
#include "messages/type_ids.hpp"
#include "test/support/eventually.hpp"
#include "test/support/node_fixture.hpp"

// The relay on its own, without a node: its purge of published events (no
// other relay in this module deletes this test's rows), the plan of its
// fetch of pending rows, and its cursor.

using namespace vantage;
using namespace vantage::test;
using namespace std::chrono_literals;

namespace {

struct relay_config : caf::actor_system_config {
  relay_config() {
    register_message_types(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

} // namespace

// With a 60 s retention a relay purges once every 15 s, each time at most
// ten statements' worth (here 10 rows each: 100 rows). Events published
// faster than that must not pile up: while a purge stops at its bound with
// due rows left, the relay purges again on its next tick.
BOOST_AUTO_TEST_CASE(a_purge_backlog_is_worked_off_tick_by_tick) {
  auto key = unique("wl_purge");
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 5000};
  c.exec("purge_seed",
         "INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
         " payload, created_at, sent_at)"
         " SELECT gen_random_uuid(), 'wishlist.events', $1, 'wishlist_event',"
         " '{}', now() - interval '2 minutes', now() - interval '90 seconds'"
         " FROM generate_series(1, 2000)",
         {key});
  relay_config cfg;
  caf::actor_system sys{cfg};
  relay_options opts;
  opts.database_url = env_or("VANTAGE_DATABASE_URL", "");
  opts.kafka_bootstrap = [] { return std::string{}; }; // purging only
  opts.poll_ms = 50;
  opts.retention_s = 60;
  opts.purge_batch = 10;
  auto status = std::make_shared<relay_status>();
  auto relay = spawn_outbox_relay(sys, opts, status);
  auto left = [&] {
    return c.exec("purge_left",
                  "SELECT count(*) FROM event_outbox WHERE event_key = $1",
                  {key})
      .i64(0, 0);
  };
  // Before the fix: 100 rows per 15 s, i.e. 5 minutes for these 2,000.
  BOOST_TEST(eventually([&] { return left() == 0; }, 10s));
  BOOST_TEST(status->purged >= 2000);
  caf::anon_send_exit(relay, caf::exit_reason::user_shutdown);
}

// The relay's fetch of pending rows must use the pending index whatever
// the outbox's statistics say. A queue table is often analyzed nearly empty
// and then fills with deleted rows before autovacuum comes: planned from
// such statistics, the fetch was a sequential scan and sort of every page,
// in every round. An empty, analyzed copy of the table (a temporary table
// of the same name is found first) gets that plan on a plain session; the
// relay's session must get an index scan, also once the prepared
// statement's generic plan is cached (after five executions).
BOOST_AUTO_TEST_CASE(the_relay_fetches_pending_rows_by_index_on_any_statistics) {
  auto plan_of_fetch = [](const std::string& settings) {
    pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 5000, settings};
    c.exec_simple("CREATE TEMP TABLE event_outbox"
                  " (LIKE public.event_outbox INCLUDING ALL)");
    c.exec_simple("ANALYZE event_outbox");
    for (int i = 0; i < 6; ++i)
      c.exec("relay_fetch", relay_fetch_sql, {"500", "0"});
    auto rows = c.exec_simple("EXPLAIN EXECUTE relay_fetch(500, 0)");
    std::string plan;
    for (int i = 0; i < rows.size(); ++i)
      plan += rows.str(i, 0) + "\n";
    return plan;
  };
  auto plain = plan_of_fetch("");
  BOOST_TEST_MESSAGE("plain session:\n" << plain);
  BOOST_REQUIRE_MESSAGE(plain.find("Seq Scan") != std::string::npos,
                        "the copy no longer provokes a sequential scan:\n"
                          << plain);
  auto relay = plan_of_fetch(relay_session_settings);
  BOOST_TEST_MESSAGE("relay session:\n" << relay);
  BOOST_TEST(relay.find("Seq Scan") == std::string::npos, relay);
  BOOST_TEST(relay.find("Index Scan") != std::string::npos, relay);
}

// Autovacuum must not truncate the outbox: a queue's tail pages empty out
// as the relay deletes what it published, and truncating them takes an
// ACCESS EXCLUSIVE lock that every outbox insert (every commit with an
// event) waits behind. A plain VACUUM honours the same table setting.
BOOST_AUTO_TEST_CASE(vacuum_keeps_the_outbox_pages_it_emptied) {
  auto key = unique("wl_truncate");
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 5000};
  auto pages = [&] {
    return c.exec_simple("SELECT pg_relation_size('event_outbox')"
                         " / current_setting('block_size')::bigint")
      .i64(0, 0);
  };
  c.exec("truncate_seed",
         "INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
         " payload, created_at, sent_at)"
         " SELECT gen_random_uuid(), 'wishlist.events', $1, 'wishlist_event',"
         " '{}', now(), now() FROM generate_series(1, 5000)",
         {key});
  auto filled = pages();
  c.exec("truncate_drop", "DELETE FROM event_outbox WHERE event_key = $1",
         {key});
  c.exec_simple("VACUUM event_outbox");
  BOOST_TEST(pages() >= filled);
}

// Ids are drawn at insert and commits land in any order (two writers, e.g.
// two nodes' committers): a row can commit below the id the relay has
// already published through. Rounds fetch above that cursor, so such a row
// is published by the next rescan from the outbox's start, within seconds;
// with the cursor alone it would wait for a restart.
BOOST_AUTO_TEST_CASE(a_row_committed_below_the_cursor_is_still_published) {
  auto bootstrap = node_options::from_env().resolve_kafka_bootstrap();
  BOOST_REQUIRE_MESSAGE(!bootstrap.empty(), "no Kafka bootstrap configured");
  auto url = env_or("VANTAGE_DATABASE_URL", "");
  auto key = unique("wl_cursor");
  auto insert = [&](pg_connection& c) {
    c.exec("cursor_event",
           "INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
           " payload, created_at)"
           " SELECT id, 'wishlist.events', $1, 'wishlist_event',"
           " json_build_object('event_id', id::text, 'event_type',"
           " 'wishlist_created', 'wishlist_id', $1::text, 'user_id',"
           " 'usr_cursor', 'item_count', 0, 'timestamp',"
           " '2026-12-04T00:00:00Z'), now()"
           " FROM (SELECT gen_random_uuid() AS id) AS e RETURNING id",
           {key});
  };
  pg_connection late{url, 5000};
  pg_connection early{url, 5000};
  pg_connection probe{url, 5000};
  auto pending = [&] {
    return probe.exec("cursor_pending",
                      "SELECT count(*) FROM event_outbox"
                      " WHERE event_key = $1 AND sent_at IS NULL",
                      {key})
      .i64(0, 0);
  };
  late.begin();
  insert(late); // draws the lower id, commits last
  insert(early);
  relay_config cfg;
  caf::actor_system sys{cfg};
  relay_options opts;
  opts.database_url = url;
  opts.kafka_bootstrap = [bootstrap] { return bootstrap; };
  opts.poll_ms = 50;
  auto status = std::make_shared<relay_status>();
  auto relay = spawn_outbox_relay(sys, opts, status);
  // Published (its row deleted): the cursor is past the uncommitted id.
  BOOST_REQUIRE(eventually([&] { return pending() == 0; }, 15s));
  late.commit();
  BOOST_REQUIRE_EQUAL(pending(), 1);
  BOOST_TEST(eventually([&] { return pending() == 0; }, 5s));
  // Published, not parked: both rows deleted, both delivered.
  BOOST_TEST(probe.exec("cursor_left",
                        "SELECT count(*) FROM event_outbox WHERE event_key = $1",
                        {key})
               .i64(0, 0)
             == 0);
  BOOST_TEST(status->published.load() >= 2);
  caf::anon_send_exit(relay, caf::exit_reason::user_shutdown);
}
