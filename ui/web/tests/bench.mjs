// Measures the web dashboard (run by `cargo xtask bench --dashboard`, which builds the release
// binary and passes it in OBSERVATORY_BIN): its size as served, the time from navigation start
// to the first view showing data (a fresh browser context per run, so nothing is cached), and
// the jobs table with a page of 500 rows: the time to show it, the time one update of it takes,
// and the long tasks (> 50 ms) while jobs stream in. Numbers only: nothing here passes or fails.
//
// Options: --runs N (default 20), --jobs N (jobs seeded before measuring, default 600).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createGatewayClient, createReadModelClient } from '../../../generated/web/api.js';
import { Up, WAIT_MS, eventually, freeAddress, launchBrowser } from './harness.mjs';

/** @param {string} name @param {number} fallback */
function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a positive whole number`);
  return n;
}

/** @param {number[]} values @param {number} q */
function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** @param {number[]} values */
const summary = (values) =>
  `median ${quantile(values, 0.5).toFixed(0)} ms, p95 ${quantile(values, 0.95).toFixed(0)} ms, min ${Math.min(...values).toFixed(0)} ms, max ${Math.max(...values).toFixed(0)} ms (${values.length} runs)`;

const runs = option('runs', 20);
const seed = option('jobs', 600);
const dataDir = mkdtempSync(join(tmpdir(), 'observatory-dashboard-bench-'));
const up = await Up.start({ bin: process.env.OBSERVATORY_BIN ?? '', dataDir, gateway: await freeAddress(), readModel: await freeAddress() });
const browser = await launchBrowser();
try {
  console.log(`==> seeding ${seed} jobs`);
  const gateway = createGatewayClient(up.gateway);
  for (let i = 0; i < seed; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, seed - i) }, (_, j) =>
        gateway.submitJob((i + j) % 10 === 0 ? { type: 'fail', maxAttempts: 2 } : { type: 'sleep', payload: { durationMs: 0 } }),
      ),
    );
  }
  const readModel = createReadModelClient(up.readModel);
  await eventually('the seeded jobs to be stored', async () => (await readModel.getOverview()).totals.submitted >= seed, 120_000);

  // What the browser downloads for the first view, as served (uncompressed).
  const context = await browser.newContext();
  const page = await context.newPage();
  /** @type {Map<string, Buffer>} */
  const files = new Map();
  page.on('response', async (response) => {
    const url = new URL(response.url());
    if (url.origin === up.readModel && (url.pathname === '/' || url.pathname.startsWith('/ui/'))) {
      files.set(url.pathname, await response.body());
    }
  });
  await page.goto(`${up.readModel}/#/overview`);
  await page.waitForFunction(() => performance.getEntriesByName('observatory:first-view').length > 0, null, { timeout: WAIT_MS });
  await context.close();
  let total = 0;
  let gzipped = 0;
  console.log('==> the dashboard as served');
  for (const [path, body] of [...files].sort()) {
    total += body.length;
    gzipped += gzipSync(body).length;
    console.log(`  ${path.padEnd(26)} ${String(body.length).padStart(7)} B`);
  }
  console.log(`  ${files.size} files, ${(total / 1024).toFixed(1)} KiB uncompressed (${total} B; ${(gzipped / 1024).toFixed(1)} KiB if gzipped)`);

  /**
   * Navigation start → the first view showing data, in a fresh context.
   * @param {string} fragment
   */
  async function firstView(fragment) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await ctx.newPage();
    await p.goto(`${up.readModel}/${fragment}`);
    await p.waitForFunction(() => performance.getEntriesByName('observatory:first-view').length > 0, null, { timeout: WAIT_MS });
    const [data, ms] = await p.evaluate(() => ['observatory:first-data', 'observatory:first-view'].map((name) => performance.getEntriesByName(name)[0].startTime));
    return { data, ms, ctx, page: p };
  }

  console.log(`==> time to the first interactive view (overview), ${runs} fresh contexts`);
  const overview = [];
  const overviewData = [];
  for (let i = 0; i < runs; i++) {
    const { data, ms, ctx } = await firstView('#/overview');
    overview.push(ms);
    overviewData.push(data);
    await ctx.close();
  }
  console.log(`  data painted: ${summary(overview)}`);
  console.log(`  data in the page: ${summary(overviewData)}`);

  console.log(`==> jobs table with a page of 500 rows, ${runs} fresh contexts`);
  const jobs = [];
  const renders = [];
  for (let i = 0; i < runs; i++) {
    const { ms, ctx, page: p } = await firstView('#/jobs?limit=500');
    jobs.push(ms);
    renders.push(await p.evaluate(() => performance.getEntriesByName('observatory:jobs-render').at(-1)?.duration ?? NaN));
    await ctx.close();
  }
  console.log(`  first view with 500 rows: ${summary(jobs)}`);
  console.log(`  building the 500 rows: ${summary(renders)}`);

  // Live: jobs stream in while 500 rows are shown; each refetch updates the table in place.
  const { ctx, page: p } = await firstView('#/jobs?limit=500');
  await p.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.longTasks = [];
    w.updates = [];
    new PerformanceObserver((list) => w.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
    new PerformanceObserver((list) => w.updates.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'measure' });
  });
  const streamed = 300;
  const started = Date.now();
  let last = '';
  for (let i = 0; i < streamed; i += 10) {
    const accepted = await Promise.all(Array.from({ length: 10 }, () => gateway.submitJob({ type: 'sleep', payload: { durationMs: 0 } })));
    last = accepted[accepted.length - 1].jobId;
  }
  await p.locator(`.jobs-table tr[data-job-id="${last}"][data-status="COMPLETED"]`).waitFor({ timeout: WAIT_MS });
  const seconds = (Date.now() - started) / 1000;
  const { longTasks, updates } = await p.evaluate(() => {
    const w = /** @type {any} */ (window);
    return { longTasks: w.longTasks, updates: w.updates };
  });
  console.log(`  ${streamed} jobs streamed in over ${seconds.toFixed(1)} s: ${updates.length} table updates (${updates.length ? summary(updates) : 'none'}), ${longTasks.length} long tasks${longTasks.length ? ` (longest ${Math.max(...longTasks).toFixed(0)} ms)` : ''}`);
  await ctx.close();
} finally {
  await browser.close();
  await up.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
