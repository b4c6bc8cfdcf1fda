#include "adapters/png.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include <zlib.h>

namespace vantage {

namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xFF));
  out.push_back(static_cast<char>((v >> 16) & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
  out.push_back(static_cast<char>(v & 0xFF));
}

void put_chunk(std::string& out, const char type[4], const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_u32(out, png_crc32(reinterpret_cast<const uint8_t*>(body.data()),
                         body.size()));
}

uint8_t clamp8(double v) {
  if (v <= 0)
    return 0;
  if (v >= 255)
    return 255;
  return static_cast<uint8_t>(std::lround(v));
}

double clamp01(double v) {
  return v < 0 ? 0 : (v > 1 ? 1 : v);
}

} // namespace

uint32_t png_crc32(const uint8_t* data, size_t len) {
  const auto& t = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; ++i)
    c = t[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string encode_png_rgb(const std::vector<uint8_t>& rgb, int width,
                           int height) {
  if (width <= 0 || height <= 0)
    return {};
  const size_t stride = static_cast<size_t>(width) * 3;
  if (rgb.size() != stride * static_cast<size_t>(height))
    return {};

  // Filter: "Sub" for every row (cheap and compresses gradients well).
  std::vector<uint8_t> raw;
  raw.reserve((stride + 1) * static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = rgb.data() + stride * static_cast<size_t>(y);
    raw.push_back(1);
    for (size_t i = 0; i < stride; ++i) {
      uint8_t left = i >= 3 ? row[i - 3] : 0;
      raw.push_back(static_cast<uint8_t>(row[i] - left));
    }
  }

  uLongf bound = compressBound(static_cast<uLong>(raw.size()));
  std::string z(bound, '\0');
  if (compress2(reinterpret_cast<Bytef*>(&z[0]), &bound, raw.data(),
                static_cast<uLong>(raw.size()), 6)
      != Z_OK)
    return {};
  z.resize(bound);

  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(width));
  put_u32(ihdr, static_cast<uint32_t>(height));
  ihdr.push_back(8); // bit depth
  ihdr.push_back(2); // color type: truecolor
  ihdr.push_back(0); // compression
  ihdr.push_back(0); // filter method
  ihdr.push_back(0); // no interlace
  put_chunk(out, "IHDR", ihdr);
  put_chunk(out, "IDAT", z);
  put_chunk(out, "IEND", {});
  return out;
}

color mix(color a, color b, double t) {
  t = clamp01(t);
  return {clamp8(a.r + (b.r - a.r) * t), clamp8(a.g + (b.g - a.g) * t),
          clamp8(a.b + (b.b - a.b) * t)};
}

color hsv(double h, double s, double v) {
  h = std::fmod(h, 360.0);
  if (h < 0)
    h += 360.0;
  s = clamp01(s);
  v = clamp01(v);
  double c = v * s;
  double x = c * (1 - std::fabs(std::fmod(h / 60.0, 2.0) - 1));
  double m = v - c;
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(h / 60.0)) {
    case 0: r = c, g = x; break;
    case 1: r = x, g = c; break;
    case 2: g = c, b = x; break;
    case 3: g = x, b = c; break;
    case 4: r = x, b = c; break;
    default: r = c, b = x; break;
  }
  return {clamp8((r + m) * 255), clamp8((g + m) * 255), clamp8((b + m) * 255)};
}

raster::raster(int w, int h, color background)
  : width(std::max(0, w)), height(std::max(0, h)) {
  rgb.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  fill(background);
}

color raster::get(int x, int y) const {
  if (x < 0 || y < 0 || x >= width || y >= height)
    return {};
  size_t i = (static_cast<size_t>(y) * width + x) * 3;
  return {rgb[i], rgb[i + 1], rgb[i + 2]};
}

void raster::set(int x, int y, color c) {
  if (x < 0 || y < 0 || x >= width || y >= height)
    return;
  size_t i = (static_cast<size_t>(y) * width + x) * 3;
  rgb[i] = c.r;
  rgb[i + 1] = c.g;
  rgb[i + 2] = c.b;
}

