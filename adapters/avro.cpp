// Schema-driven Avro codec (see avro.hpp). Hand-written: the .avsc is parsed
// with simdjson into a small tree of nodes; encode walks the tree together
// with a simdjson DOM of the input JSON, decode walks it over the binary body
// and writes compact JSON.
//
// Supported: null, boolean, int, long, float, double, bytes (as a JSON
// string, byte for byte), string, record, enum, array, map, fixed (as a JSON
// string of `size` bytes), union; named-type references, namespaces and
// fullnames. Logical types are encoded as their underlying type.
//
// JSON mapping: plain JSON values (no Avro-JSON union wrapping on output; on
// input a single-key {"<branch type>": value} wrapper is accepted for unions
// without record/map branches). Fields of the input object that the schema
// does not know are ignored.

#include "adapters/avro.hpp"
#include "adapters/json.hpp"

#include <simdjson.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

namespace vantage {

extern const std::map<std::string, std::string_view>& builtin_avro_schemas();

namespace {

// -- CRC-64-AVRO ------------------------------------------------------------

constexpr uint64_t fp_empty = 0xc15d213aa4d7a795ULL;

struct fp_table {
  uint64_t t[256];
  fp_table() {
    for (int i = 0; i < 256; ++i) {
      uint64_t fp = static_cast<uint64_t>(i);
      for (int j = 0; j < 8; ++j)
        fp = (fp >> 1) ^ (fp_empty & (0 - (fp & 1ULL)));
      t[i] = fp;
    }
  }
};

uint64_t rabin64(std::string_view data) {
  static const fp_table table;
  uint64_t fp = fp_empty;
  for (unsigned char c : data)
    fp = (fp >> 8) ^ table.t[(fp ^ c) & 0xff];
  return fp;
}

// -- JSON output helpers ------------------------------------------------------

void json_escape(std::string& out, std::string_view s) {
  out += json_quote(s);
}

void json_double(std::string& out, double d, int digits) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", digits, d);
  out += buf;
  // Keep it a JSON number that reads back as floating point.
  if (std::strpbrk(buf, ".eEn") == nullptr)
    out += ".0";
}

// -- schema tree --------------------------------------------------------------

enum class kind {
  null_t,
  boolean_t,
  int_t,
  long_t,
  float_t,
  double_t,
  bytes_t,
  string_t,
  record_t,
  enum_t,
  array_t,
  map_t,
  union_t,
  fixed_t,
};

struct node;

struct field {
  std::string name;
  node* type = nullptr;
  bool has_default = false;
  simdjson::dom::element default_value;
};

struct node {
  kind k = kind::null_t;
  std::string fullname;              // named types
  std::vector<field> fields;         // record
  std::vector<std::string> symbols;  // enum
  node* items = nullptr;             // array / map values
  std::vector<node*> branches;       // union
  size_t size = 0;                   // fixed
  int null_branch = -1;              // union: index of "null", if any
};

const char* primitive_name(kind k) {
  switch (k) {
    case kind::null_t: return "null";
    case kind::boolean_t: return "boolean";
    case kind::int_t: return "int";
    case kind::long_t: return "long";
    case kind::float_t: return "float";
    case kind::double_t: return "double";
    case kind::bytes_t: return "bytes";
    case kind::string_t: return "string";
    default: return nullptr;
  }
}

bool primitive_kind(std::string_view name, kind& k) {
  static const std::pair<const char*, kind> table[] = {
    {"null", kind::null_t},     {"boolean", kind::boolean_t},
    {"int", kind::int_t},       {"long", kind::long_t},
    {"float", kind::float_t},   {"double", kind::double_t},
    {"bytes", kind::bytes_t},   {"string", kind::string_t},
  };
  for (auto& [n, kk] : table)
    if (name == n) {
      k = kk;
      return true;
    }
  return false;
}

bool valid_name_part(std::string_view s) {
  if (s.empty())
    return false;
  auto c0 = static_cast<unsigned char>(s[0]);
  if (!(std::isalpha(c0) || c0 == '_'))
    return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_'))
      return false;
  return true;
}

bool valid_fullname(std::string_view s) {
  size_t start = 0;
  for (;;) {
    auto dot = s.find('.', start);
    auto part = s.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!valid_name_part(part))
      return false;
    if (dot == std::string_view::npos)
      return true;
    start = dot + 1;
  }
}

