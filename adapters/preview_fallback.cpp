#include "adapters/preview_fallback.hpp"

#include "adapters/png.hpp"

namespace vantage {

namespace {

std::string draw_fallback() {
  constexpr int w = 1200;
  constexpr int h = 630;
  raster img{w, h};
  img.diagonal_gradient({255, 236, 222}, {236, 224, 255});
  // Soft light behind the gift.
  img.radial_gradient(300, 315, 330, {255, 250, 245}, {248, 232, 238});
  // The gift: box, lid, ribbons, bow.
  color box{232, 86, 112};
  color lid{214, 64, 94};
  color ribbon{255, 214, 102};
  img.fill_rounded_rect(170, 290, 260, 200, 18, box);
  img.fill_rounded_rect(150, 240, 300, 62, 16, lid);
  img.fill_rect(285, 240, 30, 250, ribbon);
  img.fill_ellipse(250, 222, 52, 30, ribbon);
  img.fill_ellipse(350, 222, 52, 30, ribbon);
  img.fill_circle(300, 228, 20, {240, 180, 60});
  img.fill_ellipse(250, 222, 24, 12, {255, 236, 180});
  img.fill_ellipse(350, 222, 24, 12, {255, 236, 180});
  // Four empty product tiles: a wishlist, any wishlist.
  color tile{255, 255, 255};
  color shadow{120, 90, 140};
  for (int i = 0; i < 4; ++i) {
    int x = 560 + (i % 2) * 270;
    int y = 95 + (i / 2) * 230;
    img.fill_rounded_rect(x + 6, y + 8, 240, 200, 22, shadow, 0.12);
    img.fill_rounded_rect(x, y, 240, 200, 22, tile);
    img.fill_rounded_rect(x + 20, y + 20, 200, 110, 14,
                          hsv(20.0 + 70.0 * i, 0.35, 0.97));
    img.fill_rounded_rect(x + 20, y + 146, 150, 14, 7, {214, 206, 226});
    img.fill_rounded_rect(x + 20, y + 170, 90, 12, 6, {232, 86, 112}, 0.7);
  }
  // A heart on the first tile: "wished for".
  img.fill_circle(612, 142, 13, {232, 86, 112});
  img.fill_circle(634, 142, 13, {232, 86, 112});
  img.fill_triangle(600, 148, 646, 148, 623, 172, {232, 86, 112});
  return img.to_png();
}

} // namespace

const std::string& fallback_preview_png() {
  static const std::string png = draw_fallback();
  return png;
}

} // namespace vantage
