// Kafka producer and consumer over the librdkafka C API (see kafka.hpp).
//
// Thread-safety: a kafka_producer or kafka_consumer may be used from one
// thread at a time (calls must not overlap); different instances are
// independent. Both block, so call them from detached actors or threads.
//
// Delivery semantics: produce_and_wait is at-least-once. A record reported as
// a retriable failure may still have reached the broker (e.g. its report came
// after the timeout), so a retry can produce a duplicate; consumers
// deduplicate by event id.

#include "adapters/kafka.hpp"

#include <atomic>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace vantage {

std::string consumed_record::header(const std::string& name) const {
  for (auto& h : headers)
    if (h.name == name)
      return h.value;
  return {};
}

namespace {

using clock_type = std::chrono::steady_clock;

int remaining_ms(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - clock_type::now())
                .count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

/// Sets every property of `props` on `conf`; false + `err` on the first
/// rejected one.
bool apply(rd_kafka_conf_t* conf, const kafka_properties& props,
           std::string& err) {
  char errstr[512];
  for (auto& [k, v] : props)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr)
        != RD_KAFKA_CONF_OK) {
      err = "kafka property " + k + "=" + v + ": " + errstr;
      return false;
    }
  return true;
}

/// The partition ids the cluster's metadata lists for `topic`; otherwise
/// the error of the request or of the topic (__UNKNOWN_TOPIC when the
/// answer does not name it).
rd_kafka_resp_err_t topic_partitions(rd_kafka_t* rk, const std::string& topic,
                                     std::vector<int32_t>& ids) {
  ids.clear();
  const rd_kafka_metadata_t* md = nullptr;
  auto* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  auto rc = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
  rd_kafka_topic_destroy(rkt);
  if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
    rc = md->topic_cnt == 1 ? md->topics[0].err
                            : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
  if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
    for (int i = 0; i < md->topics[0].partition_cnt; ++i)
      ids.push_back(md->topics[0].partitions[i].id);
  if (md != nullptr)
    rd_kafka_metadata_destroy(md);
  return rc;
}

/// Errors that no retry of the same record can fix.
bool is_permanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// producer
// ---------------------------------------------------------------------------

class producer_impl final : public kafka_producer {
public:
  producer_impl(std::string bootstrap, kafka_properties props)
    : bootstrap_(std::move(bootstrap)), props_(std::move(props)) {
  }

  ~producer_impl() override {
    destroy_handle(/*flush_ms=*/2000);
  }

