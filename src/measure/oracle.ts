/**
 * TEMP oracle shim (branch i12-oracle-stage): the contract of the measurement
 * core (src/measure/oracle.ts of branch i12-oracle-core) with a minimal
 * implementation, so stage 7 can be built and tested before the core lands.
 * The real core replaces this file: no tracing (every benchmark is measured,
 * selection method 'all'), no time budget, no Holm correction. Runner calls
 * go through `run` (the executor session), so the docker path works too.
 */
import { judge, screen, exactBenchmarkRegex } from './measure.js';
import type { RunnerOutput } from './runner.js';

export interface RunInEnvironment {
  (argv: string[], opts: { timeoutMs: number; signal?: AbortSignal; stdin?: string }): Promise<{
    code: number | null; stdout: string; stderr: string; timedOut: boolean; aborted: boolean; durationMs: number;
  }>;
}

export interface OracleInput {
  run: RunInEnvironment;
  python: string;
  /** The runner's path as `run` sees it. */
  runnerPath: string;
  base: string;
  head: string;
  build?: 'auto' | 'never' | 'always';
  config?: string;
  changedFiles: string[];
  cpus?: string;
  minSpeedup: number;
  budgetSeconds?: number;
  signal?: AbortSignal;
}

export interface OracleOutcome {
  decision: 'faster' | 'no change' | 'slower' | 'unmeasurable' | 'failed';
  reason: string;
  selection: { method: 'traced' | 'all'; reason: string | null; selected: string[]; discovered: number };
  k: number;
  benchmarks: Array<{
    name: string; params: string[]; base_samples: number[]; head_samples: number[]; p_value: number | null; p_adjusted: number | null;
    speedup: number | null; lower_bound: number | null; passed: boolean; verdict: string; unmeasurable: boolean; error: string | null;
    samples_per_side: number; seconds: number;
  }>;
  maxSpeedup: number | null;
  maxSpeedupLowerBound: number | null;
  wallSeconds: number;
}

/** The runner's JSON through `run`; an Error naming the runner's last words otherwise. */
async function runnerCall(o: OracleInput, bench?: string): Promise<RunnerOutput> {
  const argv = [o.python, o.runnerPath, 'measure', '--base', o.base, '--head', o.head, '--build', o.build ?? 'auto'];
  if (o.config) argv.push('--config', o.config);
  // A rough stand-in for the core's per-benchmark budget: a small budget measures in 2 rounds instead of 4.
  if (o.budgetSeconds !== undefined && o.budgetSeconds < 10) argv.push('--rounds', '2');
  if (bench) argv.push('--bench', bench);
  const r = await o.run(argv, { timeoutMs: 6 * 3600_000, signal: o.signal });
  if (r.aborted) throw o.signal?.reason instanceof Error ? o.signal.reason : new Error('the benchmark runner was aborted');
  if (r.timedOut) throw new Error('the benchmark runner stopped after its time limit');
  try {
    return JSON.parse(r.stdout) as RunnerOutput;
  } catch {
    throw new Error(`benchmark runner failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' | ') || 'no output'}`);
  }
}

export async function runOracle(input: OracleInput): Promise<OracleOutcome> {
  const began = performance.now();
  const wall = () => Math.round((performance.now() - began) / 100) / 10;
  const empty = { method: 'all' as const, reason: 'TEMP shim: no tracing', selected: [] as string[], discovered: 0 };
  let first: RunnerOutput;
  let report;
  try {
    first = await runnerCall(input);
    const candidates = first.benchmarks.filter((b) => !b.base.error && !b.head.error && b.base.samples.length && b.head.samples.length
      && screen(b.base.samples, b.head.samples, first.samples_per_round) !== 'no change');
    const again = candidates.length ? await runnerCall(input, exactBenchmarkRegex(candidates)) : { ...first, benchmarks: [], errors: [] };
    report = judge(first, { margin: input.minSpeedup }, again);
  } catch (err) {
    if (input.signal?.aborted) throw err;
    return { decision: 'failed', reason: (err as Error).message, selection: empty, k: 0, benchmarks: [], maxSpeedup: null, maxSpeedupLowerBound: null, wallSeconds: wall() };
  }
  const benchmarks = report.benchmarks.map((b) => {
    const passed = b.verdict === 'faster' && (b.faster_lower_bound ?? 0) >= input.minSpeedup;
    return {
      name: b.name, params: b.params, base_samples: b.base_samples, head_samples: b.head_samples,
      p_value: b.comparison?.p_value ?? null, p_adjusted: null, speedup: b.comparison?.speedup ?? null, lower_bound: b.faster_lower_bound,
      passed, verdict: b.verdict, unmeasurable: false, error: b.error, samples_per_side: b.base_samples.length, seconds: 0,
    };
  });
  const selection = { ...empty, selected: benchmarks.map((b) => b.name), discovered: benchmarks.length };
  const passed = benchmarks.filter((b) => b.passed);
  const base = { selection, k: benchmarks.length, benchmarks, wallSeconds: wall() };
  const buildError = (['base', 'head'] as const).map((s) => first.builds?.[s]?.error && `${s}: ${first.builds[s]!.error}`).find(Boolean);
  if (buildError) return { ...base, decision: 'failed', reason: `the tree does not build: ${buildError}`, maxSpeedup: null, maxSpeedupLowerBound: null };
  if (benchmarks.length === 0) {
    return { ...base, decision: 'unmeasurable', reason: `no benchmark measured${first.errors.length ? `: ${first.errors[0].error}` : ''}`, maxSpeedup: null, maxSpeedupLowerBound: null };
  }
  if (passed.length) {
    return {
      ...base, decision: 'faster', reason: `${passed.length} of ${benchmarks.length} benchmarks faster by at least ${input.minSpeedup}x`,
      maxSpeedup: Math.max(...passed.map((b) => b.speedup ?? 0)), maxSpeedupLowerBound: Math.max(...passed.map((b) => b.lower_bound ?? 0)),
    };
  }
  if (benchmarks.every((b) => b.verdict === 'failed')) {
    return { ...base, decision: 'failed', reason: `every benchmark failed: ${benchmarks[0].error}`, maxSpeedup: null, maxSpeedupLowerBound: null };
  }
  if (benchmarks.some((b) => b.verdict === 'slower')) {
    return { ...base, decision: 'slower', reason: `${benchmarks.filter((b) => b.verdict === 'slower').length} of ${benchmarks.length} benchmarks slower, none faster`, maxSpeedup: null, maxSpeedupLowerBound: null };
  }
  return { ...base, decision: 'no change', reason: `none of ${benchmarks.length} benchmarks faster by at least ${input.minSpeedup}x`, maxSpeedup: null, maxSpeedupLowerBound: null };
}
