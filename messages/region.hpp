#pragma once

#include <string>

#include <caf/message.hpp>
#include <caf/meta/type_name.hpp>

namespace vantage {

/// A message addressed to a virtual actor by key. The region that receives it
/// activates the entity if needed and delegates `payload` to it, so the reply
/// goes straight back to the original sender.
struct envelope {
  std::string key;
  caf::message payload;
  /// The sender made `key` just now and it was never stored (a share token
  /// from 16 random bytes): an entity this message activates starts empty
  /// instead of looking itself up in the database.
  bool never_stored = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, envelope& x) {
  return f(caf::meta::type_name("envelope"), x.key, x.payload,
           x.never_stored);
}

} // namespace vantage
