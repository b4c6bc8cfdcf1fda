#pragma once

// The shared wishlist as an HTML5 page for people and link unfurlers
// (Open Graph and Twitter card tags, API.md "GET /wishlists/shared/{token}").

#include <string>
#include <string_view>

#include "adapters/text.hpp"
#include "messages/share.hpp"

namespace vantage {

/// The page of a live share. The social tags come first in <head>, so
/// unfurlers that read only the first few KB find them.
std::string shared_page_html(const shared_wishlist& w,
                             const std::string& share_url,
                             const std::string& preview_url);

/// The one page for unknown, revoked and expired tokens.
std::string share_gone_html();

} // namespace vantage
