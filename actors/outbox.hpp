#pragma once

// The transactional outbox: events are inserted in the same transaction as
// the state change that caused them, and the relay (outbox_relay_actor)
// publishes them in id order, so a crash or Kafka outage delays events but
// never loses them.

#include <cstdint>
#include <string>
#include <vector>

#include "adapters/pg.hpp"

namespace vantage {

/// The statement that inserts one event row; put it in the same atomic
/// batch (pg_connection::exec_atomic) as the change that caused the event.
/// The group committer merges the outbox inserts of one transaction into
/// one statement (in the writes' order).
pg_connection::statement outbox_insert(const std::string& event_id,
                                       const std::string& topic,
                                       const std::string& key,
                                       const std::string& schema,
                                       const std::string& payload_json,
                                       int64_t now_ms);

/// One statement inserting many events of one topic and key, in order:
/// `payloads` are JSON objects that each carry their own "event_id". Lets a
/// batch of n events cost one statement instead of n.
pg_connection::statement outbox_insert_many(const std::string& topic,
                                            const std::string& key,
                                            const std::string& schema,
                                            const std::vector<std::string>& payloads,
                                            int64_t now_ms);

} // namespace vantage
