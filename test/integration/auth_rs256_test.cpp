#define BOOST_TEST_MODULE auth_rs256_test
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "test/support/node_fixture.hpp"

// A node configured with VANTAGE_JWT_PUBLIC_KEY_FILE accepts RS256 tokens
// signed by the matching private key and nothing else.

using namespace vantage;
using namespace vantage::test;

namespace {

std::string pem_of(EVP_PKEY* key, bool private_part) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (private_part)
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  else
    PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  auto len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(rs256_node_accepts_its_key_only) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  BOOST_REQUIRE(key != nullptr);
  auto private_pem = pem_of(key, true);
  auto public_file = std::string{"/tmp/vantage_rs256_"}
                     + std::to_string(::getpid()) + ".pem";
  std::ofstream{public_file} << pem_of(key, false);
  EVP_PKEY_free(key);
  ::setenv("VANTAGE_JWT_PUBLIC_KEY_FILE", public_file.c_str(), 1);
  ::unsetenv("VANTAGE_JWT_SECRET");
  {
    node_fixture n;
    user_claims c;
    c.user_id = unique("usr_rs");
    c.display_name = "RS";
    auto good = mint_rs256(c, private_pem, system_clock_source{}.now_s() + 600);
    auto r = n.call("POST", "/api/v2/wishlists", R"({"title":"rs256"})", good);
    BOOST_TEST(r.status == 201);
    // The dev HS256 secret is not accepted once RS256 is configured.
    auto hs = mint_hs256(c, default_dev_jwt_secret,
                         system_clock_source{}.now_s() + 600);
    BOOST_TEST(n.call("POST", "/api/v2/wishlists", R"({"title":"hs"})", hs)
                 .status
               == 401);
    // Another RSA key's signature fails.
    EVP_PKEY* other = EVP_RSA_gen(2048);
    auto forged = mint_rs256(c, pem_of(other, true),
                             system_clock_source{}.now_s() + 600);
    EVP_PKEY_free(other);
    BOOST_TEST(n.call("POST", "/api/v2/wishlists", R"({"title":"x"})", forged)
                 .status
               == 401);
  }
  std::remove(public_file.c_str());
}
