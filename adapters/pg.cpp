#include "adapters/pg.hpp"

#include <algorithm>
#include <optional>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <new>
#include <sstream>

#include <libpq-fe.h>

#include "adapters/config.hpp"

// libpq's public names are typedefs of these incomplete structs; the header
// forward-declares them so that callers need not include libpq-fe.h.
static_assert(std::is_same_v<PGconn, pg_conn>);
static_assert(std::is_same_v<PGresult, pg_result>);

namespace vantage {

// -- pg_rows ------------------------------------------------------------------

pg_rows::pg_rows(pg_result* res) : res_(res) {
  // nop
}

pg_rows::pg_rows(pg_rows&& other) noexcept : res_(other.res_) {
  other.res_ = nullptr;
}

pg_rows& pg_rows::operator=(pg_rows&& other) noexcept {
  std::swap(res_, other.res_);
  return *this;
}

pg_rows::~pg_rows() {
  if (res_ != nullptr)
    PQclear(res_);
}

int pg_rows::size() const {
  return res_ != nullptr ? PQntuples(res_) : 0;
}

bool pg_rows::is_null(int row, int col) const {
  return PQgetisnull(res_, row, col) != 0;
}

std::string_view pg_rows::text(int row, int col) const {
  return {PQgetvalue(res_, row, col),
          static_cast<size_t>(PQgetlength(res_, row, col))};
}

int64_t pg_rows::i64(int row, int col) const {
  return is_null(row, col) ? 0 : std::strtoll(PQgetvalue(res_, row, col),
                                              nullptr, 10);
}

bool pg_rows::boolean(int row, int col) const {
  auto t = text(row, col);
  return !t.empty() && t[0] == 't';
}

int64_t pg_rows::affected() const {
  const char* n = res_ != nullptr ? PQcmdTuples(res_) : "";
  return *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
}

pg_rows pg_rows::with_value(int row, int col, const std::string& text) const {
  PGresult* copy = PQcopyResult(res_, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
  if (copy == nullptr
      || PQsetvalue(copy, row, col, const_cast<char*>(text.c_str()),
                    static_cast<int>(text.size()))
           == 0) {
    if (copy != nullptr)
      PQclear(copy);
    throw std::bad_alloc();
  }
  return pg_rows{copy};
}

pg_rows pg_rows::without_rows() const {
  PGresult* copy = PQcopyResult(res_, PG_COPYRES_ATTRS);
  if (copy == nullptr)
    throw std::bad_alloc();
  return pg_rows{copy};
}

// -- pg_connection --------------------------------------------------------------

pg_connection::pg_connection(std::string url, int timeout_ms,
                             std::string settings)
  : url_(std::move(url)), timeout_ms_(timeout_ms),
    settings_(std::move(settings)) {
  // nop
}

pg_connection::~pg_connection() {
  reset();
}

void pg_connection::reset() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  prepared_.clear();
}

void pg_connection::ensure_connected() {
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK)
    return;
  reset();
  auto timeout_s = std::to_string(std::max(1, (timeout_ms_ + 999) / 1000));
  auto session_options = "-c statement_timeout=" + std::to_string(timeout_ms_)
                           + " -c client_min_messages=warning";
  if (!settings_.empty())
    session_options += " " + settings_;
  const char* keys[] = {"dbname", "connect_timeout", "options",
                        "application_name", nullptr};
  const char* vals[] = {url_.c_str(), timeout_s.c_str(),
                        session_options.c_str(), "vantage", nullptr};
  // expand_dbname=1 lets the URI in "dbname" carry host, port and user.
  conn_ = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = "postgres connect failed: ";
    msg += PQerrorMessage(conn_);
    reset();
    throw pg_error(msg, "08006", true);
  }
}

void pg_connection::rollback() noexcept {
  if (conn_ == nullptr)
    return;
  if (auto* res = PQexec(conn_, "ROLLBACK"))
    PQclear(res);
}

pg_rows pg_connection::check(pg_result* res) {
  auto status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return pg_rows{res};
  std::string msg = res != nullptr ? PQresultErrorMessage(res) : "";
  if (msg.empty() && conn_ != nullptr)
    msg = PQerrorMessage(conn_);
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                                     : nullptr;
  std::string sqlstate = state != nullptr ? state : "";
  if (res != nullptr)
    PQclear(res);
  bool lost = conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK
              || sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01"
              || sqlstate == "57P02" || sqlstate == "57P03";
  if (lost)
    reset();
  // 57014: statement_timeout fired; treat like an unreachable server.
  if (sqlstate == "57014")
    lost = true;
  throw pg_error(msg, sqlstate, lost);
}

