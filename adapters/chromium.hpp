#pragma once

// One headless Chromium process driven over the DevTools protocol on
// --remote-debugging-pipe: Chromium reads NUL-terminated JSON commands on
// its fd 3 and writes NUL-terminated JSON replies and events on its fd 4.
// No websocket, no port: nothing else on the machine can talk to it.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace vantage {

struct chromium_options {
  /// VANTAGE_CHROMIUM (/usr/bin/chromium).
  std::string executable = "/usr/bin/chromium";
  /// Parent folder of each browser's fresh --user-data-dir (removed when
  /// the browser ends).
  std::string profile_root = "/tmp";
  /// Appended to the built-in flags.
  std::vector<std::string> extra_flags;
};

/// The flags every browser starts with: headless, no network of its own
/// (background services, sync, updates and QUIC off), no sandbox (we run
/// as root in a container-like VM), DevTools over the pipe.
std::vector<std::string> chromium_flags(const chromium_options& opts,
                                        const std::string& profile_dir);

/// A running Chromium and its pipe. A reader thread hands every complete
/// message to `on_message` and calls `on_exit` once when the pipe closes
/// (the browser died or was killed). Both run on the reader thread.
class chromium_process {
public:
  using message_fn = std::function<void(std::string)>;
  using exit_fn = std::function<void()>;

  /// Starts the browser; nullptr with `err` set when it cannot start.
  static std::unique_ptr<chromium_process>
  launch(const chromium_options& opts, message_fn on_message, exit_fn on_exit,
         std::string& err);

  /// Kills the whole process group, reaps it, joins the reader and removes
  /// the profile folder.
  ~chromium_process();

  chromium_process(const chromium_process&) = delete;
  chromium_process& operator=(const chromium_process&) = delete;

  /// Writes one message (a NUL is appended). Thread-safe; false once the
  /// browser is gone.
  bool send(std::string_view json);

  /// The browser's main process; its process group holds its children.
  pid_t pid() const {
    return pid_;
  }

  /// SIGKILL to the process group (the reader then sees the pipe close).
  void kill_now();

  /// Proportional set size of the browser's processes (its process group),
  /// from /proc/<pid>/smaps_rollup; 0 when unreadable.
  int64_t pss_bytes() const;

private:
  chromium_process() = default;
  void read_loop(message_fn on_message, exit_fn on_exit);

  pid_t pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string profile_dir_;
  std::mutex write_mtx_;
  std::thread reader_;
  std::atomic<bool> killed_{false};
};

/// One line of /proc/<pid>/stat, the fields we use.
struct process_info {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  char state = '?';
  std::string comm;
};

/// A snapshot of every process (/proc).
std::vector<process_info> list_processes();

/// PSS of every process in process group `pgid`, in bytes.
int64_t process_group_pss_bytes(pid_t pgid);

} // namespace vantage
