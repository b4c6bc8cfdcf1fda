#pragma once

// A bounded pool of detached I/O workers, each owning one PostgreSQL
// connection. Jobs queue in the pool actor (FIFO, bounded, with a deadline)
// and go to whichever worker is idle, so a slow query occupies one worker and
// never stalls the cooperative scheduler or unrelated requests.

#include <functional>
#include <string>

#include <caf/all.hpp>

#include "adapters/pg.hpp"
#include "messages/errors.hpp"

namespace vantage {

/// A unit of blocking database work. It runs on a worker thread with that
/// worker's connection; exceptions are turned into errors by the worker.
struct db_task {
  std::function<caf::expected<caf::message>(pg_connection&)> run;
};

/// A unit of blocking work that needs no database connection (file and
/// HTTP I/O of the renderer); exceptions become errors.
struct blocking_task {
  std::function<caf::expected<caf::message>()> run;
};

/// One atomic write for the group committer: statements that commit
/// together or not at all. The committer may put several writes into one
/// transaction; a write never sees another's failure.
struct atomic_write {
  std::vector<pg_connection::statement> statements;
  /// Makes the reply from this write's results, one per statement, after
  /// the commit (on the committer's thread).
  std::function<caf::expected<caf::message>(std::vector<pg_rows>&)> done;
  /// Maps a failure of one of this write's own statements to its answer;
  /// none (or no function) means the usual mapping, to_error.
  std::function<caf::error(const pg_error&)> refused;
};

} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::db_task)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::atomic_write)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::blocking_task)

namespace vantage {

struct io_pool_options {
  std::string database_url;
  int workers = 8;
  int queue_limit = 2048;
  /// Connect/statement timeout and the longest a job may wait in the queue.
  int timeout_ms = 2000;
};

/// Spawns the pool and its workers. Send it `db_task` as a request; the
/// reply is the job's message or an error (errc::unavailable when the
/// database is unreachable or the queue is full).
caf::actor spawn_io_pool(caf::actor_system& sys, const io_pool_options& opts);

/// Wraps a typed job: the result `T` becomes the reply message.
template <class T, class F>
db_task make_db_task(F fn) {
  return db_task{[fn = std::move(fn)](pg_connection& c)
                   -> caf::expected<caf::message> {
    caf::expected<T> r = fn(c);
    if (!r)
      return std::move(r.error());
    return caf::make_message(std::move(*r));
  }};
}

/// Spawns a pool of `workers` detached threads for blocking_task jobs, with
/// the same FIFO queue, bound and deadline as the database pool.
caf::actor spawn_blocking_pool(caf::actor_system& sys, int workers,
                               int queue_limit, int max_wait_ms);

/// Wraps a typed blocking job: the result `T` becomes the reply message.
template <class T, class F>
blocking_task make_blocking_task(F fn) {
  return blocking_task{[fn = std::move(fn)]() -> caf::expected<caf::message> {
    caf::expected<T> r = fn();
    if (!r)
      return std::move(r.error());
    return caf::make_message(std::move(*r));
  }};
}

struct write_committer_options {
  std::string database_url;
  /// Connect/statement timeout and the longest a write may wait its turn.
  int timeout_ms = 2000;
  /// Writes in one transaction at most.
  int max_batch = 128;
  int queue_limit = 4096;
  /// Called on the committer after each transaction with its write count,
  /// its time on the database connection and the longest any of its writes
  /// waited in the queue before it started (seconds); for /metrics.
  std::function<void(size_t writes, double run_s, double wait_s)> observe;
};

/// Spawns the group committer: send it `atomic_write` as a request. It owns
/// one connection and runs one transaction at a time; the writes that
/// arrive meanwhile go into the next one together. Under load many writes
/// then share one round trip, one commit and one WAL flush, and at low
/// load a write waits for nothing. A write whose own statement fails is
/// answered with its error and the others are committed without it. One
/// transaction at a time also means two batches can never deadlock on
/// each other's rows. The reply is the write's `done` message or an error
/// (errc::unavailable when the database is unreachable or the queue full).
/// Every write is answered within about `timeout_ms` of its turn (a
/// transaction the database does not answer in time fails its writes), so
/// callers send untimed requests (`write_timeout`): one watchdog timer
/// for all transactions instead of one per write.
caf::actor spawn_write_committer(caf::actor_system& sys,
                                 const write_committer_options& opts);

/// The timeout of a request to the committer: none, it keeps its own.
constexpr auto write_timeout = caf::infinite;

/// Wraps a typed write: `done(results)` returns the reply `T`.
template <class T, class Done>
atomic_write make_atomic_write(std::vector<pg_connection::statement> stmts,
                               Done done) {
  return atomic_write{std::move(stmts),
                      [done = std::move(done)](std::vector<pg_rows>& rows)
                        -> caf::expected<caf::message> {
                        caf::expected<T> r = done(rows);
                        if (!r)
                          return std::move(r.error());
                        return caf::make_message(std::move(*r));
                      },
                      nullptr};
}

/// A write whose callers only need to know that it committed.
inline atomic_write
make_atomic_write(std::vector<pg_connection::statement> stmts) {
  return make_atomic_write<bool>(
    std::move(stmts),
    [](std::vector<pg_rows>&) -> caf::expected<bool> { return true; });
}

/// Maps a database exception to a domain error (used by workers and tests).
caf::error to_error(const pg_error& e);

} // namespace vantage
