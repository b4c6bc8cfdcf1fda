#include "gateway/error_mapping.hpp"

#include <caf/sec.hpp>

#include "messages/errors.hpp"
#include "messages/share.hpp"

namespace vantage {

http_error to_http_error(const caf::error& err) {
  if (err.category() == caf::atom("vantage")) {
    auto msg = error_message(err);
    switch (static_cast<errc>(err.code())) {
      case errc::not_found:
        return {404, "NOT_FOUND", msg.empty() ? "Not found" : msg};
      case errc::wishlist_not_found:
        return {404, "WISHLIST_NOT_FOUND", msg};
      case errc::share_not_found:
        return {404, "SHARE_NOT_FOUND", share_gone_message};
      case errc::forbidden:
        return {403, "FORBIDDEN", msg};
      case errc::validation_failed:
        return {422, "VALIDATION_FAILED", msg};
      case errc::conflict:
        return {409, "CONFLICT", msg};
      case errc::unavailable:
        return {503, "SERVICE_UNAVAILABLE",
                msg.empty() ? "A backing service is unavailable" : msg};
      case errc::pool_exhausted:
        return {503, "SERVICE_UNAVAILABLE",
                msg.empty() ? "All render slots are busy; try again shortly"
                            : msg};
      case errc::render_timeout:
        return {504, "RENDER_TIMEOUT",
                msg.empty() ? "The render took too long" : msg};
      case errc::render_failed:
        return {502, "RENDER_FAILED", msg.empty() ? "The render failed" : msg};
      case errc::none:
      case errc::internal:
        break;
    }
    return {500, "INTERNAL", "Internal error"};
  }
  if (err.category() == caf::atom("system")) {
    auto code = static_cast<caf::sec>(err.code());
    if (code == caf::sec::request_timeout
        || code == caf::sec::request_receiver_down)
      return {503, "SERVICE_UNAVAILABLE",
              "A backing service is unavailable; try again shortly"};
  }
  return {500, "INTERNAL", "Internal error"};
}

} // namespace vantage
