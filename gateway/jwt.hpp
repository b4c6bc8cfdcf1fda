#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "messages/user.hpp"

namespace vantage {

/// Development secret used when VANTAGE_JWT_SECRET is unset; printed by
/// `make run`.
inline constexpr const char* default_dev_jwt_secret
  = "vantage-dev-secret-change-me";

/// Key material; an empty field means that algorithm is not accepted.
struct jwt_config {
  std::string hs256_secret;
  std::string rs256_public_key_pem;
};

/// Verifies bearer tokens. Accepts exactly HS256 (when a secret is
/// configured) or RS256 (when a public key is configured); never `none`,
/// never a token whose alg does not match a configured key type.
class jwt_verifier {
public:
  /// Returns nullptr with `err` set when neither key is configured or the
  /// PEM public key cannot be parsed.
  static std::unique_ptr<jwt_verifier> create(const jwt_config& cfg,
                                              std::string& err);
  /// Returns claims or std::nullopt with `why` set (malformed, bad
  /// signature, wrong algorithm, expired, missing sub, bad claim value).
  /// `now_epoch_s` comes from the injectable clock.
  virtual std::optional<user_claims>
  verify(std::string_view token, int64_t now_epoch_s, std::string& why) const
    = 0;
  virtual ~jwt_verifier() = default;
};

/// Mints an HS256 token carrying `c` (sub, name, email, tz, region,
/// account_type) and `exp`.
std::string mint_hs256(const user_claims& c, const std::string& secret,
                       int64_t exp_epoch_s);
/// Mints an RS256 token; throws std::runtime_error if the PEM private key
/// cannot be loaded or signing fails.
std::string mint_rs256(const user_claims& c,
                       const std::string& private_key_pem,
                       int64_t exp_epoch_s);

} // namespace vantage
