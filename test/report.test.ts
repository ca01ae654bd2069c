/**
 * `perfmine report`: the real CLI writes the file from a database holding a
 * small funnel, and a real headless browser (Debian's chromium, driven by
 * playwright-core) opens it: every chart drew, nothing failed or asked the
 * network, the funnel's numbers are the database's, hostile text stays text.
 * The screenshot is kept under test-results/. Without /usr/bin/chromium the
 * browser tests are skipped, saying why; PERFMINE_REQUIRE_BROWSER=1 (CI) makes
 * that a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { chromium, type BrowserContext } from 'playwright-core';
import { createTestDb, type TestDb } from './helpers/db.js';
import { EXPECTED, HOSTILE_REASON, HOSTILE_TITLE, insertReportFunnel } from './helpers/report-fixtures.js';
import { readReport } from '../src/report/queries.js';
import { renderReport } from '../src/report/render.js';
import { chartJsBundle } from '../src/commands/report.js';
import { reasonKey, judgeReasonKey, groupReasons } from '../src/domain/report-reasons.js';

const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && process.env.PERFMINE_REQUIRE_BROWSER === '1') {
  throw new Error(`PERFMINE_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing (apt-get install -y chromium)`);
}
if (!haveBrowser) console.warn(`[perfmine tests] report browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);

const RESULTS = path.resolve('test-results');
const CHARTS = ['chart-funnel', 'chart-throughput', 'chart-builds-year', 'chart-builds-strategy', 'chart-speedups', 'chart-costs'];

let full: TestDb;
let empty: TestDb;
let tmp: string;

beforeAll(async () => {
  [full, empty] = await Promise.all([createTestDb(), createTestDb()]);
  await insertReportFunnel(full.db);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'perfmine-report-'));
});
afterAll(async () => {
  await Promise.all([full?.destroy(), empty?.destroy()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const cli = (url: string, args: string[]) => run('npx', ['tsx', 'src/cli.ts', ...args], {
  env: { ...process.env, DATABASE_URL: url, PERFMINE_LOG_LEVEL: 'warn' },
});

interface Opened {
  errors: string[];
  requests: string[];
  charts: Array<{ id: string; width: number; height: number; chart: boolean; painted: number }>;
  gates: Record<string, { passed: number; rejected: number; pending: number; failed: number }>;
  imgs: number;
  title: string;
  text: string;
  empties: number;
}

/** Opens the file in chromium (a fresh profile), reads what a person would see, keeps a screenshot. */
async function openInBrowser(file: string, screenshot: string): Promise<Opened> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'perfmine-chromium-'));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    const url = `file://${file}`;
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`console ${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
    await page.goto(url, { waitUntil: 'load' });
    // These functions run in the page (the test's own types have no DOM): `globalThis` is the window there.
    await page.waitForFunction(() => (globalThis as any).document.body.hasAttribute('data-charts'), undefined, { timeout: 10_000 });
    const seen = await page.evaluate(() => {
      const { Chart, document } = globalThis as any;
      const charts = [...document.querySelectorAll('canvas')].map((c: any) => {
        const ctx = c.getContext('2d');
        const px = ctx.getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
        return { id: c.id, width: c.clientWidth, height: c.clientHeight, chart: !!Chart?.getChart(c), painted };
      });
      const gates: Record<string, any> = {};
      const n = (el: { textContent: string | null } | null) => Number((el?.textContent ?? '').replace(/[^0-9]/g, '') || 0);
      for (const row of document.querySelectorAll('tr[data-gate]') as any[]) {
        gates[row.getAttribute('data-gate')!] = {
          passed: n(row.querySelector('.passed')), rejected: n(row.querySelector('.rejected')),
          pending: n(row.querySelector('.pending')), failed: n(row.querySelector('.failed')),
        };
      }
      return {
        charts, gates, imgs: document.querySelectorAll('img').length, title: document.title,
        text: document.body.innerText, empties: document.querySelectorAll('.empty').length,
      };
    });
    mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`[perfmine tests] report screenshot: ${screenshot}`);
    return { errors, requests, ...seen };
  } finally {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

describe('reasons are grouped by a normalized prefix', () => {
  it('numbers, ids and details go; the kind of reason stays', () => {
    expect(reasonKey('benchmark run 12 did not succeed: timeout (300 s)')).toBe('benchmark run # did not succeed');
    expect(reasonKey('benchmark run 40 did not succeed: OOM')).toBe('benchmark run # did not succeed');
    expect(reasonKey('not published: lower-bound speedup 1.01x of run 3 is below PERFMINE_MIN_SPEEDUP (1.05x)', { strip: /^not published:\s*/ }))
      .toBe('lower-bound speedup # of run # is below PERFMINE_MIN_SPEEDUP');
    expect(reasonKey('no attempt gave a verified environment (2 attempts)\n1. default: build_failed')).toBe('no attempt gave a verified environment');
    expect(reasonKey(null)).toBe('(no reason recorded)');
    expect(reasonKey('tests/test_core.py::test_window passed on base, failed on head')).toBe('<path> passed on base, failed on head');
    expect(judgeReasonKey('size gate: too many tokens (91234 tokens)')).toBe('size gate');
    expect(judgeReasonKey('Adds a feature.')).toBe('the LLM judged it not a performance change');
    const many = Array.from({ length: 12 }, (_, i) => ({ key: `reason ${String.fromCharCode(97 + i)}`, count: 12 - i }));
    const grouped = groupReasons(many, 8);
    expect(grouped).toHaveLength(8);
    expect(grouped.at(-1)).toEqual({ reason: 'other (5 kinds)', count: 5 + 4 + 3 + 2 + 1 });
    expect(grouped.reduce((n, r) => n + r.count, 0)).toBe(many.reduce((n, r) => n + r.count, 0));
    expect(groupReasons([{ key: 'a', count: 2 }, { key: 'other', count: 5 }, { key: 'b', count: 1 }]))
      .toEqual([{ reason: 'a', count: 2 }, { reason: 'b', count: 1 }, { reason: 'other', count: 5 }]);
  });
});

describe('the report from the database', () => {
  it('counts each gate as the database holds it, with reasons; --since and stage 7\'s wall_seconds', async () => {
    const d = await readReport(full.db);
    const q = async (where: string) => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM pull_requests p WHERE ${sql.raw(where)}`.execute(full.db)).rows[0].n;
    const gate = (k: string) => d.funnel.find((g) => g.key === k)!;
    expect(gate('scraped').passed).toBe(await q('true'));
    expect(gate('published').passed).toBe(await q('published_at IS NOT NULL'));
    expect(d.funnel.map((g) => g.passed)).toEqual([EXPECTED.scraped, EXPECTED.symbolic, EXPECTED.judged, EXPECTED.installable,
      EXPECTED.rendered, EXPECTED.built, EXPECTED.faster, EXPECTED.published]);
    expect(gate('symbolic').reasons).toEqual([
      { reason: 'no performance words in the title', count: 15 },
      { reason: 'only non-core files (tests, docs, benchmarks, CI)', count: 6 },
      { reason: 'too many files changed', count: 4 },
    ]);
    expect(gate('judged')).toMatchObject({ pending: 1, failed: 1, rejected: 4,
      reasons: [{ reason: 'the LLM judged it not a performance change', count: 3 }, { reason: 'size gate', count: 1 }] });
    expect(gate('installable').reasons).toEqual([{ reason: 'pip could not resolve', count: 1 }]);
    expect(gate('faster').reasons.map((r) => r.reason).sort()).toEqual(['no change: no benchmark faster after Holm over K=#', 'tests failed: <path> passed on base, failed on head']);
    expect(gate('published').reasons).toEqual([{ reason: 'lower-bound speedup # of run # is below PERFMINE_MIN_SPEEDUP', count: 1 }]);
    expect(d.builds.byStrategy.map((s) => [s.strategy, s.attempts, s.verified])).toEqual([
      ['cache', 1, 1], ['similar', 1, 1], ['default', 4, 2], ['llm', 2, 1]]);
    expect(d.builds.byYear).toEqual([{ year: 2022, built: 0, gaveUp: 1 }, { year: 2023, built: 2, gaveUp: 0 }, { year: 2024, built: 3, gaveUp: 0 }]);
    expect(d.speedups.map((s) => [s.maxSpeedup, s.lowerBound])).toEqual(EXPECTED.speedups.map((s) => [s.max, s.lower]));
    expect(d.throughput.bucket).toBe('hour');
    expect(d.throughput.series.map((s) => s.stage)).toEqual(['scrape_repos', 'scrape_commits', 'classify_prs', 'resolve_packages',
      'render_problems', 'synthesize_images', 'benchmark', 'publish']);
    const succeeded = (await sql<{ n: number }>`SELECT count(*)::int AS n FROM stage_runs WHERE outcome = 'succeeded'`.execute(full.db)).rows[0].n;
    expect(d.throughput.series.reduce((n, s) => n + s.counts.reduce((a, b) => a + b, 0), 0)).toBe(succeeded);
    for (const g of d.funnel) expect(g.reasons.reduce((n, r) => n + r.count, 0), g.key).toBe(g.rejected);
    // Costs: the sums of stage_runs.cost, build durations and benchmark runs (before sql/016: their start and finish).
    expect(d.costs).toMatchObject({ published: 2, llmCalls: 13 * 2 + 8 * 1, buildSeconds: 95 + 140 + 60 + 60 + 80 + 120 + 60 + 2,
      // The fixture's runs carry no wall_seconds: their start and finish times count.
      benchmarkSeconds: 300 + 120 + 420 + 380 + 250, benchmarkSecondsSource: 'wall_seconds' });
    expect(d.costs.llmTokens).toBe(13 * 3200 + 8 * 3100); // 13 PRs judged (2 calls each), 8 rendered or refused

    // Stage 7 records each run's wall_seconds: where a run has it, it counts instead of the times.
    await sql`UPDATE benchmark_runs SET wall_seconds = 100`.execute(full.db);
    const later = await readReport(full.db);
    expect(later.costs).toMatchObject({ benchmarkSeconds: 500, benchmarkSecondsSource: 'wall_seconds' });
    await sql`UPDATE benchmark_runs SET wall_seconds = NULL`.execute(full.db);

    // --since after everything: no PRs, no work.
    const none = await readReport(full.db, { since: new Date('2100-01-01T00:00:00Z') });
    expect(none.funnel[0].passed).toBe(0);
    expect(none.throughput.series).toEqual([]);
    expect(none.speedups).toEqual([]);
  });

  it('thousands of distinct reasons: a few groups, the rest counted, the total exact', async () => {
    const many = await createTestDb();
    try {
      const repo = (await sql<{ id: number }>`INSERT INTO repositories (owner, name) VALUES ('acme', 'many') RETURNING id`.execute(many.db)).rows[0].id;
      // 2,500 reasons no normalization merges (letters only), and 500 that differ only in numbers.
      const word = (i: number) => [...i.toString(26).padStart(3, '0')].map((c) => String.fromCharCode(97 + parseInt(c, 26))).join('');
      await sql`
        INSERT INTO pull_requests (repository_id, number, is_performance_commit_symbolic, is_performance_commit, can_install,
          problem_rendered_at, render_reason)
        SELECT ${repo}, g, true, true, true, now(),
          CASE WHEN g <= 2500 THEN 'odd reason ' || w WHEN g <= 2997 THEN 'fidelity check dropped ' || g || ' sections'
               ELSE 'environment ' || substr(md5(g::text), 1, 12) || ' changed' END
        FROM generate_series(1, 3000) g JOIN unnest(${Array.from({ length: 3000 }, (_, i) => word(i))}::text[]) WITH ORDINALITY AS u(w, i) ON u.i = g`.execute(many.db);
      const gate = (await readReport(many.db)).funnel.find((g) => g.key === 'rendered')!;
      expect(gate.rejected).toBe(3000);
      expect(gate.reasons.length).toBeLessThanOrEqual(8);
      expect(gate.reasons[0]).toEqual({ reason: 'fidelity check dropped # sections', count: 497 });
      // Hashes (hex with a digit) are one group too: made # in SQL before grouping.
      expect(gate.reasons[1]).toEqual({ reason: 'environment # changed', count: 3 });
      expect(gate.reasons.reduce((n, r) => n + r.count, 0)).toBe(3000);
      expect(gate.reasons.at(-1)).toEqual({ reason: 'other', count: 2500 - 5 });
    } finally {
      await many.destroy();
    }
  });

  it('hostile text from the database cannot leave its element or the data script', async () => {
    const bundle = chartJsBundle();
    const html = renderReport(await readReport(full.db), { chartJs: bundle });
    expect(html).not.toContain(HOSTILE_REASON);
    expect(html).not.toContain(HOSTILE_TITLE);
    expect(html).toContain('&lt;/script&gt;&lt;img src=x onerror=document.body.remove()&gt;');
    expect(html).toContain('&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; Speed up rolling sums');
    // Only the page's three scripts close: JSON data, Chart.js, the init.
    expect(html.match(/<\/script>/gi)).toHaveLength(3);
    expect(html).toContain(bundle);
    expect(html.replace(bundle, '')).not.toMatch(/https?:\/\//); // the page names no URL (Chart.js's own code aside)
  });

  it('--since that is not a date is an error that says so', async () => {
    const err = await cli(empty.url, ['report', '--out', path.join(tmp, 'x.html'), '--since', 'yesterday-ish']).then(() => null, (e) => e);
    expect(err?.code).toBe(1);
    expect(err?.stderr).toMatch(/--since: not a date: yesterday-ish/);
  }, 60_000);
});

