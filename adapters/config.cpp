#include "adapters/config.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vantage {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string{v} : fallback;
}

namespace {

int env_int(const char* name, int fallback) {
  auto s = env_or(name, "");
  if (s.empty())
    return fallback;
  try {
    return std::stoi(s);
  } catch (...) {
    return fallback;
  }
}

} // namespace

node_options node_options::from_env() {
  node_options o;
  o.http_port = static_cast<uint16_t>(env_int("VANTAGE_HTTP_PORT", 8080));
  o.http_bind = env_or("VANTAGE_HTTP_BIND", o.http_bind);
  o.http_loops = env_int("VANTAGE_HTTP_LOOPS", o.http_loops);
  o.http_threads = env_int("VANTAGE_HTTP_THREADS", o.http_threads);
  o.public_base_url = env_or("VANTAGE_PUBLIC_BASE_URL", "");
  o.database_url = env_or("VANTAGE_DATABASE_URL", o.database_url);
  o.pg_pool_size = env_int("VANTAGE_PG_POOL_SIZE", o.pg_pool_size);
  o.pg_queue_limit = env_int("VANTAGE_PG_QUEUE_LIMIT", o.pg_queue_limit);
  o.pg_timeout_ms = env_int("VANTAGE_PG_TIMEOUT_MS", o.pg_timeout_ms);
  o.redis_url = env_or("VANTAGE_REDIS_URL", o.redis_url);
  o.data_dir = env_or("VANTAGE_DATA_DIR", o.data_dir);
  o.kafka_bootstrap = env_or("KAFKA_BOOTSTRAP_SERVERS", "");
  o.kafka_bootstrap_from_file = !env_or("VANTAGE_KAFKA_BOOTSTRAP_FILE", "").empty();
  o.kafka_bootstrap_file = env_or("VANTAGE_KAFKA_BOOTSTRAP_FILE",
                                  o.data_dir + "/kafka.bootstrap");
  o.kafka_message_max_bytes = env_int("VANTAGE_KAFKA_MESSAGE_MAX_BYTES",
                                      o.kafka_message_max_bytes);
  o.outbox_poll_ms = env_int("VANTAGE_OUTBOX_POLL_MS", o.outbox_poll_ms);
  o.outbox_batch = env_int("VANTAGE_OUTBOX_BATCH", o.outbox_batch);
  o.outbox_retention_s
    = env_int("VANTAGE_OUTBOX_RETENTION_S", o.outbox_retention_s);
  o.jwt_secret = env_or("VANTAGE_JWT_SECRET", "");
  o.jwt_public_key_file = env_or("VANTAGE_JWT_PUBLIC_KEY_FILE", "");
  o.idle_timeout_s = env_int("VANTAGE_IDLE_TIMEOUT_S", o.idle_timeout_s);
  o.request_timeout_ms = env_int("VANTAGE_REQUEST_TIMEOUT_MS",
                                 o.request_timeout_ms);
  o.catalog_dir = env_or("VANTAGE_CATALOG_DIR", o.data_dir + "/catalog");
  o.clock = env_or("VANTAGE_CLOCK", o.clock);
  o.scheduler = env_or("VANTAGE_SCHEDULER", o.scheduler);
  o.workers = env_int("VANTAGE_WORKERS", o.workers);
  o.log_level = env_or("VANTAGE_LOG_LEVEL", o.log_level);
  o.record_file = env_or("VANTAGE_RECORD_FILE", "");
  o.cdn_base_url = env_or("VANTAGE_CDN_BASE_URL", "");
  o.trust_forwarded = env_or("VANTAGE_TRUST_FORWARDED", "0") == "1";
  o.share_create_limit = env_int("VANTAGE_SHARE_CREATE_LIMIT",
                                 o.share_create_limit);
  o.share_lookup_limit = env_int("VANTAGE_SHARE_LOOKUP_LIMIT",
                                 o.share_lookup_limit);
  o.rate_limit_prefix = env_or("VANTAGE_RATE_LIMIT_PREFIX",
                               o.rate_limit_prefix);
  o.view_batch_max = env_int("VANTAGE_VIEW_BATCH_MAX", o.view_batch_max);
  o.write_batch_max = env_int("VANTAGE_WRITE_BATCH_MAX", o.write_batch_max);
  o.browser_pool_size = env_int("BROWSER_POOL_SIZE", o.browser_pool_size);
  o.browser_pages = env_int("BROWSER_PAGES", o.browser_pages);
  o.browser_recycle_after = env_int("BROWSER_RECYCLE_AFTER",
                                    o.browser_recycle_after);
  o.chromium = env_or("VANTAGE_CHROMIUM", o.chromium);
  o.chromium_flags = env_or("VANTAGE_CHROMIUM_FLAGS", "");
  o.render_timeout_ms = env_int("RENDER_TIMEOUT_MS", o.render_timeout_ms);
  o.render_queue_wait_ms = env_int("VANTAGE_RENDER_QUEUE_WAIT_MS",
                                   o.render_queue_wait_ms);
  o.render_queue_limit = env_int("VANTAGE_RENDER_QUEUE_LIMIT",
                                 o.render_queue_limit);
  o.render_image_hosts = env_or("VANTAGE_RENDER_IMAGE_HOSTS",
                                o.render_image_hosts);
  o.preview_budget_ms = env_int("VANTAGE_PREVIEW_BUDGET_MS",
                                o.preview_budget_ms);
  o.preview_ttl_s = env_int("VANTAGE_PREVIEW_TTL_S", o.preview_ttl_s);
  o.object_store = env_or("VANTAGE_OBJECT_STORE", o.object_store);
  o.object_store_dir = env_or("VANTAGE_OBJECT_STORE_DIR",
                              o.data_dir + "/objects");
  o.s3_endpoint = env_or("VANTAGE_S3_ENDPOINT", o.s3_endpoint);
  o.s3_bucket = env_or("VANTAGE_S3_BUCKET", o.s3_bucket);
  o.s3_region = env_or("VANTAGE_S3_REGION", o.s3_region);
  o.s3_access_key_id = env_or("VANTAGE_S3_ACCESS_KEY_ID", "");
  o.s3_secret_access_key = env_or("VANTAGE_S3_SECRET_ACCESS_KEY", "");
  return o;
}

std::string node_options::resolve_kafka_bootstrap() const {
  if (!kafka_bootstrap.empty() && !kafka_bootstrap_from_file)
    return kafka_bootstrap;
  std::ifstream in{kafka_bootstrap_file};
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' '))
    line.pop_back();
  return line;
}

} // namespace vantage
