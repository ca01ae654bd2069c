import { existsSync } from 'node:fs';
import { compare, gate, pairedRoundRatio, summarize, type Comparison, type GateVerdict, type SpeedupSummary } from '../domain/stats.js';
import { runRunner, type RunnerBenchmark, type RunnerOptions, type RunnerOutput } from './runner.js';
import { checkoutTree, isCheckout, resolveRev, type Tree } from './trees.js';

/** The runner's own settings, as measure takes them (the interpreter defaults to python3, the mode to runner). */
type RunnerSettings = Omit<RunnerOptions, 'python' | 'base' | 'head'> & { python?: string };

export interface MeasureOptions extends RunnerSettings {
  repo: string;
  base: string;
  head: string;
  pThreshold?: number;
  factor?: number;
  /** The gate's margin (default 1.05). */
  margin?: number;
  /**
   * Two stages (default true): every benchmark the first rounds show as
   * possibly changed is measured again in as many fresh rounds, and the
   * verdict comes from all rounds together. Off: the first rounds decide.
   */
  confirm?: boolean;
}

/** What measuring two trees that are already on disk needs. */
export type TreeMeasureOptions = Omit<MeasureOptions, 'repo' | 'base' | 'head'> & { base: string; head: string };

/** What measureTrees and judge report (measure adds where the trees came from). */
export type TreesReport = Omit<MeasureReport, 'repo' | 'base' | 'head' | 'seconds' | 'warnings'>;

export type Verdict = 'faster' | 'slower' | 'no change' | 'failed';

export interface BenchmarkReport {
  name: string;
  params: string[];
  param_names: string[];
  number: number | null;
  base_samples: number[];
  head_samples: number[];
  error: string | null;
  /** asv's statistics on all samples. */
  comparison: Comparison | null;
  /** The gate's robust verdict on the first rounds (fastest halves, 5% margin). */
  gate: GateVerdict | null;
  /** The second stage; null when the first rounds showed no possible change (or it is off). */
  confirmation: Confirmation | null;
  /** The final word: the gate's on the first rounds, or the second stage's. */
  verdict: Verdict;
  /** "Faster by at least" from the gate the verdict came from. */
  faster_lower_bound: number | null;
  /** Samples per round of this benchmark (its plan's, else the run's). */
  samples_per_round?: number;
  /** Wall seconds of its measurement processes per side, both stages. */
  seconds?: { base: number; head: number };
  /** How many of each side's samples came from the first stage (the rest are the second stage's fresh rounds). */
  first_stage_samples?: { base: number; head: number };
}

export interface Confirmation {
  /** The gate on all rounds, first and fresh together. */
  gate: GateVerdict;
  /** Median paired round ratio of the fresh rounds alone: they must lean the same way. */
  fresh_paired_ratio: number | null;
  verdict: 'faster' | 'slower' | 'no change';
}

export interface MeasureReport extends Omit<SpeedupSummary, 'benchmarks' | 'significant'> {
  measured: number;
  /** Benchmarks asv's rule calls significantly changed, and those the gate calls faster. */
  significant: number;
  faster: number;
  repo: string;
  base: string;
  head: string;
  mode: RunnerOutput['mode'];
  python: string;
  rounds: number;
  samples_per_round: number;
  /** Fresh rounds run again for the benchmarks the first rounds showed as possibly changed. */
  confirmation_rounds: number | null;
  confirmed_benchmarks: number;
  order: string;
  launch_method: string | null;
  builds: RunnerOutput['builds'] | null;
  benchmarks: BenchmarkReport[];
  errors: RunnerOutput['errors'];
  /** What the trees lack (submodules or LFS content not available offline), per side. */
  warnings: string[];
  seconds: number;
}

/**
 * Times the repository's own ASV benchmarks on two commits, interleaved, and
 * decides per benchmark with asv's statistics whether the head is faster.
 * Each commit is checked out in a temporary directory (the repository itself
 * is only read); each tree is put first on the interpreter's import path
 * (built in place first when its setup.py declares compiled extensions).
 * Aborting `signal` stops every process and removes the trees.
 */
