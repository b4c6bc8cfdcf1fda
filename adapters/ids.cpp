#include "adapters/ids.hpp"

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace vantage {

namespace {

/// CSPRNG output drawn from OpenSSL 4 KiB at a time per thread. A
/// RAND_bytes call costs about the same up to a few KiB (1.36 us for 16
/// bytes, 2.5 us for 4096 here), and every request takes 16-48 bytes in
/// small pieces (request id, event ids, tokens). Bytes handed out are wiped
/// from the pool. The node forks only to exec Chromium, whose child never
/// draws from it, so no two processes share a pool.
void random_bytes(unsigned char* buf, int n) {
  struct pool_t {
    unsigned char bytes[4096];
    size_t used = sizeof(bytes);
    ~pool_t() { OPENSSL_cleanse(bytes, sizeof(bytes)); }
  };
  thread_local pool_t pool;
  auto want = static_cast<size_t>(n);
  if (want > sizeof(pool.bytes)) {
    if (RAND_bytes(buf, n) != 1)
      throw std::runtime_error("RAND_bytes failed");
    return;
  }
  if (pool.used + want > sizeof(pool.bytes)) {
    if (RAND_bytes(pool.bytes, static_cast<int>(sizeof(pool.bytes))) != 1)
      throw std::runtime_error("RAND_bytes failed");
    pool.used = 0;
  }
  std::memcpy(buf, pool.bytes + pool.used, want);
  OPENSSL_cleanse(pool.bytes + pool.used, want);
  pool.used += want;
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
