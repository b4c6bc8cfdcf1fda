#include "adapters/json.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

namespace vantage {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

/// Length of the valid UTF-8 sequence starting at s[i] (2..4), or 0 when the
/// bytes there do not form one (overlong, surrogate, > U+10FFFF, truncated).
size_t utf8_seq_len(std::string_view s, size_t i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  auto n = s.size() - i;
  auto cont = [&](size_t k) {
    return k < n && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF)
    return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2))
      return 0;
    auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xE0 && b1 < 0xA0)
      return 0; // overlong
    if (b0 == 0xED && b1 >= 0xA0)
      return 0; // UTF-16 surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3))
      return 0;
    auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xF0 && b1 < 0x90)
      return 0; // overlong
    if (b0 == 0xF4 && b1 >= 0x90)
      return 0; // > U+10FFFF
    return 4;
  }
  return 0;
}

} // namespace

void json_escape_to(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size());
  size_t i = 0;
  while (i < s.size()) {
    // Most text is printable ASCII that needs no escape: append such runs
    // whole rather than a character at a time (the share view's response
    // and event bodies spent ~3% of the node's CPU here).
    auto run = i;
    while (run < s.size()) {
      auto r = static_cast<unsigned char>(s[run]);
      if (r < 0x20 || r >= 0x80 || r == '"' || r == '\\')
        break;
      ++run;
    }
    if (run > i) {
      out.append(s.data() + i, run - i);
      i = run;
      continue;
    }
    // Here s[i] is a quote, a backslash, a control character or the start
    // of a multi-byte sequence.
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default: // another control character
          out += "\\u00";
          out += hex_digits[c >> 4];
          out += hex_digits[c & 0xF];
      }
      ++i;
      continue;
    }
    if (auto len = utf8_seq_len(s, i); len > 0) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD"; // U+FFFD
      ++i;
    }
  }
}

void json_writer::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (has_elem_.back())
    out_ += ',';
  has_elem_.back() = true;
}

json_writer& json_writer::begin_object() {
  before_value();
  out_ += '{';
  has_elem_.push_back(false);
  return *this;
}

json_writer& json_writer::end_object() {
  out_ += '}';
  if (has_elem_.size() > 1) // never pop the top-level frame
    has_elem_.pop_back();
  after_key_ = false;
  return *this;
}

json_writer& json_writer::begin_array() {
  before_value();
  out_ += '[';
  has_elem_.push_back(false);
  return *this;
}

json_writer& json_writer::end_array() {
  out_ += ']';
  if (has_elem_.size() > 1) // never pop the top-level frame
    has_elem_.pop_back();
  after_key_ = false;
  return *this;
}

json_writer& json_writer::key(std::string_view k) {
  before_value();
  out_ += '"';
  json_escape_to(out_, k);
  out_ += "\":";
  after_key_ = true;
  return *this;
}

json_writer& json_writer::value(std::string_view v) {
  before_value();
  out_ += '"';
  json_escape_to(out_, v);
  out_ += '"';
  return *this;
}

json_writer& json_writer::value(const char* v) {
  if (v == nullptr)
    return null();
  return value(std::string_view{v});
}

json_writer& json_writer::value(const std::string& v) {
  return value(std::string_view{v});
}

json_writer& json_writer::value(int64_t v) {
  before_value();
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, res.ptr);
  return *this;
}

json_writer& json_writer::value(int v) {
  return value(static_cast<int64_t>(v));
}

json_writer& json_writer::value(uint64_t v) {
  before_value();
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, res.ptr);
  return *this;
}

json_writer& json_writer::value(double v) {
  if (!std::isfinite(v))
    return null();
  before_value();
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v); // shortest round-trip
  out_.append(buf, res.ptr);
  return *this;
}

json_writer& json_writer::value(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}

json_writer& json_writer::null() {
  before_value();
  out_ += "null";
  return *this;
}

json_writer& json_writer::money(int64_t cents) {
  before_value();
  // Work on the unsigned magnitude so INT64_MIN does not overflow.
  uint64_t mag = cents < 0 ? uint64_t{0} - static_cast<uint64_t>(cents)
                           : static_cast<uint64_t>(cents);
  if (cents < 0)
    out_ += '-';
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), mag / 100);
  out_.append(buf, res.ptr);
  auto frac = static_cast<unsigned>(mag % 100);
  out_ += '.';
  out_ += static_cast<char>('0' + frac / 10);
  out_ += static_cast<char>('0' + frac % 10);
  return *this;
}

json_writer& json_writer::raw(std::string_view json) {
  before_value();
  out_.append(json.data(), json.size());
  return *this;
}

const std::string& json_writer::str() const {
  return out_;
}

std::string json_writer::take() {
  std::string result = std::move(out_);
  out_.clear();
  has_elem_.assign(1, false);
  after_key_ = false;
  return result;
}

} // namespace vantage
