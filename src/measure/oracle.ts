/**
 * Stage 7's measurement core: which benchmarks to measure (traced on the
 * base tree), how many samples each gets (a time budget with a floor the U
 * test needs), the paired protocol of measureTrees, and the decision per PR
 * (Holm over the measured benchmarks). Every command goes through `run`, so
 * the same code measures on this host or inside a PR's container.
 */
import type { LineRanges } from '../domain/changed-lines.js';
import { decidePr, fasterPValue, minSamplesPerSide, planSamples } from '../domain/pr-gate.js';
import { DEFAULT_GATE_MARGIN, DEFAULT_P_THRESHOLD, fastestHalf, median } from '../domain/stats.js';
import { benchmarkId, exactBenchmarkRegex, measureTrees, type BenchmarkReport } from './measure.js';
import { hostRunnerPath, NO_LIMIT_MS, parseRunnerJson, runRunner, type RunInEnvironment, type RunnerBenchmark, type RunnerPlan } from './runner.js';

export type { RunInEnvironment } from './runner.js';
export { hostRun } from './runner.js';

/** The runner's path on this host (stage 7 copies or mounts it where `run` runs). */
export const oracleRunnerHostPath = hostRunnerPath;

export interface OracleInput {
  /** Runs a command where the trees are (on the host, or inside the PR's container); paths are absolute as `run` sees them. */
  run: RunInEnvironment;
  /** Interpreter (as `run` sees it). */
  python: string;
  /** perfmine_asv_runner.py as `run` sees it (oracleRunnerHostPath() on the host). */
  runnerPath: string;
  /** Tree roots, already prepared (head = base + kept patch). */
  base: string;
  head: string;
  /** The runner's in-place build of each tree (default auto). */
  build?: 'auto' | 'never' | 'always';
  /** asv.conf.json relative to the tree. */
  config?: string;
  /** Tree-relative paths the kept patch changes. */
  changedFiles: string[];
  /**
   * Optional: the base-tree lines the patch changes per path (baseLineRanges
   * of the kept patch). A Python file whose changes all lie inside functions
   * then selects only the benchmarks that run those functions.
   */
  changedLines?: Record<string, LineRanges | null>;
  /** The CPU benchmark processes are pinned to (the runner's --cpu; of a cpuset such as 2-3, the last). */
  cpus?: string;
  minSpeedup: number;
  /** Per benchmark and side, both stages together (default 60). */
  budgetSeconds?: number;
  signal?: AbortSignal;
  // Optional knobs (defaults are measureTrees'; tests and the verify benchmark set small ones).
  rounds?: number;
  samplesPerRound?: number;
  sampleTime?: number;
  warmupTime?: number;
  launchMethod?: 'auto' | 'forkserver' | 'spawn';
  /** Per benchmark call limit for tracing and measuring (the runner's --timeout; a benchmark's own `timeout` wins). */
  benchmarkTimeoutS?: number;
  /** Family-wise level of the decision (default: the gate's, 0.002). */
  alpha?: number;
  /** Limit on each runner call (default: none beyond the per-benchmark timeouts). */
  callTimeoutMs?: number;
  onProgress?: (line: string) => void;
}

export interface OracleBenchmark {
  name: string;
  params: string[];
  base_samples: number[];
  head_samples: number[];
  /** The gate's one-sided p for "faster by the margin" (null: not measured). */
  p_value: number | null;
  /** Holm's adjusted p over the K measured benchmarks. */
  p_adjusted: number | null;
  /** Median base/head of each side's fastest half (the samples the gate judges; its lower bound bounds this). */
  speedup: number | null;
  lower_bound: number | null;
  passed: boolean;
  verdict: 'faster' | 'slower' | 'no change' | 'failed' | 'unmeasurable';
  unmeasurable: boolean;
  error: string | null;
  samples_per_side: number;
  /** Wall seconds of its measurement processes, both sides (and calibration). */
  seconds: number;
  /** Changed files the benchmark executed when traced (null: selected without tracing). */
  hit_files?: string[] | null;
}

export interface OracleOutcome {
  decision: 'faster' | 'no change' | 'slower' | 'unmeasurable' | 'failed';
  reason: string;
  selection: { method: 'traced' | 'all'; reason: string | null; selected: string[]; discovered: number };
  /** Benchmarks measured (with a p-value): the family Holm corrects over. */
  k: number;
  benchmarks: OracleBenchmark[];
  maxSpeedup: number | null;
  maxSpeedupLowerBound: number | null;
  wallSeconds: number;
  /** The budget, the floor of samples per side, and the family-wise level used. */
  budget?: { seconds: number; min_samples: number; alpha: number };
  python?: string | null;
}

