#pragma once

// Thumbnails that compress like photographs (smooth colour fields with
// grain), unlike the flat demo drawings: PNG size and encode time of a card
// depend on it. Used by renderer_test and render_bench.

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "adapters/png.hpp"

namespace vantage::test {

/// A 240x240 PNG; `grain` is the noise's standard deviation (4: like a
/// photograph, ~160 KB; 9: harsher than any product photo).
inline std::string grainy_photo_png(unsigned seed, double grain) {
  constexpr int w = 240;
  constexpr int h = 240;
  std::mt19937 rng{seed};
  std::uniform_real_distribution<double> u{0, 1};
  std::normal_distribution<double> noise{0, grain};
  double cx = u(rng) * w;
  double cy = u(rng) * h;
  double base[3] = {u(rng) * 255, u(rng) * 255, u(rng) * 255};
  std::vector<uint8_t> rgb;
  rgb.reserve(w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double d = std::hypot(x - cx, y - cy) / 240.0;
      for (int c = 0; c < 3; ++c) {
        double v = base[c] * (1.0 - 0.6 * d)
                   + 40 * std::sin((x + 2 * y + c * 50) / 23.0) + noise(rng);
        rgb.push_back(static_cast<uint8_t>(std::clamp(v, 0.0, 255.0)));
      }
    }
  return encode_png_rgb(rgb, w, h);
}

} // namespace vantage::test
