#define BOOST_TEST_MODULE share_routes_test
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <regex>
#include <thread>
#include <vector>

#include "adapters/ids.hpp"
#include "adapters/json.hpp"
#include "adapters/pg.hpp"
#include "test/support/node_fixture.hpp"

using namespace vantage;
using namespace vantage::test;
using namespace std::chrono_literals;

namespace {

int64_t count_rows(const std::string& sql,
                   const std::vector<pg_param>& params = {}) {
  // Generous: the outbox of a long-lived test database can be large.
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 30000};
  return c.exec("count_rows_test", sql.c_str(), params).i64(0, 0);
}

int64_t outbox_events(const std::string& token, const std::string& type) {
  // Generous: the outbox of a long-lived test database can be large.
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 30000};
  return c
    .exec("outbox_count",
          "SELECT count(*) FROM event_outbox WHERE topic ="
          " 'wishlist.social.events' AND payload->>'share_token' = $1"
          " AND payload->>'event_type' = $2",
          {token, type})
    .i64(0, 0);
}

/// Tokens outlive every clock advance of this suite (weeks).
std::string tok(const std::string& sub, const std::string& name) {
  return token_for(sub, name, "customer", 90LL * 24 * 3600);
}

/// An owner with a wishlist of `n` demo products.
struct owner {
  std::string user_id = unique("usr_own");
  std::string token = tok(user_id, "Maya C.");
  std::string wishlist_id;
  std::vector<std::string> item_ids;
  std::vector<std::string> product_ids;

  explicit owner(int n = 3, const std::string& title = "Birthday") {
    auto r = N().call("POST", "/api/v2/wishlists",
                      R"({"title":)" + json_quote(title) + "}", token);
    BOOST_REQUIRE_EQUAL(r.status, 201);
    wishlist_id = r.str("wishlist_id");
    for (int i = 1; i <= n; ++i) {
      char pid[16];
      std::snprintf(pid, sizeof pid, "prd_%03d", i);
      auto a = N().call("POST", "/api/v2/wishlists/" + wishlist_id + "/items",
                        std::string{R"({"product_id":")"} + pid + "\"}", token);
      BOOST_REQUIRE_EQUAL(a.status, 201);
      item_ids.push_back(a.str("wishlist_item_id"));
      product_ids.push_back(pid);
    }
  }

  http_result share(const std::string& body) {
    return N().call("POST", "/api/v2/wishlists/" + wishlist_id + "/share",
                    body, token);
  }

  std::string share_token(const std::string& body = R"({"channel":"link"})") {
    auto r = share(body);
    BOOST_REQUIRE_EQUAL(r.status, 201);
    return r.str("share_token");
  }

  size_t share_count() {
    auto r = N().call("GET", "/api/v2/wishlists/" + wishlist_id + "/shares",
                      "", token);
    BOOST_REQUIRE_EQUAL(r.status, 200);
    size_t n = 0;
    for (size_t at = r.body.find("\"share_id\""); at != std::string::npos;
         at = r.body.find("\"share_id\"", at + 1))
      ++n;
    return n;
  }
};

int64_t json_int(const std::string& body, const char* path_a,
                 const char* path_b = nullptr) {
  simdjson::dom::parser p;
  auto doc = p.parse(body);
  int64_t v = -1;
  auto err = path_b ? doc[path_a][path_b].get(v) : doc[path_a].get(v);
  return err == simdjson::SUCCESS ? v : -1;
}

/// All lookups of this suite come from 127.0.0.1, one bucket of 60 per
/// minute: tests that view shares start by letting a minute pass.
void refill_lookup_bucket() {
  N().node->advance(std::chrono::seconds{61});
}

