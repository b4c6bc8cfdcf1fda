#pragma once

// PostgreSQL through libpq. A pg_connection is used by one thread at a time
// (an I/O worker or the outbox relay); it prepares each named statement once
// per connection and reconnects after the server went away.

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace vantage {

/// A failed statement. `sqlstate` is the five-character SQLSTATE ("23505"
/// unique violation, "23503" foreign key); `connection_lost` means the server
/// is unreachable and the statement may be retried elsewhere.
class pg_error : public std::runtime_error {
public:
  pg_error(std::string msg, std::string sqlstate, bool connection_lost)
    : std::runtime_error(std::move(msg)),
      sqlstate(std::move(sqlstate)),
      connection_lost(connection_lost) {
    // nop
  }

  std::string sqlstate;
  bool connection_lost;
  /// In an atomic batch (exec_atomic): the index of the statement that
  /// failed; -1 when the failure is not one statement's.
  int statement = -1;
};

/// Owning handle of a PGresult.
class pg_rows {
public:
  explicit pg_rows(pg_result* res);
  pg_rows(pg_rows&&) noexcept;
  pg_rows& operator=(pg_rows&&) noexcept;
  ~pg_rows();

  int size() const;
  bool empty() const {
    return size() == 0;
  }
  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;
  std::string str(int row, int col) const {
    return std::string{text(row, col)};
  }
  int64_t i64(int row, int col) const;
  bool boolean(int row, int col) const;
  /// Rows affected by an INSERT/UPDATE/DELETE.
  int64_t affected() const;
  /// A copy of these rows with one value replaced by `text` (the answer
  /// of one of several writes that shared a merged statement).
  pg_rows with_value(int row, int col, const std::string& text) const;
  /// A copy of the columns without the rows.
  pg_rows without_rows() const;

private:
  pg_result* res_;
};

using pg_param = std::optional<std::string>;

class pg_connection {
public:
  /// `url` is a libpq connection URI; `timeout_ms` bounds connecting and
  /// each statement (statement_timeout), so an outage fails fast.
  /// `settings` are more server settings for the session, as in libpq's
  /// `options` ("-c name=value ..."), applied on every (re)connect.
  pg_connection(std::string url, int timeout_ms, std::string settings = {});
  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  /// Connects if needed. Throws pg_error (connection_lost) on failure.
  void ensure_connected();

  /// Drops the connection; the next call reconnects.
  void reset();

  /// Runs named prepared statement `name` (prepared from `sql` on first use
  /// on this connection) with text parameters. Throws pg_error.
  pg_rows exec(const char* name, const char* sql,
               const std::vector<pg_param>& params = {});

  /// Runs a plain SQL string (no parameters; may hold several statements).
  pg_rows exec_simple(const std::string& sql);

  /// How the group committer may merge the statements of one transaction
  /// that have the same name and the same non-empty `merge_key`: they run
  /// once, with the last one's parameters except `merge_param`, which
  /// combines theirs. A merged statement's failure is every merged write's
  /// failure.
  enum class merge_kind {
    none,
    /// An integer count added to a counter: `merge_param` is the sum, and
    /// the statement answers one row whose first column is the counter
    /// after the increment; each merged write is answered the value it
    /// would have seen alone.
    sum,
    /// Rows to insert, as a JSON array: `merge_param` is the arrays
    /// concatenated in order; each merged write is answered an empty
    /// result.
    json_array,
  };

  /// One statement of an atomic batch.
  struct statement {
    const char* name;
    const char* sql;
    std::vector<pg_param> params;
    std::string merge_key = {};
    int merge_param = -1;
    merge_kind merge = merge_kind::none;
  };

  /// Runs `batch` atomically in one network round trip: libpq pipeline
  /// mode sends every statement and a single Sync, and the server runs
  /// them as one implicit transaction (all or nothing). Returns each
  /// statement's rows; throws pg_error for the first failure.
  std::vector<pg_rows> exec_atomic(const std::vector<const statement*>& batch);

  void begin() {
    exec_simple("BEGIN");
  }
  void commit() {
    exec_simple("COMMIT");
  }
  /// Best effort; never throws.
  void rollback() noexcept;

private:
  pg_rows check(pg_result* res);

  std::string url_;
  int timeout_ms_;
  std::string settings_;
  pg_conn* conn_ = nullptr;
  std::vector<std::string> prepared_;
};

/// Runs `fn` inside BEGIN/COMMIT, rolling back on any exception (rethrown).
template <class F>
auto in_transaction(pg_connection& c, F&& fn) -> decltype(fn()) {
  c.begin();
  try {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      c.commit();
    } else {
      auto r = fn();
      c.commit();
      return r;
    }
  } catch (...) {
    c.rollback();
    throw;
  }
}

/// Applies every migrations/NNN_*.sql not yet in schema_migrations, in
/// order, each in its own transaction, under an advisory lock so that
/// concurrent migrators wait for each other. Returns the versions applied.
std::vector<std::string> apply_migrations(pg_connection& c,
                                          const std::string& dir);

/// Directory of the SQL migrations: VANTAGE_MIGRATIONS_DIR or the source
/// tree's migrations/.
std::string default_migrations_dir();

} // namespace vantage
