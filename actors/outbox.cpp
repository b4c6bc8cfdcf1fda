#include "actors/outbox.hpp"

#include "adapters/json.hpp"

namespace vantage {

namespace {

/// One event as an element of the rows array: [event_id or null, topic,
/// key, schema, created_at in ms, payload]. The payload is embedded as it
/// is (JSON keeps its text), so the stored payload is byte for byte the
/// event.
void append_row(std::string& rows, const std::string* event_id,
                const std::string& topic, const std::string& key,
                const std::string& schema, int64_t now_ms,
                const std::string& payload_json) {
  if (rows.size() > 1)
    rows += ',';
  auto quoted = [&](const std::string& text) {
    rows += '"';
    json_escape_to(rows, text);
    rows += '"';
  };
  rows += '[';
  if (event_id != nullptr)
    quoted(*event_id);
  else
    rows += "null";
  for (auto* text : {&topic, &key, &schema}) {
    rows += ',';
    quoted(*text);
  }
  rows += ',';
  rows += std::to_string(now_ms);
  rows += ',';
  rows += payload_json;
  rows += ']';
}

/// Every outbox insert of a group transaction merges into one statement
/// (merge_kind::json_array): one insert of all its events, in the order of
/// the writes, instead of one statement per write. WITH ORDINALITY + ORDER
/// BY: ids (the relay's publishing order) follow the array's order.
pg_connection::statement outbox_rows_insert(std::string rows) {
  return {"outbox_insert_rows",
          "INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
          " payload, created_at)"
          " SELECT coalesce(r->>0, r->5->>'event_id')::uuid, r->>1, r->>2,"
          " r->>3, r->5, to_timestamp((r->>4)::bigint / 1000.0)"
          " FROM json_array_elements($1::json) WITH ORDINALITY AS t(r, n)"
          " ORDER BY n",
          {std::move(rows)},
          "event_outbox",
          0,
          pg_connection::merge_kind::json_array};
}

} // namespace

pg_connection::statement outbox_insert(const std::string& event_id,
                                       const std::string& topic,
                                       const std::string& key,
                                       const std::string& schema,
                                       const std::string& payload_json,
                                       int64_t now_ms) {
  std::string rows = "[";
  append_row(rows, &event_id, topic, key, schema, now_ms, payload_json);
  rows += ']';
  return outbox_rows_insert(std::move(rows));
}

pg_connection::statement outbox_insert_many(const std::string& topic,
                                            const std::string& key,
                                            const std::string& schema,
                                            const std::vector<std::string>& payloads,
                                            int64_t now_ms) {
  std::string rows = "[";
  for (auto& payload : payloads)
    append_row(rows, nullptr, topic, key, schema, now_ms, payload);
  rows += ']';
  return outbox_rows_insert(std::move(rows));
}

} // namespace vantage
