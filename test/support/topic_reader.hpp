#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "adapters/avro.hpp"
#include "adapters/config.hpp"
#include "adapters/kafka.hpp"
#include "test/support/eventually.hpp"

namespace vantage::test {

/// A record as an outside consumer sees it, with its Avro value as JSON.
struct decoded_record {
  consumed_record record;
  std::string json;
};

/// What `read_topic` keeps and when it may stop.
struct topic_query {
  /// Which decoded records to keep.
  std::function<bool(const decoded_record&)> keep;
  /// Stops reading once the kept records satisfy it. Without it the reader
  /// reads until the deadline, as a test must that checks nothing arrives
  /// twice or more than it should.
  std::function<bool(const std::vector<decoded_record>&)> enough;
  std::chrono::milliseconds deadline{3000};
  /// Where to start, per partition (`topic_end` before the test acted);
  /// partitions not in it are read from the beginning.
  std::map<int32_t, int64_t> from;
};

/// The embedded cluster's bootstrap as the test services publish it now
/// (it changes when the cluster restarts).
inline std::string current_bootstrap() {
  return node_options::from_env().resolve_kafka_bootstrap();
}

/// The current end (high watermark) of each partition of `topic`, empty
/// while it does not exist. A test that takes it before it acts reads only
/// what came after, however much earlier runs (a benchmark: millions of
/// records) left in the cluster.
inline std::map<int32_t, int64_t> topic_end(const std::string& bootstrap,
                                            const std::string& topic) {
  auto ends = query_topic_ends(bootstrap, {topic}, std::chrono::seconds(0));
  BOOST_REQUIRE_MESSAGE(ends[topic].error.empty(),
                        topic << ": " << ends[topic].error);
  return ends[topic].partitions;
}

/// Reads `topic` from `q.from` (else the beginning of every partition), as
/// an outside consumer does, decoding every value with the built-in Avro schema
/// `schema` (a value that does not decode fails the test), and returns the
/// records `q.keep` accepts, in arrival order.
inline std::vector<decoded_record> read_topic(const std::string& bootstrap,
                                              const std::string& topic,
                                              const std::string& schema,
                                              const topic_query& q) {
  std::string err;
  auto codec = avro_codec::builtin(schema, err);
  BOOST_REQUIRE_MESSAGE(codec, err);
  auto consumer = kafka_consumer::create_at_offsets(bootstrap, topic, q.from, err);
  BOOST_REQUIRE_MESSAGE(consumer, err);
  std::vector<decoded_record> kept;
  eventually(
    [&] {
      for (auto& r : consumer->poll(500, std::chrono::milliseconds{100})) {
        decoded_record d{std::move(r), {}};
        BOOST_REQUIRE_MESSAGE(codec->decode(d.record.value, d.json, err),
                              topic << " offset " << d.record.offset << ": "
                                    << err);
        if (q.keep(d))
          kept.push_back(std::move(d));
      }
      return q.enough && q.enough(kept);
    },
    q.deadline);
  return kept;
}

} // namespace vantage::test
