#define BOOST_TEST_MODULE avro_test
#include <boost/test/unit_test.hpp>

#include "adapters/avro.hpp"

#include <avro.h>

#include <cstdint>
#include <string>
#include <vector>

using vantage::avro_codec;

namespace {

std::unique_ptr<avro_codec> must_parse(const std::string& avsc) {
  std::string err;
  auto c = avro_codec::parse(avsc, err);
  BOOST_REQUIRE_MESSAGE(c, "parse failed for " << avsc << ": " << err);
  return c;
}

std::unique_ptr<avro_codec> must_builtin(const std::string& name) {
  std::string err;
  auto c = avro_codec::builtin(name, err);
  BOOST_REQUIRE_MESSAGE(c, "builtin " << name << ": " << err);
  return c;
}

// Bit-at-a-time CRC-64-AVRO, written straight from the spec's polynomial
// definition (no table), to check the codec's table-driven version.
uint64_t slow_rabin(const std::string& s) {
  const uint64_t empty = 0xc15d213aa4d7a795ULL;
  uint64_t fp = empty;
  for (unsigned char c : s) {
    fp ^= c;
    for (int j = 0; j < 8; ++j)
      fp = (fp >> 1) ^ ((fp & 1) ? empty : 0);
  }
  return fp;
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

const char* share_json
  = R"({"event_id":"evt-1","event_type":"share_item_added",)"
    R"("wishlist_id":"6f1c2a9e-0000-4000-8000-000000000001",)"
    R"("user_id":"6f1c2a9e-0000-4000-8000-000000000002","share_token":"tok_ABC",)"
    R"("share_channel":"email","item_count":3,)"
    R"("recipient_user_id":"6f1c2a9e-0000-4000-8000-000000000003",)"
    R"("timestamp":"2025-09-16T10:22:14.551Z",)"
    R"("metadata":{"user_agent":"Mozilla/5.0 \"x\"","referrer":null,"country":"DE"}})";

} // namespace

// Test vectors from the Avro project's share/test/data/schema-tests.txt.
BOOST_AUTO_TEST_CASE(canonical_form_and_fingerprint_spec_vectors) {
  struct vec {
    const char* input;
    const char* canonical;
    int64_t fingerprint; // as signed Java longs in the Avro test file
  };
  const vec vectors[] = {
    {R"("null")", R"("null")", 7195948357588979594LL},
    {R"("boolean")", R"("boolean")", -6970731678124411036LL},
    {R"("int")", R"("int")", 8247732601305521295LL},
    {R"({"type":"int"})", R"("int")", 8247732601305521295LL},
    {R"("long")", R"("long")", -3434872931120570953LL},
    {R"("float")", R"("float")", 5583340709985441680LL},
    {R"("double")", R"("double")", -8181574048448539266LL},
    {R"("bytes")", R"("bytes")", 5746618253357095269LL},
    {R"("string")", R"("string")", -8142146995180207161LL},
    {R"({"type":"string"})", R"("string")", -8142146995180207161LL},
    {R"([ "int"  ])", R"(["int"])", -5232228896498058493LL},
    {R"([ "int" , {"type":"boolean"} ])", R"(["int","boolean"])",
     5392556393470105090LL},
    {R"({"fields":[], "type":"record", "name":"foo"})",
     R"({"name":"foo","type":"record","fields":[]})", -4824392279771201922LL},
    {R"({"fields":[], "type":"record", "name":"foo", "namespace":"x.y"})",
     R"({"name":"x.y.foo","type":"record","fields":[]})", 5916914534497305771LL},
    {R"({"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"})",
     R"({"name":"a.b.foo","type":"record","fields":[]})", -4616218487480524110LL},
    {R"({"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]})",
     R"({"name":"foo","type":"record","fields":[]})", -4824392279771201922LL},
    {R"({"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"})",
     R"({"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]})",
     7843277075252814651LL},
    {R"({ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":true},
                    {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
          "type":"record", "name":"foo"})",
     R"({"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]})",
     -4860222112080293046LL},
    {R"({"type":"enum", "name":"foo", "symbols":["A1"]})",
     R"({"name":"foo","type":"enum","symbols":["A1"]})", -6342190197741309591LL},
    {R"({"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]})",
     R"({"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]})",
     -4448647247586288245LL},
    {R"({"name":"foo","type":"fixed","size":15})",
     R"({"name":"foo","type":"fixed","size":15})", 1756455273707447556LL},
    {R"({"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32})",
     R"({"name":"x.y.z.foo","type":"fixed","size":32})", -3064184465700546786LL},
    {R"({ "items":{"type":"null"}, "type":"array"})",
     R"({"type":"array","items":"null"})", -589620603366471059LL},
    {R"({ "values":"string", "type":"map"})", R"({"type":"map","values":"string"})",
     -8732877298790414990LL},
    {R"({"name":"PigValue","type":"record",
         "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]})",
     R"({"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]})",
     -1759257747318642341LL},
  };
  for (auto& v : vectors) {
    BOOST_TEST_CONTEXT(v.input) {
      auto c = must_parse(v.input);
      BOOST_TEST(c->canonical_form() == v.canonical);
      BOOST_TEST(c->fingerprint() == static_cast<uint64_t>(v.fingerprint));
      BOOST_TEST(slow_rabin(v.canonical) == static_cast<uint64_t>(v.fingerprint));
    }
  }
  // The spec's single-object header example for "int": C3 01 8F 5C 39 3F 1A D5 75 72.
  auto c = must_parse(R"("int")");
  std::string out, err;
  BOOST_REQUIRE_MESSAGE(c->encode("7", out, err), err);
  BOOST_TEST(hex(out) == "c3018f5c393f1ad575720e");
}

