#include "actors/io_pool.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string_view>
#include <tuple>
#include <vector>

#include "adapters/log.hpp"
#include "messages/type_ids.hpp"

namespace vantage {

caf::error to_error(const pg_error& e) {
  if (e.connection_lost)
    return make_error(errc::unavailable, "database unavailable");
  if (e.sqlstate == "40001")
    return make_error(errc::conflict,
                      "The resource changed concurrently; retry the request");
  if (e.sqlstate == "23505")
    return make_error(errc::conflict, "already exists");
  if (e.sqlstate == "23503")
    return make_error(errc::not_found, "referenced record does not exist");
  log_event(log_level::error, "postgres", e.what(),
            "\"sqlstate\":\"" + e.sqlstate + "\"");
  return make_error(errc::internal, "database error");
}

namespace {

using steady = std::chrono::steady_clock;

/// A worker's answer. Wrapped because a handler for `caf::message` would only
/// match a message holding a message, not any reply.
struct db_reply {
  caf::message content;
};

} // namespace
/// The writes of one group-commit transaction, and their answers in order.
struct write_batch {
  std::vector<atomic_write> writes;
};
struct write_outcomes {
  std::vector<caf::expected<caf::message>> answers;
  /// Time the transaction took on the worker's connection.
  double run_s = 0;
};

} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::db_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::write_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::write_outcomes)