// -- parser -------------------------------------------------------------------

class schema_builder {
public:
  std::vector<std::unique_ptr<node>>& nodes;
  std::map<std::string, node*>& named;
  std::string err;

  schema_builder(std::vector<std::unique_ptr<node>>& n,
                 std::map<std::string, node*>& m)
    : nodes(n), named(m) {
  }

  node* make(kind k) {
    nodes.push_back(std::make_unique<node>());
    nodes.back()->k = k;
    return nodes.back().get();
  }

  node* primitive(kind k) {
    return make(k);
  }

  // Parses `el` in namespace `ns`; appends its canonical form to `pcf`.
  node* parse(simdjson::dom::element el, const std::string& ns,
              std::string& pcf, const std::string& where) {
    using simdjson::dom::element_type;
    switch (el.type()) {
      case element_type::STRING: {
        std::string_view name = el.get_string().value_unsafe();
        return reference(name, ns, pcf, where);
      }
      case element_type::ARRAY:
        return parse_union(el.get_array().value_unsafe(), ns, pcf, where);
      case element_type::OBJECT:
        return parse_object(el.get_object().value_unsafe(), ns, pcf, where);
      default:
        err = where + ": a schema must be a string, array or object";
        return nullptr;
    }
  }

  node* reference(std::string_view name, const std::string& ns,
                  std::string& pcf, const std::string& where) {
    kind k;
    if (primitive_kind(name, k)) {
      pcf += '"';
      pcf += name;
      pcf += '"';
      return primitive(k);
    }
    std::string full;
    node* found = nullptr;
    if (name.find('.') != std::string_view::npos) {
      full = std::string{name};
      auto i = named.find(full);
      if (i != named.end())
        found = i->second;
    } else {
      if (!ns.empty()) {
        full = ns + "." + std::string{name};
        auto i = named.find(full);
        if (i != named.end())
          found = i->second;
      }
      if (!found) {
        auto i = named.find(std::string{name});
        if (i != named.end()) {
          found = i->second;
          full = std::string{name};
        }
      }
    }
    if (!found) {
      err = where + ": unknown type '" + std::string{name} + "'";
      return nullptr;
    }
    json_escape(pcf, full);
    return found;
  }

  node* parse_union(simdjson::dom::array arr, const std::string& ns,
                    std::string& pcf, const std::string& where) {
    node* u = make(kind::union_t);
    pcf += '[';
    bool first = true;
    for (auto item : arr) {
      if (item.type() == simdjson::dom::element_type::ARRAY) {
        err = where + ": a union may not directly contain a union";
        return nullptr;
      }
      if (!first)
        pcf += ',';
      first = false;
      node* b = parse(item, ns, pcf, where + "[" + std::to_string(u->branches.size()) + "]");
      if (!b)
        return nullptr;
      // Unnamed types may appear only once in a union.
      for (auto* other : u->branches) {
        bool dup = false;
        if (b->fullname.empty() && other->fullname.empty())
          dup = b->k == other->k;
        else if (!b->fullname.empty())
          dup = b->fullname == other->fullname;
        if (dup) {
          err = where + ": duplicate type in union";
          return nullptr;
        }
      }
      if (b->k == kind::null_t)
        u->null_branch = static_cast<int>(u->branches.size());
      u->branches.push_back(b);
    }
    pcf += ']';
    return u;
  }

  bool get_string_attr(simdjson::dom::object obj, const char* key,
                       std::string_view& out) {
    simdjson::dom::element e;
    if (obj.at_key(key).get(e))
      return false;
    return !e.get_string().get(out);
  }

