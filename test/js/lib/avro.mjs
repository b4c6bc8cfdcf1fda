// Avro single-object encoding, checked independently of the C++ code:
// the Parsing Canonical Form comes from avsc (npm), the CRC-64-AVRO
// fingerprint from the Avro specification's Rabin algorithm written here.
import fs from 'node:fs';
import avsc from 'avsc';

const EMPTY = 0xc15d213aa4d7a795n;
const MASK = (1n << 64n) - 1n;

const FP_TABLE = (() => {
  const t = new Array(256);
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n) & MASK);
    t[i] = fp & MASK;
  }
  return t;
})();

// CRC-64-AVRO (Rabin) of the UTF-8 bytes of s, as an unsigned BigInt.
export function crc64Avro(s) {
  let fp = EMPTY;
  for (const b of Buffer.from(s, 'utf8')) fp = (fp >> 8n) ^ FP_TABLE[Number((fp ^ BigInt(b)) & 0xffn)];
  return fp & MASK;
}

// Vectors from the Avro project's share/test/data/schema-tests.txt
// (fingerprints as the signed Java longs printed there).
const SPEC_VECTORS = [
  ['"null"', '"null"', 7195948357588979594n],
  ['"int"', '"int"', 8247732601305521295n],
  ['{"type":"string"}', '"string"', -8142146995180207161n],
  ['[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090n],
  ['{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
    '{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771n],
  ['{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":true},'
    + '{"order":"descending","name":"f2","doc":"Hello","type":"int"}], "type":"record", "name":"foo"}',
  '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}',
  -4860222112080293046n],
  ['{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}',
    '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}', -4448647247586288245n],
  ['{"name":"PigValue","type":"record","fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
    '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
    -1759257747318642341n],
];

// avsc's Parsing Canonical Form: Type#schema() without exportAttrs keeps only
// the canonical attributes, full names, in canonical order. (In avsc 5.7
// Type#toString() prints a named type as its bare name, so it is not used.)
export function canonicalForm(type) {
  return JSON.stringify(type.schema());
}

// Throws unless avsc's canonical form and crc64Avro reproduce the spec's
// vectors (so a wrong expectation cannot make the real check pass).
export function selfCheck() {
  for (const [input, canonical, signed] of SPEC_VECTORS) {
    const got = canonicalForm(avsc.Type.forSchema(JSON.parse(input)));
    if (got !== canonical) throw new Error(`avsc canonical form of ${input}: ${got}, spec says ${canonical}`);
    const fp = crc64Avro(canonical);
    const want = BigInt.asUintN(64, signed);
    if (fp !== want) throw new Error(`CRC-64-AVRO of ${canonical}: ${fp.toString(16)}, spec says ${want.toString(16)}`);
  }
  return SPEC_VECTORS.length;
}

export function loadSchema(file) {
  const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
  const type = avsc.Type.forSchema(schema);
  const canonical = canonicalForm(type);
  const fingerprint = crc64Avro(canonical);
  const fpBytes = Buffer.alloc(8);
  fpBytes.writeBigUInt64LE(fingerprint);
  return { type, canonical, fingerprint, fpBytes };
}

// Decodes one single-object encoded value; throws with the reason when the
// marker, the fingerprint or the body is wrong (trailing bytes included).
export function decodeSingleObject(schema, buf) {
  if (!Buffer.isBuffer(buf) || buf.length < 10) throw new Error(`value of ${buf ? buf.length : 'null'} bytes is too short`);
  if (buf[0] !== 0xc3 || buf[1] !== 0x01) {
    throw new Error(`marker is ${buf.subarray(0, 2).toString('hex')}, expected c301`);
  }
  const fp = buf.subarray(2, 10);
  if (!fp.equals(schema.fpBytes)) {
    throw new Error(`fingerprint ${fp.toString('hex')} (LE) != CRC-64-AVRO of the schema ${schema.fpBytes.toString('hex')}`);
  }
  // fromBuffer throws on a truncated body and on trailing bytes.
  return schema.type.fromBuffer(buf.subarray(10));
}
