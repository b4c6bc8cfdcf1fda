#define BOOST_TEST_MODULE object_store_test
#include <boost/test/unit_test.hpp>

// The object store adapter (adapters/object_store.*): the local backend in a
// temporary directory, SigV4 against AWS's published "GET Object" example,
// and the S3 backend against s3rver (test/js's npm package, started here on
// a free loopback port and stopped by pid).
//
// s3rver 3.7.1 parses SigV4 headers and refuses unknown access key ids,
// skewed dates and a missing x-amz-content-sha256, but it does not recompute
// V4 signatures ("unimplemented" in its authentication middleware). So a
// wrong secret is caught by `signature_checker` below: a loopback HTTP
// server that recomputes the signature of every request from what arrived
// on the wire, with the secret it expects. The signing itself is pinned by
// the AWS vector; the checker pins that what is sent is what was signed.

#include <httplib.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test/support/eventually.hpp"
#include "adapters/object_store.hpp"

#ifndef VANTAGE_NODE
#define VANTAGE_NODE "node"
#endif

namespace vantage {
// Boost.Test prints both sides of a failed comparison.
std::ostream& operator<<(std::ostream& os, store_status s) {
  return os << (s == store_status::ok          ? "ok"
                : s == store_status::not_found ? "not_found"
                                               : "error");
}
} // namespace vantage

using namespace std::chrono_literals;
using namespace vantage;
namespace fs = std::filesystem;

namespace {

using vantage::test::eventually;

/// A fresh directory under the system temp dir, removed with its content.
struct temp_dir {
  temp_dir() {
    std::string tmpl
        = (fs::temp_directory_path() / "vantage_objstore_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> files() const {
    std::vector<std::string> r;
    for (auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file())
        r.push_back(fs::relative(e.path(), path).string());
    std::sort(r.begin(), r.end());
    return r;
  }
  std::string path;
};

/// `n` deterministic pseudo-random bytes, every value 0..255 (NULs too).
std::string binary_blob(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string r(n, '\0');
  for (auto& c : r)
    c = static_cast<char>(gen() & 0xFF);
  return r;
}

std::unique_ptr<object_store> make_or_fail(const object_store_options& o) {
  std::string err;
  auto s = make_object_store(o, err);
  BOOST_REQUIRE_MESSAGE(s != nullptr, "make_object_store: " + err);
  return s;
}

std::string make_error(const object_store_options& o) {
  std::string err;
  auto s = make_object_store(o, err);
  BOOST_CHECK(s == nullptr);
  return err;
}

std::string amz_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// s3rver's built-in account (lib/models/account.js).
constexpr const char* emulator_key_id = "S3RVER";
constexpr const char* emulator_secret = "S3RVER";

/// s3rver on 127.0.0.1, a port of its choosing (-p 0) read back from its
/// "listening" line; its data in a temp dir. Dies with the test process
/// (PR_SET_PDEATHSIG), so a crashed run leaves no emulator behind.
class s3_emulator {
public:
  s3_emulator() {
    std::string script = std::string(VANTAGE_SOURCE_DIR)
                         + "/test/js/node_modules/s3rver/bin/s3rver.js";
    if (!fs::exists(script))
      throw std::runtime_error(script
                               + " is missing: run test/js/ensure-deps.sh "
                                 "(ctest's js_deps fixture does)");
    std::string log = data_.path + "/s3rver.log";
    std::vector<std::string> args = {
        VANTAGE_NODE, script, "-d", data_.path + "/data", "-a",
        "127.0.0.1",  "-p",   "0",  "--silent",           "--no-vhost-buckets"};
    fs::create_directories(data_.path + "/data");
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent)
        ::_exit(127);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      // Inherit no other descriptor: a test's listening socket kept open
      // by the emulator would still accept connections after the test closes
      // it.
      ::close_range(3, ~0U, 0);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    // The line is printed once the socket listens: no fixed sleep.
    std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
    std::smatch m;
    bool exited = false;
    bool up = eventually(
        [&] {
          int st = 0;
          if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            exited = true;
            pid_ = 0;
            return true;
          }
          std::ifstream in(log);
          std::stringstream ss;
          ss << in.rdbuf();
          output_ = ss.str();
          return std::regex_search(output_, m, listening);
        },
        30s);
    if (!up || exited) {
      stop();
      throw std::runtime_error("s3rver did not start: " + output_);
    }
    port_ = std::stoi(m[1]);
  }

