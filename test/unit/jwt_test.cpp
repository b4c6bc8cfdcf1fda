#define BOOST_TEST_MODULE jwt_test
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "gateway/jwt.hpp"

using namespace vantage;

namespace {

constexpr int64_t now = 1'700'000'000;
const std::string secret = "unit-test-secret-0123456789";

std::string b64url(std::string_view in) {
  static const char* a
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += a[(acc >> bits) & 63];
    }
  }
  if (bits > 0)
    out += a[(acc << (6 - bits)) & 63];
  return out;
}

std::string hmac(const std::string& key, const std::string& data) {
  unsigned char mac[32];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
       &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

/// Hand-built HS256 token with arbitrary header and payload JSON.
std::string craft_hs256(const std::string& header, const std::string& payload,
                        const std::string& key) {
  auto input = b64url(header) + '.' + b64url(payload);
  return input + '.' + b64url(hmac(key, input));
}

std::string craft(const std::string& payload) {
  return craft_hs256(R"({"alg":"HS256","typ":"JWT"})", payload, secret);
}

struct rsa_keys {
  std::string private_pem;
  std::string public_pem;
};

std::string bio_to_string(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

rsa_keys make_rsa(unsigned bits = 2048) {
  EVP_PKEY* key = EVP_RSA_gen(bits);
  BOOST_REQUIRE(key != nullptr);
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  BOOST_REQUIRE(PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0,
                                         nullptr, nullptr)
                == 1);
  BOOST_REQUIRE(PEM_write_bio_PUBKEY(pub, key) == 1);
  rsa_keys out{bio_to_string(priv), bio_to_string(pub)};
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return out;
}

const rsa_keys& keys() {
  static const rsa_keys k = make_rsa();
  return k;
}

std::unique_ptr<jwt_verifier> hs_verifier() {
  std::string err;
  auto v = jwt_verifier::create(jwt_config{secret, {}}, err);
  BOOST_REQUIRE_MESSAGE(v != nullptr, err);
  return v;
}

std::unique_ptr<jwt_verifier> rs_verifier() {
  std::string err;
  auto v = jwt_verifier::create(jwt_config{{}, keys().public_pem}, err);
  BOOST_REQUIRE_MESSAGE(v != nullptr, err);
  return v;
}

user_claims alice() {
  user_claims c;
  c.user_id = "alice@example.com";
  c.display_name = "Alice \"A\" Müller";
  c.email = "alice@example.com";
  c.tz = "Europe/Berlin";
  c.region = "eu";
  c.account_type = "qa";
  return c;
}

/// Verifies and expects a rejection whose reason contains `fragment`.
void expect_reject(const jwt_verifier& v, const std::string& token,
                   const std::string& fragment) {
  std::string why;
  auto r = v.verify(token, now, why);
  BOOST_CHECK_MESSAGE(!r.has_value(), "token accepted, expected: " << fragment);
  BOOST_CHECK_MESSAGE(why.find(fragment) != std::string::npos,
                      "why='" << why << "' expected to contain '" << fragment
                              << "'");
}

} // namespace

BOOST_AUTO_TEST_CASE(valid_hs256_round_trip) {
  auto v = hs_verifier();
  std::string why;
  auto r = v->verify(mint_hs256(alice(), secret, now + 60), now, why);
  BOOST_REQUIRE_MESSAGE(r.has_value(), why);
  BOOST_CHECK_EQUAL(r->user_id, "alice@example.com");
  BOOST_CHECK_EQUAL(r->display_name, "Alice \"A\" Müller");
  BOOST_CHECK_EQUAL(r->email, "alice@example.com");
  BOOST_CHECK_EQUAL(r->tz, "Europe/Berlin");
  BOOST_CHECK_EQUAL(r->region, "eu");
  BOOST_CHECK_EQUAL(r->account_type, "qa");
}

BOOST_AUTO_TEST_CASE(defaults_applied_for_minimal_token) {
  auto v = hs_verifier();
  std::string why;
  auto r = v->verify(craft(R"({"sub":"u-1","exp":1700000001})"), now, why);
  BOOST_REQUIRE_MESSAGE(r.has_value(), why);
  BOOST_CHECK_EQUAL(r->user_id, "u-1");
  BOOST_CHECK_EQUAL(r->display_name, "u-1");
  BOOST_CHECK_EQUAL(r->email, "");
  BOOST_CHECK_EQUAL(r->tz, "UTC");
  BOOST_CHECK_EQUAL(r->region, "us");
  BOOST_CHECK_EQUAL(r->account_type, "customer");
}

BOOST_AUTO_TEST_CASE(valid_rs256_round_trip) {
  auto v = rs_verifier();
  std::string why;
  auto tok = mint_rs256(alice(), keys().private_pem, now + 3600);
  auto r = v->verify(tok, now, why);
  BOOST_REQUIRE_MESSAGE(r.has_value(), why);
  BOOST_CHECK_EQUAL(r->user_id, "alice@example.com");
  BOOST_CHECK_EQUAL(r->region, "eu");
  // A different key pair must not verify.
  auto other = make_rsa();
  expect_reject(*v, mint_rs256(alice(), other.private_pem, now + 3600),
                "bad signature");
}

