#define BOOST_TEST_MODULE wishlist_routes_test
#include <boost/test/unit_test.hpp>

#include "adapters/pg.hpp"
#include "test/support/node_fixture.hpp"

using namespace vantage;
using namespace vantage::test;

namespace {

int64_t count_rows(const std::string& sql) {
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 2000};
  return c.exec_simple(sql).i64(0, 0);
}

std::string create_wishlist(const std::string& token,
                            const std::string& title = "Birthday") {
  auto r = N().call("POST", "/api/v2/wishlists",
                    R"({"title":")" + title + R"("})", token);
  BOOST_REQUIRE_EQUAL(r.status, 201);
  return r.str("wishlist_id");
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(global_node);

BOOST_AUTO_TEST_SUITE(catalog)

BOOST_AUTO_TEST_CASE(demo_product_is_served) {
  auto r = N().call("GET", "/api/v2/products/prd_001");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.str("product_id") == "prd_001");
  BOOST_TEST(r.body.find("\"price\":") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_and_malformed_products_are_404) {
  BOOST_TEST(N().call("GET", "/api/v2/products/prd_nope").status == 404);
  BOOST_TEST(N().call("GET", "/api/v2/products/..%2F..%2Fetc").status == 404);
  auto r = N().call("GET", "/api/v2/products/" + std::string(5000, 'x'));
  BOOST_TEST(r.status == 404);
  BOOST_TEST(r.str("error") == "NOT_FOUND");
}

BOOST_AUTO_TEST_CASE(admin_upsert_requires_admin_and_validates) {
  auto id = unique("prd_t");
  auto body = R"({"name":"Lamp","price":19.99,"currency":"USD","image_url":"","in_stock":true})";
  auto customer = token_for(unique("usr_c"), "C");
  BOOST_TEST(N().call("PUT", "/api/v2/admin/products/" + id, body, customer)
               .status
             == 403);
  auto admin = token_for(unique("usr_admin"), "Admin", "admin");
  auto bad = N().call("PUT", "/api/v2/admin/products/" + id,
                      R"({"name":"Lamp","price":"19.99","currency":"usd"})",
                      admin);
  BOOST_TEST(bad.status == 422);
  BOOST_TEST(bad.body.find("\"field\":\"price\"") != std::string::npos);
  BOOST_TEST(bad.body.find("\"field\":\"currency\"") != std::string::npos);
  BOOST_TEST(N().call("GET", "/api/v2/products/" + id).status == 404);
  auto ok = N().call("PUT", "/api/v2/admin/products/" + id, body, admin);
  BOOST_TEST(ok.status == 200);
  auto got = N().call("GET", "/api/v2/products/" + id);
  BOOST_TEST(got.status == 200);
  BOOST_TEST(got.body.find("\"price\":19.99") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(auth)

BOOST_AUTO_TEST_CASE(missing_invalid_expired_and_none_tokens_are_401) {
  auto path = "/api/v2/wishlists";
  auto body = R"({"title":"x"})";
  BOOST_TEST(N().call("POST", path, body).status == 401);
  BOOST_TEST(N().call("POST", path, body, "not.a.jwt").status == 401);
  auto expired = token_for(unique("usr_e"), "E", "customer", -60);
  auto r = N().call("POST", path, body, expired);
  BOOST_TEST(r.status == 401);
  BOOST_TEST(r.str("error") == "UNAUTHORIZED");
  // alg:none with the claims of a valid token and no signature.
  auto valid = token_for(unique("usr_n"), "N");
  auto payload = valid.substr(valid.find('.') + 1);
  payload = payload.substr(0, payload.find('.'));
  auto none = std::string{"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."} + payload
              + ".";
  BOOST_TEST(N().call("POST", path, body, none).status == 401);
  // A token signed with another secret.
  user_claims c;
  c.user_id = "usr_x";
  c.display_name = "X";
  auto forged = mint_hs256(c, "some-other-secret",
                           system_clock_source{}.now_s() + 600);
  BOOST_TEST(N().call("POST", path, body, forged).status == 401);
}

BOOST_AUTO_TEST_CASE(request_id_is_echoed_or_made) {
  auto r = N().call("GET", "/api/v2/products/prd_001", {}, {}, {},
                    {{"X-Request-ID", "req_given_1"}});
  BOOST_TEST(r.header("X-Request-ID") == "req_given_1");
  auto made = N().call("GET", "/api/v2/products/prd_nope");
  BOOST_TEST(!made.header("X-Request-ID").empty());
  BOOST_TEST(made.str("request_id") == made.header("X-Request-ID"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(wishlists)

BOOST_AUTO_TEST_CASE(create_add_read_remove) {
  auto user = unique("usr_maya");
  auto t = token_for(user, "Maya C.");
  auto wl = create_wishlist(t);
  auto add = N().call("POST", "/api/v2/wishlists/" + wl + "/items",
                      R"({"product_id":"prd_002"})", t);
  BOOST_TEST(add.status == 201);
  auto item = add.str("wishlist_item_id");
  BOOST_TEST(add.str("wishlist_id") == wl);
  auto again = N().call("POST", "/api/v2/wishlists/" + wl + "/items",
                        R"({"product_id":"prd_002"})", t);
  BOOST_TEST(again.status == 200);
  BOOST_TEST(again.str("wishlist_item_id") == item);
  auto get = N().call("GET", "/api/v2/wishlists/" + wl, {}, t);
  BOOST_TEST(get.status == 200);
  BOOST_TEST(get.body.find(item) != std::string::npos);
  BOOST_TEST(get.body.find("\"in_stock\":") != std::string::npos);
  auto del = N().call("DELETE", "/api/v2/wishlists/" + wl + "/items/" + item,
                      {}, t);
  BOOST_TEST(del.status == 204);
  BOOST_TEST(N().call("DELETE", "/api/v2/wishlists/" + wl + "/items/" + item,
                      {}, t)
               .status
             == 404);
  BOOST_TEST(count_rows("SELECT count(*) FROM wishlist_items WHERE id = '"
                        + item + "'")
             == 0);
}

BOOST_AUTO_TEST_CASE(reads_show_current_product_data_after_an_update) {
  auto admin = token_for(unique("usr_adm"), "Admin", "admin");
  auto id = unique("prd_live");
  auto put = [&](const char* price) {
    return N().call("PUT", "/api/v2/admin/products/" + id,
                    std::string{R"({"name":"Kettle","price":)"} + price
                      + R"(,"currency":"USD","in_stock":true})",
                    admin);
  };
  BOOST_REQUIRE_EQUAL(put("10.00").status, 200);
  auto t = token_for(unique("usr_live"), "Live");
  auto wl = create_wishlist(t);
  BOOST_REQUIRE_EQUAL(N().call("POST", "/api/v2/wishlists/" + wl + "/items",
                               R"({"product_id":")" + id + "\"}", t)
                        .status,
                      201);
  BOOST_TEST(N().call("GET", "/api/v2/wishlists/" + wl, {}, t).body.find(
               "\"price\":10.00")
             != std::string::npos);
  BOOST_REQUIRE_EQUAL(put("12.50").status, 200);
  bool fresh = eventually(
    [&] {
      return N().call("GET", "/api/v2/wishlists/" + wl, {}, t).body.find(
               "\"price\":12.50")
             != std::string::npos;
    },
    std::chrono::seconds{2});
  BOOST_TEST(fresh);
}

BOOST_AUTO_TEST_CASE(a_write_from_another_activation_is_never_overwritten) {
  auto t = token_for(unique("usr_ver"), "Ver");
  auto wl = create_wishlist(t);
  BOOST_REQUIRE_EQUAL(N().call("POST", "/api/v2/wishlists/" + wl + "/items",
                               R"({"product_id":"prd_001"})", t)
                        .status,
                      201);
  // Another writer (a second activation during a membership change) moves
  // the row on behind this node's actor.
  {
    pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 2000};
    c.exec_simple("UPDATE wishlists SET version = version + 1 WHERE id = '"
                  + wl + "'");
  }
  auto stale = N().call("POST", "/api/v2/wishlists/" + wl + "/items",
                        R"({"product_id":"prd_002"})", t);
  BOOST_TEST(stale.status == 409);
  BOOST_TEST(stale.str("error") == "CONFLICT");
  BOOST_TEST(count_rows("SELECT count(*) FROM wishlist_items WHERE"
                        " wishlist_id = '" + wl + "'")
             == 1);
  // The stale activation is gone; the retry loads fresh state and succeeds.
  auto retry = N().call("POST", "/api/v2/wishlists/" + wl + "/items",
                        R"({"product_id":"prd_002"})", t);
  BOOST_TEST(retry.status == 201);
  BOOST_TEST(count_rows("SELECT count(*) FROM wishlist_items WHERE"
                        " wishlist_id = '" + wl + "'")
             == 2);
}

BOOST_AUTO_TEST_CASE(another_users_wishlist_is_hidden_or_forbidden) {
  auto owner = token_for(unique("usr_o"), "Owner");
  auto other = token_for(unique("usr_p"), "Other");
  auto wl = create_wishlist(owner, "Private");
  auto read = N().call("GET", "/api/v2/wishlists/" + wl, {}, other);
  BOOST_TEST(read.status == 404);
  BOOST_TEST(read.str("error") == "WISHLIST_NOT_FOUND");
  BOOST_TEST(read.body.find("Private") == std::string::npos);
  auto write = N().call("POST", "/api/v2/wishlists/" + wl + "/items",
                        R"({"product_id":"prd_001"})", other);
  BOOST_TEST(write.status == 403);
  BOOST_TEST(write.str("error") == "FORBIDDEN");
  auto unknown = N().call("POST", "/api/v2/wishlists/wl_doesnotexist/items",
                          R"({"product_id":"prd_001"})", other);
  BOOST_TEST(unknown.status == 404);
  BOOST_TEST(unknown.str("error") == "WISHLIST_NOT_FOUND");
}

BOOST_AUTO_TEST_CASE(unknown_product_is_404_and_writes_nothing) {
  auto t = token_for(unique("usr_q"), "Q");
  auto wl = create_wishlist(t);
  auto r = N().call("POST", "/api/v2/wishlists/" + wl + "/items",
                    R"({"product_id":"prd_missing"})", t);
  BOOST_TEST(r.status == 404);
  BOOST_TEST(r.str("error") == "NOT_FOUND");
  BOOST_TEST(count_rows("SELECT count(*) FROM wishlist_items WHERE"
                        " wishlist_id = '" + wl + "'")
             == 0);
}

BOOST_AUTO_TEST_CASE(my_items_creates_the_default_list_once) {
  auto user = unique("usr_my");
  auto t = token_for(user, "Mine");
  auto a = N().call("POST", "/api/v2/wishlists/my/items",
                    R"({"product_id":"prd_005"})", t);
  BOOST_TEST(a.status == 201);
  auto b = N().call("POST", "/api/v2/wishlists/my/items",
                    R"({"product_id":"prd_006"})", t);
  BOOST_TEST(b.status == 201);
  BOOST_TEST(a.str("wishlist_id") == b.str("wishlist_id"));
  BOOST_TEST(count_rows("SELECT count(*) FROM wishlists WHERE owner_id = '"
                        + user + "' AND is_default")
             == 1);
  auto dead = N().call("POST", "/api/v2/wishlists/my/items",
                       R"({"product_id":"prd_005","source":"shared_wishlist","source_token":"AAAAAAAAAAAAAAAAAAAAAA"})",
                       t);
  BOOST_TEST(dead.status == 404);
  BOOST_TEST(dead.str("error") == "SHARE_NOT_FOUND");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(bad_bodies_are_rejected_and_change_nothing) {
  auto user = unique("usr_bad");
  auto t = token_for(user, "Bad");
  // First request creates the user; count from here on.
  create_wishlist(t, "seed");
  auto before = count_rows("SELECT count(*) FROM wishlists WHERE owner_id = '"
                           + user + "'");
  auto post = [&](const std::string& body, const std::string& type) {
    return N().call("POST", "/api/v2/wishlists", body, t, type);
  };
  BOOST_TEST(post("not json", "application/json").status == 400);
  BOOST_TEST(post(R"({"title":"x"})", "text/plain").status == 415);
  auto big = post(R"({"title":")" + std::string(70 * 1024, 'a') + R"("})",
                  "application/json");
  BOOST_TEST(big.status == 413);
  BOOST_TEST(big.str("error") == "PAYLOAD_TOO_LARGE");
  auto wrong_type = post(R"({"title":42})", "application/json");
  BOOST_TEST(wrong_type.status == 422);
  BOOST_TEST(wrong_type.body.find("\"field\":\"title\"") != std::string::npos);
  BOOST_TEST(post(R"({"title":")" + std::string(10000, 'x') + R"("})",
                  "application/json")
               .status
             == 422);
  BOOST_TEST(post(R"({"title":"   "})", "application/json").status == 422);
  BOOST_TEST(post(R"([1,2])", "application/json").status == 400);
  BOOST_TEST(post(R"({})", "application/json").status == 422);
  // 201 code points of a 4-byte character: over the 200-character limit.
  std::string emoji;
  for (int i = 0; i < 201; ++i)
    emoji += "\xF0\x9F\x8E\x81";
  BOOST_TEST(post(R"({"title":")" + emoji + R"("})", "application/json")
               .status
             == 422);
  auto after = count_rows("SELECT count(*) FROM wishlists WHERE owner_id = '"
                          + user + "'");
  BOOST_TEST(after == before);
  // 200 of them is fine, and comes back intact.
  emoji.resize(200 * 4);
  auto ok = post(R"({"title":")" + emoji + R"("})", "application/json");
  BOOST_TEST(ok.status == 201);
  BOOST_TEST(ok.str("title") == emoji);
}

BOOST_AUTO_TEST_CASE(unknown_route_gets_the_envelope) {
  auto r = N().call("GET", "/api/v2/nothing-here");
  BOOST_TEST(r.status == 404);
  BOOST_TEST(r.str("error") == "NOT_FOUND");
  BOOST_TEST(!r.str("request_id").empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(operations)

BOOST_AUTO_TEST_CASE(healthz_reports_every_service) {
  bool healthy = eventually(
    [] { return N().call("GET", "/healthz").status == 200; },
    std::chrono::seconds{10});
  BOOST_TEST(healthy);
  auto r = N().call("GET", "/healthz");
  BOOST_TEST(r.str("postgres") == "ok");
  BOOST_TEST(r.str("redis") == "ok");
  BOOST_TEST(r.str("kafka") == "ok");
}

BOOST_AUTO_TEST_CASE(metrics_expose_routes_and_actors) {
  N().call("GET", "/api/v2/products/prd_001");
  auto r = N().call("GET", "/metrics");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body.find("vantage_http_requests_total{") != std::string::npos);
  BOOST_TEST(r.body.find("route=\"product_get\"") != std::string::npos);
  BOOST_TEST(r.body.find("vantage_http_request_duration_seconds_bucket")
             != std::string::npos);
  BOOST_TEST(r.body.find("vantage_actors_active{region=\"product\"}")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(metrics_expose_the_group_commit) {
  auto& n = N();
  auto before = n.metric("vantage_write_transaction_writes_sum");
  auto transactions = n.metric("vantage_write_transaction_seconds_count");
  create_wishlist(token_for(unique("usr_commit"), "Committer"));
  // The write is answered after its transaction; the metric is recorded
  // just before the answer, on the same actor.
  BOOST_TEST(n.metric("vantage_write_transaction_writes_sum") >= before + 1);
  BOOST_TEST(n.metric("vantage_write_transaction_seconds_count")
             >= transactions + 1);
  BOOST_TEST(n.metric("vantage_write_queue_wait_seconds_count")
             == n.metric("vantage_write_transaction_seconds_count"));
}

BOOST_AUTO_TEST_SUITE_END()
