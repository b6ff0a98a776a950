// Browser tests of the web dashboard: Debian's Chromium, driven by playwright-core, against a
// real `observatory up` (the binary in OBSERVATORY_BIN) on free ports with a data directory.
// Every scenario runs under the read model's Content-Security-Policy; a CSP violation, a script
// error or a request to any other origin fails the run. Each view is checked with axe-core
// (no serious or critical violation) and saved as a screenshot in target/dashboard-screenshots/.
//
// Run: OBSERVATORY_BIN=target/debug/observatory node ui/web/tests/browser.test.mjs
// (services/observatory/tests/dashboard.rs does this inside `cargo test`).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createGatewayClient, createReadModelClient } from '../../../generated/web/api.js';
import { Up, WAIT_MS, eventually, freeAddress, launchBrowser } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(here, '../../../target/dashboard-screenshots');
const AXE = readFileSync(join(here, '../node_modules/axe-core/axe.min.js'), 'utf8');

/** @type {Up} */
let up;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {import('playwright-core').BrowserContext} */
let context;
/** @type {import('playwright-core').Page} */
let page;
let dataDir = '';
let ports = { gateway: '', readModel: '' };
/** Script errors, CSP violations and requests to other origins, from every page. */
const problems = [];
/** The origins a page may talk to: the read models and gateways this run started. */
const origins = new Set();

const gateway = () => createGatewayClient(up.gateway);
const readModel = () => createReadModelClient(up.readModel);

async function startUp() {
  up = await Up.start({ bin: process.env.OBSERVATORY_BIN ?? '', dataDir, ...ports, env: { OBSERVATORY_RETRY_BACKOFF_BASE_MS: '100' } });
  origins.add(up.readModel).add(up.gateway);
}

/**
 * A browser context whose pages report problems; CSP stays on (no bypass).
 * @param {import('playwright-core').BrowserContextOptions} [options]
 */
async function newContext(options = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  ctx.setDefaultTimeout(WAIT_MS);
  ctx.on('page', watch);
  return ctx;
}

/** @param {import('playwright-core').Page} p */
function watch(p) {
  p.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
  p.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  p.on('request', (request) => {
    if (!origins.has(new URL(request.url()).origin) && !request.url().startsWith('data:')) {
      problems.push(`request to another origin: ${request.url()}`);
    }
  });
}

/** @param {string} fragment e.g. `#/jobs` */
async function open(fragment, p = page) {
  await p.goto(`${up.readModel}/${fragment}`);
}

/** Waits until the view's status line says it has loaded. */
async function loaded(p = page) {
  await p.locator('.status-line[data-state="ok"]').first().waitFor();
}

