#pragma once

// Virtual actors: entities are addressed by key through a region, which
// activates an entity on its first message, delegates every envelope to it
// (so the reply goes straight to the caller), and passivates entities idle
// for longer than the idle timeout. The owning member of a key is chosen by
// rendezvous hashing over the region's members; with one member that is this
// node, and clustering changes this file, not the callers.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/all.hpp>

#include "messages/interfaces.hpp"

namespace vantage {

/// Spawns the entity for `key`. Called inside the region actor.
using entity_factory
  = std::function<caf::actor(caf::local_actor* region, const std::string& key)>;

struct region_options {
  /// Prefix for logs and metrics ("wishlist", "product", "user").
  std::string name;
  /// Passivate entities idle this long.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes{10}};
  /// This node's member id; members() starts as {local_member}.
  std::string local_member = "local";
};

/// Live counters a region exposes to /metrics without a message round trip.
struct region_counters {
  std::atomic<int64_t> active{0};
  std::atomic<int64_t> activations{0};
  std::atomic<int64_t> passivations{0};
};

/// Spawns a region. Send it `envelope{key, payload}`.
caf::actor spawn_region(caf::actor_system& sys, region_options opts,
                        entity_factory make,
                        std::shared_ptr<region_counters> counters);

/// Index of the member owning `key` by highest-random-weight hashing.
size_t rendezvous_owner(const std::string& key,
                        const std::vector<std::string>& members);

/// True when an entity of typed interface `Iface` accepts `Ts...` and
/// answers exactly `Result`.
template <class Iface, class Result, class... Ts>
constexpr bool answers_with() {
  using rt = caf::response_type<caf::signatures_of_t<Iface>, Ts...>;
  if constexpr (rt::valid)
    return std::is_same<typename rt::type,
                        caf::detail::type_list<Result>>::value;
  else
    return false;
}

/// The envelope of a request from one actor to the entity `key` (send it to
/// the entity's region). Like `ask`, it fails to compile unless `Iface`
/// accepts the payload and answers `Result`: regions are dynamically typed,
/// so this is where an actor-to-entity hop gets its compile-time check.
template <class Iface, class Result, class... Ts>
envelope entity_request(std::string key, Ts&&... xs) {
  static_assert(answers_with<Iface, Result, std::decay_t<Ts>...>(),
                "the entity does not accept this message with this answer");
  return envelope{std::move(key), caf::make_message(std::forward<Ts>(xs)...)};
}

/// Blocking request to the entity `key` behind `region`, for threads outside
/// the actor system (HTTP workers). `Iface` is the entity's typed interface:
/// a payload it does not accept, or an answer it does not give, fails to
/// compile.
template <class Iface, class Result, class... Ts>
caf::expected<Result> ask(caf::scoped_actor& self, const caf::actor& region,
                          std::string key, std::chrono::milliseconds timeout,
                          Ts... xs) {
  static_assert(answers_with<Iface, Result, Ts...>(),
                "the entity does not accept this message with this answer");
  caf::expected<Result> out{caf::error{}};
  self
    ->request(region, timeout,
              envelope{std::move(key), caf::make_message(std::move(xs)...)})
    .receive([&](Result& r) { out = std::move(r); },
             [&](caf::error& e) { out = std::move(e); });
  return out;
}

} // namespace vantage
