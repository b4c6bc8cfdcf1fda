#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>

namespace vantage {

/// Domain errors that cross actor boundaries. The gateway maps each to one
/// HTTP status and contract code in gateway/error_mapping.cpp, nowhere else.
enum class errc : uint8_t {
  /// Not an error; required by CAF's error conventions.
  none = 0,
  /// A generic resource (product, wishlist item, user) does not exist.
  not_found,
  /// The wishlist does not exist or the caller may not learn that it does.
  wishlist_not_found,
  /// The share token is unknown, revoked or expired (one answer for all
  /// three, so a prober learns nothing), or the product is hidden in it.
  share_not_found,
  /// The caller is authenticated but may not act on this resource.
  forbidden,
  /// Input is well-formed but breaks a rule; context carries details.
  validation_failed,
  /// Optimistic concurrency or duplicate conflict.
  conflict,
  /// A backing service (PostgreSQL, Redis, Kafka) is unreachable or saturated.
  unavailable,
  /// An invariant broke; a bug.
  internal,
  /// No browser page became free within the queue wait, or the render
  /// queue is full: a fast, explicit rejection.
  pool_exhausted,
  /// A render took longer than RENDER_TIMEOUT_MS.
  render_timeout,
  /// The browser failed the render (crashed twice, bad output, upload).
  render_failed,
};

/// Human-readable name of an error code (for logs and tests).
inline const char* to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::not_found: return "not_found";
    case errc::wishlist_not_found: return "wishlist_not_found";
    case errc::share_not_found: return "share_not_found";
    case errc::forbidden: return "forbidden";
    case errc::validation_failed: return "validation_failed";
    case errc::conflict: return "conflict";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
    case errc::pool_exhausted: return "pool_exhausted";
    case errc::render_timeout: return "render_timeout";
    case errc::render_failed: return "render_failed";
  }
  return "unknown";
}

} // namespace vantage

CAF_ERROR_CODE_ENUM_2(vantage::errc, "vantage")

namespace vantage {

/// Builds an error carrying a message for the client.
inline caf::error make_error(errc code, std::string message) {
  return caf::make_error(code, std::move(message));
}

/// Extracts the human-readable message from an error made by make_error.
inline std::string error_message(const caf::error& e) {
  if (!e.context().empty() && e.context().match_element<std::string>(0))
    return e.context().get_as<std::string>(0);
  return {};
}

/// True if `e` is our domain error `code`.
inline bool is(const caf::error& e, errc code) {
  return e.category() == caf::atom("vantage")
         && e.code() == static_cast<uint8_t>(code);
}

} // namespace vantage
