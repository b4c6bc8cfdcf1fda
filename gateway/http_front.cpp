#include "gateway/http_front.hpp"
#include "adapters/event_loop.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/scoped_execution_unit.hpp>

namespace vantage {

namespace {

using steady = std::chrono::steady_clock;

/// Longest request line; a longer target names nothing we serve.
constexpr size_t max_request_line = 8192;
/// Request line plus headers.
constexpr size_t max_head_bytes = 64 * 1024;
/// Bytes a connection may buffer ahead (pipelined requests) while one of
/// its requests is in flight; reading pauses beyond it.
constexpr size_t max_buffered_ahead = 1024 * 1024;
/// Unsent answer bytes beyond which a connection's next pipelined request
/// waits until the client has read: a client that never reads cannot make
/// the node buffer answers without bound.
constexpr size_t max_unsent = 1024 * 1024;
/// How long a closing connection waits for the peer's FIN, discarding what
/// it still sends, so that the kernel does not reset the answer away.
constexpr auto linger_time = std::chrono::seconds{2};

/// How often a loop looks for requests past their deadline.
constexpr auto deadline_scan = std::chrono::milliseconds{100};

constexpr uint64_t listener_tag = 0;
constexpr uint64_t wakeup_tag = 1;

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : "Error";
  }
}

bool token_char(unsigned char c) {
  return c > 0x20 && c < 0x7f && std::strchr("()<>@,;:\\\"/[]?={}", c) == nullptr;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

/// True when the comma-separated header value lists `token`.
bool lists_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    auto comma = value.find(',');
    auto item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
      item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
      item.remove_suffix(1);
    if (iequals(item, token))
      return true;
    if (comma == std::string_view::npos)
      break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// Percent-decoding; `plus_is_space` for query strings. A malformed escape
/// stays as it is.
std::string url_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0
        && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

void parse_query(std::string_view q, httplib::Params& params) {
  while (!q.empty()) {
    auto amp = q.find('&');
    auto pair = q.substr(0, amp);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      auto key = url_decode(pair.substr(0, eq), true);
      auto value = eq == std::string_view::npos
                     ? std::string{}
                     : url_decode(pair.substr(eq + 1), true);
      params.emplace(std::move(key), std::move(value));
    }
    if (amp == std::string_view::npos)
      break;
    q.remove_prefix(amp + 1);
  }
}

enum class parse_status { incomplete, complete, refused };

/// The head of a request, parsed; the body is framed separately.
struct request_head {
  size_t head_bytes = 0;
  bool chunked = false;
  size_t content_length = 0;
  bool expects_continue = false;
  /// Both Content-Length and chunked: framing a proxy may read otherwise,
  /// so the connection closes after the answer (RFC 9112 6.3).
  bool ambiguous_length = false;
};

