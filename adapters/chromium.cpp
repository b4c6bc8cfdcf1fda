#include "adapters/chromium.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace vantage {

std::vector<std::string> chromium_flags(const chromium_options& opts,
                                        const std::string& profile_dir) {
  std::vector<std::string> flags{
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    // Every page renders as if in front: without these a page that is not
    // the focused tab gets its timers and frames throttled (seen here: a
    // capture of a background tab took 3.7 s instead of 40 ms).
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    // No prelaunched spare renderer and none of the browser services a
    // headless card renderer never uses (each is a process or a thread).
    "--disable-features=SpareRendererForSitePerProcess,Translate,"
    "OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
    "--mute-audio",
    "--remote-debugging-pipe",
    "--user-data-dir=" + profile_dir,
  };
  flags.insert(flags.end(), opts.extra_flags.begin(), opts.extra_flags.end());
  flags.emplace_back("about:blank");
  return flags;
}

namespace {

/// A pipe fd moved to 10 or above, so that dup2 onto 3 and 4 in the child
/// can never clobber the other end (pipe() may hand out 3 or 4 itself).
int high_fd(int fd) {
  int hi = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return hi;
}

void ignore_sigpipe_once() {
  // A write to a browser that just died must fail with EPIPE, not kill the
  // node.
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

} // namespace

std::unique_ptr<chromium_process>
chromium_process::launch(const chromium_options& opts, message_fn on_message,
                         exit_fn on_exit, std::string& err) {
  ignore_sigpipe_once();
  std::error_code ec;
  std::filesystem::create_directories(opts.profile_root, ec);
  std::string tmpl = opts.profile_root + "/vantage-chromium-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    err = "cannot create a profile folder under " + opts.profile_root + ": "
          + std::strerror(errno);
    return nullptr;
  }
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) {
    err = std::string{"pipe: "} + std::strerror(errno);
    std::filesystem::remove_all(tmpl, ec);
    return nullptr;
  }
  if (::pipe2(from_child, O_CLOEXEC) != 0) {
    err = std::string{"pipe: "} + std::strerror(errno);
    ::close(to_child[0]);
    ::close(to_child[1]);
    std::filesystem::remove_all(tmpl, ec);
    return nullptr;
  }
  int child_in = high_fd(to_child[0]);
  int parent_out = high_fd(to_child[1]);
  int parent_in = high_fd(from_child[0]);
  int child_out = high_fd(from_child[1]);
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls are allowed.
  auto flags = chromium_flags(opts, tmpl);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(opts.executable.c_str()));
  for (auto& f : flags)
    argv.push_back(f.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    err = std::string{"fork: "} + std::strerror(errno);
    for (int fd : {child_in, parent_out, parent_in, child_out})
      ::close(fd);
    std::filesystem::remove_all(tmpl, ec);
    return nullptr;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    // The browser dies with the node, never outliving it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::dup2(child_in, 3);
    ::dup2(child_out, 4);
    if (::syscall(SYS_close_range, 5u, ~0u, 0u) != 0)
      for (int fd = 5; fd < 4096; ++fd)
        ::close(fd);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid); // also in the parent: no race with an early kill
  ::close(child_in);
  ::close(child_out);
  std::unique_ptr<chromium_process> p{new chromium_process};
  p->pid_ = pid;
  p->to_browser_ = parent_out;
  p->from_browser_ = parent_in;
  p->profile_dir_ = tmpl;
  p->reader_ = std::thread{[raw = p.get(), on_message = std::move(on_message),
                            on_exit = std::move(on_exit)]() mutable {
    raw->read_loop(std::move(on_message), std::move(on_exit));
  }};
  return p;
}

chromium_process::~chromium_process() {
  kill_now();
  if (reader_.joinable())
    reader_.join();
  if (pid_ > 0) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      // retry
    }
  }
  if (to_browser_ >= 0)
    ::close(to_browser_);
  if (from_browser_ >= 0)
    ::close(from_browser_);
  std::error_code ec;
  if (!profile_dir_.empty())
    std::filesystem::remove_all(profile_dir_, ec);
}

bool chromium_process::send(std::string_view json) {
  std::lock_guard<std::mutex> guard{write_mtx_};
  if (killed_)
    return false;
  std::string msg;
  msg.reserve(json.size() + 1);
  msg.append(json);
  msg.push_back('\0');
  size_t done = 0;
  while (done < msg.size()) {
    auto n = ::write(to_browser_, msg.data() + done, msg.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

void chromium_process::kill_now() {
  if (killed_.exchange(true) || pid_ <= 0)
    return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
}

void chromium_process::read_loop(message_fn on_message, exit_fn on_exit) {
  std::string buf;
  std::vector<char> chunk(256 * 1024);
  size_t scanned = 0;
  for (;;) {
    // Poll with a timeout so a kill_now() ends the loop even if some
    // orphaned child still holds the pipe's write end.
    pollfd pfd{from_browser_, POLLIN, 0};
    int r = ::poll(&pfd, 1, 200);
    if (r < 0 && errno != EINTR)
      break;
    if (r <= 0) {
      if (killed_)
        break;
      continue;
    }
    auto n = ::read(from_browser_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    buf.append(chunk.data(), static_cast<size_t>(n));
    size_t start = 0;
    for (;;) {
      auto nul = buf.find('\0', scanned);
      if (nul == std::string::npos)
        break;
      on_message(buf.substr(start, nul - start));
      start = nul + 1;
      scanned = start;
    }
    buf.erase(0, start);
    scanned = buf.size();
  }
  on_exit();
}

int64_t chromium_process::pss_bytes() const {
  return pid_ > 0 ? process_group_pss_bytes(pid_) : 0;
}

std::vector<process_info> list_processes() {
  std::vector<process_info> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr)
    return out;
  while (auto* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0')
      continue;
    std::ifstream stat{std::string{"/proc/"} + e->d_name + "/stat"};
    std::string line;
    std::getline(stat, line);
    // The command (field 2) may hold spaces and parentheses: it runs from
    // the first '(' to the last ')'.
    auto open = line.find('(');
    auto close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos)
      continue;
    process_info p;
    p.pid = static_cast<pid_t>(pid);
    p.comm = line.substr(open + 1, close - open - 1);
    std::istringstream rest{line.substr(close + 1)};
    long ppid = 0;
    long pgrp = 0;
    rest >> p.state >> ppid >> pgrp;
    p.ppid = static_cast<pid_t>(ppid);
    p.pgrp = static_cast<pid_t>(pgrp);
    out.push_back(std::move(p));
  }
  ::closedir(proc);
  return out;
}

int64_t process_group_pss_bytes(pid_t pgid) {
  int64_t total = 0;
  for (auto& p : list_processes()) {
    if (p.pgrp != pgid)
      continue;
    std::ifstream smaps{"/proc/" + std::to_string(p.pid) + "/smaps_rollup"};
    std::string line;
    while (std::getline(smaps, line)) {
      if (line.compare(0, 4, "Pss:") == 0) {
        total += std::strtoll(line.c_str() + 4, nullptr, 10) * 1024;
        break;
      }
    }
  }
  return total;
}

} // namespace vantage
