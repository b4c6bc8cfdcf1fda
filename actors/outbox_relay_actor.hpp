#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/all.hpp>

namespace vantage {

struct relay_options {
  std::string database_url;
  int db_timeout_ms = 2000;
  /// Returns the current bootstrap list; asked again after a failed round,
  /// and a changed answer replaces the producer (a restarted cluster).
  std::function<std::string()> kafka_bootstrap;
  int poll_ms = 200;
  int batch = 500;
  /// How long one round waits for delivery reports before retrying later.
  int delivery_timeout_ms = 15000;
  /// The producer's message.max.bytes.
  int message_max_bytes = 1000000;
  /// 0: an event's row is deleted in the round that published it. More:
  /// published rows are stamped sent_at and kept this long, for
  /// inspection, then purged. Either way the table does not grow forever.
  /// Rows that went to a DLQ or were parked are stamped and kept with their
  /// reason (purged after the retention only when there is one).
  int retention_s = 0;
  /// Rows one purge statement deletes at most (a purge runs up to 10).
  int purge_batch = 5000;
};

/// Live relay status read by /healthz and /metrics without a round trip
/// (the relay blocks while Kafka is slow, by design).
struct relay_status {
  std::atomic<bool> kafka_ok{false};
  std::atomic<int64_t> published{0};
  std::atomic<int64_t> failed_rounds{0};
  /// Rounds that failed on the database (retried on the next tick).
  std::atomic<int64_t> db_errors{0};
  std::atomic<int64_t> pending{0};
  /// Events that can never be published as they are: sent to their
  /// topic's DLQ (`<topic>.dlq`) or, without one, parked in the outbox.
  std::atomic<int64_t> dead_lettered{0};
  /// Published events deleted after the retention time.
  std::atomic<int64_t> purged{0};
  /// A wake-up is on its way to the relay: writers need not send another
  /// (see wake_relay). The relay clears it when its round starts.
  std::atomic<bool> wake_pending{false};
};

/// The settings of the relay's database session and its statement that
/// fetches pending rows in id order (named here so a test can check the
/// plan the relay gets).
extern const char* const relay_session_settings;
extern const char* const relay_fetch_sql;

/// Spawns the outbox relay as a detached actor with its own PostgreSQL
/// connection and Kafka producer. It publishes unsent outbox rows in id
/// order when woken (`atom::wake` after a commit) and every poll interval,
/// and deletes (or, with a retention, stamps sent_at on) only rows the
/// brokers acknowledged. Only one relay in a cluster works at a time (a
/// transaction-scoped advisory lock), so per-key order holds across nodes.
caf::actor spawn_outbox_relay(caf::actor_system& sys, relay_options opts,
                              std::shared_ptr<relay_status> status);

} // namespace vantage
