#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vantage {

struct topic_spec {
  const char* name;
  int32_t partitions;
  /// File stem of the value schema in schemas/avro (avro_codec::builtin).
  const char* schema;
};

/// Every topic of API.md's event table, with its partition count. The
/// embedded cluster creates exactly these.
inline const std::vector<topic_spec>& known_topics() {
  static const std::vector<topic_spec> topics{
    {"wishlist.events", 12, "wishlist_event"},
    {"wishlist.social.events", 12, "wishlist_social_event"},
    {"wishlist.social.events.dlq", 3, "wishlist_social_event"},
    {"checkout.session.events", 6, "checkout_session_event"},
    {"notification.events", 6, "notification_event"},
    {"notification.requests", 3, "notification_request"},
  };
  return topics;
}

/// The spec of `name`, or nullptr if it is not one of ours.
inline const topic_spec* find_topic(const std::string& name) {
  for (auto& t : known_topics())
    if (name == t.name)
      return &t;
  return nullptr;
}

} // namespace vantage
