#include "adapters/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "adapters/clock.hpp"
#include "adapters/json.hpp"

namespace vantage {

namespace {

std::atomic<int> min_level{static_cast<int>(log_level::info)};
std::mutex out_mtx;

const char* level_name(log_level l) {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "info";
}

void escape_into(std::string& out, std::string_view s) {
  json_escape_to(out, s);
}

} // namespace

void set_log_level(log_level level) {
  min_level = static_cast<int>(level);
}

log_level parse_log_level(const std::string& s) {
  if (s == "debug")
    return log_level::debug;
  if (s == "warn")
    return log_level::warn;
  if (s == "error")
    return log_level::error;
  return log_level::info;
}

void log_event(log_level level, std::string_view component,
               std::string_view msg, std::string_view fields) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed))
    return;
  // Log timestamps are wall time on purpose: they describe the process, not
  // the domain, so they never read the injectable clock.
  system_clock_source wall;
  std::string line = "{\"ts\":\"";
  line += format_iso8601(wall.now_ms());
  line += "\",\"level\":\"";
  line += level_name(level);
  line += "\",\"component\":\"";
  escape_into(line, component);
  line += "\",\"msg\":\"";
  escape_into(line, msg);
  line += '"';
  if (!fields.empty()) {
    line += ',';
    line += fields;
  }
  line += "}\n";
  std::lock_guard<std::mutex> guard{out_mtx};
  std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace vantage