  ~s3_emulator() { stop(); }

  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGTERM);
    bool gone = eventually(
        [&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; }, 5s);
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = 0;
  }

  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

  /// PUT /{bucket}, signed like the adapter signs (the adapter has no
  /// bucket creation: buckets are provisioned, not made by the app).
  void create_bucket(const std::string& bucket) {
    std::string host = "127.0.0.1:" + std::to_string(port_);
    std::string date = amz_now();
    std::string payload = sha256_hex("");
    sigv4_request req{"PUT",
                      "/" + bucket,
                      "",
                      {{"host", host},
                       {"x-amz-content-sha256", payload},
                       {"x-amz-date", date}},
                      payload};
    sigv4_key key{emulator_key_id, emulator_secret, "auto", "s3"};
    httplib::Client cli(endpoint());
    cli.set_connection_timeout(3s);
    cli.set_read_timeout(3s);
    auto res = cli.Put("/" + bucket,
                       {{"Host", host},
                        {"x-amz-content-sha256", payload},
                        {"x-amz-date", date},
                        {"Authorization", sigv4_authorization(req, key, date)}},
                       "", 0, "application/octet-stream");
    BOOST_REQUIRE_MESSAGE(
        res && res->status == 200,
        "create bucket: "
            + (res ? std::to_string(res->status) + " " + res->body
                   : httplib::to_string(res.error())));
  }

  object_store_options options(const std::string& bucket) const {
    object_store_options o;
    o.backend = "s3";
    o.s3_endpoint = endpoint();
    o.s3_bucket = bucket;
    o.s3_access_key_id = emulator_key_id;
    o.s3_secret_access_key = emulator_secret;
    return o;
  }

private:
  temp_dir data_;
  pid_t pid_ = 0;
  int port_ = 0;
  std::string output_;
};

/// One emulator for the S3 cases, started by the first that needs it.
std::unique_ptr<s3_emulator>& emulator_slot() {
  static std::unique_ptr<s3_emulator> e;
  return e;
}

s3_emulator& emulator() {
  auto& e = emulator_slot();
  if (!e) {
    e = std::make_unique<s3_emulator>();
    e->create_bucket("vantage-social-assets");
  }
  return *e;
}

struct stop_emulator_at_exit {
  ~stop_emulator_at_exit() { emulator_slot().reset(); }
};
BOOST_TEST_GLOBAL_FIXTURE(stop_emulator_at_exit);

/// A loopback "S3" that accepts a request only if its SigV4 signature,
/// recomputed from the received method, path, signed headers and body hash
/// under `secret`, matches; objects are kept in memory.
class signature_checker {
public:
  explicit signature_checker(std::string secret) : secret_(std::move(secret)) {
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      std::string why = verify(req);
      std::lock_guard<std::mutex> g(mu_);
      if (!why.empty()) {
        ++refused_;
        last_refusal_ = why;
        res.status = 403;
        res.set_content("<Error><Code>SignatureDoesNotMatch</Code><Message>"
                            + why + "</Message></Error>",
                        "application/xml");
        return;
      }
      ++accepted_;
      if (req.method == "PUT") {
        objects_[req.path] = req.body;
        return;
      }
      auto it = objects_.find(req.path);
      if (it == objects_.end()) {
        res.status = 404;
        res.set_content("<Error><Code>NoSuchKey</Code></Error>",
                        "application/xml");
        return;
      }
      res.set_content(it->second, "application/octet-stream");
    };
    server_.Put(".*", handle);
    server_.Get(".*", handle);
    port_ = server_.bind_to_any_port("127.0.0.1");
    BOOST_REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    BOOST_REQUIRE(eventually([&] { return server_.is_running(); }, 5s));
  }

  ~signature_checker() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  int accepted() {
    std::lock_guard<std::mutex> g(mu_);
    return accepted_;
  }
  int refused() {
    std::lock_guard<std::mutex> g(mu_);
    return refused_;
  }
  std::string last_refusal() {
    std::lock_guard<std::mutex> g(mu_);
    return last_refusal_;
  }

