#include "adapters/object_store.hpp"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include "adapters/files.hpp"
#include "adapters/text.hpp"

namespace fs = std::filesystem;

namespace vantage {

namespace {

bool key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
         || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string r(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    r[2 * i] = digits[p[i] >> 4];
    r[2 * i + 1] = digits[p[i] & 0xF];
  }
  return r;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  auto ok = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                 reinterpret_cast<const unsigned char*>(data.data()),
                 data.size(), out, &len);
  if (ok == nullptr)
    throw std::runtime_error("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<char*>(out), len);
}

/// Header value as SigV4 canonicalizes it: trimmed, runs of spaces as one.
std::string canonical_value(std::string_view v) {
  std::string r;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !r.empty();
      continue;
    }
    if (space)
      r += ' ';
    space = false;
    r += c;
  }
  return r;
}

/// "HTTP 403: <first bytes of the body>" for error texts; S3 error bodies
/// are small XML documents whose <Code> is the useful part.
std::string status_excerpt(const httplib::Response& res) {
  std::string r = "HTTP " + std::to_string(res.status);
  if (res.body.empty())
    return r;
  std::string body = res.body.substr(0, 200);
  for (auto& c : body)
    if (static_cast<unsigned char>(c) < 0x20)
      c = ' ';
  return r + ": " + body;
}

store_result failed(std::string text) {
  store_result r;
  r.status = store_status::error;
  r.error = std::move(text);
  return r;
}

store_result missing(std::string text) {
  store_result r;
  r.status = store_status::not_found;
  r.error = std::move(text);
  return r;
}

store_result done(std::string bytes = {}) {
  store_result r;
  r.status = store_status::ok;
  r.bytes = std::move(bytes);
  return r;
}

// --- local directory --------------------------------------------------------

class local_store final : public object_store {
public:
  explicit local_store(std::string dir) : dir_(std::move(dir)) {}

  store_result put(const std::string& key, std::string_view bytes,
                   const std::string&) override {
    if (!valid_object_key(key))
      return failed("invalid object key");
    fs::path path = fs::path(dir_) / key;
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      return failed("cannot create " + path.parent_path().string() + ": "
                    + ec.message());
    // write_file_atomically names its temporary file after the pid, so two
    // threads writing one key would share it; a lock per key stripe keeps
    // them apart (distinct keys rarely wait on each other).
    std::lock_guard<std::mutex> guard(
        stripes_[std::hash<std::string>{}(key) % stripes_.size()]);
    std::string err;
    if (!write_file_atomically(path.string(), std::string(bytes), err))
      return failed(err);
    return done();
  }

  store_result get(const std::string& key) override {
    if (!valid_object_key(key))
      return failed("invalid object key");
    std::string path = (fs::path(dir_) / key).string();
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      if (errno == ENOENT || errno == ENOTDIR)
        return missing("no object " + key);
      return failed("cannot open " + path + ": " + std::strerror(errno));
    }
    std::string bytes;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
      bytes.append(buf, n);
    bool bad = std::ferror(f) != 0;
    int read_errno = errno;
    std::fclose(f);
    if (bad) {
      // A directory opens but does not read: "a" when only "a/b" exists,
      // which S3 would call missing too.
      if (read_errno == EISDIR)
        return missing("no object " + key);
      return failed("cannot read " + path + ": " + std::strerror(read_errno));
    }
    return done(std::move(bytes));
  }

  store_result check() override {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec)
      return failed("cannot create " + dir_ + ": " + ec.message());
    if (::access(dir_.c_str(), W_OK | X_OK) != 0)
      return failed(dir_ + " is not writable: " + std::strerror(errno));
    return done();
  }

  std::string describe() const override { return "local:" + dir_; }

private:
  std::string dir_;
  std::array<std::mutex, 32> stripes_;
};

// --- S3-compatible bucket ---------------------------------------------------

