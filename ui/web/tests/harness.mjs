// What the browser tests and the dashboard benchmark share: `observatory up` as a child
// process on ports of their choosing (so that it can be stopped and started again on the same
// ones), and Debian's Chromium driven by playwright-core, never a downloaded browser.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

/** The browser: Debian's package (`apt-get install chromium`). */
export const CHROMIUM = process.env.OBSERVATORY_CHROMIUM || '/usr/bin/chromium';

/** How Chromium runs here: headless, as root in a container, talking to nothing but loopback. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Upper bound of every wait for the system or the page. */
export const WAIT_MS = 30_000;

/**
 * Chromium with a fresh profile (playwright-core gives each launch a new user-data-dir).
 * @returns {Promise<import('playwright-core').Browser>}
 */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run \`apt-get install -y --no-install-recommends chromium\` (cargo xtask test does)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: WAIT_MS });
}

/** A free TCP port on the loopback interface, as `127.0.0.1:PORT`. */
export function freeAddress() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(`127.0.0.1:${address.port}`) : reject(new Error('no port'))));
    });
  });
}

/**
 * Polls `check` until it returns a truthy value (returned), at most `ms`.
 * @template T
 * @param {string} what said when it never happens
 * @param {() => Promise<T> | T} check
 * @param {number} [ms]
 * @returns {Promise<T>}
 */
export async function eventually(what, check, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `observatory up` on its embedded adapters, as a child process. */
export class Up {
  /**
   * @param {import('node:child_process').ChildProcess} child
   * @param {string} banner
   */
  constructor(child, banner) {
    this.child = child;
    this.banner = banner;
    this.readModel = address(banner, 'read model');
    this.gateway = address(banner, 'gateway');
    this.dashboard = address(banner, 'dashboard');
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /**
   * Starts `observatory up` and waits until both APIs are ready.
   * @param {{bin: string, dataDir: string, gateway: string, readModel: string, env?: Record<string, string>}} options
   */
  static async start({ bin, dataDir, gateway, readModel, env = {} }) {
    if (!bin || !existsSync(bin)) throw new Error(`OBSERVATORY_BIN must name the observatory binary (got ${JSON.stringify(bin)})`);
    // Variables of this environment that would make `up` use a server or other addresses.
    const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OBSERVATORY_')));
    const child = spawn(
      bin,
      ['up', '--data-dir', dataDir, '--gateway-addr', gateway, '--read-model-addr', readModel, '--processor-addr', '127.0.0.1:0', '--metrics-engine-addr', '127.0.0.1:0'],
      { env: { ...childEnv, RUST_LOG: 'error', ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) });
    const banner = await new Promise((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`observatory up printed no complete banner within ${WAIT_MS} ms:\n${text}`)), WAIT_MS);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`observatory up exited (${code}) before it was up:\n${text}`));
      });
      lines.on('line', (line) => {
        text += `${line}\n`;
        if (line.includes('Stop with Ctrl-C')) {
          clearTimeout(timer);
          resolve(text);
        }
      });
    });
    // Keep reading what it prints later, so that a full pipe never blocks it.
    lines.on('line', () => {});
    const up = new Up(child, banner);
    for (const base of [up.gateway, up.readModel]) {
      await eventually(`${base}/readyz answering 200`, async () => (await fetch(`${base}/readyz`)).ok);
    }
    return up;
  }

  /** SIGTERM, as Ctrl-C would, and wait until it has exited. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), WAIT_MS);
    const { code, signal } = await this.exited;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`observatory up exited with ${code ?? signal} after SIGTERM`);
  }
}

/**
 * The first `http://…` address on the banner line that starts with `label`.
 * @param {string} banner
 * @param {string} label
 */
function address(banner, label) {
  const line = banner.split('\n').find((l) => l.trimStart().startsWith(label));
  const url = line?.split(/\s+/).find((w) => w.startsWith('http://'));
  if (!url) throw new Error(`no ${label} address in the banner:\n${banner}`);
  return url.replace(/\/$/, '');
}
