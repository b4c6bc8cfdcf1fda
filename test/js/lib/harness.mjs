// Shared harness of the outside-client tests (test/js/*.test.mjs).
//
// Each test starts its own `vantage node` on a free loopback port with the
// VANTAGE_* environment that `make test` (and so ctest) provides, waits for
// /healthz with a deadline, creates its data over HTTP, runs a real client
// and always stops the node it started, by its pid.
//
//   node test/js/<name>.test.mjs <path to the vantage binary>
//
// A watchdog ends the test (cleanup included) before CTest's TIMEOUT would
// SIGKILL it and leave the node behind.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const JS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SOURCE_DIR = path.resolve(JS_DIR, '..', '..');

const started = Date.now();

// A suffix that makes user ids (share creation is rate limited per user and
// hour) and rate-limit keys unique per run.
export const RUN_ID = `${started.toString(36)}${process.pid.toString(36)}`;
const cleanups = [];
let passed = 0;

export function log(...args) {
  const t = ((Date.now() - started) / 1000).toFixed(2).padStart(6);
  console.log(`[${t}s]`, ...args);
}

// Runs fn() as one named check; counts it, and on failure prints the name
// before the error propagates (the test then exits non-zero).
export async function check(name, fn) {
  try {
    const r = await fn();
    passed += 1;
    log(`ok   ${name}`);
    return r;
  } catch (e) {
    log(`FAIL ${name}`);
    throw e;
  }
}

export function onCleanup(fn) { cleanups.push(fn); }

async function runCleanups() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try { await fn(); } catch (e) { console.error('cleanup failed:', e); }
  }
}

let finished = false;
async function finish(code, err) {
  if (finished) return;
  finished = true;
  if (err) {
    console.error('\nTEST FAILED:', err && err.stack ? err.stack : err);
  }
  await runCleanups();
  const failed = code === 0 ? 0 : 1;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code);
}

// main(fn, {budgetMs}): runs the test body with a watchdog and cleanup.
export function main(fn, { budgetMs = 100_000 } = {}) {
  const watchdog = setTimeout(() => {
    finish(1, new Error(`test exceeded its own budget of ${budgetMs} ms`));
  }, budgetMs);
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => finish(1, new Error(`interrupted by ${sig}`)));
  }
  process.on('unhandledRejection', (e) => finish(1, e));
  Promise.resolve()
    .then(fn)
    .then(() => finish(0), (e) => finish(1, e));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() until it returns a truthy value or the deadline passes; the
