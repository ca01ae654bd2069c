import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { measureTrees } from '../src/measure/measure.js';
import { compare, median } from '../src/domain/stats.js';

/**
 * How trustworthy is the speedup gate? Many A/A comparisons (identical trees)
 * give the false-positive rate; comparisons with a known injected slowdown
 * (the same loop run 1.10x and 1.25x as long) give the power. Everything goes
 * through the real protocol (measureTrees: the Python runner with its
 * defaults, 4 ABBA rounds x 10 samples per side, each measurement a fork of
 * one server, pinned to one CPU; then the same again for every benchmark the
 * first rounds call changed). A comparison is flagged when the final verdict
 * is not "no change"; how many A/A comparisons went on to the second stage,
 * and asv's plain rule on the first-stage samples, are reported beside it.
 * BENCH_DUMP=DIR keeps every suite's full report there for analysis.
 * Run it on an otherwise idle machine: other load is noise it will count.
 */
const PER_SUITE = Number(process.env.BENCH_BENCHMARKS_PER_SUITE ?? 50);
const AA_SUITES = Number(process.env.BENCH_AA_SUITES ?? 16);
const POWER_SUITES = Number(process.env.BENCH_POWER_SUITES ?? 4);
const LAUNCH_METHOD = (process.env.BENCH_LAUNCH_METHOD ?? 'auto') as 'auto' | 'forkserver' | 'spawn';
const SAMPLE_TIME = Number(process.env.BENCH_SAMPLE_TIME ?? 0.002);
const PYTHON = process.env.BENCH_PYTHON ?? 'python3';
const DUMP = process.env.BENCH_DUMP;

/** A tree whose suite has PER_SUITE loop benchmarks, each doing `scale` times its base amount of work. */
function writeTree(root: string, scale: number): string {
  mkdirSync(path.join(root, 'benchmarks'), { recursive: true });
  writeFileSync(path.join(root, 'asv.conf.json'), '{"version": 1, "benchmark_dir": "benchmarks"}');
  writeFileSync(path.join(root, 'benchmarks', '__init__.py'), '');
  const lines = ['def work(n):', '    s = 0', '    for i in range(n):', '        s += i * i', '    return s', ''];
  for (let i = 0; i < PER_SUITE; i++) {
    const n = Math.round((2000 + 300 * (i % 10)) * scale);
    lines.push(`def time_loop_${String(i).padStart(3, '0')}():`, `    work(${n})`, '');
  }
  writeFileSync(path.join(root, 'benchmarks', 'bench_loops.py'), lines.join('\n'));
  return root;
}

interface Outcome { verdict: string; screenVerdict: string; asvSignificant: boolean; speedup: number; samplesPerSide: number; launchMethod: string }

async function comparisons(scale: number, suites: number, tmp: string, label: string): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let s = 0; s < suites; s++) {
    const base = writeTree(path.join(tmp, `${label}-${s}-base`), 1);
    const head = writeTree(path.join(tmp, `${label}-${s}-head`), scale);
    const t0 = performance.now();
    const report = await measureTrees({ python: PYTHON, base, head, sampleTime: SAMPLE_TIME, warmupTime: 0.005, launchMethod: LAUNCH_METHOD });
    const perSide = report.rounds * report.samples_per_round;
    if (DUMP) writeFileSync(path.join(DUMP, `${label}-${s}.json`), JSON.stringify(report));
    for (const b of report.benchmarks) {
      if (b.verdict === 'failed') throw new Error(`${b.name}: ${b.error}`);
      // asv's rule on the same first-stage samples the gate screened
      const c = compare(b.base_samples.slice(0, perSide), b.head_samples.slice(0, perSide));
      outcomes.push({ verdict: b.verdict, screenVerdict: b.confirmation ? 'measured again' : 'no change', asvSignificant: c.significant, speedup: c.speedup, samplesPerSide: perSide, launchMethod: report.launch_method ?? 'spawn' });
    }
    console.error(`  ${label} suite ${s + 1}/${suites}: ${report.benchmarks.length} comparisons (${report.benchmarks.filter((b) => b.confirmation).length} re-measured) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return outcomes;
}

export async function run(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'perfmine-fidelity-'));
  const t0 = performance.now();
  try {
    console.error(`bench measure-fidelity: ${AA_SUITES * PER_SUITE} A/A comparisons, ${POWER_SUITES * PER_SUITE} at each slowdown`);
    const aa = await comparisons(1, AA_SUITES, tmp, 'aa');
    const s110 = await comparisons(1.1, POWER_SUITES, tmp, 'slow110');
    const s125 = await comparisons(1.25, POWER_SUITES, tmp, 'slow125');
    const detected = (xs: Outcome[]) => xs.filter((o) => o.verdict === 'slower').length / xs.length;
    const asvDetected = (xs: Outcome[]) => xs.filter((o) => o.asvSignificant && o.speedup < 1).length / xs.length;
    const falsePositives = aa.filter((o) => o.verdict !== 'no change').length;
    const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
    console.log(JSON.stringify({
      bench: 'measure-fidelity',
      aa_comparisons: aa.length,
      false_positives: falsePositives,
      false_positive_rate: round(falsePositives / aa.length),
      aa_measured_again_rate: round(aa.filter((o) => o.screenVerdict !== 'no change').length / aa.length),
      aa_max_abs_log_speedup: round(Math.max(...aa.map((o) => Math.abs(Math.log(o.speedup))))),
      comparisons_per_slowdown: s110.length,
      power_at_1_10: round(detected(s110)),
      power_at_1_25: round(detected(s125)),
      asv_rule_false_positive_rate: round(aa.filter((o) => o.asvSignificant).length / aa.length),
      asv_rule_power_at_1_10: round(asvDetected(s110)),
      asv_rule_power_at_1_25: round(asvDetected(s125)),
      measured_slowdown_at_1_10: round(1 / median(s110.map((o) => o.speedup)), 3),
      measured_slowdown_at_1_25: round(1 / median(s125.map((o) => o.speedup)), 3),
      samples_per_side: median(aa.map((o) => o.samplesPerSide)),
      samples_per_side_second_stage: 2 * median(aa.map((o) => o.samplesPerSide)),
      launch_method: aa[0]?.launchMethod,
      seconds: Math.round((performance.now() - t0) / 1000),
    }));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
