#define BOOST_TEST_MODULE messages_test
#include <boost/test/unit_test.hpp>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <set>
#include <thread>

#include "actors/region.hpp"
#include "adapters/ids.hpp"
#include "test/support/caf_fixture.hpp"

// Every message type must cross a node: CAF serializes it with its inspect()
// and the receiving node needs the type registered. Round-trip each one
// through the binary serializer inside a caf::message, as the middleman does.

using namespace vantage;
using namespace vantage::test;

namespace {

template <class T>
T round_trip(caf::actor_system& sys, const T& x) {
  auto msg = caf::make_message(x);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto err = sink(msg);
  BOOST_REQUIRE_MESSAGE(!err, "serialize: " << sys.render(err));
  caf::message copy;
  caf::binary_deserializer source{sys, buf};
  err = source(copy);
  BOOST_REQUIRE_MESSAGE(!err, "deserialize: " << sys.render(err));
  BOOST_REQUIRE(copy.match_element<T>(0));
  return copy.get_as<T>(0);
}

product sample_product() {
  return {"prd_001", "Trail Running Shoes \xF0\x9F\x91\x9F", 12900, "USD",
          "/catalog/images/prd_001.png", false};
}

} // namespace

namespace vantage {
std::ostream& boost_test_print_type(std::ostream& os, const product& p) {
  return os << caf::deep_to_string(p);
}
} // namespace vantage

BOOST_FIXTURE_TEST_SUITE(messages, caf_fixture)

BOOST_AUTO_TEST_CASE(product_round_trips) {
  BOOST_TEST(round_trip(sys, sample_product()) == sample_product());
}

BOOST_AUTO_TEST_CASE(user_claims_round_trip) {
  user_claims c{"usr_1", "Maya C.", "maya@example.com", "Europe/Berlin", "eu",
                "admin"};
  auto r = round_trip(sys, c);
  BOOST_TEST(r.user_id == c.user_id);
  BOOST_TEST(r.display_name == c.display_name);
  BOOST_TEST(r.email == c.email);
  BOOST_TEST(r.tz == c.tz);
  BOOST_TEST(r.region == c.region);
  BOOST_TEST(r.account_type == c.account_type);
}

BOOST_AUTO_TEST_CASE(wishlist_view_round_trips_with_items) {
  wishlist_view v{"wl_1", "usr_1", "Birthday", 1700000000000, {}};
  v.items.push_back({{"wli_1", "prd_001", 1700000000500}, sample_product()});
  auto r = round_trip(sys, v);
  BOOST_TEST(r.wishlist_id == "wl_1");
  BOOST_TEST(r.created_at == 1700000000000);
  BOOST_REQUIRE_EQUAL(r.items.size(), 1u);
  BOOST_TEST(r.items[0].item.wishlist_item_id == "wli_1");
  BOOST_TEST(r.items[0].item.added_at == 1700000000500);
  BOOST_TEST(r.items[0].details == sample_product());
}

BOOST_AUTO_TEST_CASE(item_added_round_trips) {
  item_added a{"wl_1", {"wli_2", "prd_002", 42}, false};
  auto r = round_trip(sys, a);
  BOOST_TEST(r.wishlist_id == "wl_1");
  BOOST_TEST(r.item.product_id == "prd_002");
  BOOST_TEST(r.created == false);
}

BOOST_AUTO_TEST_CASE(envelope_round_trips_with_its_payload) {
  envelope e{"wl_1", caf::make_message(atom::add_v, std::string{"usr_1"},
                                       std::string{"prd_003"})};
  auto r = round_trip(sys, e);
  BOOST_TEST(r.key == "wl_1");
  bool shape = r.payload.match_elements<atom::add, std::string, std::string>();
  BOOST_REQUIRE(shape);
  BOOST_TEST(r.payload.get_as<std::string>(2) == "prd_003");
}