/** @param {string} name */
async function screenshot(name, p = page) {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/**
 * axe-core on the page as it is (evaluated through the DevTools protocol, which the page's CSP
 * does not restrict, so nothing about the page changes): no serious or critical violation.
 * @param {string} name
 */
async function accessible(name, p = page) {
  if (!(await p.evaluate(() => 'axe' in window))) await p.evaluate(AXE);
  const result = await p.evaluate(() => /** @type {any} */ (window).axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    serious.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `axe found serious or critical violations on ${name}`,
  );
}

/**
 * Submits through the generated client and returns the job id.
 * @param {import('../../../generated/web/api.js').JobSubmission} body
 */
async function submit(body) {
  return (await gateway().submitJob(body)).jobId;
}

/**
 * Waits until the read model has the job in `status`.
 * @param {string} id
 * @param {string} status
 */
async function reaches(id, status) {
  await eventually(`job ${id} reaching ${status}`, async () => (await readModel().getJob(id)).job.status === status);
}

/** The ids of the jobs table's rows, in order. */
async function rowIds(p = page) {
  return p.locator('.jobs-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-job-id')));
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'observatory-dashboard-'));
  ports = { gateway: await freeAddress(), readModel: await freeAddress() };
  await startUp();
  browser = await launchBrowser();
  context = await newContext();
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
  await up?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('the read model serves the dashboard at / under its Content-Security-Policy', async () => {
  const response = await page.goto(`${up.readModel}/`);
  const policy = response?.headers()['content-security-policy'] ?? '';
  assert.match(policy, /script-src 'self'/);
  assert.match(policy, new RegExp(`connect-src 'self' ${up.gateway.replace(/[.]/g, '\\.')}`));
  await page.waitForURL(/#\/overview$/);
  await page.locator('#connection[data-state="live"]').waitFor();
  // The policy is in force: an inline script does not run, and says so.
  const blocked = page.waitForEvent('console', (m) => /Content Security Policy/.test(m.text()));
  const ran = await page.evaluate(() => {
    const script = document.createElement('script');
    script.textContent = 'window.inlineRan = true';
    document.head.append(script);
    return 'inlineRan' in window;
  });
  assert.equal(ran, false);
  await blocked;
  problems.splice(0, problems.length, ...problems.filter((p) => !p.startsWith('CSP:')));
});

test('overview: totals as cards, a live throughput chart, counters per type, queue depths and alerts', async () => {
  await submit({ type: 'sleep', payload: { durationMs: 10 } });
  await submit({ type: 'compute', payload: { iterations: 1000 } });
  const doomed = await submit({ type: 'fail', maxAttempts: 1 });
  await reaches(doomed, 'DEAD_LETTERED');
  const submitted = await eventually('the counters', async () => {
    const { totals } = await readModel().getOverview();
    return totals.deadLettered >= 1 && totals.submitted;
  });
  await open('#/overview');
  await loaded();
  const card = page.locator('.card-submitted .card-value');
  await eventually('the submitted card', async () => Number((await card.textContent())?.replace(/,/g, '')) >= submitted);
  assert.equal(await page.locator('svg.chart polyline').count(), 3);
  for (const type of ['sleep', 'compute', 'fail']) await page.locator('.view-overview tbody th a', { hasText: type }).waitFor();
  await page.locator('.view-overview tbody th', { hasText: 'observatory.jobs' }).waitFor();
  await page.locator('.alerts .note').waitFor();
  // Live: a job submitted now is counted without a reload.
  const before = Number((await card.textContent())?.replace(/,/g, ''));
  await submit({ type: 'sleep', payload: { durationMs: 1 } });
  await eventually('the card counting the new job', async () => Number((await card.textContent())?.replace(/,/g, '')) > before);
  await eventually('the chart showing a submission', async () => Number(await page.locator('.series-submitted .legend-value').textContent()) > 0);
  await screenshot('overview');
  await accessible('overview');
});

test('submit: a job submitted through the form reaches COMPLETED without a reload', async () => {
  await open('#/submit');
  await page.getByLabel('Type', { exact: true }).selectOption('sleep');
  await page.waitForURL(/type=sleep/);
  await page.evaluate(() => Object.assign(window, { sameDocument: true }));
  await page.getByLabel(/^durationMs/).fill('600');
  await page.getByRole('button', { name: 'Submit', exact: true }).click();
  const link = page.locator('.outcome a[data-job-id]');
  const id = /** @type {string} */ (await link.getAttribute('data-job-id'));
  const row = page.locator(`.jobs-table tr[data-job-id="${id}"]`);
  await row.waitFor();
  await page.locator(`.jobs-table tr[data-job-id="${id}"][data-status="COMPLETED"]`).waitFor();
  assert.equal(await page.evaluate(() => 'sameDocument' in window), true, 'the page was not reloaded');
  await screenshot('submit');
  await accessible('submit');

  // Its page: fields, payload, the attempt and the timeline.
  await link.click();
  await page.waitForURL(new RegExp(`#/jobs/${id}$`));
  await page.locator('.following[data-state="final"]').waitFor();
  assert.equal(await page.locator('svg.timeline rect.seg-succeeded').count(), 1);
  assert.equal(await page.locator('svg.timeline rect.seg-queued').count(), 1);
  assert.deepEqual(await page.locator('.events-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event-type'))), [
    'job.created',
    'job.started',
    'job.completed',
  ]);
  assert.match((await page.locator('.view-job pre.json').first().textContent()) ?? '', /"durationMs": 600/);
  await screenshot('job');
  await accessible('job');
});

