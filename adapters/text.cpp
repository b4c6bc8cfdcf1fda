#include "adapters/text.hpp"

#include <algorithm>

namespace vantage {

std::vector<std::string> split_list(std::string_view s, char sep) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= s.size();) {
    auto end = std::min(s.find(sep, at), s.size());
    if (end > at)
      out.emplace_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::string clip_chars(std::string_view s, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && chars++ == max_chars)
      return std::string{s.substr(0, i)} + "\xE2\x80\xA6";
  }
  return std::string{s};
}

void html_escape_to(std::string& out, std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '&': out += "&amp;"; ++i; continue;
      case '<': out += "&lt;"; ++i; continue;
      case '>': out += "&gt;"; ++i; continue;
      case '"': out += "&quot;"; ++i; continue;
      case '\'': out += "&#39;"; ++i; continue;
      default: break;
    }
    if (c < 0x80) {
      // Controls other than tab and newline have no business in a page.
      out += c < 0x20 && c != '\t' && c != '\n' ? ' ' : static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD"; // U+FFFD for a byte that is not UTF-8
      ++i;
    }
  }
}

} // namespace vantage