BOOST_AUTO_TEST_CASE(builtin_canonical_forms) {
  auto w = must_builtin("wishlist_event");
  BOOST_TEST(w->full_name() == "com.vantage.wishlist.WishlistEvent");
  BOOST_TEST(w->canonical_form()
             == R"({"name":"com.vantage.wishlist.WishlistEvent","type":"record","fields":[)"
                R"({"name":"event_id","type":"string"},)"
                R"({"name":"event_type","type":{"name":"com.vantage.wishlist.WishlistEventType","type":"enum","symbols":["wishlist_created","wishlist_item_added","wishlist_item_removed"]}},)"
                R"({"name":"wishlist_id","type":"string"},{"name":"user_id","type":"string"},)"
                R"({"name":"product_id","type":["null","string"]},)"
                R"({"name":"wishlist_item_id","type":["null","string"]},)"
                R"({"name":"item_count","type":"int"},{"name":"timestamp","type":"string"}]})");
  BOOST_TEST(w->fingerprint() == slow_rabin(w->canonical_form()));

  auto s = must_builtin("wishlist_social_event");
  BOOST_TEST(s->full_name() == "com.vantage.social.ShareEvent");
  BOOST_TEST(s->canonical_form()
             == R"({"name":"com.vantage.social.ShareEvent","type":"record","fields":[)"
                R"({"name":"event_id","type":"string"},)"
                R"({"name":"event_type","type":{"name":"com.vantage.social.ShareEventType","type":"enum","symbols":["share_created","share_viewed","share_item_added","share_expired","share_revoked"]}},)"
                R"({"name":"wishlist_id","type":"string"},{"name":"user_id","type":"string"},)"
                R"({"name":"share_token","type":"string"},)"
                R"({"name":"share_channel","type":["null","string"]},)"
                R"({"name":"item_count","type":"int"},)"
                R"({"name":"recipient_user_id","type":["null","string"]},)"
                R"({"name":"timestamp","type":"string"},)"
                R"({"name":"metadata","type":{"name":"com.vantage.social.ShareEventMetadata","type":"record","fields":[)"
                R"({"name":"user_agent","type":["null","string"]},{"name":"referrer","type":["null","string"]},)"
                R"({"name":"country","type":["null","string"]}]}}]})");
  BOOST_TEST(s->fingerprint() == slow_rabin(s->canonical_form()));
  BOOST_TEST(w->fingerprint() != s->fingerprint());

  std::string err;
  BOOST_TEST(!avro_codec::builtin("no_such_schema", err));
  BOOST_TEST(err.find("no_such_schema") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(framing_and_exact_body_bytes) {
  auto c = must_parse(R"({"type":"record","name":"T","fields":[
      {"name":"a","type":"int"},{"name":"b","type":"string"},
      {"name":"c","type":["null","string"]},{"name":"d","type":"long"},
      {"name":"e","type":"boolean"}]})");
  std::string out, err;
  BOOST_REQUIRE_MESSAGE(c->encode(R"({"a":-3,"b":"hi","c":null,"d":300,"e":true})", out, err), err);
  BOOST_REQUIRE(out.size() >= 10);
  BOOST_TEST(static_cast<unsigned char>(out[0]) == 0xC3);
  BOOST_TEST(static_cast<unsigned char>(out[1]) == 0x01);
  uint64_t fp = 0;
  for (int i = 0; i < 8; ++i)
    fp |= static_cast<uint64_t>(static_cast<unsigned char>(out[2 + i])) << (8 * i);
  BOOST_TEST(fp == c->fingerprint());
  // a=-3 -> zigzag 5; "hi" -> 04 68 69; null branch 0; 300 -> d8 04; true -> 01
  BOOST_TEST(hex(out.substr(10)) == "0504686900d80401");

  BOOST_REQUIRE_MESSAGE(c->encode(R"({"a":1,"b":"","c":"x","d":-1,"e":false})", out, err), err);
  BOOST_TEST(hex(out.substr(10)) == "020002027801" "00");
}

