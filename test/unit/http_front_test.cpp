#define BOOST_TEST_MODULE http_front_test
#include <boost/test/unit_test.hpp>

// The HTTP/1.1 front over real loopback sockets, byte by byte as a client
// sends them: pipelining, chunked bodies, 100-continue, HEAD, half-close,
// refusals, and many connections across the loops. Routes answer both on
// the blocking pool and in continuation form through the loop's actor.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <caf/all.hpp>

#include "gateway/http_front.hpp"
#include "test/support/eventually.hpp"

using namespace vantage;
namespace test = vantage::test;
using namespace std::chrono_literals;

namespace {

struct front_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::actor echo = sys.spawn([] {
    return caf::behavior{[](std::string& s) { return "echo:" + s; }};
  });
  std::atomic<int> dispatched{0};
  std::unique_ptr<http_front> front;

  front_fixture() {
    http_front_options opts;
    opts.loops = 2;
    opts.blocking_threads = 2;
    opts.max_body_bytes = 64 * 1024;
    front = std::make_unique<http_front>(
      sys, opts,
      [this](exchange_ptr x) {
        ++dispatched;
        if (x->req.path == "/async") {
          // Continuation form: the answer runs on this loop's thread.
          x->self()
            ->request(echo, std::chrono::seconds{2}, x->req.body)
            .then(
              [x](std::string& s) {
                x->res.status = 200;
                x->res.set_content(s, "text/plain");
                x->respond();
              },
              [x](caf::error&) {
                x->res.status = 500;
                x->respond();
              });
        } else if (x->req.path == "/blocking") {
          front->run_blocking([x] {
            x->res.status = 201;
            x->res.set_content("blocking:" + x->req.body
                                 + x->req.get_param_value("q"),
                               "text/plain");
            x->respond();
          });
        } else if (x->req.path == "/big") {
          x->res.status = 200;
          x->res.set_content(std::string(256 * 1024, 'b'), "text/plain");
          x->respond();
        } else if (x->req.path == "/silent") {
          // Nobody answers: the loop's deadline does.
          x->expire_after(std::chrono::milliseconds{150}, [x] {
            x->res.status = 504;
            x->res.set_content("expired", "text/plain");
            x->respond();
          });
        } else {
          x->res.status = 404;
          x->res.set_content("none", "text/plain");
          x->respond();
        }
      },
      [](http_exchange& x) { x.res.set_content("refused", "text/plain"); });
    std::string err;
    BOOST_REQUIRE_MESSAGE(front->start(err), err);
  }

  ~front_fixture() {
    front->stop();
    caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  }

