#include "app/demo_catalog.hpp"

#include "adapters/files.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <sys/stat.h>

#include "adapters/png.hpp"

namespace vantage {

namespace {

enum class shape {
  shoe,
  bottle,
  backpack,
  headphones,
  watch,
  mug,
  lamp,
  jacket,
  plant,
  speaker,
  sunglasses,
  tent,
};

struct demo_item {
  const char* name;
  int64_t price_cents;
  bool in_stock;
  shape kind;
  double hue; // background hue, degrees
};

// Order defines the ids: entry i is prd_{i+1:03}.
const demo_item items[] = {
  {"Trail Running Shoes", 12900, true, shape::shoe, 18},
  {"Insulated Water Bottle", 3450, true, shape::bottle, 195},
  {"Commuter Backpack 24L", 8900, true, shape::backpack, 150},
  {"Wireless Noise-Cancelling Headphones", 24900, true, shape::headphones, 265},
  {"Minimalist Field Watch", 15900, false, shape::watch, 40},
  {"Stoneware Coffee Mug", 1800, true, shape::mug, 330},
  {"Adjustable Desk Lamp", 6400, true, shape::lamp, 55},
  {"Packable Rain Jacket", 11900, true, shape::jacket, 210},
  {"Potted Fiddle Leaf Fig", 4500, true, shape::plant, 110},
  {"Portable Bluetooth Speaker", 7900, true, shape::speaker, 280},
  {"Polarized Sunglasses", 9500, false, shape::sunglasses, 175},
  {"Two-Person Backpacking Tent", 27900, true, shape::tent, 95},
  {"Everyday Canvas Sneakers", 6500, true, shape::shoe, 225},
  {"Glass Pour-Over Carafe", 3900, true, shape::bottle, 25},
  {"Weekender Duffel Backpack", 13500, true, shape::backpack, 5},
  {"Studio Monitor Headphones", 17900, true, shape::headphones, 160},
  {"Smart Fitness Watch", 19900, true, shape::watch, 300},
  {"Enamel Camp Mug", 1600, false, shape::mug, 80},
  {"Brass Table Lamp", 8800, true, shape::lamp, 240},
  {"Merino Wool Hoodie", 9800, true, shape::jacket, 350},
  {"Succulent Trio Planter", 2900, true, shape::plant, 30},
  {"Waterproof Shower Speaker", 3500, true, shape::speaker, 185},
  {"Classic Aviator Sunglasses", 12500, true, shape::sunglasses, 60},
  {"Ultralight Trekking Tent", 34900, false, shape::tent, 135},
};

constexpr int n_items = static_cast<int>(sizeof(items) / sizeof(items[0]));
constexpr int thumb = 240;

std::string id_of(int index) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "prd_%03d", index + 1);
  return buf;
}

int index_of(const std::string& product_id) {
  for (int i = 0; i < n_items; ++i)
    if (id_of(i) == product_id)
      return i;
  return -1;
}

