#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vantage {

/// Everything a node reads from its environment (12-factor). Each field
/// documents its variable and default; README's configuration table lists
/// the same. Nothing else in the code base reads the environment.
struct node_options {
  /// VANTAGE_HTTP_PORT (8080). 0 picks a free port.
  uint16_t http_port = 8080;
  /// VANTAGE_HTTP_BIND (127.0.0.1).
  std::string http_bind = "127.0.0.1";
  /// VANTAGE_HTTP_LOOPS (0 = one per core): event loops that own the HTTP
  /// connections and run the routes written in continuation form.
  int http_loops = 0;
  /// VANTAGE_HTTP_THREADS (16): threads for the routes that block (each
  /// waits on one actor at a time); connections hold no thread.
  int http_threads = 16;
  /// VANTAGE_PUBLIC_BASE_URL (http://localhost:{port}).
  std::string public_base_url;
  /// VANTAGE_DATABASE_URL (postgresql://vantage@127.0.0.1:55432/vantage).
  std::string database_url = "postgresql://vantage@127.0.0.1:55432/vantage";
  /// VANTAGE_PG_POOL_SIZE (4): connections, one per I/O worker. Measured
  /// on 2 cores: 4 beats 8 (less contention with PostgreSQL itself).
  int pg_pool_size = 4;
  /// VANTAGE_PG_QUEUE_LIMIT (2048): queued jobs before 503.
  int pg_queue_limit = 2048;
  /// VANTAGE_PG_TIMEOUT_MS (2000): connect and statement timeout.
  int pg_timeout_ms = 2000;
  /// VANTAGE_REDIS_URL (redis://127.0.0.1:56379).
  std::string redis_url = "redis://127.0.0.1:56379";
  /// KAFKA_BOOTSTRAP_SERVERS: a fixed bootstrap list (a real cluster).
  std::string kafka_bootstrap;
  /// VANTAGE_KAFKA_BOOTSTRAP_FILE ($VANTAGE_DATA_DIR/kafka.bootstrap): the
  /// embedded cluster writes its list here. When this variable is set it
  /// wins over KAFKA_BOOTSTRAP_SERVERS and is re-read whenever the cluster
  /// becomes unreachable, so a restarted embedded cluster (new ports) is
  /// found again without restarting the node.
  std::string kafka_bootstrap_file;
  bool kafka_bootstrap_from_file = false;
  /// VANTAGE_KAFKA_MESSAGE_MAX_BYTES (1000000): the producer's
  /// message.max.bytes; a larger event goes to its topic's DLQ.
  int kafka_message_max_bytes = 1000000;
  /// VANTAGE_OUTBOX_POLL_MS (200): relay wake-up when nothing signalled it.
  int outbox_poll_ms = 200;
  /// VANTAGE_OUTBOX_BATCH (500): events per relay round.
  int outbox_batch = 500;
  /// VANTAGE_OUTBOX_RETENTION_S (0): 0 deletes each event in the round
  /// that published it; more keeps published events this long (for
  /// inspection), then the relay deletes them.
  int outbox_retention_s = 0;
  /// VANTAGE_JWT_SECRET (dev default, see gateway/jwt.hpp).
  std::string jwt_secret;
  /// VANTAGE_JWT_PUBLIC_KEY_FILE: RS256 public key (PEM) instead of HS256.
  std::string jwt_public_key_file;
  /// VANTAGE_IDLE_TIMEOUT_S (600): entity passivation after idle time.
  int idle_timeout_s = 600;
  /// VANTAGE_REQUEST_TIMEOUT_MS (3000): how long a request waits for the
  /// actors (the whole request on loop routes, each answer on blocking ones).
  int request_timeout_ms = 3000;
  /// VANTAGE_DATA_DIR (./var/run).
  std::string data_dir = "var/run";
  /// VANTAGE_CATALOG_DIR ($VANTAGE_DATA_DIR/catalog): product images.
  std::string catalog_dir;
  /// VANTAGE_CLOCK (system|virtual): virtual enables /_test/clock/advance.
  std::string clock = "system";
  /// VANTAGE_SCHEDULER (sharing|stealing): CAF scheduler policy.
  std::string scheduler = "sharing";
  /// VANTAGE_WORKERS (0 = one per core; CAF alone would start at least 4).
  int workers = 0;
  /// VANTAGE_LOG_LEVEL (info).
  std::string log_level = "info";
  /// VANTAGE_CDN_BASE_URL (the public base URL): where preview images are
  /// linked from (the gateway serves them under /social/...).
  std::string cdn_base_url;
  /// VANTAGE_TRUST_FORWARDED (0): 1 takes the client address for rate
  /// limits from X-Forwarded-For (only behind a proxy that sets it).
  bool trust_forwarded = false;
  /// VANTAGE_SHARE_CREATE_LIMIT (20): share creations per user per rolling
  /// hour.
  int share_create_limit = 20;
  /// VANTAGE_SHARE_LOOKUP_LIMIT (60): shared-token lookups per client
  /// address per minute.
  int share_lookup_limit = 60;
  /// VANTAGE_RATE_LIMIT_PREFIX (rl:): prefix of rate-limit keys in Redis.
  /// Nodes that share counters must share it; embedded test nodes each get
  /// their own, since their virtual clocks disagree.
  std::string rate_limit_prefix = "rl:";
  /// VANTAGE_WRITE_BATCH_MAX (128): atomic writes the group committer puts
  /// into one transaction at most; 1 commits each write alone.
  int write_batch_max = 128;
  /// VANTAGE_VIEW_BATCH_MAX (256): share views committed per database round
  /// trip at most (group commit); 1 commits every view on its own.
  int view_batch_max = 256;
  /// VANTAGE_RECORD_FILE: record live traffic as a scenario (`--record`).
  std::string record_file;

