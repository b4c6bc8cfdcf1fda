#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "adapters/avro.hpp"
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
};

/// Reads `topic` from the beginning of every partition, as an outside
/// consumer does, decoding every value with the built-in Avro schema
/// `schema` (a value that does not decode fails the test), and returns the
/// records `q.keep` accepts, in arrival order.
inline std::vector<decoded_record> read_topic(const std::string& bootstrap,
                                              const std::string& topic,
                                              const std::string& schema,
                                              const topic_query& q) {
  std::string err;
  auto codec = avro_codec::builtin(schema, err);
  BOOST_REQUIRE_MESSAGE(codec, err);
  auto consumer = kafka_consumer::create_at_offsets(bootstrap, topic, {}, err);
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