/// "YYYYMMDDTHHMMSSZ" now. The signature carries real time on purpose, not
/// the injectable clock: servers refuse requests more than 15 minutes off
/// their own clock, and a virtual clock would be.
std::string amz_date_now() {
  std::time_t t
      = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

class s3_store final : public object_store {
public:
  s3_store(const object_store_options& o, std::string base, std::string host)
      : base_(std::move(base)),
        host_(std::move(host)),
        bucket_(o.s3_bucket),
        timeout_(o.timeout_ms),
        key_{o.s3_access_key_id, o.s3_secret_access_key, o.s3_region, "s3"} {}

  store_result put(const std::string& key, std::string_view bytes,
                   const std::string& content_type) override {
    if (!valid_object_key(key))
      return failed("invalid object key");
    return send("PUT", object_path(key), bytes,
                content_type.empty() ? "application/octet-stream"
                                     : content_type);
  }

  store_result get(const std::string& key) override {
    if (!valid_object_key(key))
      return failed("invalid object key");
    return send("GET", object_path(key), {}, {});
  }

  store_result check() override {
    return send("HEAD", "/" + sigv4_uri_encode_path(bucket_), {}, {});
  }

  std::string describe() const override {
    return "s3:" + base_ + "/" + bucket_;
  }

private:
  std::string object_path(const std::string& key) const {
    return sigv4_uri_encode_path("/" + bucket_ + "/" + key);
  }

  /// One signed request. A client (so a connection) per request: httplib's
  /// client must not serve two threads at once, and this keeps the store
  /// stateless. Not measured: pool clients if the handshakes ever show up.
  store_result send(const std::string& method, const std::string& path,
                    std::string_view body, const std::string& content_type) {
    std::string amz_date = amz_date_now();
    std::string payload = sha256_hex(body);
    sigv4_request req{method,
                      path,
                      "",
                      {{"host", host_},
                       {"x-amz-content-sha256", payload},
                       {"x-amz-date", amz_date}},
                      payload};
    httplib::Headers headers{
        {"Host", host_},
        {"x-amz-content-sha256", payload},
        {"x-amz-date", amz_date},
        {"Authorization", sigv4_authorization(req, key_, amz_date)}};
    httplib::Client cli(base_);
    auto t = std::chrono::milliseconds(timeout_);
    cli.set_connection_timeout(t);
    cli.set_read_timeout(t);
    cli.set_write_timeout(t);
    httplib::Result res = method == "PUT" ? cli.Put(path, headers, body.data(),
                                                    body.size(), content_type)
                          : method == "HEAD" ? cli.Head(path, headers)
                                             : cli.Get(path, headers);
    std::string what = "s3 " + method + " " + path + ": ";
    if (!res)
      return failed(what + httplib::to_string(res.error()));
    if (res->status >= 200 && res->status < 300)
      return done(method == "GET" ? std::move(res->body) : std::string());
    if (res->status == 404)
      return missing(what + status_excerpt(*res));
    return failed(what + status_excerpt(*res));
  }

  std::string base_; // scheme://authority, for httplib and describe()
  std::string host_; // the Host header, signed
  std::string bucket_;
  int timeout_;
  sigv4_key key_;
};

/// Splits "http(s)://authority[/]" into the client base and the Host header
/// (default ports dropped, as SDKs do, since the signed Host must match).
bool parse_endpoint(const std::string& endpoint, std::string& base,
                    std::string& host, std::string& err) {
  std::string scheme;
  for (const char* s : {"http", "https"})
    if (endpoint.rfind(std::string(s) + "://", 0) == 0)
      scheme = s;
  if (scheme.empty()) {
    err = "VANTAGE_S3_ENDPOINT must start with http:// or https://";
    return false;
  }
  std::string authority = endpoint.substr(scheme.size() + 3);
  if (!authority.empty() && authority.back() == '/')
    authority.pop_back();
  if (authority.empty()
      || authority.find_first_of("/?#@ ") != std::string::npos) {
    err = "VANTAGE_S3_ENDPOINT must be scheme://host[:port] without a path";
    return false;
  }
  base = scheme + "://" + authority;
  host = authority;
  std::string default_port = scheme == "http" ? ":80" : ":443";
  if (host.size() > default_port.size()
      && host.compare(host.size() - default_port.size(), default_port.size(),
                      default_port)
             == 0)
    host.resize(host.size() - default_port.size());
  return true;
}

} // namespace

bool valid_object_key(std::string_view key) {
  if (key.empty() || key.size() > 512)
    return false;
  size_t start = 0;
  while (true) {
    size_t end = key.find('/', start);
    std::string_view seg = key.substr(start, end == std::string_view::npos
                                                 ? std::string_view::npos
                                                 : end - start);
    if (seg.empty() || seg == "." || seg == "..")
      return false;
    if (!std::all_of(seg.begin(), seg.end(), key_char))
      return false;
    if (end == std::string_view::npos)
      return true;
    start = end + 1;
  }
}

