// Runs Debian's headless Chromium (package chromium, /usr/bin/chromium) once
// with a fresh profile, in its own process group so that a hung browser and
// its helper processes are ended together, by that group's id.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { log, onCleanup, tempDir } from './harness.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--no-default-browser-check', '--hide-scrollbars', '--mute-audio',
  '--disable-extensions', '--force-device-scale-factor=1',
];

export function requireChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/deps.sh lists it)`);
  }
}

// runChromium(args, {timeoutMs}) -> {stdout (Buffer), stderr (string)}.
export function runChromium(args, { timeoutMs = 60_000 } = {}) {
  const profile = tempDir('vantage-chromium-');
  const all = [...FLAGS, `--user-data-dir=${profile}`, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(CHROMIUM, all, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out = [];
    let err = '';
    let timedOut = false;
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => { err += d; });
    let closed = false;
    const killGroup = (sig) => { try { process.kill(-child.pid, sig); } catch { /* gone */ } };
    // An interrupted test ends a browser still running (before its profile
    // directory is removed: cleanups run last-registered first).
    onCleanup(() => { if (!closed) killGroup('SIGKILL'); });
    const timer = setTimeout(() => { timedOut = true; killGroup('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, sig) => {
      closed = true;
      clearTimeout(timer);
      killGroup('SIGKILL'); // helpers left behind by a crashed browser, if any
      if (timedOut) return reject(new Error(`chromium timed out after ${timeoutMs} ms: ${err.slice(-1500)}`));
      if (code !== 0) return reject(new Error(`chromium exited ${code ?? sig}: ${err.slice(-1500)}`));
      resolve({ stdout: Buffer.concat(out), stderr: err });
    });
  });
}

export async function dumpDom(url, opts) {
  const t = Date.now();
  const { stdout } = await runChromium(['--dump-dom', url], opts);
  log(`chromium --dump-dom ${url}: ${stdout.length} bytes in ${Date.now() - t} ms`);
  return stdout.toString('utf8');
}

export async function screenshot(url, file, { width, height, timeoutMs } = {}) {
  const t = Date.now();
  fs.rmSync(file, { force: true });
  await runChromium([`--screenshot=${file}`, `--window-size=${width},${height}`, url], { timeoutMs });
  if (!fs.existsSync(file)) throw new Error(`chromium wrote no screenshot to ${file}`);
  const buf = fs.readFileSync(file);
  log(`chromium --screenshot ${url}: ${buf.length} bytes in ${Date.now() - t} ms`);
  return buf;
}