void raster::blend(int x, int y, color c, double alpha) {
  if (alpha <= 0 || x < 0 || y < 0 || x >= width || y >= height)
    return;
  if (alpha >= 1) {
    set(x, y, c);
    return;
  }
  set(x, y, mix(get(x, y), c, alpha));
}

void raster::fill(color c) {
  for (size_t i = 0; i + 2 < rgb.size(); i += 3) {
    rgb[i] = c.r;
    rgb[i + 1] = c.g;
    rgb[i + 2] = c.b;
  }
}

void raster::fill_rect(int x, int y, int w, int h, uint8_t r, uint8_t g,
                       uint8_t b) {
  fill_rect(x, y, w, h, color{r, g, b}, 1.0);
}

void raster::fill_rect(int x, int y, int w, int h, color c, double alpha) {
  int x0 = std::max(0, x), y0 = std::max(0, y);
  int x1 = std::min(width, x + w), y1 = std::min(height, y + h);
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx)
      blend(xx, yy, c, alpha);
}

void raster::fill_rounded_rect(int x, int y, int w, int h, int radius, color c,
                               double alpha) {
  if (w <= 0 || h <= 0)
    return;
  double r = std::max(0, std::min(radius, std::min(w, h) / 2));
  int x0 = std::max(0, x), y0 = std::max(0, y);
  int x1 = std::min(width, x + w), y1 = std::min(height, y + h);
  for (int yy = y0; yy < y1; ++yy) {
    for (int xx = x0; xx < x1; ++xx) {
      double px = xx + 0.5, py = yy + 0.5;
      // Distance to the inner rectangle shrunk by r.
      double qx = std::max({x + r - px, 0.0, px - (x + w - r)});
      double qy = std::max({y + r - py, 0.0, py - (y + h - r)});
      double cov = 1.0;
      if (r > 0 && qx > 0 && qy > 0)
        cov = clamp01(r + 0.5 - std::sqrt(qx * qx + qy * qy));
      blend(xx, yy, c, cov * alpha);
    }
  }
}

void raster::vertical_gradient(int x, int y, int w, int h, color top,
                               color bottom) {
  int y0 = std::max(0, y), y1 = std::min(height, y + h);
  for (int yy = y0; yy < y1; ++yy) {
    double t = h > 1 ? double(yy - y) / (h - 1) : 0.0;
    color c = mix(top, bottom, t);
    fill_rect(x, yy, w, 1, c);
  }
}

void raster::horizontal_gradient(int x, int y, int w, int h, color left,
                                 color right) {
  int x0 = std::max(0, x), x1 = std::min(width, x + w);
  for (int xx = x0; xx < x1; ++xx) {
    double t = w > 1 ? double(xx - x) / (w - 1) : 0.0;
    fill_rect(xx, y, 1, h, mix(left, right, t));
  }
}

void raster::diagonal_gradient(color from, color to) {
  double span = double(width + height - 2);
  for (int yy = 0; yy < height; ++yy)
    for (int xx = 0; xx < width; ++xx)
      set(xx, yy, mix(from, to, span > 0 ? (xx + yy) / span : 0.0));
}

void raster::radial_gradient(double cx, double cy, double radius, color inner,
                             color outer) {
  for (int yy = 0; yy < height; ++yy)
    for (int xx = 0; xx < width; ++xx) {
      double d = std::hypot(xx + 0.5 - cx, yy + 0.5 - cy);
      set(xx, yy, mix(inner, outer, radius > 0 ? d / radius : 1.0));
    }
}

void raster::fill_circle(double cx, double cy, double radius, color c,
                         double alpha) {
  fill_ellipse(cx, cy, radius, radius, c, alpha);
}

void raster::stroke_circle(double cx, double cy, double radius,
                           double thickness, color c, double alpha) {
  double half = thickness / 2;
  int x0 = static_cast<int>(std::floor(cx - radius - half - 1));
  int x1 = static_cast<int>(std::ceil(cx + radius + half + 1));
  int y0 = static_cast<int>(std::floor(cy - radius - half - 1));
  int y1 = static_cast<int>(std::ceil(cy + radius + half + 1));
  for (int yy = std::max(0, y0); yy <= std::min(height - 1, y1); ++yy)
    for (int xx = std::max(0, x0); xx <= std::min(width - 1, x1); ++xx) {
      double d = std::fabs(std::hypot(xx + 0.5 - cx, yy + 0.5 - cy) - radius);
      blend(xx, yy, c, clamp01(half + 0.5 - d) * alpha);
    }
}