BOOST_AUTO_TEST_CASE(both_keys_configured_accepts_both_algs) {
  std::string err, why;
  auto v = jwt_verifier::create(jwt_config{secret, keys().public_pem}, err);
  BOOST_REQUIRE_MESSAGE(v != nullptr, err);
  BOOST_CHECK(v->verify(mint_hs256(alice(), secret, now + 5), now, why));
  BOOST_CHECK(
    v->verify(mint_rs256(alice(), keys().private_pem, now + 5), now, why));
  // Key confusion still fails: the HMAC key is the secret, not the PEM.
  expect_reject(*v, mint_hs256(alice(), keys().public_pem, now + 5),
                "bad signature");
}

BOOST_AUTO_TEST_CASE(wrong_secret) {
  auto v = hs_verifier();
  expect_reject(*v, mint_hs256(alice(), "another-secret", now + 60),
                "bad signature");
}

BOOST_AUTO_TEST_CASE(tampered_payload) {
  auto v = hs_verifier();
  auto tok = mint_hs256(alice(), secret, now + 60);
  auto d1 = tok.find('.');
  auto d2 = tok.find('.', d1 + 1);
  // Swap in a payload claiming admin while keeping the original signature.
  auto forged = tok.substr(0, d1) + '.'
                + b64url(R"({"sub":"alice@example.com","account_type":"admin","exp":1700000060})")
                + tok.substr(d2);
  expect_reject(*v, forged, "bad signature");
  // Flipping one signature character fails too.
  auto flipped = tok;
  flipped[d2 + 3] = flipped[d2 + 3] == 'A' ? 'B' : 'A';
  expect_reject(*v, flipped, "bad signature");
}

BOOST_AUTO_TEST_CASE(alg_none_rejected) {
  auto payload = b64url(R"({"sub":"mallory","exp":1800000000})");
  auto hs = hs_verifier();
  auto rs = rs_verifier();
  for (auto header : {R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})",
                      R"({"alg":"NONE"})"}) {
    auto tok = b64url(header) + '.' + payload + '.';
    expect_reject(*hs, tok, "wrong algorithm");
    expect_reject(*rs, tok, "wrong algorithm");
  }
  // Missing alg altogether.
  expect_reject(*hs, b64url(R"({"typ":"JWT"})") + '.' + payload + '.',
                "missing alg");
}

BOOST_AUTO_TEST_CASE(key_confusion_hs256_with_public_key_rejected) {
  // Only RS256 configured: an attacker signs HS256 using the public key PEM
  // (which is public) as the HMAC secret.
  auto v = rs_verifier();
  auto forged = craft_hs256(R"({"alg":"HS256","typ":"JWT"})",
                            R"({"sub":"mallory","account_type":"admin","exp":1800000000})",
                            keys().public_pem);
  expect_reject(*v, forged, "wrong algorithm");
  expect_reject(*v, mint_hs256(alice(), keys().public_pem, now + 60),
                "wrong algorithm");
  // Same idea in the other direction: RS256 token for an HS256-only verifier.
  auto hs = hs_verifier();
  expect_reject(*hs, mint_rs256(alice(), keys().private_pem, now + 60),
                "wrong algorithm");
  // Other algorithms are never accepted.
  expect_reject(*hs,
                craft_hs256(R"({"alg":"HS512"})",
                            R"({"sub":"a","exp":1800000000})", secret),
                "wrong algorithm");
}

BOOST_AUTO_TEST_CASE(expired) {
  auto v = hs_verifier();
  expect_reject(*v, mint_hs256(alice(), secret, now - 1), "expired");
  // No leeway: exp == now is already expired.
  expect_reject(*v, mint_hs256(alice(), secret, now), "expired");
  std::string why;
  BOOST_CHECK(v->verify(mint_hs256(alice(), secret, now + 1), now, why));
  expect_reject(*v, craft(R"({"sub":"a"})"), "missing exp");
  expect_reject(*v, craft(R"({"sub":"a","exp":"1800000000"})"), "exp");
  expect_reject(*v, craft(R"({"sub":"a","exp":1800000000,"nbf":1800000000})"),
                "not yet valid");
}

