#pragma once

#include <string>

namespace vantage {

/// The generic 1200x630 share preview (PNG) served until a share's own
/// preview is rendered, and whenever rendering is unavailable: a drawn card
/// with a gift and four empty product tiles, no text (so it never lies
/// about a particular wishlist). Deterministic; a few tens of KB.
const std::string& fallback_preview_png();

} // namespace vantage
