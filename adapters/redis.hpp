#pragma once

#include <memory>
#include <string>

struct redisContext;

namespace vantage {

/// Host and port of `url` (redis://host:port[/db]; the port stays as given
/// when the URL has none).
void parse_redis_url(const std::string& url, std::string& host, int& port);

/// A synchronous hiredis connection for one thread at a time. Reconnects on
/// demand; every call is bounded by the timeout so an outage fails fast.
class redis_connection {
public:
  /// `url` is redis://host:port.
  redis_connection(std::string url, int timeout_ms);
  ~redis_connection();
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  /// PING; false (and `err`) when Redis is unreachable.
  bool ping(std::string& err);

private:
  bool ensure_connected(std::string& err);
  void reset();

  std::string host_;
  int port_ = 6379;
  int timeout_ms_;
  redisContext* ctx_ = nullptr;
};

} // namespace vantage
