#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vantage {

/// Outcome class of one object store call.
enum class store_status { ok, not_found, error };

/// What one object store call returned.
struct store_result {
  store_status status = store_status::error;
  /// Object content for get().
  std::string bytes;
  /// Human text when status == error (also set for not_found).
  std::string error;
  bool ok() const { return status == store_status::ok; }
};

/// Where objects live. The caller fills this from the environment (README's
/// configuration table lists the variables); nothing here reads it.
struct object_store_options {
  /// VANTAGE_OBJECT_STORE (local): local | s3.
  std::string backend = "local";
  /// VANTAGE_OBJECT_STORE_DIR ($VANTAGE_DATA_DIR/objects, set by the caller).
  std::string local_dir;
  /// VANTAGE_S3_ENDPOINT, e.g. http://127.0.0.1:4569; requests are
  /// path-style ({endpoint}/{bucket}/{key}), which R2 and emulators accept.
  std::string s3_endpoint;
  /// VANTAGE_S3_BUCKET (vantage-social-assets).
  std::string s3_bucket;
  /// VANTAGE_S3_REGION (auto): R2 signs with "auto".
  std::string s3_region = "auto";
  /// VANTAGE_S3_ACCESS_KEY_ID.
  std::string s3_access_key_id;
  /// VANTAGE_S3_SECRET_ACCESS_KEY.
  std::string s3_secret_access_key;
  /// Connect, read and write timeout of one request.
  int timeout_ms = 3000;
};

/// A flat key -> bytes store (local directory or S3-compatible bucket).
/// Thread-safe: called concurrently from several blocking worker threads.
class object_store {
public:
  virtual ~object_store() = default;
  /// Writes (replaces) `key` with `bytes`. One attempt; callers retry.
  virtual store_result put(const std::string& key, std::string_view bytes,
                           const std::string& content_type)
      = 0;
  /// Reads `key`: ok with the bytes, not_found, or error.
  virtual store_result get(const std::string& key) = 0;
  /// Cheap reachability check for /healthz.
  virtual store_result check() = 0;
  /// "local:/path" or "s3:http://host:port/bucket" for logs.
  virtual std::string describe() const = 0;
};

/// The store `opts` names; nullptr with `err` set when the options are
/// unusable (unknown backend, missing directory, bucket or credentials, an
/// endpoint that is not http(s)://host[:port]).
std::unique_ptr<object_store>
make_object_store(const object_store_options& opts, std::string& err);

/// True for keys of [A-Za-z0-9._-] segments separated by '/', no empty, "."
/// or ".." segment, no leading '/', at most 512 chars. Both backends refuse
/// other keys, so a key can never leave the local directory and maps to the
/// same object on either backend.
bool valid_object_key(std::string_view key);

// --- AWS Signature Version 4 (header form), pure functions -----------------

/// One request to sign.
struct sigv4_request {
  /// "GET", "PUT", "HEAD".
  std::string method;
  /// Already URI-encoded path, e.g. "/bucket/a/b.png" (see
  /// sigv4_uri_encode_path).
  std::string canonical_uri;
  /// Sorted, encoded query string; empty for none.
  std::string canonical_query;
  /// The headers to sign, as sent; names are lower-cased and sorted here,
  /// values trimmed with inner runs of spaces collapsed.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Hex SHA-256 of the payload (the x-amz-content-sha256 value).
  std::string payload_sha256;
};

/// Who signs, and for which scope.
struct sigv4_key {
  std::string access_key_id;
  std::string secret_access_key;
  std::string region;
  std::string service = "s3";
};

/// Every intermediate of one signature, so tests can compare each step with
/// published examples.
struct sigv4_signed {
  std::string canonical_request;
  std::string string_to_sign;
  /// Lower-case hex HMAC-SHA256 of string_to_sign under the derived key.
  std::string signature;
  /// The Authorization header value:
  /// "AWS4-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=...".
  std::string authorization;
};

/// Signs `req` at `amz_date` (YYYYMMDD'T'HHMMSS'Z', the x-amz-date value).
sigv4_signed sigv4_sign(const sigv4_request& req, const sigv4_key& key,
                        const std::string& amz_date);

/// sigv4_sign(...).authorization.
std::string sigv4_authorization(const sigv4_request& req, const sigv4_key& key,
                                const std::string& amz_date);

/// SigV4 URI encoding of a path: every byte but A-Za-z0-9-._~ and '/'
/// becomes %XX (upper-case hex).
std::string sigv4_uri_encode_path(std::string_view path);

/// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

} // namespace vantage
