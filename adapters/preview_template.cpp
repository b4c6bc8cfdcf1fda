#include "adapters/preview_template.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <httplib.h>
#include <openssl/evp.h>

#include "adapters/object_store.hpp"
#include "adapters/text.hpp"

namespace vantage {

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(bytes.data()),
                           static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return {};
  std::string out(3 * (text.size() / 4), '\0');
  auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(text.data()),
                           static_cast<int>(text.size()));
  if (n < 0)
    return {};
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t pad = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '=' && pad < 2;
       ++it)
    ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

namespace {

/// The media type of an image by its magic bytes; "" for anything else
/// (SVG included: it can carry script and external references).
const char* sniff_image(const std::string& b) {
  if (b.size() > 8 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0)
    return "image/png";
  if (b.size() > 3 && static_cast<unsigned char>(b[0]) == 0xFF
      && static_cast<unsigned char>(b[1]) == 0xD8
      && static_cast<unsigned char>(b[2]) == 0xFF)
    return "image/jpeg";
  if (b.size() > 6 && (b.compare(0, 6, "GIF87a") == 0
                       || b.compare(0, 6, "GIF89a") == 0))
    return "image/gif";
  if (b.size() > 12 && b.compare(0, 4, "RIFF") == 0
      && b.compare(8, 4, "WEBP") == 0)
    return "image/webp";
  return "";
}

std::string data_uri(const std::string& bytes) {
  const char* type = sniff_image(bytes);
  if (*type == '\0')
    return {};
  return std::string{"data:"} + type + ";base64," + base64_encode(bytes);
}

/// `name` (a path relative to the catalog image folder) read from inside
/// that folder only: the resolved path must stay under it, so `..`,
/// absolute paths and symlinks out of it all fail.
std::string read_catalog_file(const std::string& name,
                              const thumbnail_policy& policy) {
  namespace fs = std::filesystem;
  if (policy.catalog_images_dir.empty() || name.empty())
    return {};
  std::error_code ec;
  auto root = fs::canonical(policy.catalog_images_dir, ec);
  if (ec)
    return {};
  auto path = fs::weakly_canonical(root / fs::path{name}.relative_path(), ec);
  if (ec)
    return {};
  auto rel = path.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..")
    return {};
  if (!fs::is_regular_file(path, ec)
      || fs::file_size(path, ec) > policy.max_bytes)
    return {};
  std::ifstream in{path, std::ios::binary};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(
        std::strtol(std::string{s.substr(i + 1, 2)}.c_str(), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string fetch_http(const std::string& url, const thumbnail_policy& policy) {
  auto scheme_end = url.find("://");
  auto host_start = scheme_end + 3;
  auto path_start = url.find('/', host_start);
  if (path_start == std::string::npos)
    return {};
  auto authority = url.substr(host_start, path_start - host_start);
  if (authority.find('@') != std::string::npos)
    return {}; // no credentials in image URLs
  std::string host = authority;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    host = close == std::string::npos ? "" : host.substr(1, close - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  host = ascii_lower(host);
  if (host.empty()
      || std::none_of(policy.allowed_hosts.begin(), policy.allowed_hosts.end(),
                      [&](const std::string& h) { return h == host; }))
    return {};
  httplib::Client cli{url.substr(0, path_start)};
  auto secs = policy.timeout_ms / 1000;
  auto usecs = (policy.timeout_ms % 1000) * 1000;
  cli.set_connection_timeout(secs, usecs);
  cli.set_read_timeout(secs, usecs);
  cli.set_write_timeout(secs, usecs);
  cli.set_follow_location(false);
  std::string body;
  bool too_big = false;
  auto res = cli.Get(url.substr(path_start).c_str(),
                     [&](const char* data, size_t len) {
                       if (body.size() + len > policy.max_bytes) {
                         too_big = true;
                         return false;
                       }
                       body.append(data, len);
                       return true;
                     });
  if (!res || res->status != 200 || too_big)
    return {};
  return body;
}

} // namespace

std::string load_thumbnail(const std::string& ref,
                           const thumbnail_policy& policy) {
  try {
    static constexpr std::string_view catalog_prefix = "/catalog/images/";
    static constexpr std::string_view file_prefix = "file://";
    std::string bytes;
    if (ref.rfind(catalog_prefix, 0) == 0)
      bytes = read_catalog_file(percent_decode(ref.substr(catalog_prefix.size())),
                                policy);
    else if (ref.rfind(file_prefix, 0) == 0) {
      // file:///abs/path: allowed only when it lies in the catalog folder.
      namespace fs = std::filesystem;
      std::error_code ec;
      auto root = fs::canonical(policy.catalog_images_dir, ec);
      auto path = fs::weakly_canonical(
        percent_decode(ref.substr(file_prefix.size())), ec);
      if (!ec && !root.empty())
        bytes = read_catalog_file(path.lexically_relative(root).string(),
                                  policy);
    } else if (ref.rfind("http://", 0) == 0 || ref.rfind("https://", 0) == 0)
      bytes = fetch_http(ref, policy);
    return bytes.empty() ? std::string{} : data_uri(bytes);
  } catch (const std::exception&) {
    return {};
  }
}

namespace {

constexpr const char* card_style = R"css(
html,body{margin:0;padding:0}
body{width:1200px;height:630px;overflow:hidden;color:#1f2937;
 background:linear-gradient(135deg,#fff7ed 0%,#fde2e4 100%);
 font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif}
.card{position:absolute;left:48px;top:40px;right:40px;bottom:40px;display:flex;gap:40px}
.text{flex:1;display:flex;flex-direction:column;justify-content:center;min-width:0}
.brand{font-size:22px;letter-spacing:4px;color:#be185d;font-weight:700}
h1{font-size:54px;line-height:1.15;margin:20px 0;display:-webkit-box;
 -webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden;overflow-wrap:anywhere}
.owner{font-size:30px;color:#4b5563;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.count{margin-top:26px;font-size:30px;font-weight:700;color:#be185d}
.grid{flex:none;width:520px;display:grid;grid-template-columns:250px 250px;
 grid-template-rows:265px 265px;gap:20px}
.tile{background:#fff;border-radius:18px;overflow:hidden;display:flex;flex-direction:column;
 box-shadow:0 4px 14px rgba(0,0,0,.12)}
.tile img,.ph{flex:none;width:250px;height:205px;display:block;object-fit:cover}
.ph{background:repeating-linear-gradient(45deg,#f3f4f6 0 12px,#e5e7eb 12px 24px)}
.empty{background:rgba(255,255,255,.45);box-shadow:none}
.meta{padding:6px 12px;font-size:18px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.price{font-weight:700;color:#be185d}
)css";

} // namespace

std::string preview_html(const render_request& req,
                         const std::vector<std::string>& thumbnails,
                         bool compact) {
  std::string out;
  out.reserve(8192);
  out += "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src"
         " 'none'; img-src data:; style-src 'unsafe-inline'\"><style>";
  out += card_style;
  if (compact)
    out += ".tile img{filter:blur(0.8px)}";
  out += "</style></head><body><div class=\"card\"><div class=\"text\">"
         "<div class=\"brand\">VANTAGE WISHLIST</div><h1>";
  html_escape_to(out, clip_chars(req.wishlist_title, 300));
  out += "</h1><div class=\"owner\">";
  html_escape_to(out, "by " + clip_chars(req.owner_name, 100));
  out += "</div><div class=\"count\">";
  out += std::to_string(req.item_count);
  out += req.item_count == 1 ? " item" : " items";
  out += "</div></div><div class=\"grid\">";
  for (size_t i = 0; i < 4; ++i) {
    if (i >= req.items.size()) {
      out += "<div class=\"tile empty\"></div>";
      continue;
    }
    auto& item = req.items[i];
    out += "<div class=\"tile\">";
    if (i < thumbnails.size() && !thumbnails[i].empty()) {
      out += "<img alt=\"\" src=\"";
      out += thumbnails[i]; // base64 only: nothing to escape
      out += "\">";
    } else {
      out += "<div class=\"ph\"></div>";
    }
    out += "<div class=\"meta\">";
    html_escape_to(out, clip_chars(item.name, 80));
    out += "</div><div class=\"meta price\">";
    html_escape_to(out, clip_chars(item.price, 24));
    out += "</div></div>";
  }
  out += "</div></div></body></html>";
  return out;
}

std::string share_preview_cache_key(const std::string& wishlist_id,
                                    std::vector<std::string> visible_item_ids) {
  std::sort(visible_item_ids.begin(), visible_item_ids.end());
  std::string material = std::string{preview_template_name} + "\n"
                         + std::to_string(preview_template_version) + "\n"
                         + wishlist_id + "\n";
  for (auto& id : visible_item_ids)
    material += id + ",";
  return "sha256:" + sha256_hex(material);
}

std::string content_cache_key(const render_request& req) {
  // Lengths before each field: no two different requests share material.
  std::string material;
  auto field = [&](const std::string& s) {
    material += std::to_string(s.size()) + ":" + s;
  };
  field(req.template_name);
  field(std::to_string(preview_template_version));
  field(req.wishlist_title);
  field(req.owner_name);
  field(std::to_string(req.item_count));
  field(std::to_string(req.width) + "x" + std::to_string(req.height));
  for (auto& item : req.items) {
    field(item.name);
    field(item.image);
    field(item.price);
  }
  return "sha256:" + sha256_hex(material);
}

} // namespace vantage