private:
  std::string verify(const httplib::Request& req) const {
    static const std::regex shape(
        "AWS4-HMAC-SHA256 "
        "Credential=([^/]+)/([0-9]{8})/([^/]+)/s3/aws4_request,"
        "SignedHeaders=([a-z0-9;-]+),Signature=([0-9a-f]{64})");
    std::string auth = req.get_header_value("Authorization");
    std::smatch m;
    if (!std::regex_match(auth, m, shape))
      return "malformed Authorization: " + auth;
    std::string date = req.get_header_value("x-amz-date");
    if (date.size() != 16 || date.compare(0, 8, m[2].str()) != 0)
      return "x-amz-date " + date + " does not match the credential scope";
    if (req.get_header_value("x-amz-content-sha256") != sha256_hex(req.body))
      return "x-amz-content-sha256 is not the body's hash";
    sigv4_request r;
    r.method = req.method;
    r.canonical_uri = sigv4_uri_encode_path(req.path);
    r.payload_sha256 = req.get_header_value("x-amz-content-sha256");
    std::string names = m[4].str();
    for (const std::string need :
         {"host", "x-amz-content-sha256", "x-amz-date"})
      if ((";" + names + ";").find(";" + need + ";") == std::string::npos)
        return need + " is not signed";
    std::stringstream ss(names);
    std::string name;
    while (std::getline(ss, name, ';')) {
      if (!req.has_header(name.c_str()))
        return "signed header " + name + " was not sent";
      r.headers.emplace_back(name, req.get_header_value(name.c_str()));
    }
    sigv4_key key{m[1].str(), secret_, m[3].str(), "s3"};
    if (sigv4_sign(r, key, date).signature != m[5].str())
      return "signature does not match";
    return {};
  }

  std::string secret_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  int accepted_ = 0;
  int refused_ = 0;
  std::string last_refusal_;
  std::map<std::string, std::string> objects_;
};

} // namespace

// --- keys and signing -------------------------------------------------------

BOOST_AUTO_TEST_CASE(object_keys_are_plain_relative_paths) {
  for (std::string k :
       {"a", "previews/ab/cd.png", "x-y_z.0", "a/b/c/d", "..a", "a.."})
    BOOST_CHECK_MESSAGE(valid_object_key(k), k);
  for (const std::string& k : std::vector<std::string>{
           "", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "../a", "a b",
           "a\\b", "a%2Fb", "ä", std::string("a\0b", 3)})
    BOOST_CHECK_MESSAGE(!valid_object_key(k), k);
  BOOST_CHECK(valid_object_key(std::string(512, 'k')));
  BOOST_CHECK(!valid_object_key(std::string(513, 'k')));
}