void raster::fill_ellipse(double cx, double cy, double rx, double ry, color c,
                          double alpha) {
  if (rx <= 0 || ry <= 0)
    return;
  int x0 = static_cast<int>(std::floor(cx - rx - 1));
  int x1 = static_cast<int>(std::ceil(cx + rx + 1));
  int y0 = static_cast<int>(std::floor(cy - ry - 1));
  int y1 = static_cast<int>(std::ceil(cy + ry + 1));
  double rmin = std::min(rx, ry);
  for (int yy = std::max(0, y0); yy <= std::min(height - 1, y1); ++yy)
    for (int xx = std::max(0, x0); xx <= std::min(width - 1, x1); ++xx) {
      double dx = (xx + 0.5 - cx) / rx, dy = (yy + 0.5 - cy) / ry;
      // Approximate signed distance in pixels to the ellipse edge.
      double d = (std::sqrt(dx * dx + dy * dy) - 1.0) * rmin;
      blend(xx, yy, c, clamp01(0.5 - d) * alpha);
    }
}

void raster::fill_triangle(double x0, double y0, double x1, double y1,
                           double x2, double y2, color c, double alpha) {
  auto edge = [](double ax, double ay, double bx, double by, double px,
                 double py) { return (bx - ax) * (py - ay) - (by - ay) * (px - ax); };
  double area = edge(x0, y0, x1, y1, x2, y2);
  if (area == 0)
    return;
  int minx = std::max(0, static_cast<int>(std::floor(std::min({x0, x1, x2}))));
  int maxx = std::min(width - 1, static_cast<int>(std::ceil(std::max({x0, x1, x2}))));
  int miny = std::max(0, static_cast<int>(std::floor(std::min({y0, y1, y2}))));
  int maxy = std::min(height - 1, static_cast<int>(std::ceil(std::max({y0, y1, y2}))));
  static const double offs[2] = {0.25, 0.75};
  for (int yy = miny; yy <= maxy; ++yy)
    for (int xx = minx; xx <= maxx; ++xx) {
      int hits = 0;
      for (double oy : offs)
        for (double ox : offs) {
          double px = xx + ox, py = yy + oy;
          double w0 = edge(x1, y1, x2, y2, px, py);
          double w1 = edge(x2, y2, x0, y0, px, py);
          double w2 = edge(x0, y0, x1, y1, px, py);
          if (area > 0 ? (w0 >= 0 && w1 >= 0 && w2 >= 0)
                       : (w0 <= 0 && w1 <= 0 && w2 <= 0))
            ++hits;
        }
      if (hits)
        blend(xx, yy, c, alpha * hits / 4.0);
    }
}

void raster::draw_line(double x0, double y0, double x1, double y1,
                       double thickness, color c, double alpha) {
  double half = thickness / 2;
  int minx = std::max(0, static_cast<int>(std::floor(std::min(x0, x1) - half - 1)));
  int maxx = std::min(width - 1, static_cast<int>(std::ceil(std::max(x0, x1) + half + 1)));
  int miny = std::max(0, static_cast<int>(std::floor(std::min(y0, y1) - half - 1)));
  int maxy = std::min(height - 1, static_cast<int>(std::ceil(std::max(y0, y1) + half + 1)));
  double dx = x1 - x0, dy = y1 - y0;
  double len2 = dx * dx + dy * dy;
  for (int yy = miny; yy <= maxy; ++yy)
    for (int xx = minx; xx <= maxx; ++xx) {
      double px = xx + 0.5, py = yy + 0.5;
      double t = len2 > 0 ? clamp01(((px - x0) * dx + (py - y0) * dy) / len2) : 0;
      double d = std::hypot(px - (x0 + t * dx), py - (y0 + t * dy));
      blend(xx, yy, c, clamp01(half + 0.5 - d) * alpha);
    }
}

std::string raster::to_png() const {
  return encode_png_rgb(rgb, width, height);
}

} // namespace vantage
