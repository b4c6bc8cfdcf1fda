#define BOOST_TEST_MODULE kafka_test
#include <boost/test/unit_test.hpp>

#include "adapters/config.hpp"
#include "adapters/kafka.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace vantage;

namespace {

// The cluster: KAFKA_BOOTSTRAP_SERVERS (make test's embedded mock cluster
// process) or, when unset, an in-process 3-broker librdkafka mock cluster.
struct cluster {
  rd_kafka_t* owner = nullptr;
  rd_kafka_mock_cluster_t* mock = nullptr;
  std::string bootstrap;
  std::string run_id;

  cluster() {
    run_id = std::to_string(::getpid()) + "-"
             + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    // The node's own rule (a restarted embedded cluster rewrites its file).
    bootstrap = vantage::node_options::from_env().resolve_kafka_bootstrap();
    if (!bootstrap.empty())
      return;
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!owner)
      throw std::runtime_error(std::string{"rd_kafka_new: "} + errstr);
    mock = rd_kafka_mock_cluster_new(owner, 3);
    if (!mock)
      throw std::runtime_error("rd_kafka_mock_cluster_new failed");
    bootstrap = rd_kafka_mock_cluster_bootstraps(mock);
  }

  ~cluster() {
    if (mock)
      rd_kafka_mock_cluster_destroy(mock);
    if (owner)
      rd_kafka_destroy(owner);
  }

  /// A topic name unique to this run; created explicitly on the in-process
  /// mock, auto-created by the first produce on an external one.
  std::string topic(const std::string& base, int partitions) {
    std::string name = "test." + base + "." + run_id;
    if (mock) {
      auto err = rd_kafka_mock_topic_create(mock, name.c_str(), partitions, 3);
      BOOST_REQUIRE_MESSAGE(!err, "mock topic " << name << ": " << rd_kafka_err2str(err));
    }
    return name;
  }

  std::string group(const std::string& base) {
    return "test." + base + "." + run_id;
  }
};

cluster* g_cluster = nullptr;

struct global_fixture {
  cluster c;
  global_fixture() {
    g_cluster = &c;
    BOOST_TEST_MESSAGE("kafka at " << c.bootstrap << (c.mock ? " (in-process mock)" : ""));
  }
  ~global_fixture() {
    g_cluster = nullptr;
  }
};

BOOST_TEST_GLOBAL_FIXTURE(global_fixture);

std::unique_ptr<kafka_producer> make_producer(const kafka_properties& extra = {}) {
  std::string err;
  auto p = kafka_producer::create(g_cluster->bootstrap, err, extra);
  BOOST_REQUIRE_MESSAGE(p, "producer: " << err);
  return p;
}

std::unique_ptr<kafka_consumer> make_consumer(const std::string& group,
                                              const std::string& topic) {
  std::string err;
  auto c = kafka_consumer::create(g_cluster->bootstrap, group, {topic}, true, err);
  BOOST_REQUIRE_MESSAGE(c, "consumer: " << err);
  return c;
}

/// Polls until `want` records arrived or `limit` passed.
std::vector<consumed_record> poll_until(kafka_consumer& c, size_t want,
                                        std::chrono::milliseconds limit) {
  std::vector<consumed_record> got;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto batch = c.poll(want - got.size(), 200ms);
    for (auto& r : batch)
      got.push_back(std::move(r));
  }
  return got;
}

void require_all_delivered(const std::vector<delivery_report>& reports, size_t n) {
  BOOST_REQUIRE_EQUAL(reports.size(), n);
  for (size_t i = 0; i < n; ++i)
    BOOST_REQUIRE_MESSAGE(reports[i].status == delivery_status::delivered,
                          "record " << i << ": " << reports[i].error);
}

} // namespace