void draw_item(raster& img, const demo_item& it, int index) {
  const double h = it.hue;
  color bg_top = hsv(h, 0.18, 0.98);
  color bg_bottom = hsv(h + 20, 0.32, 0.90);
  color main = hsv(h + 180, 0.60, 0.70);
  color accent = hsv(h + 200, 0.45, 0.95);
  color dark = hsv(h + 180, 0.55, 0.30);
  color white{250, 250, 250};
  color shadow{0, 0, 0};

  img.vertical_gradient(0, 0, thumb, thumb, bg_top, bg_bottom);
  // Soft decorative circles so items sharing a shape still look distinct.
  img.fill_circle(30 + (index * 37) % 180, 30 + (index * 53) % 60, 26 + index % 3 * 6,
                  white, 0.35);
  img.fill_circle(200 - (index * 29) % 60, 190 - (index * 17) % 40, 18, accent,
                  0.25);
  // Ground shadow.
  img.fill_ellipse(120, 196, 78, 10, shadow, 0.12);

  switch (it.kind) {
    case shape::shoe:
      img.fill_rounded_rect(40, 150, 160, 28, 12, dark);            // sole
      img.fill_ellipse(150, 140, 52, 30, main);                     // toe
      img.fill_rounded_rect(52, 92, 78, 62, 18, main);              // heel/upper
      img.fill_rounded_rect(44, 168, 152, 8, 4, white, 0.9);        // midsole
      for (int i = 0; i < 4; ++i)
        img.draw_line(96 + i * 12, 108 + i * 4, 112 + i * 12, 100 + i * 4, 3,
                      white);
      img.fill_circle(70, 110, 6, accent);
      break;
    case shape::bottle:
      img.fill_rounded_rect(88, 70, 64, 130, 18, main);
      img.fill_rounded_rect(100, 44, 40, 32, 6, dark);
      img.fill_rounded_rect(88, 110, 64, 40, 0, accent, 0.8);
      img.fill_rounded_rect(98, 80, 8, 100, 4, white, 0.35);
      break;
    case shape::backpack:
      img.stroke_circle(120, 62, 22, 7, dark);
      img.fill_rounded_rect(66, 62, 108, 134, 26, main);
      img.fill_rounded_rect(82, 128, 76, 54, 14, accent);
      img.fill_rounded_rect(82, 128, 76, 6, 3, dark, 0.6);
      img.fill_rounded_rect(76, 84, 88, 10, 5, dark, 0.35);
      break;
    case shape::headphones:
      img.stroke_circle(120, 120, 64, 12, dark);
      img.fill_rounded_rect(44, 112, 36, 66, 14, main);
      img.fill_rounded_rect(160, 112, 36, 66, 14, main);
      img.fill_rounded_rect(52, 122, 20, 46, 8, accent);
      img.fill_rounded_rect(168, 122, 20, 46, 8, accent);
      break;
    case shape::watch:
      img.fill_rounded_rect(100, 36, 40, 168, 12, dark);
      img.fill_circle(120, 120, 48, main);
      img.fill_circle(120, 120, 38, white);
      img.draw_line(120, 120, 120, 92, 4, dark);
      img.draw_line(120, 120, 140, 128, 3, dark);
      img.fill_circle(120, 120, 4, accent);
      for (int i = 0; i < 12; ++i) {
        double a = i * 3.14159265 / 6;
        img.fill_circle(120 + 32 * std::cos(a), 120 + 32 * std::sin(a), 1.8, dark);
      }
      break;
    case shape::mug:
      img.stroke_circle(160, 128, 24, 10, main);
      img.fill_rounded_rect(64, 84, 92, 110, 16, main);
      img.fill_rounded_rect(64, 84, 92, 14, 7, dark, 0.5);
      img.fill_rounded_rect(76, 120, 68, 28, 8, accent, 0.9);
      img.draw_line(96, 70, 92, 50, 4, white, 0.7);
      img.draw_line(116, 70, 120, 46, 4, white, 0.7);
      break;
    case shape::lamp:
      img.fill_rounded_rect(70, 184, 100, 14, 6, dark);
      img.draw_line(120, 186, 96, 120, 7, dark);
      img.draw_line(96, 120, 140, 78, 7, dark);
      img.fill_triangle(112, 60, 176, 60, 192, 110, main);
      img.fill_triangle(112, 60, 192, 110, 96, 110, main);
      img.fill_ellipse(144, 112, 44, 8, accent);
      img.fill_circle(144, 122, 12, {255, 236, 150}, 0.9);
      break;
    case shape::jacket:
      img.fill_triangle(72, 60, 44, 170, 80, 176, main);    // left sleeve
      img.fill_triangle(168, 60, 196, 170, 160, 176, main); // right sleeve
      img.fill_rounded_rect(72, 56, 96, 144, 14, main);
      img.fill_triangle(100, 56, 140, 56, 120, 84, bg_top); // collar
      img.draw_line(120, 84, 120, 196, 3, dark);
      img.fill_rounded_rect(84, 140, 24, 6, 3, accent);
      img.fill_rounded_rect(132, 140, 24, 6, 3, accent);
      break;
    case shape::plant:
      img.fill_ellipse(96, 96, 22, 40, hsv(120, 0.55, 0.60));
      img.fill_ellipse(146, 92, 24, 42, hsv(130, 0.60, 0.55));
      img.fill_ellipse(122, 70, 20, 40, hsv(110, 0.50, 0.68));
      img.draw_line(120, 150, 120, 80, 4, hsv(120, 0.6, 0.4));
      img.fill_triangle(76, 140, 164, 140, 150, 200, main);
      img.fill_triangle(76, 140, 150, 200, 90, 200, main);
      img.fill_rounded_rect(72, 132, 96, 16, 5, dark);
      break;
    case shape::speaker:
      img.fill_rounded_rect(64, 52, 112, 148, 22, dark);
      img.fill_circle(120, 150, 34, main);
      img.fill_circle(120, 150, 14, accent);
      img.fill_circle(120, 88, 16, main);
      img.fill_circle(120, 88, 6, accent);
      break;
    case shape::sunglasses:
      img.draw_line(48, 108, 192, 108, 6, dark);
      img.fill_rounded_rect(40, 104, 70, 52, 22, dark);
      img.fill_rounded_rect(130, 104, 70, 52, 22, dark);
      img.fill_rounded_rect(46, 110, 58, 40, 18, main);
      img.fill_rounded_rect(136, 110, 58, 40, 18, main);
      img.draw_line(56, 118, 72, 118, 4, white, 0.6);
      img.draw_line(146, 118, 162, 118, 4, white, 0.6);
      break;
    case shape::tent:
      img.fill_triangle(120, 50, 30, 196, 210, 196, main);
      img.fill_triangle(120, 50, 96, 196, 144, 196, dark);
      img.fill_triangle(120, 90, 106, 196, 134, 196, bg_bottom);
      img.draw_line(120, 50, 120, 36, 4, dark);
      img.fill_triangle(120, 36, 120, 48, 136, 42, accent);
      break;
  }
  // Small corner tag in the item's accent, varying by index.
  img.fill_rounded_rect(12, 12, 24 + (index % 4) * 6, 10, 5, accent, 0.8);
}

