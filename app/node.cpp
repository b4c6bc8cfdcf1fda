#include "app/node.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include <caf/io/middleman.hpp>

#include "actors/clock_timers.hpp"
#include "actors/io_pool.hpp"
#include "actors/outbox_relay_actor.hpp"
#include "actors/product_actor.hpp"
#include "actors/region.hpp"
#include "actors/share_actor.hpp"
#include "actors/share_expiry.hpp"
#include "actors/user_actor.hpp"
#include "actors/wishlist_actor.hpp"
#include "adapters/config.hpp"
#include "adapters/ids.hpp"
#include "adapters/log.hpp"
#include "adapters/pg.hpp"
#include "app/commands.hpp"
#include "app/demo_catalog.hpp"
#include "gateway/recorder.hpp"
#include "gateway/server.hpp"

namespace vantage {

namespace {

/// CAF settings from node_options: the scheduler policy matters for tail
/// latency of HTTP -> actor round trips (see README, benchmarks).
class node_config : public caf::actor_system_config {
public:
  explicit node_config(const node_options& o) {
    register_message_types(*this);
    if (o.scheduler == "stealing")
      set("scheduler.policy", caf::atom("stealing"));
    else
      set("scheduler.policy", caf::atom("sharing"));
    if (o.workers > 0)
      set("scheduler.max-threads", static_cast<size_t>(o.workers));
    set("logger.verbosity", caf::atom("quiet"));
    set("logger.console", caf::atom("none"));
  }
};

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// One running node: actor system, regions, relay and gateway, stopped in
/// reverse order of start.
class node {
public:
  node(node_options opts, std::shared_ptr<const clock_source> clock,
       std::shared_ptr<virtual_clock> virtual_time)
    : opts_(std::move(opts)),
      cfg_(opts_),
      sys_(cfg_),
      clock_(std::move(clock)),
      virtual_time_(std::move(virtual_time)) {
    // nop
  }

  ~node() {
    stop();
  }

