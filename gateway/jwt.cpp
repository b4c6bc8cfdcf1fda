#include "gateway/jwt.hpp"

#include <array>
#include <cmath>
#include <stdexcept>
#include <vector>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <simdjson.h>

#include "adapters/json.hpp"

namespace vantage {

namespace {

constexpr size_t max_token_size = 8 * 1024;
constexpr size_t max_name_chars = 200;
constexpr size_t max_email_bytes = 254;
constexpr size_t max_tz_bytes = 64;
constexpr size_t max_sub_chars = 128;

// -- base64url -----------------------------------------------------------------

constexpr char b64url_alphabet[]
  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += b64url_alphabet[(v >> 18) & 63];
    out += b64url_alphabet[(v >> 12) & 63];
    out += b64url_alphabet[(v >> 6) & 63];
    out += b64url_alphabet[v & 63];
  }
  auto rest = in.size() - i;
  if (rest == 1) {
    uint32_t v = byte(i) << 16;
    out += b64url_alphabet[(v >> 18) & 63];
    out += b64url_alphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += b64url_alphabet[(v >> 18) & 63];
    out += b64url_alphabet[(v >> 12) & 63];
    out += b64url_alphabet[(v >> 6) & 63];
  }
  return out;
}

int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

/// Strict decoder: unpadded base64url only, canonical trailing bits.
bool b64url_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 == 1)
    return false;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64url_value(c);
    if (v < 0)
      return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Leftover bits must be zero, otherwise several encodings map to one value.
  return (acc & ((1u << bits) - 1)) == 0;
}

// -- OpenSSL helpers -----------------------------------------------------------

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;

struct bio_deleter {
  void operator()(BIO* p) const { BIO_free(p); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;

std::array<unsigned char, 32> hmac_sha256(std::string_view key,
                                          std::string_view data) {
  std::array<unsigned char, 32> mac{};
  unsigned int len = 0;
  auto ok = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                 reinterpret_cast<const unsigned char*>(data.data()),
                 data.size(), mac.data(), &len);
  if (ok == nullptr || len != mac.size())
    throw std::runtime_error("HMAC-SHA256 failed");
  return mac;
}

pkey_ptr load_public_key(const std::string& pem) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio)
    return nullptr;
  return pkey_ptr{PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)};
}

pkey_ptr load_private_key(const std::string& pem) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio)
    return nullptr;
  return pkey_ptr{
    PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
}

// -- claims --------------------------------------------------------------------

bool valid_sub(std::string_view s) {
  if (s.empty() || s.size() > max_sub_chars)
    return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':'
              || c == '@' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

bool valid_tz(std::string_view s) {
  // IANA names such as "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires",
  // "Etc/GMT+5".
  if (s.empty() || s.size() > max_tz_bytes || s.front() == '/'
      || s.find("..") != std::string_view::npos)
    return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '/' || c == '+'
              || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

size_t utf8_chars(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80)
      ++n;
  return n;
}

bool has_control_chars(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
      return true;
  return false;
}

/// Parses an integral NumericDate; fractional values are truncated.
bool numeric_date(simdjson::dom::element e, int64_t& out) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::INT64:
      out = int64_t(e);
      return true;
    case element_type::UINT64: {
      uint64_t u = uint64_t(e);
      if (u > static_cast<uint64_t>(INT64_MAX))
        return false;
      out = static_cast<int64_t>(u);
      return true;
    }
    case element_type::DOUBLE: {
      double d = double(e);
      if (!std::isfinite(d) || d < -9.2e18 || d > 9.2e18)
        return false;
      out = static_cast<int64_t>(std::floor(d));
      return true;
    }
    default:
      return false;
  }
}

/// Parses `json` into `doc` with a per-thread parser; false on error or
/// when the document is not an object.
bool parse_object(simdjson::dom::parser& parser, std::string_view json,
                  simdjson::dom::object& obj) {
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS)
    return false;
  return doc.get_object().get(obj) == simdjson::SUCCESS;
}

// -- verifier ------------------------------------------------------------------

class verifier_impl final : public jwt_verifier {
public:
  verifier_impl(std::string secret, pkey_ptr pub)
    : secret_(std::move(secret)), pub_(std::move(pub)) {
  }

