#pragma once

// The demo catalog that `vantage migrate --demo-catalog` and `vantage run`
// load: 24 plausible products with generated PNG thumbnails.

#include <string>
#include <vector>

#include "messages/catalog.hpp"

namespace vantage {

/// The demo products prd_001..prd_024 (USD, prices in cents, a few out of
/// stock). image_url is `image_dir_url_prefix + "/prd_NNN.png"`.
std::vector<product> demo_catalog(const std::string& image_dir_url_prefix);

/// The 240x240 PNG thumbnail of demo product `product_id` (empty if unknown).
std::string demo_image_png(const std::string& product_id);

/// Writes one 240x240 PNG per demo product into `dir` (created if missing,
/// including parents) as prd_001.png ... Returns false and sets `err` on
/// failure.
bool write_demo_images(const std::string& dir, std::string& err);

} // namespace vantage
