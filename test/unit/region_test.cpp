#define BOOST_TEST_MODULE region_test
#include <boost/test/unit_test.hpp>

#include <map>
#include <optional>

#include "actors/region.hpp"
#include "test/support/caf_fixture.hpp"

using namespace vantage;
using namespace vantage::test;
using namespace std::chrono_literals;

namespace {

using echo_actor = caf::typed_actor<caf::replies_to<atom::get>::with<product>,
                                    caf::reacts_to<atom::stop>>;

/// An entity that answers with its key and how many times it was asked.
struct echo_state {
  int asked = 0;
  static inline const char* name = "echo";
};

echo_actor::behavior_type
echo_impl(echo_actor::stateful_pointer<echo_state> self, std::string key) {
  return {
    [=](atom::get) {
      ++self->state.asked;
      return product{key, std::to_string(self->state.asked), 0, "USD", "",
                     true};
    },
    [=](atom::stop) { self->quit(); },
  };
}

struct region_fixture : caf_fixture {
  std::shared_ptr<region_counters> counters
    = std::make_shared<region_counters>();
  std::shared_ptr<entity_directory> directory
    = std::make_shared<entity_directory>();
  caf::actor region = spawn_region(
    sys, region_options{"echo", 100ms, "local"},
    [](caf::local_actor* self, const std::string& key, bool) {
      return caf::actor_cast<caf::actor>(self->spawn(echo_impl, key));
    },
    counters, directory);

  ~region_fixture() {
    caf::anon_send_exit(region, caf::exit_reason::user_shutdown);
    run();
  }

  /// Asks entity `key` through the region and returns its answer; a
  /// throwaway requester actor keeps everything on the test scheduler.
  product get(const std::string& key) {
    return ask_at(region,
                  caf::make_message(
                    envelope{key, caf::make_message(atom::get_v)}),
                  key);
  }

  /// Asks the entity found in the directory directly, as the gateway does.
  product get_direct(const std::string& key) {
    auto entity = directory->find(key);
    BOOST_REQUIRE_MESSAGE(entity, key << " is not in the directory");
    return ask_at(entity, caf::make_message(atom::get_v), key);
  }