  // -- preview renderer -------------------------------------------------------
  /// BROWSER_POOL_SIZE (3): headless Chromium processes (render slots); 0
  /// turns rendering off (every share shows the fallback preview).
  int browser_pool_size = 3;
  /// BROWSER_PAGES (2): warm pages per browser.
  int browser_pages = 2;
  /// BROWSER_RECYCLE_AFTER (500): renders before a browser is restarted
  /// (caps its memory); 0 never.
  int browser_recycle_after = 500;
  /// VANTAGE_CHROMIUM (/usr/bin/chromium).
  std::string chromium = "/usr/bin/chromium";
  /// VANTAGE_CHROMIUM_FLAGS: more flags for every browser, space-separated.
  std::string chromium_flags;
  /// RENDER_TIMEOUT_MS (5000): longest render before 504.
  int render_timeout_ms = 5000;
  /// VANTAGE_RENDER_QUEUE_WAIT_MS (2000): longest wait for a page before
  /// the request fails as pool-exhausted (503).
  int render_queue_wait_ms = 2000;
  /// VANTAGE_RENDER_QUEUE_LIMIT (64): waiting renders beyond this are
  /// refused at once.
  int render_queue_limit = 64;
  /// VANTAGE_RENDER_IMAGE_HOSTS (127.0.0.1,localhost,::1): hosts http(s)
  /// thumbnails may be fetched from.
  std::string render_image_hosts = "127.0.0.1,localhost,::1";
  /// VANTAGE_PREVIEW_BUDGET_MS (150): how long share creation waits for its
  /// preview before answering "pending".
  int preview_budget_ms = 150;
  /// VANTAGE_PREVIEW_TTL_S (86400): a rendered preview is reused this long.
  int preview_ttl_s = 86400;
  /// VANTAGE_OBJECT_STORE (local|s3) and its settings; see
  /// adapters/object_store.hpp. Local folder: VANTAGE_OBJECT_STORE_DIR
  /// ($VANTAGE_DATA_DIR/objects).
  std::string object_store = "local";
  std::string object_store_dir;
  std::string s3_endpoint;
  std::string s3_bucket = "vantage-social-assets";
  std::string s3_region = "auto";
  std::string s3_access_key_id;
  std::string s3_secret_access_key;

  /// Reads the environment over the defaults.
  static node_options from_env();

  /// The Kafka bootstrap list now: the file's content when
  /// VANTAGE_KAFKA_BOOTSTRAP_FILE was set or KAFKA_BOOTSTRAP_SERVERS was
  /// not, else KAFKA_BOOTSTRAP_SERVERS.
  std::string resolve_kafka_bootstrap() const;
};

/// Value of environment variable `name`, or `fallback`.
std::string env_or(const char* name, const std::string& fallback);

} // namespace vantage
