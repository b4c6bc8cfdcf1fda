#define BOOST_TEST_MODULE png_test
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>
#include <zlib.h>

#include "adapters/png.hpp"
#include "app/demo_catalog.hpp"

namespace {

struct chunk {
  std::string type;
  std::string data;
  uint32_t crc = 0;
};

uint32_t be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16)
         | (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

const std::string signature("\x89PNG\r\n\x1a\n", 8);

// Splits a PNG file into chunks; fails the test on truncation.
std::vector<chunk> parse(const std::string& png) {
  std::vector<chunk> out;
  BOOST_REQUIRE_GE(png.size(), signature.size());
  size_t p = signature.size();
  while (p < png.size()) {
    BOOST_REQUIRE_LE(p + 12, png.size());
    uint32_t len = be32(png, p);
    BOOST_REQUIRE_LE(p + 12 + len, png.size());
    chunk c;
    c.type = png.substr(p + 4, 4);
    c.data = png.substr(p + 8, len);
    c.crc = be32(png, p + 8 + len);
    out.push_back(std::move(c));
    p += 12 + len;
  }
  return out;
}

uint32_t zlib_crc(const chunk& c) {
  std::string body = c.type + c.data;
  return static_cast<uint32_t>(
    crc32(0L, reinterpret_cast<const Bytef*>(body.data()),
          static_cast<uInt>(body.size())));
}

// Undoes the PNG filters of an RGB8 image (all five filter types).
std::vector<uint8_t> unfilter(const std::vector<uint8_t>& raw, int w, int h) {
  const size_t stride = size_t(w) * 3;
  std::vector<uint8_t> out(stride * h);
  for (int y = 0; y < h; ++y) {
    uint8_t f = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    uint8_t* row = &out[y * stride];
    const uint8_t* prev = y > 0 ? &out[(y - 1) * stride] : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      int a = i >= 3 ? row[i - 3] : 0;
      int b = prev ? prev[i] : 0;
      int c = (prev && i >= 3) ? prev[i - 3] : 0;
      int pred = 0;
      switch (f) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b),
              pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default: BOOST_FAIL("bad filter type " << int(f));
      }
      row[i] = uint8_t(in[i] + pred);
    }
  }
  return out;
}

std::vector<uint8_t> pattern(int w, int h) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      size_t i = (size_t(y) * w + x) * 3;
      px[i] = uint8_t(x * 7 + y);
      px[i + 1] = uint8_t(y * 13);
      px[i + 2] = uint8_t((x ^ y) * 3);
    }
  return px;
}

} // namespace

BOOST_AUTO_TEST_CASE(signature_and_chunk_layout) {
  auto png = vantage::encode_png_rgb(pattern(17, 9), 17, 9);
  BOOST_REQUIRE_GT(png.size(), signature.size());
  BOOST_TEST(png.compare(0, 8, signature) == 0);
  auto chunks = parse(png);
  BOOST_REQUIRE_GE(chunks.size(), 3u);
  BOOST_TEST(chunks.front().type == "IHDR");
  BOOST_TEST(chunks.back().type == "IEND");
  BOOST_TEST(chunks.back().data.empty());
  const auto& ihdr = chunks.front().data;
  BOOST_REQUIRE_EQUAL(ihdr.size(), 13u);
  BOOST_TEST(be32(ihdr, 0) == 17u);
  BOOST_TEST(be32(ihdr, 4) == 9u);
  BOOST_TEST(int(uint8_t(ihdr[8])) == 8);  // bit depth
  BOOST_TEST(int(uint8_t(ihdr[9])) == 2);  // truecolor
  BOOST_TEST(int(uint8_t(ihdr[12])) == 0); // not interlaced
}

BOOST_AUTO_TEST_CASE(chunk_crcs_are_valid) {
  auto png = vantage::encode_png_rgb(pattern(31, 20), 31, 20);
  for (auto& c : parse(png)) {
    BOOST_TEST_CONTEXT("chunk " << c.type) {
      BOOST_TEST(c.crc == zlib_crc(c));
      BOOST_TEST(c.crc
                 == vantage::png_crc32(
                   reinterpret_cast<const uint8_t*>((c.type + c.data).data()),
                   c.type.size() + c.data.size()));
    }
  }
  // Known CRC-32 check value.
  const std::string check = "123456789";
  BOOST_TEST(vantage::png_crc32(reinterpret_cast<const uint8_t*>(check.data()),
                                check.size())
             == 0xCBF43926u);
}