  int connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(front->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr),
                            sizeof(addr))
                  == 0);
    timeval tv{5, 0}; // the deadline of every read below
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
  }

  static void send_all(int fd, const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent,
                      MSG_NOSIGNAL);
      BOOST_REQUIRE(n > 0);
      sent += static_cast<size_t>(n);
    }
  }

  /// Reads until the peer closes (or the 5 s deadline).
  static std::string read_to_end(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
      auto n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0)
        return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

  /// Reads until `out` holds `what` (or the deadline).
  static std::string read_until(int fd, const std::string& what) {
    std::string out;
    char buf[4096];
    while (out.find(what) == std::string::npos) {
      auto n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0)
        break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  static size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string::npos;
         pos = haystack.find(needle, pos + 1))
      ++n;
    return n;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(http_front_suite, front_fixture)

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order) {
  int fd = connect();
  send_all(fd, "POST /async HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
               "POST /blocking?q=%21+ok HTTP/1.1\r\nContent-Length: 3\r\n\r\ntwo"
               "POST /async HTTP/1.1\r\nContent-Length: 5\r\n"
               "Connection: close\r\n\r\nthree");
  auto out = read_to_end(fd);
  ::close(fd);
  auto first = out.find("echo:one");
  auto second = out.find("blocking:two! ok");
  auto third = out.find("echo:three");
  BOOST_TEST(first != std::string::npos);
  BOOST_TEST(second != std::string::npos);
  BOOST_TEST(third != std::string::npos);
  BOOST_TEST((first < second && second < third));
  BOOST_TEST(out.find("HTTP/1.1 201 Created") != std::string::npos);
  BOOST_TEST(out.find("Connection: close") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(chunked_bodies_are_decoded) {
  int fd = connect();
  send_all(fd, "POST /async HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n"
               "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n");
  auto out = read_to_end(fd);
  ::close(fd);
  BOOST_TEST(out.find("HTTP/1.1 200 OK") == 0);
  BOOST_TEST(out.find("\r\n\r\necho:Wikipedia") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(expect_continue_gets_100_before_the_body) {
  int fd = connect();
  send_all(fd, "POST /async HTTP/1.1\r\nContent-Length: 4\r\n"
               "Expect: 100-continue\r\nConnection: close\r\n\r\n");
  auto interim = read_until(fd, "\r\n\r\n");
  BOOST_TEST(interim == "HTTP/1.1 100 Continue\r\n\r\n");
  send_all(fd, "body");
  auto out = read_to_end(fd);
  ::close(fd);
  BOOST_TEST(out.find("echo:body") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(head_has_the_length_but_no_body) {
  int fd = connect();
  send_all(fd, "HEAD /blocking HTTP/1.1\r\nConnection: close\r\n\r\n");
  auto out = read_to_end(fd);
  ::close(fd);
  BOOST_TEST(out.find("Content-Length: 9\r\n") != std::string::npos);
  BOOST_TEST(out.size() == out.find("\r\n\r\n") + 4);
}

BOOST_AUTO_TEST_CASE(a_half_closed_client_still_gets_its_answer) {
  int fd = connect();
  send_all(fd, "POST /async HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
  ::shutdown(fd, SHUT_WR);
  auto out = read_to_end(fd);
  ::close(fd);
  BOOST_TEST(out.find("echo:hi") != std::string::npos);
  BOOST_TEST(out.find("Connection: close") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(pipelined_requests_before_a_half_close_are_all_answered) {
  int fd = connect();
  send_all(fd, "POST /async HTTP/1.1\r\nContent-Length: 1\r\n\r\na"
               "POST /async HTTP/1.1\r\nContent-Length: 1\r\n\r\nb");
  ::shutdown(fd, SHUT_WR);
  auto out = read_to_end(fd);
  ::close(fd);
  BOOST_TEST(out.find("echo:a") != std::string::npos);
  BOOST_TEST(out.find("echo:b") != std::string::npos);
  BOOST_TEST(count(out, "Connection: close") == 1u);
}

BOOST_AUTO_TEST_CASE(a_client_that_does_not_read_gets_no_more_answers_buffered) {
  constexpr int pipelined = 200; // 200 x 256 KiB = 50 MiB of answers
  int fd = connect();
  std::string requests;
  for (int i = 0; i < pipelined; ++i)
    requests += "GET /big HTTP/1.1\r\n\r\n";
  send_all(fd, requests);
  // Socket buffers take some answers; then dispatch must wait for reads.
  BOOST_TEST(!test::eventually([&] { return dispatched.load() >= pipelined; },
                               1500ms));
  BOOST_TEST(dispatched.load() < pipelined);
  // Once the client reads, every answer comes.
  size_t answers = 0;
  std::string window;
  char buf[65536];
  while (answers < pipelined) {
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      break;
    window.append(buf, static_cast<size_t>(n));
    answers += count(window, "HTTP/1.1 200 OK");
    auto keep = window.size() > 16 ? window.size() - 16 : 0;
    window.erase(0, keep); // a status line may straddle two reads
    if (window.find("HTTP/1.1 200 OK") != std::string::npos)
      window.clear();
  }
  ::close(fd);
  BOOST_TEST(answers == static_cast<size_t>(pipelined));
}

BOOST_AUTO_TEST_CASE(an_unanswered_request_is_answered_at_its_deadline) {
  int fd = connect();
  auto start = std::chrono::steady_clock::now();
  send_all(fd, "GET /silent HTTP/1.1\r\n\r\n");
  auto out = read_until(fd, "expired");
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(out.find("HTTP/1.1 504 ") == 0);
  BOOST_TEST(out.find("expired") != std::string::npos);
  BOOST_TEST((took >= 150ms));
  // The connection stays usable after an expiry.
  send_all(fd, "POST /async HTTP/1.1\r\nContent-Length: 2\r\n"
               "Connection: close\r\n\r\nok");
  BOOST_TEST(read_to_end(fd).find("echo:ok") != std::string::npos);
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(refusals_answer_and_close_without_dispatch) {
  struct refused {
    std::string request;
    const char* status_line;
  };
  std::vector<refused> cases = {
    {"POST /async HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n"
       + std::string(200000, 'x'),
     "HTTP/1.1 413 "},
    {"GARBAGE\r\n\r\n", "HTTP/1.1 400 "},
    {"GET /async HTTP/2.0\r\n\r\n", "HTTP/1.1 505 "},
    {"GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "},
    {"GET /" + std::string(100000, 'a') + " HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "},
    {"GET / HTTP/1.1\r\nX-Big: " + std::string(100000, 'h') + "\r\n\r\n",
     "HTTP/1.1 431 "},
    {"POST /async HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
     "HTTP/1.1 400 "},
    {"POST /async HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
     "HTTP/1.1 501 "},
  };
  for (auto& c : cases) {
    int fd = connect();
    send_all(fd, c.request);
    auto out = read_to_end(fd);
    ::close(fd);
    BOOST_TEST(out.find(c.status_line) == 0, c.status_line << " got "
                                                           << out.substr(0, 40));
    BOOST_TEST(out.find("refused") != std::string::npos);
  }
  BOOST_TEST(dispatched.load() == 0);
}

BOOST_AUTO_TEST_CASE(many_keep_alive_connections_lose_no_answer) {
  constexpr int clients = 40;
  constexpr int requests = 50;
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      int fd = connect();
      for (int r = 0; r < requests; ++r) {
        auto body = std::to_string(i) + "-" + std::to_string(r);
        bool last = r + 1 == requests;
        auto path = r % 5 == 0 ? "/blocking" : "/async";
        send_all(fd, std::string{"POST "} + path + " HTTP/1.1\r\n"
                       + "Content-Length: " + std::to_string(body.size())
                       + "\r\n" + (last ? "Connection: close\r\n" : "")
                       + "\r\n" + body);
        auto out = last ? read_to_end(fd) : read_until(fd, body);
        if (out.find(body) != std::string::npos)
          ++answered;
      }
      ::close(fd);
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(answered.load() == clients * requests);
}

BOOST_AUTO_TEST_SUITE_END()
