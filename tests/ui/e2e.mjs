// End-to-end test of the management web UI in Debian's headless chromium (playwright-core):
// log in (after a refused wrong password), create a queue through the queues page, publish a
// unique payload and get it back through the queue page's forms, look at the overview's chart
// and totals and the other pages, and save a full-page screenshot of the queue page.
//
//   node e2e.mjs BASE_URL USER PASSWORD SCREENSHOT.png
//   (or WARREN_UI_URL, WARREN_UI_USER, WARREN_UI_PASSWORD, WARREN_UI_SCREENSHOT)
//
// Exits 0 on success, 1 with "e2e: FAILED: ..." on any failure; every wait is bounded, and the
// whole run gives up after RUN_LIMIT_MS. The browser is always closed.

import { chromium } from 'playwright-core';

const STEP_MS = 15000;
const RUN_LIMIT_MS = 120000;

const [url, user, password, screenshot] = [
  process.argv[2] || process.env.WARREN_UI_URL,
  process.argv[3] || process.env.WARREN_UI_USER,
  process.argv[4] ?? process.env.WARREN_UI_PASSWORD,
  process.argv[5] || process.env.WARREN_UI_SCREENSHOT,
];
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

function step(text) {
  console.log(`e2e: ${text}`);
}

class Failure extends Error {}

function check(condition, message) {
  if (!condition) throw new Failure(message);
}

// Waits until fn() (run in the test, re-evaluated) is true.
async function until(what, fn) {
  const deadline = Date.now() + STEP_MS;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Failure(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function logIn(page) {
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.locator('#login-form').waitFor();
  await page.fill('#login-username', user);
  await page.fill('#login-password', `${password}-wrong`);
  await page.click('#login-submit');
  const error = page.locator('#login-error');
  await error.waitFor();
  check(/401/.test(await error.textContent()), `a wrong password shows "${await error.textContent()}"`);
  step(`a wrong password is refused: "${await error.textContent()}"`);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.locator('#current-user', { hasText: user }).waitFor();
  step(`logged in as ${user}`);
}

async function checkOverview(page) {
  await page.click('[data-testid=nav-overview]');
  const chart = page.locator('canvas[data-testid=rate-chart]');
  await chart.waitFor();
  const box = await chart.boundingBox();
  check(box && box.width > 300 && box.height > 100, `the rate chart is ${JSON.stringify(box)}`);
  await page.locator('[data-testid=total-queues] .value', { hasText: /^\d[\d,]*$/ }).waitFor();
  for (const key of ['connections', 'channels', 'exchanges', 'consumers', 'messages_ready', 'messages']) {
    await page.locator(`[data-testid=total-${key}] .value`, { hasText: /^\d[\d,]*$/ }).waitFor();
  }
  const queues = () => page.textContent('[data-testid=total-queues] .value');
  await until('the overview to count the new queue', async () => Number((await queues()).replace(/,/g, '')) >= 1);
  await page.locator('[data-testid=rate-publish]').waitFor();
  step(`overview: chart ${Math.round(box.width)}x${Math.round(box.height)}, ${await queues()} queue(s)`);
}

async function createQueue(page, name) {
  await page.click('[data-testid=nav-queues]');
  await page.locator('#add-queue-form').waitFor();
  await page.fill('#add-queue-name', name);
  await page.click('#add-queue-submit');
  await page.locator('#add-queue-form-status.ok').waitFor();
  const link = page.locator(`[data-testid=queue-row][data-name=${JSON.stringify(name)}] a`);
  await link.waitFor();
  step(`queue ${name} created through the form`);
  await link.click();
  await page.locator('#queue-name', { hasText: name }).waitFor();
}

async function publishAndGet(page, name, payload) {
  check((await page.inputValue('#publish-routing-key')) === name, 'the routing key defaults to the queue name');
  await page.fill('#publish-payload', payload);
  await page.selectOption('#publish-delivery-mode', '2');
  await page.click('#publish-submit');
  await page.locator('#publish-form-status.ok', { hasText: 'Message published.' }).waitFor();
  step('published through the form');
  await page.fill('#get-count', '1');
  await page.selectOption('#get-ackmode', 'ack_requeue_true');
  await page.click('#get-submit');
  await page.locator('#get-form-status.ok').waitFor();
  const shown = await page.locator('[data-testid=message-payload]').first().textContent();
  check(shown === payload, `the Get form shows ${JSON.stringify(shown)}, expected ${JSON.stringify(payload)}`);
  step('got the payload back through the Get form, shown as text');
  // Requeued: the details (refreshed after the get) count it as ready.
  await until('the queue to count 1 ready message', async () =>
    /Ready\s*1\b/.test(await page.locator('[data-testid=queue-counts]').innerText()));
}

async function checkOtherPages(page) {
  await page.click('[data-testid=nav-exchanges]');
  await page.locator('[data-testid=exchange-row][data-name="amq.direct"]').waitFor();
  await page.click('[data-testid=nav-connections]');
  await page.locator('#connections-table').waitFor();
  await page.click('[data-testid=nav-users]');
  await page.locator(`[data-testid=user-row][data-name=${JSON.stringify(user)}]`).waitFor();
  await page.locator('[data-testid=permission-row]').first().waitFor();
  await page.locator('#topic-permissions-table').waitFor();
  step('exchanges, connections and users pages list their objects');
}

async function run(browser) {
  const base = new URL(url);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  // The UI must work offline: anything but the server under test is refused and reported.
  await context.route('**/*', (route) => {
    if (new URL(route.request().url()).host === base.host) return route.continue();
    problems.push(`request to another host: ${route.request().url()}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The deliberate wrong-password login logs its 401 as a failed resource.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  try {
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const name = `ui-e2e-${id}`;
    // Markup in the payload: it must come back as text, not be parsed as HTML.
    const payload = `hello from the browser ${id} <b>not bold</b> & "quoted"`;
    await logIn(page);
    await createQueue(page, name);
    await publishAndGet(page, name, payload);
    await page.screenshot({ path: screenshot, fullPage: true });
    step(`screenshot saved to ${screenshot}`);
    await checkOverview(page);
    await checkOtherPages(page);
    await page.click('#logout');
    await page.locator('#login-form').waitFor();
    step('logged out');
    check(problems.length === 0, problems.join('; '));
  } catch (e) {
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
    if (problems.length) e.message += ` (also: ${problems.join('; ')})`;
    throw e;
  } finally {
    await context.close();
  }
}

async function main() {
  if (!url || !user || password === undefined || !screenshot) {
    throw new Failure('usage: node e2e.mjs BASE_URL USER PASSWORD SCREENSHOT.png');
  }
  const watchdog = setTimeout(() => {
    console.error(`e2e: FAILED: gave up after ${RUN_LIMIT_MS / 1000} s`);
    process.exit(1); // playwright kills the browser it launched on exit
  }, RUN_LIMIT_MS);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 30000,
    // --no-sandbox: the tests run as root in CI containers, where chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  try {
    step(`chromium ${browser.version()} at ${executablePath}`);
    await run(browser);
  } finally {
    await browser.close();
    clearTimeout(watchdog);
  }
}

main().then(
  () => step('PASSED'),
  (e) => {
    console.error(`e2e: FAILED: ${e instanceof Failure ? e.message : e.stack || e}`);
    process.exitCode = 1;
  },
);