BOOST_AUTO_TEST_CASE(domain_errors_keep_code_and_message) {
  auto err = make_error(errc::forbidden, "You can only share wishlists you own");
  auto r = round_trip(sys, err);
  BOOST_TEST(is(r, errc::forbidden));
  BOOST_TEST(error_message(r) == "You can only share wishlists you own");
}

BOOST_AUTO_TEST_CASE(render_messages_round_trip) {
  // The renderer may run on another node than the share that asks it.
  render_request req;
  req.wishlist_title = "Holiday Gift Ideas";
  req.owner_name = "Maya C.";
  req.items = {{"Headphones", "/catalog/images/prd_001.png", "$249.99"}};
  req.item_count = 7;
  req.width = 1200;
  req.height = 630;
  req.cache_key = "sha256:ab";
  req.object_key = "social/tok/preview.png";
  auto r = round_trip(sys, req);
  BOOST_TEST(r.template_name == "wishlist-share");
  BOOST_TEST(r.wishlist_title == req.wishlist_title);
  BOOST_TEST(r.owner_name == req.owner_name);
  BOOST_REQUIRE_EQUAL(r.items.size(), 1u);
  BOOST_TEST(r.items[0].image == "/catalog/images/prd_001.png");
  BOOST_TEST(r.items[0].price == "$249.99");
  BOOST_TEST(r.item_count == 7);
  BOOST_TEST(r.height == 630);
  BOOST_TEST(r.cache_key == req.cache_key);
  BOOST_TEST(r.object_key == req.object_key);
  render_result out;
  out.object_key = "social/tok/preview.png";
  out.cache_key = "sha256:ab";
  out.image_size_bytes = 201393;
  out.rendered_at = 1700000000000;
  out.cached = true;
  out.capture_ms = 93;
  out.total_ms = 101;
  auto o = round_trip(sys, out);
  BOOST_TEST(o.object_key == out.object_key);
  BOOST_TEST(o.image_size_bytes == 201393);
  BOOST_TEST(o.rendered_at == 1700000000000);
  BOOST_TEST(o.cached);
  BOOST_TEST(o.capture_ms == 93);
  BOOST_TEST(o.total_ms == 101);
  BOOST_TEST(round_trip(sys, std::string{"pending"}) == "pending");
}

BOOST_AUTO_TEST_CASE(share_messages_round_trip) {
  share_request req{"wl_1", "usr_1", "Maya C.", "whatsapp", 7,
                    {"wli_1", "wli_2"}, "for you \xE2\x9D\xA4",
                    {"curl/8", "https://example.com/", "DE"}};
  auto r = round_trip(sys, req);
  BOOST_TEST(r.owner_display_name == "Maya C.");
  BOOST_TEST(r.hidden_items.size() == 2u);
  BOOST_TEST(r.meta.country == "DE");
  BOOST_TEST(r.message == req.message);

  share_info info;
  info.share_token = "4fZq0Lr8TnW2xKc9PbA1sd";
  info.expires_at = 1760000000000;
  info.hidden_items = {"wli_9"};
  info.view_count = 41;
  info.preview_status = "rendered";
  auto i = round_trip(sys, info);
  BOOST_TEST(i.share_token == info.share_token);
  BOOST_TEST(i.expires_at == info.expires_at);
  BOOST_TEST(i.preview_status == "rendered");
  BOOST_TEST(i.view_count == 41);
  BOOST_TEST(round_trip(sys, std::vector<share_info>{info, info}).size() == 2u);

  shared_wishlist w{"tok", "usr_1", "Birthday", "Maya C.", 17, {sample_product()}, 3};
  auto v = round_trip(sys, w);
  BOOST_TEST(v.items.size() == 1u);
  BOOST_TEST(v.items[0] == sample_product());
  BOOST_TEST(v.view_count == 3);

  share_visibility_change c{{"wli_1"}, {"wli_2", "wli_3"}};
  BOOST_TEST(round_trip(sys, c).show.size() == 2u);
  BOOST_TEST(round_trip(sys, request_meta{"ua", "", ""}).user_agent == "ua");
}

