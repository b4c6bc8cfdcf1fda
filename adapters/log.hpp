#pragma once

#include <string>
#include <string_view>

namespace vantage {

enum class log_level { debug, info, warn, error };

/// One JSON line per event on stderr: {"ts","level","component","msg",...}.
/// `fields` is an already-serialized JSON fragment such as
/// `"request_id":"r1","status":200` (may be empty).
void log_event(log_level level, std::string_view component,
               std::string_view msg, std::string_view fields = {});

/// Minimum level, from VANTAGE_LOG_LEVEL (debug|info|warn|error); default info.
void set_log_level(log_level level);
log_level parse_log_level(const std::string& s);

} // namespace vantage