export async function measure(o: MeasureOptions): Promise<MeasureReport> {
  if (!existsSync(o.repo)) throw new Error(`no such repository: ${o.repo}`);
  const began = performance.now();
  const [baseSha, headSha] = await Promise.all([resolveRev(o.repo, o.base, o.signal), resolveRev(o.repo, o.head, o.signal)]);
  const trees: Partial<Record<'base' | 'head', Tree>> = {};
  try {
    trees.base = await checkoutTree(o.repo, baseSha, 'base', { signal: o.signal });
    trees.head = await checkoutTree(o.repo, headSha, 'head', { signal: o.signal });
    const warnings = [...trees.base.warnings.map((w) => `base: ${w}`), ...trees.head.warnings.map((w) => `head: ${w}`)];
    for (const w of warnings) o.onProgress?.(`[perfmine] warning: ${w}`);
    const judged = await measureTrees({ ...o, base: trees.base.dir, head: trees.head.dir });
    return { repo: o.repo, base: baseSha, head: headSha, ...judged, warnings, seconds: Math.round((performance.now() - began) / 100) / 10 };
  } finally {
    await Promise.all([trees.base?.cleanup(), trees.head?.cleanup()]);
  }
}

/**
 * The measurement protocol on two trees. Stage one: every selected benchmark
 * in interleaved rounds. Stage two, for the benchmarks whose first rounds show
 * a possible change (a screen looser than the gate, so a real change is
 * rarely missed): as many fresh rounds, and the verdict is the gate's on all
 * rounds together, provided the fresh rounds alone lean the same way. A
 * chance streak of unlucky processes then has to pass the screen, survive
 * twice the data, and repeat its direction in independent rounds; unchanged
 * benchmarks cost nothing extra.
 */
export async function measureTrees(o: TreeMeasureOptions): Promise<TreesReport> {
  const { pThreshold: _p, factor: _f, margin: _m, confirm, ...settings } = o;
  const mode = o.mode ?? 'runner';
  if (mode === 'asv') {
    // asv clones the tree it is given and measures the commit checked out there.
    for (const side of ['base', 'head'] as const) {
      if (!(await isCheckout(o[side], o.signal))) throw new Error(`--mode asv needs git checkouts; the ${side} tree ${o[side]} is not one`);
    }
  }
  const runnerOptions: RunnerOptions = { ...settings, mode, python: o.python ?? 'python3' };
  const first = await runRunner(runnerOptions);
  if (confirm === false || first.mode !== 'runner') return judge(first, o);
  const candidates = first.benchmarks.filter((b) => goesToSecondStage(b, b.samples_per_round ?? first.samples_per_round));
  if (candidates.length === 0) return judge(first, o, emptyLike(first));
  o.onProgress?.(`[perfmine] ${candidates.length} benchmark(s) may have changed: measuring them again in ${first.rounds} fresh rounds`);
  // With a plan, the second stage repeats each benchmark's plan with its first-stage number of calls.
  const plan = o.plan
    ? Object.fromEntries(candidates.map((b) => [benchmarkId(b), { ...o.plan![benchmarkId(b)], number: b.number }]))
    : undefined;
  const again = await runRunner({ ...runnerOptions, bench: plan ? undefined : exactBenchmarkRegex(candidates), plan });
  return judge(first, o, again);
}

/**
 * Stage one's question, "could this have changed?": the gate with no margin
 * on the U test (p < 0.01) and a 3% paired ratio; or, for when the machine
 * has slow spells inside processes (which blur the U test on samples), the
 * paired ratio of each process's fastest sample beyond 8%. Looser than the
 * gate, so a real change of the gate's size almost always goes on to stage two.
 */
export function screen(a: number[], b: number[], samplesPerRound: number): 'faster' | 'slower' | 'no change' {
  const g = gate(a, b, { margin: 1.0, pThreshold: 0.01, samplesPerRound });
  if (g.verdict !== 'no change' && g.paired_ratio !== null
    && (g.verdict === 'faster' ? g.paired_ratio >= SCREEN_PAIRED_RATIO : g.paired_ratio <= 1 / SCREEN_PAIRED_RATIO)) return g.verdict;
  const byMin = pairedRoundRatio(a, b, samplesPerRound, 'min');
  if (byMin !== null && byMin >= SCREEN_MIN_RATIO) return 'faster';
  if (byMin !== null && byMin <= 1 / SCREEN_MIN_RATIO) return 'slower';
  return 'no change';
}