BOOST_AUTO_TEST_CASE(add_from_share_messages_round_trip) {
  share_credit c{"6f1c2a5e-3b4d-4e8f-9a0b-1c2d3e4f5a6b", "wl_shared",
                 R"({"event_id":"e1","event_type":"share_item_added",)"
                 R"("recipient_user_id":"usr_2","item_count":1})"};
  auto r = round_trip(sys, c);
  BOOST_TEST(r.share_id == c.share_id);
  BOOST_TEST(r.share_wishlist_id == "wl_shared");
  BOOST_TEST(r.event_json == c.event_json);

  credited_add a{{"wl_rcp", {"wli_7", "prd_002", 42}, true}, 5};
  auto x = round_trip(sys, a);
  BOOST_TEST(x.added.wishlist_id == "wl_rcp");
  BOOST_TEST(x.added.item.wishlist_item_id == "wli_7");
  BOOST_TEST(x.added.created);
  BOOST_TEST(x.items_added == 5);

  // The hop share -> user -> wishlist, as the actors build it.
  auto e = round_trip(sys, entity_request<wishlist_actor, credited_add>(
                             "wl_rcp", atom::add_v, std::string{"usr_2"},
                             std::string{"prd_002"}, c));
  bool shape = e.payload.match_elements<atom::add, std::string, std::string,
                                        share_credit>();
  BOOST_REQUIRE(shape);
  BOOST_TEST(e.payload.get_as<share_credit>(3).event_json == c.event_json);
}

// The typed interfaces accept the add-from-share hops with these answers
// only (entity_request and ask check the same at compile time).
static_assert(answers_with<user_actor, credited_add, atom::add, std::string,
                           share_credit>());
static_assert(!answers_with<user_actor, item_added, atom::add, std::string,
                            share_credit>());
static_assert(answers_with<wishlist_actor, credited_add, atom::add,
                           std::string, std::string, share_credit>());
static_assert(answers_with<wishlist_actor, item_added, atom::add, std::string,
                           std::string>());
static_assert(answers_with<share_actor, item_added, atom::add, std::string,
                           std::string, request_meta>());
static_assert(!answers_with<share_actor, item_added, atom::add, std::string,
                            std::string>());

BOOST_AUTO_TEST_CASE(share_tokens_are_22_base62_characters) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    auto t = new_share_token();
    BOOST_REQUIRE(plausible_share_token(t));
    seen.insert(t);
  }
  BOOST_TEST(seen.size() == 2000u);
  BOOST_TEST(!plausible_share_token("short"));
  BOOST_TEST(!plausible_share_token("AAAAAAAAAAAAAAAAAAAAA!"));
  BOOST_TEST(!plausible_share_token("AAAAAAAAAAAAAAAAAAAAAAA"));
}

// Random bytes come from a per-thread pool refilled 4 KiB at a time: ids
// drawn across many refills, and on several threads at once, never repeat
// (a pool that handed out a piece twice would repeat them).
BOOST_AUTO_TEST_CASE(random_ids_never_repeat_across_refills_and_threads) {
  constexpr int per_thread = 5000; // 16 bytes each: ~20 refills per thread
  std::vector<std::vector<std::string>> drawn(4);
  std::vector<std::thread> threads;
  for (auto& out : drawn)
    threads.emplace_back([&out] {
      for (int i = 0; i < per_thread; ++i)
        out.push_back(i % 2 ? new_uuid() : new_share_token());
    });
  for (auto& t : threads)
    t.join();
  std::set<std::string> seen;
  for (auto& out : drawn)
    seen.insert(out.begin(), out.end());
  BOOST_TEST(seen.size() == 4u * per_thread);
}

BOOST_AUTO_TEST_SUITE_END()
