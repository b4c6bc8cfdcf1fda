#include "gateway/share_page.hpp"

#include <cstdio>

#include "adapters/json.hpp"
#include "adapters/text.hpp"

namespace vantage {

namespace {

std::string money(int64_t cents) {
  json_writer w;
  w.money(cents);
  return w.take();
}

void meta(std::string& out, const char* attr, const char* name,
          const std::string& content) {
  out += "<meta ";
  out += attr;
  out += "=\"";
  out += name;
  out += "\" content=\"";
  html_escape_to(out, content);
  out += "\">\n";
}

/// Image sources a public page may carry: web URLs and our own paths.
bool public_image(const std::string& url) {
  return url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0
         || (url.size() > 1 && url[0] == '/' && url[1] != '/');
}

} // namespace

std::string shared_page_html(const shared_wishlist& w,
                             const std::string& share_url,
                             const std::string& preview_url) {
  auto owner = clip_chars(w.owner_display_name, 80);
  auto title = clip_chars(w.title, 200);
  auto count = std::to_string(w.items.size());
  std::string out;
  out.reserve(4096 + w.items.size() * 512);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  meta(out, "property", "og:type", "product.group");
  meta(out, "property", "og:title", owner + "'s Wishlist: " + title);
  meta(out, "property", "og:description",
       count + " items on " + owner + "'s wishlist");
  meta(out, "property", "og:image", preview_url);
  meta(out, "property", "og:image:width", "1200");
  meta(out, "property", "og:image:height", "630");
  meta(out, "property", "og:url", share_url);
  meta(out, "name", "twitter:card", "summary_large_image");
  meta(out, "name", "twitter:title", owner + "'s Wishlist");
  meta(out, "name", "twitter:description", "Check out " + count + " items!");
  meta(out, "name", "twitter:image", preview_url);
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>";
  html_escape_to(out, owner + "'s Wishlist: " + title);
  out += "</title>\n";
  out += "<style>"
         "body{font-family:system-ui,sans-serif;margin:0;background:#faf7fb;color:#222}"
         "header{padding:32px 24px 8px}h1{margin:0 0 4px;font-size:28px}"
         "ul{list-style:none;display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));"
         "gap:16px;padding:24px;margin:0}"
         "li{background:#fff;border-radius:14px;padding:16px;box-shadow:0 2px 8px #0001}"
         "img{width:100%;aspect-ratio:1;object-fit:cover;border-radius:10px;background:#eee}"
         ".price{font-weight:600}.out{color:#b00}.in{color:#070}"
         "</style>\n</head>\n<body>\n<header>\n<h1>";
  html_escape_to(out, title);
  out += "</h1>\n<p>";
  html_escape_to(out, owner);
  out += "'s wishlist &middot; " + count + " items</p>\n</header>\n<ul>\n";
  for (auto& p : w.items) {
    out += "<li class=\"item\">";
    if (public_image(p.image_url)) {
      out += "<img src=\"";
      html_escape_to(out, p.image_url);
      out += "\" alt=\"";
      html_escape_to(out, p.name);
      out += "\">";
    }
    out += "<h2 class=\"name\">";
    html_escape_to(out, p.name);
    out += "</h2><p class=\"price\">";
    html_escape_to(out, money(p.price_cents) + " " + p.currency);
    out += p.in_stock ? "</p><p class=\"in\">In stock</p>"
                      : "</p><p class=\"out\">Out of stock</p>";
    out += "</li>\n";
  }
  out += "</ul>\n</body>\n</html>\n";
  return out;
}

std::string share_gone_html() {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                    "<meta charset=\"utf-8\">\n<title>Wishlist unavailable"
                    "</title>\n</head>\n<body>\n<h1>";
  out += share_gone_message;
  out += "</h1>\n</body>\n</html>\n";
  return out;
}

} // namespace vantage
