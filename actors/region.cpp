#include "actors/region.hpp"

#include <unordered_map>

#include "adapters/log.hpp"

namespace vantage {

size_t rendezvous_owner(const std::string& key,
                        const std::vector<std::string>& members) {
  // FNV-1a over member + key, then a 64-bit finalizer (splitmix) so that
  // similar keys spread; the member with the highest weight owns the key.
  auto weight = [&](const std::string& member) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&](const std::string& s) {
      for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
      }
    };
    mix(member);
    h ^= 0xff;
    mix(key);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
  };
  size_t best = 0;
  uint64_t best_w = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    auto w = weight(members[i]);
    if (i == 0 || w > best_w) {
      best = i;
      best_w = w;
    }
  }
  return best;
}

// -- entity_directory -------------------------------------------------------------

entity_directory::shard& entity_directory::shard_of(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % shard_count];
}

caf::actor entity_directory::find(const std::string& key) {
  auto& sh = shard_of(key);
  std::shared_lock<std::shared_mutex> guard{sh.mtx};
  auto i = sh.entries.find(key);
  if (i == sh.entries.end())
    return {};
  // Read before writing: a hot key's flag stays set, and its cache line
  // is not written by every request.
  if (!i->second->used.load(std::memory_order_relaxed))
    i->second->used.store(true, std::memory_order_relaxed);
  return i->second->handle;
}

void entity_directory::publish(const std::string& key,
                               const caf::actor& handle) {
  auto& sh = shard_of(key);
  auto e = std::make_unique<entry>();
  e->handle = handle;
  std::unique_lock<std::shared_mutex> guard{sh.mtx};
  sh.entries[key] = std::move(e);
}

void entity_directory::withdraw(const std::string& key,
                                const caf::actor_addr& addr) {
  auto& sh = shard_of(key);
  std::unique_lock<std::shared_mutex> guard{sh.mtx};
  auto i = sh.entries.find(key);
  if (i != sh.entries.end() && i->second->handle.address() == addr)
    sh.entries.erase(i);
}

bool entity_directory::take_used(const std::string& key) {
  auto& sh = shard_of(key);
  std::shared_lock<std::shared_mutex> guard{sh.mtx};
  auto i = sh.entries.find(key);
  return i != sh.entries.end()
         && i->second->used.exchange(false, std::memory_order_relaxed);
}

size_t entity_directory::size() const {
  size_t n = 0;
  for (auto& sh : shards_) {
    std::shared_lock<std::shared_mutex> guard{sh.mtx};
    n += sh.entries.size();
  }
  return n;
}

namespace {

// Idle times are measured on the actor system's clock: real time in a node,
// simulated time under CAF's test coordinator (deterministic tests).
using time_point = caf::actor_clock::time_point;

struct entity_slot {
  caf::actor handle;
  time_point last_used;
};

struct region_state {
  region_options opts;
  entity_factory make;
  std::shared_ptr<region_counters> counters;
  std::shared_ptr<entity_directory> directory;
  std::vector<std::string> members;
  std::unordered_map<std::string, entity_slot> entities;
  std::unordered_map<caf::actor_addr, std::string> keys_by_addr;
  static inline const char* name = "region";

  caf::actor& activate(caf::local_actor* self, const std::string& key,
                       bool never_stored) {
    auto i = entities.find(key);
    if (i == entities.end()) {
      auto handle = make(self, key, never_stored);
      self->monitor(handle);
      keys_by_addr.emplace(handle.address(), key);
      if (directory)
        directory->publish(key, handle);
      i = entities.emplace(key, entity_slot{std::move(handle), {}}).first;
      counters->activations.fetch_add(1, std::memory_order_relaxed);
      counters->active.store(static_cast<int64_t>(entities.size()),
                             std::memory_order_relaxed);
    }
    i->second.last_used = self->clock().now();
    return i->second.handle;
  }

  void forget(const caf::actor_addr& addr) {
    auto i = keys_by_addr.find(addr);
    if (i == keys_by_addr.end())
      return;
    auto j = entities.find(i->second);
    if (j != entities.end() && j->second.handle.address() == addr)
      entities.erase(j);
    if (directory)
      directory->withdraw(i->second, addr);
    keys_by_addr.erase(i);
    counters->active.store(static_cast<int64_t>(entities.size()),
                           std::memory_order_relaxed);
  }

  void passivate_idle(time_point now) {
    auto cutoff = now - opts.idle_timeout;
    for (auto i = entities.begin(); i != entities.end();) {
      if (directory && directory->take_used(i->first))
        i->second.last_used = now;
      if (i->second.last_used < cutoff) {
        // Erase first: anything for this key from now on activates a fresh
        // entity, while messages already delegated drain before `stop`.
        if (directory)
          directory->withdraw(i->first, i->second.handle.address());
        caf::anon_send(i->second.handle, atom::stop_v);
        keys_by_addr.erase(i->second.handle.address());
        i = entities.erase(i);
        counters->passivations.fetch_add(1, std::memory_order_relaxed);
      } else {
        ++i;
      }
    }
    counters->active.store(static_cast<int64_t>(entities.size()),
                           std::memory_order_relaxed);
  }
};

caf::behavior region_actor(caf::stateful_actor<region_state>* self,
                           region_options opts, entity_factory make,
                           std::shared_ptr<region_counters> counters,
                           std::shared_ptr<entity_directory> directory) {
  auto& st = self->state;
  st.directory = std::move(directory);
  st.members = {opts.local_member};
  st.opts = std::move(opts);
  st.make = std::move(make);
  st.counters = std::move(counters);
  self->set_down_handler([=](caf::down_msg& dm) {
    self->state.forget(dm.source);
  });
  // Entities live exactly as long as their region.
  self->set_exit_handler([=](caf::exit_msg& msg) {
    for (auto& [key, slot] : self->state.entities) {
      if (self->state.directory)
        self->state.directory->withdraw(key, slot.handle.address());
      caf::anon_send_exit(slot.handle, caf::exit_reason::user_shutdown);
    }
    self->quit(msg.reason);
  });
  auto sweep_every = std::max(std::chrono::milliseconds{50},
                              st.opts.idle_timeout / 4);
  self->delayed_send(self, sweep_every, atom::tick_v);
  return {
    [=](envelope& env) -> caf::result<caf::message> {
      // One member today; rendezvous_owner picks the remote region once the
      // membership has more than this node.
      auto& entity = self->state.activate(self, env.key, env.never_stored);
      auto rp = self->make_response_promise();
      rp.delegate(entity, std::move(env.payload));
      return rp;
    },
    [=](atom::tick) {
      self->state.passivate_idle(self->clock().now());
      self->delayed_send(self, sweep_every, atom::tick_v);
    },
    [=](atom::members) { return self->state.members; },
  };
}

} // namespace

caf::actor spawn_region(caf::actor_system& sys, region_options opts,
                        entity_factory make,
                        std::shared_ptr<region_counters> counters,
                        std::shared_ptr<entity_directory> directory) {
  return sys.spawn(region_actor, std::move(opts), std::move(make),
                   std::move(counters), std::move(directory));
}

} // namespace vantage
