#pragma once

// `vantage replay`: runs scenario files (scenarios/README.md describes the
// format) against a node and reports one PASS/FAIL line per step.

#include <chrono>
#include <functional>
#include <ostream>
#include <string>

namespace vantage {

/// Where a scenario runs.
struct replay_target {
  /// e.g. "http://127.0.0.1:41234" (no trailing slash needed).
  std::string base_url;
  /// Advances the target's clock; throws std::exception on failure (the
  /// `advance` step then fails with its what()).
  std::function<void(std::chrono::milliseconds)> advance_clock;
  /// Kafka bootstrap list for `expect_event` steps; empty = those steps fail.
  std::string kafka_bootstrap;
  /// How far every scenario replayed against this target has advanced its
  /// clock: the target's "now" is wall time plus this, and tokens are
  /// minted against it (one node serves several scenario files).
  std::chrono::milliseconds advanced{0};
};

struct replay_summary {
  int passed = 0;
  int failed = 0;
};

/// Runs one scenario file against `target`, printing a line per step to `out`
/// (`PASS scenario/step` or `FAIL scenario/step: why`). A file that cannot be
/// read or parsed counts as one failed step named after the file.
replay_summary run_scenario_file(const std::string& path, replay_target& target,
                                 std::ostream& out);

} // namespace vantage
