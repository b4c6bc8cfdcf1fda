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

pg_connection::statement outbox_insert_many(const std::string& topic,
                                            const std::string& key,
                                            const std::string& schema,
                                            const std::vector<std::string>& payloads,
                                            int64_t now_ms) {
  std::string array = "[";
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (i > 0)
      array += ',';
    array += payloads[i];
  }
  array += ']';
  // WITH ORDINALITY + ORDER BY: ids (the relay's publishing order) follow
  // the order of the batch.
  return {"outbox_insert_many",
          "INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
          " payload, created_at) SELECT (e->>'event_id')::uuid, $1, $2, $3, e,"
          " to_timestamp($5::bigint / 1000.0)"
          " FROM json_array_elements($4::json) WITH ORDINALITY AS t(e, n)"
          " ORDER BY n",
          {topic, key, schema, std::move(array), std::to_string(now_ms)}};
}

} // namespace vantage
