#pragma once

#include <string>

#include <caf/meta/type_name.hpp>

namespace vantage {

/// Identity as asserted by a verified JWT. A token for an unknown `sub`
/// creates the user from these claims.
struct user_claims {
  std::string user_id;
  std::string display_name;
  std::string email;
  std::string tz = "UTC";
  std::string region = "us";
  std::string account_type = "customer";
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_claims& x) {
  return f(caf::meta::type_name("user_claims"), x.user_id, x.display_name,
           x.email, x.tz, x.region, x.account_type);
}

} // namespace vantage