test('job: the page follows a job live, and the timeline shows each attempt, its error and the wait before the retry', async () => {
  const flaky = await submit({ type: 'fail', payload: { failFirstAttempts: 1, message: '<b>not markup</b>' }, maxAttempts: 3 });
  await reaches(flaky, 'COMPLETED');
  await open(`#/jobs/${flaky}`);
  await page.locator('.following[data-state="final"]').waitFor();
  assert.equal(await page.locator('svg.timeline rect.seg-failed').count(), 1);
  assert.equal(await page.locator('svg.timeline rect.seg-succeeded').count(), 1);
  assert.equal(await page.locator('svg.timeline line.seg-wait').count(), 1);
  const attempts = page.locator('.attempts li');
  assert.equal(await attempts.count(), 2);
  // Untrusted text stays text.
  assert.match((await attempts.first().locator('.error-text').textContent()) ?? '', /<b>not markup<\/b>/);
  assert.equal(await page.locator('.attempts b').count(), 0);
  await screenshot('job-retried');

  // A job still running: the page shows it running, then its end, without a reload.
  const slow = await submit({ type: 'sleep', payload: { durationMs: 2500 } });
  await open(`#/jobs/${slow}`);
  await page.locator('.following[data-state="following"]').waitFor();
  await page.locator('svg.timeline rect.seg-running').waitFor();
  await page.locator('.following[data-state="final"]').waitFor();
  await page.locator('.view-title .badge', { hasText: 'COMPLETED' }).waitFor();
  assert.equal(await page.locator('svg.timeline rect.seg-succeeded').count(), 1);
});

test('submit: a bad payload is shown at its field and not sent; the gateway’s errors are shown at the fields they point to', async () => {
  await open('#/submit?type=sleep');
  const sent = [];
  const listener = (/** @type {import('playwright-core').Request} */ r) => {
    if (r.url().startsWith(up.gateway) && r.method() === 'POST') sent.push(r.url());
  };
  page.on('request', listener);
  const duration = page.getByLabel(/^durationMs/);
  const send = page.getByRole('button', { name: 'Submit', exact: true });
  await duration.fill('700000');
  await send.click();
  await page.locator('[name="durationMs"][aria-invalid="true"]').waitFor();
  const durationError = page.locator('.payload .field-error').first();
  assert.match((await durationError.textContent()) ?? '', /at most 60000\b/);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'durationMs', 'the focus moves to the field');
  await duration.fill('');
  await send.click();
  await eventually('the required error', async () => /required/.test((await durationError.textContent()) ?? ''));
  assert.deepEqual(sent, [], 'nothing was sent');

  // What only the gateway checks (the attempt limit), shown where its pointer says.
  await duration.fill('5');
  await page.getByLabel('Max attempts').fill('1000');
  const refused = page.waitForResponse((r) => r.url().startsWith(up.gateway) && r.request().method() === 'POST');
  await send.click();
  assert.equal((await refused).status(), 400);
  await page.locator('[name="maxAttempts"][aria-invalid="true"]').waitFor();
  const attemptsError = await page.getByLabel('Max attempts').evaluate((input) => {
    const ids = (input.getAttribute('aria-describedby') ?? '').split(' ');
    return ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ');
  });
  assert.match(attemptsError, /maximum of 100/);
  assert.equal(sent.length, 1);
  await screenshot('submit-errors');
  await accessible('submit with errors');

  // Another type: a JSON editor, checked for JSON; the type name checked by the gateway.
  await page.getByLabel('Type', { exact: true }).selectOption('other');
  await page.waitForURL(/type=other/);
  await page.getByLabel('Max attempts').fill('');
  const json = page.getByLabel('Payload (JSON object)');
  await json.fill('{"width": ');
  await send.click();
  await page.locator('[name="payload"][aria-invalid="true"]').waitFor();
  assert.equal(sent.length, 1, 'invalid JSON is not sent');
  await json.fill('{"width": 640}');
  await page.getByLabel('Type name').fill('Resize Image');
  await send.click();
  await page.locator('[name="customType"][aria-invalid="true"]').waitFor();
  assert.equal(sent.length, 2);
  page.off('request', listener);
});

