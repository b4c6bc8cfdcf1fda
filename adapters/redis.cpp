#include "adapters/redis.hpp"

#include <hiredis/hiredis.h>

namespace vantage {

void parse_redis_url(const std::string& url, std::string& host, int& port) {
  auto rest = url.rfind("redis://", 0) == 0 ? url.substr(8) : url;
  auto slash = rest.find('/');
  if (slash != std::string::npos)
    rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (colon != std::string::npos)
    port = std::stoi(rest.substr(colon + 1));
}

redis_connection::redis_connection(std::string url, int timeout_ms)
  : timeout_ms_(timeout_ms) {
  parse_redis_url(url, host_, port_);
}

redis_connection::~redis_connection() {
  reset();
}

void redis_connection::reset() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

bool redis_connection::ensure_connected(std::string& err) {
  if (ctx_ != nullptr && ctx_->err == 0)
    return true;
  reset();
  timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  ctx_ = redisConnectWithTimeout(host_.c_str(), port_, tv);
  if (ctx_ == nullptr || ctx_->err != 0) {
    err = ctx_ != nullptr ? ctx_->errstr : "redis: out of memory";
    reset();
    return false;
  }
  redisSetTimeout(ctx_, tv);
  return true;
}

bool redis_connection::ping(std::string& err) {
  if (!ensure_connected(err))
    return false;
  auto* reply = static_cast<redisReply*>(redisCommand(ctx_, "PING"));
  if (reply == nullptr) {
    err = ctx_->errstr;
    reset();
    return false;
  }
  bool ok = reply->type == REDIS_REPLY_STATUS;
  if (!ok)
    err = "unexpected PING reply";
  freeReplyObject(reply);
  return ok;
}

} // namespace vantage