/// Parses the request line and headers in `data` into `req`. `refused`
/// sets `status` (400, 404 for an over-long target, 413, 431, 501, 505).
parse_status parse_head(std::string_view data, size_t max_body,
                        httplib::Request& req, request_head& head,
                        int& status) {
  auto end = data.find("\r\n\r\n");
  size_t terminator = 4;
  if (end == std::string_view::npos) {
    auto bare = data.find("\n\n");
    if (bare != std::string_view::npos) {
      end = bare;
      terminator = 2;
    }
  }
  if (end == std::string_view::npos) {
    auto first_line = data.find('\n');
    if (first_line == std::string_view::npos
        && data.size() > max_request_line) {
      status = 404;
      return parse_status::refused;
    }
    if (data.size() > max_head_bytes) {
      status = 431;
      return parse_status::refused;
    }
    return parse_status::incomplete;
  }
  head.head_bytes = end + terminator;
  if (head.head_bytes > max_head_bytes) {
    // A target too long to name anything is a 404 (as while incomplete).
    status = data.find('\n') > max_request_line ? 404 : 431;
    return parse_status::refused;
  }
  auto text = data.substr(0, end);
  auto next_line = [&text]() {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    return line;
  };
  auto line = next_line();
  if (line.size() > max_request_line) {
    status = 404;
    return parse_status::refused;
  }
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos
      || line.find(' ', sp2 + 1) != std::string_view::npos) {
    status = 400;
    return parse_status::refused;
  }
  auto method = line.substr(0, sp1);
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  for (unsigned char c : method)
    if (!token_char(c)) {
      status = 400;
      return parse_status::refused;
    }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    status = version.substr(0, 5) == "HTTP/" ? 505 : 400;
    return parse_status::refused;
  }
  // Absolute form (proxies): keep path and query.
  if (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://") {
    auto slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view{"/"}
                                             : target.substr(slash);
  }
  if (target.empty() || target.front() != '/') {
    status = 400;
    return parse_status::refused;
  }
  req.method.assign(method);
  req.version.assign(version);
  req.target.assign(target);
  auto question = target.find('?');
  req.path = url_decode(target.substr(0, question), false);
  if (question != std::string_view::npos)
    parse_query(target.substr(question + 1), req.params);

  bool have_length = false;
  while (!text.empty()) {
    auto h = next_line();
    if (h.empty())
      continue;
    if (h.front() == ' ' || h.front() == '\t') { // obsolete line folding
      status = 400;
      return parse_status::refused;
    }
    auto colon = h.find(':');
    if (colon == 0 || colon == std::string_view::npos) {
      status = 400;
      return parse_status::refused;
    }
    auto name = h.substr(0, colon);
    for (unsigned char c : name)
      if (!token_char(c)) {
        status = 400;
        return parse_status::refused;
      }
    auto value = h.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
      value.remove_suffix(1);
    if (iequals(name, "Content-Length")) {
      if (value.empty() || value.size() > 18
          || value.find_first_not_of("0123456789") != std::string_view::npos) {
        status = 400;
        return parse_status::refused;
      }
      auto n = static_cast<size_t>(std::stoull(std::string{value}));
      if (have_length && n != head.content_length) {
        status = 400;
        return parse_status::refused;
      }
      have_length = true;
      head.content_length = n;
    } else if (iequals(name, "Transfer-Encoding")) {
      if (!lists_token(value, "chunked")) {
        status = 501;
        return parse_status::refused;
      }
      head.chunked = true;
    } else if (iequals(name, "Expect") && iequals(value, "100-continue")) {
      head.expects_continue = true;
    }
    req.headers.emplace(std::string{name}, std::string{value});
  }
  if (head.chunked) {
    head.ambiguous_length = have_length;
    head.content_length = 0;
  }
  if (head.content_length > max_body) {
    status = 413;
    return parse_status::refused;
  }
  return parse_status::complete;
}

/// Decodes a chunked body starting at `data` into `body`; `used` is the
/// bytes consumed including the last chunk and trailers.
parse_status parse_chunked(std::string_view data, size_t max_body,
                           std::string& body, size_t& used, int& status) {
  body.clear();
  size_t pos = 0;
  for (;;) {
    auto nl = data.find('\n', pos);
    if (nl == std::string_view::npos) {
      if (data.size() - pos > 1024) {
        status = 400;
        return parse_status::refused;
      }
      return parse_status::incomplete;
    }
    auto size_line = data.substr(pos, nl - pos);
    auto semi = size_line.find(';');
    auto digits = size_line.substr(0, semi);
    while (!digits.empty() && (digits.back() == '\r' || digits.back() == ' '))
      digits.remove_suffix(1);
    if (digits.empty() || digits.size() > 8) {
      status = 400;
      return parse_status::refused;
    }
    size_t size = 0;
    for (char c : digits) {
      auto v = hex_value(c);
      if (v < 0) {
        status = 400;
        return parse_status::refused;
      }
      size = size * 16 + static_cast<size_t>(v);
    }
    pos = nl + 1;
    if (size == 0) {
      // Trailers, up to an empty line.
      for (;;) {
        auto end = data.find('\n', pos);
        if (end == std::string_view::npos)
          return parse_status::incomplete;
        auto trailer = data.substr(pos, end - pos);
        pos = end + 1;
        if (trailer.empty() || trailer == "\r") {
          used = pos;
          return parse_status::complete;
        }
      }
    }
    if (body.size() + size > max_body) {
      status = 413;
      return parse_status::refused;
    }
    if (data.size() < pos + size + 1)
      return parse_status::incomplete;
    body.append(data.substr(pos, size));
    pos += size;
    if (data[pos] == '\r') {
      if (data.size() < pos + 2)
        return parse_status::incomplete;
      ++pos;
    }
    if (data[pos] != '\n') {
      status = 400;
      return parse_status::refused;
    }
    ++pos;
  }
}

