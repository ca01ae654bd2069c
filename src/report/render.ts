/**
 * The report as one self-contained HTML page: data in, string out, no I/O.
 * Every text from the database (PR titles, reasons, stage and repository
 * names) is escaped; the data travels as an inline JSON script with `<`, `>`
 * and `&` escaped, so nothing in it can close the script. Chart configurations
 * are plain JSON made here; the page's only code creates one Chart.js chart per
 * canvas. A Content-Security-Policy forbids every request: the file works offline.
 */
import type { FunnelGate, ReportData } from './data.js';

export interface RenderOptions {
  /** The text of chart.js/dist/chart.umd.js. */
  chartJs: string;
}

const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#475569', '#ea580c'];

export function escapeHtml(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe inside a <script> element: no `<`, `>`, `&` or line separators survive literally. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(a === b || (100 * a) / b >= 10 ? 0 : 1)}%` : '–');
const x = (n: number | null) => (n === null || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`);

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const EMPTY = '<p class="empty">no data yet</p>';

function chartBox(id: string, height = 300): string {
  return `<div class="chart" style="height:${height}px"><canvas id="${id}" role="img"></canvas></div>`;
}

// ---------------------------------------------------------------------------
// Speedup histogram bins (log-like: most published speedups sit near the gate).

export const SPEEDUP_BINS: ReadonlyArray<{ label: string; lo: number; hi: number }> = [
  { label: '< 1.05×', lo: -Infinity, hi: 1.05 },
  { label: '1.05–1.1×', lo: 1.05, hi: 1.1 },
  { label: '1.1–1.25×', lo: 1.1, hi: 1.25 },
  { label: '1.25–1.5×', lo: 1.25, hi: 1.5 },
  { label: '1.5–2×', lo: 1.5, hi: 2 },
  { label: '2–3×', lo: 2, hi: 3 },
  { label: '3–5×', lo: 3, hi: 5 },
  { label: '5–10×', lo: 5, hi: 10 },
  { label: '10–100×', lo: 10, hi: 100 },
  { label: '≥ 100×', lo: 100, hi: Infinity },
];

export function histogram(values: ReadonlyArray<number | null>): number[] {
  const counts = SPEEDUP_BINS.map(() => 0);
  for (const v of values) {
    if (v === null || !Number.isFinite(v)) continue;
    const i = SPEEDUP_BINS.findIndex((b) => v >= b.lo && v < b.hi);
    if (i >= 0) counts[i]++;
  }
  return counts;
}

// ---------------------------------------------------------------------------
// Chart configurations (JSON only: no functions cross into the page).