test('jobs: filter by status and type, reload, and the URL restores the view; back returns to the previous filter', async () => {
  const dead = [await submit({ type: 'fail', maxAttempts: 1 }), await submit({ type: 'fail', maxAttempts: 1 })];
  const done = await submit({ type: 'sleep', payload: { durationMs: 1 } });
  for (const id of dead) await reaches(id, 'DEAD_LETTERED');
  await reaches(done, 'COMPLETED');
  await open('#/jobs');
  await loaded();
  await page.getByLabel('Status').selectOption('DEAD_LETTERED');
  await page.waitForURL(/status=DEAD_LETTERED/);
  await page.getByLabel('Type').fill('fail');
  await page.getByLabel('Type').press('Enter');
  await page.waitForURL(/status=DEAD_LETTERED.*type=fail|type=fail.*status=DEAD_LETTERED/);
  await loaded();
  const check = async () => {
    const rows = await page.locator('.jobs-table tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-status'), tr.children[1].textContent]));
    assert.ok(rows.length >= 2, `at least the two dead-lettered jobs: ${JSON.stringify(rows)}`);
    for (const [status, type] of rows) assert.deepEqual([status, type], ['DEAD_LETTERED', 'fail']);
    const ids = await rowIds();
    for (const id of dead) assert.ok(ids.includes(id), `${id} listed`);
    assert.ok(!ids.includes(done));
    return ids;
  };
  await eventually('the filtered rows', async () => (await page.locator('.jobs-table tbody tr').count()) >= 2);
  const ids = await check();
  await screenshot('jobs-filtered');
  await page.reload();
  await loaded();
  assert.equal(await page.getByLabel('Status').inputValue(), 'DEAD_LETTERED');
  assert.equal(await page.getByLabel('Type').inputValue(), 'fail');
  assert.deepEqual(await check(), ids);
  await page.goBack();
  await page.waitForURL((url) => /status=DEAD_LETTERED/.test(url.hash) && !/type=/.test(url.hash));
  await eventually('the type filter emptied', async () => (await page.getByLabel('Type').inputValue()) === '');
});

test('jobs: keyset paging older and newer in the URL, and search by id prefix', async () => {
  await open('#/jobs?limit=2');
  await loaded();
  const first = await rowIds();
  assert.equal(first.length, 2);
  await page.getByRole('link', { name: 'Older →' }).click();
  await page.waitForURL(/cursor=/);
  await eventually('page 2', async () => (await page.locator('.page-number').textContent()) === 'Page 2');
  await loaded();
  const second = await rowIds();
  assert.equal(second.length, 2);
  assert.notDeepEqual(second, first);
  await page.getByRole('link', { name: 'Older →' }).click();
  await eventually('page 3', async () => (await page.locator('.page-number').textContent()) === 'Page 3');
  await page.getByRole('link', { name: '← Newer' }).click();
  await eventually('page 2 again', async () => (await page.locator('.page-number').textContent()) === 'Page 2');
  await loaded();
  assert.deepEqual(await rowIds(), second);
  await page.reload();
  await loaded();
  assert.deepEqual(await rowIds(), second, 'a reload keeps the page');
  await page.getByRole('link', { name: '← Newer' }).click();
  await eventually('the newest page', async () => (await page.locator('.page-number').textContent()) === 'Newest');
  await loaded();
  assert.deepEqual(await rowIds(), first);

  const target = second[1] ?? '';
  await page.getByLabel('Job id or prefix').fill(target.slice(0, 8));
  await page.getByLabel('Job id or prefix').press('Enter');
  await page.waitForURL(new RegExp(`idPrefix=${target.slice(0, 8)}`));
  await eventually('the one job', async () => JSON.stringify(await rowIds()) === JSON.stringify([target]));
  await page.getByLabel('Job id or prefix').fill('not-hex');
  await page.getByLabel('Job id or prefix').press('Enter');
  await page.locator('[name="idPrefix"][aria-invalid="true"]').waitFor();
  await screenshot('jobs');
  await accessible('jobs');
});

test('jobs: rows appear and change live, without a reload', async () => {
  await open('#/jobs');
  await loaded();
  const id = await submit({ type: 'sleep', payload: { durationMs: 1500 } });
  await page.locator(`.jobs-table tr[data-job-id="${id}"]`).waitFor();
  // Seen running, then completed: the row follows the job's events.
  await page.locator(`.jobs-table tr[data-job-id="${id}"][data-status="RUNNING"]`).waitFor();
  await page.locator(`.jobs-table tr[data-job-id="${id}"][data-status="COMPLETED"]`).waitFor();
});

