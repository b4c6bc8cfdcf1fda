#pragma once

// The `wishlist-share` preview card as an HTML document for the browser, and
// the thumbnails it shows. Thumbnails are read by us (catalog files, or
// http(s) on allowed hosts, with a short timeout and a size cap) and inlined
// as data: URIs; the document's Content-Security-Policy forbids every other
// fetch and all script, so the browser needs no network and user text can
// never become markup or code.

#include <cstddef>
#include <string>
#include <vector>

#include "messages/render.hpp"

namespace vantage {

struct thumbnail_policy {
  /// The catalog's image folder: `/catalog/images/<file>` and file:// URLs
  /// resolve inside it and nowhere else.
  std::string catalog_images_dir;
  /// Hosts http(s) thumbnails may come from (VANTAGE_RENDER_IMAGE_HOSTS;
  /// default loopback only).
  std::vector<std::string> allowed_hosts{"127.0.0.1", "localhost", "::1"};
  int timeout_ms = 1500;
  size_t max_bytes = 2 * 1024 * 1024;
};

/// A data: URI of the image `ref` names, or "" (a placeholder tile) when it
/// is not allowed, missing, too large, slow, or not a PNG/JPEG/GIF/WebP.
/// Never throws; blocking (file or HTTP I/O).
std::string load_thumbnail(const std::string& ref,
                           const thumbnail_policy& policy);

/// WhatsApp's limit for a link preview image.
inline constexpr size_t max_preview_png_bytes = 600 * 1024;

/// The card: title (clamped to 3 lines), owner, item count and up to four
/// tiles; `thumbnails[i]` is the data URI for `req.items[i]` or "".
/// `compact` softens the thumbnails' fine grain, which is what makes a PNG
/// of photographs large; used when the plain card came out over the limit.
std::string preview_html(const render_request& req,
                         const std::vector<std::string>& thumbnails,
                         bool compact = false);

/// "sha256:<hex>" over the wishlist, its sorted visible item ids and the
/// template version: the cache key of a share's preview.
std::string share_preview_cache_key(const std::string& wishlist_id,
                                    std::vector<std::string> visible_item_ids);

/// "sha256:<hex>" over everything drawn: the cache key of a /render call
/// that names no wishlist.
std::string content_cache_key(const render_request& req);

/// Standard base64 (with padding), and its inverse ("" on bad input).
std::string base64_encode(std::string_view bytes);
std::string base64_decode(std::string_view text);

} // namespace vantage