BOOST_AUTO_TEST_CASE(sigv4_matches_the_aws_get_object_example) {
  // docs.aws.amazon.com, S3 API, "Signature Calculations for the
  // Authorization Header", Example: GET Object.
  std::string empty = sha256_hex("");
  BOOST_TEST(
      empty
      == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  sigv4_request req{"GET",
                    "/test.txt",
                    "",
                    {{"Host", "examplebucket.s3.amazonaws.com"},
                     {"Range", "bytes=0-9"},
                     {"x-amz-content-sha256", empty},
                     {"x-amz-date", "20130524T000000Z"}},
                    empty};
  sigv4_key key{"AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};
  auto s = sigv4_sign(req, key, "20130524T000000Z");
  BOOST_TEST(s.canonical_request
             == "GET\n/test.txt\n\n"
                "host:examplebucket.s3.amazonaws.com\n"
                "range:bytes=0-9\n"
                "x-amz-content-sha256:"
                    + empty
                    + "\n"
                      "x-amz-date:20130524T000000Z\n\n"
                      "host;range;x-amz-content-sha256;x-amz-date\n"
                    + empty);
  BOOST_TEST(
      s.string_to_sign
      == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/"
         "aws4_request\n"
         "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  BOOST_TEST(
      s.signature
      == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  BOOST_TEST(
      s.authorization
      == "AWS4-HMAC-SHA256 "
         "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
         "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-"
         "date,"
         "Signature="
         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  BOOST_TEST(sigv4_authorization(req, key, "20130524T000000Z")
             == s.authorization);

  // Header order and value spacing do not change the signature.
  std::reverse(req.headers.begin(), req.headers.end());
  req.headers[2].second = "  bytes=0-9 ";
  BOOST_TEST(sigv4_sign(req, key, "20130524T000000Z").signature == s.signature);
}

BOOST_AUTO_TEST_CASE(sigv4_path_encoding_keeps_slashes_and_unreserved) {
  BOOST_TEST(sigv4_uri_encode_path("/b/previews/a-b_c.~d/x.png")
             == "/b/previews/a-b_c.~d/x.png");
  BOOST_TEST(sigv4_uri_encode_path("/test$file.text") == "/test%24file.text");
  BOOST_TEST(sigv4_uri_encode_path("/a b+c=") == "/a%20b%2Bc%3D");
  BOOST_TEST(sigv4_uri_encode_path("\xC3\xA4") == "%C3%A4");
}

BOOST_AUTO_TEST_CASE(unusable_options_are_refused_with_a_reason) {
  object_store_options o;
  o.backend = "ftp";
  BOOST_TEST(make_error(o).find("local or s3") != std::string::npos);
  o.backend = "local";
  BOOST_TEST(make_error(o).find("VANTAGE_OBJECT_STORE_DIR")
             != std::string::npos);

  o.backend = "s3";
  o.s3_endpoint = "http://127.0.0.1:4569";
  o.s3_access_key_id = "id";
  o.s3_secret_access_key = "secret";
  BOOST_TEST(make_error(o).find("VANTAGE_S3_BUCKET") != std::string::npos);
  o.s3_bucket = "a/b";
  BOOST_TEST(make_error(o).find("bucket name") != std::string::npos);
  o.s3_bucket = "vantage-social-assets";
  o.s3_secret_access_key.clear();
  BOOST_TEST(make_error(o).find("VANTAGE_S3_SECRET_ACCESS_KEY")
             != std::string::npos);
  o.s3_secret_access_key = "secret";
  for (std::string bad :
       {"127.0.0.1:4569", "ftp://h", "http://", "http://h/prefix"}) {
    o.s3_endpoint = bad;
    BOOST_TEST(make_error(o).find("VANTAGE_S3_ENDPOINT") != std::string::npos,
               bad);
  }
  o.s3_endpoint = "http://127.0.0.1:4569/";
  BOOST_TEST(make_or_fail(o)->describe()
             == "s3:http://127.0.0.1:4569/vantage-social-assets");
}

// --- local backend ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(local_put_get_overwrite_and_not_found) {
  temp_dir dir;
  object_store_options o;
  o.local_dir = dir.path + "/objects";
  auto s = make_or_fail(o);
  BOOST_TEST(s->describe() == "local:" + o.local_dir);
  BOOST_TEST(s->check().ok());
  BOOST_TEST(fs::is_directory(o.local_dir));

  BOOST_TEST(s->get("previews/none.png").status == store_status::not_found);
  BOOST_TEST(s->put("previews/ab/share.png", "first", "image/png").ok());
  auto r = s->get("previews/ab/share.png");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.bytes == "first");
  BOOST_TEST(
      s->put("previews/ab/share.png", "second, longer", "image/png").ok());
  BOOST_TEST(s->get("previews/ab/share.png").bytes == "second, longer");
  // A "directory" is not an object, as on S3.
  BOOST_TEST(s->get("previews/ab").status == store_status::not_found);
  BOOST_TEST(s->get("previews/ab/share.png/x").status
             == store_status::not_found);
  BOOST_TEST(s->put("empty", "", "text/plain").ok());
  r = s->get("empty");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.bytes.empty());
  // Nothing but the objects: no temporary files left beside them.
  BOOST_TEST(dir.files()
             == (std::vector<std::string>{"objects/empty",
                                          "objects/previews/ab/share.png"}));

  std::string blob = binary_blob(300 * 1024, 7);
  BOOST_TEST(s->put("blob.bin", blob, "application/octet-stream").ok());
  BOOST_TEST((s->get("blob.bin").bytes == blob));
}

BOOST_AUTO_TEST_CASE(local_refuses_invalid_keys_and_touches_nothing) {
  temp_dir dir;
  object_store_options o;
  o.local_dir = dir.path + "/objects";
  auto s = make_or_fail(o);
  for (std::string k :
       {"../escape", "/etc/passwd", "a/../../b", "a//b", "", "a b"}) {
    auto r = s->put(k, "x", "text/plain");
    BOOST_TEST((r.status == store_status::error), k);
    BOOST_TEST(r.error.find("invalid object key") != std::string::npos, k);
    BOOST_TEST((s->get(k).status == store_status::error), k);
  }
  BOOST_TEST(dir.files().empty());
  BOOST_TEST(!fs::exists(dir.path + "/escape"));
}

BOOST_AUTO_TEST_CASE(
    local_concurrent_writers_of_one_key_leave_one_whole_value) {
  temp_dir dir;
  object_store_options o;
  o.local_dir = dir.path;
  auto s = make_or_fail(o);
  std::vector<std::string> values;
  for (unsigned i = 0; i < 6; ++i)
    values.push_back(binary_blob(64 * 1024, i));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < values.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (!s->put("shared/key.bin", values[t], "application/octet-stream")
                 .ok())
          ++failures;
        auto r = s->get("shared/key.bin");
        if (!r.ok()
            || std::find(values.begin(), values.end(), r.bytes) == values.end())
          ++failures;
      }
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(dir.files() == std::vector<std::string>{"shared/key.bin"});
}

