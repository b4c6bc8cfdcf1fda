#pragma once

#include <string>

#include "actors/entity_context.hpp"
#include "messages/interfaces.hpp"

namespace vantage {

/// One user: created from token claims on first sight, and the owner of
/// the pointer to their default wishlist (created on first use).
struct user_state {
  entity_context ctx;
  std::string user_id;
  bool exists = false;
  std::string display_name;
  std::string default_wishlist_id;
  static inline const char* name = "user";
};

user_actor::behavior_type
user_actor_impl(user_actor::stateful_pointer<user_state> self,
                std::string user_id, entity_context ctx);

} // namespace vantage