  // Resolves name + namespace of a named type; registers it.
  bool define_name(simdjson::dom::object obj, const std::string& ns,
                   node* n, std::string& new_ns, const std::string& where) {
    std::string_view name;
    if (!get_string_attr(obj, "name", name)) {
      err = where + ": named type without a string 'name'";
      return false;
    }
    std::string full;
    if (name.find('.') != std::string_view::npos) {
      full = std::string{name};
    } else {
      std::string_view explicit_ns;
      simdjson::dom::element nse;
      bool has_ns = !obj.at_key("namespace").get(nse);
      if (has_ns && !nse.is_null()) {
        if (nse.get_string().get(explicit_ns)) {
          err = where + ": 'namespace' must be a string";
          return false;
        }
        full = explicit_ns.empty() ? std::string{name}
                                   : std::string{explicit_ns} + "." + std::string{name};
      } else {
        full = ns.empty() ? std::string{name} : ns + "." + std::string{name};
      }
    }
    if (!valid_fullname(full)) {
      err = where + ": invalid name '" + full + "'";
      return false;
    }
    kind dummy;
    auto last = full.rfind('.');
    std::string simple = last == std::string::npos ? full : full.substr(last + 1);
    if (primitive_kind(simple, dummy) && last == std::string::npos) {
      err = where + ": '" + full + "' redefines a primitive type";
      return false;
    }
    if (named.count(full)) {
      err = where + ": type '" + full + "' defined twice";
      return false;
    }
    n->fullname = full;
    named[full] = n;
    new_ns = last == std::string::npos ? std::string{} : full.substr(0, last);
    return true;
  }

  node* parse_object(simdjson::dom::object obj, const std::string& ns,
                     std::string& pcf, const std::string& where) {
    std::string_view type;
    simdjson::dom::element te;
    if (obj.at_key("type").get(te)) {
      err = where + ": schema object without 'type'";
      return nullptr;
    }
    if (te.type() != simdjson::dom::element_type::STRING)
      return parse(te, ns, pcf, where); // {"type": {...}} or {"type": [...]}
    type = te.get_string().value_unsafe();
    kind k;
    if (primitive_kind(type, k)) {
      pcf += '"';
      pcf += type;
      pcf += '"';
      return primitive(k);
    }
    if (type == "record" || type == "error")
      return parse_record(obj, ns, pcf, where);
    if (type == "enum")
      return parse_enum(obj, ns, pcf, where);
    if (type == "fixed")
      return parse_fixed(obj, ns, pcf, where);
    if (type == "array" || type == "map") {
      bool is_array = type == "array";
      node* n = make(is_array ? kind::array_t : kind::map_t);
      simdjson::dom::element sub;
      if (obj.at_key(is_array ? "items" : "values").get(sub)) {
        err = where + ": " + std::string{type} + " without '"
              + (is_array ? "items" : "values") + "'";
        return nullptr;
      }
      pcf += is_array ? "{\"type\":\"array\",\"items\":" : "{\"type\":\"map\",\"values\":";
      n->items = parse(sub, ns, pcf, where + (is_array ? ".items" : ".values"));
      if (!n->items)
        return nullptr;
      pcf += '}';
      return n;
    }
    // A reference written as {"type": "com.x.Name"}.
    return reference(type, ns, pcf, where);
  }

  node* parse_record(simdjson::dom::object obj, const std::string& ns,
                     std::string& pcf, const std::string& where) {
    node* n = make(kind::record_t);
    std::string inner_ns;
    if (!define_name(obj, ns, n, inner_ns, where))
      return nullptr;
    simdjson::dom::array fields;
    if (obj.at_key("fields").get_array().get(fields)) {
      err = where + ": record '" + n->fullname + "' without a 'fields' array";
      return nullptr;
    }
    pcf += "{\"name\":";
    json_escape(pcf, n->fullname);
    pcf += ",\"type\":\"record\",\"fields\":[";
    bool first = true;
    for (auto fe : fields) {
      simdjson::dom::object fo;
      if (fe.get_object().get(fo)) {
        err = where + ": record field must be an object";
        return nullptr;
      }
      field f;
      std::string_view fname;
      if (!get_string_attr(fo, "name", fname) || !valid_name_part(fname)) {
        err = where + ": record field without a valid 'name'";
        return nullptr;
      }
      f.name = std::string{fname};
      for (auto& other : n->fields)
        if (other.name == f.name) {
          err = where + ": field '" + f.name + "' defined twice";
          return nullptr;
        }
      simdjson::dom::element ft;
      if (fo.at_key("type").get(ft)) {
        err = where + ": field '" + f.name + "' without 'type'";
        return nullptr;
      }
      if (!first)
        pcf += ',';
      first = false;
      pcf += "{\"name\":";
      json_escape(pcf, f.name);
      pcf += ",\"type\":";
      f.type = parse(ft, inner_ns, pcf, n->fullname + "." + f.name);
      if (!f.type)
        return nullptr;
      pcf += '}';
      simdjson::dom::element def;
      if (!fo.at_key("default").get(def)) {
        f.has_default = true;
        f.default_value = def;
      }
      n->fields.push_back(std::move(f));
    }
    pcf += "]}";
    return n;
  }

