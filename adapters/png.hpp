#pragma once

// A small PNG encoder (8-bit RGB, zlib-compressed) and a tiny software raster
// with just enough primitives -- fills, gradients, rectangles, rounded
// rectangles, circles, ellipses, triangles, all with optional alpha -- to draw
// product thumbnails and the 1200x630 fallback share card. No text.

#include <cstdint>
#include <string>
#include <vector>

namespace vantage {

/// Encodes `rgb` (width*height*3 bytes, row-major, top row first) as a PNG
/// file. Returns an empty string if the dimensions do not match the buffer or
/// are not positive.
std::string encode_png_rgb(const std::vector<uint8_t>& rgb, int width,
                           int height);

/// CRC-32 as used by PNG chunks (exposed for tests).
uint32_t png_crc32(const uint8_t* data, size_t len);

struct color {
  uint8_t r = 0, g = 0, b = 0;
};

/// Linear interpolation between two colors, t in [0, 1].
color mix(color a, color b, double t);
/// Color from HSV: h in degrees [0, 360), s and v in [0, 1].
color hsv(double h, double s, double v);

struct raster {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;

  raster() = default;
  raster(int w, int h, color background = {255, 255, 255});

  /// Pixel access; out-of-range reads return black, writes are ignored.
  color get(int x, int y) const;
  void set(int x, int y, color c);
  /// Alpha-blends `c` over the pixel with coverage `alpha` in [0, 1].
  void blend(int x, int y, color c, double alpha);

  void fill(color c);
  void fill_rect(int x, int y, int w, int h, uint8_t r, uint8_t g, uint8_t b);
  void fill_rect(int x, int y, int w, int h, color c, double alpha = 1.0);
  /// Rectangle with anti-aliased corners of the given radius.
  void fill_rounded_rect(int x, int y, int w, int h, int radius, color c,
                         double alpha = 1.0);
  /// Top-to-bottom gradient inside the rectangle.
  void vertical_gradient(int x, int y, int w, int h, color top, color bottom);
  /// Left-to-right gradient inside the rectangle.
  void horizontal_gradient(int x, int y, int w, int h, color left, color right);
  /// Diagonal (top-left to bottom-right) gradient over the whole raster.
  void diagonal_gradient(color from, color to);
  /// Radial gradient centered at (cx, cy) reaching `outer` at `radius`.
  void radial_gradient(double cx, double cy, double radius, color inner,
                       color outer);
  /// Anti-aliased filled circle.
  void fill_circle(double cx, double cy, double radius, color c,
                   double alpha = 1.0);
  /// Anti-aliased ring (circle outline) of the given thickness.
  void stroke_circle(double cx, double cy, double radius, double thickness,
                     color c, double alpha = 1.0);
  /// Anti-aliased filled axis-aligned ellipse.
  void fill_ellipse(double cx, double cy, double rx, double ry, color c,
                    double alpha = 1.0);
  /// Filled triangle (2x2 supersampled edges).
  void fill_triangle(double x0, double y0, double x1, double y1, double x2,
                     double y2, color c, double alpha = 1.0);
  /// Thick line segment with round caps.
  void draw_line(double x0, double y0, double x1, double y1, double thickness,
                 color c, double alpha = 1.0);

  /// The raster as a PNG file.
  std::string to_png() const;
};

} // namespace vantage
