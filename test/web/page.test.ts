/**
 * gptmed-serve's page at `/`, used in a real browser (Chromium through puppeteer-core) as a person would:
 * upload a CSV and read the preview, start a tiny job from the form and watch its charts fill in, ask the
 * new model in the playground, download its checkpoint from the Models tab; and, with --api-key, give the
 * key in the page's form. Every request must go to the server itself and nothing may log a console error.
 * Needs `npm run build` first (the page's scripts are dist/web) and Chromium at /usr/bin/chromium (or
 * $CHROMIUM): without it the file fails, it does not skip. Screenshots go to test-output/screenshots/;
 * with GPTMED_README_SCREENSHOT=1 the Watch tab's also replaces docs/page-training.png (the README's).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { startServer } from '../../src/serve/server.js';
import { repoRoot, tempDir } from '../helpers.js';
import { csvRows, csvText, samplePairs } from '../serve/sample-data.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(repoRoot, 'test-output', 'screenshots');
const DOCS_SHOT = path.join(repoRoot, 'docs', 'page-training.png');
/** Every wait in the browser is bounded; training gets longer below. */
const WAIT_MS = 30_000;
const JOB = 'pagejob';
const STEPS = 60;

const work = tempDir('gptmed-page-');

// The callbacks given to page.evaluate and friends run in the browser. This file is type-checked without
// the DOM library (tsconfig.json is Node's), so the few browser globals they touch are declared here.
interface PageElement {
  textContent: string | null;
  value: string;
  dataset: Record<string, string | undefined>;
  hasAttribute(name: string): boolean;
  dispatchEvent(event: unknown): boolean;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
  documentElement: { scrollWidth: number };
};
declare const window: { innerWidth: number; scrollTo(x: number, y: number): void };
declare const location: { hash: string };
declare const sessionStorage: { getItem(key: string): string | null };
declare function requestAnimationFrame(callback: () => void): number;
declare const Event: new (type: string, init: { bubbles: boolean }) => unknown;

/** 300 pairs from the bundled sample as CSV, plus two rows conversion must skip. */
function sampleCsv(): { file: string; pairs: number; badRows: number } {
  const pairs = samplePairs(300);
  const rows = csvRows(pairs);
  rows.splice(5, 0, 'A question nobody answered?,'); // empty answer (line 7)
  rows.splice(50, 0, 'a row with one column'); // missing column (line 52)
  const file = path.join(work, 'faq.csv');
  fs.writeFileSync(file, csvText(rows));
  return { file, pairs: pairs.length, badRows: 2 };
}

/** What the browser did: every request URL, and every console error and uncaught page error. */
interface Recorder {
  urls: string[];
  errors: string[];
  authorizations: string[];
}

async function openPage(browser: Browser, url: string): Promise<{ page: Page; seen: Recorder }> {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.setViewport({ width: 1280, height: 800 });
  const seen: Recorder = { urls: [], errors: [], authorizations: [] };
  page.on('request', (r) => {
    seen.urls.push(r.url());
    const auth = r.headers().authorization;
    if (auth) seen.authorizations.push(auth);
  });
  page.on('console', (m) => m.type() === 'error' && seen.errors.push(`console: ${m.text()} (${m.location().url ?? ''})`));
  page.on('pageerror', (e) => seen.errors.push(`pageerror: ${(e as Error).message}`));
  // tsx compiles this file keeping function names (`__name(fn, "look")`); the functions sent to the page
  // carry those calls with them, so the page needs the helper too.
  await page.evaluateOnNewDocument('globalThis.__name = (fn) => fn;');
  await page.goto(url, { waitUntil: 'load' });
  return { page, seen };
}

/** Set a form field as typing would (input and change events), whatever it held. */
async function setField(page: Page, selector: string, value: string): Promise<void> {
  await page.$eval(
    selector,
    (node, v) => {
      const input = node as unknown as PageElement;
      input.value = v;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    },
    value,
  );
}

const text = (page: Page, selector: string): Promise<string> => page.$eval(selector, (n) => n.textContent ?? '');
const points = (page: Page, chart: string): Promise<number> => page.$eval(`#${chart}`, (n) => Number((n as PageElement).dataset.points));

/** A screenshot of the window scrolled to the top, as the page looks when its tab is opened. */
async function shot(page: Page, name: string): Promise<string> {
  const file = path.join(SHOTS, `${name}.png`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file });
  return file;
}