  node* parse_enum(simdjson::dom::object obj, const std::string& ns,
                   std::string& pcf, const std::string& where) {
    node* n = make(kind::enum_t);
    std::string inner_ns;
    if (!define_name(obj, ns, n, inner_ns, where))
      return nullptr;
    simdjson::dom::array syms;
    if (obj.at_key("symbols").get_array().get(syms)) {
      err = where + ": enum '" + n->fullname + "' without a 'symbols' array";
      return nullptr;
    }
    pcf += "{\"name\":";
    json_escape(pcf, n->fullname);
    pcf += ",\"type\":\"enum\",\"symbols\":[";
    for (auto s : syms) {
      std::string_view sv;
      if (s.get_string().get(sv) || !valid_name_part(sv)) {
        err = where + ": enum '" + n->fullname + "' has an invalid symbol";
        return nullptr;
      }
      for (auto& other : n->symbols)
        if (other == sv) {
          err = where + ": enum '" + n->fullname + "' repeats a symbol";
          return nullptr;
        }
      if (!n->symbols.empty())
        pcf += ',';
      json_escape(pcf, sv);
      n->symbols.emplace_back(sv);
    }
    pcf += "]}";
    return n;
  }

  node* parse_fixed(simdjson::dom::object obj, const std::string& ns,
                    std::string& pcf, const std::string& where) {
    node* n = make(kind::fixed_t);
    std::string inner_ns;
    if (!define_name(obj, ns, n, inner_ns, where))
      return nullptr;
    int64_t size = -1;
    if (obj.at_key("size").get_int64().get(size) || size < 0) {
      err = where + ": fixed '" + n->fullname + "' without a valid 'size'";
      return nullptr;
    }
    n->size = static_cast<size_t>(size);
    pcf += "{\"name\":";
    json_escape(pcf, n->fullname);
    pcf += ",\"type\":\"fixed\",\"size\":";
    pcf += std::to_string(size);
    pcf += '}';
    return n;
  }
};

// -- binary writer ------------------------------------------------------------

void put_long(std::string& out, int64_t v) {
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  while (z & ~0x7fULL) {
    out += static_cast<char>((z & 0x7f) | 0x80);
    z >>= 7;
  }
  out += static_cast<char>(z);
}

void put_bytes(std::string& out, std::string_view s) {
  put_long(out, static_cast<int64_t>(s.size()));
  out.append(s.data(), s.size());
}

const char* json_type_name(simdjson::dom::element_type t) {
  using simdjson::dom::element_type;
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "?";
}

struct encoder {
  std::string& out;
  std::string& err;

  bool fail(const std::string& path, const std::string& msg) {
    err = "field '" + (path.empty() ? std::string{"<root>"} : path) + "': " + msg;
    return false;
  }

  bool mismatch(const std::string& path, const node* n,
                simdjson::dom::element v) {
    std::string expected = n->fullname.empty()
                             ? (primitive_name(n->k) ? primitive_name(n->k)
                                : n->k == kind::array_t ? "array"
                                : n->k == kind::map_t   ? "map"
                                                        : "union")
                             : n->fullname;
    return fail(path, std::string{"expected "} + expected + ", got "
                        + json_type_name(v.type()));
  }

