#pragma once

#include <string>
#include <string_view>

namespace vantage {

/// `prefix` + 16 lowercase hex characters from a CSPRNG (64 bits), e.g.
/// "wl_8a2b3c4d5e6f0a1b". Opaque to clients.
std::string new_id(const char* prefix);

/// An RFC 4122 version-4 UUID from a CSPRNG (event ids).
std::string new_uuid();

/// True for 1..max characters of [A-Za-z0-9_-]: the shape of every id the
/// gateway accepts in a path, so junk never reaches storage.
bool plausible_id(const std::string& s, size_t max = 64);

/// A share token: 22 base62 characters encoding 16 CSPRNG bytes (the full
/// 128 bits; 62^22 > 2^128), e.g. "4fZq0Lr8TnW2xKc9PbA1sd".
std::string new_share_token();

/// True when `s` has the shape of a share token: exactly 22 base62
/// characters. Anything else is answered as unknown without a lookup.
bool plausible_share_token(std::string_view s);

} // namespace vantage
