#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace vantage {

/// `s` with ASCII letters in lower case (HTTP header names, media types).
inline std::string ascii_lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

} // namespace vantage