std::unique_ptr<object_store>
make_object_store(const object_store_options& opts, std::string& err) {
  if (opts.backend == "local") {
    if (opts.local_dir.empty()) {
      err = "VANTAGE_OBJECT_STORE=local needs VANTAGE_OBJECT_STORE_DIR";
      return nullptr;
    }
    return std::make_unique<local_store>(opts.local_dir);
  }
  if (opts.backend != "s3") {
    err = "VANTAGE_OBJECT_STORE must be local or s3, not '" + opts.backend
          + "'";
    return nullptr;
  }
  std::string missing_var
      = opts.s3_endpoint.empty()            ? "VANTAGE_S3_ENDPOINT"
        : opts.s3_bucket.empty()            ? "VANTAGE_S3_BUCKET"
        : opts.s3_region.empty()            ? "VANTAGE_S3_REGION"
        : opts.s3_access_key_id.empty()     ? "VANTAGE_S3_ACCESS_KEY_ID"
        : opts.s3_secret_access_key.empty() ? "VANTAGE_S3_SECRET_ACCESS_KEY"
                                            : "";
  if (!missing_var.empty()) {
    err = "VANTAGE_OBJECT_STORE=s3 needs " + missing_var;
    return nullptr;
  }
  // A bucket is one path segment of every request: refuse what would not be.
  if (!std::all_of(opts.s3_bucket.begin(), opts.s3_bucket.end(), key_char)) {
    err = "VANTAGE_S3_BUCKET '" + opts.s3_bucket + "' is not a bucket name";
    return nullptr;
  }
  if (opts.timeout_ms <= 0) {
    err = "object store timeout must be positive";
    return nullptr;
  }
  std::string base;
  std::string host;
  if (!parse_endpoint(opts.s3_endpoint, base, host, err))
    return nullptr;
  return std::make_unique<s3_store>(opts, std::move(base), std::move(host));
}

// --- SigV4 ------------------------------------------------------------------

std::string sha256_hex(std::string_view bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), out, &len, EVP_sha256(), nullptr)
      != 1)
    throw std::runtime_error("SHA-256 failed");
  return hex(out, len);
}

std::string sigv4_uri_encode_path(std::string_view path) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string r;
  r.reserve(path.size());
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z')
        || (u >= '0' && u <= '9') || c == '-' || c == '.' || c == '_'
        || c == '~' || c == '/') {
      r += c;
    } else {
      r += '%';
      r += digits[u >> 4];
      r += digits[u & 0xF];
    }
  }
  return r;
}

sigv4_signed sigv4_sign(const sigv4_request& req, const sigv4_key& key,
                        const std::string& amz_date) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (auto& [name, value] : req.headers)
    headers.emplace_back(ascii_lower(name), canonical_value(value));
  std::sort(headers.begin(), headers.end());

  std::string canonical_headers;
  std::string signed_headers;
  for (auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }

  sigv4_signed s;
  s.canonical_request = req.method + "\n" + req.canonical_uri + "\n"
                        + req.canonical_query + "\n" + canonical_headers + "\n"
                        + signed_headers + "\n" + req.payload_sha256;
  std::string date = amz_date.substr(0, 8);
  std::string scope
      = date + "/" + key.region + "/" + key.service + "/aws4_request";
  s.string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n"
                     + sha256_hex(s.canonical_request);
  std::string k = hmac_sha256("AWS4" + key.secret_access_key, date);
  k = hmac_sha256(k, key.region);
  k = hmac_sha256(k, key.service);
  k = hmac_sha256(k, "aws4_request");
  std::string mac = hmac_sha256(k, s.string_to_sign);
  s.signature
      = hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
  s.authorization = "AWS4-HMAC-SHA256 Credential=" + key.access_key_id + "/"
                    + scope + ",SignedHeaders=" + signed_headers
                    + ",Signature=" + s.signature;
  return s;
}

std::string sigv4_authorization(const sigv4_request& req, const sigv4_key& key,
                                const std::string& amz_date) {
  return sigv4_sign(req, key, amz_date).authorization;
}

} // namespace vantage