export const DEFAULT_BUDGET_SECONDS = 60;
const DEFAULT_ROUNDS = 4;
const DEFAULT_SAMPLES_PER_ROUND = 10;

interface TraceOutput {
  python?: string;
  discovered: number;
  selected: string[];
  untraceable: string[];
  ignored: string[];
  benchmarks: Array<{ name: string; params: string[]; id: string; hit_files: string[]; hit_functions: string[]; error: string | null; seconds: number }>;
  errors: Array<{ module?: string; error: string }>;
  build: { command: string; error: string | null } | null;
}

/** The runner's --cpu from a CPU or a cpuset (`2-3`, `1,3`: the last CPU of the set). */
export function runnerCpu(cpus: string | undefined): string | undefined {
  if (!cpus) return undefined;
  if (/^(auto|none|\d+)$/.test(cpus)) return cpus;
  const last = cpus.split(/[,-]/).filter(Boolean).pop();
  return last && /^\d+$/.test(last) ? last : undefined;
}

/** Which benchmarks: those the trace on base saw execute changed code; all (recorded) when it cannot tell. */
async function select(input: OracleInput): Promise<{ selection: OracleOutcome['selection']; hits: Map<string, string[]>; python: string | null }> {
  const argv = [input.python, input.runnerPath, 'trace', '--tree', input.base, '--changed-stdin'];
  if (input.config) argv.push('--config', input.config);
  if (input.build) argv.push('--build', input.build);
  if (input.benchmarkTimeoutS) argv.push('--timeout', String(input.benchmarkTimeoutS));
  if (input.launchMethod) argv.push('--launch-method', input.launchMethod);
  const all = (reason: string, discovered = 0) => ({ selection: { method: 'all' as const, reason, selected: [], discovered }, hits: new Map<string, string[]>(), python: null });
  let t: TraceOutput;
  try {
    const timeoutMs = input.callTimeoutMs ?? NO_LIMIT_MS;
    const changed = Object.fromEntries(input.changedFiles.map((f) => [f, input.changedLines?.[f] ?? null]));
    t = parseRunnerJson<TraceOutput>(await input.run(argv, { timeoutMs, signal: input.signal, stdin: JSON.stringify(changed) }), { signal: input.signal, timeoutMs });
  } catch (err) {
    if (input.signal?.aborted) throw err;
    return all(`tracing failed: ${(err as Error).message}`);
  }
  const hits = new Map(t.benchmarks.filter((b) => b.hit_files.length).map((b) => [b.id, b.hit_files]));
  const fatal = t.errors.find((e) => !e.module);
  if (fatal && t.discovered === 0) return all(`tracing failed: ${fatal.error}`);
  if (t.untraceable.length) return { ...all(`changes that tracing cannot see (${t.untraceable.slice(0, 3).join(', ')}${t.untraceable.length > 3 ? ', ...' : ''})`, t.discovered), python: t.python ?? null };
  const failed = t.benchmarks.filter((b) => b.error);
  if (t.selected.length === 0) {
    const why = t.ignored.length === input.changedFiles.length ? 'no changed Python or compiled source' : 'no benchmark executes the changed code';
    return { ...all(`tracing selected none (${why}${failed.length ? `; ${failed.length} could not be traced, e.g. ${failed[0].id}: ${failed[0].error}` : ''})`, t.discovered), python: t.python ?? null };
  }
  return {
    selection: {
      method: 'traced', selected: t.selected, discovered: t.discovered,
      reason: failed.length ? `${failed.length} benchmark(s) could not be traced and are left out, e.g. ${failed[0].id}: ${failed[0].error}` : null,
    },
    hits, python: t.python ?? null,
  };
}

/**
 * The oracle: trace, calibrate, plan within the budget, measure (two stages),
 * decide per PR. Aborting `signal` rejects with an AbortError and stops every
 * process; any other failure of the runner is decision 'failed' with its reason.
 */