BOOST_AUTO_TEST_CASE(round_trip_builtins) {
  auto s = must_builtin("wishlist_social_event");
  std::string framed, json, err;
  BOOST_REQUIRE_MESSAGE(s->encode(share_json, framed, err), err);
  BOOST_REQUIRE_MESSAGE(s->decode(framed, json, err), err);
  BOOST_TEST(json == share_json);

  // Missing nullable fields and the metadata default decode as nulls.
  const char* minimal
    = R"({"event_id":"e2","event_type":"share_created","wishlist_id":"w","user_id":"u",)"
      R"("share_token":"t","item_count":0,"timestamp":"2025-01-01T00:00:00Z"})";
  BOOST_REQUIRE_MESSAGE(s->encode(minimal, framed, err), err);
  BOOST_REQUIRE_MESSAGE(s->decode(framed, json, err), err);
  BOOST_TEST(json
             == R"({"event_id":"e2","event_type":"share_created","wishlist_id":"w","user_id":"u",)"
                R"("share_token":"t","share_channel":null,"item_count":0,"recipient_user_id":null,)"
                R"("timestamp":"2025-01-01T00:00:00Z",)"
                R"("metadata":{"user_agent":null,"referrer":null,"country":null}})");

  auto w = must_builtin("wishlist_event");
  const char* wjson
    = R"({"event_id":"e3","event_type":"wishlist_item_removed","wishlist_id":"w1",)"
      R"("user_id":"u1","product_id":"p\u00e9\n1","wishlist_item_id":null,)"
      R"("item_count":2147483647,"timestamp":"2025-02-03T04:05:06Z"})";
  BOOST_REQUIRE_MESSAGE(w->encode(wjson, framed, err), err);
  BOOST_REQUIRE_MESSAGE(w->decode(framed, json, err), err);
  BOOST_TEST(json
             == "{\"event_id\":\"e3\",\"event_type\":\"wishlist_item_removed\",\"wishlist_id\":\"w1\","
                "\"user_id\":\"u1\",\"product_id\":\"p\xc3\xa9\\n1\",\"wishlist_item_id\":null,"
                "\"item_count\":2147483647,\"timestamp\":\"2025-02-03T04:05:06Z\"}");

  // A value framed for one schema is rejected by the other.
  BOOST_TEST(!s->decode(framed, json, err));
  BOOST_TEST(err.find("fingerprint") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(other_types_round_trip) {
  auto c = must_parse(R"({"type":"record","name":"All","namespace":"t","fields":[
      {"name":"f","type":"float"},{"name":"d","type":"double"},
      {"name":"by","type":"bytes"},{"name":"arr","type":{"type":"array","items":"long"}},
      {"name":"m","type":{"type":"map","values":["null","int"]}},
      {"name":"fx","type":{"type":"fixed","name":"Four","size":4}},
      {"name":"again","type":"Four"},
      {"name":"n","type":"null"},
      {"name":"def","type":"int","default":42},
      {"name":"u","type":["null","long","string"],"default":null}]})");
  std::string framed, json, err;
  BOOST_REQUIRE_MESSAGE(
    c->encode(R"({"f":1.5,"d":-0.25,"by":"raw","arr":[1,-2,9007199254740993],)"
              R"("m":{"k":7,"z":null},"fx":"abcd","again":"wxyz","n":null,"u":5})",
              framed, err),
    err);
  BOOST_REQUIRE_MESSAGE(c->decode(framed, json, err), err);
  BOOST_TEST(json
             == R"({"f":1.5,"d":-0.25,"by":"raw","arr":[1,-2,9007199254740993],)"
                R"("m":{"k":7,"z":null},"fx":"abcd","again":"wxyz","n":null,"def":42,"u":5})");
  // Avro-JSON union wrapping is accepted on input.
  BOOST_REQUIRE_MESSAGE(
    c->encode(R"({"f":0,"d":0,"by":"","arr":[],"m":{},"fx":"abcd","again":"wxyz",)"
              R"("u":{"string":"s"}})",
              framed, err),
    err);
  BOOST_REQUIRE_MESSAGE(c->decode(framed, json, err), err);
  BOOST_TEST(json
             == R"({"f":0.0,"d":0.0,"by":"","arr":[],"m":{},"fx":"abcd","again":"wxyz","n":null,"def":42,"u":"s"})");
}

