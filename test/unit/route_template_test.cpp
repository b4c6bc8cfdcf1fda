#define BOOST_TEST_MODULE route_template_test
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "gateway/route_template.hpp"

using namespace vantage;

namespace {

using params = std::vector<std::string>;

/// The parameters `path` gives, or {"<no match>"}.
params match(const char* templ, const std::string& path) {
  params got;
  if (!route_template{templ}.match(path, got))
    return {"<no match>"};
  return got;
}

const params no_match{"<no match>"};

} // namespace

BOOST_AUTO_TEST_CASE(literal_routes_match_only_themselves) {
  BOOST_TEST(match("/healthz", "/healthz") == params{});
  BOOST_TEST(match("/healthz", "/healthz/") == no_match);
  BOOST_TEST(match("/healthz", "/healthzz") == no_match);
  BOOST_TEST(match("/healthz", "/health") == no_match);
  BOOST_TEST(match("/healthz", "") == no_match);
}

BOOST_AUTO_TEST_CASE(parameters_take_one_whole_segment) {
  const char* t = "/api/v2/wishlists/{id}/shares/{token}";
  BOOST_TEST(match(t, "/api/v2/wishlists/wl_1/shares/Ab9")
             == (params{"wl_1", "Ab9"}));
  BOOST_TEST(match(t, "/api/v2/wishlists//shares/Ab9") == no_match);
  BOOST_TEST(match(t, "/api/v2/wishlists/wl_1/shares/") == no_match);
  BOOST_TEST(match(t, "/api/v2/wishlists/wl_1/shares/a/b") == no_match);
  BOOST_TEST(match(t, "/api/v2/wishlists/wl_1/shares") == no_match);
  BOOST_TEST(match("/api/v2/wishlists/{id}", "/api/v2/wishlists/shared/x")
             == no_match);
  // Traversal stays inside one segment: it is text, never a step up.
  BOOST_TEST(match("/wishlists/shared/{token}", "/wishlists/shared/..")
             == params{".."});
  BOOST_TEST(match("/wishlists/shared/{token}", "/wishlists/shared/../x")
             == no_match);
  std::string huge(1 << 20, 'A');
  BOOST_TEST(match("/wishlists/shared/{token}", "/wishlists/shared/" + huge)
             == params{huge});
}

BOOST_AUTO_TEST_CASE(a_literal_after_a_parameter_ends_its_segment) {
  const char* t = "/social/renders/{hash:sha256}.png";
  std::string hash(64, 'a');
  hash[3] = '7';
  BOOST_TEST(match(t, "/social/renders/" + hash + ".png") == params{hash});
  BOOST_TEST(match(t, "/social/renders/" + hash) == no_match);
  BOOST_TEST(match(t, "/social/renders/" + hash + ".png.png") == no_match);
  BOOST_TEST(match(t, "/social/renders/" + hash.substr(1) + ".png")
             == no_match);
  BOOST_TEST(match(t, "/social/renders/A" + hash.substr(1) + ".png")
             == no_match);
  BOOST_TEST(match(t, "/social/renders/.png") == no_match);
  BOOST_TEST(match("/social/{token}/preview.png", "/social/t1/preview.png")
             == params{"t1"});
  BOOST_TEST(match("/social/{token}/preview.png", "/social/t1/preview.jpg")
             == no_match);
  BOOST_TEST(match("/x/{name}.png", "/x/a.png.png") == params{"a.png"});
  BOOST_TEST(match("/x/{name}.png", "/x/.png") == no_match);
}

BOOST_AUTO_TEST_CASE(file_names_take_only_their_characters) {
  const char* t = "/catalog/images/{name:file}";
  BOOST_TEST(match(t, "/catalog/images/prd_001-a.jpg")
             == params{"prd_001-a.jpg"});
  BOOST_TEST(match(t, "/catalog/images/a b.jpg") == no_match);
  BOOST_TEST(match(t, "/catalog/images/a%2e.jpg") == no_match);
  BOOST_TEST(match(t, "/catalog/images/a/b.jpg") == no_match);
}

BOOST_AUTO_TEST_CASE(malformed_templates_are_refused) {
  BOOST_CHECK_THROW(route_template{"/x/{id"}, std::invalid_argument);
  BOOST_CHECK_THROW(route_template{"/x/{id:hex}"}, std::invalid_argument);
  BOOST_CHECK_THROW(route_template{"/x/{a}{b}"}, std::invalid_argument);
}