  bool open(std::string& err) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    kafka_properties all{
      {"bootstrap.servers", bootstrap_},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.type", "lz4"},
      {"partitioner", "murmur2_random"},
      {"linger.ms", "5"},
      {"message.timeout.ms", "10000"},
    };
    for (auto& [k, v] : props_)
      all[k] = v;
    if (!apply(conf, all, err)) {
      rd_kafka_conf_destroy(conf);
      return false;
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &producer_impl::on_delivery);
    rd_kafka_conf_set_error_cb(conf, &producer_impl::on_error);
    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      err = std::string{"rd_kafka_new (producer): "} + errstr;
      return false;
    }
    fatal_ = false;
    return true;
  }

  std::vector<delivery_report>
  produce_and_wait(const std::vector<kafka_record>& records,
                   std::chrono::milliseconds timeout) override {
    auto deadline = clock_type::now() + timeout;
    std::vector<delivery_report> reports(records.size());
    for (auto& r : reports) {
      r.status = delivery_status::retriable_failure;
      r.error = "no delivery report within the timeout";
    }
    if (!ensure_handle(reports))
      return reports;

    // Reports of earlier calls that timed out are ignored: each call has its
    // own range of sequence numbers.
    batch_ = &reports;
    batch_first_seq_ = next_seq_;
    outstanding_ = 0;
    next_seq_ += records.size();

    size_t i = 0;
    for (; i < records.size(); ++i) {
      auto& rec = records[i];
      auto& rep = reports[i];
      rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
      for (;;) {
        rd_kafka_headers_t* hdrs = nullptr;
        if (!rec.headers.empty()) {
          hdrs = rd_kafka_headers_new(rec.headers.size());
          for (auto& h : rec.headers)
            rd_kafka_header_add(hdrs, h.name.data(),
                                static_cast<ssize_t>(h.name.size()),
                                h.value.data(),
                                static_cast<ssize_t>(h.value.size()));
        }
        auto seq = static_cast<uintptr_t>(batch_first_seq_ + i);
        err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(rec.topic.c_str()),
          RD_KAFKA_V_KEY(rec.key.empty() ? nullptr : rec.key.data(),
                         rec.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(rec.value.data()),
                           rec.value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_HEADERS(hdrs),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(seq)), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && hdrs)
          rd_kafka_headers_destroy(hdrs); // not taken over on failure
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
          break;
        // Local queue full: serve delivery reports to make room, then retry.
        if (remaining_ms(deadline) == 0)
          break;
        rd_kafka_poll(rk_, std::min(remaining_ms(deadline), 50));
      }
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++outstanding_;
        rep.error = "no delivery report within the timeout";
        continue;
      }
      rep.status = is_permanent(err) ? delivery_status::permanent_failure
                                     : delivery_status::retriable_failure;
      rep.error = std::string{"produce: "} + rd_kafka_err2name(err) + ": "
                  + rd_kafka_err2str(err);
      if (err == RD_KAFKA_RESP_ERR__FATAL)
        fatal_ = true;
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL || fatal_) {
        // Out of time or unusable handle: the rest cannot be produced now.
        for (size_t j = i + 1; j < records.size(); ++j) {
          reports[j].status = delivery_status::retriable_failure;
          reports[j].error = rep.error;
        }
        break;
      }
    }

    while (outstanding_ > 0 && !fatal_) {
      int left = remaining_ms(deadline);
      if (left == 0)
        break;
      rd_kafka_poll(rk_, std::min(left, 100));
    }
    // One last non-blocking pass for reports that are already queued.
    if (outstanding_ > 0)
      rd_kafka_poll(rk_, 0);
    if (!fatal_ && outstanding_ > 0) {
      // Drop what has not left the local queue yet so it is not sent after
      // the caller was told it failed (their reports say "purged"); requests
      // already in flight cannot be recalled and stay "no report in time".
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
      rd_kafka_poll(rk_, 0);
    }
    batch_ = nullptr;
    outstanding_ = 0;
    if (fatal_) {
      std::string reason = fatal_reason();
      for (auto& r : reports)
        if (r.status != delivery_status::delivered
            && r.status != delivery_status::permanent_failure) {
          r.status = delivery_status::retriable_failure;
          r.error = "fatal producer error (producer recreated): " + reason;
        }
      recreate();
    }
    return reports;
  }

  bool reachable(std::chrono::milliseconds timeout) override {
    std::vector<delivery_report> dummy;
    if (!ensure_handle(dummy))
      return false;
    const rd_kafka_metadata_t* md = nullptr;
    auto ms = static_cast<int>(std::max<long long>(1, timeout.count()));
    auto err = rd_kafka_metadata(rk_, 0, nullptr, &md, ms);
    if (md)
      rd_kafka_metadata_destroy(md);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;
  }

private:
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg,
                          void* opaque) {
    auto* self = static_cast<producer_impl*>(opaque);
    auto seq = reinterpret_cast<uintptr_t>(msg->_private);
    if (!self->batch_ || seq < self->batch_first_seq_
        || seq >= self->batch_first_seq_ + self->batch_->size())
      return; // report of an earlier call that already gave up
    auto& rep = (*self->batch_)[seq - self->batch_first_seq_];
    if (self->outstanding_ > 0)
      --self->outstanding_;
    rep.partition = msg->partition;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rep.status = delivery_status::delivered;
      rep.error.clear();
      rep.offset = msg->offset;
      return;
    }
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
      self->fatal_ = true;
    rep.status = is_permanent(msg->err) ? delivery_status::permanent_failure
                                        : delivery_status::retriable_failure;
    rep.error = msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE
                  ? "not sent within the timeout (purged from the local queue)"
                  : std::string{rd_kafka_err2name(msg->err)} + ": "
                      + rd_kafka_err2str(msg->err);
  }

  static void on_error(rd_kafka_t* rk, int err, const char* reason,
                       void* opaque) {
    auto* self = static_cast<producer_impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      self->fatal_ = true;
      std::fprintf(stderr, "kafka producer: fatal error: %s\n", reason);
    } else if (err != RD_KAFKA_RESP_ERR__TRANSPORT
               && err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      // Transport errors are routine (broker restarts); the rest is rare.
      std::fprintf(stderr, "kafka producer %s: %s: %s\n", rd_kafka_name(rk),
                   rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
                   reason);
    }
  }

  std::string fatal_reason() {
    if (!rk_)
      return "no handle";
    char buf[512] = {0};
    auto err = rd_kafka_fatal_error(rk_, buf, sizeof buf);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
      return "fatal error";
    return std::string{rd_kafka_err2name(err)} + ": " + buf;
  }

  // Makes sure there is a usable handle; on failure marks every report.
  bool ensure_handle(std::vector<delivery_report>& reports) {
    char buf[256];
    if (rk_ && (fatal_ || rd_kafka_fatal_error(rk_, buf, sizeof buf)))
      recreate();
    if (rk_)
      return true;
    std::string err;
    if (open(err))
      return true;
    for (auto& r : reports) {
      r.status = delivery_status::retriable_failure;
      r.error = "no producer: " + err;
    }
    return false;
  }

  void destroy_handle(int flush_ms) {
    if (!rk_)
      return;
    batch_ = nullptr;
    if (flush_ms > 0 && !fatal_)
      rd_kafka_flush(rk_, flush_ms);
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_, 0);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }

  // A fatal idempotence error makes the handle useless; start a new one
  // (new producer id, fresh sequence numbers).
  void recreate() {
    std::fprintf(stderr, "kafka producer: recreating after fatal error: %s\n",
                 fatal_reason().c_str());
    destroy_handle(0);
    std::string err;
    if (!open(err))
      std::fprintf(stderr, "kafka producer: recreate failed: %s\n", err.c_str());
  }

  std::string bootstrap_;
  kafka_properties props_;
  rd_kafka_t* rk_ = nullptr;
  bool fatal_ = false;
  std::vector<delivery_report>* batch_ = nullptr;
  uint64_t batch_first_seq_ = 0;
  uint64_t next_seq_ = 1;
  size_t outstanding_ = 0;
};