BOOST_AUTO_TEST_CASE(local_check_fails_when_the_directory_cannot_exist) {
  temp_dir dir;
  std::ofstream(dir.path + "/file") << "x";
  object_store_options o;
  o.local_dir = dir.path + "/file/objects";
  auto s = make_or_fail(o);
  auto r = s->check();
  BOOST_TEST(!r.ok());
  BOOST_TEST(!r.error.empty());
  BOOST_TEST((s->put("a", "x", "text/plain").status == store_status::error));
}

// --- S3 backend against s3rver ----------------------------------------------

BOOST_AUTO_TEST_CASE(s3_check_sees_the_bucket_and_a_missing_one) {
  auto& e = emulator();
  auto s = make_or_fail(e.options("vantage-social-assets"));
  BOOST_TEST(s->describe() == "s3:" + e.endpoint() + "/vantage-social-assets");
  auto r = s->check();
  BOOST_TEST(r.ok(), r.error);
  auto missing = make_or_fail(e.options("no-such-bucket"))->check();
  BOOST_TEST(!missing.ok());
  BOOST_TEST((missing.status == store_status::not_found), missing.error);
}

BOOST_AUTO_TEST_CASE(s3_put_get_overwrite_and_not_found) {
  auto s = make_or_fail(emulator().options("vantage-social-assets"));
  auto r = s->get("previews/none.png");
  BOOST_TEST((r.status == store_status::not_found), r.error);

  r = s->put("previews/ab/share.png", "first", "image/png");
  BOOST_TEST(r.ok(), r.error);
  r = s->get("previews/ab/share.png");
  BOOST_TEST(r.ok(), r.error);
  BOOST_TEST(r.bytes == "first");
  BOOST_TEST(
      s->put("previews/ab/share.png", "second, longer", "image/png").ok());
  BOOST_TEST(s->get("previews/ab/share.png").bytes == "second, longer");

  BOOST_TEST(s->put("empty", "", "").ok());
  r = s->get("empty");
  BOOST_TEST(r.ok(), r.error);
  BOOST_TEST(r.bytes.empty());
}

BOOST_AUTO_TEST_CASE(s3_binary_round_trip_of_300_kb) {
  auto s = make_or_fail(emulator().options("vantage-social-assets"));
  std::string blob = binary_blob(300 * 1024, 42);
  auto r = s->put("blobs/300k.bin", blob, "application/octet-stream");
  BOOST_TEST(r.ok(), r.error);
  r = s->get("blobs/300k.bin");
  BOOST_TEST(r.ok(), r.error);
  BOOST_TEST(r.bytes.size() == blob.size());
  BOOST_TEST((r.bytes == blob));
}

BOOST_AUTO_TEST_CASE(s3_concurrent_callers) {
  auto s = make_or_fail(emulator().options("vantage-social-assets"));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string key
            = "concurrent/" + std::to_string(t) + "/" + std::to_string(i);
        std::string value
            = binary_blob(4096, static_cast<unsigned>(t * 100 + i));
        if (!s->put(key, value, "application/octet-stream").ok()
            || s->get(key).bytes != value)
          ++failures;
      }
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(failures.load() == 0);
}