function chartConfigs(d: ReportData): Record<string, unknown> {
  const charts: Record<string, unknown> = {};
  const scraped = d.funnel[0]?.passed ?? 0;
  if (scraped > 0) {
    charts['chart-funnel'] = {
      type: 'bar',
      data: {
        labels: d.funnel.map((g) => g.label),
        datasets: [
          { label: 'passed', data: d.funnel.map((g) => g.passed), backgroundColor: '#2563eb' },
          { label: 'rejected', data: d.funnel.map((g) => g.rejected), backgroundColor: '#f87171' },
          { label: 'pending', data: d.funnel.map((g) => g.pending), backgroundColor: '#cbd5e1' },
          { label: 'failed (gave up)', data: d.funnel.map((g) => g.failed), backgroundColor: '#7f1d1d' },
        ],
      },
      options: {
        indexAxis: 'y',
        // Stacked: a bar is the PRs that reached the step. A log axis once the first steps dwarf the last.
        scales: {
          x: scraped >= 1000
            ? { type: 'logarithmic', stacked: true, min: 1, title: { display: true, text: 'PRs (log scale)' } }
            : { stacked: true, beginAtZero: true, title: { display: true, text: 'PRs' } },
          y: { stacked: true },
        },
        plugins: { legend: { position: 'bottom' } },
      },
    };
  }
  if (d.throughput.labels.length && d.throughput.series.length) {
    // A line needs a few points; a span of one or two buckets is drawn as bars.
    charts['chart-throughput'] = {
      type: d.throughput.labels.length < 4 ? 'bar' : 'line',
      data: {
        labels: d.throughput.labels,
        datasets: d.throughput.series.map((s, i) => ({
          label: s.stage, data: s.counts, borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
          tension: 0, pointRadius: d.throughput.labels.length > 60 ? 0 : 2,
        })),
      },
      options: {
        scales: { y: { beginAtZero: true, title: { display: true, text: `rows done per ${d.throughput.bucket}` } } },
        plugins: { legend: { position: 'bottom' } },
      },
    };
  }
  if (d.builds.byYear.length) {
    charts['chart-builds-year'] = {
      type: 'bar',
      data: {
        labels: d.builds.byYear.map((r) => (r.year === null ? 'unknown' : String(r.year))),
        datasets: [
          { label: 'verified environment', data: d.builds.byYear.map((r) => r.built), backgroundColor: '#16a34a' },
          { label: 'gave up', data: d.builds.byYear.map((r) => r.gaveUp), backgroundColor: '#f87171' },
        ],
      },
      options: {
        scales: { x: { stacked: true, title: { display: true, text: 'year of the commit' } }, y: { stacked: true, beginAtZero: true, title: { display: true, text: 'PRs' } } },
        plugins: { legend: { position: 'bottom' } },
      },
    };
  }
  if (d.builds.byStrategy.length) {
    charts['chart-builds-strategy'] = {
      type: 'bar',
      data: {
        labels: d.builds.byStrategy.map((r) => r.strategy),
        datasets: [
          { label: 'verified', data: d.builds.byStrategy.map((r) => r.verified), backgroundColor: '#16a34a' },
          { label: 'not verified', data: d.builds.byStrategy.map((r) => r.attempts - r.verified), backgroundColor: '#f87171' },
        ],
      },
      options: {
        scales: { x: { stacked: true, title: { display: true, text: 'strategy' } }, y: { stacked: true, beginAtZero: true, title: { display: true, text: 'build attempts' } } },
        plugins: { legend: { position: 'bottom' } },
      },
    };
  }
  if (d.speedups.length) {
    charts['chart-speedups'] = {
      type: 'bar',
      data: {
        labels: SPEEDUP_BINS.map((b) => b.label),
        datasets: [
          { label: 'max speedup', data: histogram(d.speedups.map((s) => s.maxSpeedup)), backgroundColor: '#2563eb' },
          { label: 'its lower bound', data: histogram(d.speedups.map((s) => s.lowerBound)), backgroundColor: '#93c5fd' },
        ],
      },
      options: {
        scales: { x: { title: { display: true, text: 'speedup (base time / patched time)' } }, y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'published PRs' } } },
        plugins: { legend: { position: 'bottom' } },
      },
    };
  }
  const costly = d.costs.perStage.filter((s) => s.seconds > 0 || s.apiCalls > 0 || s.llmTokens > 0);
  if (costly.length) {
    charts['chart-costs'] = {
      type: 'bar',
      data: {
        labels: costly.map((s) => s.stage),
        datasets: [
          { label: 'wall time of attempts (s)', data: costly.map((s) => Math.round(s.seconds * 10) / 10), backgroundColor: '#7c3aed', yAxisID: 'y' },
          { label: 'GitHub API calls', data: costly.map((s) => s.apiCalls), backgroundColor: '#d97706', yAxisID: 'y1' },
          { label: 'LLM tokens (thousands)', data: costly.map((s) => Math.round(s.llmTokens / 100) / 10), backgroundColor: '#0891b2', yAxisID: 'y1' },
        ],
      },
      options: {
        scales: {
          y: { beginAtZero: true, position: 'left', title: { display: true, text: 'seconds' } },
          y1: { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'calls / thousand tokens' } },
        },
        plugins: { legend: { position: 'bottom' } },
      },
    };
  }
  return charts;
}

// ---------------------------------------------------------------------------
// Sections

function reasonsList(g: FunnelGate): string {
  if (!g.reasons.length) return '';
  return `<ul class="reasons">${g.reasons.map((r) =>
    `<li><span class="n">${int(r.count)}</span> <span class="reason">${escapeHtml(r.reason)}</span></li>`).join('')}</ul>`;
}