/// The 404 body without its request id, to compare answers.
std::string without_request_id(std::string body) {
  return std::regex_replace(body, std::regex{R"("request_id":"[^"]*")"}, "");
}

/// This suite counts each route's events in the outbox, so its node keeps
/// published rows (by default the relay deletes them once published); set
/// before the node reads its environment.
struct keep_published_events {
  keep_published_events() {
    ::setenv("VANTAGE_OUTBOX_RETENTION_S", "3600", 1);
  }
};

struct module_fixture : keep_published_events, global_node {};

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(module_fixture);

BOOST_AUTO_TEST_SUITE(create_and_view)

BOOST_AUTO_TEST_CASE(create_answers_the_contract_shape_with_limit_headers) {
  owner o{3};
  auto r = o.share(R"({"channel":"whatsapp","hidden_items":[")" + o.item_ids[0]
                   + R"("],"message":"For my birthday"})");
  BOOST_REQUIRE_EQUAL(r.status, 201);
  auto token = r.str("share_token");
  BOOST_TEST(token.size() == 22u);
  BOOST_TEST(std::regex_match(token, std::regex{"[0-9A-Za-z]{22}"}));
  BOOST_TEST(r.str("share_url").find("/wishlists/shared/" + token)
             != std::string::npos);
  BOOST_TEST(r.str("preview_image_url").find("/social/" + token + "/preview.png")
             != std::string::npos);
  BOOST_TEST(r.str("preview_status") == "rendered");
  BOOST_TEST(json_int(r.body, "item_count") == 2);
  BOOST_TEST(json_int(r.body, "hidden_items_count") == 1);
  BOOST_TEST(!r.str("expires_at").empty());
  BOOST_TEST(r.header("X-RateLimit-Limit") == "20");
  BOOST_TEST(r.header("X-RateLimit-Remaining") == "19");
  BOOST_TEST(!r.header("X-RateLimit-Reset").empty());
  BOOST_TEST(!r.header("RateLimit-Policy").empty());
  BOOST_TEST(outbox_events(token, "share_created") == 1);
}

BOOST_AUTO_TEST_CASE(preview_is_a_1200x630_png_under_600_kb) {
  owner o{1};
  auto token = o.share_token();
  auto png = N().call("GET", "/social/" + token + "/preview.png");
  BOOST_REQUIRE_EQUAL(png.status, 200);
  BOOST_TEST(png.header("Content-Type") == "image/png");
  BOOST_TEST(png.body.size() < 600u * 1024);
  BOOST_REQUIRE(png.body.size() > 24u);
  BOOST_TEST(png.body.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  auto be32 = [&](size_t at) {
    auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(png.body[at + i])); };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
  };
  BOOST_TEST(png.body.compare(12, 4, "IHDR") == 0);
  BOOST_TEST(be32(16) == 1200u);
  BOOST_TEST(be32(20) == 630u);
  BOOST_TEST(N().call("GET", "/social/not-a-token/preview.png").status == 404);
}

BOOST_AUTO_TEST_CASE(never_expiring_share_has_null_expiry) {
  owner o{1};
  auto r = o.share(R"({"channel":"email","expires_in_days":null})");
  BOOST_REQUIRE_EQUAL(r.status, 201);
  BOOST_TEST(r.body.find("\"expires_at\":null") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(views_show_visible_items_and_count_every_view) {
  refill_lookup_bucket();
  owner o{3, "Tom's <b>list</b>"};
  auto token = o.share_token(R"({"channel":"link","hidden_items":[")"
                             + o.item_ids[1] + R"("]})");
  auto json = N().call("GET", "/api/v2/wishlists/shared/" + token);
  BOOST_REQUIRE_EQUAL(json.status, 200);
  BOOST_TEST(json_int(json.body, "wishlist", "item_count") == 2);
  BOOST_TEST(json_int(json.body, "wishlist", "share_view_count") == 1);
  BOOST_TEST(json.body.find(o.product_ids[1]) == std::string::npos);
  BOOST_TEST(json.body.find(o.product_ids[0]) != std::string::npos);
  BOOST_TEST(json.body.find("\"is_authenticated\":false") != std::string::npos);
  BOOST_TEST(json.body.find("\"owner_display_name\":\"Maya C.\"")
             != std::string::npos, json.body);
  // Nothing private about the owner.
  BOOST_TEST(json.body.find(o.user_id) == std::string::npos);
  BOOST_TEST(!json.header("X-RateLimit-Remaining").empty());

  auto reader = tok(unique("usr_rd"), "Reader");
  auto authed = N().call("GET", "/api/v2/wishlists/shared/" + token, "", reader);
  BOOST_TEST(authed.body.find("\"can_add_to_own_list\":true") != std::string::npos);
  BOOST_TEST(json_int(authed.body, "wishlist", "share_view_count") == 2);

  auto html = N().call("GET", "/wishlists/shared/" + token);
  BOOST_REQUIRE_EQUAL(html.status, 200);
  BOOST_TEST(html.header("Content-Type") == "text/html; charset=utf-8");
  BOOST_TEST(html.header("Cache-Control") == "public, max-age=300");
  auto head = html.body.substr(0, 4096);
  BOOST_TEST(head.find(R"(<meta property="og:type" content="product.group">)")
             != std::string::npos);
  BOOST_TEST(head.find(R"(<meta property="og:title" content="Maya C.&#39;s Wishlist: Tom&#39;s &lt;b&gt;list&lt;/b&gt;">)")
             != std::string::npos);
  BOOST_TEST(head.find(R"(<meta name="twitter:description" content="Check out 2 items!">)")
             != std::string::npos);
  BOOST_TEST(html.body.find("<b>list</b>") == std::string::npos);

  auto list = N().call("GET", "/api/v2/wishlists/" + o.wishlist_id + "/shares",
                       "", o.token);
  BOOST_TEST(list.body.find("\"view_count\":3") != std::string::npos);
  BOOST_TEST(outbox_events(token, "share_viewed") == 3);
}