void serialize(const http_exchange& x, bool keep_alive, std::string& out) {
  auto& res = x.res;
  int status = res.status >= 100 && res.status < 600 ? res.status : 500;
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\n";
  for (auto& [name, value] : res.headers) {
    if (iequals(name, "Content-Length") || iequals(name, "Connection"))
      continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  bool bodiless = status == 204 || status == 304 || status < 200;
  if (!bodiless) {
    out += "Content-Length: ";
    out += std::to_string(res.body.size());
    out += "\r\n";
  }
  out += keep_alive ? "Connection: keep-alive\r\n\r\n"
                    : "Connection: close\r\n\r\n";
  if (!bodiless && !x.head)
    out += res.body;
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

} // namespace

// -- blocking pool ---------------------------------------------------------------

namespace {

class blocking_pool {
public:
  void start(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i)
      threads_.emplace_back([this] { work(); });
  }

  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      t.join();
    threads_.clear();
  }

private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> guard{mtx_};
        cv_.wait(guard, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty())
          return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

} // namespace

// -- loop ------------------------------------------------------------------------

class http_loop : public std::enable_shared_from_this<http_loop>,
                  public loop_io {
public:
  http_loop(caf::actor_system& sys, const http_front_options& opts,
            const http_front::dispatch_fn& dispatch,
            const http_front::refuse_fn& refuse, int listen_fd)
    : sys_(sys), opts_(opts), dispatch_(dispatch), refuse_(refuse),
      listen_fd_(listen_fd), unit_(&sys) {
    // nop
  }

  ~http_loop() {
    if (epoll_fd_ >= 0)
      ::close(epoll_fd_);
    if (wake_fd_ >= 0)
      ::close(wake_fd_);
  }

  bool open(std::string& err) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      err = std::string{"epoll/eventfd: "} + std::strerror(errno);
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = listener_tag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      err = std::string{"epoll_ctl(listener): "} + std::strerror(errno);
      return false;
    }
    ev.events = EPOLLIN;
    ev.data.u64 = wakeup_tag;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    auto handle = sys_.spawn<loop_actor>();
    companion_ = caf::actor_cast<caf::strong_actor_ptr>(handle);
    companion()->context(&unit_);
    // Without a behavior an actor with no request outstanding finalizes
    // itself; the companion only ever receives answers.
    companion()->become([](caf::exit_msg&) {});
    companion()->on_enqueue([this](caf::mailbox_element_ptr ptr) {
      {
        std::lock_guard<std::mutex> guard{inbox_mtx_};
        mail_.push_back(std::move(ptr));
      }
      wake();
    });
    return true;
  }

  void run() {
    thread_ = std::thread([self = shared_from_this()] { self->loop(); });
  }

  void stop() {
    stopping_ = true;
    wake();
    if (thread_.joinable())
      thread_.join();
    else
      release_companion(); // opened, never run (a later loop failed)
  }

  loop_actor* companion() const {
    return static_cast<loop_actor*>(
      caf::actor_cast<caf::abstract_actor*>(companion_));
  }

  /// On the loop's thread.
  void defer(std::function<void()> job) {
    deferred_.push_back(std::move(job));
  }

  /// On the loop's thread: `x` (its connection's request in flight) is
  /// expired at `when` unless answered first.
  void add_deadline(steady::time_point when, const exchange_ptr& x) {
    if (auto* c = find(x->connection); c != nullptr && c->in_flight) {
      c->deadline = when;
      c->expiring = x;
    }
  }

  /// From any thread. On the loop's own thread the answer waits until the
  /// current event is handled: a route may answer from within dispatch.
  void answered(exchange_ptr x) {
    if (std::this_thread::get_id() == loop_thread_) {
      ready_.push_back(std::move(x));
      return;
    }
    {
      std::lock_guard<std::mutex> guard{inbox_mtx_};
      answers_.push_back(std::move(x));
    }
    wake();
  }

  // -- loop_io (on the loop's thread) -----------------------------------------

  bool watch(int fd, bool want_write, loop_watcher* w) override {
    epoll_event ev{};
    ev.events = EPOLLIN | (want_write ? EPOLLOUT : 0u);
    auto known = watched_fds_.find(fd);
    if (known != watched_fds_.end()) {
      ev.data.u64 = known->second;
      watchers_[known->second] = w;
      return epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0;
    }
    auto id = next_id_++;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
      return false;
    watched_fds_.emplace(fd, id);
    watchers_.emplace(id, w);
    return true;
  }

  void unwatch(int fd) override {
    auto known = watched_fds_.find(fd);
    if (known == watched_fds_.end())
      return;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    watchers_.erase(known->second);
    watched_fds_.erase(known);
  }

  std::shared_ptr<void>& local(const void* key) override {
    return locals_[key];
  }

