#pragma once

// The transactional outbox: events are inserted in the same transaction as
// the state change that caused them, and the relay (outbox_relay_actor)
// publishes them in id order, so a crash or Kafka outage delays events but
// never loses them.

#include <cstdint>
#include <string>

#include "adapters/pg.hpp"

namespace vantage {

/// The statement that inserts one event row; put it in the same atomic
/// batch (pg_connection::exec_atomic) as the change that caused the event.
pg_connection::statement outbox_insert(const std::string& event_id,
                                       const std::string& topic,
                                       const std::string& key,
                                       const std::string& schema,
                                       const std::string& payload_json,
                                       int64_t now_ms);

} // namespace vantage