BOOST_AUTO_TEST_CASE(concurrent_views_are_all_counted) {
  refill_lookup_bucket();
  owner o{2};
  auto token = o.share_token();
  constexpr int threads = 8;
  constexpr int per_thread = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  auto base = N().node->base_url();
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      httplib::Client c{base};
      for (int i = 0; i < per_thread; ++i) {
        // Spread over addresses so the lookup limit does not interfere.
        auto r = c.Get("/api/v2/wishlists/shared/" + token);
        if (r && r->status == 200)
          ++ok;
      }
    });
  for (auto& t : ts)
    t.join();
  // Every 200 is a committed view; the limiter allows 60 per minute.
  BOOST_TEST(ok.load() > 0);
  BOOST_TEST(count_rows("SELECT view_count FROM wishlist_shares WHERE"
                        " share_token = $1",
                        {token})
             == ok.load());
  BOOST_TEST(outbox_events(token, "share_viewed") == ok.load());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(manage)

BOOST_AUTO_TEST_CASE(patch_hides_and_shows_items) {
  refill_lookup_bucket();
  owner o{3};
  auto token = o.share_token();
  auto path = "/api/v2/wishlists/" + o.wishlist_id + "/shares/" + token;
  auto hide = N().call("PATCH", path, R"({"hide":[")" + o.item_ids[2] + "\"]}",
                       o.token);
  BOOST_REQUIRE_EQUAL(hide.status, 200);
  BOOST_TEST(json_int(hide.body, "hidden_items_count") == 1);
  auto v = N().call("GET", "/api/v2/wishlists/shared/" + token);
  BOOST_TEST(json_int(v.body, "wishlist", "item_count") == 2);
  auto show = N().call("PATCH", path, R"({"show":[")" + o.item_ids[2] + "\"]}",
                       o.token);
  BOOST_TEST(json_int(show.body, "hidden_items_count") == 0);
  v = N().call("GET", "/api/v2/wishlists/shared/" + token);
  BOOST_TEST(json_int(v.body, "wishlist", "item_count") == 3);
  auto unknown = N().call("PATCH", path, R"({"hide":["wli_nope"]})", o.token);
  BOOST_TEST(unknown.status == 422);
  auto other = tok(unique("usr_x"), "X");
  BOOST_TEST(N().call("PATCH", path, R"({"hide":[")" + o.item_ids[0] + "\"]}",
                      other)
               .status
             == 403);
}

BOOST_AUTO_TEST_CASE(revoke_is_idempotent_and_kills_the_link) {
  refill_lookup_bucket();
  owner o{1};
  auto token = o.share_token();
  auto path = "/api/v2/wishlists/" + o.wishlist_id + "/shares/" + token;
  auto other = tok(unique("usr_x"), "X");
  BOOST_TEST(N().call("DELETE", path, "", other).status == 403);
  BOOST_TEST(N().call("GET", "/api/v2/wishlists/shared/" + token).status == 200);
  BOOST_TEST(N().call("DELETE", path, "", o.token).status == 204);
  BOOST_TEST(N().call("DELETE", path, "", o.token).status == 204);
  auto revoked = N().call("GET", "/api/v2/wishlists/shared/" + token);
  BOOST_TEST(revoked.status == 404);
  BOOST_TEST(revoked.str("error") == "SHARE_NOT_FOUND");
  auto unknown = N().call("GET", "/api/v2/wishlists/shared/AAAAAAAAAAAAAAAAAAAAAA");
  BOOST_TEST(unknown.status == 404);
  BOOST_TEST(without_request_id(revoked.body) == without_request_id(unknown.body));
  auto html_revoked = N().call("GET", "/wishlists/shared/" + token);
  auto html_unknown = N().call("GET", "/wishlists/shared/AAAAAAAAAAAAAAAAAAAAAA");
  BOOST_TEST(html_revoked.status == 404);
  BOOST_TEST(html_revoked.body == html_unknown.body);
  BOOST_TEST(html_revoked.body.find("This shared wishlist is no longer available")
             != std::string::npos);
  BOOST_TEST(outbox_events(token, "share_revoked") == 1);
  BOOST_TEST(outbox_events(token, "share_viewed") == 1);
}