function funnelSection(d: ReportData): string {
  const scraped = d.funnel[0]?.passed ?? 0;
  if (!scraped) return `<section id="funnel"><h2>Funnel</h2>${EMPTY}</section>`;
  const rows = d.funnel.map((g, i) => {
    const prev = i === 0 ? g.passed : d.funnel[i - 1].passed;
    return `<tr data-gate="${escapeHtml(g.key)}">
      <td class="gate">${escapeHtml(g.label)}${g.stage ? `<div class="stage">${escapeHtml(g.stage)}</div>` : ''}</td>
      <td class="num passed">${int(g.passed)}</td>
      <td class="num">${i === 0 ? '' : pct(g.passed, prev)}</td>
      <td class="num">${pct(g.passed, scraped)}</td>
      <td class="num pending">${g.pending ? int(g.pending) : ''}</td>
      <td class="num failed">${g.failed ? int(g.failed) : ''}</td>
      <td class="num rejected">${g.rejected ? int(g.rejected) : ''}</td>
      <td>${reasonsList(g)}</td>
    </tr>`;
  }).join('');
  return `<section id="funnel"><h2>Funnel</h2>
    <p class="note">Each step counts the PRs that passed it; rejected PRs are grouped by the start of their reason
    (numbers and ids made #). Pending: reached the step, not decided yet. Failed: the stage gave up after its retries
    (<code>SELECT * FROM failures</code>).</p>
    ${chartBox('chart-funnel', 320)}
    <table class="funnel"><thead><tr><th>step</th><th>passed</th><th>of previous</th><th>of scraped</th><th>pending</th><th>failed</th><th>rejected</th><th>why rejected</th></tr></thead>
    <tbody>${rows}</tbody></table></section>`;
}

function throughputSection(d: ReportData): string {
  const body = d.throughput.labels.length && d.throughput.series.length
    ? `<p class="note">Successful attempts per stage per ${d.throughput.bucket} (UTC), from <code>stage_runs</code>.</p>${chartBox('chart-throughput', 300)}`
    : EMPTY;
  return `<section id="throughput"><h2>Throughput per stage</h2>${body}</section>`;
}

function buildsSection(d: ReportData): string {
  const year = d.builds.byYear.length
    ? `<p class="note">PRs stage 6 decided, by the year of their merge commit: a verified environment, or given up.</p>${chartBox('chart-builds-year', 260)}`
    : EMPTY;
  const strategy = d.builds.byStrategy.length
    ? `<p class="note">Build attempts per strategy of the cascade (cache → similar → default → LLM).</p>${chartBox('chart-builds-strategy', 260)}
      <table><thead><tr><th>strategy</th><th>attempts</th><th>verified</th><th>success</th><th>PRs</th><th>build time</th></tr></thead><tbody>
      ${d.builds.byStrategy.map((s) => `<tr data-strategy="${escapeHtml(s.strategy)}"><td>${escapeHtml(s.strategy)}</td><td class="num">${int(s.attempts)}</td><td class="num">${int(s.verified)}</td><td class="num">${pct(s.verified, s.attempts)}</td><td class="num">${int(s.prs)}</td><td class="num">${duration(s.seconds)}</td></tr>`).join('')}
      </tbody></table>`
    : EMPTY;
  return `<section id="builds"><h2>Builds</h2><div class="two">
    <div><h3>By year of the commit</h3>${year}</div>
    <div><h3>By strategy</h3>${strategy}</div></div></section>`;
}

