#include "gateway/route_template.hpp"

#include <algorithm>
#include <stdexcept>

namespace vantage {

namespace {

bool accepts(route_template::charset set, std::string_view value) {
  auto all_of = [&](auto allowed) {
    for (char ch : value)
      if (!allowed(ch))
        return false;
    return true;
  };
  switch (set) {
    case route_template::charset::any:
      return true;
    case route_template::charset::file:
      return all_of([](char ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
               || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'
               || ch == '-';
      });
    case route_template::charset::sha256:
      return value.size() == 64 && all_of([](char ch) {
               return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
             });
  }
  return false;
}

route_template::charset charset_named(std::string_view name,
                                      std::string_view text) {
  if (name.empty())
    return route_template::charset::any;
  if (name == "file")
    return route_template::charset::file;
  if (name == "sha256")
    return route_template::charset::sha256;
  throw std::invalid_argument("route " + std::string{text}
                              + ": unknown parameter charset "
                              + std::string{name});
}

} // namespace

route_template::route_template(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] != '{') {
      auto end = text.find('{', pos);
      if (end == std::string_view::npos)
        end = text.size();
      pieces_.push_back({std::string{text.substr(pos, end - pos)}, {}});
      pos = end;
      continue;
    }
    auto close = text.find('}', pos);
    if (close == std::string_view::npos)
      throw std::invalid_argument("route " + std::string{text}
                                  + ": unclosed '{'");
    if (!pieces_.empty() && pieces_.back().literal.empty())
      throw std::invalid_argument("route " + std::string{text}
                                  + ": two parameters in a row");
    auto inner = text.substr(pos + 1, close - pos - 1);
    auto colon = inner.find(':');
    auto set = colon == std::string_view::npos
                 ? charset::any
                 : charset_named(inner.substr(colon + 1), text);
    pieces_.push_back({{}, set});
    pos = close + 1;
  }
}

bool route_template::match(std::string_view path,
                           std::vector<std::string>& params) const {
  params.clear();
  size_t pos = 0;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const auto& p = pieces_[i];
    if (!p.literal.empty()) {
      if (path.compare(pos, p.literal.size(), p.literal) != 0)
        return false;
      pos += p.literal.size();
      continue;
    }
    // A parameter takes the rest of its segment but for the literal text
    // that follows it there (".png" after "{hash}").
    auto segment_end = path.find('/', pos);
    if (segment_end == std::string_view::npos)
      segment_end = path.size();
    size_t suffix = 0;
    if (i + 1 < pieces_.size()) {
      const auto& next = pieces_[i + 1].literal;
      suffix = std::min(next.find('/'), next.size());
    }
    if (segment_end < pos + suffix + 1)
      return false;
    auto value = path.substr(pos, segment_end - suffix - pos);
    if (!accepts(p.accepts, value))
      return false;
    params.emplace_back(value);
    pos += value.size();
  }
  return pos == path.size();
}

} // namespace vantage
