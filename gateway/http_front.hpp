#pragma once

// The gateway's HTTP/1.1 front: a few event loops (epoll, one per core by
// default) that own every connection, parse requests and write answers.
// No thread waits on a connection: a route either answers on its loop in
// continuation form, through the loop's CAF companion actor, or runs on a
// small blocking pool and hands its answer back.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/extend.hpp>
#include <caf/mixin/requester.hpp>
#include <httplib.h>

namespace vantage {

/// The actor through which a loop thread sends requests. CAF's companion
/// hands every message it receives to the loop (which runs it on its own
/// thread); the requester mixin adds `request(...).then(...)`.
class loop_actor
  : public caf::extend<caf::actor_companion, loop_actor>::with<
      caf::mixin::requester> {
public:
  using super = caf::extend<caf::actor_companion, loop_actor>::with<
    caf::mixin::requester>;

  explicit loop_actor(caf::actor_config& cfg) : super(cfg) {
    // nop
  }
};

class http_loop;
class loop_io;

/// One request and its answer. The front fills `req` (path decoded, query
/// parsed into params, remote_addr set); a route fills `res` and calls
/// `respond()` exactly once, from any thread.
struct http_exchange : std::enable_shared_from_this<http_exchange> {
  httplib::Request req;
  httplib::Response res;

  void respond();

  /// Runs `job` on the loop's thread once the events the loop is handling
  /// now are all handled: work of many requests can then go out as one
  /// batch. Only from the loop's thread.
  void defer(std::function<void()> job);

  /// Runs `on_expiry` on the loop's thread when `respond()` has not been
  /// called within `after` (looked at every 100 ms). Only from the loop's
  /// thread, once per request; routes in continuation form use it instead
  /// of timed actor requests.
  void expire_after(std::chrono::milliseconds after,
                    std::function<void()> on_expiry);

  /// The companion actor of the loop that received the request: routes in
  /// continuation form send their requests from it, and their answers run
  /// on that loop's thread. Only for use on that thread.
  loop_actor* self() const;

  /// The loop's socket watching and loop-local storage, for clients that
  /// talk to other servers from the loop without blocking it (the rate
  /// limiter's Redis pipeline). Only for use on that thread.
  loop_io& io() const;

  // -- owned by the front ----------------------------------------------------
  std::shared_ptr<http_loop> loop;
  uint64_t connection = 0;
  bool head = false;
  bool keep_alive = true;
  std::atomic<bool> responded{false};
  std::function<void()> on_expiry;
};

using exchange_ptr = std::shared_ptr<http_exchange>;

struct http_front_options {
  std::string bind = "127.0.0.1";
  /// 0 picks a free port.
  uint16_t port = 0;
  /// Event loops; 0 means one per core.
  int loops = 0;
  /// Threads for routes that block (each waits on one actor at a time).
  int blocking_threads = 16;
  size_t max_body_bytes = 64 * 1024;
  /// An idle keep-alive connection, or a request that does not arrive
  /// whole, is closed after this long.
  int idle_timeout_s = 10;
};

class http_front {
public:
  /// Called on a loop thread with each complete request.
  using dispatch_fn = std::function<void(exchange_ptr)>;
  /// Called on a loop thread for a request the front refuses itself
  /// (malformed, too large): `res.status` is set, the handler fills the
  /// rest. The connection closes after the answer.
  using refuse_fn = std::function<void(http_exchange&)>;

  http_front(caf::actor_system& sys, http_front_options opts,
             dispatch_fn dispatch, refuse_fn refuse);
  ~http_front();

  http_front(const http_front&) = delete;
  http_front& operator=(const http_front&) = delete;

  /// Binds, listens and starts the loops; false with `err` when the
  /// address cannot be bound.
  bool start(std::string& err);
  uint16_t port() const;
  /// Runs `job` on the blocking pool.
  void run_blocking(std::function<void()> job);
  /// Stops accepting, closes connections and joins every thread. Answers
  /// that arrive later are dropped.
  void stop();

  struct state;

private:
  std::unique_ptr<state> state_;
};

} // namespace vantage
