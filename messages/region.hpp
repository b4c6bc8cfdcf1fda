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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, envelope& x) {
  return f(caf::meta::type_name("envelope"), x.key, x.payload);
}

} // namespace vantage
