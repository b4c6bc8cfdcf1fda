#include "actors/outbox_relay_actor.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include <simdjson.h>

#include "adapters/avro.hpp"
#include "adapters/json.hpp"
#include "adapters/kafka.hpp"
#include "adapters/log.hpp"
#include "adapters/pg.hpp"
#include "adapters/topics.hpp"
#include "messages/type_ids.hpp"

namespace vantage {

// synchronous_commit: see relay_actor. Sequential scans are off because the
// outbox is a queue whose statistics are always wrong: analyzed when nearly
// empty, then thousands of deleted rows pile up between autovacuum visits.
// Planned from those statistics, the fetch became a sequential scan and sort
// that read every dead page in every round (PostgreSQL CPU per share view,
// median of five runs: 88 us, 72 with the index); the relay reaches rows
// only by id, which the pending and primary-key indexes serve at any size.
const char* const relay_session_settings
  = "-c synchronous_commit=off -c enable_seqscan=off";

// $2: the id the relay has published through (0 for a rescan). A scan from
// the pending index's start walks every entry deleted since the last
// vacuum (up to a minute of events, 3-20 ms a fetch under 5,000 views/s);
// from the cursor it starts at the live rows.
const char* const relay_fetch_sql
  = "SELECT id, event_id::text, topic, event_key,"
    " schema_name, payload::text FROM event_outbox"
    " WHERE sent_at IS NULL AND id > $2 ORDER BY id LIMIT $1";

namespace {

struct outbox_row {
  int64_t id;
  std::string event_id;
  std::string topic;
  std::string key;
  std::string schema;
  std::string payload;
};

/// How long after a commit's wake-up the relay starts its round, so that
/// the commits of those milliseconds share it: at most 100 rounds a second
/// under load, at 10 ms of added event latency.
constexpr auto wake_coalescing = std::chrono::milliseconds{10};

/// How often a round fetches from the outbox's start instead of its cursor:
/// the longest a row that commits below the cursor waits (relay_state).
constexpr auto relay_rescan_interval = std::chrono::seconds{1};

/// Longest string a shrunk dead letter keeps (bytes, cut at a character).
constexpr size_t dead_letter_string_max = 256;

void shrink_json(simdjson::dom::element el, json_writer& w) {
  using simdjson::dom::element_type;
  switch (el.type()) {
    case element_type::OBJECT:
      w.begin_object();
      for (auto field : simdjson::dom::object(el)) {
        w.key(field.key);
        shrink_json(field.value, w);
      }
      w.end_object();
      break;
    case element_type::ARRAY:
      w.begin_array();
      for (auto x : simdjson::dom::array(el))
        shrink_json(x, w);
      w.end_array();
      break;
    case element_type::STRING: {
      std::string_view sv = el;
      if (sv.size() > dead_letter_string_max) {
        auto cut = dead_letter_string_max;
        while (cut > 0 && (static_cast<unsigned char>(sv[cut]) & 0xC0) == 0x80)
          --cut;
        sv = sv.substr(0, cut);
      }
      w.value(sv);
      break;
    }
    default:
      w.raw(simdjson::minify(el));
  }
}

/// The event with every long string cut short: what still fits in a dead
/// letter when the event itself was too large for the broker. Ids, types
/// and timestamps are short and survive intact.
std::string shrink_payload(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS)
    return json;
  json_writer w;
  shrink_json(doc, w);
  return w.take();
}

struct relay_state {
  relay_options opts;
  std::shared_ptr<relay_status> status;
  std::unique_ptr<pg_connection> db;
  std::unique_ptr<kafka_producer> producer;
  std::map<std::string, std::unique_ptr<avro_codec>> codecs;
  std::chrono::steady_clock::time_point last_error_log{};
  /// A drain is scheduled: further wake-ups until then add nothing.
  bool drain_scheduled = false;
  std::chrono::steady_clock::time_point last_purge{};
  /// The last purge stopped at its bound with due rows left.
  bool purge_behind = false;
  /// Every pending row up to this id was published by a round that saw
  /// it; rounds fetch above it. Ids are drawn at insert, not commit, so a
  /// row can commit below the cursor after a later one was published (two
  /// writers, e.g. two nodes): a rescan from the start at least every
  /// `relay_rescan_interval` publishes it.
  int64_t published_through = 0;
  std::chrono::steady_clock::time_point next_rescan{};
  static inline const char* name = "outbox_relay";

