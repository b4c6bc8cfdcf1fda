#include "actors/io_pool.hpp"

#include <chrono>
#include <deque>
#include <memory>
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
} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::db_reply)

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

} // namespace

caf::actor spawn_io_pool(caf::actor_system& sys, const io_pool_options& opts) {
  std::vector<caf::actor> workers;
  for (int i = 0; i < opts.workers; ++i)
    workers.push_back(sys.spawn<caf::detached>(io_worker, opts.database_url,
                                               opts.timeout_ms));
  return sys.spawn(pool_actor<db_task>, std::move(workers), opts.queue_limit,
                   opts.timeout_ms, std::string{"database"});
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