  bool start(std::string& err) {
    if (opts_.share_create_limit < 1 || opts_.share_lookup_limit < 1
        || opts_.view_batch_max < 1) {
      err = "VANTAGE_SHARE_CREATE_LIMIT, VANTAGE_SHARE_LOOKUP_LIMIT and"
            " VANTAGE_VIEW_BATCH_MAX must be positive integers";
      return false;
    }
    auto metrics = std::make_shared<metrics_registry>();
    relay_status_ = std::make_shared<relay_status>();
    io_ = spawn_io_pool(sys_, io_pool_options{opts_.database_url,
                                              opts_.pg_pool_size,
                                              opts_.pg_queue_limit,
                                              opts_.pg_timeout_ms});
    relay_ = spawn_outbox_relay(
      sys_,
      relay_options{opts_.database_url, opts_.pg_timeout_ms,
                    [opts = opts_] { return opts.resolve_kafka_bootstrap(); },
                    opts_.outbox_poll_ms, opts_.outbox_batch, 15000,
                    opts_.kafka_message_max_bytes},
      relay_status_);
    timers_ = spawn_clock_timers(sys_, clock_);
    entity_context ctx;
    ctx.io = io_;
    ctx.timers = timers_;
    ctx.view_batch_max = opts_.view_batch_max;
    ctx.relay = relay_;
    ctx.relay_state = relay_status_;
    ctx.clock = clock_;
    ctx.db_timeout = std::chrono::milliseconds{opts_.pg_timeout_ms};
    auto idle = std::chrono::milliseconds{opts_.idle_timeout_s * 1000LL};
    auto counters = [&](const char* name) {
      auto c = std::make_shared<region_counters>();
      metrics_registry& m = *metrics;
      m.add_callback_gauge("vantage_actors_active",
                           "Entity actors currently activated",
                           {{"region", name}},
                           [c] { return static_cast<double>(c->active); });
      m.add_callback_gauge("vantage_actor_activations_total",
                           "Entity activations since start",
                           {{"region", name}}, [c] {
                             return static_cast<double>(c->activations);
                           });
      m.add_callback_gauge("vantage_actor_passivations_total",
                           "Entity passivations since start",
                           {{"region", name}}, [c] {
                             return static_cast<double>(c->passivations);
                           });
      return c;
    };
    gateway_deps deps;
    deps.product_counters = counters("product");
    deps.wishlist_counters = counters("wishlist");
    deps.user_counters = counters("user");
    deps.share_counters = counters("share");
    // Regions first (entities need each other's regions), factories read
    // the filled-in context when they spawn.
    auto shared_ctx = std::make_shared<entity_context>(ctx);
    products_ = spawn_region(
      sys_, region_options{"product", idle, "local"},
      [shared_ctx](caf::local_actor* self, const std::string& key) {
        return caf::actor_cast<caf::actor>(
          self->spawn(product_actor_impl, key, *shared_ctx));
      },
      deps.product_counters);
    wishlists_ = spawn_region(
      sys_, region_options{"wishlist", idle, "local"},
      [shared_ctx](caf::local_actor* self, const std::string& key) {
        return caf::actor_cast<caf::actor>(
          self->spawn(wishlist_actor_impl, key, *shared_ctx));
      },
      deps.wishlist_counters);
    users_ = spawn_region(
      sys_, region_options{"user", idle, "local"},
      [shared_ctx](caf::local_actor* self, const std::string& key) {
        return caf::actor_cast<caf::actor>(
          self->spawn(user_actor_impl, key, *shared_ctx));
      },
      deps.user_counters);
    shares_ = spawn_region(
      sys_, region_options{"share", idle, "local"},
      [shared_ctx](caf::local_actor* self, const std::string& key) {
        return caf::actor_cast<caf::actor>(
          self->spawn(share_actor_impl, key, *shared_ctx));
      },
      deps.share_counters);
    shared_ctx->products = products_;
    shared_ctx->wishlists = wishlists_;
    shared_ctx->users = users_;
    shared_ctx->shares = shares_;
    share_expiry_ = spawn_share_expiry(sys_, *shared_ctx);
    shared_ctx->share_expiry = share_expiry_;
    auto status = relay_status_;
    metrics->add_callback_gauge("vantage_outbox_published_total",
                                "Events the relay published", {},
                                [status] {
                                  return static_cast<double>(status->published);
                                });
    metrics->add_callback_gauge("vantage_outbox_pending",
                                "Unsent outbox events seen by the relay", {},
                                [status] {
                                  return static_cast<double>(status->pending);
                                });
    metrics->add_callback_gauge("vantage_outbox_parked_total",
                                "Events parked as undeliverable", {},
                                [status] {
                                  return static_cast<double>(
                                    status->dead_lettered);
                                });
    metrics->add_callback_gauge("vantage_kafka_up",
                                "1 when the relay reaches Kafka", {},
                                [status] { return status->kafka_ok ? 1.0 : 0.0; });
    jwt_config jc;
    jc.hs256_secret = opts_.jwt_secret.empty() ? default_dev_jwt_secret
                                               : opts_.jwt_secret;
    if (!opts_.jwt_public_key_file.empty()) {
      jc.rs256_public_key_pem = read_file(opts_.jwt_public_key_file);
      if (jc.rs256_public_key_pem.empty()) {
        err = "cannot read VANTAGE_JWT_PUBLIC_KEY_FILE "
              + opts_.jwt_public_key_file;
        return false;
      }
      // RS256 configured: HS256 only when a secret was given explicitly.
      if (opts_.jwt_secret.empty())
        jc.hs256_secret.clear();
    }
    std::string jwt_err;
    std::shared_ptr<jwt_verifier> jwt = jwt_verifier::create(jc, jwt_err);
    if (!jwt) {
      err = "JWT configuration: " + jwt_err;
      return false;
    }
    deps.sys = &sys_;
    deps.products = products_;
    deps.wishlists = wishlists_;
    deps.users = users_;
    deps.shares = shares_;
    deps.io = io_;
    deps.clock = clock_;
    if (virtual_time_)
      deps.advance_clock = [this](std::chrono::milliseconds d) { advance(d); };
    deps.relay = relay_status_;
    deps.metrics = metrics;
    deps.jwt = jwt;
    if (!opts_.record_file.empty())
      deps.recorder = std::make_shared<traffic_recorder>(opts_.record_file,
                                                         "recorded session");
    deps.opts = opts_;
    gateway_ = std::make_unique<gateway>(std::move(deps));
    return gateway_->start(err);
  }

  uint16_t port() const {
    return gateway_ ? gateway_->port() : 0;
  }

  /// Moves a virtual clock forward and fires every timer that fell due,
  /// before returning (scenario steps rely on it).
  void advance(std::chrono::milliseconds d) {
    if (!virtual_time_)
      return;
    virtual_time_->advance(d);
    caf::scoped_actor self{sys_};
    self->request(timers_, std::chrono::seconds{5}, atom::tick_v)
      .receive([](atom::ok) {}, [](caf::error&) {});
  }

  std::string kafka_bootstrap() const {
    return opts_.resolve_kafka_bootstrap();
  }