export async function runOracle(input: OracleInput): Promise<OracleOutcome> {
  const began = performance.now();
  const wall = () => Math.round((performance.now() - began) / 100) / 10;
  const budget = input.budgetSeconds ?? DEFAULT_BUDGET_SECONDS;
  const alpha = input.alpha ?? DEFAULT_P_THRESHOLD;
  const rounds = input.rounds ?? DEFAULT_ROUNDS;
  const samplesPerRound = input.samplesPerRound ?? DEFAULT_SAMPLES_PER_ROUND;
  const progress = input.onProgress;
  let selection: OracleOutcome['selection'] = { method: 'all', reason: null, selected: [], discovered: 0 };
  const common = {
    run: input.run, runnerPath: input.runnerPath, python: input.python, base: input.base, head: input.head,
    config: input.config, build: input.build, cpu: runnerCpu(input.cpus), signal: input.signal,
    sampleTime: input.sampleTime, warmupTime: input.warmupTime, launchMethod: input.launchMethod,
    timeoutS: input.benchmarkTimeoutS, timeoutMs: input.callTimeoutMs, onProgress: progress,
    rounds, samplesPerRound, mode: 'runner' as const,
  };
  try {
    const chosen = await select(input);
    selection = chosen.selection;
    progress?.(`[perfmine] oracle: ${selection.method === 'traced' ? `${selection.selected.length} of ${selection.discovered} benchmarks execute the changed code` : `all benchmarks (${selection.reason})`}`);

    // Calibrate: the number of calls per sample and what a sample costs.
    const calibrated = await runRunner({ ...common, calibrateOnly: true, bench: selection.method === 'traced' ? exactBenchmarkRegex(selection.selected.map(idToRef)) : undefined });
    if (selection.method === 'all') selection = { ...selection, selected: calibrated.benchmarks.map(benchmarkId), discovered: selection.discovered || calibrated.benchmarks.length };
    const ok = calibrated.benchmarks.filter((b) => b.calibration && !b.base.error && !b.head.error);
    const k = Math.max(1, ok.length);
    const minSamples = Math.max(minSamplesPerSide(DEFAULT_P_THRESHOLD, { twoSided: true }), minSamplesPerSide(alpha / k));
    const plan: RunnerPlan = {};
    const early: OracleBenchmark[] = [];
    for (const b of calibrated.benchmarks) {
      const id = benchmarkId(b);
      const c = b.calibration;
      const error = b.base.error ? `base: ${b.base.error}` : b.head.error ? `head: ${b.head.error}` : c ? null : 'calibration failed';
      if (error || !c) {
        early.push(unmeasured(b, error ?? 'calibration failed', false, calibrationSeconds(b), chosen.hits.get(id) ?? null));
        continue;
      }
      const overhead = Math.max(0, c.process_seconds - (c.calibration_seconds ?? 0)) + Math.max(c.warmup_time ?? 0, c.sample_seconds);
      // Half the budget per stage: a benchmark the first rounds call changed is measured again.
      const p = planSamples({ sampleSeconds: c.sample_seconds, overheadSeconds: overhead, rounds, samplesPerRound, budgetSeconds: budget / 2, minSamples });
      if (!p.measurable) {
        early.push(unmeasured(b, p.reason, true, calibrationSeconds(b), chosen.hits.get(id) ?? null));
        continue;
      }
      plan[id] = { number: b.number ?? c.number, rounds: p.rounds, samples_per_round: p.samplesPerRound };
    }
    const measured: OracleBenchmark[] = [];
    const slowerPValues = new Map<string, number | null>();
    if (Object.keys(plan).length) {
      progress?.(`[perfmine] oracle: measuring ${Object.keys(plan).length} benchmark(s), at least ${minSamples} samples per side, budget ${budget} s each`);
      const report = await measureTrees({ ...common, plan });
      for (const b of report.benchmarks) {
        const id = benchmarkId(b);
        const cal = calibrated.benchmarks.find((c) => benchmarkId(c) === id);
        measured.push(fromReport(b, (cal ? calibrationSeconds(cal) : 0), chosen.hits.get(id) ?? null));
        slowerPValues.set(id, testedPValue(b, 'slower'));
      }
    }
    const benchmarks = [...measured, ...early];
    const d = decidePr(benchmarks.map((b) => ({
      id: benchmarkId(b), pFaster: b.p_value, pSlower: slowerPValues.get(benchmarkId(b)) ?? null, speedup: b.speedup, lowerBound: b.lower_bound,
      verdict: b.verdict === 'unmeasurable' ? 'failed' : b.verdict, unmeasurable: b.unmeasurable, error: b.error,
    })), { minSpeedup: input.minSpeedup, alpha });
    d.benchmarks.forEach((x, i) => { benchmarks[i].p_adjusted = x.pAdjusted; benchmarks[i].passed = x.passed; });
    const selNote = selection.method === 'traced' ? `${selection.selected.length} of ${selection.discovered} benchmarks traced to the change` : `all ${selection.selected.length} benchmarks (${selection.reason})`;
    // No benchmark at all: the runner's own errors (a failed build, discovery) say why.
    const runErrors = benchmarks.length ? '' : calibrated.errors.slice(0, 2).map((e) => `; ${e.side ?? 'run'}: ${e.error}`).join('');
    return {
      decision: d.decision, reason: `${d.reason}${runErrors}; ${selNote}`, selection, k: d.k, benchmarks,
      maxSpeedup: d.maxSpeedup, maxSpeedupLowerBound: d.maxSpeedupLowerBound, wallSeconds: wall(),
      budget: { seconds: budget, min_samples: minSamples, alpha }, python: calibrated.python ?? chosen.python,
    };
  } catch (err) {
    if (input.signal?.aborted) throw err;
    return {
      decision: 'failed', reason: `oracle failed: ${(err as Error).message}`, selection, k: 0, benchmarks: [],
      maxSpeedup: null, maxSpeedupLowerBound: null, wallSeconds: wall(),
    };
  }
}