/** A benchmark measured on both sides whose first rounds pass the screen. */
function goesToSecondStage(b: RunnerBenchmark, samplesPerRound: number): boolean {
  return !b.base.error && !b.head.error && b.base.samples.length > 0 && b.head.samples.length > 0
    && screen(b.base.samples, b.head.samples, samplesPerRound) !== 'no change';
}

const SCREEN_PAIRED_RATIO = 1.03;
const SCREEN_MIN_RATIO = 1.08;

const emptyLike = (out: RunnerOutput): RunnerOutput => ({ ...out, benchmarks: [], errors: [] });

/** A --bench regex selecting exactly these benchmarks (asv's `name(p1, p2)` form for combinations). */
export function exactBenchmarkRegex(benchmarks: ReadonlyArray<Pick<BenchmarkReport, 'name' | 'params'>>): string {
  const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return `^(?:${benchmarks.map((b) => escape(benchmarkId(b))).join('|')})$`;
}

export const benchmarkId = (b: Pick<BenchmarkReport, 'name' | 'params'>) => (b.params.length ? `${b.name}(${b.params.join(', ')})` : b.name);

/**
 * Statistics over the runner's raw samples (pure; also used for asv-mode
 * output). Without `confirmation` the first rounds decide. With it (the
 * second stage's runner output, holding the benchmarks that passed the
 * screen), those benchmarks are decided on all their rounds, and the others
 * are "no change".
 */
export function judge(
  out: RunnerOutput,
  o: { pThreshold?: number; factor?: number; margin?: number } = {},
  confirmation?: RunnerOutput,
): TreesReport {
  const again = new Map((confirmation?.benchmarks ?? []).map((b) => [benchmarkId(b), b]));
  const benchmarks = out.benchmarks.map((b) => {
    const spr = b.samples_per_round ?? out.samples_per_round;
    const staged = confirmation !== undefined && goesToSecondStage(b, spr);
    return judgeOne(b, spr, o, staged ? again.get(benchmarkId(b)) ?? null : undefined);
  });
  return {
    mode: out.mode, python: out.python, rounds: out.rounds, samples_per_round: out.samples_per_round,
    confirmation_rounds: confirmation ? out.rounds : null,
    confirmed_benchmarks: benchmarks.filter((b) => b.confirmation && b.verdict !== 'no change' && b.verdict !== 'failed').length,
    order: out.order, launch_method: out.launch_method ?? null, builds: out.builds ?? null,
    benchmarks, errors: [...out.errors, ...(confirmation?.errors ?? [])],
    ...summaryOf(benchmarks),
  };
}

function summaryOf(benchmarks: BenchmarkReport[]) {
  // max and geometric mean of the speedups as asv measures them; the lower bound is the gate's.
  const { benchmarks: measured, significant, ...rest } = summarize(benchmarks.map((b) => b.comparison));
  const bounds = benchmarks.map((b) => b.faster_lower_bound).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return {
    ...rest, measured, significant,
    max_speedup_lower_bound: bounds.length ? Math.max(...bounds) : null,
    faster: benchmarks.filter((b) => b.verdict === 'faster').length,
  };
}

/**
 * One benchmark. `again` is its second-stage run: undefined when it has
 * none (the first rounds decide), null when it should have one but the
 * second run lacks it.
 */
