#define BOOST_TEST_MODULE write_committer_test
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <chrono>
#include <future>
#include <thread>
#include <map>
#include <memory>
#include <set>

#include "actors/io_pool.hpp"
#include "adapters/config.hpp"
#include "adapters/ids.hpp"
#include "messages/type_ids.hpp"
#include "test/support/eventually.hpp"

// The group committer (actors/io_pool.hpp) against the real PostgreSQL:
// writes that queue behind a running transaction commit together, a write
// whose own statement fails is answered alone while the others commit,
// every write gets its own statements' results, and mergeable statements
// (counter increments, row inserts) run once per transaction.

using namespace vantage;
using namespace vantage::test;
using namespace std::chrono_literals;

namespace {

struct config : caf::actor_system_config {
  config() {
    register_message_types(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

std::string database_url() {
  return env_or("VANTAGE_DATABASE_URL", "");
}

/// A write's answer: the value `done` returned, or the error.
using answer = caf::expected<int64_t>;

struct fixture {
  /// The committer's timeout: how long a transaction may run, and a write
  /// wait its turn.
  static constexpr int timeout_ms = 1000;
  config cfg;
  caf::actor_system sys{cfg};
  caf::actor committer
    = spawn_write_committer(sys, write_committer_options{database_url(),
                                                         timeout_ms, 128, 4096});
  pg_connection db{database_url(), 5000};
  std::string table = "committer_test_" + new_id("").substr(0, 12);

  fixture() {
    db.exec_simple("CREATE TABLE " + table
                   + " (id TEXT PRIMARY KEY, v BIGINT NOT NULL)");
  }

  ~fixture() {
    db.exec_simple("DROP TABLE IF EXISTS " + table);
    caf::anon_send_exit(committer, caf::exit_reason::user_shutdown);
  }

  int64_t count() {
    return db.exec_simple("SELECT count(*) FROM " + table).i64(0, 0);
  }

  /// Rows whose id is LIKE `pattern`.
  int64_t count_like(const std::string& pattern) {
    return db.exec_simple("SELECT count(*) FROM " + table + " WHERE id LIKE '"
                          + pattern + "'")
      .i64(0, 0);
  }

  /// A write of one row that answers the id of its transaction.
  atomic_write insert(const std::string& id, int64_t v) {
    sql.push_back("INSERT INTO " + table
                  + " (id, v) VALUES ($1, $2::bigint) RETURNING txid_current()");
    return make_atomic_write<int64_t>(
      {{"committer_test_insert", sql.back().c_str(), {id, std::to_string(v)}}},
      [](std::vector<pg_rows>& rows) -> caf::expected<int64_t> {
        return rows.at(0).i64(0, 0);
      });
  }

  /// A write that holds the committer for `ms` and answers its transaction id.
  static atomic_write sleeper(int ms) {
    return make_atomic_write<int64_t>(
      {{"committer_test_sleep",
        "SELECT txid_current() FROM pg_sleep($1::int / 1000.0)",
        {std::to_string(ms)}}},
      [](std::vector<pg_rows>& rows) -> caf::expected<int64_t> {
        return rows.at(0).i64(0, 0);
      });
  }

  /// Sends every write at once (in this order) and waits for all answers.
  std::vector<answer> send_all(std::vector<atomic_write> writes) {
    return send_all_async(std::move(writes)).get();
  }

  /// send_all without waiting: the answers once all are in (or a failed
  /// check after 30 s).
  std::future<std::vector<answer>>
  send_all_async(std::vector<atomic_write> writes) {
    auto n = writes.size();
    auto out = std::make_shared<std::vector<answer>>(
      n, answer{caf::make_error(caf::sec::request_timeout)});
    auto left = std::make_shared<size_t>(n);
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    auto shared = std::make_shared<std::vector<atomic_write>>(std::move(writes));
    auto target = committer;
    sys.spawn([=](caf::event_based_actor* self) {
      for (size_t i = 0; i < n; ++i) {
        auto settle = [=](answer a) {
          (*out)[i] = std::move(a);
          if (--*left == 0)
            done->set_value();
        };
        self->request(target, caf::infinite, std::move((*shared)[i]))
          .then([=](int64_t v) { settle(v); },
                [=](caf::error& err) { settle(std::move(err)); });
      }
    });
    return std::async(std::launch::deferred,
                      [finished = std::move(finished), out]() mutable {
                        BOOST_REQUIRE_MESSAGE(
                          finished.wait_for(30s) == std::future_status::ready,
                          "the committer did not answer every write in 30 s");
                        return *out;
                      });
  }

  // Statement texts must outlive the writes that point at them.
  std::vector<std::string> sql;
};

} // namespace

BOOST_FIXTURE_TEST_CASE(writes_that_wait_share_one_transaction, fixture) {
  sql.reserve(64);
  std::vector<atomic_write> writes;
  writes.push_back(sleeper(300));
  for (int i = 0; i < 40; ++i)
    writes.push_back(insert("row" + std::to_string(i), i));
  auto answers = send_all(std::move(writes));
  BOOST_REQUIRE(answers[0]);
  std::set<int64_t> txids;
  for (size_t i = 1; i < answers.size(); ++i) {
    BOOST_REQUIRE_MESSAGE(answers[i], "write " << i << " failed");
    txids.insert(*answers[i]);
  }
  // All 40 arrived while the sleeper ran: one transaction, not the sleeper's.
  BOOST_TEST(txids.size() == 1u);
  BOOST_TEST(*txids.begin() != *answers[0]);
  BOOST_TEST(count() == 40);
}

BOOST_FIXTURE_TEST_CASE(a_failing_write_is_answered_alone_and_the_others_commit,
                        fixture) {
  sql.reserve(64);
  db.exec_simple("INSERT INTO " + table + " VALUES ('taken', 0)");
  std::vector<atomic_write> writes;
  writes.push_back(sleeper(300));
  for (int i = 0; i < 20; ++i)
    writes.push_back(insert("row" + std::to_string(i), i));
  // Two failing writes in the middle: one with the usual mapping (a unique
  // violation is a conflict), one that names its own refusal.
  writes[5] = insert("taken", 5);
  writes[12] = insert("taken", 12);
  writes[12].refused = [](const pg_error& e) -> caf::error {
    if (e.sqlstate == "23505")
      return make_error(errc::validation_failed, "row 12 refused");
    return caf::none;
  };
  auto answers = send_all(std::move(writes));
  BOOST_REQUIRE(!answers[5]);
  BOOST_TEST(is(answers[5].error(), errc::conflict));
  BOOST_REQUIRE(!answers[12]);
  BOOST_TEST(is(answers[12].error(), errc::validation_failed));
  std::set<int64_t> txids;
  for (size_t i = 1; i < answers.size(); ++i) {
    if (i == 5 || i == 12)
      continue;
    BOOST_REQUIRE_MESSAGE(answers[i], "write " << i << " failed");
    txids.insert(*answers[i]);
  }
  BOOST_TEST(txids.size() == 1u); // still committed together, without them
  BOOST_TEST(count() == 1 + 18);
  BOOST_TEST(db.exec_simple("SELECT v FROM " + table + " WHERE id = 'taken'")
               .i64(0, 0)
             == 0);
}

BOOST_FIXTURE_TEST_CASE(each_write_gets_its_own_results, fixture) {
  sql.reserve(8);
  sql.push_back("INSERT INTO " + table + " (id, v) VALUES ($1, $2::bigint)");
  sql.push_back("SELECT v * 10 FROM " + table + " WHERE id = $1");
  std::vector<atomic_write> writes;
  writes.push_back(sleeper(200));
  for (int i = 1; i <= 10; ++i) {
    auto id = "w" + std::to_string(i);
    // Two statements; the reply is the second one's: it sees the first.
    writes.push_back(make_atomic_write<int64_t>(
      {{"committer_test_put", sql[0].c_str(), {id, std::to_string(i)}},
       {"committer_test_get", sql[1].c_str(), {id}}},
      [](std::vector<pg_rows>& rows) -> caf::expected<int64_t> {
        if (rows.size() != 2) // no Boost checks off the test's thread
          return make_error(errc::internal, "wrong number of results");
        return rows.at(1).i64(0, 0);
      }));
  }
  auto answers = send_all(std::move(writes));
  for (int i = 1; i <= 10; ++i) {
    BOOST_REQUIRE(answers[static_cast<size_t>(i)]);
    BOOST_TEST(*answers[static_cast<size_t>(i)] == i * 10);
  }
  BOOST_TEST(count() == 10);
}

namespace {

/// A write of a row of its own plus `count` added to counter `counter`,
/// as a mergeable statement (pg_connection::statement::merge_key) whose
/// SQL may leave a row per run behind; answers the counter's value. Its
/// refusal maps the increment's guard (22P02: no such counter).
atomic_write row_and_increment(const std::string& row_sql,
                               const std::string& increment_sql,
                               const std::string& row,
                               const std::string& counter, int count) {
  auto w = make_atomic_write<int64_t>(
    {{"committer_test_insert_row", row_sql.c_str(), {row, "0"}},
     {"committer_test_increment", increment_sql.c_str(),
      {counter, std::to_string(count)}, counter, 1,
      pg_connection::merge_kind::sum}},
    [](std::vector<pg_rows>& rows) -> caf::expected<int64_t> {
      if (rows.size() != 2)
        return make_error(errc::internal, "wrong number of results");
      return rows.at(1).i64(0, 0);
    });
  w.refused = [](const pg_error& e) -> caf::error {
    if (e.sqlstate == "22P02")
      return make_error(errc::not_found, "no such counter");
    return caf::none;
  };
  return w;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(increments_of_one_counter_in_one_transaction_run_once,
                        fixture) {
  sql.reserve(8);
  sql.push_back("INSERT INTO " + table + " (id, v) VALUES ($1, $2::bigint)");
  sql.push_back("WITH bumped AS (UPDATE " + table
                + " SET v = v + $2::bigint WHERE id = $1 RETURNING v),"
                  " logged AS (INSERT INTO " + table
                + " (id, v) VALUES ('run-' || gen_random_uuid(), 0))"
                  " SELECT coalesce(max(v)::text, 'no counter ' || $1)::bigint"
                  " FROM bumped");
  db.exec_simple("INSERT INTO " + table + " VALUES ('a', 100), ('b', 1000)");
  std::vector<atomic_write> writes;
  writes.push_back(sleeper(300));
  std::map<std::string, int64_t> expected{{"a", 100}, {"b", 1000}};
  std::vector<int64_t> seen_alone; // what each would see run one by one
  for (int i = 0; i < 20; ++i) {
    auto counter = i % 2 == 0 ? "a" : "b";
    auto n = i % 3 + 1;
    writes.push_back(row_and_increment(
      sql[0], sql[1], "row" + std::to_string(i), counter, n));
    seen_alone.push_back(expected[counter] += n);
  }
  auto answers = send_all(std::move(writes));
  for (size_t i = 0; i < seen_alone.size(); ++i) {
    BOOST_REQUIRE_MESSAGE(answers[i + 1], "write " << i << " failed");
    BOOST_TEST(*answers[i + 1] == seen_alone[i], "write " << i);
  }
  auto value = [&](const std::string& id) {
    return db.exec_simple("SELECT v FROM " + table + " WHERE id = '" + id + "'")
      .i64(0, 0);
  };
  BOOST_TEST(value("a") == expected["a"]);
  BOOST_TEST(value("b") == expected["b"]);
  // One run per counter, not one per write.
  BOOST_TEST(count_like("run-%") == 2);
  BOOST_TEST(count_like("row%") == 20);
}

BOOST_FIXTURE_TEST_CASE(a_refused_increment_refuses_every_write_merged_into_it,
                        fixture) {
  sql.reserve(8);
  sql.push_back("INSERT INTO " + table + " (id, v) VALUES ($1, $2::bigint)");
  sql.push_back("WITH bumped AS (UPDATE " + table
                + " SET v = v + $2::bigint WHERE id = $1 RETURNING v)"
                  " SELECT coalesce(max(v)::text, 'no counter ' || $1)::bigint"
                  " FROM bumped");
  // Every attempt of the transaction takes a number (sequences ignore
  // rollbacks), so the sequence counts the attempts.
  auto attempts = table + "_attempts";
  sql.push_back("SELECT nextval('" + attempts + "')");
  db.exec_simple("CREATE SEQUENCE " + attempts);
  db.exec_simple("INSERT INTO " + table + " VALUES ('live', 0)");
  std::vector<atomic_write> writes;
  writes.push_back(sleeper(300));
  writes.push_back(make_atomic_write<int64_t>(
    {{"committer_test_attempt", sql[2].c_str(), {}}},
    [](std::vector<pg_rows>& rows) -> caf::expected<int64_t> {
      return rows.at(0).i64(0, 0);
    }));
  int64_t live = 0;
  for (int i = 0; i < 10; ++i) {
    bool gone = i % 2 == 0;
    writes.push_back(row_and_increment(
      sql[0], sql[1], "row" + std::to_string(i), gone ? "gone" : "live", 1));
  }
  auto answers = send_all(std::move(writes));
  db.exec_simple("DROP SEQUENCE " + attempts);
  for (int i = 0; i < 10; ++i) {
    auto& a = answers[static_cast<size_t>(i) + 2];
    if (i % 2 == 0) {
      BOOST_REQUIRE_MESSAGE(!a, "write " << i << " committed");
      BOOST_TEST(is(a.error(), errc::not_found));
    } else {
      BOOST_REQUIRE_MESSAGE(a, "write " << i << " failed");
      BOOST_TEST(*a == ++live);
    }
  }
  // The first attempt failed on the merged increment of "gone"; its five
  // writes were refused at once and the second attempt committed.
  BOOST_REQUIRE(answers[1]);
  BOOST_TEST(*answers[1] == 2);
  BOOST_TEST(count_like("row%") == 5);
  BOOST_TEST(db.exec_simple("SELECT v FROM " + table + " WHERE id = 'live'")
               .i64(0, 0)
             == 5);
}

BOOST_FIXTURE_TEST_CASE(row_inserts_of_one_transaction_run_once_in_order,
                        fixture) {
  sql.reserve(8);
  auto order = table + "_order";
  db.exec_simple("CREATE SEQUENCE " + order);
  sql.push_back("INSERT INTO " + table + " (id, v) VALUES ($1, 0)");
  // Rows as a JSON array; each run also leaves a "run-" row behind.
  sql.push_back("WITH logged AS (INSERT INTO " + table
                + " (id, v) VALUES ('run-' || gen_random_uuid(), 0))"
                  " INSERT INTO " + table + " (id, v) SELECT r->>0, nextval('"
                + order + "') FROM json_array_elements($1::json)"
                  " WITH ORDINALITY AS t(r, n) ORDER BY n");
  std::vector<atomic_write> writes;
  writes.push_back(sleeper(300));
  std::vector<std::string> expected_order;
  for (int i = 0; i < 12; ++i) {
    // Writes of 0, 1 or 2 rows; the array's spacing varies.
    std::string rows = i % 3 == 0 ? "[ ]" : "[";
    for (int m = 0; m < i % 3; ++m) {
      auto id = "w" + std::to_string(i) + "-" + std::to_string(m);
      expected_order.push_back(id);
      rows += (m > 0 ? ", [\"" : "[\"") + id + "\"]";
    }
    if (i % 3 != 0)
      rows += "]";
    writes.push_back(make_atomic_write<int64_t>(
      {{"committer_test_own_row", sql[0].c_str(), {"own" + std::to_string(i)}},
       {"committer_test_rows", sql[1].c_str(), {rows}, "rows", 0,
        pg_connection::merge_kind::json_array}},
      [](std::vector<pg_rows>& rows) -> caf::expected<int64_t> {
        if (rows.size() != 2)
          return make_error(errc::internal, "wrong number of results");
        return rows.at(1).size();
      }));
  }
  auto answers = send_all(std::move(writes));
  for (size_t i = 1; i < answers.size(); ++i) {
    BOOST_REQUIRE_MESSAGE(answers[i], "write " << i << " failed");
    BOOST_TEST(*answers[i] == 0);
  }
  auto stored = db.exec_simple("SELECT id FROM " + table
                               + " WHERE id LIKE 'w%' ORDER BY v");
  std::vector<std::string> stored_order;
  for (int r = 0; r < stored.size(); ++r)
    stored_order.push_back(stored.str(r, 0));
  db.exec_simple("DROP SEQUENCE " + order);
  BOOST_TEST(stored_order == expected_order, boost::test_tools::per_element());
  BOOST_TEST(count_like("run-%") == 1);
  BOOST_TEST(count_like("own%") == 12);
}

namespace {

/// Stops a PostgreSQL backend (SIGSTOP) and lets it go on (SIGCONT) when
/// the scope ends, also when a check fails: a stopped backend answers
/// nothing, and no statement timeout fires in it.
struct frozen_backend {
  int pid;
  explicit frozen_backend(int p) : pid(p) {
    BOOST_REQUIRE_EQUAL(::kill(pid, SIGSTOP), 0);
  }
  ~frozen_backend() {
    ::kill(pid, SIGCONT);
  }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(a_hung_database_fails_writes_at_the_deadline, fixture) {
  sql.reserve(8);
  // The committer's backend runs this sleeper; it is frozen mid-statement.
  auto held = send_all_async({sleeper(500)});
  int pid = 0;
  BOOST_REQUIRE(eventually(
    [&] {
      auto rows = db.exec_simple(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active'"
        " AND query LIKE 'SELECT txid_current() FROM pg_sleep%'");
      if (rows.empty())
        return false;
      pid = static_cast<int>(rows.i64(0, 0));
      return true;
    },
    5s));
  auto t0 = std::chrono::steady_clock::now();
  std::vector<answer> first;
  std::vector<answer> behind;
  {
    frozen_backend freeze{pid};
    std::vector<atomic_write> more;
    for (int i = 0; i < 5; ++i)
      more.push_back(insert("late" + std::to_string(i), i));
    auto queued = send_all_async(std::move(more));
    first = held.get();
    behind = queued.get();
  }
  auto took = std::chrono::steady_clock::now() - t0;
  // Answered, not left waiting: the frozen transaction at its deadline, the
  // writes behind it once they had waited as long.
  BOOST_REQUIRE(!first[0]);
  BOOST_TEST(is(first[0].error(), errc::unavailable));
  for (auto& a : behind) {
    BOOST_REQUIRE(!a);
    BOOST_TEST(is(a.error(), errc::unavailable));
  }
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
             < 4 * timeout_ms);
  // Thawed, the committer takes writes again.
  BOOST_TEST(eventually(
    [&] {
      auto again = send_all({insert("after", 1)});
      return static_cast<bool>(again[0]);
    },
    10s));
  BOOST_TEST(count() == 1);
}