namespace vantage {
namespace {

struct worker_state {
  std::unique_ptr<pg_connection> conn;
  static inline const char* name = "io_worker";
};

caf::behavior io_worker(caf::stateful_actor<worker_state>* self,
                        std::string url, int timeout_ms) {
  self->state.conn = std::make_unique<pg_connection>(std::move(url),
                                                     timeout_ms);
  return {
    [=](db_task& task) -> caf::result<db_reply> {
      try {
        auto r = task.run(*self->state.conn);
        if (!r)
          return std::move(r.error());
        return db_reply{std::move(*r)};
      } catch (const pg_error& e) {
        return to_error(e);
      } catch (const std::exception& e) {
        log_event(log_level::error, "io_worker", e.what());
        return make_error(errc::internal, "internal error");
      }
    },
  };
}

template <class Task>
struct pending_job {
  caf::response_promise promise;
  Task task;
  steady::time_point enqueued;
};

/// The queueing half shared by the database pool and the blocking pool:
/// FIFO, bounded, with a deadline, handing each job to an idle worker.
template <class Task>
struct pool_state {
  std::vector<caf::actor> idle;
  std::deque<pending_job<Task>> queue;
  int queue_limit = 0;
  std::chrono::milliseconds max_wait{0};
  std::string what;
  static inline const char* name = "io_pool";
};

template <class Task>
void dispatch(caf::stateful_actor<pool_state<Task>>* self, caf::actor worker,
              caf::response_promise rp, Task task) {
  self->request(worker, caf::infinite, std::move(task))
    .then(
      [=](db_reply& reply) mutable {
        rp.deliver(std::move(reply.content));
        self->send(self, atom::idle_v, worker);
      },
      [=](caf::error& err) mutable {
        rp.deliver(std::move(err));
        self->send(self, atom::idle_v, worker);
      });
}

template <class Task>
caf::behavior pool_actor(caf::stateful_actor<pool_state<Task>>* self,
                         std::vector<caf::actor> workers, int queue_limit,
                         int max_wait_ms, std::string what) {
  auto& st = self->state;
  st.queue_limit = queue_limit;
  st.max_wait = std::chrono::milliseconds{max_wait_ms};
  st.what = std::move(what);
  for (auto& w : workers) {
    self->link_to(w);
    st.idle.push_back(w);
  }
  return {
    [=](Task& task) -> caf::response_promise {
      auto rp = self->make_response_promise();
      auto& st = self->state;
      if (!st.idle.empty()) {
        auto w = st.idle.back();
        st.idle.pop_back();
        dispatch(self, w, rp, std::move(task));
      } else if (static_cast<int>(st.queue.size()) >= st.queue_limit) {
        rp.deliver(make_error(errc::unavailable, st.what + " queue full"));
      } else {
        st.queue.push_back({rp, std::move(task), steady::now()});
      }
      return rp;
    },
    [=](atom::idle, caf::actor& worker) {
      auto& st = self->state;
      auto now = steady::now();
      while (!st.queue.empty()) {
        auto job = std::move(st.queue.front());
        st.queue.pop_front();
        if (now - job.enqueued > st.max_wait) {
          job.promise.deliver(
            make_error(errc::unavailable, st.what + " busy (queue wait)"));
          continue;
        }
        dispatch(self, worker, job.promise, std::move(job.task));
        return;
      }
      st.idle.push_back(std::move(worker));
    },
  };
}

caf::behavior blocking_worker(caf::event_based_actor*) {
  return {
    [=](blocking_task& task) -> caf::result<db_reply> {
      try {
        auto r = task.run();
        if (!r)
          return std::move(r.error());
        return db_reply{std::move(*r)};
      } catch (const std::exception& e) {
        log_event(log_level::error, "blocking_worker", e.what());
        return make_error(errc::internal, "internal error");
      }
    },
  };
}

// -- group commit ------------------------------------------------------------

caf::error refusal(const atomic_write& w, const pg_error& e) {
  if (w.refused)
    if (auto err = w.refused(e))
      return err;
  return to_error(e);
}

caf::expected<caf::message> settle(atomic_write& w, std::vector<pg_rows>& rows) {
  if (!w.done)
    return caf::make_message(atom::ok_v);
  try {
    return w.done(rows);
  } catch (const std::exception& e) {
    log_event(log_level::error, "write_committer", e.what());
    return make_error(errc::internal, "internal error");
  }
}

/// What one attempt of a group transaction runs: the writes' statements in
/// order, merged where they allow it (statement::merge_key), and for each
/// statement run, the writes it answers.
struct transaction_plan {
  std::vector<const pg_connection::statement*> run;
  /// Per statement run: the live writes (positions in `live`) it belongs
  /// to; more than one for a merged statement.
  std::vector<std::vector<size_t>> owners;
  /// Per live write, per own statement: the statement run that answers it.
  struct answer_source {
    size_t run_index = 0;
    bool merged = false;
    /// For a merged counter: what the writes after this one added.
    int64_t added_after = 0;
  };
  std::vector<std::vector<answer_source>> answered_by;
  /// The merged statements (the last one's parameters, the merged one
  /// combined); a deque keeps the addresses in `run` stable.
  std::deque<pg_connection::statement> merged;
};

using merge_kind = pg_connection::merge_kind;

const std::string& merge_param_of(const pg_connection::statement& st) {
  static const std::string none;
  auto& p = st.params.at(static_cast<size_t>(st.merge_param));
  return p ? *p : none;
}

/// The elements of a JSON array's text, without its brackets.
std::string_view array_elements(std::string_view array) {
  auto open = array.find('[');
  auto close = array.rfind(']');
  if (open == std::string_view::npos || close == std::string_view::npos
      || close <= open)
    return {};
  auto inner = array.substr(open + 1, close - open - 1);
  auto first = inner.find_first_not_of(" \t\r\n");
  return first == std::string_view::npos ? std::string_view{}
                                         : inner.substr(first);
}

transaction_plan plan_transaction(const std::vector<atomic_write>& writes,
                                  const std::vector<size_t>& live) {
  transaction_plan plan;
  plan.answered_by.resize(live.size());
  // Merged statements by name and key: the statement run, the combined
  // parameter so far, and its contributors (live position, own index, own
  // count for a sum).
  struct merge_group {
    size_t run_index = 0;
    int64_t total = 0;
    std::string rows;
    std::vector<std::tuple<size_t, size_t, int64_t>> parts;
  };
  std::map<std::pair<std::string, std::string>, merge_group> groups;
  for (size_t k = 0; k < live.size(); ++k) {
    auto& own = writes[live[k]].statements;
    plan.answered_by[k].resize(own.size());
    for (size_t j = 0; j < own.size(); ++j) {
      auto& st = own[j];
      if (st.merge == merge_kind::none || st.merge_key.empty()
          || st.merge_param < 0) {
        plan.answered_by[k][j] = {plan.run.size(), false, 0};
        plan.run.push_back(&st);
        plan.owners.push_back({k});
        continue;
      }
      auto [at, fresh] = groups.try_emplace(
        std::make_pair(std::string{st.name}, st.merge_key));
      auto& g = at->second;
      if (fresh) {
        g.run_index = plan.run.size();
        plan.run.push_back(nullptr); // filled in below
        plan.owners.emplace_back();
      }
      int64_t n = 0;
      if (st.merge == merge_kind::sum) {
        n = std::strtoll(merge_param_of(st).c_str(), nullptr, 10);
        g.total += n;
      } else if (auto rows = array_elements(merge_param_of(st));
                 !rows.empty()) {
        if (!g.rows.empty())
          g.rows += ',';
        g.rows.append(rows);
      }
      g.parts.emplace_back(k, j, n);
      auto& owners = plan.owners[g.run_index];
      if (owners.empty() || owners.back() != k)
        owners.push_back(k);
    }
  }
  for (auto& [key, g] : groups) {
    // The last write's parameters, as if each had run in turn.
    auto& last_part = g.parts.back();
    auto merged = writes[live[std::get<0>(last_part)]]
                    .statements[std::get<1>(last_part)];
    merged.params[static_cast<size_t>(merged.merge_param)]
      = merged.merge == merge_kind::sum ? std::to_string(g.total)
                                        : "[" + g.rows + "]";
    plan.merged.push_back(std::move(merged));
    plan.run[g.run_index] = &plan.merged.back();
    auto after = g.total;
    for (auto& [k, j, n] : g.parts) {
      after -= n;
      plan.answered_by[k][j] = {g.run_index, true, after};
    }
  }
  return plan;
}

/// Commits `writes` in one transaction. A write whose own statement fails
/// gets its refusal and the transaction runs again without it, so the
/// others commit as if each had run alone, in order. Merged statements
/// run once for all the writes that share them.
std::vector<caf::expected<caf::message>>
commit_together(pg_connection& c, std::vector<atomic_write>& writes) {
  std::vector<caf::expected<caf::message>> answers(
    writes.size(), caf::expected<caf::message>{caf::message{}});
  std::vector<size_t> live;
  for (size_t i = 0; i < writes.size(); ++i)
    live.push_back(i);
  while (!live.empty()) {
    auto plan = plan_transaction(writes, live);
    try {
      auto rows = plan.run.empty() ? std::vector<pg_rows>{}
                                   : c.exec_atomic(plan.run);
      for (size_t k = 0; k < live.size(); ++k) {
        std::vector<pg_rows> own;
        for (auto& source : plan.answered_by[k]) {
          auto& rows_run = rows[source.run_index];
          if (!source.merged) {
            own.push_back(std::move(rows_run));
            continue;
          }
          if (plan.run[source.run_index]->merge != merge_kind::sum) {
            own.push_back(rows_run.without_rows());
            continue;
          }
          // This write's counter: the total less what came after it.
          auto value = rows_run.i64(0, 0) - source.added_after;
          own.push_back(rows_run.with_value(0, 0, std::to_string(value)));
        }
        answers[live[k]] = settle(writes[live[k]], own);
      }
      return answers;
    } catch (const pg_error& e) {
      if (e.connection_lost || e.statement < 0
          || static_cast<size_t>(e.statement) >= plan.run.size()) {
        for (auto i : live)
          answers[i] = to_error(e);
        return answers;
      }
      // Every write the failed statement belongs to is refused; the rest
      // run again.
      auto& failed = plan.owners[static_cast<size_t>(e.statement)];
      std::vector<size_t> still;
      for (size_t k = 0; k < live.size(); ++k) {
        if (std::find(failed.begin(), failed.end(), k) != failed.end())
          answers[live[k]] = refusal(writes[live[k]], e);
        else
          still.push_back(live[k]);
      }
      live = std::move(still);
    }
  }
  return answers;
}

caf::behavior write_worker(caf::stateful_actor<worker_state>* self,
                           std::string url, int timeout_ms) {
  self->state.conn = std::make_unique<pg_connection>(std::move(url),
                                                     timeout_ms);
  return {
    [=](write_batch& batch) -> write_outcomes {
      auto started = steady::now();
      write_outcomes out;
      try {
        out.answers = commit_together(*self->state.conn, batch.writes);
      } catch (const std::exception& e) {
        log_event(log_level::error, "write_committer", e.what());
        out.answers.assign(batch.writes.size(),
                           make_error(errc::internal, "internal error"));
      }
      out.run_s = std::chrono::duration<double>(steady::now() - started).count();
      return out;
    },
  };
}

struct queued_write {
  caf::response_promise promise;
  atomic_write write;
  steady::time_point enqueued;
};

struct committer_state {
  caf::actor worker;
  std::deque<queued_write> queue;
  /// A transaction is running on the worker.
  bool busy = false;
  /// The callers of that transaction; null once its deadline has answered
  /// them (the worker may still be stuck on a connection that hangs).
  std::shared_ptr<std::vector<caf::response_promise>> in_flight;
  /// When the running transaction started.
  steady::time_point started;
  /// A watchdog tick is scheduled (at most one at a time).
  bool watchdog_armed = false;
  write_committer_options opts;
  static inline const char* name = "write_committer";
};

using committer_ptr = caf::stateful_actor<committer_state>*;

/// Answers `err` to the queued writes that have waited longer than the
/// timeout (the queue is in arrival order: they are its front).
void drop_overdue(committer_state& st, const caf::error& err) {
  auto max_wait = std::chrono::milliseconds{st.opts.timeout_ms};
  auto now = steady::now();
  while (!st.queue.empty() && now - st.queue.front().enqueued > max_wait) {
    st.queue.front().promise.deliver(err);
    st.queue.pop_front();
  }
}

void flush(committer_ptr self);

/// One watchdog for every transaction, not a timer each: under load a
/// transaction takes about a millisecond, and each timer would be a clock
/// entry, a wake-up of CAF's clock thread and a message.
void arm_watchdog(committer_ptr self, steady::duration delay) {
  auto& st = self->state;
  if (st.watchdog_armed)
    return;
  st.watchdog_armed = true;
  self->delayed_send(self, delay, atom::tick_v);
}

/// The worker's answer to a transaction: `deliver` answers its callers
/// unless its deadline already did; then the next transaction may start.
template <class Deliver>
void on_committed(committer_ptr self,
                  const std::shared_ptr<std::vector<caf::response_promise>>& promises,
                  Deliver deliver) {
  auto& st = self->state;
  if (st.in_flight == promises)
    deliver(*promises);
  st.in_flight = nullptr;
  st.busy = false;
  flush(self);
}

/// Sends everything queued (up to the batch limit) as the next transaction,
/// unless one is still running: then it goes when that one is done.
void flush(committer_ptr self) {
  auto& st = self->state;
  if (st.busy)
    return;
  drop_overdue(st, make_error(errc::unavailable, "database busy (queue wait)"));
  if (st.queue.empty())
    return;
  auto promises = std::make_shared<std::vector<caf::response_promise>>();
  write_batch batch;
  auto waited = std::chrono::duration<double>(steady::now()
                                              - st.queue.front().enqueued)
                  .count();
  while (!st.queue.empty()
         && batch.writes.size() < static_cast<size_t>(st.opts.max_batch)) {
    promises->push_back(std::move(st.queue.front().promise));
    batch.writes.push_back(std::move(st.queue.front().write));
    st.queue.pop_front();
  }
  st.busy = true;
  st.in_flight = promises;
  st.started = steady::now();
  arm_watchdog(self, std::chrono::milliseconds{st.opts.timeout_ms});
  self->request(st.worker, caf::infinite, std::move(batch))
    .then(
      [=](write_outcomes& out) {
        if (self->state.opts.observe)
          self->state.opts.observe(promises->size(), out.run_s, waited);
        on_committed(self, promises, [&](auto& rps) {
          for (size_t i = 0; i < rps.size(); ++i) {
            auto& answer = out.answers[i];
            if (answer)
              rps[i].deliver(std::move(*answer));
            else
              rps[i].deliver(std::move(answer.error()));
          }
        });
      },
      [=](caf::error& err) {
        on_committed(self, promises, [&](auto& rps) {
          for (auto& rp : rps)
            rp.deliver(err);
        });
      });
}

/// The watchdog: if the running transaction is past its deadline, its
/// callers hear that the database did not answer, and so do writes that
/// have waited as long behind it; while the worker stays stuck this
/// repeats. Otherwise it sleeps until the running one's deadline.
void on_watchdog(committer_ptr self) {
  auto& st = self->state;
  st.watchdog_armed = false;
  if (!st.busy)
    return;
  auto timeout = std::chrono::milliseconds{st.opts.timeout_ms};
  auto now = steady::now();
  if (now - st.started < timeout) {
    arm_watchdog(self, st.started + timeout - now);
    return;
  }
  auto unanswered = make_error(errc::unavailable, "database did not answer");
  if (st.in_flight) {
    for (auto& rp : *st.in_flight)
      rp.deliver(unanswered);
    st.in_flight = nullptr;
  }
  drop_overdue(st, unanswered);
  arm_watchdog(self, timeout);
}

caf::behavior write_committer(committer_ptr self, caf::actor worker,
                              write_committer_options opts) {
  self->state.worker = worker;
  self->state.opts = std::move(opts);
  self->link_to(worker);
  return {
    [=](atomic_write& w) -> caf::response_promise {
      auto rp = self->make_response_promise();
      auto& st = self->state;
      if (static_cast<int>(st.queue.size()) >= st.opts.queue_limit) {
        rp.deliver(make_error(errc::unavailable, "write queue full"));
        return rp;
      }
      st.queue.push_back({rp, std::move(w), steady::now()});
      flush(self);
      return rp;
    },
    [=](atom::tick) { on_watchdog(self); },
  };
}

} // namespace

caf::actor spawn_io_pool(caf::actor_system& sys, const io_pool_options& opts) {
  std::vector<caf::actor> workers;
  for (int i = 0; i < opts.workers; ++i)
    workers.push_back(sys.spawn<caf::detached>(io_worker, opts.database_url,
                                               opts.timeout_ms));
  return sys.spawn(pool_actor<db_task>, std::move(workers), opts.queue_limit,
                   opts.timeout_ms, std::string{"database"});
}

caf::actor spawn_write_committer(caf::actor_system& sys,
                                 const write_committer_options& opts) {
  auto worker = sys.spawn<caf::detached>(write_worker, opts.database_url,
                                         opts.timeout_ms);
  return sys.spawn(write_committer, worker, opts);
}

caf::actor spawn_blocking_pool(caf::actor_system& sys, int workers,
                               int queue_limit, int max_wait_ms) {
  std::vector<caf::actor> ws;
  for (int i = 0; i < workers; ++i)
    ws.push_back(sys.spawn<caf::detached>(blocking_worker));
  return sys.spawn(pool_actor<blocking_task>, std::move(ws), queue_limit,
                   max_wait_ms, std::string{"blocking pool"});
}

} // namespace vantage