function judgeOne(
  b: RunnerBenchmark,
  samplesPerRound: number,
  o: { pThreshold?: number; factor?: number; margin?: number },
  again?: RunnerBenchmark | null,
): BenchmarkReport {
  const error = b.base.error ?? b.head.error;
  const usable = !error && b.base.samples.length > 0 && b.head.samples.length > 0;
  const gateOf = (x: number[], y: number[]) => gate(x, y, { pThreshold: o.pThreshold, margin: o.margin, samplesPerRound });
  const first = usable ? gateOf(b.base.samples, b.head.samples) : null;
  const base = [...b.base.samples];
  const head = [...b.head.samples];
  let verdict: Verdict = first ? first.verdict : 'failed';
  let bound = first?.faster_lower_bound ?? null;
  let confirmation: Confirmation | null = null;
  let confirmError: string | null = null;
  if (first && again !== undefined) {
    const e = again ? again.base.error ?? again.head.error : 'not measured';
    if (again && !e && again.base.samples.length && again.head.samples.length) {
      base.push(...again.base.samples);
      head.push(...again.head.samples);
      const all = gateOf(base, head);
      const fresh = pairedRoundRatio(again.base.samples, again.head.samples, samplesPerRound);
      const leans = fresh !== null && (all.verdict === 'faster' ? fresh > 1 : fresh < 1);
      verdict = all.verdict !== 'no change' && leans ? all.verdict : 'no change';
      confirmation = { gate: all, fresh_paired_ratio: fresh, verdict };
      bound = all.faster_lower_bound;
    } else {
      confirmError = `second stage: ${e ?? 'no samples'}`;
      verdict = 'failed';
    }
  }
  const comparison = usable ? compare(base, head, { pThreshold: o.pThreshold, factor: o.factor }) : null;
  return {
    name: b.name, params: b.params, param_names: b.param_names, number: b.number,
    base_samples: base, head_samples: head,
    error: error ? `${b.base.error ? 'base' : 'head'}: ${error}` : confirmError,
    comparison, gate: first, confirmation, verdict, faster_lower_bound: bound,
    samples_per_round: samplesPerRound,
    first_stage_samples: { base: b.base.samples.length, head: b.head.samples.length },
    seconds: {
      base: round3((b.base.seconds ?? 0) + (again?.base.seconds ?? 0)),
      head: round3((b.head.seconds ?? 0) + (again?.head.seconds ?? 0)),
    },
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

const fmtTime = (s: number | undefined) => {
  if (s === undefined || !Number.isFinite(s)) return '-';
  if (s >= 1) return `${s.toFixed(3)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toFixed(3)} ms`;
  if (s >= 1e-6) return `${(s * 1e6).toFixed(3)} us`;
  return `${(s * 1e9).toFixed(1)} ns`;
};
const fmtX = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(3)}x`);

/** The human table: benchmark, base median, head median, speedup, lower bound, p, verdict. */
export function formatReport(r: MeasureReport): string {
  const header = ['benchmark', 'base', 'head', 'speedup', 'lower bound', 'p', 'verdict'];
  const rows = r.benchmarks.map((b) => {
    const c = b.comparison;
    const name = b.params.length ? `${b.name}(${b.params.join(', ')})` : b.name;
    return [name, fmtTime(c?.median_a), fmtTime(c?.median_b), fmtX(c?.speedup), fmtX(b.faster_lower_bound),
      c?.p_value === null || c?.p_value === undefined ? '-' : c.p_value.toExponential(2),
      b.verdict === 'failed' ? `failed: ${b.error}` : b.verdict];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (i === 6 ? 0 : row[i].length))));
  const line = (cells: string[]) => cells.map((c, i) => (i === 6 ? c : i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [
    `${r.repo}: ${r.base.slice(0, 12)} -> ${r.head.slice(0, 12)}  (${r.mode} mode${r.launch_method ? `, ${r.launch_method}` : ''}, python ${r.python}, ${r.rounds} rounds x ${r.samples_per_round} samples per side, ${r.order}${r.confirmation_rounds ? `, ${r.benchmarks.filter((b) => b.confirmation).length} measured again in ${r.confirmation_rounds} fresh rounds` : ''})`,
    line(header), line(widths.map((w) => '-'.repeat(w)).concat('-------')), ...rows.map(line), '',
    `max speedup ${fmtX(r.max_speedup)}, max lower bound ${fmtX(r.max_speedup_lower_bound)}, geometric mean ${fmtX(r.geomean_speedup)}; ` +
      `${r.benchmarks.filter((b) => b.verdict !== 'failed').length} measured, ${r.benchmarks.filter((b) => b.verdict === 'failed').length} failed, ${r.seconds} s`,
    ...(['base', 'head'] as const).flatMap((side) => {
      const b = r.builds?.[side];
      return b ? [`${side}: built in place (${b.command})${b.error ? `: ${b.error}` : ''}`] : [];
    }),
    ...r.errors.map((e) => `error (${e.side ?? 'run'}${e.module ? `, ${e.module}` : ''}): ${e.error}`),
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}