// last error (or falsy result) is in the timeout message. An error with
// .fatal set ends the wait at once.
export async function pollUntil(what, fn, { timeoutMs = 20_000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      if (e && e.fatal) throw e; // no point in waiting any longer
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last && last.message ? last.message : JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

export function vantageBin() {
  const bin = process.argv[2] || process.env.VANTAGE_BIN || path.join(SOURCE_DIR, 'build', 'vantage');
  const abs = path.isAbsolute(bin) ? bin : path.resolve(SOURCE_DIR, bin);
  if (!fs.existsSync(abs)) throw new Error(`vantage binary not found at ${abs}`);
  return abs;
}

export function requireEnv(...names) {
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length) {
    throw new Error(`missing environment ${missing.join(', ')}: run through \`make test\`, or eval "$(scripts/services.sh env test)" first`);
  }
}

async function closeHttpPool() {
  const d = globalThis[Symbol.for('undici.globalDispatcher.1')];
  if (d && typeof d.close === 'function') {
    try { await d.close(); } catch { /* already closed */ }
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Starts `vantage node` on a free 127.0.0.1 port; resolves to
// {baseUrl, pid, output()} once /healthz answers healthy. The node is
// stopped (SIGTERM, then SIGKILL after 15 s) by the cleanup.
export async function startNode({ deadlineMs = 30_000 } = {}) {
  requireEnv('VANTAGE_DATABASE_URL', 'VANTAGE_REDIS_URL');
  const bin = vantageBin();
  let lastErr;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const env = {
      ...process.env,
      VANTAGE_HTTP_PORT: String(port),
      VANTAGE_HTTP_BIND: '127.0.0.1',
      VANTAGE_PUBLIC_BASE_URL: baseUrl,
      VANTAGE_HTTP_THREADS: process.env.VANTAGE_HTTP_THREADS || '16',
      // One headless browser per test node is plenty (each costs ~100 MB).
      BROWSER_POOL_SIZE: process.env.BROWSER_POOL_SIZE || '1',
      // Rate-limit counters of this run only: every client here is
      // 127.0.0.1, and other nodes on the same Redis (a benchmark, another
      // test) must not use up this test's 60 lookups per minute.
      VANTAGE_RATE_LIMIT_PREFIX: `rl:jstest:${RUN_ID}:`,
    };
    const child = spawn(bin, ['node'], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: SOURCE_DIR });
    let out = '';
    let exited = null;
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code, sig) => { exited = { code, sig }; });
    const stop = async () => {
      if (exited) return;
      // The node's SIGTERM shutdown waits for idle keep-alive connections
      // (up to its 10 s keep-alive timeout): close this process's pooled
      // connections first. Node's fetch and npm undici (used by
      // open-graph-scraper) share this global dispatcher.
      await closeHttpPool();
      log(`stopping vantage node pid ${child.pid}`);
      child.kill('SIGTERM');
      const t = Date.now();
      while (!exited && Date.now() - t < 15_000) await sleep(50);
      if (!exited) {
        log(`vantage node pid ${child.pid} still running 15 s after SIGTERM; SIGKILL`);
        child.kill('SIGKILL');
      } else {
        log(`vantage node pid ${child.pid} exited (${exited.code ?? exited.sig}) ${Date.now() - t} ms after SIGTERM`);
      }
    };
    onCleanup(stop);
    try {
      await pollUntil(`vantage node (pid ${child.pid}) healthy on ${baseUrl}`, async () => {
        if (exited) throw Object.assign(new Error(`node exited (${JSON.stringify(exited)}): ${out.slice(-2000)}`), { fatal: true });
        if (!/vantage node listening on /.test(out)) return false;
        const r = await fetch(`${baseUrl}/healthz`);
        const body = await r.json();
        return r.status === 200 && body.status === 'healthy';
      }, { timeoutMs: deadlineMs, intervalMs: 100 });
      log(`vantage node pid ${child.pid} healthy at ${baseUrl}`);
      return { baseUrl, pid: child.pid, output: () => out, stop };
    } catch (e) {
      const exitedByItself = exited !== null; // e.g. the port was taken meanwhile
      lastErr = new Error(`${e.message}\n--- node output (tail) ---\n${out.slice(-3000)}`);
      await stop();
      if (!exitedByItself || attempt === 3) break;
      log(`node exited during startup on port ${port} (attempt ${attempt}); retrying on another port`);
    }
  }
  throw lastErr;
}

// Mints a dev HS256 token with `vantage token`.
export function mintToken(sub, name) {
  const args = ['token', '--sub', sub];
  if (name) args.push('--name', name);
  const r = spawnSync(vantageBin(), args, { encoding: 'utf8', env: process.env, timeout: 15_000 });
  if (r.status !== 0) throw new Error(`vantage token failed (${r.status}): ${r.stderr}`);
  const tok = r.stdout.trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(tok)) throw new Error(`vantage token printed no JWT: ${r.stdout}`);
  return tok;
}

// One HTTP call; returns {status, headers, text, json, bytes}.
export async function http(method, url, { token, json, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    h['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const r = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  const bytes = Buffer.from(await r.arrayBuffer());
  const text = bytes.toString('utf8');
  let parsed;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
  return { status: r.status, headers: r.headers, text, json: parsed, bytes };
}

export async function expectStatus(res, status, what) {
  if (res.status !== status) {
    throw new Error(`${what}: expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  }
  return res;
}

// Creates a wishlist with the given products and shares it; returns
// {wishlistId, itemIds, share (the 201 body)}.
export async function createSharedWishlist(baseUrl, token, { title, products, channel = 'link' }) {
  const wl = await expectStatus(
    await http('POST', `${baseUrl}/api/v2/wishlists`, { token, json: { title } }), 201, 'create wishlist');
  const wishlistId = wl.json.wishlist_id;
  const itemIds = [];
  for (const p of products) {
    const it = await expectStatus(
      await http('POST', `${baseUrl}/api/v2/wishlists/${wishlistId}/items`, { token, json: { product_id: p } }),
      201, `add ${p}`);
    itemIds.push(it.json.wishlist_item_id);
  }
  const sh = await expectStatus(
    await http('POST', `${baseUrl}/api/v2/wishlists/${wishlistId}/share`, { token, json: { channel } }),
    201, 'create share');
  return { wishlistId, itemIds, share: sh.json };
}

export async function productName(baseUrl, productId) {
  const r = await expectStatus(await http('GET', `${baseUrl}/api/v2/products/${productId}`), 200, `product ${productId}`);
  if (typeof r.json.name !== 'string' || !r.json.name) throw new Error(`product ${productId} has no name: ${r.text}`);
  return r.json.name;
}