  // Whether JSON value `v` could be encoded with `n` (for union branches).
  static bool matches(const node* n, simdjson::dom::element v) {
    using simdjson::dom::element_type;
    auto t = v.type();
    switch (n->k) {
      case kind::null_t: return t == element_type::NULL_VALUE;
      case kind::boolean_t: return t == element_type::BOOL;
      case kind::int_t: {
        int64_t i;
        return (t == element_type::INT64 || t == element_type::UINT64)
               && !v.get_int64().get(i) && i >= std::numeric_limits<int32_t>::min()
               && i <= std::numeric_limits<int32_t>::max();
      }
      case kind::long_t: {
        int64_t i;
        return (t == element_type::INT64 || t == element_type::UINT64)
               && !v.get_int64().get(i);
      }
      case kind::float_t:
      case kind::double_t:
        return t == element_type::INT64 || t == element_type::UINT64
               || t == element_type::DOUBLE;
      case kind::bytes_t:
      case kind::string_t: return t == element_type::STRING;
      case kind::fixed_t: {
        std::string_view s;
        return !v.get_string().get(s) && s.size() == n->size;
      }
      case kind::enum_t: {
        std::string_view s;
        if (v.get_string().get(s))
          return false;
        for (auto& sym : n->symbols)
          if (sym == s)
            return true;
        return false;
      }
      case kind::array_t: return t == element_type::ARRAY;
      case kind::map_t:
      case kind::record_t: return t == element_type::OBJECT;
      case kind::union_t: return false;
    }
    return false;
  }

  static std::string branch_name(const node* n) {
    if (!n->fullname.empty())
      return n->fullname;
    if (auto p = primitive_name(n->k))
      return p;
    return n->k == kind::array_t ? "array" : "map";
  }

  bool encode(const node* n, simdjson::dom::element v, const std::string& path) {
    using simdjson::dom::element_type;
    switch (n->k) {
      case kind::null_t:
        if (!v.is_null())
          return mismatch(path, n, v);
        return true;
      case kind::boolean_t: {
        bool b;
        if (v.get_bool().get(b))
          return mismatch(path, n, v);
        out += static_cast<char>(b ? 1 : 0);
        return true;
      }
      case kind::int_t:
      case kind::long_t: {
        int64_t i;
        auto t = v.type();
        if ((t != element_type::INT64 && t != element_type::UINT64)
            || v.get_int64().get(i))
          return n->k == kind::int_t && t == element_type::UINT64
                   ? fail(path, "integer out of range for int")
                   : mismatch(path, n, v);
        if (n->k == kind::int_t
            && (i < std::numeric_limits<int32_t>::min()
                || i > std::numeric_limits<int32_t>::max()))
          return fail(path, "integer out of range for int");
        put_long(out, i);
        return true;
      }
      case kind::float_t:
      case kind::double_t: {
        double d;
        auto t = v.type();
        if (t == element_type::INT64)
          d = static_cast<double>(v.get_int64().value_unsafe());
        else if (t == element_type::UINT64)
          d = static_cast<double>(v.get_uint64().value_unsafe());
        else if (t == element_type::DOUBLE)
          d = v.get_double().value_unsafe();
        else
          return mismatch(path, n, v);
        if (n->k == kind::float_t) {
          float f = static_cast<float>(d);
          char buf[4];
          std::memcpy(buf, &f, 4); // little-endian host (x86-64 / arm64)
          out.append(buf, 4);
        } else {
          char buf[8];
          std::memcpy(buf, &d, 8);
          out.append(buf, 8);
        }
        return true;
      }
      case kind::bytes_t:
      case kind::string_t: {
        std::string_view s;
        if (v.get_string().get(s))
          return mismatch(path, n, v);
        put_bytes(out, s);
        return true;
      }
      case kind::fixed_t: {
        std::string_view s;
        if (v.get_string().get(s))
          return mismatch(path, n, v);
        if (s.size() != n->size)
          return fail(path, "fixed " + n->fullname + " needs "
                              + std::to_string(n->size) + " bytes");
        out.append(s.data(), s.size());
        return true;
      }
      case kind::enum_t: {
        std::string_view s;
        if (v.get_string().get(s))
          return mismatch(path, n, v);
        for (size_t i = 0; i < n->symbols.size(); ++i)
          if (n->symbols[i] == s) {
            put_long(out, static_cast<int64_t>(i));
            return true;
          }
        return fail(path, "'" + std::string{s} + "' is not a symbol of "
                            + n->fullname);
      }
      case kind::array_t: {
        simdjson::dom::array arr;
        if (v.get_array().get(arr))
          return mismatch(path, n, v);
        size_t count = arr.size();
        if (count > 0) {
          put_long(out, static_cast<int64_t>(count));
          size_t i = 0;
          for (auto item : arr) {
            if (!encode(n->items, item, path + "[" + std::to_string(i) + "]"))
              return false;
            ++i;
          }
        }
        put_long(out, 0);
        return true;
      }
      case kind::map_t: {
        simdjson::dom::object obj;
        if (v.get_object().get(obj))
          return mismatch(path, n, v);
        size_t count = obj.size();
        if (count > 0) {
          put_long(out, static_cast<int64_t>(count));
          for (auto [key, value] : obj) {
            put_bytes(out, key);
            if (!encode(n->items, value,
                        path + "[" + std::string{key} + "]"))
              return false;
          }
        }
        put_long(out, 0);
        return true;
      }
      case kind::union_t: {
        for (size_t i = 0; i < n->branches.size(); ++i)
          if (matches(n->branches[i], v)) {
            put_long(out, static_cast<int64_t>(i));
            return encode(n->branches[i], v, path);
          }
        // Avro-JSON style wrapper: {"string": "x"}.
        simdjson::dom::object obj;
        bool has_object_branch = false;
        for (auto* b : n->branches)
          has_object_branch |= b->k == kind::record_t || b->k == kind::map_t;
        if (!has_object_branch && !v.get_object().get(obj) && obj.size() == 1) {
          for (auto [key, value] : obj)
            for (size_t i = 0; i < n->branches.size(); ++i)
              if (branch_name(n->branches[i]) == key) {
                put_long(out, static_cast<int64_t>(i));
                return encode(n->branches[i], value, path);
              }
        }
        std::string names;
        for (auto* b : n->branches)
          names += (names.empty() ? "" : ", ") + branch_name(b);
        return fail(path, std::string{"value ("} + json_type_name(v.type())
                            + ") matches no branch of [" + names + "]");
      }
      case kind::record_t: {
        simdjson::dom::object obj;
        if (v.get_object().get(obj))
          return mismatch(path, n, v);
        for (auto& f : n->fields) {
          std::string fpath = path.empty() ? f.name : path + "." + f.name;
          simdjson::dom::element fv;
          if (!obj.at_key(f.name).get(fv)) {
            if (!encode(f.type, fv, fpath))
              return false;
          } else if (f.has_default) {
            if (!encode_default(f.type, f.default_value, fpath))
              return false;
          } else if (f.type->k == kind::union_t && f.type->null_branch >= 0) {
            put_long(out, f.type->null_branch);
          } else if (f.type->k == kind::null_t) {
            // nothing to write
          } else {
            return fail(fpath, "missing required field");
          }
        }
        return true;
      }
    }
    return false;
  }

