#define BOOST_TEST_MODULE circuit_breaker_test
#include <boost/test/unit_test.hpp>

#include "adapters/circuit_breaker.hpp"

#include <atomic>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace vantage {

// So that a failing BOOST_TEST can print the states it compared.
std::ostream& operator<<(std::ostream& os, breaker_state s) {
  return os << to_string(s);
}

} // namespace vantage

using namespace vantage;
using namespace std::chrono_literals;

namespace {

constexpr auto fast = 10ms;
constexpr auto slow = 5001ms; // strictly above the 5 s threshold

/// A breaker with the seed's settings on a clock that moves only when told.
struct breaker_fixture {
  std::shared_ptr<virtual_clock> clock
      = std::make_shared<virtual_clock>(1'700'000'000'000);
  circuit_breaker cb{circuit_breaker_options{}, clock};

  /// One permitted call and its result.
  void call(bool ok, std::chrono::milliseconds d = fast) {
    BOOST_REQUIRE_MESSAGE(cb.try_acquire(),
                          "refused in state " << to_string(cb.state()));
    if (ok)
      cb.on_success(d);
    else
      cb.on_failure(d);
  }

  void trip() {
    for (int i = 0; i < 3; ++i)
      call(false);
    BOOST_REQUIRE(cb.state() == breaker_state::open);
  }