pg_rows pg_connection::exec(const char* name, const char* sql,
                            const std::vector<pg_param>& params) {
  ensure_connected();
  if (std::find(prepared_.begin(), prepared_.end(), name) == prepared_.end()) {
    check(PQprepare(conn_, name, sql, 0, nullptr));
    prepared_.emplace_back(name);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (auto& p : params)
    values.push_back(p ? p->c_str() : nullptr);
  return check(PQexecPrepared(conn_, name, static_cast<int>(values.size()),
                              values.data(), nullptr, nullptr, 0));
}

std::vector<pg_rows>
pg_connection::exec_atomic(const std::vector<const statement*>& batch) {
  ensure_connected();
  if (PQenterPipelineMode(conn_) != 1)
    throw pg_error("cannot enter pipeline mode", "", false);
  // One entry per result to read: the statement name when the result is
  // a Parse (prepare), empty for an execution; and the batch index of the
  // statement each result belongs to.
  std::vector<std::string> preparing;
  std::vector<int> owner;
  std::vector<std::string> newly_prepared;
  auto fail_send = [&] {
    std::string msg = PQerrorMessage(conn_);
    reset();
    throw pg_error("pipeline send failed: " + msg, "08006", true);
  };
  for (int index = 0; index < static_cast<int>(batch.size()); ++index) {
    auto& st = *batch[static_cast<size_t>(index)];
    bool known = std::find(prepared_.begin(), prepared_.end(), st.name)
                   != prepared_.end()
                 || std::find(newly_prepared.begin(), newly_prepared.end(),
                              st.name)
                      != newly_prepared.end();
    if (!known) {
      if (PQsendPrepare(conn_, st.name, st.sql, 0, nullptr) != 1)
        fail_send();
      newly_prepared.emplace_back(st.name);
      preparing.emplace_back(st.name);
      owner.push_back(index);
    }
    std::vector<const char*> values;
    for (auto& p : st.params)
      values.push_back(p ? p->c_str() : nullptr);
    if (PQsendQueryPrepared(conn_, st.name, static_cast<int>(values.size()),
                            values.data(), nullptr, nullptr, 0)
        != 1)
      fail_send();
    preparing.emplace_back();
    owner.push_back(index);
  }
  if (PQpipelineSync(conn_) != 1)
    fail_send();
  // Read every result up to the Sync, remembering the first error; the
  // server skips the rest after an error and rolls the batch back.
  std::vector<pg_rows> out;
  std::optional<pg_error> first_error;
  for (size_t i = 0; i < preparing.size(); ++i) {
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) {
      fail_send();
    }
    auto status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      if (preparing[i].empty()) {
        out.emplace_back(res);
      } else {
        // Parse is not transactional: the statement exists from now on.
        prepared_.push_back(preparing[i]);
        PQclear(res);
      }
    } else if (status == PGRES_PIPELINE_ABORTED) {
      PQclear(res);
    } else if (!first_error) {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      first_error.emplace(PQresultErrorMessage(res), state ? state : "",
                          false);
      first_error->statement = owner[i];
      PQclear(res);
    } else {
      PQclear(res);
    }
    // Each query's results end with a NULL.
    while (PGresult* extra = PQgetResult(conn_))
      PQclear(extra);
  }
  PGresult* sync = PQgetResult(conn_);
  bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (sync != nullptr)
    PQclear(sync);
  if (!synced || PQexitPipelineMode(conn_) != 1) {
    reset();
    throw pg_error("pipeline did not complete", "08006", true);
  }
  if (first_error) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      reset();
      first_error->connection_lost = true;
    }
    throw *first_error;
  }
  return out;
}

pg_rows pg_connection::exec_simple(const std::string& sql) {
  ensure_connected();
  return check(PQexec(conn_, sql.c_str()));
}

// -- migrations -------------------------------------------------------------------

std::string default_migrations_dir() {
  return env_or("VANTAGE_MIGRATIONS_DIR",
                std::string{VANTAGE_SOURCE_DIR} + "/migrations");
}

std::vector<std::string> apply_migrations(pg_connection& c,
                                          const std::string& dir) {
  std::vector<std::string> files;
  if (auto* d = opendir(dir.c_str())) {
    while (auto* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 4 && n.compare(n.size() - 4, 4, ".sql") == 0)
        files.push_back(n);
    }
    closedir(d);
  } else {
    throw pg_error("cannot open migrations dir " + dir, "", false);
  }
  std::sort(files.begin(), files.end());
  c.exec_simple("CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version TEXT PRIMARY KEY,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
  std::vector<std::string> applied;
  // Session-level lock: a second migrator waits here rather than racing.
  c.exec_simple("SELECT pg_advisory_lock(7261001)");
  try {
    for (auto& f : files) {
      auto version = f.substr(0, f.size() - 4);
      auto seen = c.exec("mig_seen",
                         "SELECT 1 FROM schema_migrations WHERE version = $1",
                         {version});
      if (!seen.empty())
        continue;
      std::ifstream in{dir + "/" + f};
      std::stringstream ss;
      ss << in.rdbuf();
      in_transaction(c, [&] {
        c.exec_simple(ss.str());
        c.exec("mig_record",
               "INSERT INTO schema_migrations(version) VALUES ($1)",
               {version});
      });
      applied.push_back(version);
    }
  } catch (...) {
    c.exec_simple("SELECT pg_advisory_unlock(7261001)");
    throw;
  }
  c.exec_simple("SELECT pg_advisory_unlock(7261001)");
  return applied;
}

} // namespace vantage