  // A default value for a union is for its first branch (Avro spec).
  bool encode_default(const node* n, simdjson::dom::element v,
                      const std::string& path) {
    if (n->k == kind::union_t) {
      if (n->branches.empty())
        return fail(path, "default for an empty union");
      put_long(out, 0);
      return encode_default(n->branches[0], v, path);
    }
    if (n->k == kind::record_t) {
      // Record defaults may themselves omit fields that have defaults.
      return encode(n, v, path);
    }
    return encode(n, v, path);
  }
};

// -- binary reader --------------------------------------------------------------

struct decoder {
  const unsigned char* p;
  const unsigned char* end;
  std::string& out;
  std::string& err;
  int depth = 0;

  bool truncated() {
    err = "truncated Avro body";
    return false;
  }

  bool get_long(int64_t& v) {
    uint64_t z = 0;
    int shift = 0;
    for (;;) {
      if (p == end)
        return truncated();
      unsigned char b = *p++;
      if (shift == 63 && (b & 0x7e)) {
        err = "varint overflow";
        return false;
      }
      z |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80))
        break;
      shift += 7;
      if (shift > 63) {
        err = "varint too long";
        return false;
      }
    }
    v = static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
    return true;
  }

  bool get_len(size_t& len) {
    int64_t l;
    if (!get_long(l))
      return false;
    if (l < 0) {
      err = "negative length";
      return false;
    }
    if (static_cast<uint64_t>(l) > static_cast<uint64_t>(end - p))
      return truncated();
    len = static_cast<size_t>(l);
    return true;
  }

  // Reads a block count; negative counts are followed by a byte size.
  bool get_block(int64_t& count) {
    if (!get_long(count))
      return false;
    if (count < 0) {
      if (count == std::numeric_limits<int64_t>::min()) {
        err = "bad block count";
        return false;
      }
      count = -count;
      int64_t bytes;
      if (!get_long(bytes))
        return false;
    }
    // Every item takes at least... zero bytes (null items), so bound loosely.
    if (count > (int64_t{1} << 32)) {
      err = "block count too large";
      return false;
    }
    return true;
  }

  bool decode(const node* n) {
    if (++depth > 256) {
      err = "nesting too deep";
      return false;
    }
    bool ok = decode_inner(n);
    --depth;
    return ok;
  }

  bool decode_inner(const node* n) {
    switch (n->k) {
      case kind::null_t:
        out += "null";
        return true;
      case kind::boolean_t:
        if (p == end)
          return truncated();
        if (*p > 1) {
          err = "bad boolean byte";
          return false;
        }
        out += *p++ ? "true" : "false";
        return true;
      case kind::int_t:
      case kind::long_t: {
        int64_t v;
        if (!get_long(v))
          return false;
        if (n->k == kind::int_t
            && (v < std::numeric_limits<int32_t>::min()
                || v > std::numeric_limits<int32_t>::max())) {
          err = "int out of range";
          return false;
        }
        out += std::to_string(v);
        return true;
      }
      case kind::float_t: {
        if (end - p < 4)
          return truncated();
        float f;
        std::memcpy(&f, p, 4);
        p += 4;
        json_double(out, f, 9);
        return true;
      }
      case kind::double_t: {
        if (end - p < 8)
          return truncated();
        double d;
        std::memcpy(&d, p, 8);
        p += 8;
        json_double(out, d, 17);
        return true;
      }
      case kind::bytes_t:
      case kind::string_t: {
        size_t len;
        if (!get_len(len))
          return false;
        json_escape(out, {reinterpret_cast<const char*>(p), len});
        p += len;
        return true;
      }
      case kind::fixed_t: {
        if (static_cast<size_t>(end - p) < n->size)
          return truncated();
        json_escape(out, {reinterpret_cast<const char*>(p), n->size});
        p += n->size;
        return true;
      }
      case kind::enum_t: {
        int64_t i;
        if (!get_long(i))
          return false;
        if (i < 0 || static_cast<uint64_t>(i) >= n->symbols.size()) {
          err = "enum index " + std::to_string(i) + " out of range for "
                + n->fullname;
          return false;
        }
        json_escape(out, n->symbols[static_cast<size_t>(i)]);
        return true;
      }
      case kind::array_t:
      case kind::map_t: {
        bool is_map = n->k == kind::map_t;
        out += is_map ? '{' : '[';
        bool first = true;
        for (;;) {
          int64_t count;
          if (!get_block(count))
            return false;
          if (count == 0)
            break;
          for (int64_t i = 0; i < count; ++i) {
            if (!first)
              out += ',';
            first = false;
            if (is_map) {
              size_t len;
              if (!get_len(len))
                return false;
              json_escape(out, {reinterpret_cast<const char*>(p), len});
              p += len;
              out += ':';
            }
            if (!decode(n->items))
              return false;
          }
        }
        out += is_map ? '}' : ']';
        return true;
      }
      case kind::union_t: {
        int64_t i;
        if (!get_long(i))
          return false;
        if (i < 0 || static_cast<uint64_t>(i) >= n->branches.size()) {
          err = "union branch " + std::to_string(i) + " out of range";
          return false;
        }
        return decode(n->branches[static_cast<size_t>(i)]);
      }
      case kind::record_t: {
        out += '{';
        bool first = true;
        for (auto& f : n->fields) {
          if (!first)
            out += ',';
          first = false;
          json_escape(out, f.name);
          out += ':';
          if (!decode(f.type))
            return false;
        }
        out += '}';
        return true;
      }
    }
    return false;
  }
};

