#pragma once

// Internals of app/replay.cpp, exposed for test/unit/replay_test.cpp only.

#include <chrono>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>

#include "app/replay.hpp"

namespace vantage::replay_detail {

/// Parses "500ms", "30s", "16m", "2h", "31d" and sums like "1h30m".
/// Returns false and sets `err` on anything else.
bool parse_duration(std::string_view text, std::chrono::milliseconds& out,
                    std::string& err);

/// A captured value: its text (what `{{name}}` becomes inside a string) and
/// its JSON form (what a JSON value that is exactly "{{name}}" becomes in a
/// request body, so numbers stay numbers).
struct capture_value {
  std::string text;
  std::string json;
};

/// Captures of one scenario run.
struct capture_store {
  std::map<std::string, capture_value> values;
  /// Captures whose step failed to produce them: name -> why.
  std::map<std::string, std::string> failed;

  void set_string(const std::string& name, const std::string& value);

  /// Replaces every `{{name}}` in `in`. Returns false and sets `err` naming
  /// the first capture that is not available.
  bool substitute(std::string_view in, std::string& out,
                  std::string& err) const;
};

/// Partial match of `expected_json` (with operators and `{{captures}}`)
/// against `actual_json`. Returns true on a match; otherwise `why` says
/// where and how (e.g. `$.items: expected length 0, got 2`).
bool json_match(std::string_view expected_json, std::string_view actual_json,
                const capture_store& caps, std::string& why);

/// Extracts the value at `path` ("a.b[0].c") from `json` into `out`.
bool json_path_capture(std::string_view json, std::string_view path,
                       capture_value& out, std::string& err);

/// Runs a scenario given as text; `label` names it when it has no "name";
/// `source` (default: label) names it in parse errors.
replay_summary run_scenario_text(const std::string& text,
                                 const std::string& label,
                                 replay_target& target, std::ostream& out,
                                 const std::string& source = {});

} // namespace vantage::replay_detail
