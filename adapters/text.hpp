#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace vantage {

/// `s` with ASCII letters in lower case (HTTP header names, media types).
inline std::string ascii_lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

/// The non-empty parts of `s` between `sep` characters ("a,,b" -> a, b).
std::vector<std::string> split_list(std::string_view s, char sep = ',');

/// Appends `s` with & < > " ' escaped, safe in element text and in quoted
/// attribute values. Invalid UTF-8 becomes U+FFFD.
void html_escape_to(std::string& out, std::string_view s);

/// At most `max_chars` UTF-8 characters of `s`, with an ellipsis if cut.
std::string clip_chars(std::string_view s, size_t max_chars);

} // namespace vantage