test('dead letters: a failing job appears, with its reason, attempts, last error and raw body', async () => {
  await open('#/dead-letters');
  await loaded();
  const id = await submit({ type: 'fail', maxAttempts: 2, payload: { message: 'gave up' } });
  const card = page.locator(`article.dead-letter[data-job-id="${id}"]`);
  await card.waitFor();
  assert.equal(await card.getAttribute('data-reason'), 'attempts-exhausted');
  assert.match((await card.textContent()) ?? '', /Attempts\s*2/);
  assert.match((await card.textContent()) ?? '', /gave up/);
  await card.locator('summary').click();
  assert.match((await card.locator('pre.raw').textContent()) ?? '', new RegExp(id));
  await screenshot('dead-letters');
  await accessible('dead letters');
});

test('events: a live tail with a type filter and a pause', async () => {
  await open('#/events');
  await loaded();
  await page.getByLabel('Type').selectOption('job.completed');
  await page.waitForURL(/type=job\.completed/);
  await loaded();
  const types = await page.locator('.events-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event-type')));
  assert.ok(types.length > 0 && types.every((t) => t === 'job.completed'), JSON.stringify(types));
  const live = await submit({ type: 'sleep', payload: { durationMs: 1 } });
  await page.locator('.events-table tbody tr', { hasText: live.slice(0, 8) }).waitFor();
  await page.getByRole('button', { name: 'Pause' }).click();
  const held = await submit({ type: 'sleep', payload: { durationMs: 1 } });
  await eventually('the buffered count', async () => /1 new event/.test((await page.locator('.buffered').textContent()) ?? ''));
  assert.equal(await page.locator('.events-table tbody tr', { hasText: held.slice(0, 8) }).count(), 0);
  await page.keyboard.press('p'); // resume from the keyboard
  await page.locator('.events-table tbody tr', { hasText: held.slice(0, 8) }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Pause' }).getAttribute('aria-pressed'), 'false');
  await screenshot('events');
  await accessible('events');
});

test('jobs: a page of 500 rows renders, and stays live', async () => {
  const client = gateway();
  const existing = (await readModel().listJobs({ limit: 500 })).items.length;
  const missing = Math.max(0, 501 - existing);
  for (let i = 0; i < missing; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, missing - i) }, () => client.submitJob({ type: 'sleep', payload: { durationMs: 0 } })));
  }
  await eventually('500 stored jobs', async () => (await readModel().listJobs({ limit: 500 })).items.length === 500);
  await open('#/jobs?limit=500');
  await loaded();
  await eventually('500 rows', async () => (await page.locator('.jobs-table tbody tr').count()) === 500);
  const id = await submit({ type: 'sleep', payload: { durationMs: 1 } });
  await page.locator(`.jobs-table tr[data-job-id="${id}"][data-status="COMPLETED"]`).waitFor();
  assert.equal(await page.locator('.jobs-table tbody tr').count(), 500);
  assert.equal((await rowIds())[0], id, 'the new job on top');
});

test('keyboard: number keys switch views, / searches, ? lists the shortcuts, the focus follows the view', async () => {
  await open('#/overview');
  await loaded();
  await page.locator('body').press('2');
  await page.waitForURL(/#\/jobs$/);
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1');
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'idPrefix');
  await page.evaluate(() => /** @type {HTMLElement} */ (document.activeElement).blur());
  await page.keyboard.press('3');
  await page.waitForURL(/#\/events$/);
  await page.keyboard.press('?');
  await page.locator('dialog#keys[open]').waitFor();
  await accessible('keyboard help');
  await page.keyboard.press('Escape');
  await page.locator('dialog#keys:not([open])').waitFor({ state: 'attached' });
  // On a fresh load, the first Tab reaches the skip link, which moves the focus to the view.
  await page.goto('about:blank');
  await open('#/overview');
  await loaded();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'skip');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'view');
  assert.match(page.url(), /#\/overview$/);
});