BOOST_AUTO_TEST_CASE(missing_or_bad_sub) {
  auto v = hs_verifier();
  expect_reject(*v, craft(R"({"exp":1800000000})"), "missing sub");
  expect_reject(*v, craft(R"({"sub":"","exp":1800000000})"), "sub");
  expect_reject(*v, craft(R"({"sub":"a b","exp":1800000000})"), "sub");
  expect_reject(*v, craft(R"({"sub":"a/b","exp":1800000000})"), "sub");
  expect_reject(*v, craft(R"({"sub":42,"exp":1800000000})"), "sub");
  expect_reject(*v,
                craft(R"({"sub":")" + std::string(129, 'x')
                      + R"(","exp":1800000000})"),
                "sub");
  std::string why;
  BOOST_CHECK(v->verify(craft(R"({"sub":")" + std::string(128, 'x')
                              + R"(","exp":1800000000})"),
                        now, why));
  BOOST_CHECK_MESSAGE(
    v->verify(craft(R"({"sub":"A-z_0.9:x@y","exp":1800000000})"), now, why),
    why);
  // Duplicate sub: parsers could disagree about which one wins.
  expect_reject(*v, craft(R"({"sub":"a","sub":"admin","exp":1800000000})"),
                "sub");
}

BOOST_AUTO_TEST_CASE(bad_claim_values) {
  auto v = hs_verifier();
  expect_reject(*v, craft(R"({"sub":"a","region":"mars","exp":1800000000})"),
                "region");
  expect_reject(*v, craft(R"({"sub":"a","region":"EU","exp":1800000000})"),
                "region");
  expect_reject(*v,
                craft(R"({"sub":"a","account_type":"root","exp":1800000000})"),
                "account_type");
  expect_reject(*v,
                craft(R"({"sub":"a","name":")" + std::string(201, 'n')
                      + R"(","exp":1800000000})"),
                "name");
  expect_reject(*v, craft(R"({"sub":"a","name":7,"exp":1800000000})"), "name");
  expect_reject(*v, craft(R"({"sub":"a","tz":"../etc","exp":1800000000})"),
                "tz");
  std::string why;
  auto r = v->verify(craft(R"({"sub":"a","name":")" + std::string(200, 'n')
                           + R"(","exp":1800000000})"),
                     now, why);
  BOOST_REQUIRE_MESSAGE(r.has_value(), why);
  BOOST_CHECK_EQUAL(r->display_name.size(), 200u);
}

BOOST_AUTO_TEST_CASE(malformed) {
  auto v = hs_verifier();
  auto good = mint_hs256(alice(), secret, now + 60);
  auto d1 = good.find('.');
  auto d2 = good.find('.', d1 + 1);
  expect_reject(*v, good.substr(0, d2), "malformed");       // 2 segments
  expect_reject(*v, good + ".x", "malformed");              // 4 segments
  expect_reject(*v, "", "malformed");
  expect_reject(*v, "..", "malformed");
  // Bad base64url: '+' and '/' (standard alphabet), padding, junk.
  auto bad_b64 = good;
  bad_b64[d1 + 2] = '+';
  expect_reject(*v, bad_b64, "malformed");
  expect_reject(*v, good.substr(0, d1) + "=" + good.substr(d1), "malformed");
  expect_reject(*v, "!!!." + good.substr(d1 + 1), "malformed");
  // Valid base64 but not JSON (header and payload), signed correctly.
  auto not_json_payload = craft_hs256(R"({"alg":"HS256"})", "hello", secret);
  expect_reject(*v, not_json_payload, "malformed");
  auto array_payload = craft_hs256(R"({"alg":"HS256"})", "[1,2]", secret);
  expect_reject(*v, array_payload, "malformed");
  auto not_json_header = b64url("{alg:HS256") + good.substr(d1);
  expect_reject(*v, not_json_header, "malformed");
}

BOOST_AUTO_TEST_CASE(oversize_rejected) {
  auto v = hs_verifier();
  std::string why;
  // A ~4 KiB token is fine...
  auto ok = craft(R"({"sub":"a","pad":")" + std::string(3000, 'p')
                  + R"(","exp":1800000000})");
  BOOST_CHECK_MESSAGE(v->verify(ok, now, why), why);
  // ...an otherwise valid one over 8 KiB is not.
  auto big = craft(R"({"sub":"a","pad":")" + std::string(7000, 'p')
                   + R"(","exp":1800000000})");
  BOOST_REQUIRE_GT(big.size(), 8192u);
  expect_reject(*v, big, "too large");
}

BOOST_AUTO_TEST_CASE(create_validates_config) {
  std::string err;
  BOOST_CHECK(jwt_verifier::create(jwt_config{}, err) == nullptr);
  BOOST_CHECK(!err.empty());
  err.clear();
  BOOST_CHECK(jwt_verifier::create(jwt_config{{}, "not a pem"}, err)
              == nullptr);
  BOOST_CHECK(!err.empty());
  err.clear();
  // A private key where the public key belongs is not silently accepted as
  // something else; weak RSA keys are refused.
  auto weak = make_rsa(1024);
  BOOST_CHECK(jwt_verifier::create(jwt_config{{}, weak.public_pem}, err)
              == nullptr);
  BOOST_CHECK_THROW(mint_rs256(alice(), "garbage", now + 60),
                    std::runtime_error);
}
