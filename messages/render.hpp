#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace vantage {

/// The share preview template and its version; the version is part of every
/// cache key, so a template change re-renders everything once.
inline constexpr const char* preview_template_name = "wishlist-share";
inline constexpr int preview_template_version = 1;

/// One product tile of a preview: `image` is a catalog path
/// (/catalog/images/...), a file:// URL inside the catalog folder, or an
/// http(s) URL on an allowed host; anything else renders a placeholder.
struct render_item {
  std::string name;
  std::string image;
  std::string price;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, render_item& x) {
  return f(caf::meta::type_name("render_item"), x.name, x.image, x.price);
}

/// One preview to produce (POST /render, or a share's preview).
struct render_request {
  std::string template_name = preview_template_name;
  std::string wishlist_title;
  std::string owner_name;
  /// The first tiles shown (at most 4 are drawn).
  std::vector<render_item> items;
  int64_t item_count = 0;
  int32_t width = 1200;
  int32_t height = 630;
  /// "sha256:<hex>"; the same key never renders twice within the TTL.
  std::string cache_key;
  /// Where the PNG goes in the object store.
  std::string object_key;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, render_request& x) {
  return f(caf::meta::type_name("render_request"), x.template_name,
           x.wishlist_title, x.owner_name, x.items, x.item_count, x.width,
           x.height, x.cache_key, x.object_key);
}

/// A stored preview and where its time went.
struct render_result {
  std::string object_key;
  std::string cache_key;
  int64_t image_size_bytes = 0;
  /// Epoch ms (injectable clock) when the image was rendered.
  int64_t rendered_at = 0;
  /// True when no browser ran for this answer (cache hit or shared render).
  bool cached = false;
  /// Phases in ms: waiting for a page, thumbnails + HTML, browser layout and
  /// image decode, screenshot capture + PNG encode, upload; total is end to
  /// end inside the renderer.
  int32_t queue_ms = 0;
  int32_t prepare_ms = 0;
  int32_t load_ms = 0;
  int32_t capture_ms = 0;
  int32_t upload_ms = 0;
  int32_t total_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, render_result& x) {
  return f(caf::meta::type_name("render_result"), x.object_key, x.cache_key,
           x.image_size_bytes, x.rendered_at, x.cached, x.queue_ms,
           x.prepare_ms, x.load_ms, x.capture_ms, x.upload_ms, x.total_ms);
}

} // namespace vantage