private:
  struct connection {
    int fd = -1;
    uint64_t id = 0;
    std::string in;
    size_t in_used = 0;
    std::string out;
    size_t out_sent = 0;
    bool in_flight = false;
    bool continue_sent = false;
    bool closing = false;    // close once `out` is written
    bool lingering = false;  // write side shut: discard input until FIN
    bool read_paused = false;
    bool peer_closed = false; // FIN seen: answer what is buffered, then close
    bool resume_after_flush = false; // next request waits for the client to read
    steady::time_point last_activity;
    steady::time_point linger_until;
    /// The request in flight's deadline, if its route set one.
    steady::time_point deadline = steady::time_point::max();
    std::weak_ptr<http_exchange> expiring;
    std::string remote_addr;
    int remote_port = 0;
  };

  void wake() {
    if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
      uint64_t one = 1;
      auto n = ::write(wake_fd_, &one, sizeof(one));
      (void) n;
    }
  }

  void loop() {
    loop_thread_ = std::this_thread::get_id();
    std::vector<epoll_event> events(256);
    auto next_sweep = steady::now() + std::chrono::seconds{1};
    auto next_deadline_scan = steady::now() + deadline_scan;
    while (!stopping_) {
      int n = epoll_wait(epoll_fd_, events.data(),
                         static_cast<int>(events.size()),
                         static_cast<int>(deadline_scan.count()));
      // Answers for requests in flight (actors' through the wake-up fd,
      // other servers' through watchers) before new requests: under load
      // the requests read first would otherwise put a whole iteration of
      // work in front of answers that were already waiting.
      for (int i = 0; i < n; ++i) {
        auto tag = events[i].data.u64;
        if (tag == wakeup_tag)
          drain_inbox();
        else if (auto w = watchers_.find(tag); w != watchers_.end())
          w->second->on_ready(events[i].events);
        else
          continue;
        write_ready();
      }
      for (int i = 0; i < n; ++i) {
        auto tag = events[i].data.u64;
        if (tag == listener_tag)
          accept_all();
        else if (auto* c = find(tag))
          on_connection_event(*c, events[i].events);
        else
          continue;
        write_ready();
      }
      run_deferred();
      auto now = steady::now();
      if (now >= next_deadline_scan) {
        expire_due(now);
        tick_watchers(now);
        next_deadline_scan = now + deadline_scan;
      }
      if (now >= next_sweep) {
        sweep(now);
        next_sweep = now + std::chrono::seconds{1};
      }
    }
    for (auto& [id, c] : connections_)
      ::close(c->fd);
    connections_.clear();
    // Loop-local clients end here, while they can still unwatch; what they
    // had waiting dies with them.
    locals_.clear();
    drain_inbox();
    // Exchanges hold this loop: no cycle left behind.
    ready_.clear();
    deferred_.clear();
    {
      std::lock_guard<std::mutex> guard{inbox_mtx_};
      answers_.clear();
      mail_.clear();
    }
    release_companion();
  }

  void release_companion() {
    if (!companion_)
      return;
    // What CAF's Qt companion does at its end (this build exports no
    // actor_companion::disconnect).
    companion()->on_enqueue({});
    companion()->cleanup(caf::make_error(caf::exit_reason::normal), &unit_);
    companion_.reset();
  }

  void drain_inbox() {
    uint64_t counter = 0;
    auto n = ::read(wake_fd_, &counter, sizeof(counter));
    (void) n;
    wake_pending_.store(false, std::memory_order_release);
    std::vector<caf::mailbox_element_ptr> mail;
    std::vector<exchange_ptr> answers;
    {
      std::lock_guard<std::mutex> guard{inbox_mtx_};
      mail.swap(mail_);
      answers.swap(answers_);
    }
    for (auto& m : mail)
      if (m && companion_)
        companion()->activate(&unit_, *m);
    for (auto& x : answers)
      ready_.push_back(std::move(x));
  }

  /// A connection has at most one request in flight, so deadlines live on
  /// connections: a scan instead of a timer per request.
  void expire_due(steady::time_point now) {
    std::vector<exchange_ptr> due;
    for (auto& [id, c] : connections_)
      if (c->in_flight && c->deadline <= now)
        if (auto x = c->expiring.lock()) {
          c->expiring.reset();
          c->deadline = steady::time_point::max();
          due.push_back(std::move(x));
        }
    for (auto& x : due)
      if (!x->responded.load() && x->on_expiry) {
        auto expire = std::move(x->on_expiry);
        x->on_expiry = nullptr;
        expire();
      }
    write_ready();
  }

  void tick_watchers(steady::time_point now) {
    std::vector<uint64_t> ids;
    ids.reserve(watchers_.size());
    for (auto& [id, w] : watchers_)
      ids.push_back(id);
    for (auto id : ids) // a tick may unwatch any of them
      if (auto w = watchers_.find(id); w != watchers_.end())
        w->second->on_tick(now);
    run_deferred();
  }

  void run_deferred() {
    while (!deferred_.empty()) {
      std::vector<std::function<void()>> jobs;
      jobs.swap(deferred_);
      for (auto& job : jobs)
        job();
      write_ready();
    }
  }

  void write_ready() {
    while (!ready_.empty()) {
      std::vector<exchange_ptr> batch;
      batch.swap(ready_);
      for (auto& x : batch)
        write_answer(*x);
    }
  }

  void accept_all() {
    for (;;) {
      sockaddr_storage addr{};
      socklen_t len = sizeof(addr);
      int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return; // EAGAIN, or another loop took it
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto c = std::make_unique<connection>();
      c->fd = fd;
      c->id = next_id_++;
      c->last_activity = steady::now();
      char host[NI_MAXHOST] = {0};
      char serv[NI_MAXSERV] = {0};
      if (getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host,
                      sizeof(host), serv, sizeof(serv),
                      NI_NUMERICHOST | NI_NUMERICSERV)
          == 0) {
        c->remote_addr = host;
        c->remote_port = std::atoi(serv);
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = c->id;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        continue;
      }
      connections_.emplace(c->id, std::move(c));
    }
  }

  connection* find(uint64_t id) {
    auto i = connections_.find(id);
    return i == connections_.end() ? nullptr : i->second.get();
  }

  void close_connection(connection& c) {
    ::close(c.fd); // also removes it from the epoll set
    connections_.erase(c.id);
  }

  void on_connection_event(connection& conn, uint32_t events) {
    auto* c = &conn;
    auto id = c->id;
    if ((events & EPOLLOUT) != 0) {
      if (!flush(*c))
        return;
      if (c->resume_after_flush && c->out.empty()) {
        c->resume_after_flush = false;
        resume(*c);
        if ((c = find(id)) == nullptr)
          return;
      }
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)
      read_some(*c);
  }

  /// Reads what the socket holds; false when the connection was closed.
  bool read_some(connection& c) {
    char buf[16384];
    for (;;) {
      if (!c.lingering && c.in.size() - c.in_used > max_buffered_ahead) {
        c.read_paused = true; // resumed once the request ahead is answered
        break;
      }
      auto n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c.last_activity = steady::now();
        if (!c.lingering)
          c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0 && !c.lingering) {
        // A half-close (`printf ... | nc`) still wants its answers.
        c.peer_closed = true;
        break;
      }
      close_connection(c);
      return false;
    }
    if (!c.in_flight && !c.closing && !c.lingering && !c.resume_after_flush
        && !next_request(c))
      return false;
    return close_if_peer_gone(c);
  }

  /// After the peer's FIN with nothing left in flight: the graceful close
  /// (whatever is unsent still goes out first). False when closed.
  bool close_if_peer_gone(connection& c) {
    if (!c.peer_closed || c.in_flight || c.closing || c.resume_after_flush)
      return true;
    c.closing = true;
    return flush(c);
  }

  /// After an answer: the next pipelined request, or more reading, unless
  /// the client has not taken the answers so far.
  void resume(connection& c) {
    if (c.out.size() - c.out_sent > max_unsent) {
      c.resume_after_flush = true;
      return;
    }
    if (c.read_paused) {
      c.read_paused = false;
      read_some(c);
      return;
    }
    if (next_request(c))
      close_if_peer_gone(c);
  }

  /// Parses and dispatches the next buffered request, if it is whole.
  bool next_request(connection& c) {
    std::string_view data{c.in};
    data.remove_prefix(c.in_used);
    // Blank lines between requests are tolerated (RFC 9112 2.2).
    while (!data.empty() && (data.front() == '\r' || data.front() == '\n')) {
      data.remove_prefix(1);
      ++c.in_used;
    }
    if (data.empty()) {
      compact(c);
      return true;
    }
    auto x = std::make_shared<http_exchange>();
    request_head head;
    int status = 0;
    auto st = parse_head(data, opts_.max_body_bytes, x->req, head, status);
    if (st == parse_status::incomplete)
      return true;
    if (st == parse_status::refused)
      return refuse(c, *x, status);
    auto body = data.substr(head.head_bytes);
    size_t used = head.head_bytes;
    if (head.chunked) {
      size_t chunk_bytes = 0;
      st = parse_chunked(body, opts_.max_body_bytes, x->req.body, chunk_bytes,
                         status);
      if (st == parse_status::refused)
        return refuse(c, *x, status);
      used += chunk_bytes;
    } else if (body.size() < head.content_length) {
      st = parse_status::incomplete;
    } else {
      x->req.body.assign(body.substr(0, head.content_length));
      used += head.content_length;
    }
    if (st == parse_status::incomplete) {
      if (head.expects_continue && !c.continue_sent) {
        c.continue_sent = true;
        c.out += "HTTP/1.1 100 Continue\r\n\r\n";
        return flush(c);
      }
      return true;
    }
    c.in_used += used;
    c.continue_sent = false;
    compact(c);
    auto connection_header = x->req.get_header_value("Connection");
    x->keep_alive = !head.ambiguous_length
                    && (x->req.version == "HTTP/1.1"
                          ? !lists_token(connection_header, "close")
                          : lists_token(connection_header, "keep-alive"));
    x->head = x->req.method == "HEAD";
    x->req.remote_addr = c.remote_addr;
    x->req.remote_port = c.remote_port;
    x->loop = shared_from_this();
    x->connection = c.id;
    c.in_flight = true;
    dispatch_(std::move(x));
    return true;
  }

  bool refuse(connection& c, http_exchange& x, int status) {
    x.res.status = status;
    x.keep_alive = false;
    x.head = x.req.method == "HEAD";
    x.req.remote_addr = c.remote_addr;
    refuse_(x);
    serialize(x, false, c.out);
    c.closing = true;
    c.in.clear();
    c.in_used = 0;
    return flush(c);
  }

  void compact(connection& c) {
    if (c.in_used == c.in.size()) {
      c.in.clear();
      c.in_used = 0;
    } else if (c.in_used > 65536) {
      c.in.erase(0, c.in_used);
      c.in_used = 0;
    }
  }

  void write_answer(http_exchange& x) {
    x.on_expiry = nullptr; // it may hold what holds the exchange
    auto* c = find(x.connection);
    if (c == nullptr || !c->in_flight)
      return; // the client went away meanwhile
    c->in_flight = false;
    c->deadline = steady::time_point::max();
    c->expiring.reset();
    c->last_activity = steady::now();
    // A client that sent several requests and then its FIN still gets
    // every answer; the last one closes.
    bool more_buffered = c->in.size() > c->in_used;
    bool keep_alive = x.keep_alive && (!c->peer_closed || more_buffered);
    serialize(x, keep_alive, c->out);
    if (!keep_alive)
      c->closing = true;
    if (!flush(*c) || c->closing)
      return;
    resume(*c);
  }

  /// Writes what `out` holds; false when the connection was closed.
  bool flush(connection& c) {
    while (c.out_sent < c.out.size()) {
      auto n = ::send(c.fd, c.out.data() + c.out_sent,
                      c.out.size() - c.out_sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_sent += static_cast<size_t>(n);
        c.last_activity = steady::now(); // a slow reader is not idle
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true; // EPOLLOUT resumes
      if (n < 0 && errno == EINTR)
        continue;
      close_connection(c);
      return false;
    }
    c.out.clear();
    c.out_sent = 0;
    if (c.closing && !c.lingering) {
      ::shutdown(c.fd, SHUT_WR);
      c.lingering = true;
      c.linger_until = steady::now() + linger_time;
      c.in.clear();
      c.in_used = 0;
      return read_some(c);
    }
    return true;
  }

  void sweep(steady::time_point now) {
    auto idle = std::chrono::seconds{opts_.idle_timeout_s};
    std::vector<connection*> expired;
    for (auto& [id, c] : connections_) {
      if (c->lingering ? now >= c->linger_until
                       : !c->in_flight && now - c->last_activity > idle)
        expired.push_back(c.get());
    }
    for (auto* c : expired)
      close_connection(*c);
  }

  caf::actor_system& sys_;
  const http_front_options& opts_;
  const http_front::dispatch_fn& dispatch_;
  const http_front::refuse_fn& refuse_;
  int listen_fd_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  caf::scoped_execution_unit unit_;
  caf::strong_actor_ptr companion_;
  std::thread thread_;
  std::thread::id loop_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> wake_pending_{false};
  std::mutex inbox_mtx_;
  std::vector<caf::mailbox_element_ptr> mail_;
  std::vector<exchange_ptr> answers_;
  /// Answered on this thread, written after the current event.
  std::vector<exchange_ptr> ready_;
  /// Run after the current batch of events (`http_exchange::defer`).
  std::vector<std::function<void()>> deferred_;

  std::unordered_map<uint64_t, std::unique_ptr<connection>> connections_;
  /// Sockets of loop-local clients (loop_io::watch), tagged from the same
  /// ids as connections.
  std::unordered_map<uint64_t, loop_watcher*> watchers_;
  std::unordered_map<int, uint64_t> watched_fds_;
  std::unordered_map<const void*, std::shared_ptr<void>> locals_;
  uint64_t next_id_ = 2; // 0 and 1 tag the listener and the wake-up fd
};