// -- codec ------------------------------------------------------------------------

class codec_impl final : public avro_codec {
public:
  bool init(std::string_view avsc, std::string& err) {
    parser_ = std::make_unique<simdjson::dom::parser>();
    simdjson::dom::element doc;
    if (auto e = parser_->parse(avsc.data(), avsc.size()).get(doc)) {
      err = std::string{"schema is not valid JSON: "} + simdjson::error_message(e);
      return false;
    }
    schema_builder b{nodes_, named_};
    root_ = b.parse(doc, "", pcf_, "schema");
    if (!root_) {
      err = b.err;
      return false;
    }
    // Check defaults now so encode cannot fail on them later.
    for (auto& n : nodes_)
      if (n->k == kind::record_t)
        for (auto& f : n->fields)
          if (f.has_default) {
            std::string scratch, e2;
            encoder enc{scratch, e2};
            if (!enc.encode_default(f.type, f.default_value, f.name)) {
              err = "bad default in " + n->fullname + ": " + e2;
              return false;
            }
          }
    name_ = root_->fullname.empty() ? pcf_ : root_->fullname;
    fp_ = rabin64(pcf_);
    header_.assign("\xC3\x01", 2);
    for (int i = 0; i < 8; ++i)
      header_ += static_cast<char>((fp_ >> (8 * i)) & 0xff);
    return true;
  }

