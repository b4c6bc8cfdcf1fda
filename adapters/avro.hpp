#pragma once

// Avro values for Kafka, framed in Avro single-object encoding:
// C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the schema's
// Parsing Canonical Form | binary-encoded body.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace vantage {

/// One schema from schemas/avro and the codec for its records. Records are
/// given and returned as JSON objects (the outbox stores JSON, the wire
/// carries Avro).
class avro_codec {
public:
  virtual ~avro_codec() = default;

  /// Parses an .avsc document. Returns nullptr and sets `err` on failure.
  static std::unique_ptr<avro_codec> parse(std::string_view avsc_json,
                                           std::string& err);

  /// Loads a schema by name (file stem in schemas/avro, e.g.
  /// "wishlist_social_event"). The schemas are compiled into the binary.
  static std::unique_ptr<avro_codec> builtin(const std::string& name,
                                             std::string& err);

  /// Full name of the record schema, e.g. "com.vantage.social.ShareEvent".
  virtual const std::string& full_name() const = 0;

  /// Parsing Canonical Form of the schema.
  virtual const std::string& canonical_form() const = 0;

  /// CRC-64-AVRO (Rabin) fingerprint of the canonical form.
  virtual uint64_t fingerprint() const = 0;

  /// Encodes a JSON object as a single-object-framed Avro value. Missing
  /// nullable fields encode as null; missing fields with defaults use the
  /// default. Returns false and sets `err` on a field that does not fit.
  virtual bool encode(std::string_view json_object, std::string& out,
                      std::string& err) const
    = 0;

  /// Decodes a framed value back into a JSON object. Fails on a wrong magic,
  /// fingerprint or truncated body.
  virtual bool decode(std::string_view framed, std::string& json_out,
                      std::string& err) const
    = 0;
};

} // namespace vantage
