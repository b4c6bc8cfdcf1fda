#pragma once

// `--record FILE`: writes live gateway traffic as a replayable scenario
// (format: scenarios/README.md).

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vantage {

/// One HTTP request/response pair as the gateway saw it.
struct recorded_exchange {
  std::string method, path;
  std::vector<std::pair<std::string, std::string>> request_headers;
  std::string request_body;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> response_headers;
  std::string response_body;
};

/// Turns exchanges into scenario steps:
/// - `Authorization: Bearer <JWT>` becomes an `auth` block with the token's
///   claims (payload decoded, not verified), so replay mints a fresh token;
/// - string fields of a response whose key ends in `_id` or `_token` (except
///   `request_id`), whose value the client had not sent itself, become
///   captures `<key>_<n>`; later occurrences of the value in request paths,
///   headers and bodies (and in expectations) become `{{<key>_<n>}}`;
/// - expectations are the status plus the response's JSON fields as a
///   partial match, skipping ids/tokens, `*_at` timestamps and `request_id`
///   at every level;
/// - hop-by-hop and client-identity headers are dropped.
class traffic_recorder {
public:
  explicit traffic_recorder(std::string path, std::string scenario_name);
  ~traffic_recorder();
  traffic_recorder(const traffic_recorder&) = delete;
  traffic_recorder& operator=(const traffic_recorder&) = delete;

  /// Appends one step and rewrites the whole file atomically (temp file +
  /// rename), so a crash leaves a valid scenario. Thread-safe. Never throws;
  /// write errors go to stderr.
  void record(const recorded_exchange& x);

  /// The scenario document as it stands (what the file holds).
  std::string scenario_json() const;

  /// Number of steps recorded so far.
  size_t size() const;

private:
  struct state;
  std::unique_ptr<state> st_;
};

} // namespace vantage