/** The page's error area (role="alert") is empty: nothing went wrong that the user was told of. */
async function assertNoAlert(page: Page): Promise<void> {
  assert.equal(await text(page, '#alerts'), '', 'the page shows an error');
}

/** At a phone's width the columns stack: nothing may stick out sideways. */
async function assertFitsPhone(page: Page, tab: string): Promise<void> {
  await page.setViewport({ width: 390, height: 844 });
  await page.click(`#tab-${tab}`);
  await page.evaluate(() => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))); // charts resize on the next frame
  const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scrollWidth <= innerWidth, `${tab} tab at 390 px wide scrolls sideways (${scrollWidth} px)`);
  await shot(page, `${tab}-phone`);
  await page.setViewport({ width: 1280, height: 800 });
}

function assertOnlyServerRequests(seen: Recorder, url: string): void {
  const outside = seen.urls.filter((u) => !u.startsWith(`${url}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert.deepEqual(outside, [], 'the page requested something outside the server');
}

before(() => {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM to its path)`);
  assert.ok(fs.existsSync(path.join(repoRoot, 'dist', 'web', 'main.js')), 'dist/web/main.js missing: npm run build first');
  fs.mkdirSync(SHOTS, { recursive: true });
});

describe('the page: data, train, watch, playground, models', { timeout: 150_000 }, () => {
  let app: FastifyInstance;
  let url: string;
  let browser: Browser;
  let page: Page;
  let seen: Recorder;
  const downloads = path.join(work, 'downloads');
  const csv = sampleCsv();

  before(async () => {
    ({ app, url } = await startServer({ runsDir: path.join(work, 'runs'), checkpoints: [], host: '127.0.0.1', port: 0, maxConcurrent: 1, maxUploadMb: 10, logger: false }));
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'], protocolTimeout: WAIT_MS });
    ({ page, seen } = await openPage(browser, `${url}/`));
    fs.mkdirSync(downloads, { recursive: true });
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
  });

  after(async () => {
    await browser?.close();
    await app?.close();
  });

  test('Data: the preview shows what conversion made of the CSV: pairs, skipped rows with their lines, lengths', async () => {
    const input = await page.waitForSelector('#data-file');
    await input!.uploadFile(csv.file);
    await page.waitForSelector('#preview:not([hidden])');
    const count = async (sel: string): Promise<number> => Number((await text(page, sel)).replace(/,/g, ''));
    assert.equal(await count('#preview-pairs'), csv.pairs);
    assert.equal(await count('#preview-skipped'), csv.badRows);
    assert.equal(await count('#preview-rows'), csv.pairs + csv.badRows);
    const skipped = await page.$$eval('#skipped-table tbody tr', (rows) => rows.map((r) => r.textContent));
    assert.deepEqual(skipped, ['line 7empty answer', 'line 52missing column']);
    const first = await page.$$eval('#preview-first pre', (pres) => pres.map((p) => p.textContent));
    assert.equal(first.length, 10);
    assert.match(first[0]!, /^Q: .+\nA: .+$/);
    assert.ok((await page.$$('#preview-lengths .bar')).length > 0, 'a length histogram');
    await assertNoAlert(page);
    await shot(page, 'data');
  });

  test('Train: a tiny custom shape from the form, with an estimate; Watch: the charts fill in as it trains; it succeeds', { timeout: 120_000 }, async () => {
    await page.click('#tab-train');
    await page.waitForSelector('#train-form[data-ready="true"]');
    // The settings of jobs.test.ts's `tiny`, entered as a user would (one go, so one estimate is asked).
    await page.click('#size-custom');
    await page.click('#train-for-steps');
    const fields: Record<string, string> = { dModel: '32', nLayers: '1', nHeads: '2', dFf: '64', vocabSize: '300', maxLength: '64', batchSize: '8', maxSteps: String(STEPS), evalInterval: '10' };
    await page.click('details.settings:has(#more-fields) summary');
    for (const [key, value] of Object.entries(fields)) await setField(page, `#set-${key}`, value);
    await setField(page, '#job-name', JOB);
    await page.waitForFunction(() => document.querySelector('#estimate-basis')?.textContent?.startsWith('Basis: '), { timeout: 60_000 });
    assert.match(await text(page, '#estimate'), new RegExp(`About .+ on this machine: ${STEPS} steps`));
    await assertNoAlert(page);
    await shot(page, 'train');

    await page.click('#start-job');
    await page.waitForFunction((id) => location.hash === `#watch/${id}`, {}, JOB);
    // Sample the train-loss chart's point count in the page while the job runs (every 50 ms).
    await page.evaluate(() => {
      const w = window as unknown as { samples: Array<[string, number]> };
      w.samples = [];
      setInterval(() => w.samples.push([document.querySelector('#job-state')?.textContent ?? '', Number((document.querySelector('#chart-train-loss') as PageElement).dataset.points)]), 50);
    });
    await page.waitForFunction(() => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector('#job-state')?.textContent ?? ''), { timeout: 90_000 });
    assert.equal(await text(page, '#job-state'), 'succeeded', await text(page, '#job-message'));
    const samples = await page.evaluate(() => (window as unknown as { samples: Array<[string, number]> }).samples);
    const whileRunning = new Set(samples.filter(([state, n]) => state === 'running' && n > 0).map(([, n]) => n));
    assert.ok(whileRunning.size >= 2, `the loss chart gained points while the job ran: ${[...whileRunning].join(', ')}`);

    // The job got what the form says, and nothing else: unchanged settings are left to the commands' defaults.
    const job = (await (await fetch(`${url}/v1/jobs/${JOB}`, { signal: AbortSignal.timeout(WAIT_MS) })).json()) as { config: Record<string, unknown> };
    const expected = { ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Number(v)])), numEpochs: STEPS, name: JOB };
    assert.deepEqual(job.config, expected);

    // The charts hold every record of the stream; the step line says the run is done.
    const records = await metricsRecords(url, JOB);
    await page.waitForFunction((n) => Number((document.querySelector('#chart-train-loss') as PageElement).dataset.points) === n, {}, records.train);
    assert.equal(await points(page, 'chart-val-loss'), records.eval);
    assert.equal(await points(page, 'chart-lr'), records.train);
    assert.equal(await points(page, 'chart-tokens'), records.train);
    assert.equal(await text(page, '#job-step'), `${STEPS} / ${STEPS}`);
    assert.equal(await page.$eval(`.job-item[data-job="${JOB}"] .badge`, (n) => n.textContent), 'succeeded');
    await assertNoAlert(page);
    await new Promise((resolve) => setTimeout(resolve, 400)); // the last redraw
    const watchShot = await shot(page, 'watch');
    if (process.env.GPTMED_README_SCREENSHOT === '1') fs.copyFileSync(watchShot, DOCS_SHOT);

    // A reload comes back to the same job with the whole curve (the stream replays the history).
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction((n) => Number((document.querySelector('#chart-train-loss') as PageElement)?.dataset.points) === n, {}, records.train);
    assert.equal(await text(page, '#job-title'), `Job ${JOB}`);
  });

  test('Playground: the new model answers, streamed, with its stop reason and speed; a follow-up sends the earlier turn', async () => {
    await page.click('#tab-playground');
    await page.waitForFunction((id) => (document.querySelector('#play-model') as PageElement).value === id, {}, JOB);
    await page.select('#play-preset', 'greedy');
    assert.equal(await page.$eval('#play-temperature', (n) => (n as PageElement).value), '0');
    await setField(page, '#play-max-tokens', '24');
    await page.type('#play-question', 'African: Kenya -- capital?');
    // Watch the answer grow from inside the page, every animation frame until it is done.
    await page.evaluate(() => {
      const w = window as unknown as { grew: Promise<number[]> };
      w.grew = new Promise((resolve) => {
        const lengths: number[] = [];
        const look = (): void => {
          const answer = document.querySelector('.turn:last-child .answer');
          const length = answer?.textContent?.length ?? 0;
          if (length !== lengths.at(-1)) lengths.push(length);
          if (answer && !answer.hasAttribute('aria-busy')) resolve(lengths);
          else requestAnimationFrame(look);
        };
        look();
      });
    });
    await page.keyboard.press('Enter');
    const grew = await page.evaluate(() => (window as unknown as { grew: Promise<number[]> }).grew);
    const meta = await text(page, '.turn:last-child .answer-meta');
    assert.match(meta, /^finish: (stop|length) · \d+ tokens in [\d.]+ s · [\d.,]+ tokens\/s$/);
    assert.ok(grew.at(-1)! > 0, `an answer (${meta})`);
    assert.ok(grew.filter((n) => n > 0).length >= 2 || /tokens\/s/.test(meta), `the answer streamed in: lengths ${grew.join(', ')}`);

    await page.type('#play-question', 'African: Ghana -- capital?');
    await page.click('#play-send');
    await page.waitForFunction(() => document.querySelectorAll('.turn .answer-meta').length === 2 && /tokens\/s/.test(document.querySelector('.turn:last-child .answer-meta')?.textContent ?? ''));
    await assertNoAlert(page);
    await shot(page, 'playground');
  });

  test('Models: the model with its size, parameters and step; its checkpoint downloads through the page', async () => {
    await page.click('#tab-models');
    const card = `.model-card[data-model="${JOB}"]`;
    await page.waitForSelector(card);
    const facts = await page.$eval(card, (n) => n.textContent ?? '');
    assert.match(facts, /Sizecustom/);
    assert.match(facts, new RegExp(`Step${STEPS}`));
    await page.$$eval(`${card} button`, (buttons) => buttons.find((b) => b.textContent === 'Download checkpoint')!.click());
    const deadline = Date.now() + WAIT_MS;
    const tarDone = (): string | undefined => fs.readdirSync(downloads).find((f) => f.endsWith('.tar'));
    while (!tarDone() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(tarDone(), `the checkpoint .tar was saved (${fs.readdirSync(downloads).join(', ')})`);
    assert.ok(fs.statSync(path.join(downloads, tarDone()!)).size > 10_000);
    await assertNoAlert(page);
    await shot(page, 'models');
  });

  test('every tab fits a phone-sized window; no console error; no request outside the server', async () => {
    for (const tab of ['data', 'train', 'watch', 'playground', 'models']) await assertFitsPhone(page, tab);
    assert.deepEqual(seen.errors, []);
    assertOnlyServerRequests(seen, url);
    assert.ok(seen.urls.some((u) => u.endsWith('/vendor/uplot/uPlot.esm.js')), 'uPlot from the server');
  });
});

