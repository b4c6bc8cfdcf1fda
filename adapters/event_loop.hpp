#pragma once

// What an event loop (the HTTP front's, gateway/http_front.cpp) lends a
// client that talks to another server from it without ever blocking it:
// readiness of the client's socket, a regular tick for its deadlines, and
// a place to keep the client for as long as the loop lives. Adapters see
// only this, never the front.

#include <chrono>
#include <cstdint>
#include <memory>

namespace vantage {

/// A client's side of a watched socket. Called on the loop's thread only.
class loop_watcher {
public:
  virtual ~loop_watcher() = default;
  /// The socket is ready: `events` are epoll's (EPOLLIN, EPOLLOUT,
  /// EPOLLERR, EPOLLHUP...).
  virtual void on_ready(uint32_t events) = 0;
  /// Called about every 100 ms while watched: time out what waits too long.
  virtual void on_tick(std::chrono::steady_clock::time_point now) = 0;
};

/// The loop's side. Every call only on the loop's own thread.
class loop_io {
public:
  virtual ~loop_io() = default;
  /// Polls `fd` for reading, and also for writing while `want_write`
  /// (level-triggered); calling again for the same fd changes the
  /// interest. `w` must stay valid until `unwatch(fd)`. False when the
  /// loop cannot poll it (the client then treats its socket as failed).
  virtual bool watch(int fd, bool want_write, loop_watcher* w) = 0;
  /// Stops polling `fd`; call it before closing the fd.
  virtual void unwatch(int fd) = 0;
  /// The loop-local object stored under `key` (empty until set). The loop
  /// destroys what it holds on its own thread when it ends, while watching
  /// still works, so a client's destructor may call `unwatch`.
  virtual std::shared_ptr<void>& local(const void* key) = 0;
};

} // namespace vantage