// -- exchange --------------------------------------------------------------------

void http_exchange::respond() {
  if (responded.exchange(true))
    return;
  if (auto l = loop)
    l->answered(shared_from_this());
}

void http_exchange::defer(std::function<void()> job) {
  loop->defer(std::move(job));
}

void http_exchange::expire_after(std::chrono::milliseconds after,
                                 std::function<void()> f) {
  on_expiry = std::move(f);
  loop->add_deadline(steady::now() + after, shared_from_this());
}

loop_actor* http_exchange::self() const {
  return loop->companion();
}

loop_io& http_exchange::io() const {
  return *loop;
}

// -- front -----------------------------------------------------------------------

struct http_front::state {
  caf::actor_system& sys;
  http_front_options opts;
  dispatch_fn dispatch;
  refuse_fn refuse;
  int listen_fd = -1;
  uint16_t port = 0;
  std::vector<std::shared_ptr<http_loop>> loops;
  blocking_pool pool;
  bool running = false;
};

http_front::http_front(caf::actor_system& sys, http_front_options opts,
                       dispatch_fn dispatch, refuse_fn refuse)
  : state_(new state{sys, std::move(opts), std::move(dispatch),
                     std::move(refuse)}) {
  // nop
}

http_front::~http_front() {
  stop();
}