BOOST_AUTO_TEST_CASE(expiry_is_a_404_and_announced_exactly_once) {
  refill_lookup_bucket();
  owner o{1};
  auto token = o.share_token(R"({"channel":"link","expires_in_days":7})");
  BOOST_TEST(N().call("GET", "/api/v2/wishlists/shared/" + token).status == 200);
  N().node->advance(std::chrono::hours{24 * 7 + 1});
  BOOST_TEST(N().call("GET", "/api/v2/wishlists/shared/" + token).status == 404);
  BOOST_TEST(eventually([&] { return outbox_events(token, "share_expired") == 1; },
                        5s));
  // Further sweeps and activations add nothing.
  N().node->advance(std::chrono::hours{24});
  BOOST_TEST(N().call("GET", "/api/v2/wishlists/shared/" + token).status == 404);
  std::this_thread::sleep_for(200ms); // a duplicate would have had time
  BOOST_TEST(outbox_events(token, "share_expired") == 1);
}

BOOST_AUTO_TEST_CASE(a_mass_expiry_leaves_the_database_to_live_traffic) {
  // 3,000 shares expiring at once (as after an outage or a clock jump):
  // the sweeper announces them a few at a time, so requests meanwhile are
  // served, not refused with "database queue full", and every share is
  // announced once.
  owner o{1};
  auto now = N().call("POST", "/_test/clock/advance", R"({"ms":0})").str("now");
  BOOST_REQUIRE(!now.empty());
  {
    pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 30000};
    c.exec("mass_shares",
           "INSERT INTO wishlist_shares(wishlist_id, share_token, created_by,"
           " expires_at, share_channel) SELECT $1,"
           " substr(md5(random()::text) || md5(random()::text), 1, 22), $2,"
           " $3::timestamptz + interval '1 hour', 'link'"
           " FROM generate_series(1, 3000)",
           {o.wishlist_id, o.user_id, now});
  }
  auto pending = [&] {
    return count_rows("SELECT count(*) FROM wishlist_shares WHERE wishlist_id"
                      " = $1 AND NOT expiry_announced",
                      {o.wishlist_id});
  };
  BOOST_REQUIRE_EQUAL(pending(), 3000);
  std::thread clock{[] { N().node->advance(std::chrono::hours{2}); }};
  int refused = 0;
  int served = 0;
  auto until = std::chrono::steady_clock::now() + 60s;
  while (pending() > 0 && std::chrono::steady_clock::now() < until) {
    // A write: it needs the database queue the expiries compete for.
    auto r = N().call("POST", "/api/v2/wishlists", R"({"title":"Live"})", o.token);
    (r.status == 201 ? served : refused) += 1;
  }
  clock.join();
  BOOST_TEST(pending() == 0);
  BOOST_TEST(refused == 0);
  BOOST_TEST(served > 0);
  BOOST_TEST(count_rows("SELECT count(*) FROM event_outbox WHERE event_key = $1"
                        " AND payload->>'event_type' = 'share_expired'",
                        {o.wishlist_id})
             == 3000);
  // And published: no backlog of 3,000 events is left for whatever runs
  // next (scenarios wait seconds, not minutes, for their own events).
  BOOST_TEST(eventually(
    [&] {
      return count_rows("SELECT count(*) FROM event_outbox WHERE event_key = $1"
                        " AND sent_at IS NULL",
                        {o.wishlist_id})
             == 0;
    },
    60s));
}