BOOST_AUTO_TEST_CASE(round_trip_with_headers_and_keys) {
  auto topic = g_cluster->topic("roundtrip", 6);
  auto producer = make_producer();
  BOOST_TEST(producer->reachable(5s));

  std::vector<kafka_record> records;
  const char* keys[] = {"wl-A", "wl-B", "wl-A", "wl-C", "wl-A", "wl-B", "wl-C", "wl-A"};
  for (int i = 0; i < 8; ++i) {
    kafka_record r;
    r.topic = topic;
    r.key = keys[i];
    r.value = "value-" + std::to_string(i);
    r.headers = {{"event_type", "share_created"},
                 {"seq", std::to_string(i)},
                 {"binary", std::string("a\0b", 3)}};
    records.push_back(r);
  }
  auto reports = producer->produce_and_wait(records, 20s);
  require_all_delivered(reports, records.size());

  std::map<std::string, int32_t> partition_of_key;
  for (size_t i = 0; i < records.size(); ++i) {
    BOOST_TEST(reports[i].offset >= 0);
    auto [it, fresh] = partition_of_key.emplace(records[i].key, reports[i].partition);
    BOOST_TEST_CONTEXT("key " << records[i].key) {
      BOOST_TEST(it->second == reports[i].partition); // same key, same partition
    }
  }

  auto consumer = make_consumer(g_cluster->group("roundtrip"), topic);
  auto got = poll_until(*consumer, records.size(), 30s);
  BOOST_REQUIRE_EQUAL(got.size(), records.size());
  std::map<std::string, int> last_seq_of_key;
  std::set<std::string> values;
  for (auto& r : got) {
    BOOST_TEST(r.topic == topic);
    BOOST_TEST(r.partition == partition_of_key.at(r.key));
    BOOST_TEST(r.timestamp_ms > 0);
    BOOST_REQUIRE_EQUAL(r.headers.size(), 3u);
    BOOST_TEST(r.headers[0].name == "event_type");
    BOOST_TEST(r.header("event_type") == "share_created");
    BOOST_TEST(r.header("binary") == std::string("a\0b", 3));
    BOOST_TEST(r.header("missing").empty());
    int seq = std::stoi(r.header("seq"));
    BOOST_TEST(r.value == "value-" + std::to_string(seq));
    BOOST_TEST(r.key == keys[seq]);
    // Per key (= per partition) the order of production is kept.
    auto prev = last_seq_of_key.find(r.key);
    if (prev != last_seq_of_key.end())
      BOOST_TEST(seq > prev->second);
    last_seq_of_key[r.key] = seq;
    values.insert(r.value);
  }
  BOOST_TEST(values.size() == records.size());
  std::string err;
  BOOST_TEST(consumer->commit(err), err);
}

BOOST_AUTO_TEST_CASE(commit_after_processing) {
  auto topic = g_cluster->topic("commit", 4);
  auto group = g_cluster->group("commit");
  auto producer = make_producer();

  auto batch = [&](const std::string& tag) {
    std::vector<kafka_record> rs;
    for (int i = 0; i < 6; ++i) // same keys in both batches: same partitions
      rs.push_back({topic, "key-" + std::to_string(i), tag + "-" + std::to_string(i), {}});
    return rs;
  };
  auto first = batch("first");
  require_all_delivered(producer->produce_and_wait(first, 20s), first.size());

  std::string err;
  {
    auto a = make_consumer(group, topic);
    auto got = poll_until(*a, first.size(), 30s);
    BOOST_REQUIRE_EQUAL(got.size(), first.size());
    // ... processed; now commit, then leave the group.
    BOOST_REQUIRE_MESSAGE(a->commit(err), err);
  }

  auto second = batch("second");
  require_all_delivered(producer->produce_and_wait(second, 20s), second.size());

  auto only_second = [&](const std::vector<consumed_record>& got) {
    for (auto& r : got)
      BOOST_TEST_CONTEXT("value " << r.value) {
        BOOST_TEST(r.value.rfind("second-", 0) == 0); // committed ones never again
      }
  };
  {
    // Same group: resumes after the committed offsets. Every partition that
    // held a first-batch record also holds a second-batch one after it, so
    // seeing all of the second batch means nothing committed was replayed.
    auto b = make_consumer(group, topic);
    auto got = poll_until(*b, second.size(), 30s);
    BOOST_REQUIRE_EQUAL(got.size(), second.size());
    only_second(got);
    // No commit: b "crashes" before finishing.
  }
  {
    // Uncommitted records are delivered again to the next member.
    auto c = make_consumer(group, topic);
    auto got = poll_until(*c, second.size(), 30s);
    BOOST_REQUIRE_EQUAL(got.size(), second.size());
    only_second(got);
    BOOST_REQUIRE_MESSAGE(c->commit(err), err);
  }
  {
    // A different group still reads everything from the beginning.
    auto d = make_consumer(g_cluster->group("commit-other"), topic);
    auto got = poll_until(*d, first.size() + second.size(), 30s);
    BOOST_TEST(got.size() == first.size() + second.size());
  }
}

