#pragma once

// Kafka through librdkafka. Both classes are blocking: use them only from
// detached actors or plain threads, never from the cooperative scheduler.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vantage {

struct kafka_header {
  std::string name;
  std::string value;
};

/// A record to produce.
struct kafka_record {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<kafka_header> headers;
};

/// A record read by a consumer.
struct consumed_record {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  std::string value;
  std::vector<kafka_header> headers;
  int64_t timestamp_ms = 0;

  /// Value of the first header called `name`, or empty.
  std::string header(const std::string& name) const;
};

enum class delivery_status {
  /// Acknowledged by all in-sync replicas.
  delivered,
  /// Not delivered now (timeout, broker down): try again later.
  retriable_failure,
  /// Will never be accepted as is (too large, unknown topic, ...).
  permanent_failure,
};

struct delivery_report {
  delivery_status status = delivery_status::retriable_failure;
  std::string error;
  int32_t partition = -1;
  int64_t offset = -1;
};

/// Extra librdkafka properties by name; they override the defaults.
using kafka_properties = std::map<std::string, std::string>;

/// Idempotent producer: enable.idempotence=true, acks=all, lz4,
/// partitioner=murmur2_random (same partitions as Java clients).
class kafka_producer {
public:
  virtual ~kafka_producer() = default;

  /// Creates a producer for `bootstrap` (comma-separated host:port list).
  /// Returns nullptr and sets `err` on failure.
  static std::unique_ptr<kafka_producer>
  create(const std::string& bootstrap, std::string& err,
         const kafka_properties& extra = {});

  /// Produces `records` in order and waits at most `timeout` for every
  /// delivery report. The result has one report per record, same order.
  /// Records whose report did not arrive in time are retriable failures.
  virtual std::vector<delivery_report>
  produce_and_wait(const std::vector<kafka_record>& records,
                   std::chrono::milliseconds timeout)
    = 0;

  /// True if the cluster answered a metadata request within `timeout`.
  virtual bool reachable(std::chrono::milliseconds timeout) = 0;
};

/// Consumer-group member with manual commits: call commit() after the
/// records returned by poll() have been processed.
class kafka_consumer {
public:
  virtual ~kafka_consumer() = default;

  /// Subscribes `group_id` to `topics`. `from_beginning` sets
  /// auto.offset.reset=earliest. fetch.wait.max.ms defaults to 10 ms because
  /// the mock cluster holds empty fetches for the whole wait.
  static std::unique_ptr<kafka_consumer>
  create(const std::string& bootstrap, const std::string& group_id,
         const std::vector<std::string>& topics, bool from_beginning,
         std::string& err, const kafka_properties& extra = {});

  /// Reads `topic` from explicit offsets without joining a group (so no
  /// rebalance wait): `start_offsets` maps partition -> first offset to
  /// read; partitions not in the map are read from the beginning. For
  /// observers such as scenario replay; commit() is meaningless here.
  static std::unique_ptr<kafka_consumer>
  create_at_offsets(const std::string& bootstrap, const std::string& topic,
                    const std::map<int32_t, int64_t>& start_offsets,
                    std::string& err, const kafka_properties& extra = {});

  /// Returns up to `max_records`, waiting at most `timeout` for the first.
  virtual std::vector<consumed_record>
  poll(size_t max_records, std::chrono::milliseconds timeout)
    = 0;

  /// Synchronously commits the offsets of all records returned so far.
  /// Returns false and sets `err` on failure.
  virtual bool commit(std::string& err) = 0;
};

/// The end (high watermark) of each partition of a topic, as one query
/// found it.
struct topic_ends {
  /// Partition -> the offset the next record will get; empty when the
  /// topic does not exist.
  std::map<int32_t, int64_t> partitions;
  /// Why the ends are not known; then `partitions` is empty.
  std::string error;
};

/// The ends of every partition (as the cluster's metadata lists them) of
/// each of `topics`, through one client. An observer that takes them before
/// it acts reads only what came after (`create_at_offsets`), however much
/// earlier runs left in the topic. Errors other than an unknown topic are
/// retried for `retry_for` (brokers coming back up).
std::map<std::string, topic_ends>
query_topic_ends(const std::string& bootstrap,
                 const std::vector<std::string>& topics,
                 std::chrono::milliseconds retry_for);

} // namespace vantage