  /// From open, past the wait (the wait is strict: 30 s + 1 ms).
  void wait_out() { clock->advance(30001ms); }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(circuit_breaker_tests, breaker_fixture)

BOOST_AUTO_TEST_CASE(names_of_states) {
  BOOST_TEST(to_string(breaker_state::closed) == std::string{"closed"});
  BOOST_TEST(to_string(breaker_state::open) == std::string{"open"});
  BOOST_TEST(to_string(breaker_state::half_open) == std::string{"half_open"});
}

BOOST_AUTO_TEST_CASE(stays_closed_below_minimum_calls) {
  call(false);
  call(false);
  // 100% failures, but only 2 of the 3 calls needed to rate.
  BOOST_TEST(cb.failure_rate() == -1.0);
  BOOST_TEST(cb.slow_call_rate() == -1.0);
  BOOST_TEST(cb.state() == breaker_state::closed);
  BOOST_TEST(cb.transitions() == 0);
  call(true); // 2 of 3 = 66.7% >= 50%
  BOOST_TEST(cb.state() == breaker_state::open);
}

BOOST_AUTO_TEST_CASE(opens_at_exactly_the_failure_threshold) {
  call(true);
  call(false);
  call(true);
  BOOST_TEST(cb.failure_rate() == 100.0 / 3,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(cb.state() == breaker_state::closed); // 33% < 50%
  call(false);
  BOOST_TEST(cb.failure_rate() == 50.0);
  BOOST_TEST(cb.state() == breaker_state::open); // 2 of 4: 50% >= 50%
  BOOST_TEST(cb.transitions() == 1);
}

BOOST_AUTO_TEST_CASE(slow_successes_open_at_the_slow_rate_threshold) {
  call(true);
  call(true);
  for (int i = 0; i < 7; ++i)
    call(true, slow);
  BOOST_TEST(cb.slow_call_rate() == 700.0 / 9,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(cb.failure_rate() == 0.0);
  BOOST_TEST(cb.state() == breaker_state::closed); // 77.8% < 80%
  call(true, slow);
  BOOST_TEST(cb.slow_call_rate() == 80.0);
  BOOST_TEST(cb.state() == breaker_state::open); // 8 of 10: 80% >= 80%
}

BOOST_AUTO_TEST_CASE(slow_means_strictly_longer_than_the_threshold) {
  for (int i = 0; i < 10; ++i)
    call(true, 5000ms);
  BOOST_TEST(cb.slow_call_rate() == 0.0);
  BOOST_TEST(cb.state() == breaker_state::closed);
}

BOOST_AUTO_TEST_CASE(slow_failures_count_as_slow) {
  call(true);
  call(true);
  call(false, slow);
  BOOST_TEST(cb.slow_call_rate() == 100.0 / 3,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(cb.failure_rate() == 100.0 / 3,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(cb.state() == breaker_state::closed);
}

BOOST_AUTO_TEST_CASE(window_slides_over_the_last_ten_calls) {
  // 3 failures at positions 3, 6 and 9; never 50% on the way.
  for (bool ok :
       {true, true, false, true, true, false, true, true, false, true})
    call(ok);
  BOOST_TEST(cb.failure_rate() == 30.0);
  // Each newer success pushes out the oldest result.
  const double expected[] = {30, 30, 20, 20, 20, 10, 10, 10, 0, 0};
  for (double rate : expected) {
    call(true);
    BOOST_TEST(cb.failure_rate() == rate);
  }
  // Now 10 successes; 5 failures make it 5 of the last 10.
  for (int i = 0; i < 4; ++i)
    call(false);
  BOOST_TEST(cb.failure_rate() == 40.0);
  BOOST_TEST(cb.state() == breaker_state::closed);
  call(false);
  BOOST_TEST(cb.state() == breaker_state::open);
}

BOOST_AUTO_TEST_CASE(open_refuses_until_the_wait_has_passed) {
  trip();
  BOOST_TEST(!cb.try_acquire());
  clock->advance(29999ms);
  BOOST_TEST(!cb.try_acquire());
  clock->advance(1ms); // exactly 30 s: Resilience4j waits until after it
  BOOST_TEST(!cb.try_acquire());
  BOOST_TEST(cb.state() == breaker_state::open);
  BOOST_TEST(cb.refused() == 3);
  clock->advance(1ms);
  BOOST_TEST(cb.try_acquire());
  BOOST_TEST(cb.state() == breaker_state::half_open);
  BOOST_TEST(cb.try_acquire());
  BOOST_TEST(!cb.try_acquire()); // the 3rd probe
  BOOST_TEST(cb.refused() == 4);
}

BOOST_AUTO_TEST_CASE(state_moves_to_half_open_without_a_permission_request) {
  trip();
  wait_out();
  BOOST_TEST(cb.state() == breaker_state::half_open);
  BOOST_TEST(cb.failure_rate() == -1.0); // a fresh half-open window
  BOOST_TEST(cb.transitions() == 2);
}

BOOST_AUTO_TEST_CASE(half_open_results_do_not_give_permits_back) {
  trip();
  wait_out();
  BOOST_REQUIRE(cb.try_acquire());
  BOOST_REQUIRE(cb.try_acquire());
  cb.on_success(fast);
  // One probe answered, one in flight: still deciding, still full.
  BOOST_TEST(cb.state() == breaker_state::half_open);
  BOOST_TEST(!cb.try_acquire());
  cb.on_success(fast);
  BOOST_TEST(cb.state() == breaker_state::closed);
}

BOOST_AUTO_TEST_CASE(ignored_call_releases_a_half_open_permit) {
  trip();
  wait_out();
  BOOST_REQUIRE(cb.try_acquire());
  BOOST_REQUIRE(cb.try_acquire());
  cb.on_ignored();
  BOOST_TEST(cb.try_acquire());
  BOOST_TEST(!cb.try_acquire());
  cb.on_success(fast);
  cb.on_success(fast);
  BOOST_TEST(cb.state() == breaker_state::closed);
}

BOOST_AUTO_TEST_CASE(two_good_probes_close_it_with_a_fresh_window) {
  trip();
  wait_out();
  call(true);
  BOOST_TEST(cb.state() == breaker_state::half_open);
  call(true);
  BOOST_TEST(cb.state() == breaker_state::closed);
  BOOST_TEST(cb.failure_rate() == -1.0);
  // The 3 failures that opened it are gone: 2 more stay below the minimum.
  call(false);
  call(false);
  BOOST_TEST(cb.state() == breaker_state::closed);
}

BOOST_AUTO_TEST_CASE(one_bad_probe_of_two_reopens_it) {
  trip();
  wait_out();
  call(true);
  BOOST_TEST(cb.state()
             == breaker_state::half_open); // 1 result decides nothing
  call(false);
  BOOST_TEST(cb.state() == breaker_state::open); // 1 of 2: 50% >= 50%
  BOOST_TEST(cb.failure_rate() == 50.0);
  // A new full wait starts at the reopening.
  clock->advance(30000ms);
  BOOST_TEST(!cb.try_acquire());
  clock->advance(1ms);
  BOOST_TEST(cb.try_acquire());
}

BOOST_AUTO_TEST_CASE(bad_first_probe_waits_for_the_second) {
  trip();
  wait_out();
  call(false);
  BOOST_TEST(cb.state() == breaker_state::half_open);
  call(true);
  BOOST_TEST(cb.state() == breaker_state::open);
}

BOOST_AUTO_TEST_CASE(slow_probes_reopen_it) {
  trip();
  wait_out();
  call(true, slow);
  call(true);
  BOOST_TEST(cb.state() == breaker_state::closed); // 50% slow < 80%
  trip();
  wait_out();
  call(true, slow);
  call(true, slow);
  BOOST_TEST(cb.state() == breaker_state::open); // 100% slow
}

BOOST_AUTO_TEST_CASE(late_results_while_open_are_ignored) {
  // Five calls in flight; three fail and open the breaker.
  for (int i = 0; i < 5; ++i)
    BOOST_REQUIRE(cb.try_acquire());
  for (int i = 0; i < 3; ++i)
    cb.on_failure(fast);
  BOOST_REQUIRE(cb.state() == breaker_state::open);
  BOOST_TEST(cb.failure_rate() == 100.0);
  // The other two answer late: the window that opened it is unchanged.
  cb.on_success(fast);
  cb.on_success(fast);
  BOOST_TEST(cb.failure_rate() == 100.0);
  BOOST_TEST(cb.state() == breaker_state::open);
  // And they did not leak into the half-open window either.
  wait_out();
  BOOST_TEST(cb.state() == breaker_state::half_open);
  BOOST_TEST(cb.failure_rate() == -1.0);
}

BOOST_AUTO_TEST_CASE(late_results_cannot_close_half_open_without_probes) {
  for (int i = 0; i < 5; ++i)
    BOOST_REQUIRE(cb.try_acquire());
  for (int i = 0; i < 3; ++i)
    cb.on_failure(fast);
  wait_out();
  BOOST_REQUIRE(cb.state() == breaker_state::half_open);
  // Two calls from before the breaker opened answer now, no probe is out.
  cb.on_success(fast);
  cb.on_success(fast);
  BOOST_TEST(cb.state() == breaker_state::half_open);
  // Both probes are still available and decide.
  call(false);
  call(false);
  BOOST_TEST(cb.state() == breaker_state::open);
}

BOOST_AUTO_TEST_CASE(transitions_callback_sees_each_transition_once_in_order) {
  std::vector<std::string> seen;
  cb.on_transition([&](breaker_state from, breaker_state to) {
    // Runs outside the lock: calling back in must not deadlock.
    BOOST_TEST(cb.failure_rate() >= -1.0);
    seen.push_back(std::string{to_string(from)} + "->" + to_string(to));
  });
  trip();
  wait_out();
  call(true);
  call(false); // reopens
  wait_out();
  call(true);
  call(true); // closes
  const std::vector<std::string> expected{
      "closed->open",    "open->half_open",   "half_open->open",
      "open->half_open", "half_open->closed",
  };
  BOOST_TEST(seen == expected, boost::test_tools::per_element());
  BOOST_TEST(cb.transitions() == 5);
}

BOOST_AUTO_TEST_CASE(throwing_callback_does_not_reach_the_caller) {
  int calls = 0;
  cb.on_transition([&](breaker_state, breaker_state) {
    ++calls;
    throw std::runtime_error("metric sink down");
  });
  for (int i = 0; i < 2; ++i)
    call(false);
  BOOST_CHECK_NO_THROW(call(false));
  wait_out();
  BOOST_CHECK_NO_THROW(cb.state());
  BOOST_TEST(calls == 2);
}

BOOST_AUTO_TEST_CASE(rejects_invalid_options) {
  circuit_breaker_options o;
  o.window_size = 0;
  BOOST_CHECK_THROW((circuit_breaker{o, clock}), std::invalid_argument);
  o = {};
  o.failure_rate_threshold = 0;
  BOOST_CHECK_THROW((circuit_breaker{o, clock}), std::invalid_argument);
  o = {};
  o.half_open_calls = 0;
  BOOST_CHECK_THROW((circuit_breaker{o, clock}), std::invalid_argument);
  BOOST_CHECK_THROW((circuit_breaker{circuit_breaker_options{}, nullptr}),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(minimum_is_capped_at_the_window) {
  circuit_breaker_options o;
  o.window_size = 2;
  o.minimum_calls = 5;
  circuit_breaker small{o, clock};
  BOOST_REQUIRE(small.try_acquire());
  small.on_success(fast);
  BOOST_REQUIRE(small.try_acquire());
  small.on_failure(fast);
  BOOST_TEST(small.failure_rate() == 50.0);
  BOOST_TEST(small.state() == breaker_state::open);
}

BOOST_AUTO_TEST_CASE(concurrent_callers_keep_the_books_straight) {
  std::atomic<int64_t> seen{0};
  std::atomic<bool> order_ok{true};
  std::mutex seen_mtx;
  breaker_state last_to = breaker_state::closed;
  cb.on_transition([&](breaker_state from, breaker_state to) {
    std::lock_guard<std::mutex> guard{seen_mtx};
    if (from != last_to || from == to)
      order_ok = false;
    last_to = to;
    ++seen;
  });
  constexpr int threads = 4;
  constexpr int per_thread = 20000;
  std::atomic<int64_t> granted{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&] {
      ++ready;
      while (ready.load() < threads)
        std::this_thread::yield();
      for (int i = 0; i < per_thread; ++i) {
        // Every caller moves time, so open waits pass whatever the
        // scheduling; phases of failures and of successes make the breaker
        // cycle through all its states.
        clock->advance(10ms);
        if (!cb.try_acquire())
          continue;
        ++granted;
        bool bad_phase = (i / 1000) % 2 == 0;
        if (i % 7 == 0)
          cb.on_ignored();
        else if (bad_phase)
          cb.on_failure(fast);
        else
          cb.on_success(i % 5 == 0 ? slow : fast);
      }
    });
  }
  for (auto& c : callers)
    c.join();
  (void)cb.state(); // may move open -> half_open; delivered before return
  BOOST_TEST_MESSAGE("transitions: " << cb.transitions()
                                     << ", refused: " << cb.refused());
  BOOST_TEST(granted.load() + cb.refused() == int64_t{threads} * per_thread);
  // At least a few full cycles closed -> open -> half_open -> closed.
  BOOST_TEST(cb.transitions() >= 9);
  BOOST_TEST(seen.load() == cb.transitions());
  BOOST_TEST(order_ok.load());
  double rate = cb.failure_rate();
  BOOST_TEST((rate == -1.0 || (rate >= 0.0 && rate <= 100.0)));
}

BOOST_AUTO_TEST_SUITE_END()