/** `name(p1, p2)` back to a name and params, for exactBenchmarkRegex (which escapes and rebuilds the same id). */
function idToRef(id: string): { name: string; params: string[] } {
  return { name: id, params: [] };
}

const calibrationSeconds = (b: RunnerBenchmark) => (b.base.seconds ?? 0) + (b.head.seconds ?? 0);

function unmeasured(b: RunnerBenchmark, reason: string, unmeasurable: boolean, seconds: number, hits: string[] | null): OracleBenchmark {
  return {
    name: b.name, params: b.params, base_samples: [], head_samples: [], p_value: null, p_adjusted: null,
    speedup: null, lower_bound: null, passed: false, verdict: unmeasurable ? 'unmeasurable' : 'failed', unmeasurable,
    error: reason, samples_per_side: 0, seconds: Math.round(seconds * 1000) / 1000, hit_files: hits,
  };
}

/**
 * The speedup on the samples the gate judges (each side's fastest half):
 * the estimate its lower bound bounds, so the bound never exceeds it.
 */
function gateSpeedup(base: number[], head: number[]): number | null {
  const r = median(fastestHalf(base)) / median(fastestHalf(head));
  return Number.isFinite(r) && r > 0 ? r : null;
}

/**
 * The p-value Holm corrects: for a benchmark the screen sent to the second
 * stage, from the fresh rounds alone. Those rounds are independent of the
 * screen that chose the benchmark, so under "no change" their p-value is a
 * valid one and Holm's family-wise guarantee holds despite the screening. A
 * benchmark decided by the first stage (never "faster" then) keeps that
 * stage's p-value.
 */
function testedPValue(b: BenchmarkReport, direction: 'faster' | 'slower' = 'faster'): number | null {
  const margin = b.gate?.margin ?? DEFAULT_GATE_MARGIN;
  const first = b.first_stage_samples;
  const fresh = b.confirmation && first && b.base_samples.length > first.base && b.head_samples.length > first.head;
  const base = fresh ? b.base_samples.slice(first.base) : b.base_samples;
  const head = fresh ? b.head_samples.slice(first.head) : b.head_samples;
  // "Slower by the margin" is "faster by the margin" with the sides swapped.
  return direction === 'faster' ? fasterPValue(base, head, margin) : fasterPValue(head, base, margin);
}

function fromReport(b: BenchmarkReport, extraSeconds: number, hits: string[] | null): OracleBenchmark {
  const usable = b.verdict !== 'failed';
  return {
    name: b.name, params: b.params, base_samples: b.base_samples, head_samples: b.head_samples,
    p_value: usable ? testedPValue(b) : null,
    p_adjusted: null,
    speedup: usable ? gateSpeedup(b.base_samples, b.head_samples) : null,
    lower_bound: b.faster_lower_bound,
    passed: false, verdict: b.verdict, unmeasurable: false, error: b.error,
    samples_per_side: Math.min(b.base_samples.length, b.head_samples.length),
    seconds: Math.round(((b.seconds?.base ?? 0) + (b.seconds?.head ?? 0) + extraSeconds) * 1000) / 1000,
    hit_files: hits,
  };
}