bool http_front::start(std::string& err) {
  auto& st = *state_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto service = std::to_string(st.opts.port);
  if (int rc = getaddrinfo(st.opts.bind.c_str(), service.c_str(), &hints,
                           &found);
      rc != 0) {
    err = "cannot resolve " + st.opts.bind + ": " + gai_strerror(rc);
    return false;
  }
  int fd = -1;
  for (auto* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0)
      continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0
        || ::listen(fd, 4096) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    err = "cannot bind " + st.opts.bind + ":" + service + ": "
          + std::strerror(errno);
    return false;
  }
  set_nonblocking(fd);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  st.port = ntohs(addr.ss_family == AF_INET6
                    ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  st.listen_fd = fd;
  int loops = st.opts.loops > 0
                ? st.opts.loops
                : static_cast<int>(std::max(1u,
                                            std::thread::hardware_concurrency()));
  for (int i = 0; i < loops; ++i) {
    auto l = std::make_shared<http_loop>(st.sys, st.opts, st.dispatch,
                                         st.refuse, fd);
    if (!l->open(err)) {
      for (auto& started : st.loops)
        started->stop();
      st.loops.clear();
      ::close(fd);
      st.listen_fd = -1;
      return false;
    }
    st.loops.push_back(std::move(l));
  }
  st.pool.start(st.opts.blocking_threads);
  for (auto& l : st.loops)
    l->run();
  st.running = true;
  return true;
}

uint16_t http_front::port() const {
  return state_->port;
}

void http_front::run_blocking(std::function<void()> job) {
  state_->pool.post(std::move(job));
}

void http_front::stop() {
  auto& st = *state_;
  if (!st.running)
    return;
  st.running = false;
  // The pool first: its jobs (each bounded by its actor timeout) still
  // answer through running loops.
  st.pool.stop();
  for (auto& l : st.loops)
    l->stop();
  st.loops.clear();
  ::close(st.listen_fd);
  st.listen_fd = -1;
}

} // namespace vantage
