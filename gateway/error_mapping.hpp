#pragma once

#include <string>

#include <caf/error.hpp>

namespace vantage {

/// An HTTP answer for an error: status and contract code (API.md).
struct http_error {
  int status;
  const char* code;
  std::string message;
};

/// The one place where errors become HTTP statuses (like pandaproxy's
/// make_error_condition). Domain errors keep their message; timeouts and
/// dead receivers (a backing service is down) become 503.
http_error to_http_error(const caf::error& err);

} // namespace vantage