test('375 px wide in the dark scheme: every view fits and passes axe', async () => {
  const narrow = await newContext({ viewport: { width: 375, height: 812 }, colorScheme: 'dark' });
  const p = await narrow.newPage();
  const job = (await readModel().listJobs({ status: 'COMPLETED', type: 'fail', limit: 1 })).items[0]?.id ?? '';
  for (const [name, fragment] of [
    ['overview', '#/overview'],
    ['jobs', '#/jobs'],
    ['job', `#/jobs/${job}`],
    ['events', '#/events'],
    ['dead-letters', '#/dead-letters'],
  ]) {
    await open(fragment, p);
    await loaded(p);
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${name} is ${width} px wide at 375`);
    await screenshot(`${name}-375-dark`, p);
    await accessible(`${name} (375 px, dark)`, p);
  }
  await open('#/submit?type=fail', p);
  await p.getByLabel('Max attempts').waitFor();
  assert.ok((await p.evaluate(() => document.documentElement.scrollWidth)) <= 375);
  await screenshot('submit-375-dark', p);
  await accessible('submit (375 px, dark)', p);
  await narrow.close();
});

test('without a gateway URL the dashboard is read-only, and says so', async () => {
  // A second `observatory up` whose read model names no gateway (an empty URL).
  const dir = mkdtempSync(join(tmpdir(), 'observatory-dashboard-read-only-'));
  const other = await Up.start({
    bin: process.env.OBSERVATORY_BIN ?? '',
    dataDir: dir,
    gateway: await freeAddress(),
    readModel: await freeAddress(),
    env: { OBSERVATORY_GATEWAY_URL: '' },
  });
  origins.add(other.readModel);
  try {
    const readOnly = await newContext();
    const p = await readOnly.newPage();
    const response = await p.goto(`${other.readModel}/#/overview`);
    assert.match(response?.headers()['content-security-policy'] ?? '', /connect-src 'self';/);
    await loaded(p);
    assert.equal(await p.locator('nav.views a[href="#/submit"]').count(), 0);
    await p.goto(`${other.readModel}/#/submit`);
    await p.locator('p[data-read-only="true"]').waitFor();
    assert.equal(await p.locator('form.submit-form').count(), 0);
    await accessible('read-only submit', p);
    await readOnly.close();
  } finally {
    await other.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a hidden tab stops streaming and catches up when shown again', async () => {
  // Headless Chromium never hides a page, so the page is told it is hidden the way a browser
  // tells it: document.hidden and a visibilitychange event.
  await open('#/jobs');
  await loaded();
  await page.locator('#connection[data-state="live"]').waitFor();
  /** @param {boolean} hidden */
  const setHidden = (hidden) =>
    page.evaluate((value) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => value });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
  await setHidden(true);
  await page.locator('#connection[data-state="paused"]').waitFor();
  const id = await submit({ type: 'sleep', payload: { durationMs: 1 } });
  await reaches(id, 'COMPLETED');
  assert.equal(await page.locator(`.jobs-table tr[data-job-id="${id}"]`).count(), 0, 'nothing arrives while hidden');
  await setHidden(false);
  await page.locator('#connection[data-state="live"]').waitFor();
  await page.locator(`.jobs-table tr[data-job-id="${id}"][data-status="COMPLETED"]`).waitFor();
});

test('stopping the read model shows offline and marks the data stale; starting it again goes live and catches up', async () => {
  await open('#/overview');
  await loaded();
  await page.locator('#connection[data-state="live"]').waitFor();
  await up.stop();
  await page.locator('#connection[data-state="offline"]').waitFor();
  await page.locator('#stale:not([hidden])').waitFor();
  assert.match((await page.locator('#stale').textContent()) ?? '', /out of date/);
  assert.equal(await page.locator('main.stale').count(), 1);
  await screenshot('offline');
  const before = Number((await page.locator('.card-submitted .card-value').textContent())?.replace(/,/g, ''));

  await startUp();
  // Submitted while the page reconnects: the catch-up refetch or the stream brings it.
  await submit({ type: 'sleep', payload: { durationMs: 1 } });
  await page.locator('#connection[data-state="live"]').waitFor();
  await page.locator('#stale[hidden]').waitFor({ state: 'attached' });
  assert.equal(await page.locator('main.stale').count(), 0);
  await eventually('the overview caught up', async () => Number((await page.locator('.card-submitted .card-value').textContent())?.replace(/,/g, '')) > before);
  await screenshot('live-again');
});

test('no script error, CSP violation or request to another origin in any scenario', () => {
  assert.deepEqual(problems, []);
});
