#include "actors/outbox.hpp"

namespace vantage {

pg_connection::statement outbox_insert(const std::string& event_id,
                                       const std::string& topic,
                                       const std::string& key,
                                       const std::string& schema,
                                       const std::string& payload_json,
                                       int64_t now_ms) {
  return {"outbox_insert",
          "INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
          " payload, created_at) VALUES ($1, $2, $3, $4, $5::json,"
          " to_timestamp($6::bigint / 1000.0))",
          {event_id, topic, key, schema, payload_json, std::to_string(now_ms)}};
}

} // namespace vantage