describe.skipIf(!haveBrowser)('the report in a real browser', () => {
  it('the CLI writes one file; every chart draws, nothing errs or asks the network, the numbers are the database\'s', async () => {
    const file = path.join(tmp, 'report.html');
    const { stdout } = await cli(full.url, ['report', '--out', file]);
    expect(stdout).toContain(`wrote ${file}`);
    expect(stdout).toContain(`${EXPECTED.scraped} PRs scraped, ${EXPECTED.published} published`);
    const seen = await openInBrowser(file, path.join(RESULTS, 'report.png'));
    expect(seen.errors).toEqual([]);
    expect(seen.requests).toEqual([]);
    expect(seen.charts.map((c) => c.id).sort()).toEqual([...CHARTS].sort());
    for (const c of seen.charts) {
      expect(c, c.id).toMatchObject({ chart: true });
      expect(c.width, c.id).toBeGreaterThan(200);
      expect(c.height, c.id).toBeGreaterThan(100);
      expect(c.painted, c.id).toBeGreaterThan(500);
    }
    expect(seen.empties).toBe(0);
    // The table shows what the database holds, gate by gate.
    const d = await readReport(full.db);
    for (const g of d.funnel) {
      expect(seen.gates[g.key], g.key).toEqual({ passed: g.passed, rejected: g.rejected, pending: g.pending, failed: g.failed });
    }
    expect(seen.gates.published.passed).toBe(EXPECTED.published);
    expect(seen.gates.scraped.passed).toBe(EXPECTED.scraped);
    // Hostile text is shown as text: no image element, the title untouched.
    expect(seen.imgs).toBe(0);
    expect(seen.title).toMatch(/^perfmine report/);
    expect(seen.text).toContain(HOSTILE_REASON);
    expect(seen.text).toContain(HOSTILE_TITLE);
    expect(seen.text).toContain('lower-bound speedup # of run # is below PERFMINE_MIN_SPEEDUP');
    expect(existsSync(path.join(RESULTS, 'report.png'))).toBe(true);
  }, 90_000);

  it('an empty database: every section says "no data yet", no chart, no error', async () => {
    const file = path.join(tmp, 'empty.html');
    await cli(empty.url, ['report', '--out', file]);
    expect(readFileSync(file, 'utf8')).toContain('no data yet');
    const seen = await openInBrowser(file, path.join(RESULTS, 'report-empty.png'));
    expect(seen.errors).toEqual([]);
    expect(seen.requests).toEqual([]);
    expect(seen.charts).toEqual([]);
    expect(seen.empties).toBe(6); // funnel, throughput, builds by year and by strategy, speedups, costs
  }, 90_000);

});
