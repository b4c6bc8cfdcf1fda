#include "actors/outbox_relay_actor.hpp"

#include <chrono>
#include <map>
#include <vector>

#include "adapters/avro.hpp"
#include "adapters/kafka.hpp"
#include "adapters/log.hpp"
#include "adapters/pg.hpp"
#include "messages/type_ids.hpp"

namespace vantage {

namespace {

struct outbox_row {
  int64_t id;
  std::string event_id;
  std::string topic;
  std::string key;
  std::string schema;
  std::string payload;
};

struct relay_state {
  relay_options opts;
  std::shared_ptr<relay_status> status;
  std::unique_ptr<pg_connection> db;
  std::unique_ptr<kafka_producer> producer;
  std::map<std::string, std::unique_ptr<avro_codec>> codecs;
  std::chrono::steady_clock::time_point last_error_log{};
  /// A drain is scheduled: further wake-ups until then add nothing.
  bool drain_scheduled = false;
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
    producer = kafka_producer::create(bootstrap, err);
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
    c.begin();
    try {
      auto lock = c.exec("relay_lock", "SELECT pg_try_advisory_xact_lock(7261002)");
      if (!lock.boolean(0, 0)) {
        c.rollback();
        return 0;
      }
      auto rows = c.exec("relay_fetch",
                         "SELECT id, event_id::text, topic, event_key,"
                         " schema_name, payload::text FROM event_outbox"
                         " WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                         {std::to_string(opts.batch)});
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
          poisoned.push_back(batch[i].id);
          poison_reasons.push_back("kafka: " + rep.error);
        } else {
          if (failed_ids.size() > 1)
            failed_ids += ",";
          failed_ids += std::to_string(batch[i].id);
          last_err = rep.error;
        }
      }
      sent_ids += "}";
      failed_ids += "}";
      c.exec("relay_mark_sent",
             "UPDATE event_outbox SET sent_at = now(),"
             " attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
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
      c.commit();
      status->published += sent;
      status->dead_lettered += static_cast<int64_t>(poisoned.size());
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
      return sent + static_cast<int>(poisoned.size());
    } catch (const pg_error& e) {
      c.rollback();
      log_throttled(std::string{"postgres: "} + e.what());
      return -1;
    }
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

  void drain() {
    // Keep going while full batches come back; stop on failure or when the
    // outbox is empty, and let the timer bring the next round.
    for (;;) {
      auto n = round();
      if (n < opts.batch)
        break;
    }
  }
};

caf::behavior relay_actor(caf::stateful_actor<relay_state>* self,
                          relay_options opts,
                          std::shared_ptr<relay_status> status) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.status = std::move(status);
  st.db = std::make_unique<pg_connection>(st.opts.database_url,
                                          st.opts.db_timeout_ms);
  auto period = std::chrono::milliseconds{st.opts.poll_ms};
  self->delayed_send(self, period, atom::tick_v);
  return {
    [=](atom::wake) {
      // Coalesce: every commit wakes the relay, but one round a couple of
      // milliseconds later publishes all of them in one batch.
      if (self->state.drain_scheduled)
        return;
      self->state.drain_scheduled = true;
      self->delayed_send(self, std::chrono::milliseconds{2}, atom::drain_v);
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
