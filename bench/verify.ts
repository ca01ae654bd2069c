import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { hostRun, oracleRunnerHostPath, runOracle, type OracleOutcome } from '../src/measure/oracle.js';
import { median } from '../src/domain/stats.js';

/**
 * PR-level fidelity of stage 7's decision: generated PRs, each a package with
 * an asv suite of 20 benchmarks, measured end to end by runOracle (tracing on
 * the base tree, calibration, the time budget, the two-stage paired protocol,
 * Holm over the selected benchmarks). As in real repositories the changed
 * module is used by few benchmarks: `pkg/hot.py` by 2 of the 20 (one calls
 * the function the PR changes, one another function of the same module), the
 * other 18 by 6 modules the PR does not touch.
 * - A/A PRs: the change is a comment in hot.py; publishing one is a false publication.
 * - 1.25x and 1.10x PRs: the changed function does 1/1.25 (1/1.10) of its work.
 * A PR "publishes" when the decision is 'faster' (lower bound >= PERFMINE_MIN_SPEEDUP's 1.05).
 *
 *   npm run bench -- verify [--aa 40] [--p125 30] [--p110 20] [--benchmarks 20]
 *
 * Goals: aa_published 0, power_pr_at_1_25 >= 0.9, under 20 minutes. Run it on
 * an otherwise idle machine: other load is noise it will count.
 * BENCH_DUMP=DIR keeps every PR's outcome (samples included) there.
 */
const BENCHMARKS_PER_SUITE = 20;
const COLD_MODULES = 6;
const SAMPLE_TIME = Number(process.env.BENCH_SAMPLE_TIME ?? 0.002);
const PYTHON = process.env.BENCH_PYTHON ?? 'python3';
const MIN_SPEEDUP = 1.05;
/** BENCH_DUMP=DIR keeps every PR's full outcome there for analysis. */
const DUMP = process.env.BENCH_DUMP;

function writeTree(root: string, o: { factor: number; comment: string; benchmarks: number }): string {
  const write = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };
  const loop = (name: string, n: number) => [`def ${name}():`, '    s = 0', `    for i in range(${n}):`, '        s += i * i', '    return s', ''].join('\n');
  write('asv.conf.json', '{"version": 1, "benchmark_dir": "benchmarks"}');
  const cold = Array.from({ length: COLD_MODULES }, (_, i) => `cold${i}`);
  write('pkg/__init__.py', `from . import hot, ${cold.join(', ')}\n`);
  // The changed function: 3000 iterations on base, 3000 / factor on head.
  write('pkg/hot.py', [`# ${o.comment}`, loop('target', Math.round(3000 / o.factor)), loop('other', 2600)].join('\n'));
  cold.forEach((m, i) => write(`pkg/${m}.py`, loop('work', 2000 + 150 * i)));
  write('benchmarks/__init__.py', '');
  const lines = ['import pkg', '', 'def time_hot_target():', '    pkg.hot.target()', '', 'def time_hot_other():', '    pkg.hot.other()', ''];
  for (let i = 0; i < o.benchmarks - 2; i++) lines.push(`def time_cold_${String(i).padStart(2, '0')}():`, `    pkg.${cold[i % COLD_MODULES]}.work()`, '');
  write('benchmarks/bench_pkg.py', lines.join('\n'));
  return root;
}

interface PrResult { label: string; outcome: OracleOutcome }

async function prs(tmp: string, label: string, factor: number, count: number, benchmarks: number): Promise<PrResult[]> {
  const out: PrResult[] = [];
  for (let i = 0; i < count; i++) {
    const base = writeTree(path.join(tmp, `${label}-${i}-base`), { factor: 1, comment: 'base', benchmarks });
    const head = writeTree(path.join(tmp, `${label}-${i}-head`), { factor, comment: 'head', benchmarks });
    const outcome = await runOracle({
      run: hostRun(), python: PYTHON, runnerPath: oracleRunnerHostPath(), base, head, changedFiles: ['pkg/hot.py'],
      minSpeedup: MIN_SPEEDUP, sampleTime: SAMPLE_TIME, warmupTime: 0.005,
    });
    out.push({ label, outcome });
    if (DUMP) writeFileSync(path.join(DUMP, `${label}-${i}.json`), JSON.stringify(outcome));
    rmSync(base, { recursive: true, force: true });
    rmSync(head, { recursive: true, force: true });
    console.error(`  ${label} PR ${i + 1}/${count}: ${outcome.decision} (${outcome.reason}) in ${outcome.wallSeconds} s`);
  }
  return out;
}

export async function run(argv: string[] = process.argv.slice(3)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { aa: { type: 'string', default: '40' }, p125: { type: 'string', default: '30' }, p110: { type: 'string', default: '20' }, benchmarks: { type: 'string', default: String(BENCHMARKS_PER_SUITE) } },
  });
  const [nAa, n125, n110, nBench] = [values.aa, values.p125, values.p110, values.benchmarks].map((v) => Number(v));
  if (![nAa, n125, n110].every((n) => Number.isInteger(n) && n >= 0) || !(Number.isInteger(nBench) && nBench >= 3)) {
    throw new Error('usage: npm run bench -- verify [--aa N] [--p125 N] [--p110 N] [--benchmarks N>=3]');
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'perfmine-verify-'));
  const t0 = performance.now();
  try {
    console.error(`bench verify: ${nAa} A/A PRs, ${n125} at 1.25x, ${n110} at 1.10x; ${nBench} benchmarks each`);
    const aa = await prs(tmp, 'aa', 1, nAa, nBench);
    const f125 = await prs(tmp, 'p125', 1.25, n125, nBench);
    const f110 = await prs(tmp, 'p110', 1.1, n110, nBench);
    const all = [...aa, ...f125, ...f110];
    const published = (xs: PrResult[]) => xs.filter((r) => r.outcome.decision === 'faster').length;
    const rate = (xs: PrResult[]) => (xs.length ? round(published(xs) / xs.length) : null);
    // A 1.25x PR "found" the right benchmark when the one that passed is the changed one.
    const wrongBenchmark = [...f125, ...f110].filter((r) => r.outcome.decision === 'faster' && !r.outcome.benchmarks.some((b) => b.passed && b.name === 'bench_pkg.time_hot_target')).length;
    const lb = f125.filter((r) => r.outcome.maxSpeedupLowerBound !== null).map((r) => r.outcome.maxSpeedupLowerBound as number);
    console.log(JSON.stringify({
      bench: 'verify',
      aa_prs: aa.length,
      aa_published: published(aa),
      pr_false_publish_rate: rate(aa),
      power_pr_at_1_25: rate(f125),
      power_pr_at_1_10: rate(f110),
      benchmarks_per_pr: nBench,
      measured_per_pr: all.length ? median(all.map((r) => r.outcome.k)) : null,
      selection_traced: all.filter((r) => r.outcome.selection.method === 'traced').length,
      failed_or_unmeasurable: all.filter((r) => r.outcome.decision === 'failed' || r.outcome.decision === 'unmeasurable').length,
      wrong_benchmark_published: wrongBenchmark,
      median_lower_bound_at_1_25: lb.length ? round(median(lb), 3) : null,
      median_pr_seconds: all.length ? round(median(all.map((r) => r.outcome.wallSeconds)), 1) : null,
      seconds: Math.round((performance.now() - t0) / 1000),
    }));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