  const std::string& full_name() const override {
    return name_;
  }

  const std::string& canonical_form() const override {
    return pcf_;
  }

  uint64_t fingerprint() const override {
    return fp_;
  }

  bool encode(std::string_view json, std::string& out,
              std::string& err) const override {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto e = parser.parse(json.data(), json.size()).get(doc)) {
      err = std::string{"input is not valid JSON: "} + simdjson::error_message(e);
      return false;
    }
    std::string buf = header_;
    encoder enc{buf, err};
    if (!enc.encode(root_, doc, ""))
      return false;
    out = std::move(buf);
    return true;
  }

  bool decode(std::string_view framed, std::string& json_out,
              std::string& err) const override {
    if (framed.size() < 2 || static_cast<unsigned char>(framed[0]) != 0xC3
        || static_cast<unsigned char>(framed[1]) != 0x01) {
      err = "not Avro single-object encoding (bad magic)";
      return false;
    }
    if (framed.size() < 10) {
      err = "truncated single-object header";
      return false;
    }
    uint64_t fp = 0;
    for (int i = 0; i < 8; ++i)
      fp |= static_cast<uint64_t>(static_cast<unsigned char>(framed[2 + i])) << (8 * i);
    if (fp != fp_) {
      char buf[80];
      std::snprintf(buf, sizeof buf, "schema fingerprint %016llx is not %016llx",
                    static_cast<unsigned long long>(fp),
                    static_cast<unsigned long long>(fp_));
      err = buf;
      return false;
    }
    std::string out;
    auto* begin = reinterpret_cast<const unsigned char*>(framed.data()) + 10;
    decoder dec{begin, begin + (framed.size() - 10), out, err};
    if (!dec.decode(root_))
      return false;
    if (dec.p != dec.end) {
      err = std::to_string(dec.end - dec.p) + " trailing bytes after the Avro body";
      return false;
    }
    json_out = std::move(out);
    return true;
  }

private:
  std::unique_ptr<simdjson::dom::parser> parser_; // owns default values
  std::vector<std::unique_ptr<node>> nodes_;
  std::map<std::string, node*> named_;
  node* root_ = nullptr;
  std::string pcf_;
  std::string name_;
  uint64_t fp_ = 0;
  std::string header_;
};

} // namespace

std::unique_ptr<avro_codec> avro_codec::parse(std::string_view avsc_json,
                                              std::string& err) {
  auto c = std::make_unique<codec_impl>();
  if (!c->init(avsc_json, err))
    return nullptr;
  return c;
}

std::unique_ptr<avro_codec> avro_codec::builtin(const std::string& name,
                                                std::string& err) {
  auto& table = builtin_avro_schemas();
  auto i = table.find(name);
  if (i == table.end()) {
    err = "no built-in Avro schema '" + name + "' (schemas/avro/" + name + ".avsc)";
    return nullptr;
  }
  std::string e;
  auto c = parse(i->second, e);
  if (!c)
    err = "schemas/avro/" + name + ".avsc: " + e;
  return c;
}

} // namespace vantage