// ---------------------------------------------------------------------------
// consumer
// ---------------------------------------------------------------------------

class consumer_impl final : public kafka_consumer {
public:
  ~consumer_impl() override {
    if (!rk_)
      return;
    // Leaves the group cleanly (revokes partitions, commits nothing since
    // auto-commit is off) so the next member gets them without waiting for
    // the session timeout.
    auto err = rd_kafka_consumer_close(rk_);
    if (err)
      std::fprintf(stderr, "kafka consumer: close: %s\n", rd_kafka_err2str(err));
    rd_kafka_destroy(rk_);
  }

  /// Creates the handle; the caller then subscribes or assigns.
  bool make_handle(const std::string& bootstrap, const std::string& group_id,
                   bool from_beginning, const kafka_properties& extra,
                   std::string& err) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    kafka_properties all{
      {"bootstrap.servers", bootstrap},
      {"group.id", group_id},
      {"enable.auto.commit", "false"},
      {"auto.offset.reset", from_beginning ? "earliest" : "latest"},
      {"fetch.wait.max.ms", "10"},
      {"session.timeout.ms", "6000"},
    };
    for (auto& [k, v] : extra)
      all[k] = v;
    if (!apply(conf, all, err)) {
      rd_kafka_conf_destroy(conf);
      return false;
    }
    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      err = std::string{"rd_kafka_new (consumer): "} + errstr;
      return false;
    }
    rd_kafka_poll_set_consumer(rk_);
    return true;
  }

  bool open(const std::string& bootstrap, const std::string& group_id,
            const std::vector<std::string>& topics, bool from_beginning,
            const kafka_properties& extra, std::string& err) {
    if (topics.empty()) {
      err = "kafka consumer: no topics";
      return false;
    }
    if (!make_handle(bootstrap, group_id, from_beginning, extra, err))
      return false;
    auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()));
    for (auto& t : topics)
      rd_kafka_topic_partition_list_add(list, t.c_str(), RD_KAFKA_PARTITION_UA);
    auto rc = rd_kafka_subscribe(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rc) {
      err = std::string{"subscribe: "} + rd_kafka_err2str(rc);
      return false; // destructor closes the handle
    }
    return true;
  }

  bool open_assigned(const std::string& bootstrap, const std::string& topic,
                     const std::map<int32_t, int64_t>& start_offsets,
                     const kafka_properties& extra, std::string& err) {
    // librdkafka's consumer wants a group id even when it never joins.
    static std::atomic<int> seq{0};
    std::string group = "vantage-observer-" + std::to_string(::getpid()) + "-"
                        + std::to_string(seq++);
    if (!make_handle(bootstrap, group, true, extra, err))
      return false;
    std::vector<int32_t> ids;
    auto rc = topic_partitions(rk_, topic, ids);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      err = "metadata for " + topic + ": " + rd_kafka_err2str(rc);
      return false;
    }
    auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(ids.size()));
    for (auto id : ids) {
      auto at = start_offsets.find(id);
      rd_kafka_topic_partition_list_add(list, topic.c_str(), id)->offset
        = at != start_offsets.end() ? at->second : RD_KAFKA_OFFSET_BEGINNING;
    }
    rc = rd_kafka_assign(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      err = std::string{"assign: "} + rd_kafka_err2str(rc);
      return false;
    }
    return true;
  }

  std::vector<consumed_record> poll(size_t max_records,
                                    std::chrono::milliseconds timeout) override {
    std::vector<consumed_record> out;
    if (max_records == 0)
      return out;
    auto deadline = clock_type::now() + timeout;
    while (out.size() < max_records) {
      // Wait (up to the deadline) only for the first record; then take what
      // is already fetched.
      int wait = out.empty() ? remaining_ms(deadline) : 0;
      rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk_, wait);
      if (!msg) {
        if (!out.empty() || remaining_ms(deadline) == 0)
          break;
        continue;
      }
      if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          std::fprintf(stderr, "kafka consumer: %s\n",
                       rd_kafka_message_errstr(msg));
        rd_kafka_message_destroy(msg);
        if (out.empty() && remaining_ms(deadline) == 0)
          break;
        continue;
      }
      consumed_record r;
      if (msg->rkt)
        r.topic = rd_kafka_topic_name(msg->rkt);
      r.partition = msg->partition;
      r.offset = msg->offset;
      if (msg->key)
        r.key.assign(static_cast<const char*>(msg->key), msg->key_len);
      if (msg->payload)
        r.value.assign(static_cast<const char*>(msg->payload), msg->len);
      rd_kafka_timestamp_type_t tstype;
      r.timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR
          && hdrs) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &size)
             == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          kafka_header h;
          h.name = name;
          if (val)
            h.value.assign(static_cast<const char*>(val), size);
          r.headers.push_back(std::move(h));
        }
      }
      rd_kafka_message_destroy(msg);
      out.push_back(std::move(r));
    }
    return out;
  }

  bool commit(std::string& err) override {
    // Commits the offsets stored for every record poll() returned
    // (enable.auto.offset.store stays on), synchronously.
    auto rc = rd_kafka_commit(rk_, nullptr, 0);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR || rc == RD_KAFKA_RESP_ERR__NO_OFFSET)
      return true;
    err = std::string{"commit: "} + rd_kafka_err2str(rc);
    return false;
  }

