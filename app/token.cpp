// `vantage token`: mint a development JWT for the gateway.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "app/commands.hpp"
#include "gateway/jwt.hpp"

namespace vantage {

namespace {

constexpr const char* token_usage
  = "usage: vantage token --sub ID [--name NAME] [--email EMAIL] [--tz ZONE]\n"
    "                     [--region us|eu|apac]\n"
    "                     [--account-type customer|internal|qa|admin]\n"
    "                     [--ttl-hours H (default 24)] [--private-key FILE]\n"
    "                     [--count N]\n"
    "       vantage token --print-secret\n"
    "\n"
    "Prints an HS256 token signed with $VANTAGE_JWT_SECRET (or the development\n"
    "default), or an RS256 token when --private-key names a PEM private key.\n"
    "--count N prints N tokens, one per line, for the users ID_1 .. ID_N\n"
    "(named NAME 1 .. NAME N), e.g. for load tests.\n";

int usage_error(const std::string& msg) {
  std::cerr << "vantage token: " << msg << "\n\n" << token_usage;
  return 2;
}

std::string jwt_secret_in_use() {
  const char* env = std::getenv("VANTAGE_JWT_SECRET");
  return env != nullptr && *env != '\0' ? std::string{env}
                                        : std::string{default_dev_jwt_secret};
}

} // namespace

int token_main(int argc, char** argv) {
  user_claims claims;
  bool have_sub = false;
  bool print_secret = false;
  long long ttl_hours = 24;
  long long count = 0;
  std::string private_key_file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << token_usage;
      return 0;
    }
    if (arg == "--print-secret") {
      print_secret = true;
      continue;
    }
    // All other options take a value, as `--opt VALUE` or `--opt=VALUE`.
    std::string name = arg, value;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (name != "--sub" && name != "--name" && name != "--email"
          && name != "--tz" && name != "--region" && name != "--account-type"
          && name != "--ttl-hours" && name != "--private-key"
          && name != "--count")
        return usage_error("unknown argument '" + arg + "'");
      if (i + 1 >= argc)
        return usage_error("option " + name + " needs a value");
      value = argv[++i];
    }
    if (name == "--sub") {
      claims.user_id = value;
      have_sub = true;
    } else if (name == "--name") {
      claims.display_name = value;
    } else if (name == "--email") {
      claims.email = value;
    } else if (name == "--tz") {
      claims.tz = value;
    } else if (name == "--region") {
      if (value != "us" && value != "eu" && value != "apac")
        return usage_error("--region must be us, eu or apac");
      claims.region = value;
    } else if (name == "--account-type") {
      if (value != "customer" && value != "internal" && value != "qa"
          && value != "admin")
        return usage_error(
          "--account-type must be customer, internal, qa or admin");
      claims.account_type = value;
    } else if (name == "--ttl-hours") {
      char* end = nullptr;
      errno = 0;
      ttl_hours = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || ttl_hours <= 0
          || ttl_hours > 24LL * 366 * 10)
        return usage_error("--ttl-hours must be a whole number of hours "
                           "between 1 and 87840");
    } else if (name == "--private-key") {
      private_key_file = value;
    } else if (name == "--count") {
      char* end = nullptr;
      errno = 0;
      count = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || count <= 0
          || count > 10000000)
        return usage_error("--count must be a whole number between 1 and "
                           "10000000");
    } else {
      return usage_error("unknown argument '" + arg + "'");
    }
  }
  if (print_secret) {
    if (have_sub)
      return usage_error("--print-secret takes no other options");
    std::cout << jwt_secret_in_use() << '\n';
    return 0;
  }
  if (!have_sub)
    return usage_error("--sub is required");
  if (claims.display_name.empty())
    claims.display_name = claims.user_id;
  auto exp = static_cast<int64_t>(std::time(nullptr)) + ttl_hours * 3600;
  // Check the claims with the same rules the gateway applies, so a token
  // that would be rejected is never printed.
  {
    std::string err, why;
    const std::string probe_secret = "vantage-token-claim-check";
    auto v = jwt_verifier::create(jwt_config{probe_secret, {}}, err);
    if (!v || !v->verify(mint_hs256(claims, probe_secret, exp),
                         static_cast<int64_t>(std::time(nullptr)), why))
      return usage_error("invalid claims (" + why + ")");
  }
  try {
    std::string pem;
    if (!private_key_file.empty()) {
      std::ifstream in{private_key_file, std::ios::binary};
      if (!in) {
        std::cerr << "vantage token: cannot read " << private_key_file << ": "
                  << std::strerror(errno) << '\n';
        return 2;
      }
      std::ostringstream text;
      text << in.rdbuf();
      pem = text.str();
    }
    auto secret = jwt_secret_in_use();
    auto mint = [&](const user_claims& c) {
      return pem.empty() ? mint_hs256(c, secret, exp) : mint_rs256(c, pem, exp);
    };
    if (count == 0) {
      std::cout << mint(claims) << '\n';
    } else {
      std::string out;
      for (long long i = 1; i <= count; ++i) {
        auto each = claims;
        each.user_id += "_" + std::to_string(i);
        each.display_name += " " + std::to_string(i);
        out += mint(each);
        out += '\n';
      }
      std::cout << out;
    }
  } catch (const std::exception& e) {
    std::cerr << "vantage token: " << e.what() << '\n';
    return 2;
  }
  return 0;
}

} // namespace vantage
