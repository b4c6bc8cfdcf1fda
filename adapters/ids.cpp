#include "adapters/ids.hpp"

#include <cstdint>
#include <stdexcept>

#include <openssl/rand.h>

namespace vantage {

namespace {

void random_bytes(unsigned char* buf, int n) {
  if (RAND_bytes(buf, n) != 1)
    throw std::runtime_error("RAND_bytes failed");
}

constexpr char hex_digits[] = "0123456789abcdef";

} // namespace

std::string new_id(const char* prefix) {
  unsigned char buf[8];
  random_bytes(buf, sizeof(buf));
  std::string out = prefix;
  for (auto b : buf) {
    out += hex_digits[b >> 4];
    out += hex_digits[b & 0xf];
  }
  return out;
}

std::string new_uuid() {
  unsigned char b[16];
  random_bytes(b, sizeof(b));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out += '-';
    out += hex_digits[b[i] >> 4];
    out += hex_digits[b[i] & 0xf];
  }
  return out;
}

std::string new_share_token() {
  static constexpr char base62[]
    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  unsigned char n[16];
  random_bytes(n, sizeof(n));
  // Long division of the 128-bit big-endian number by 62, 22 times: every
  // token has exactly 22 digits (leading zeros kept) and no bit is lost.
  std::string out(22, '0');
  for (int digit = 21; digit >= 0; --digit) {
    unsigned remainder = 0;
    for (auto& byte : n) {
      unsigned acc = (remainder << 8) | byte;
      byte = static_cast<unsigned char>(acc / 62);
      remainder = acc % 62;
    }
    out[static_cast<size_t>(digit)] = base62[remainder];
  }
  return out;
}

bool plausible_share_token(std::string_view s) {
  if (s.size() != 22)
    return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

bool plausible_id(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max)
    return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

} // namespace vantage
