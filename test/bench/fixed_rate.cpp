// Fixed-rate HTTP load: C connections share a target rate; each request has
// a scheduled send time and its latency is measured from that time, so a
// stalled server shows up in the percentiles instead of slowing the load
// down (no coordinated omission). Complements wrk, which measures at
// saturation. Each connection waits for its answer before the next request,
// so when this returns nothing it sent is still in flight: the 200s it
// prints are exactly the answered requests (a shared view counts one view).
// Several paths are used round-robin. Loopback targets only.
//
// One thread drives every connection with epoll and a timerfd: on these
// 2-core hosts the generator competes with the node for the cores, and a
// thread per connection (the first version, with cpp-httplib's blocking
// client) cost ~70 µs of CPU per request against ~15 µs here.
//
//   fixed_rate URL RATE SECONDS CONNECTIONS PATH [PATH...] ["Header: value"...]
// (arguments starting with "/" are paths, the others headers) prints:
//   RESULT <achieved req/s> <p50 ms> <p99 ms> <p999 ms> <errors>
//   COUNTS <200s> <requests> <late: sent over 1 ms after schedule>
// The achieved rate is requests over the time until the last one was sent, so
// a server that falls behind shows a rate below the target.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

using namespace std::chrono;
using clock_type = steady_clock;

namespace {

struct target {
  std::string host = "127.0.0.1";
  int port = 80;
};

bool parse_url(const std::string& url, target& t) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    return false;
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  if (slash != std::string::npos)
    rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  auto host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (colon != std::string::npos)
    t.port = std::atoi(rest.c_str() + colon + 1);
  t.host = host == "localhost" ? "127.0.0.1" : host;
  return t.host.rfind("127.", 0) == 0 && t.port > 0 && t.port < 65536;
}

/// One keep-alive connection with its own schedule: request i is due at
/// `start + offset + i * interval`.
struct connection {
  int fd = -1;
  long index = 0;
  clock_type::time_point scheduled;
  bool waiting = false; // a request is out, its answer not complete
  std::string out;      // unsent request bytes
  std::string in;       // received answer bytes
  bool done = false;
};