  std::optional<user_claims> verify(std::string_view token,
                                    int64_t now_epoch_s,
                                    std::string& why) const override {
    if (token.size() > max_token_size) {
      why = "malformed token: too large";
      return std::nullopt;
    }
    auto dot1 = token.find('.');
    auto dot2 = dot1 == std::string_view::npos ? dot1
                                               : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos
        || token.find('.', dot2 + 1) != std::string_view::npos) {
      why = "malformed token: expected three segments";
      return std::nullopt;
    }
    auto header_b64 = token.substr(0, dot1);
    auto payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
    auto sig_b64 = token.substr(dot2 + 1);
    auto signing_input = token.substr(0, dot2);
    std::string header, payload, sig;
    if (header_b64.empty() || payload_b64.empty()
        || !b64url_decode(header_b64, header)
        || !b64url_decode(payload_b64, payload)
        || !b64url_decode(sig_b64, sig)) {
      why = "malformed token: bad base64url";
      return std::nullopt;
    }
    thread_local simdjson::dom::parser parser;
    // -- header: pick the algorithm strictly from the configured keys.
    std::string alg;
    {
      simdjson::dom::object hdr;
      if (!parse_object(parser, header, hdr)) {
        why = "malformed token: header is not a JSON object";
        return std::nullopt;
      }
      bool seen_alg = false;
      for (auto field : hdr) {
        if (field.key == "alg") {
          std::string_view a;
          if (seen_alg || field.value.get_string().get(a) != simdjson::SUCCESS) {
            why = "malformed token: bad alg";
            return std::nullopt;
          }
          seen_alg = true;
          alg = std::string{a};
        } else if (field.key == "crit") {
          why = "malformed token: unsupported crit header";
          return std::nullopt;
        }
      }
      if (!seen_alg) {
        why = "malformed token: missing alg";
        return std::nullopt;
      }
    }
    if (alg == "HS256" && !secret_.empty()) {
      auto mac = hmac_sha256(secret_, signing_input);
      if (sig.size() != mac.size()
          || CRYPTO_memcmp(sig.data(), mac.data(), mac.size()) != 0) {
        why = "bad signature";
        return std::nullopt;
      }
    } else if (alg == "RS256" && pub_) {
      if (sig.size() != static_cast<size_t>(EVP_PKEY_get_size(pub_.get()))
          || !rs256_verify(signing_input, sig)) {
        why = "bad signature";
        return std::nullopt;
      }
    } else {
      why = "wrong algorithm: " + alg.substr(0, 32);
      return std::nullopt;
    }
    // -- payload (only after the signature checks out).
    simdjson::dom::object body;
    if (!parse_object(parser, payload, body)) {
      why = "malformed token: payload is not a JSON object";
      return std::nullopt;
    }
    return check_claims(body, now_epoch_s, why);
  }

private:
  bool rs256_verify(std::string_view input, const std::string& sig) const {
    md_ctx_ptr ctx{EVP_MD_CTX_new()};
    if (!ctx
        || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                                pub_.get())
             != 1)
      return false;
    return EVP_DigestVerify(ctx.get(),
                            reinterpret_cast<const unsigned char*>(sig.data()),
                            sig.size(),
                            reinterpret_cast<const unsigned char*>(
                              input.data()),
                            input.size())
           == 1;
  }

  static std::optional<user_claims>
  check_claims(simdjson::dom::object body, int64_t now, std::string& why) {
    using simdjson::dom::element_type;
    user_claims c;
    bool have_sub = false, have_exp = false, have_name = false;
    bool seen_email = false, seen_tz = false, seen_region = false,
         seen_type = false, seen_nbf = false;
    int64_t exp = 0;
    auto bad = [&](const char* claim) {
      why = std::string{"bad claim value: "} + claim;
      return std::nullopt;
    };
    // Reads an optional string claim; null counts as absent. Duplicates are
    // rejected so no two parsers can disagree about the value.
    auto opt_string = [](simdjson::dom::element e, bool& seen,
                         std::string_view& out) {
      if (seen)
        return false;
      seen = true;
      if (e.type() == element_type::NULL_VALUE)
        return true;
      return e.get_string().get(out) == simdjson::SUCCESS;
    };
    for (auto field : body) {
      auto k = field.key;
      auto v = field.value;
      std::string_view s;
      if (k == "sub") {
        if (have_sub)
          return bad("sub");
        if (v.get_string().get(s) != simdjson::SUCCESS || !valid_sub(s))
          return bad("sub");
        have_sub = true;
        c.user_id = std::string{s};
      } else if (k == "exp") {
        if (have_exp || !numeric_date(v, exp))
          return bad("exp");
        have_exp = true;
      } else if (k == "nbf") {
        int64_t nbf = 0;
        if (seen_nbf || !numeric_date(v, nbf))
          return bad("nbf");
        seen_nbf = true;
        if (nbf > now) {
          why = "token not yet valid";
          return std::nullopt;
        }
      } else if (k == "name") {
        bool seen = have_name;
        s = {};
        if (!opt_string(v, seen, s) || utf8_chars(s) > max_name_chars
            || has_control_chars(s))
          return bad("name");
        have_name = true;
        c.display_name = std::string{s};
      } else if (k == "email") {
        s = {};
        if (!opt_string(v, seen_email, s) || s.size() > max_email_bytes
            || has_control_chars(s))
          return bad("email");
        c.email = std::string{s};
      } else if (k == "tz") {
        s = {};
        if (!opt_string(v, seen_tz, s) || !(s.empty() || valid_tz(s)))
          return bad("tz");
        if (!s.empty())
          c.tz = std::string{s};
      } else if (k == "region") {
        s = {};
        if (!opt_string(v, seen_region, s))
          return bad("region");
        if (!s.empty()) {
          if (s != "us" && s != "eu" && s != "apac")
            return bad("region");
          c.region = std::string{s};
        }
      } else if (k == "account_type") {
        s = {};
        if (!opt_string(v, seen_type, s))
          return bad("account_type");
        if (!s.empty()) {
          if (s != "customer" && s != "internal" && s != "qa" && s != "admin")
            return bad("account_type");
          c.account_type = std::string{s};
        }
      }
      // Other registered/private claims (iat, iss, aud, jti, ...) are ignored.
    }
    if (!have_sub) {
      why = "missing sub";
      return std::nullopt;
    }
    if (!have_exp) {
      why = "missing exp";
      return std::nullopt;
    }
    if (exp <= now) {
      why = "token expired";
      return std::nullopt;
    }
    if (c.display_name.empty())
      c.display_name = c.user_id;
    return c;
  }

  std::string secret_;
  pkey_ptr pub_;
};

