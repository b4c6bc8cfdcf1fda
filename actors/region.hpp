#pragma once

// Virtual actors: entities are addressed by key through a region, which
// activates an entity on its first message, delegates every envelope to it
// (so the reply goes straight to the caller), and passivates entities idle
// for longer than the idle timeout. The owning member of a key is chosen by
// rendezvous hashing over the region's members; with one member that is this
// node, and clustering changes this file, not the callers.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "messages/interfaces.hpp"

namespace vantage {

/// Spawns the entity for `key`. Called inside the region actor;
/// `never_stored` is the activating envelope's.
using entity_factory = std::function<caf::actor(
  caf::local_actor* region, const std::string& key, bool never_stored)>;

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

/// The entities a region has active, readable from any thread. Callers
/// outside the actor system send straight to an active entity instead of
/// through the region's mailbox, which every request would otherwise pass
/// (one more hop and one actor that all keys of the region queue behind).
/// The region is its only writer: it publishes on activation and withdraws
/// before it passivates, so a handle found here is at worst one that is
/// stopping, whose requests bounce with `request_receiver_down` unprocessed.
class entity_directory {
public:
  /// The active entity for `key`, marked as used; invalid when there is
  /// none (the caller goes through the region, which activates it).
  caf::actor find(const std::string& key);
  void publish(const std::string& key, const caf::actor& handle);
  /// Forgets `key` if it still names the entity at `addr`.
  void withdraw(const std::string& key, const caf::actor_addr& addr);
  /// Whether `key` was found since the last call; clears the mark. The
  /// region reads it before passivating: requests that came this way never
  /// passed its mailbox.
  bool take_used(const std::string& key);
  size_t size() const;

private:
  struct entry {
    caf::actor handle;
    std::atomic<bool> used{false};
  };
  struct shard {
    mutable std::shared_mutex mtx;
    std::unordered_map<std::string, std::unique_ptr<entry>> entries;
  };
  shard& shard_of(const std::string& key);
  static constexpr size_t shard_count = 16;
  std::array<shard, shard_count> shards_;
};

/// Spawns a region. Send it `envelope{key, payload}`. With a `directory`,
/// the region keeps it filled with its active entities.
caf::actor spawn_region(caf::actor_system& sys, region_options opts,
                        entity_factory make,
                        std::shared_ptr<region_counters> counters,
                        std::shared_ptr<entity_directory> directory = nullptr);

/// What callers outside the actor system address a region by: its actor
/// and, when it has one, its directory of active entities.
struct region_ref {
  caf::actor actor;
  std::shared_ptr<entity_directory> directory;

  region_ref() = default;
  // Implicit: a bare region actor is a region without a directory.
  region_ref(caf::actor region,
             std::shared_ptr<entity_directory> dir = nullptr)
    : actor(std::move(region)), directory(std::move(dir)) {
    // nop
  }
};

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

namespace detail {

template <class Result, class Dest, class Content>
caf::expected<Result> blocking_request(caf::scoped_actor& self,
                                       const Dest& dest,
                                       std::chrono::milliseconds timeout,
                                       Content&& content) {
  caf::expected<Result> out{caf::error{}};
  self->request(dest, timeout, std::forward<Content>(content))
    .receive([&](Result& r) { out = std::move(r); },
             [&](caf::error& e) { out = std::move(e); });
  return out;
}

} // namespace detail

/// Where a message for the entity of `env` goes: the entity itself when the
/// region's directory lists it, else the region with the envelope. Whoever
/// made the request retries through the region when it bounces (`ask` and
/// `request_entity` do).
inline std::pair<caf::actor, caf::message>
entity_route(const region_ref& region, envelope env) {
  if (region.directory)
    if (auto entity = region.directory->find(env.key))
      return {std::move(entity), std::move(env.payload)};
  return {region.actor, caf::make_message(std::move(env))};
}

/// True for the error of a request that bounced off an entity that stopped
/// meanwhile (the one asked, or one it delegated to): it was never
/// processed, so sending it once more through the region, which activates
/// a fresh entity, is safe.
inline bool bounced(const caf::error& err) {
  return err == caf::sec::request_receiver_down;
}

/// Blocking request to the entity `key` behind `region`, for threads outside
/// the actor system (HTTP workers). `Iface` is the entity's typed interface:
/// a payload it does not accept, or an answer it does not give, fails to
/// compile. Goes by `entity_route`; a bounced request goes once more
/// through the region.
template <class Iface, class Result, class... Ts>
caf::expected<Result> ask(caf::scoped_actor& self, const region_ref& region,
                          std::string key, std::chrono::milliseconds timeout,
                          Ts... xs) {
  static_assert(answers_with<Iface, Result, Ts...>(),
                "the entity does not accept this message with this answer");
  envelope env{std::move(key), caf::make_message(std::move(xs)...)};
  auto [dest, msg] = entity_route(region, env);
  auto out = detail::blocking_request<Result>(self, dest, timeout,
                                              std::move(msg));
  if (!out && bounced(out.error()))
    return detail::blocking_request<Result>(self, region.actor, timeout,
                                            std::move(env));
  return out;
}

/// A request from an event-based actor to the entity of `env`, like
/// `self->request(region, ...).then(f, g)` but by `entity_route`; a
/// bounced request goes once more through the region.
/// `timeout` may be `caf::duration{caf::infinite}` for a requester that enforces its own
/// deadline (the HTTP loops do: a timed request costs a clock entry, a
/// wake-up of CAF's clock thread and, in CAF 0.17, a timeout message that
/// arrives even after the answer).
template <class Self, class Timeout, class OnResult, class OnError>
void request_entity(Self* self, const region_ref& region, Timeout timeout,
                    envelope env, OnResult f, OnError g) {
  auto [dest, msg] = entity_route(region, env);
  auto retry = [=](caf::error& err) mutable {
    if (bounced(err))
      self->request(region.actor, timeout, env).then(f, g);
    else
      g(err);
  };
  self->request(dest, timeout, std::move(msg)).then(f, retry);
}

} // namespace vantage