function speedupsSection(d: ReportData): string {
  if (!d.speedups.length) return `<section id="speedups"><h2>Published speedups</h2>${EMPTY}</section>`;
  const shown = d.speedups.slice(0, 25);
  return `<section id="speedups"><h2>Published speedups</h2>
    <p class="note">${int(d.speedups.length)} published PR${d.speedups.length === 1 ? '' : 's'}: the largest speedup among the benchmarks that passed the PR-level gate,
    and its lower bound (what publishing requires to clear <code>PERFMINE_MIN_SPEEDUP</code>).</p>
    ${chartBox('chart-speedups', 280)}
    <table class="speedups"><thead><tr><th>PR</th><th>title</th><th>max speedup</th><th>lower bound</th><th>published</th></tr></thead><tbody>
    ${shown.map((s) => `<tr><td class="pr">${escapeHtml(s.repo)}#${s.number}</td><td class="title">${escapeHtml(s.title)}</td><td class="num">${x(s.maxSpeedup)}</td><td class="num">${x(s.lowerBound)}</td><td>${escapeHtml(s.publishedAt.slice(0, 10))}</td></tr>`).join('')}
    </tbody></table>${d.speedups.length > shown.length ? `<p class="note">…and ${int(d.speedups.length - shown.length)} more.</p>` : ''}</section>`;
}

function costsSection(d: ReportData): string {
  const c = d.costs;
  if (!c.perStage.length && !c.buildSeconds && c.benchmarkSeconds === null) return `<section id="costs"><h2>Cost</h2>${EMPTY}</section>`;
  const per = (v: number) => (c.published ? v / c.published : null);
  const tile = (label: string, total: string, each: string | null) =>
    `<div class="tile"><div class="label">${escapeHtml(label)}</div><div class="value">${each ?? total}</div><div class="sub">${each === null ? 'in total (nothing published yet)' : `per published task · ${total} in total`}</div></div>`;
  const fmtPer = (v: number, f: (n: number) => string) => (per(v) === null ? null : f(per(v)!));
  const benchTile = c.benchmarkSeconds === null
    ? `<div class="tile"><div class="label">benchmark time</div><div class="value">–</div><div class="sub">no benchmark run yet</div></div>`
    : tile('benchmark time', duration(c.benchmarkSeconds), fmtPer(c.benchmarkSeconds, duration));
  return `<section id="costs"><h2>Cost per published task</h2>
    <p class="note">Everything the funnel spent${d.since ? ' in the period' : ''}, divided by the ${int(c.published)} published task${c.published === 1 ? '' : 's'}
    (rejected PRs cost too). Benchmark time from <code>benchmark_runs.${escapeHtml(c.benchmarkSecondsSource === 'wall_seconds' ? 'wall_seconds' : 'started_at/finished_at')}</code>.</p>
    <div class="tiles" id="cost-tiles">
      ${tile('GitHub API calls', int(c.apiCalls), fmtPer(c.apiCalls, (n) => n.toFixed(1)))}
      ${tile('LLM calls', int(c.llmCalls), fmtPer(c.llmCalls, (n) => n.toFixed(1)))}
      ${tile('LLM tokens', int(c.llmTokens), fmtPer(c.llmTokens, int))}
      ${tile('build time', duration(c.buildSeconds), fmtPer(c.buildSeconds, duration))}
      ${benchTile}
    </div>
    ${chartBox('chart-costs', 260)}
    <table><thead><tr><th>stage</th><th>attempts</th><th>API calls</th><th>LLM calls</th><th>LLM tokens</th><th>wall time</th></tr></thead><tbody>
    ${c.perStage.map((s) => `<tr><td>${escapeHtml(s.stage)}</td><td class="num">${int(s.attempts)}</td><td class="num">${int(s.apiCalls)}</td><td class="num">${int(s.llmCalls)}</td><td class="num">${int(s.llmTokens)}</td><td class="num">${duration(s.seconds)}</td></tr>`).join('')}
    </tbody></table></section>`;
}

const CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#0f172a;background:#f1f5f9}
header{background:#0f172a;color:#e2e8f0;padding:20px 32px}
header h1{margin:0 0 4px;font-size:22px;color:#fff}
header .meta{font-size:13px;color:#94a3b8}
main{max-width:1180px;margin:0 auto;padding:20px 24px 40px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:18px 22px;margin:0 0 18px}
h2{margin:0 0 6px;font-size:18px}
h3{margin:8px 0 4px;font-size:14px;color:#334155}
.note{color:#64748b;font-size:13px;margin:4px 0 10px}
.empty{color:#94a3b8;font-style:italic;padding:18px 0;margin:0}
.chart{position:relative;width:100%;margin:8px 0 14px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;white-space:nowrap;color:#475569;border-bottom:2px solid #e2e8f0;padding:6px 8px}
td{border-bottom:1px solid #f1f5f9;padding:6px 8px;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.passed{font-weight:600}
td.rejected{color:#b91c1c}td.failed{color:#7f1d1d}td.pending{color:#64748b}
.stage{font-family:ui-monospace,monospace;font-size:11px;color:#94a3b8}
ul.reasons{list-style:none;margin:0;padding:0}
ul.reasons li{margin:0 0 2px;overflow-wrap:anywhere}
ul.reasons .n{display:inline-block;min-width:3.2em;text-align:right;font-variant-numeric:tabular-nums;color:#b91c1c;margin-right:4px}
td.title{overflow-wrap:anywhere}
td.pr{white-space:nowrap;font-family:ui-monospace,monospace;font-size:12px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:24px}
@media (max-width:900px){.two{grid-template-columns:1fr}}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:10px 0}
.tile{border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px;background:#f8fafc}
.tile .label{font-size:12px;color:#64748b;text-transform:uppercase;letter-spacing:.04em}
.tile .value{font-size:22px;font-weight:650;margin:2px 0}
.tile .sub{font-size:12px;color:#94a3b8}
.summary{margin-bottom:18px}
code{font-family:ui-monospace,monospace;font-size:12px;background:#f1f5f9;padding:0 3px;border-radius:3px}
`;

// The page's only code: one chart per canvas whose configuration the data carries.
const INIT = `(function(){
  var payload = JSON.parse(document.getElementById('report-data').textContent);
  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  // Log axes label powers of ten only (their 2s, 3s and 5s overlap at a million).
  Object.keys(payload.charts).forEach(function (id) {
    var scales = (payload.charts[id].options || {}).scales || {};
    Object.keys(scales).forEach(function (k) {
      if (scales[k].type !== 'logarithmic') return;
      scales[k].ticks = Object.assign({}, scales[k].ticks, { autoSkip: false, maxRotation: 0, callback: function (v) {
        var l = Math.log10(v);
        return Math.abs(l - Math.round(l)) < 1e-9 ? Number(v).toLocaleString('en-US') : '';
      } });
    });
  });
  var made = {};
  Object.keys(payload.charts).forEach(function (id) {
    var canvas = document.getElementById(id);
    if (canvas) made[id] = new Chart(canvas, payload.charts[id]);
  });
  window.perfmineReport = { data: payload.report, charts: made };
  document.body.setAttribute('data-charts', String(Object.keys(made).length));
})();`;

/** The whole page. */
export function renderReport(d: ReportData, opts: RenderOptions): string {
  const scraped = d.funnel[0]?.passed ?? 0;
  const published = d.funnel.find((g) => g.key === 'published')?.passed ?? 0;
  const summary = `<div class="tiles summary" id="summary">
    <div class="tile"><div class="label">PRs scraped</div><div class="value" data-summary="scraped">${int(scraped)}</div></div>
    <div class="tile"><div class="label">published</div><div class="value" data-summary="published">${int(published)}</div><div class="sub">${scraped ? `${pct(published, scraped)} of scraped` : ''}</div></div>
    <div class="tile"><div class="label">verified environments</div><div class="value">${int(d.funnel.find((g) => g.key === 'built')?.passed ?? 0)}</div></div>
    <div class="tile"><div class="label">pending now</div><div class="value">${int(d.funnel.reduce((n, g) => n + g.pending, 0))}</div><div class="sub">${int(d.funnel.reduce((n, g) => n + g.failed, 0))} failed</div></div>
  </div>`;
  const chartJs = opts.chartJs.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>perfmine report: ${escapeHtml(d.database)}</title>
<style>${CSS}</style></head>
<body>
<header><h1>perfmine funnel report</h1>
<div class="meta">database <b>${escapeHtml(d.database)}</b> · generated ${escapeHtml(d.generatedAt.replace('T', ' ').slice(0, 19))} UTC${d.since ? ` · PRs and work since ${escapeHtml(d.since.slice(0, 10))}` : ''}</div></header>
<main>
${summary}
${funnelSection(d)}
${throughputSection(d)}
${buildsSection(d)}
${speedupsSection(d)}
${costsSection(d)}
</main>
<script type="application/json" id="report-data">${scriptJson({ report: d, charts: chartConfigs(d) })}</script>
<script>${chartJs}</script>
<script>${INIT}</script>
</body></html>
`;
}