std::string claims_payload(const user_claims& c, int64_t exp) {
  json_writer w;
  w.begin_object();
  w.key("sub").value(c.user_id);
  if (!c.display_name.empty())
    w.key("name").value(c.display_name);
  if (!c.email.empty())
    w.key("email").value(c.email);
  if (!c.tz.empty())
    w.key("tz").value(c.tz);
  if (!c.region.empty())
    w.key("region").value(c.region);
  if (!c.account_type.empty())
    w.key("account_type").value(c.account_type);
  w.key("exp").value(exp);
  w.end_object();
  return w.take();
}

} // namespace

std::unique_ptr<jwt_verifier> jwt_verifier::create(const jwt_config& cfg,
                                                   std::string& err) {
  pkey_ptr pub;
  if (!cfg.rs256_public_key_pem.empty()) {
    pub = load_public_key(cfg.rs256_public_key_pem);
    if (!pub) {
      err = "cannot parse RS256 public key (expected a PEM "
            "\"BEGIN PUBLIC KEY\" block)";
      return nullptr;
    }
    if (EVP_PKEY_get_base_id(pub.get()) != EVP_PKEY_RSA) {
      err = "RS256 public key is not an RSA key";
      return nullptr;
    }
    if (EVP_PKEY_get_bits(pub.get()) < 2048) {
      err = "RS256 public key is shorter than 2048 bits";
      return nullptr;
    }
  }
  if (cfg.hs256_secret.empty() && !pub) {
    err = "no JWT key configured (need an HS256 secret or an RS256 public key)";
    return nullptr;
  }
  if (pub && cfg.hs256_secret == cfg.rs256_public_key_pem) {
    err = "HS256 secret must not be the RS256 public key";
    return nullptr;
  }
  return std::make_unique<verifier_impl>(cfg.hs256_secret, std::move(pub));
}

std::string mint_hs256(const user_claims& c, const std::string& secret,
                       int64_t exp_epoch_s) {
  auto input = b64url_encode(R"({"alg":"HS256","typ":"JWT"})") + '.'
               + b64url_encode(claims_payload(c, exp_epoch_s));
  auto mac = hmac_sha256(secret, input);
  input += '.';
  input += b64url_encode(
    std::string_view{reinterpret_cast<const char*>(mac.data()), mac.size()});
  return input;
}

std::string mint_rs256(const user_claims& c,
                       const std::string& private_key_pem,
                       int64_t exp_epoch_s) {
  auto key = load_private_key(private_key_pem);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
    throw std::runtime_error("cannot load RSA private key from PEM");
  auto input = b64url_encode(R"({"alg":"RS256","typ":"JWT"})") + '.'
               + b64url_encode(claims_payload(c, exp_epoch_s));
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  size_t len = 0;
  if (!ctx
      || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                            key.get())
           != 1
      || EVP_DigestSign(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(input.data()),
                        input.size())
           != 1)
    throw std::runtime_error("RS256 signing failed");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                     &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size())
      != 1)
    throw std::runtime_error("RS256 signing failed");
  sig.resize(len);
  input += '.';
  input += b64url_encode(sig);
  return input;
}

} // namespace vantage