BOOST_AUTO_TEST_CASE(idat_decompresses_to_filtered_pixels) {
  const int w = 23, h = 11;
  auto px = pattern(w, h);
  auto png = vantage::encode_png_rgb(px, w, h);
  std::string idat;
  for (auto& c : parse(png))
    if (c.type == "IDAT")
      idat += c.data;
  BOOST_REQUIRE(!idat.empty());
  std::vector<uint8_t> raw(size_t(h) * (size_t(w) * 3 + 1) + 16);
  uLongf raw_len = static_cast<uLongf>(raw.size());
  int zrc = uncompress(raw.data(), &raw_len,
                       reinterpret_cast<const Bytef*>(idat.data()),
                       static_cast<uLong>(idat.size()));
  BOOST_REQUIRE_EQUAL(zrc, Z_OK);
  BOOST_REQUIRE_EQUAL(raw_len, uLongf(h * (w * 3 + 1)));
  raw.resize(raw_len);
  auto decoded = unfilter(raw, w, h);
  BOOST_TEST(decoded == px, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(rejects_bad_dimensions) {
  BOOST_TEST(vantage::encode_png_rgb({}, 0, 0).empty());
  BOOST_TEST(vantage::encode_png_rgb(std::vector<uint8_t>(10), 2, 2).empty());
}

BOOST_AUTO_TEST_CASE(raster_primitives) {
  vantage::raster r(40, 30, {10, 20, 30});
  BOOST_REQUIRE_EQUAL(r.rgb.size(), 40u * 30u * 3u);
  r.fill_rect(5, 5, 10, 10, 200, 100, 50);
  BOOST_TEST(r.get(7, 7).r == 200);
  BOOST_TEST(r.get(7, 7).g == 100);
  BOOST_TEST(r.get(20, 20).r == 10);
  r.fill_circle(30, 15, 5, {0, 255, 0});
  BOOST_TEST(r.get(30, 15).g == 255);
  BOOST_TEST(r.get(30, 2).g == 20);
  r.vertical_gradient(0, 25, 40, 5, {0, 0, 0}, {255, 255, 255});
  BOOST_TEST(r.get(0, 25).r == 0);
  BOOST_TEST(r.get(0, 29).r == 255);
  r.fill_rect(-5, -5, 100, 2, 1, 2, 3); // clipped, must not crash
  auto card = vantage::raster(1200, 630);
  card.diagonal_gradient({30, 40, 90}, {220, 120, 160});
  auto png = card.to_png();
  BOOST_TEST(png.compare(0, 8, signature) == 0);
}

BOOST_AUTO_TEST_CASE(demo_catalog_products) {
  auto items = vantage::demo_catalog("/catalog/images");
  BOOST_REQUIRE_GE(items.size(), 24u);
  std::set<std::string> ids;
  int out_of_stock = 0;
  for (auto& p : items) {
    ids.insert(p.product_id);
    BOOST_TEST(!p.name.empty());
    BOOST_TEST(p.price_cents > 0);
    BOOST_TEST(p.currency == "USD");
    BOOST_TEST(p.image_url == "/catalog/images/" + p.product_id + ".png");
    if (!p.in_stock)
      ++out_of_stock;
  }
  BOOST_TEST(ids.size() == items.size());
  BOOST_TEST(ids.count("prd_001") == 1u);
  BOOST_TEST(ids.count("prd_024") == 1u);
  BOOST_TEST(out_of_stock >= 1);
  BOOST_TEST(out_of_stock < int(items.size()));
}

BOOST_AUTO_TEST_CASE(demo_images_written) {
  char tmpl[] = "/tmp/vantage_png_test_XXXXXX";
  BOOST_REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = std::string(tmpl) + "/nested/images";
  std::string err;
  BOOST_REQUIRE_MESSAGE(vantage::write_demo_images(dir, err), err);
  auto items = vantage::demo_catalog("/x");
  std::set<std::string> contents;
  for (auto& p : items) {
    std::string path = dir + "/" + p.product_id + ".png";
    std::ifstream in(path, std::ios::binary);
    BOOST_REQUIRE_MESSAGE(in.good(), "missing " << path);
    std::string data((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    BOOST_TEST(data.compare(0, 8, signature) == 0);
    auto chunks = parse(data);
    BOOST_REQUIRE(!chunks.empty());
    BOOST_TEST(be32(chunks.front().data, 0) == 240u);
    BOOST_TEST(be32(chunks.front().data, 4) == 240u);
    for (auto& c : chunks)
      BOOST_TEST(c.crc == zlib_crc(c));
    contents.insert(data);
    std::remove(path.c_str());
  }
  BOOST_TEST(contents.size() == items.size()); // every thumbnail distinct
  ::rmdir(dir.c_str());
  ::rmdir((std::string(tmpl) + "/nested").c_str());
  ::rmdir(tmpl);
}