BOOST_AUTO_TEST_CASE(decode_errors) {
  auto s = must_builtin("wishlist_social_event");
  std::string framed, json, err;
  BOOST_REQUIRE_MESSAGE(s->encode(share_json, framed, err), err);

  std::string bad = framed;
  bad[0] = 'O';
  BOOST_TEST(!s->decode(bad, json, err));
  BOOST_TEST(err.find("magic") != std::string::npos);
  bad = framed;
  bad[1] = 0x02;
  BOOST_TEST(!s->decode(bad, json, err));

  bad = framed;
  bad[5] = static_cast<char>(bad[5] ^ 0x40);
  BOOST_TEST(!s->decode(bad, json, err));
  BOOST_TEST(err.find("fingerprint") != std::string::npos);

  BOOST_TEST(!s->decode(framed.substr(0, 6), json, err));
  for (size_t cut = 10; cut < framed.size(); ++cut) {
    err.clear();
    BOOST_TEST_CONTEXT("cut at " << cut) {
      BOOST_TEST(!s->decode(framed.substr(0, cut), json, err));
      BOOST_TEST(!err.empty());
    }
  }
  BOOST_TEST(!s->decode(framed + "x", json, err));
  BOOST_TEST(err.find("trailing") != std::string::npos);
  BOOST_TEST(!s->decode("", json, err));
}

BOOST_AUTO_TEST_CASE(encode_errors) {
  auto s = must_builtin("wishlist_social_event");
  std::string out = "untouched", err;
  // share_token is required and has no default.
  BOOST_TEST(!s->encode(R"({"event_id":"e","event_type":"share_created","wishlist_id":"w",)"
                        R"("user_id":"u","item_count":1,"timestamp":"t"})",
                        out, err));
  BOOST_TEST(err.find("share_token") != std::string::npos);
  BOOST_TEST(out == "untouched");

  BOOST_TEST(!s->encode(R"({"event_id":"e","event_type":"share_exploded","wishlist_id":"w",)"
                        R"("user_id":"u","share_token":"t","item_count":1,"timestamp":"t"})",
                        out, err));
  BOOST_TEST(err.find("event_type") != std::string::npos);

  BOOST_TEST(!s->encode(R"({"event_id":"e","event_type":"share_created","wishlist_id":"w",)"
                        R"("user_id":"u","share_token":"t","item_count":4294967296,"timestamp":"t"})",
                        out, err));
  BOOST_TEST(err.find("item_count") != std::string::npos);

  BOOST_TEST(!s->encode(R"({"event_id":"e","event_type":"share_created","wishlist_id":"w",)"
                        R"("user_id":"u","share_token":"t","item_count":"3","timestamp":"t"})",
                        out, err));
  BOOST_TEST(err.find("item_count") != std::string::npos);

  BOOST_TEST(!s->encode(R"({"event_id":"e","event_type":"share_created","wishlist_id":"w",)"
                        R"("user_id":"u","share_token":"t","item_count":3,"timestamp":"t",)"
                        R"("metadata":{"country":7}})",
                        out, err));
  BOOST_TEST(err.find("metadata.country") != std::string::npos);

  BOOST_TEST(!s->encode("[1,2]", out, err));
  BOOST_TEST(!s->encode("{not json", out, err));
}

BOOST_AUTO_TEST_CASE(schema_errors) {
  std::string err;
  BOOST_TEST(!avro_codec::parse("{", err));
  BOOST_TEST(!avro_codec::parse(R"({"type":"record","name":"A","fields":[{"name":"x","type":"Nope"}]})", err));
  BOOST_TEST(err.find("Nope") != std::string::npos);
  BOOST_TEST(!avro_codec::parse(R"({"type":"enum","name":"E","symbols":["a","a"]})", err));
  BOOST_TEST(!avro_codec::parse(R"({"type":"record","name":"A","fields":[{"name":"x","type":"int","default":"no"}]})", err));
  BOOST_TEST(!avro_codec::parse(R"(["null","null"])", err));
}

