#include "actors/outbox.hpp"

namespace vantage {

void enqueue_event(pg_connection& c, const std::string& event_id,
                   const std::string& topic, const std::string& key,
                   const std::string& schema, const std::string& payload_json,
                   int64_t now_ms) {
  c.exec("outbox_insert",
         "INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
         " payload, created_at)"
         " VALUES ($1, $2, $3, $4, $5::jsonb, to_timestamp($6::bigint / 1000.0))",
         {event_id, topic, key, schema, payload_json, std::to_string(now_ms)});
}

} // namespace vantage