private:
  rd_kafka_t* rk_ = nullptr;
};

} // namespace

std::unique_ptr<kafka_producer>
kafka_producer::create(const std::string& bootstrap, std::string& err,
                       const kafka_properties& extra) {
  auto p = std::make_unique<producer_impl>(bootstrap, extra);
  if (!p->open(err))
    return nullptr;
  return p;
}

std::unique_ptr<kafka_consumer>
kafka_consumer::create_at_offsets(const std::string& bootstrap,
                                  const std::string& topic,
                                  const std::map<int32_t, int64_t>& start_offsets,
                                  std::string& err,
                                  const kafka_properties& extra) {
  auto c = std::make_unique<consumer_impl>();
  if (!c->open_assigned(bootstrap, topic, start_offsets, extra, err))
    return nullptr;
  return c;
}

std::unique_ptr<kafka_consumer>
kafka_consumer::create(const std::string& bootstrap, const std::string& group_id,
                       const std::vector<std::string>& topics,
                       bool from_beginning, std::string& err,
                       const kafka_properties& extra) {
  auto c = std::make_unique<consumer_impl>();
  if (!c->open(bootstrap, group_id, topics, from_beginning, extra, err))
    return nullptr;
  return c;
}

namespace {

/// The ends of one topic's partitions, retrying until `give_up`.
topic_ends ends_of(rd_kafka_t* rk, const std::string& topic,
                   clock_type::time_point give_up) {
  topic_ends out;
  auto retry = [&](rd_kafka_resp_err_t rc) {
    if (clock_type::now() >= give_up) {
      out.error = rd_kafka_err2str(rc);
      return false;
    }
    ::usleep(200'000);
    return true;
  };
  std::vector<int32_t> ids;
  for (;;) {
    auto rc = topic_partitions(rk, topic, ids);
    if (rc == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
        || rc == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
      return out;
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!retry(rc))
        return out;
      continue;
    }
    for (auto id : ids) {
      int64_t lo = 0;
      int64_t hi = 0;
      auto w = rd_kafka_query_watermark_offsets(rk, topic.c_str(), id, &lo,
                                                &hi, 5000);
      while (w != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!retry(w)) {
          out.partitions.clear();
          return out;
        }
        w = rd_kafka_query_watermark_offsets(rk, topic.c_str(), id, &lo, &hi,
                                             2000);
      }
      out.partitions[id] = hi;
    }
    return out;
  }
}

} // namespace

std::map<std::string, topic_ends>
query_topic_ends(const std::string& bootstrap,
                 const std::vector<std::string>& topics,
                 std::chrono::milliseconds retry_for) {
  std::map<std::string, topic_ends> out;
  auto fail_all = [&](const std::string& why) {
    for (auto& t : topics)
      out[t].error = why;
    return out;
  };
  char errstr[512];
  auto* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr,
                        sizeof errstr)
        != RD_KAFKA_CONF_OK
      || rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr)
           != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return fail_all(errstr);
  }
  // On success rd_kafka_new owns conf; on failure it stays ours.
  auto* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return fail_all(errstr);
  }
  auto give_up = clock_type::now() + retry_for;
  for (auto& t : topics)
    out[t] = ends_of(rk, t, give_up);
  rd_kafka_destroy(rk);
  return out;
}

} // namespace vantage