  product ask_at(const caf::actor& target, caf::message msg,
                 const std::string& key) {
    auto out = std::make_shared<std::optional<product>>();
    sys.spawn([=](caf::event_based_actor* self) {
      self
        ->request(target, caf::infinite, msg)
        .then([=](product& p) { *out = p; });
    });
    run();
    BOOST_REQUIRE_MESSAGE(out->has_value(), "no answer for " << key);
    return **out;
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(rendezvous_owner_is_stable_and_spreads) {
  std::vector<std::string> members{"node-a", "node-b", "node-c"};
  std::map<size_t, int> per_member;
  for (int i = 0; i < 3000; ++i) {
    auto key = "wl_" + std::to_string(i);
    auto owner = rendezvous_owner(key, members);
    BOOST_TEST(owner == rendezvous_owner(key, members));
    ++per_member[owner];
  }
  for (auto& [member, n] : per_member)
    BOOST_TEST((n > 800 && n < 1200), "member " << member << " owns " << n);
  // Removing a member moves only that member's keys.
  std::vector<std::string> two{"node-a", "node-c"};
  int moved = 0;
  for (int i = 0; i < 3000; ++i) {
    auto key = "wl_" + std::to_string(i);
    auto before = members[rendezvous_owner(key, members)];
    auto after = two[rendezvous_owner(key, two)];
    if (before != "node-b")
      moved += before != after;
  }
  BOOST_TEST(moved == 0);
  BOOST_TEST(rendezvous_owner("x", {"only"}) == 0u);
}

BOOST_FIXTURE_TEST_CASE(activates_once_per_key_and_keeps_state,
                        region_fixture) {
  BOOST_TEST(get("a").name == "1");
  BOOST_TEST(get("a").name == "2");
  BOOST_TEST(get("b").name == "1");
  BOOST_TEST(get("a").product_id == "a");
  BOOST_TEST(counters->activations.load() == 2);
  BOOST_TEST(counters->active.load() == 2);
}

BOOST_FIXTURE_TEST_CASE(passivates_idle_entities_and_reactivates_fresh,
                        region_fixture) {
  BOOST_TEST(get("a").name == "1");
  BOOST_TEST(get("a").name == "2");
  // Busy keys stay: touch "a" while time passes in small steps.
  for (int i = 0; i < 5; ++i) {
    advance(40ms);
    get("a");
  }
  BOOST_TEST(counters->passivations.load() == 0);
  advance(300ms);
  BOOST_TEST(counters->passivations.load() == 1);
  BOOST_TEST(counters->active.load() == 0);
  // A new activation starts from (here: empty) storage again.
  BOOST_TEST(get("a").name == "1");
  BOOST_TEST(counters->activations.load() == 2);
}

BOOST_FIXTURE_TEST_CASE(directory_lists_active_entities_and_counts_their_use,
                        region_fixture) {
  BOOST_TEST(!directory->find("a"));
  BOOST_TEST(get("a").name == "1");
  // The same entity, reached without the region's mailbox.
  BOOST_TEST(get_direct("a").name == "2");
  BOOST_TEST(directory->size() == 1u);
  // Used only through the directory, "a" is not idle: the region reads the
  // directory's marks before it passivates.
  for (int i = 0; i < 5; ++i) {
    advance(40ms);
    get_direct("a");
  }
  BOOST_TEST(counters->passivations.load() == 0);
  // The first sweep after the last use still sees its mark.
  advance(300ms);
  BOOST_TEST(counters->passivations.load() == 0);
  advance(300ms);
  BOOST_TEST(counters->passivations.load() == 1);
  // Withdrawn before it was stopped: callers go through the region again,
  // which activates a fresh entity.
  BOOST_TEST(!directory->find("a"));
  BOOST_TEST(get("a").name == "1");
  BOOST_TEST(directory->size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_request_bouncing_off_a_stopped_entity_goes_through_the_region,
                        region_fixture) {
  // A directory entry naming an entity that has stopped (the window between
  // a lookup and passivation): the request bounces unprocessed, and
  // request_entity sends it once more through the region.
  auto stale = sys.spawn(echo_impl, std::string{"gone"});
  caf::anon_send(stale, atom::stop_v);
  run();
  directory->publish("a", caf::actor_cast<caf::actor>(stale));
  auto out = std::make_shared<std::optional<product>>();
  auto failed = std::make_shared<bool>(false);
  region_ref ref{region, directory};
  sys.spawn([=](caf::event_based_actor* self) {
    request_entity(
      self, ref, std::chrono::milliseconds{1000},
      envelope{"a", caf::make_message(atom::get_v)},
      [=](product& p) { *out = p; }, [=](caf::error&) { *failed = true; });
  });
  run();
  BOOST_REQUIRE(out->has_value());
  BOOST_TEST(!*failed);
  // Answered by the entity the region activated, not the stale one.
  BOOST_TEST((*out)->product_id == "a");
  BOOST_TEST((*out)->name == "1");
  BOOST_TEST(counters->activations.load() == 1);
}

BOOST_FIXTURE_TEST_CASE(never_stored_reaches_only_the_entity_it_activates,
                        caf_fixture) {
  // The factory records what each activation was told.
  auto told = std::make_shared<std::map<std::string, std::vector<bool>>>();
  auto region = spawn_region(
    sys, region_options{"echo", 10min, "local"},
    [told](caf::local_actor* self, const std::string& key, bool never_stored) {
      (*told)[key].push_back(never_stored);
      return caf::actor_cast<caf::actor>(self->spawn(echo_impl, key));
    },
    std::make_shared<region_counters>());
  auto send = [&](const std::string& key, bool never_stored) {
    envelope env{key, caf::make_message(atom::get_v)};
    env.never_stored = never_stored;
    auto answered = std::make_shared<bool>(false);
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(region, caf::infinite, env)
        .then([=](product&) { *answered = true; });
    });
    run();
    BOOST_TEST(*answered);
  };
  send("fresh", true);
  send("fresh", false); // already active: no second activation
  send("stored", false);
  BOOST_TEST(((*told)["fresh"] == std::vector<bool>{true}));
  BOOST_TEST(((*told)["stored"] == std::vector<bool>{false}));
  caf::anon_send_exit(region, caf::exit_reason::user_shutdown);
  run();
}