  void log_throttled(const std::string& msg) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_error_log < std::chrono::seconds{10})
      return;
    last_error_log = now;
    log_event(log_level::warn, "outbox_relay", msg);
  }

  const avro_codec* codec(const std::string& schema, std::string& err) {
    auto i = codecs.find(schema);
    if (i == codecs.end()) {
      auto c = avro_codec::builtin(schema, err);
      if (!c)
        return nullptr;
      i = codecs.emplace(schema, std::move(c)).first;
    }
    return i->second.get();
  }

  /// Bootstrap list the producer was made with.
  std::string bootstrap;

  bool ensure_producer() {
    if (producer)
      return true;
    bootstrap = opts.kafka_bootstrap ? opts.kafka_bootstrap() : std::string{};
    if (bootstrap.empty()) {
      log_throttled("no Kafka bootstrap configured; events wait in outbox");
      return false;
    }
    std::string err;
    producer = kafka_producer::create(
      bootstrap, err,
      {{"message.max.bytes", std::to_string(opts.message_max_bytes)}});
    if (!producer)
      log_throttled("kafka producer: " + err);
    return producer != nullptr;
  }

  /// Publishes one batch. Returns the number of rows it published, or -1
  /// when it could not make progress (retry on the next tick).
  int round() {
    if (!ensure_producer()) {
      status->kafka_ok = false;
      return -1;
    }
    auto& c = *db;
    try {
      // Inside the try: after an outage the first statement to notice the
      // dead connection may be this BEGIN.
      c.begin();
      auto lock = c.exec("relay_lock", "SELECT pg_try_advisory_xact_lock(7261002)");
      if (!lock.boolean(0, 0)) {
        c.rollback();
        return 0;
      }
      auto now = std::chrono::steady_clock::now();
      auto after = published_through;
      if (now >= next_rescan) {
        after = 0;
        next_rescan = now + relay_rescan_interval;
      }
      auto rows = c.exec("relay_fetch", relay_fetch_sql,
                         {std::to_string(opts.batch), std::to_string(after)});
      if (rows.empty()) {
        c.commit();
        status->pending = 0;
        return 0;
      }
      status->pending = rows.size();
      std::vector<outbox_row> batch;
      std::vector<kafka_record> records;
      std::vector<int64_t> poisoned;
      std::vector<std::string> poison_reasons;
      std::vector<int64_t> dead_lettered_ids;
      std::vector<std::string> dead_letter_reasons;
      for (int i = 0; i < rows.size(); ++i) {
        outbox_row r{rows.i64(i, 0), rows.str(i, 1), rows.str(i, 2),
                     rows.str(i, 3), rows.str(i, 4), rows.str(i, 5)};
        std::string err;
        std::string value;
        auto* codec = this->codec(r.schema, err);
        if (codec == nullptr || !codec->encode(r.payload, value, err)) {
          // An event that cannot be encoded never will be: park it with its
          // reason instead of blocking every later event.
          poisoned.push_back(r.id);
          poison_reasons.push_back("encode: " + err);
          continue;
        }
        records.push_back(kafka_record{r.topic, r.key, std::move(value),
                                       {{"event_id", r.event_id},
                                        {"content-type", "application/avro"},
                                        {"schema", r.schema}}});
        batch.push_back(std::move(r));
      }
      auto reports = producer->produce_and_wait(
        records, std::chrono::milliseconds{opts.delivery_timeout_ms});
      std::string sent_ids = "{";
      std::string failed_ids = "{";
      std::string last_err;
      int sent = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        auto& rep = reports[i];
        if (rep.status == delivery_status::delivered) {
          sent_ids += (sent++ > 0 ? "," : "") + std::to_string(batch[i].id);
        } else if (rep.status == delivery_status::permanent_failure) {
          continue; // dead-lettered below
        } else {
          if (failed_ids.size() > 1)
            failed_ids += ",";
          failed_ids += std::to_string(batch[i].id);
          last_err = rep.error;
        }
      }
      // Rejected for good: to the topic's DLQ with the reason, so nothing
      // is dropped silently and later events are not held up.
      std::vector<size_t> rejected;
      std::vector<std::string> rejected_reasons;
      for (size_t i = 0; i < batch.size(); ++i)
        if (reports[i].status == delivery_status::permanent_failure) {
          rejected.push_back(i);
          rejected_reasons.push_back("kafka: " + reports[i].error);
        }
      for (size_t k = 0; k < rejected.size(); ++k) {
        auto& row = batch[rejected[k]];
        auto outcome = dead_letter(row, records[rejected[k]],
                                   rejected_reasons[k]);
        if (outcome == delivery_status::delivered) {
          dead_lettered_ids.push_back(row.id);
          dead_letter_reasons.push_back(rejected_reasons[k] + "; sent to "
                                        + row.topic + ".dlq");
        } else if (outcome == delivery_status::permanent_failure) {
          poisoned.push_back(row.id);
          poison_reasons.push_back(rejected_reasons[k]);
        } else {
          if (failed_ids.size() > 1)
            failed_ids += ",";
          failed_ids += std::to_string(row.id);
          last_err = "dead-letter queue unreachable";
        }
      }
      sent_ids += "}";
      failed_ids += "}";
      // Deleting at once is the cheaper end of a published row: stamping it
      // is a second row version (sent_at is in the pending index, so never
      // a HOT update) and the purge a third write, and under sustained load
      // the kept rows make the table and its indexes outgrow the cache.
      if (opts.retention_s > 0)
        c.exec("relay_mark_sent",
               "UPDATE event_outbox SET sent_at = now(),"
               " attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
               {sent_ids});
      else
        c.exec("relay_delete_sent",
               "DELETE FROM event_outbox WHERE id = ANY($1::bigint[])",
               {sent_ids});
      if (failed_ids.size() > 2)
        c.exec("relay_mark_failed",
               "UPDATE event_outbox SET attempts = attempts + 1,"
               " last_error = $2 WHERE id = ANY($1::bigint[])",
               {failed_ids, last_err});
      for (size_t i = 0; i < poisoned.size(); ++i)
        c.exec("relay_mark_poison",
               "UPDATE event_outbox SET sent_at = now(), attempts = attempts + 1,"
               " last_error = $2 WHERE id = $1",
               {std::to_string(poisoned[i]), poison_reasons[i]});
      for (size_t i = 0; i < dead_lettered_ids.size(); ++i)
        c.exec("relay_mark_poison",
               "UPDATE event_outbox SET sent_at = now(), attempts = attempts + 1,"
               " last_error = $2 WHERE id = $1",
               {std::to_string(dead_lettered_ids[i]), dead_letter_reasons[i]});
      c.commit();
      status->published += sent;
      status->dead_lettered += static_cast<int64_t>(poisoned.size()
                                                   + dead_lettered_ids.size());
      for (auto& reason : dead_letter_reasons)
        log_event(log_level::warn, "outbox_relay", "event dead-lettered: " + reason);
      for (auto& reason : poison_reasons)
        log_event(log_level::error, "outbox_relay", "event parked: " + reason);
      if (failed_ids.size() > 2) {
        status->kafka_ok = false;
        status->failed_rounds += 1;
        log_throttled("kafka delivery failed, will retry: " + last_err);
        rediscover();
        return -1;
      }
      status->kafka_ok = true;
      // Only a round that settled every row it fetched moves the cursor:
      // to its last id (back down after a rescan, which is only slower).
      published_through = rows.i64(rows.size() - 1, 0);
      return sent + static_cast<int>(poisoned.size() + dead_lettered_ids.size());
    } catch (const pg_error& e) {
      c.rollback();
      status->db_errors += 1;
      log_throttled(std::string{"postgres: "} + e.what());
      return -1;
    }
  }

  /// Publishes a rejected event to `<topic>.dlq` with the reason in the
  /// `dlq_reason` header; if the DLQ rejects it too (too large for any
  /// topic), once more with its long strings cut. Returns delivered, or
  /// permanent_failure when there is no DLQ (the row is parked), or
  /// retriable_failure (try the event again later).
  delivery_status dead_letter(const outbox_row& row, const kafka_record& rec,
                              const std::string& reason) {
    auto dlq_topic = row.topic + ".dlq";
    if (find_topic(dlq_topic) == nullptr)
      return delivery_status::permanent_failure;
    kafka_record letter{dlq_topic, rec.key, rec.value, rec.headers};
    letter.headers.push_back({"dlq_reason", reason});
    letter.headers.push_back({"dlq_original_topic", row.topic});
    auto timeout = std::chrono::milliseconds{opts.delivery_timeout_ms};
    auto rep = producer->produce_and_wait({letter}, timeout).front();
    if (rep.status != delivery_status::permanent_failure)
      return rep.status;
    std::string err;
    auto* codec = this->codec(row.schema, err);
    std::string shrunk;
    if (codec == nullptr
        || !codec->encode(shrink_payload(row.payload), shrunk, err))
      return delivery_status::permanent_failure;
    letter.value = std::move(shrunk);
    letter.headers.push_back({"dlq_value_truncated", "true"});
    rep = producer->produce_and_wait({letter}, timeout).front();
    return rep.status;
  }

  /// After a failed round: if the cluster now lives elsewhere (an embedded
  /// cluster restarted on new ports), start over with a new producer.
  void rediscover() {
    if (!opts.kafka_bootstrap)
      return;
    auto now = opts.kafka_bootstrap();
    if (!now.empty() && now != bootstrap) {
      log_event(log_level::info, "outbox_relay",
                "kafka bootstrap changed; reconnecting to " + now);
      producer.reset();
    }
  }

  /// Deletes published events past the retention time, a bounded number
  /// per call so publishing never waits long behind it. Sent rows sit at
  /// the low end of the id order; parked ones (sent_at set by the DLQ
  /// path) age out the same way. Several nodes may purge at once: each
  /// skips rows another one holds. While a call leaves due rows behind
  /// (events published faster than one call per interval deletes), the
  /// next tick purges again instead of waiting for the interval: a bound per
  /// interval would let the table grow without end under sustained load.
  void purge() {
    // Without a retention published rows are gone already, and the rows
    // left stamped (dead-lettered, parked) stay for an operator.
    if (opts.retention_s <= 0)
      return;
    auto now = std::chrono::steady_clock::now();
    // A quarter of the retention, at least a poll and at most a minute.
    auto every = std::chrono::milliseconds{std::min<int64_t>(
      60000, std::max<int64_t>(opts.poll_ms, int64_t{opts.retention_s} * 250))};
    if (!purge_behind && now - last_purge < every)
      return;
    last_purge = now;
    purge_behind = false;
    constexpr int max_rounds = 10;
    auto batch = std::max(1, opts.purge_batch);
    try {
      for (int i = 0; i < max_rounds; ++i) {
        auto rows = db->exec(
          "relay_purge",
          "WITH old AS (SELECT id FROM event_outbox"
          " WHERE sent_at < now() - make_interval(secs => $1::int)"
          " ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED)"
          ", gone AS (DELETE FROM event_outbox o USING old"
          " WHERE o.id = old.id RETURNING 1)"
          " SELECT count(*) FROM gone",
          {std::to_string(opts.retention_s), std::to_string(batch)});
        auto n = rows.i64(0, 0);
        status->purged += n;
        if (n < batch)
          return;
      }
      purge_behind = true;
    } catch (const std::exception& e) {
      log_throttled(std::string{"outbox purge failed: "} + e.what());
    }
  }

  void drain() {
    // Keep going while full batches come back; stop on failure or when the
    // outbox is empty, and let the timer bring the next round. Nothing
    // restarts this actor, so no failure may end it: an escaped exception
    // would leave every later event in the outbox until the node restarts.
    try {
      for (;;) {
        auto n = round();
        if (n < opts.batch)
          break;
      }
    } catch (const std::exception& e) {
      // Not a database failure (round() counts and handles those itself).
      db->rollback();
      log_throttled(std::string{"outbox relay round failed: "} + e.what());
    }
  }
};