BOOST_AUTO_TEST_CASE(list_is_for_the_owner_only) {
  owner o{1};
  o.share_token();
  o.share_token();
  BOOST_TEST(o.share_count() == 2u);
  auto other = tok(unique("usr_x"), "X");
  auto r = N().call("GET", "/api/v2/wishlists/" + o.wishlist_id + "/shares", "",
                    other);
  BOOST_TEST(r.status == 404);
  BOOST_TEST(r.str("error") == "WISHLIST_NOT_FOUND");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(add_from_share)

BOOST_AUTO_TEST_CASE(adds_counts_and_refuses_hidden_or_revoked) {
  owner o{2};
  auto token = o.share_token(R"({"channel":"link","hidden_items":[")"
                             + o.item_ids[1] + R"("]})");
  auto recipient_id = unique("usr_rcp");
  auto recipient = tok(recipient_id, "Rae");
  auto add = [&](const std::string& product, const std::string& tok) {
    return N().call("POST", "/api/v2/wishlists/my/items",
                    R"({"product_id":")" + product
                      + R"(","source":"shared_wishlist","source_token":")" + tok
                      + "\"}",
                    recipient);
  };
  auto ok = add(o.product_ids[0], token);
  BOOST_TEST(ok.status == 201);
  BOOST_TEST(add(o.product_ids[0], token).status == 200); // already there
  auto hidden = add(o.product_ids[1], token);
  BOOST_TEST(hidden.status == 404);
  BOOST_TEST(hidden.str("error") == "SHARE_NOT_FOUND");
  BOOST_TEST(add("prd_024", token).status == 404); // not on the list at all
  BOOST_TEST(add(o.product_ids[0], "short").status == 404);
  BOOST_TEST(count_rows("SELECT items_added FROM wishlist_shares WHERE"
                        " share_token = $1",
                        {token})
             == 1);
  BOOST_TEST(count_rows("SELECT count(*) FROM event_outbox WHERE"
                        " payload->>'share_token' = $1 AND"
                        " payload->>'event_type' = 'share_item_added' AND"
                        " payload->>'recipient_user_id' = $2",
                        {token, recipient_id})
             == 1);
  N().call("DELETE", "/api/v2/wishlists/" + o.wishlist_id + "/shares/" + token,
           "", o.token);
  BOOST_TEST(add(o.product_ids[0], token).status == 404);
}

namespace {

/// A recipient adding from a share, and what the database holds for them.
struct recipient {
  std::string user_id = unique("usr_rcp");
  std::string token = tok(user_id, "Rae");

  http_result add(const std::string& product, const std::string& share) {
    return N().call("POST", "/api/v2/wishlists/my/items",
                    R"({"product_id":")" + product
                      + R"(","source":"shared_wishlist","source_token":")"
                      + share + "\"}",
                    token);
  }

  /// Items on any of the recipient's wishlists, as stored.
  int64_t stored_items() {
    return count_rows("SELECT count(*) FROM wishlist_items i JOIN wishlists w"
                      " ON w.id = i.wishlist_id WHERE w.owner_id = $1",
                      {user_id});
  }

  /// wishlist_item_added events of the recipient's lists in the outbox.
  int64_t item_events() {
    return count_rows("SELECT count(*) FROM event_outbox WHERE topic ="
                      " 'wishlist.events' AND payload->>'event_type' ="
                      " 'wishlist_item_added' AND payload->>'user_id' = $1",
                      {user_id});
  }
};

int64_t items_added(const std::string& share) {
  return count_rows("SELECT items_added FROM wishlist_shares WHERE"
                    " share_token = $1",
                    {share});
}

/// Makes every change of one share's items_added fail inside its
/// transaction, for as long as it lives (a trigger on the test database
/// only, dropped again at the end; other shares are not affected).
struct refuse_credit {
  std::string name = unique("test_refuse_credit_");
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 30000};

  explicit refuse_credit(const std::string& share) {
    // Share tokens are base62 (plausible_share_token), safe in SQL text.
    BOOST_REQUIRE(plausible_share_token(share));
    c.exec_simple("CREATE FUNCTION " + name
                  + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                    " RAISE EXCEPTION 'test: items_added refused'; END $$;"
                    "CREATE TRIGGER " + name
                  + " BEFORE UPDATE OF items_added ON wishlist_shares"
                    " FOR EACH ROW WHEN (OLD.share_token = '" + share
                  + "') EXECUTE FUNCTION " + name + "();");
  }

  ~refuse_credit() {
    try {
      c.exec_simple("DROP TRIGGER IF EXISTS " + name
                    + " ON wishlist_shares; DROP FUNCTION IF EXISTS " + name
                    + "();");
    } catch (...) {
    }
  }
};

} // namespace