  void stop() {
    if (stopped_)
      return;
    stopped_ = true;
    if (gateway_)
      gateway_->stop();
    for (auto* a : {&share_expiry_, &shares_, &products_, &wishlists_, &users_,
                    &timers_, &relay_, &io_})
      if (*a)
        caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
  }

private:
  node_options opts_;
  node_config cfg_;
  caf::actor_system sys_;
  std::shared_ptr<const clock_source> clock_;
  std::shared_ptr<virtual_clock> virtual_time_;
  std::shared_ptr<relay_status> relay_status_;
  caf::actor io_;
  caf::actor relay_;
  caf::actor products_;
  caf::actor wishlists_;
  caf::actor users_;
  caf::actor shares_;
  caf::actor timers_;
  caf::actor share_expiry_;
  std::unique_ptr<gateway> gateway_;
  bool stopped_ = false;
};

std::atomic<bool> stop_requested{false};

void on_signal(int) {
  stop_requested = true;
}

int serve(const node_options& opts) {
  set_log_level(parse_log_level(opts.log_level));
  std::shared_ptr<virtual_clock> vclock;
  std::shared_ptr<const clock_source> clock;
  if (opts.clock == "virtual") {
    vclock = std::make_shared<virtual_clock>(system_clock_source{}.now_ms());
    clock = vclock;
  } else {
    clock = std::make_shared<system_clock_source>();
  }
  node n{opts, clock, vclock};
  std::string err;
  if (!n.start(err)) {
    log_event(log_level::error, "node", "start failed: " + err);
    return 1;
  }
  auto base = opts.public_base_url.empty()
                ? "http://localhost:" + std::to_string(n.port())
                : opts.public_base_url;
  log_event(log_level::info, "node", "serving",
            "\"url\":\"" + base + "\",\"kafka\":\"" + n.kafka_bootstrap()
              + "\"");
  std::printf("vantage node listening on %s\n", base.c_str());
  std::fflush(stdout);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  while (!stop_requested)
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  log_event(log_level::info, "node", "stopping");
  n.stop();
  return 0;
}

int migrate(const node_options& opts, bool demo) {
  try {
    pg_connection c{opts.database_url, opts.pg_timeout_ms};
    auto applied = apply_migrations(c, default_migrations_dir());
    for (auto& v : applied)
      std::printf("applied migration %s\n", v.c_str());
    if (applied.empty())
      std::printf("schema up to date\n");
    if (demo) {
      std::string err;
      if (!write_demo_images(opts.catalog_dir + "/images", err)) {
        std::fprintf(stderr, "demo images: %s\n", err.c_str());
        return 1;
      }
      auto have = c.exec_simple("SELECT count(*) FROM products");
      if (have.i64(0, 0) == 0) {
        auto now = system_clock_source{}.now_ms();
        auto products = demo_catalog("/catalog/images");
        in_transaction(c, [&] {
          for (auto& p : products)
            upsert_product(c, p, now);
        });
        std::printf("loaded demo catalog: %zu products\n", products.size());
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "migrate failed: %s\n", e.what());
    return 1;
  }
}

class embedded_node_impl : public embedded_node {
public:
  embedded_node_impl(node_options opts, std::shared_ptr<virtual_clock> vc)
    : clock_(vc), node_(std::move(opts), vc, vc) {
    // nop
  }

  bool start(std::string& err) {
    return node_.start(err);
  }

  std::string base_url() const override {
    return "http://127.0.0.1:" + std::to_string(node_.port());
  }

  void advance(std::chrono::milliseconds d) override {
    node_.advance(d);
  }

  std::string kafka_bootstrap() const override {
    return node_.kafka_bootstrap();
  }

  void stop() override {
    node_.stop();
  }

private:
  std::shared_ptr<virtual_clock> clock_;
  node node_;
};

} // namespace

std::unique_ptr<embedded_node> embedded_node::start(std::string& err) {
  auto opts = node_options::from_env();
  opts.http_port = 0;
  opts.http_bind = "127.0.0.1";
  opts.clock = "virtual";
  opts.http_threads = 16;
  opts.record_file.clear();
  opts.rate_limit_prefix = "rl:test:" + new_id("n") + ":";
  auto vc = std::make_shared<virtual_clock>(system_clock_source{}.now_ms());
  auto n = std::make_unique<embedded_node_impl>(opts, vc);
  if (!n->start(err))
    return nullptr;
  return n;
}

int node_main(int argc, char** argv) {
  auto opts = node_options::from_env();
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--record") == 0 && i + 1 < argc)
      opts.record_file = argv[++i];
    else {
      std::fprintf(stderr, "usage: vantage node [--record FILE]\n");
      return 2;
    }
  }
  return serve(opts);
}

int migrate_main(int argc, char** argv) {
  bool demo = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--demo-catalog") == 0)
      demo = true;
    else {
      std::fprintf(stderr, "usage: vantage migrate [--demo-catalog]\n");
      return 2;
    }
  }
  return migrate(node_options::from_env(), demo);
}

int run_main(int argc, char** argv) {
  auto opts = node_options::from_env();
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--record") == 0 && i + 1 < argc)
      opts.record_file = argv[++i];
    else {
      std::fprintf(stderr, "usage: vantage run [--record FILE]\n");
      return 2;
    }
  }
  if (auto rc = migrate(opts, true); rc != 0)
    return rc;
  return serve(opts);
}

} // namespace vantage