caf::behavior relay_actor(caf::stateful_actor<relay_state>* self,
                          relay_options opts,
                          std::shared_ptr<relay_status> status) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.status = std::move(status);
  // The relay writes only bookkeeping (deletes or sent marks of published
  // rows, attempts, purges), so its commits need not wait for the WAL
  // flush: a database crash may undo the last of them, and those events are
  // published again, which consumers already dedup by their event_id
  // header. No event can be lost that way, and the writers' commits no
  // longer queue behind the relay's flushes (relay_session_settings).
  st.db = std::make_unique<pg_connection>(st.opts.database_url,
                                          st.opts.db_timeout_ms,
                                          relay_session_settings);
  auto period = std::chrono::milliseconds{st.opts.poll_ms};
  self->delayed_send(self, period, atom::tick_v);
  return {
    [=](atom::wake) {
      // Coalesce: every commit wakes the relay, but one round a few
      // milliseconds later publishes all of them in one batch (fewer
      // rounds, each a PostgreSQL transaction and a Kafka flush).
      if (self->state.drain_scheduled)
        return;
      self->state.drain_scheduled = true;
      self->delayed_send(self, wake_coalescing, atom::drain_v);
    },
    [=](atom::drain) {
      self->state.drain_scheduled = false;
      // Commits from now on need a new wake-up; earlier ones are in this round.
      self->state.status->wake_pending = false;
      self->state.drain();
    },
    [=](atom::tick) {
      auto& st = self->state;
      st.drain();
      st.purge();
      // Idle rounds say nothing about Kafka; probe it so /healthz is true.
      if (st.status->pending == 0 && st.ensure_producer()) {
        st.status->kafka_ok
          = st.producer->reachable(std::chrono::milliseconds{500});
        if (!st.status->kafka_ok)
          st.rediscover();
      }
      self->delayed_send(self, period, atom::tick_v);
    },
  };
}

} // namespace

caf::actor spawn_outbox_relay(caf::actor_system& sys, relay_options opts,
                              std::shared_ptr<relay_status> status) {
  return sys.spawn<caf::detached>(relay_actor, std::move(opts),
                                  std::move(status));
}

} // namespace vantage