// The item, the share's count and its event are one commit: when the
// share's part fails, the item is not added either (and no event of either
// kind is written); without the fault the same add goes through, once.
BOOST_AUTO_TEST_CASE(a_failed_count_adds_nothing) {
  owner o{1};
  auto share = o.share_token();
  recipient r;
  {
    refuse_credit fault{share};
    auto refused = r.add(o.product_ids[0], share);
    BOOST_TEST(refused.status >= 500, "status " << refused.status);
    BOOST_TEST(r.stored_items() == 0);
    BOOST_TEST(r.item_events() == 0);
    BOOST_TEST(items_added(share) == 0);
    BOOST_TEST(outbox_events(share, "share_item_added") == 0);
  }
  auto ok = r.add(o.product_ids[0], share);
  BOOST_TEST(ok.status == 201);
  BOOST_TEST(r.add(o.product_ids[0], share).status == 200);
  BOOST_TEST(r.stored_items() == 1);
  BOOST_TEST(r.item_events() == 1);
  BOOST_TEST(items_added(share) == 1);
  BOOST_TEST(outbox_events(share, "share_item_added") == 1);
  // The share's own state has the committed count (PATCH answers from it).
  auto patch = N().call("PATCH",
                        "/api/v2/wishlists/" + o.wishlist_id + "/shares/"
                          + share,
                        R"({"show":[")" + o.item_ids[0] + "\"]}", o.token);
  BOOST_REQUIRE_EQUAL(patch.status, 200);
  BOOST_TEST(json_int(patch.body, "items_added") == 1);
}

// A share whose row vanished under its live actor (deleted behind the
// node's back) refuses the add as an unknown token and writes nothing: the
// commit's guard finds no row to count and fails the whole batch.
BOOST_AUTO_TEST_CASE(a_vanished_share_adds_nothing) {
  owner o{1};
  auto share = o.share_token();
  recipient r;
  // Activates the share actor, which keeps the row in memory.
  BOOST_TEST(r.add("prd_024", share).status == 404);
  count_rows("WITH d AS (DELETE FROM wishlist_shares WHERE share_token = $1"
             " RETURNING 1) SELECT count(*) FROM d",
             {share});
  auto gone = r.add(o.product_ids[0], share);
  BOOST_TEST(gone.status == 404);
  BOOST_TEST(gone.str("error") == "SHARE_NOT_FOUND");
  BOOST_TEST(r.stored_items() == 0);
  BOOST_TEST(r.item_events() == 0);
  BOOST_TEST(outbox_events(share, "share_item_added") == 0);
}

// Adds of many recipients and views of the same share at once: the row has
// two writers (the recipients' wishlists count adds, the share counts
// views), both with relative updates, so every add and view is counted.
BOOST_AUTO_TEST_CASE(concurrent_adds_and_views_are_all_counted) {
  refill_lookup_bucket();
  owner o{1};
  auto share = o.share_token();
  constexpr int adders = 8;
  std::vector<recipient> rs(adders);
  std::atomic<int> added{0};
  std::atomic<int> viewed{0};
  std::vector<std::thread> ts;
  auto base = N().node->base_url();
  for (auto& r : rs)
    ts.emplace_back([&, token = r.token] {
      httplib::Client c{base};
      httplib::Headers h{{"Authorization", "Bearer " + token}};
      auto res = c.Post("/api/v2/wishlists/my/items", h,
                        R"({"product_id":")" + o.product_ids[0]
                          + R"(","source":"shared_wishlist","source_token":")"
                          + share + "\"}",
                        "application/json");
      if (res && res->status == 201)
        ++added;
    });
  for (int t = 0; t < 2; ++t)
    ts.emplace_back([&] {
      httplib::Client c{base};
      for (int i = 0; i < 10; ++i) {
        auto res = c.Get("/api/v2/wishlists/shared/" + share);
        if (res && res->status == 200)
          ++viewed;
      }
    });
  for (auto& t : ts)
    t.join();
  BOOST_TEST(added.load() == adders);
  BOOST_TEST(items_added(share) == adders);
  BOOST_TEST(outbox_events(share, "share_item_added") == adders);
  BOOST_TEST(count_rows("SELECT view_count FROM wishlist_shares WHERE"
                        " share_token = $1",
                        {share})
             == viewed.load());
  BOOST_TEST(outbox_events(share, "share_viewed") == viewed.load());
  for (auto& r : rs)
    BOOST_TEST(r.stored_items() == 1);
}