// Independent check: the C library libavro reads our body with the same schema.
BOOST_AUTO_TEST_CASE(libavro_reads_our_encoding) {
  std::string err;
  auto s = must_builtin("wishlist_social_event");
  std::string framed;
  BOOST_REQUIRE_MESSAGE(s->encode(share_json, framed, err), err);
  std::string body = framed.substr(10);

  // libavro takes the canonical form (any valid schema JSON would do).
  avro_schema_t schema;
  const std::string& pcf = s->canonical_form();
  BOOST_REQUIRE_MESSAGE(avro_schema_from_json_length(pcf.data(), pcf.size(), &schema) == 0,
                        avro_strerror());
  avro_value_iface_t* iface = avro_generic_class_from_schema(schema);
  BOOST_REQUIRE(iface);
  avro_value_t rec;
  BOOST_REQUIRE(avro_generic_value_new(iface, &rec) == 0);
  avro_reader_t reader = avro_reader_memory(body.data(), static_cast<int64_t>(body.size()));
  BOOST_REQUIRE_MESSAGE(avro_value_read(reader, &rec) == 0, avro_strerror());

  auto get_str = [&](avro_value_t* v) {
    const char* p = nullptr;
    size_t n = 0;
    BOOST_REQUIRE(avro_value_get_string(v, &p, &n) == 0);
    return std::string(p, n > 0 ? n - 1 : 0); // size includes the NUL
  };
  auto str_field = [&](avro_value_t* parent, const char* name) {
    avro_value_t f;
    BOOST_REQUIRE_MESSAGE(avro_value_get_by_name(parent, name, &f, nullptr) == 0, name);
    return get_str(&f);
  };
  // ["null","string"] field: returns {present, value}.
  auto opt_field = [&](avro_value_t* parent, const char* name) {
    avro_value_t u, branch;
    int disc = -1;
    BOOST_REQUIRE_MESSAGE(avro_value_get_by_name(parent, name, &u, nullptr) == 0, name);
    BOOST_REQUIRE(avro_value_get_discriminant(&u, &disc) == 0);
    BOOST_REQUIRE(avro_value_get_current_branch(&u, &branch) == 0);
    if (disc == 0)
      return std::string("<null>");
    return get_str(&branch);
  };

  BOOST_TEST(str_field(&rec, "event_id") == "evt-1");
  avro_value_t f;
  BOOST_REQUIRE(avro_value_get_by_name(&rec, "event_type", &f, nullptr) == 0);
  int sym = -1;
  BOOST_REQUIRE(avro_value_get_enum(&f, &sym) == 0);
  BOOST_TEST(sym == 2); // share_item_added
  BOOST_TEST(str_field(&rec, "wishlist_id") == "6f1c2a9e-0000-4000-8000-000000000001");
  BOOST_TEST(str_field(&rec, "user_id") == "6f1c2a9e-0000-4000-8000-000000000002");
  BOOST_TEST(str_field(&rec, "share_token") == "tok_ABC");
  BOOST_TEST(opt_field(&rec, "share_channel") == "email");
  BOOST_REQUIRE(avro_value_get_by_name(&rec, "item_count", &f, nullptr) == 0);
  int32_t count = -1;
  BOOST_REQUIRE(avro_value_get_int(&f, &count) == 0);
  BOOST_TEST(count == 3);
  BOOST_TEST(opt_field(&rec, "recipient_user_id") == "6f1c2a9e-0000-4000-8000-000000000003");
  BOOST_TEST(str_field(&rec, "timestamp") == "2025-09-16T10:22:14.551Z");
  avro_value_t meta;
  BOOST_REQUIRE(avro_value_get_by_name(&rec, "metadata", &meta, nullptr) == 0);
  BOOST_TEST(opt_field(&meta, "user_agent") == "Mozilla/5.0 \"x\"");
  BOOST_TEST(opt_field(&meta, "referrer") == "<null>");
  BOOST_TEST(opt_field(&meta, "country") == "DE");

  // And the reverse direction: libavro writes, we decode.
  char buf[512];
  avro_writer_t writer = avro_writer_memory(buf, sizeof buf);
  BOOST_REQUIRE(avro_value_write(writer, &rec) == 0);
  std::string theirs(buf, static_cast<size_t>(avro_writer_tell(writer)));
  BOOST_TEST(hex(theirs) == hex(body));
  std::string json;
  BOOST_REQUIRE_MESSAGE(s->decode(framed.substr(0, 10) + theirs, json, err), err);
  BOOST_TEST(json == share_json);

  // libavro consumed exactly the body: reading another value must fail.
  BOOST_TEST(avro_value_read(reader, &rec) != 0);

  avro_writer_free(writer);
  avro_reader_free(reader);
  avro_value_decref(&rec);
  avro_value_iface_decref(iface);
  avro_schema_decref(schema);
}