test('with --api-key the page asks for the key in its form, retries with it, and keeps it for the tab', { timeout: 30_000 }, async () => {
  const { app, url } = await startServer({ runsDir: path.join(work, 'key-runs'), checkpoints: [], host: '127.0.0.1', port: 0, apiKey: 'sesame', maxConcurrent: 1, maxUploadMb: 10, logger: false });
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'], protocolTimeout: WAIT_MS });
  try {
    const { page, seen } = await openPage(browser, `${url}/#models`);
    await page.waitForSelector('#key-dialog[open]');
    assert.equal(await page.$$eval('dialog[open]', (d) => d.length), 1, 'one form, however many requests were refused');
    await page.type('#key-input', 'wrong');
    await page.click('#key-submit');
    await page.waitForFunction(() => /refused/.test(document.querySelector('#key-message')?.textContent ?? '') && document.querySelector('#key-dialog[open]'));
    await shot(page, 'api-key');
    await page.type('#key-input', 'sesame');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#model-list[data-loaded="true"] #no-models');
    await page.waitForSelector('#train-form[data-ready="true"]');
    assert.equal(await page.$('#key-dialog[open]'), null);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('gptmed.apiKey')), 'sesame');
    assert.ok(seen.authorizations.includes('Bearer sesame'));
    await assertNoAlert(page);
    // The browser logs each refused request itself (401); nothing else may be logged.
    assert.deepEqual(seen.errors.filter((e) => !/status of 401/.test(e)), []);
    assertOnlyServerRequests(seen, url);
  } finally {
    await browser.close();
    await app.close();
  }
});

/** How many train and eval records the job's event stream holds (what the charts must show). */
async function metricsRecords(url: string, id: string): Promise<{ train: number; eval: number }> {
  const body = await (await fetch(`${url}/v1/jobs/${id}/events`, { signal: AbortSignal.timeout(WAIT_MS) })).text();
  const types = [...body.matchAll(/^data: (\{"type":"(\w+)")/gm)].map((m) => m[2]);
  return { train: types.filter((t) => t === 'train').length, eval: types.filter((t) => t === 'eval').length };
}
