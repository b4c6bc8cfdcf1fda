#include "actors/outbox.hpp"

#include "adapters/json.hpp"

namespace vantage {

namespace {

/// One event as an element of the rows array: {"i": event_id or null,
/// "t": topic, "k": key, "s": schema, "c": created_at in ms, "p": payload}.
/// The payload is embedded as it is (a json column keeps the value's text),
/// so the stored payload is byte for byte the event.
void append_row(std::string& rows, const std::string* event_id,
                const std::string& topic, const std::string& key,
                const std::string& schema, int64_t now_ms,
                const std::string& payload_json) {
  auto quoted = [&](const std::string& text) {
    rows += '"';
    json_escape_to(rows, text);
    rows += '"';
  };
  if (rows.size() > 1)
    rows += ',';
  rows += "{\"i\":";
  if (event_id != nullptr)
    quoted(*event_id);
  else
    rows += "null";
  rows += ",\"t\":";
  quoted(topic);
  rows += ",\"k\":";
  quoted(key);
  rows += ",\"s\":";
  quoted(schema);
  rows += ",\"c\":";
  rows += std::to_string(now_ms);
  rows += ",\"p\":";
  rows += payload_json;
  rows += '}';
}

/// Every outbox insert of a group transaction merges into one statement
/// (merge_kind::json_array): one insert of all its events, in the order of
/// the writes, instead of one statement per write. json_to_recordset parses
/// the array once (operators on json elements would parse each payload
/// again per field); WITH ORDINALITY + ORDER BY: ids (the relay's
/// publishing order) follow the array's order.
pg_connection::statement outbox_rows_insert(std::string rows) {
  return {"outbox_insert_rows",
          "INSERT INTO event_outbox(event_id, topic, event_key, schema_name,"
          " payload, created_at)"
          " SELECT coalesce(x.i, (x.p->>'event_id')::uuid), x.t, x.k, x.s,"
          " x.p, to_timestamp(x.c / 1000.0)"
          " FROM ROWS FROM (json_to_recordset($1::json) AS (i uuid, t text,"
          " k text, s text, c bigint, p json))"
          " WITH ORDINALITY AS x(i, t, k, s, c, p, n)"
          " ORDER BY x.n",
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