BOOST_AUTO_TEST_CASE(s3_refuses_invalid_keys_without_a_request) {
  auto s = make_or_fail(emulator().options("vantage-social-assets"));
  for (std::string k : {"../escape", "/abs", "a//b", "", "a b", "a?b"}) {
    auto r = s->put(k, "x", "text/plain");
    BOOST_TEST((r.status == store_status::error), k);
    BOOST_TEST(r.error.find("invalid object key") != std::string::npos, k);
    BOOST_TEST(s->get(k).error.find("invalid object key") != std::string::npos,
               k);
  }
}

BOOST_AUTO_TEST_CASE(s3_unknown_access_key_is_an_error_with_the_status) {
  auto o = emulator().options("vantage-social-assets");
  o.s3_access_key_id = "NOT-A-KEY";
  auto s = make_or_fail(o);
  auto r = s->put("previews/denied.png", "x", "image/png");
  BOOST_TEST((r.status == store_status::error));
  BOOST_TEST(r.error.find("HTTP 403") != std::string::npos, r.error);
  BOOST_TEST(r.error.find("InvalidAccessKeyId") != std::string::npos, r.error);
  BOOST_TEST((s->get("previews/ab/share.png").status == store_status::error));
  BOOST_TEST(!s->check().ok());
  // Nothing was written under the refused request.
  auto good = make_or_fail(emulator().options("vantage-social-assets"));
  BOOST_TEST(
      (good->get("previews/denied.png").status == store_status::not_found));
}

BOOST_AUTO_TEST_CASE(
    s3_unreachable_or_silent_endpoints_fail_within_the_timeout) {
  // A loopback socket that listens but never accepts nor answers: the
  // kernel completes the connection, so only the read timeout ends the call.
  int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  BOOST_REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  BOOST_REQUIRE(::listen(silent, 16) == 0);
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);

  object_store_options o = emulator().options("vantage-social-assets");
  o.s3_endpoint = "http://127.0.0.1:" + std::to_string(port);
  o.timeout_ms = 400;
  auto s = make_or_fail(o);
  auto t0 = std::chrono::steady_clock::now();
  auto r = s->get("k");
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_TEST((r.status == store_status::error));
  BOOST_TEST(!r.error.empty());
  BOOST_TEST((took >= 300ms && took < 2s));

  // The same port closed: refused at once.
  ::close(silent);
  t0 = std::chrono::steady_clock::now();
  r = s->put("k", "x", "text/plain");
  BOOST_TEST((r.status == store_status::error));
  BOOST_TEST(r.error.find("s3 PUT /vantage-social-assets/k")
                 != std::string::npos,
             r.error);
  auto refused_in = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(
      (refused_in < 300ms),
      std::chrono::duration_cast<std::chrono::milliseconds>(refused_in).count()
          << " ms: " << r.error);
  BOOST_TEST(!s->check().ok());
}

BOOST_AUTO_TEST_CASE(s3_signature_is_over_what_is_sent) {
  signature_checker server("right-secret");
  object_store_options o;
  o.backend = "s3";
  o.s3_endpoint = server.endpoint();
  o.s3_bucket = "vantage-social-assets";
  o.s3_access_key_id = "AKIDVANTAGE";
  o.s3_secret_access_key = "right-secret";
  auto s = make_or_fail(o);
  std::string blob = binary_blob(10000, 3);
  auto r = s->put("previews/x/y.png", blob, "image/png");
  BOOST_TEST(r.ok(), r.error + " / " + server.last_refusal());
  r = s->get("previews/x/y.png");
  BOOST_TEST(r.ok(), r.error + " / " + server.last_refusal());
  BOOST_TEST((r.bytes == blob));
  BOOST_TEST((s->get("previews/none").status == store_status::not_found));
  BOOST_TEST(server.refused() == 0, server.last_refusal());
  BOOST_TEST(server.accepted() == 3);

  o.s3_secret_access_key = "wrong-secret";
  auto wrong = make_or_fail(o);
  r = wrong->put("previews/x/y.png", "overwritten?", "image/png");
  BOOST_TEST((r.status == store_status::error));
  BOOST_TEST(r.error.find("HTTP 403") != std::string::npos, r.error);
  BOOST_TEST(r.error.find("SignatureDoesNotMatch") != std::string::npos,
             r.error);
  BOOST_TEST(server.refused() == 1);
  BOOST_TEST((s->get("previews/x/y.png").bytes == blob));
}
