#pragma once

// Deterministic actor tests on CAF's test coordinator: one thread, simulated
// time, messages run only when the test says so.

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "messages/type_ids.hpp"

namespace caf {
/// Lets Boost.Test print caf::error in failed checks.
inline std::ostream& boost_test_print_type(std::ostream& os, const error& x) {
  return os << to_string(x);
}
} // namespace caf

namespace vantage::test {

class test_config : public caf::actor_system_config {
public:
  test_config() {
    register_message_types(*this);
    set("scheduler.policy", caf::atom("testing"));
    set("logger.verbosity", caf::atom("quiet"));
  }
};

struct caf_fixture {
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
    = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());

  /// Runs every pending message (not timeouts).
  void run() {
    while (sched.has_job())
      sched.run();
  }

  /// Moves simulated time forward and fires what falls due.
  void advance(caf::timespan d) {
    sched.clock().advance_time(d);
    run();
  }
};

} // namespace vantage::test