// One counted add writes exactly one share_item_added row, keyed and
// shaped as the contract says, beside the item's own event.
BOOST_AUTO_TEST_CASE(one_counted_add_is_one_event) {
  owner o{2};
  auto share = o.share_token(R"({"channel":"whatsapp"})");
  recipient r;
  BOOST_TEST(r.add(o.product_ids[1], share).status == 201);
  BOOST_TEST(r.add(o.product_ids[1], share).status == 200);
  pg_connection c{env_or("VANTAGE_DATABASE_URL", ""), 30000};
  auto rows = c.exec(
    "share_item_added_rows",
    "SELECT event_key, schema_name, payload->>'wishlist_id',"
    " payload->>'user_id', payload->>'share_channel',"
    " (payload->>'item_count')::bigint, payload->>'recipient_user_id',"
    " (payload->'metadata') IS NOT NULL, payload->>'event_id' = event_id::text"
    " FROM event_outbox WHERE topic = 'wishlist.social.events'"
    " AND payload->>'share_token' = $1"
    " AND payload->>'event_type' = 'share_item_added'",
    {share});
  BOOST_REQUIRE_EQUAL(rows.size(), 1);
  BOOST_TEST(rows.str(0, 0) == o.wishlist_id); // the share's wishlist
  BOOST_TEST(rows.str(0, 1) == "wishlist_social_event");
  BOOST_TEST(rows.str(0, 2) == o.wishlist_id);
  BOOST_TEST(rows.str(0, 3) == o.user_id);
  BOOST_TEST(rows.str(0, 4) == "whatsapp");
  BOOST_TEST(rows.i64(0, 5) == 1);
  BOOST_TEST(rows.str(0, 6) == r.user_id);
  BOOST_TEST(rows.boolean(0, 7));
  BOOST_TEST(rows.boolean(0, 8));
  BOOST_TEST(r.item_events() == 1);
  BOOST_TEST(items_added(share) == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(bad_create_bodies_are_422_and_change_nothing) {
  owner o{1};
  auto stranger = owner{1};
  std::vector<std::string> bodies = {
    R"({})",
    R"({"channel":"carrier-pigeon"})",
    R"({"channel":"link","expires_in_days":0})",
    R"({"channel":"link","expires_in_days":1})",
    R"({"channel":"link","expires_in_days":31})",
    R"({"channel":"link","expires_in_days":"30"})",
    R"({"channel":"link","expires_in_days":-7})",
    R"({"channel":"link","hidden_items":[")" + stranger.item_ids[0] + "\"]}",
    R"({"channel":"link","message":")" + std::string(501, 'm') + "\"}",
    R"({"channel":"link","hidden_items":"wli_1"})",
  };
  std::string many = R"({"channel":"link","hidden_items":[)";
  for (int i = 0; i < 10000; ++i)
    many += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
  many += "]}";
  std::string over_cap = R"({"channel":"link","hidden_items":[)";
  for (int i = 0; i < 1001; ++i)
    over_cap += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
  over_cap += "]}";
  bodies.push_back(over_cap);
  for (auto& body : bodies) {
    auto r = o.share(body);
    BOOST_TEST(r.status == 422, body.substr(0, 80) << " -> " << r.status);
    BOOST_TEST(r.str("error") == "VALIDATION_FAILED");
  }
  // 10,000 ids cannot fit in the 64 KiB body limit at all.
  auto huge = o.share(many);
  BOOST_TEST(huge.status == 413);
  BOOST_TEST(huge.str("error") == "PAYLOAD_TOO_LARGE");
  BOOST_TEST(o.share_count() == 0u);
  // Refused requests did not spend the rate limit either.
  auto first = o.share(R"({"channel":"link"})");
  BOOST_TEST(first.header("X-RateLimit-Remaining") == "19");
}

BOOST_AUTO_TEST_CASE(unknown_and_foreign_wishlists) {
  owner o{1};
  owner other{1};
  auto missing = N().call("POST", "/api/v2/wishlists/wl_doesnotexist/share",
                          R"({"channel":"link"})", o.token);
  BOOST_TEST(missing.status == 404);
  BOOST_TEST(missing.str("error") == "WISHLIST_NOT_FOUND");
  auto foreign = N().call("POST", "/api/v2/wishlists/" + other.wishlist_id + "/share",
                          R"({"channel":"link"})", o.token);
  BOOST_TEST(foreign.status == 403);
  BOOST_TEST(foreign.str("error") == "FORBIDDEN");
  BOOST_TEST(other.share_count() == 0u);
  BOOST_TEST(N().call("POST", "/api/v2/wishlists/" + o.wishlist_id + "/share",
                      R"({"channel":"link"})")
               .status
             == 401);
}

