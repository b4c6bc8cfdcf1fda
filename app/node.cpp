#include "app/node.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <caf/io/middleman.hpp>

#include "actors/clock_timers.hpp"
#include "actors/io_pool.hpp"
#include "actors/outbox_relay_actor.hpp"
#include "actors/preview_gate.hpp"
#include "actors/product_actor.hpp"
#include "actors/render_pool_actor.hpp"
#include "actors/renderer_actor.hpp"
#include "actors/region.hpp"
#include "actors/share_actor.hpp"
#include "actors/share_expiry.hpp"
#include "actors/user_actor.hpp"
#include "actors/wishlist_actor.hpp"
#include "adapters/config.hpp"
#include "adapters/ids.hpp"
#include "adapters/log.hpp"
#include "adapters/pg.hpp"
#include "adapters/preview_fallback.hpp"
#include "adapters/preview_template.hpp"
#include "adapters/text.hpp"
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
    // One worker per core unless told otherwise: CAF's own default is at
    // least 4, and on 2 cores the extra workers only contend for the shared
    // job queue (add route: 17 -> 11.5 context switches per request).
    auto cores = std::max(1u, std::thread::hardware_concurrency());
    set("scheduler.max-threads",
        static_cast<size_t>(o.workers > 0 ? static_cast<unsigned>(o.workers)
                                          : cores));
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
        || opts_.view_batch_max < 1 || opts_.write_batch_max < 1) {
      err = "VANTAGE_SHARE_CREATE_LIMIT, VANTAGE_SHARE_LOOKUP_LIMIT,"
            " VANTAGE_VIEW_BATCH_MAX and VANTAGE_WRITE_BATCH_MAX must be"
            " positive integers";
      return false;
    }
    auto metrics = std::make_shared<metrics_registry>();
    relay_status_ = std::make_shared<relay_status>();
    io_ = spawn_io_pool(sys_, io_pool_options{opts_.database_url,
                                              opts_.pg_pool_size,
                                              opts_.pg_queue_limit,
                                              opts_.pg_timeout_ms});
    write_committer_options wo{opts_.database_url, opts_.pg_timeout_ms,
                               opts_.write_batch_max, opts_.pg_queue_limit};
    auto& txn_run = metrics->get_histogram(
      "vantage_write_transaction_seconds",
      "Time a group-commit transaction took on its connection", {},
      default_latency_buckets());
    auto& txn_wait = metrics->get_histogram(
      "vantage_write_queue_wait_seconds",
      "Longest wait of a transaction's writes before it started", {},
      default_latency_buckets());
    auto& txn_writes = metrics->get_histogram(
      "vantage_write_transaction_writes", "Writes committed per transaction",
      {}, {1, 2, 4, 8, 16, 32, 64, 128, 256});
    // Holds the registry: the committer may outlive the gateway.
    wo.observe = [metrics, &txn_run, &txn_wait, &txn_writes](
                   size_t n, double run_s, double wait_s) {
      txn_run.observe(run_s);
      txn_wait.observe(wait_s);
      txn_writes.observe(static_cast<double>(n));
    };
    writes_ = spawn_write_committer(sys_, wo);
    relay_ = spawn_outbox_relay(
      sys_,
      relay_options{opts_.database_url, opts_.pg_timeout_ms,
                    [opts = opts_] { return opts.resolve_kafka_bootstrap(); },
                    opts_.outbox_poll_ms, opts_.outbox_batch, 15000,
                    opts_.kafka_message_max_bytes, opts_.outbox_retention_s},
      relay_status_);
    timers_ = spawn_clock_timers(sys_, clock_);
    gateway_deps deps;
    if (!start_renderer(*metrics, deps, err))
      return false;
    entity_context ctx;
    ctx.preview_gate = preview_gate_;
    ctx.renderer = renderer_;
    ctx.preview_budget_ms = opts_.preview_budget_ms;
    ctx.io = io_;
    ctx.writes = writes_;
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
    deps.product_counters = counters("product");
    deps.wishlist_counters = counters("wishlist");
    deps.user_counters = counters("user");
    deps.share_counters = counters("share");
    // Regions first (entities need each other's regions), factories read
    // the filled-in context when they spawn.
    auto shared_ctx = std::make_shared<entity_context>(ctx);
    // Each region with its directory of active entities, which the gateway
    // and the entities use to skip the region's mailbox.
    auto region = [&](const char* name,
                      std::shared_ptr<region_counters> counters, auto impl) {
      auto directory = std::make_shared<entity_directory>();
      auto actor = spawn_region(
        sys_, region_options{name, idle, "local"},
        [shared_ctx, impl](caf::local_actor* self, const std::string& key,
                           bool never_stored) {
          auto ctx = *shared_ctx;
          ctx.never_stored = never_stored;
          return caf::actor_cast<caf::actor>(self->spawn(impl, key, ctx));
        },
        std::move(counters), directory);
      return region_ref{std::move(actor), std::move(directory)};
    };
    products_ = region("product", deps.product_counters, product_actor_impl);
    wishlists_ = region("wishlist", deps.wishlist_counters,
                        wishlist_actor_impl);
    users_ = region("user", deps.user_counters, user_actor_impl);
    shares_ = region("share", deps.share_counters, share_actor_impl);
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
    metrics->add_callback_gauge("vantage_outbox_purged_total",
                                "Published events deleted after "
                                "VANTAGE_OUTBOX_RETENTION_S", {},
                                [status] {
                                  return static_cast<double>(status->purged);
                                });
    metrics->add_callback_gauge("vantage_outbox_relay_db_errors_total",
                                "Relay rounds that failed on PostgreSQL and "
                                "were retried", {},
                                [status] {
                                  return static_cast<double>(status->db_errors);
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
    if (!virtual_time_)
      deps.renderer_fault = nullptr;
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

  /// The object store, and with BROWSER_POOL_SIZE > 0 the render pool, the
  /// renderer and the share flow's breaker and gate, with their metrics.
  bool start_renderer(metrics_registry& m, gateway_deps& deps,
                      std::string& err) {
    object_store_options so;
    so.backend = opts_.object_store;
    so.local_dir = opts_.object_store_dir;
    so.s3_endpoint = opts_.s3_endpoint;
    so.s3_bucket = opts_.s3_bucket;
    so.s3_region = opts_.s3_region;
    so.s3_access_key_id = opts_.s3_access_key_id;
    so.s3_secret_access_key = opts_.s3_secret_access_key;
    std::shared_ptr<object_store> store = make_object_store(so, err);
    if (!store) {
      err = "object store: " + err;
      return false;
    }
    deps.store = store;
    if (opts_.browser_pool_size <= 0)
      return true;
    if (opts_.render_timeout_ms < 1 || opts_.render_queue_wait_ms < 0
        || opts_.render_queue_limit < 1 || opts_.browser_pages < 1) {
      err = "RENDER_TIMEOUT_MS, VANTAGE_RENDER_QUEUE_LIMIT and BROWSER_PAGES"
            " must be positive, VANTAGE_RENDER_QUEUE_WAIT_MS not negative";
      return false;
    }
    render_pool_options po;
    po.browsers = opts_.browser_pool_size;
    po.slot.pages = opts_.browser_pages;
    po.slot.recycle_after = opts_.browser_recycle_after;
    po.slot.chromium.executable = opts_.chromium;
    po.slot.chromium.profile_root = opts_.data_dir + "/chromium";
    {
      std::istringstream flags{opts_.chromium_flags};
      for (std::string f; flags >> f;)
        po.slot.chromium.extra_flags.push_back(f);
    }
    po.queue_wait = std::chrono::milliseconds{opts_.render_queue_wait_ms};
    {
      // A card like the real ones (text, four decoded images).
      render_request sample;
      sample.wishlist_title = "Warm-up";
      sample.owner_name = "Vantage";
      sample.item_count = 4;
      std::vector<std::string> thumbs;
      for (int i = 0; i < 4; ++i) {
        sample.items.push_back({"Item", "", "$1.00"});
        thumbs.push_back("data:image/png;base64,"
                         + base64_encode(fallback_preview_png()));
      }
      po.slot.warm_up_html = preview_html(sample, thumbs);
    }
    po.queue_limit = opts_.render_queue_limit;
    auto pool_status = std::make_shared<render_pool_status>();
    render_pool_ = spawn_render_pool(sys_, po, pool_status);
    blocking_ = spawn_blocking_pool(sys_, 4, 1024,
                                    opts_.render_timeout_ms);
    renderer_deps rd;
    rd.pool = render_pool_;
    rd.blocking = blocking_;
    rd.io = io_;
    rd.store = store;
    rd.clock = clock_;
    rd.thumbnails.catalog_images_dir = opts_.catalog_dir + "/images";
    rd.thumbnails.allowed_hosts = split_list(opts_.render_image_hosts);
    rd.ttl = std::chrono::seconds{opts_.preview_ttl_s};
    rd.render_timeout = std::chrono::milliseconds{opts_.render_timeout_ms};
    rd.db_timeout = std::chrono::milliseconds{opts_.pg_timeout_ms};
    auto& duration = m.get_histogram(
      "og_renderer_render_duration_ms",
      "Browser time per render (layout, image decode, capture, PNG encode)",
      {}, {10, 25, 50, 75, 100, 150, 250, 500, 1000, 2500, 5000});
    auto& total = m.get_histogram(
      "og_renderer_request_duration_ms",
      "Render requests end to end inside the renderer (queue included)", {},
      {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000});
    auto& upload = m.get_histogram("og_renderer_upload_duration_ms",
                                   "Object store upload per render", {},
                                   {1, 2.5, 5, 10, 25, 50, 100, 250, 1000});
    auto& renders = m.get_counter("og_renderer_renders_total",
                                  "Renders that ran a browser");
    rd.on_rendered = [&duration, &total, &upload, &renders](const render_result& r) {
      duration.observe(r.load_ms + r.capture_ms);
      total.observe(r.total_ms);
      upload.observe(r.upload_ms);
      renders.inc();
    };
    // Every kind exported from the start (a series that appears only after
    // the first error defeats rate() alerts).
    for (auto kind : {"pool_exhausted", "timeout", "failed"})
      m.get_counter("og_renderer_render_errors_total", "Failed renders",
                    {{"kind", kind}});
    rd.on_failed = [&m](const caf::error& e) {
      const char* kind = is(e, errc::pool_exhausted)   ? "pool_exhausted"
                         : is(e, errc::render_timeout) ? "timeout"
                                                       : "failed";
      m.get_counter("og_renderer_render_errors_total", "Failed renders",
                    {{"kind", kind}})
        .inc();
    };
    renderer_fault_ = std::make_shared<std::atomic<bool>>(false);
    rd.fault = renderer_fault_;
    renderer_ = spawn_renderer(sys_, std::move(rd));
    breaker_ = std::make_shared<circuit_breaker>(circuit_breaker_options{},
                                                 clock_);
    auto& transitions = m.get_counter(
      "vantage_preview_breaker_transitions_total",
      "State changes of the renderer circuit breaker (og-renderer-cb)");
    breaker_->on_transition([&transitions](breaker_state from,
                                           breaker_state to) {
      transitions.inc();
      log_event(log_level::warn, "preview_breaker",
                std::string{"og-renderer-cb: "} + to_string(from) + " -> "
                  + to_string(to));
    });
    auto breaker = breaker_;
    for (auto s : {breaker_state::closed, breaker_state::open,
                   breaker_state::half_open})
      m.add_callback_gauge("vantage_preview_breaker_state",
                           "1 for the renderer breaker's current state",
                           {{"state", to_string(s)}}, [breaker, s] {
                             return breaker->state() == s ? 1.0 : 0.0;
                           });
    preview_gate_ = spawn_preview_gate(
      sys_, renderer_, breaker_,
      std::chrono::milliseconds{opts_.render_timeout_ms * 3
                                + opts_.render_queue_wait_ms + 5000},
      pool_status);
    auto ps = pool_status;
    m.add_callback_gauge("og_renderer_browser_pool_available",
                         "Warm pages free to render", {},
                         [ps] { return ps->available_pages(); });
    m.add_callback_gauge("og_renderer_browser_pool_busy", "Pages rendering",
                         {}, [ps] { return ps->busy_pages(); });
    m.add_callback_gauge("og_renderer_browser_pool_total", "Pages in the pool",
                         {}, [ps] { return ps->total_pages(); });
    m.add_callback_gauge("og_renderer_queue_depth",
                         "Renders waiting for a page", {},
                         [ps] { return ps->queued.load(); });
    m.add_callback_gauge("og_renderer_rejections_total",
                         "Renders refused as pool-exhausted",
                         {{"reason", "queue_full"}},
                         [ps] { return static_cast<double>(ps->rejected_full); });
    m.add_callback_gauge("og_renderer_rejections_total",
                         "Renders refused as pool-exhausted",
                         {{"reason", "queue_wait"}},
                         [ps] { return static_cast<double>(ps->rejected_wait); });
    m.add_callback_gauge("og_renderer_retries_total",
                         "Renders retried after their browser was lost", {},
                         [ps] { return static_cast<double>(ps->retries); });
    m.add_callback_gauge("og_renderer_memory_bytes",
                         "PSS of every browser's process tree", {},
                         [ps] { return static_cast<double>(ps->browsers_pss_bytes()); });
    for (size_t i = 0; i < pool_status->slots.size(); ++i) {
      auto slot = pool_status->slots[i];
      metric_labels l{{"slot", std::to_string(i)}};
      m.add_callback_gauge("og_renderer_browser_restarts_total",
                           "Browser restarts (crash, hang, recycle)", l,
                           [slot] { return static_cast<double>(slot->restarts); });
      m.add_callback_gauge("og_renderer_browser_crashes_total",
                           "Browsers or pages that died under us", l,
                           [slot] { return static_cast<double>(slot->crashes); });
      m.add_callback_gauge("og_renderer_browser_hangs_total",
                           "Browsers that stopped answering", l,
                           [slot] { return static_cast<double>(slot->hangs); });
    }
    deps.renderer = renderer_;
    deps.render_pool = pool_status;
    deps.preview_breaker = breaker_;
    deps.renderer_fault = renderer_fault_;
    return true;
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
    for (auto* a : {&share_expiry_, &shares_.actor, &products_.actor,
                    &wishlists_.actor, &users_.actor,
                    &preview_gate_, &render_pool_, &blocking_, &timers_,
                    &relay_, &writes_, &io_})
      if (*a)
        caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
    if (renderer_)
      caf::anon_send_exit(renderer_, caf::exit_reason::user_shutdown);
  }

private:
  node_options opts_;
  node_config cfg_;
  caf::actor_system sys_;
  std::shared_ptr<const clock_source> clock_;
  std::shared_ptr<virtual_clock> virtual_time_;
  std::shared_ptr<relay_status> relay_status_;
  caf::actor io_;
  caf::actor writes_;
  caf::actor relay_;
  region_ref products_;
  region_ref wishlists_;
  region_ref users_;
  region_ref shares_;
  caf::actor timers_;
  caf::actor share_expiry_;
  caf::actor render_pool_;
  caf::actor blocking_;
  caf::actor preview_gate_;
  renderer_actor renderer_;
  std::shared_ptr<circuit_breaker> breaker_;
  std::shared_ptr<std::atomic<bool>> renderer_fault_;
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
  if (env_or("VANTAGE_HTTP_THREADS", "").empty())
    opts.http_threads = 16;
  opts.record_file.clear();
  opts.rate_limit_prefix = "rl:test:" + new_id("n") + ":";
  // Test nodes: one browser unless told otherwise (each test starts its own
  // node), and a budget long enough that a warm render always answers
  // "rendered", so scenarios are deterministic on a loaded machine.
  if (env_or("BROWSER_POOL_SIZE", "").empty())
    opts.browser_pool_size = 1;
  if (env_or("VANTAGE_PREVIEW_BUDGET_MS", "").empty())
    opts.preview_budget_ms = 5000;
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