BOOST_AUTO_TEST_CASE(oversized_record_is_a_permanent_failure) {
  auto topic = g_cluster->topic("oversized", 2);
  auto producer = make_producer();
  // message.max.bytes defaults to 1,000,000.
  std::vector<kafka_record> records{
    {topic, "k", std::string(1'500'000, 'x'), {}},
    {topic, "k", "small", {}},
  };
  auto reports = producer->produce_and_wait(records, 20s);
  BOOST_REQUIRE_EQUAL(reports.size(), 2u);
  BOOST_TEST((reports[0].status == delivery_status::permanent_failure));
  BOOST_TEST(!reports[0].error.empty());
  BOOST_TEST_MESSAGE("oversized: " << reports[0].error);
  BOOST_TEST((reports[1].status == delivery_status::delivered), reports[1].error);
}

BOOST_AUTO_TEST_CASE(unreachable_cluster_is_retriable) {
  // A port nobody listens on.
  std::string err;
  auto producer = kafka_producer::create("127.0.0.1:1", err,
                                         {{"message.timeout.ms", "1000"}});
  BOOST_REQUIRE_MESSAGE(producer, err);
  BOOST_TEST(!producer->reachable(300ms));
  auto reports = producer->produce_and_wait({{"t", "k", "v", {}}}, 1500ms);
  BOOST_REQUIRE_EQUAL(reports.size(), 1u);
  BOOST_TEST((reports[0].status == delivery_status::retriable_failure));
  BOOST_TEST_MESSAGE("unreachable: " << reports[0].error);
}

BOOST_AUTO_TEST_CASE(brokers_down_then_up) {
  if (!g_cluster->mock) {
    BOOST_TEST_MESSAGE("skipped: needs the in-process mock cluster");
    return;
  }
  auto topic = g_cluster->topic("outage", 3);
  auto producer = make_producer();
  require_all_delivered(producer->produce_and_wait({{topic, "k", "before", {}}}, 20s), 1);

  for (int id = 1; id <= 3; ++id)
    rd_kafka_mock_broker_set_down(g_cluster->mock, id);
  auto reports = producer->produce_and_wait({{topic, "k", "during", {}}}, 1s);
  BOOST_TEST((reports.at(0).status == delivery_status::retriable_failure));
  for (int id = 1; id <= 3; ++id)
    rd_kafka_mock_broker_set_up(g_cluster->mock, id);

  // The same producer recovers once the brokers are back.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  delivery_status last = delivery_status::retriable_failure;
  while (last != delivery_status::delivered && std::chrono::steady_clock::now() < deadline)
    last = producer->produce_and_wait({{topic, "k", "after", {}}}, 5s).at(0).status;
  BOOST_TEST((last == delivery_status::delivered));
}

BOOST_AUTO_TEST_CASE(survives_fatal_idempotence_error) {
  if (!g_cluster->mock) {
    BOOST_TEST_MESSAGE("skipped: needs the in-process mock cluster");
    return;
  }
  auto topic = g_cluster->topic("fatal", 3);
  // InitProducerId failing with CLUSTER_AUTHORIZATION_FAILED is fatal for an
  // idempotent producer (rd_kafka_idemp_check_error).
  const int16_t init_producer_id = 22;
  rd_kafka_mock_push_request_errors(g_cluster->mock, init_producer_id, 1,
                                    RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
  auto producer = make_producer();
  auto reports = producer->produce_and_wait({{topic, "k", "doomed", {}}}, 10s);
  BOOST_TEST((reports.at(0).status == delivery_status::retriable_failure));
  BOOST_TEST_MESSAGE("fatal: " << reports.at(0).error);
  BOOST_TEST(reports.at(0).error.find("fatal") != std::string::npos);

  // The handle was recreated: the same object delivers again.
  auto again = producer->produce_and_wait({{topic, "k", "retried", {}}}, 20s);
  BOOST_TEST((again.at(0).status == delivery_status::delivered), again.at(0).error);
}