bool make_dirs(const std::string& dir, std::string& err) {
  std::string path;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    path = dir.substr(0, pos);
    if (path.empty())
      continue;
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      err = "cannot create directory " + path + ": " + std::strerror(errno);
      return false;
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    err = dir + " is not a directory";
    return false;
  }
  return true;
}

} // namespace

std::vector<product> demo_catalog(const std::string& image_dir_url_prefix) {
  std::vector<product> out;
  out.reserve(n_items);
  for (int i = 0; i < n_items; ++i) {
    product p;
    p.product_id = id_of(i);
    p.name = items[i].name;
    p.price_cents = items[i].price_cents;
    p.currency = "USD";
    p.image_url = image_dir_url_prefix + "/" + p.product_id + ".png";
    p.in_stock = items[i].in_stock;
    out.push_back(std::move(p));
  }
  return out;
}

std::string demo_image_png(const std::string& product_id) {
  int i = index_of(product_id);
  if (i < 0)
    return {};
  raster img(thumb, thumb);
  draw_item(img, items[i], i);
  return img.to_png();
}

bool write_demo_images(const std::string& dir, std::string& err) {
  if (dir.empty()) {
    err = "empty image directory";
    return false;
  }
  if (!make_dirs(dir, err))
    return false;
  for (int i = 0; i < n_items; ++i) {
    std::string id = id_of(i);
    std::string png = demo_image_png(id);
    if (png.empty()) {
      err = "cannot encode image for " + id;
      return false;
    }
    std::string path = dir + "/" + id + ".png";
    if (!write_file_atomically(path, png, err))
      return false;
  }
  return true;
}

} // namespace vantage