BOOST_AUTO_TEST_CASE(malformed_tokens_are_404_never_500) {
  refill_lookup_bucket();
  std::vector<std::string> tokens = {
    "short", std::string(23, 'A'), "AAAAAAAAAAAAAAAAAAAAA!", "..%2F..%2Fetc%2Fpasswd",
    "../../etc/passwd", "AAAAAAAAAAA%00AAAAAAAAAA", std::string(1 << 20, 'A')};
  for (auto& t : tokens) {
    for (auto* prefix : {"/api/v2/wishlists/shared/", "/wishlists/shared/"}) {
      auto r = N().call("GET", prefix + t);
      BOOST_TEST(r.status == 404, prefix << t.substr(0, 40) << " -> " << r.status);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rate_limits)

BOOST_AUTO_TEST_CASE(the_21st_share_in_an_hour_is_429) {
  owner o{1};
  for (int i = 0; i < 20; ++i)
    BOOST_REQUIRE_EQUAL(o.share(R"({"channel":"link"})").status, 201);
  auto r = o.share(R"({"channel":"link"})");
  BOOST_TEST(r.status == 429);
  BOOST_TEST(r.str("error") == "RATE_LIMIT_EXCEEDED");
  BOOST_TEST(!r.header("Retry-After").empty());
  BOOST_TEST(json_int(r.body, "retry_after_seconds") > 0);
  BOOST_TEST(r.header("X-RateLimit-Remaining") == "0");
  BOOST_TEST(o.share_count() == 20u);
  N().node->advance(std::chrono::minutes{61});
  BOOST_TEST(o.share(R"({"channel":"link"})").status == 201);
}

BOOST_AUTO_TEST_CASE(the_61st_lookup_in_a_minute_is_429) {
  // A fresh address (the node trusts nothing forwarded): use the preview of
  // the limit headers to find where this address stands, then exhaust it.
  owner o{1};
  auto token = o.share_token();
  auto first = N().call("GET", "/api/v2/wishlists/shared/" + token);
  N().node->advance(std::chrono::minutes{2}); // a full bucket
  int allowed = 0;
  http_result last;
  for (int i = 0; i < 61; ++i) {
    last = N().call("GET", "/api/v2/wishlists/shared/" + token);
    if (last.status == 200)
      ++allowed;
  }
  BOOST_TEST(allowed == 60);
  BOOST_TEST(last.status == 429);
  BOOST_TEST(!last.header("Retry-After").empty());
  // X-Forwarded-For is the client's word unless the node is told to trust
  // it (VANTAGE_TRUST_FORWARDED): no fresh bucket for a made-up address.
  auto spoofed = N().call("GET", "/api/v2/wishlists/shared/" + token, "", "",
                          "application/json",
                          {{"X-Forwarded-For", "203.0.113.7"}});
  BOOST_TEST(spoofed.status == 429);
  N().node->advance(std::chrono::seconds{60});
  BOOST_TEST(N().call("GET", "/api/v2/wishlists/shared/" + token).status == 200);
  (void) first;
}

BOOST_AUTO_TEST_CASE(every_check_is_timed_per_rule) {
  owner o{1};
  auto token = o.share_token();
  N().node->advance(std::chrono::minutes{2}); // a full bucket for this address
  auto lookups = [] {
    return N().metric("vantage_rate_limit_check_seconds_count{rule=\"share_lookup\"}");
  };
  auto creates = [] {
    return N().metric("vantage_rate_limit_check_seconds_count{rule=\"share_create\"}");
  };
  auto lookups_before = lookups();
  auto creates_before = creates();
  for (int i = 0; i < 5; ++i)
    BOOST_REQUIRE_EQUAL(N().call("GET", "/api/v2/wishlists/shared/" + token).status, 200);
  BOOST_REQUIRE_EQUAL(o.share(R"({"channel":"link"})").status, 201);
  BOOST_TEST(lookups() == lookups_before + 5);
  BOOST_TEST(creates() == creates_before + 1);
  // Every observation is in a bucket: +Inf's count is the total.
  BOOST_TEST(N().metric("vantage_rate_limit_check_seconds_bucket{rule=\"share_lookup\",le=\"+Inf\"}")
             == lookups());
}

BOOST_AUTO_TEST_SUITE_END()