int open_socket(const target& t) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(t.port));
  ::inet_pton(AF_INET, t.host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/// Length of the complete answer at the start of `in`, or 0 while it is
/// incomplete; -1 if it cannot be parsed (no Content-Length). `status` and
/// `closes` are set with it.
long answer_length(const std::string& in, int& status, bool& closes) {
  auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos)
    return 0;
  status = in.size() > 12 ? std::atoi(in.c_str() + 9) : 0;
  long body = -1;
  closes = false;
  size_t pos = in.find("\r\n") + 2;
  while (pos < head_end) {
    auto eol = in.find("\r\n", pos);
    auto colon = in.find(':', pos);
    if (colon != std::string::npos && colon < eol) {
      std::string name = in.substr(pos, colon - pos);
      for (auto& ch : name)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      auto value = in.substr(colon + 1, eol - colon - 1);
      if (name == "content-length")
        body = std::atol(value.c_str());
      else if (name == "connection" && value.find("close") != std::string::npos)
        closes = true;
    }
    pos = eol + 2;
  }
  if (body < 0 && (status == 204 || status == 304))
    body = 0;
  if (body < 0)
    return -1;
  auto total = static_cast<long>(head_end + 4) + body;
  return static_cast<long>(in.size()) >= total ? total : 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: fixed_rate URL RATE SECONDS CONNECTIONS "
                         "PATH [PATH...] [\"Header: value\"...]\n");
    return 2;
  }
  std::string url = argv[1];
  double rate = std::atof(argv[2]);
  double seconds = std::atof(argv[3]);
  int conns = std::atoi(argv[4]);
  std::vector<std::string> paths;
  std::string headers;
  for (int i = 5; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.empty() && arg[0] == '/')
      paths.push_back(arg);
    else if (arg.find(':') != std::string::npos)
      headers += arg + "\r\n";
  }
  if (paths.empty()) {
    std::fprintf(stderr, "fixed_rate: at least one PATH (starting with /)\n");
    return 2;
  }
  target tgt;
  if (!parse_url(url, tgt)) {
    std::fprintf(stderr, "fixed_rate: loopback targets only (http://127.x or localhost)\n");
    return 2;
  }
  if (rate <= 0 || seconds <= 0 || conns <= 0) {
    std::fprintf(stderr, "fixed_rate: RATE, SECONDS and CONNECTIONS must be positive\n");
    return 2;
  }
  std::vector<std::string> requests;
  for (auto& p : paths)
    requests.push_back("GET " + p + " HTTP/1.1\r\nHost: " + tgt.host + ":"
                       + std::to_string(tgt.port) + "\r\n" + headers + "\r\n");

  int ep = ::epoll_create1(0);
  int timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u64 = static_cast<uint64_t>(conns);
  ::epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev);

  auto interval = duration_cast<clock_type::duration>(duration<double>(conns / rate));
  std::vector<connection> cs(static_cast<size_t>(conns));
  auto watch = [&](size_t c, bool writing) {
    epoll_event ev{};
    ev.events = EPOLLIN | (writing ? EPOLLOUT : 0u);
    ev.data.u64 = c;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, cs[c].fd, &ev);
  };
  auto attach = [&](size_t c) {
    cs[c].fd = open_socket(tgt);
    if (cs[c].fd < 0)
      return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, cs[c].fd, &ev);
    return true;
  };
  for (size_t c = 0; c < cs.size(); ++c)
    if (!attach(c)) {
      std::fprintf(stderr, "fixed_rate: cannot connect to %s\n", url.c_str());
      return 1;
    }

  auto start = clock_type::now() + milliseconds{100};
  auto end = start + duration_cast<clock_type::duration>(duration<double>(seconds));
  size_t active = 0;
  for (size_t c = 0; c < cs.size(); ++c) {
    cs[c].scheduled = start + interval * static_cast<long>(c) / conns;
    cs[c].done = cs[c].scheduled >= end;
    active += cs[c].done ? 0 : 1;
  }
  std::vector<double> lat;
  lat.reserve(static_cast<size_t>(rate * seconds) + 16);
  long errors = 0, ok = 0, late = 0;
  auto last_send = start;

  // FIXED_RATE_TRACE=FILE writes "scheduled_ms latency_ms" per request, to
  // see when in a run the slow answers came.
  std::unique_ptr<FILE, int (*)(FILE*)> trace{nullptr, &std::fclose};
  if (const char* path = std::getenv("FIXED_RATE_TRACE")) {
    trace.reset(std::fopen(path, "w"));
    if (!trace) {
      std::fprintf(stderr, "fixed_rate: cannot write %s: %s\n", path,
                   std::strerror(errno));
      return 1;
    }
  }
  // Ends connection c's request (answered or failed) and schedules its next.
  auto finish = [&](size_t c, bool success) {
    auto& x = cs[c];
    lat.push_back(duration<double, std::milli>(clock_type::now() - x.scheduled).count());
    if (trace)
      std::fprintf(trace.get(), "%.3f %.3f\n",
                   duration<double, std::milli>(x.scheduled - start).count(),
                   lat.back());
    success ? ++ok : ++errors;
    x.waiting = false;
    x.index += 1;
    x.scheduled = start + interval * static_cast<long>(c) / conns + interval * x.index;
    if (x.scheduled >= end && !x.done) {
      x.done = true;
      --active;
    }
  };
  auto reconnect = [&](size_t c) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, cs[c].fd, nullptr);
    ::close(cs[c].fd);
    cs[c].in.clear();
    cs[c].out.clear();
    if (!attach(c)) {
      std::fprintf(stderr, "fixed_rate: reconnect failed\n");
      std::exit(1);
    }
  };
  auto send_some = [&](size_t c) {
    auto& x = cs[c];
    while (!x.out.empty()) {
      auto n = ::send(x.fd, x.out.data(), x.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        x.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        watch(c, true);
        return;
      }
      finish(c, false);
      reconnect(c);
      return;
    }
    watch(c, false);
  };

  std::vector<epoll_event> events(static_cast<size_t>(conns) + 1);
  char buf[65536];
  while (active > 0) {
    // Send every request that is due; then sleep until the next one.
    auto now = clock_type::now();
    auto next = clock_type::time_point::max();
    for (size_t c = 0; c < cs.size(); ++c) {
      auto& x = cs[c];
      if (x.done || x.waiting)
        continue;
      if (x.scheduled <= now) {
        if (now - x.scheduled > milliseconds{1})
          ++late;
        last_send = std::max(last_send, now);
        x.waiting = true;
        x.out = requests[static_cast<size_t>(x.index * conns + static_cast<long>(c))
                         % requests.size()];
        send_some(c);
      } else {
        next = std::min(next, x.scheduled);
      }
    }
    if (next != clock_type::time_point::max()) {
      itimerspec when{};
      auto ns = duration_cast<nanoseconds>(next.time_since_epoch()).count();
      when.it_value.tv_sec = ns / 1000000000;
      when.it_value.tv_nsec = ns % 1000000000;
      ::timerfd_settime(timer, TFD_TIMER_ABSTIME, &when, nullptr);
    }
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
    for (int i = 0; i < n; ++i) {
      auto c = static_cast<size_t>(events[static_cast<size_t>(i)].data.u64);
      if (c == cs.size()) {
        uint64_t expirations;
        while (::read(timer, &expirations, sizeof expirations) > 0) {
        }
        continue;
      }
      auto& x = cs[c];
      if (events[static_cast<size_t>(i)].events & EPOLLOUT) {
        send_some(c);
        continue;
      }
      bool closed = false;
      for (;;) {
        auto r = ::recv(x.fd, buf, sizeof buf, 0);
        if (r > 0) {
          x.in.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
          closed = true;
        break;
      }
      if (x.waiting) {
        int status = 0;
        bool closes = false;
        auto len = answer_length(x.in, status, closes);
        if (len > 0) {
          x.in.erase(0, static_cast<size_t>(len));
          finish(c, status == 200);
          if (closes || closed)
            reconnect(c);
          continue;
        }
        if (len < 0) {
          std::fprintf(stderr, "fixed_rate: an answer without Content-Length\n");
          return 1;
        }
      }
      if (closed) {
        if (x.waiting)
          finish(c, false);
        reconnect(c);
      }
    }
  }
  for (auto& x : cs)
    ::close(x.fd);
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[static_cast<size_t>(p * (lat.size() - 1))];
  };
  auto span = std::max(seconds, duration<double>(last_send - start).count());
  std::printf("RESULT %.0f %.2f %.2f %.2f %ld\n", lat.size() / span, pct(0.5),
              pct(0.99), pct(0.999), errors);
  std::printf("COUNTS %ld %zu %ld\n", ok, lat.size(), late);
  return 0;
}
