#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vantage {

/// Appends `s` JSON-escaped (no quotes) to `out`: \" \\ \n \r \t \b \f, other
/// control chars as \u00XX; valid UTF-8 passes through; invalid UTF-8 bytes
/// become U+FFFD.
void json_escape_to(std::string& out, std::string_view s);

/// `s` as a JSON string literal, quotes included.
inline std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  json_escape_to(out, s);
  out += '"';
  return out;
}

/// Streaming JSON writer that manages commas itself.
///
/// Inside an object, call `key()` before each value (or begin_object /
/// begin_array). Non-finite doubles are written as `null`.
class json_writer {
public:
  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view k);
  json_writer& value(std::string_view v);
  json_writer& value(const char* v);
  json_writer& value(const std::string& v);
  json_writer& value(int64_t v);
  json_writer& value(int v);
  json_writer& value(uint64_t v);
  json_writer& value(double v);
  json_writer& value(bool v);
  json_writer& null();
  /// Minor units as a JSON number with two decimals: 24999 -> 249.99,
  /// 5 -> 0.05, -150 -> -1.50.
  json_writer& money(int64_t cents);
  /// Inserts already-serialized JSON as one value.
  json_writer& raw(std::string_view json);
  const std::string& str() const;
  std::string take();

private:
  /// Emits a comma if a sibling value precedes this one.
  void before_value();
  std::string out_;
  /// One entry per open container plus one for the top level: true once it
  /// holds at least one element.
  std::vector<bool> has_elem_ = std::vector<bool>(1, false);
  /// Set by key(): the next value belongs to that key (no comma).
  bool after_key_ = false;
};

} // namespace vantage
