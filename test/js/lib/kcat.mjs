// Reads a topic with kcat (Debian package kcat, 1.7) and parses its output
// safely for binary keys and values: the format puts each message's key and
// value lengths (%K, %S) on a text line and then exactly that many raw bytes,
// so no delimiter can collide with Avro bytes. Headers (%h, "n=v" CSV) are on
// their own line after the value.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export const KCAT = process.env.KCAT_BIN || 'kcat';
const FORMAT = 'M %p %o %T %K %S\\n%k%s\\nH %h\\n';

export function bootstrapServers() {
  const file = process.env.VANTAGE_KAFKA_BOOTSTRAP_FILE;
  if (file) {
    if (!fs.existsSync(file)) throw new Error(`VANTAGE_KAFKA_BOOTSTRAP_FILE ${file} does not exist: is the test profile's Kafka up?`);
    const b = fs.readFileSync(file, 'utf8').split('\n')[0].trim();
    if (!b) throw new Error(`${file} is empty`);
    return b;
  }
  if (process.env.KAFKA_BOOTSTRAP_SERVERS) return process.env.KAFKA_BOOTSTRAP_SERVERS;
  throw new Error('neither VANTAGE_KAFKA_BOOTSTRAP_FILE nor KAFKA_BOOTSTRAP_SERVERS is set');
}

function run(args, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(KCAT, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    let timedOut = false;
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run ${KCAT}: ${e.message}`)); });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (timedOut) return reject(new Error(`kcat ${args.join(' ')} timed out after ${timeoutMs} ms: ${err}`));
      if (code !== 0) return reject(new Error(`kcat ${args.join(' ')} exited ${code ?? sig}: ${err}`));
      resolve(Buffer.concat(out));
    });
  });
}

export async function partitionCount(bootstrap, topic) {
  const out = await run(['-L', '-J', '-b', bootstrap, '-t', topic]);
  const meta = JSON.parse(out.toString('utf8'));
  const t = (meta.topics || []).find((x) => x.topic === topic);
  if (!t || !Array.isArray(t.partitions) || !t.partitions.length) {
    throw new Error(`no metadata for topic ${topic}: ${out.toString('utf8').slice(0, 500)}`);
  }
  return t.partitions.length;
}

// Parses the output of FORMAT into [{partition, offset, timestamp, key
// (Buffer|null), value (Buffer|null), headers: [[name, value]...]}].
export function parse(buf) {
  const msgs = [];
  let pos = 0;
  const readLine = () => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) throw new Error(`kcat output: unterminated line at byte ${pos}`);
    const line = buf.toString('utf8', pos, nl);
    pos = nl + 1;
    return line;
  };
  const readBytes = (n) => {
    if (n < 0) return null;
    if (pos + n > buf.length) throw new Error(`kcat output: ${n} bytes announced at ${pos}, ${buf.length - pos} left`);
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return Buffer.from(b);
  };
  while (pos < buf.length) {
    const head = readLine();
    const m = head.match(/^M (\d+) (\d+) (-?\d+) (-?\d+) (-?\d+)$/);
    if (!m) throw new Error(`kcat output: bad message line ${JSON.stringify(head)} at byte ${pos}`);
    const key = readBytes(Number(m[4]));
    const value = readBytes(Number(m[5]));
    if (buf[pos] !== 0x0a) throw new Error(`kcat output: no newline after the value at byte ${pos}`);
    pos += 1;
    const hl = readLine();
    if (!hl.startsWith('H ')) throw new Error(`kcat output: bad header line ${JSON.stringify(hl)}`);
    const headers = hl.length > 2
      ? hl.slice(2).split(',').map((kv) => {
        const i = kv.indexOf('=');
        return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
      })
      : [];
    msgs.push({
      partition: Number(m[1]), offset: Number(m[2]), timestamp: Number(m[3]), key, value, headers,
    });
  }
  return msgs;
}

// Every message of the topic (or of one partition) from the beginning to
// the current end.
export async function consumeAll(bootstrap, topic, { partition } = {}) {
  const args = ['-C', '-b', bootstrap, '-t', topic];
  if (partition !== undefined) args.push('-p', String(partition));
  args.push('-o', 'beginning', '-e', '-q', '-f', FORMAT);
  return parse(await run(args, { timeoutMs: 60_000 }));
}

// Kafka's Java murmur2 (org.apache.kafka.common.utils.Utils.murmur2), which
// librdkafka's murmur2 partitioners reproduce.
export function murmur2(data) {
  const m = 0x5bd1e995;
  const len = data.length;
  let h = 0x9747b28c ^ len;
  const n4 = len >> 2;
  for (let i = 0; i < n4; i++) {
    const j = i * 4;
    let k = data[j] | (data[j + 1] << 8) | (data[j + 2] << 16) | (data[j + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const t = len & ~3;
  switch (len % 4) {
    case 3: h ^= data[t + 2] << 16; // falls through
    case 2: h ^= data[t + 1] << 8; // falls through
    case 1: h ^= data[t]; h = Math.imul(h, m); break;
    default: break;
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

export const javaPartition = (key, n) => (murmur2(key) & 0x7fffffff) % n;

// Kafka's own test vectors (UtilsTest.testMurmur2).
export function murmur2SelfCheck() {
  const vectors = [
    ['21', -973932308], ['foobar', -790332482], ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971], ['abc', 479470107],
  ];
  for (const [s, want] of vectors) {
    const got = murmur2(Buffer.from(s));
    if (got !== want) throw new Error(`murmur2(${s}) = ${got}, Kafka says ${want}`);
  }
  return vectors.length;
}
