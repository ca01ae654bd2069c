/**
 * Stage 7's decision per pull request, and what it needs from each benchmark.
 *
 * Pure functions, no I/O. A PR is measured on K benchmarks; deciding "faster"
 * when any one of them passes a per-benchmark test at level alpha gives the
 * PR about K·alpha chances to pass on noise. So the PR passes only when Holm's
 * step-down procedure over the K one-sided p-values ("head is faster by the
 * gate's margin") rejects at least one benchmark at alpha (family-wise error
 * <= alpha), that benchmark's gate verdict is "faster", and its lower-bound
 * speedup is at least minSpeedup. The PR's max speedup and its lower bound are
 * taken over the benchmarks that passed, never over raw ratios.
 *
 * Also here: how many samples per side a benchmark needs before the test can
 * reach a level at all (the floor of the time budget), and the budget plan.
 */
import { binomial, DEFAULT_GATE_MARGIN, DEFAULT_P_THRESHOLD, erfc, EXACT_MAX_SAMPLES, fastestHalf, mannWhitneyU } from './stats.js';

// ------------------------------------------------------------ p-values

/**
 * The smallest one-sided p the U test (asv's: exact up to 20 samples a side,
 * normal approximation above) can return for m vs n samples: every sample of
 * one side above every sample of the other.
 */
export function minOneSidedP(m: number, n: number): number {
  if (m < 1 || n < 1) return 1;
  if (Math.max(m, n) <= EXACT_MAX_SAMPLES) return 1 / binomial(m + n, Math.min(m, n));
  const mn = m * n;
  const z = (mn / 2) / Math.sqrt((mn * (m + n + 1)) / 12);
  return 0.5 * erfc(z / Math.SQRT2);
}

/**
 * The fewest samples per side (both sides alike) for which the gate's test,
 * run on each side's fastest half, can return p < alpha: a benchmark with
 * fewer can never be called faster, whatever its times. `twoSided` doubles the
 * smallest p (asv's is_different is two-sided). E.g. one-sided at 0.002: 13
 * (fastest 7 of each: 1/C(14,7) = 1/3432); two-sided at 0.002 likewise 13
 * (2/3432); one-sided at 0.002/20: 15 (1/C(16,8) = 1/12870).
 */
export function minSamplesPerSide(alpha: number, opts: { twoSided?: boolean; fastestHalf?: boolean } = {}): number {
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`invalid level ${alpha}`);
  const factor = opts.twoSided ? 2 : 1;
  const halve = opts.fastestHalf ?? true;
  for (let m = 1; m <= 10_000; m++) {
    if (factor * minOneSidedP(m, m) < alpha) return halve ? 2 * m - 1 : m;
  }
  throw new RangeError(`level ${alpha} is out of reach`);
}

/**
 * The gate's one-sided p-value for "head is faster than base by at least
 * `margin`": the U test of each side's fastest half, with the head's times
 * scaled up by the margin. Small when the head's fast half is below the
 * base's by more than the margin. null when a side has no samples.
 */
export function fasterPValue(base: number[], head: number[], margin: number = DEFAULT_GATE_MARGIN): number | null {
  const a = fastestHalf(base);
  const b = fastestHalf(head).map((x) => x * margin);
  if (!a.length || !b.length) return null;
  const { u, p } = mannWhitneyU(a, b);
  if (!Number.isFinite(p)) return null;
  const half = Math.min(1, p / 2);
  // u > mn/2: the base tends to be slower, the direction asked about.
  return u > (a.length * b.length) / 2 ? half : 1 - half;
}

/**
 * Holm's step-down adjusted p-values, in the input order: sorted ascending,
 * adj(i) = max over j <= i of min(1, (K - j + 1) p(j)). A hypothesis is
 * rejected at family-wise level alpha when its adjusted p is below alpha.
 */
export function holmAdjust(ps: readonly number[]): number[] {
  const k = ps.length;
  const order = ps.map((p, i) => ({ p: Number.isFinite(p) ? p : 1, i })).sort((x, y) => x.p - y.p);
  const out = new Array<number>(k);
  let running = 0;
  order.forEach(({ p, i }, j) => {
    running = Math.max(running, Math.min(1, (k - j) * p));
    out[i] = running;
  });
  return out;
}

// ------------------------------------------------------------ the decision

export interface PrBenchmarkInput {
  /** asv's `name(p1, p2)` form for a parameter combination. */
  id: string;
  /** The gate's one-sided p for "faster by the margin"; null when not measured. */
  pFaster: number | null;
  /** Median ratio base/head. */
  speedup: number | null;
  /** The gate's "faster by at least" bound. */
  lowerBound: number | null;
  verdict: 'faster' | 'slower' | 'no change' | 'failed';
  unmeasurable: boolean;
  error: string | null;
  /**
   * The one-sided p for "slower by the margin" (the same test with the sides
   * swapped). Given, a benchmark makes the PR 'slower' only when Holm over
   * the K benchmarks rejects it too, as for 'faster'; absent, the gate's
   * verdict alone (it never publishes either way).
   */
  pSlower?: number | null;
}

export type PrDecisionKind = 'faster' | 'no change' | 'slower' | 'unmeasurable';

export interface PrBenchmarkDecision {
  id: string;
  /** Holm's adjusted p (null when the benchmark had no p-value). */
  pAdjusted: number | null;
  passed: boolean;
  /** Why a benchmark the gate called faster did not pass (null otherwise). */
  why: string | null;
}

export interface PrDecision {
  decision: PrDecisionKind;
  reason: string;
  /** Benchmarks with a p-value: the family Holm corrects over. */
  k: number;
  alpha: number;
  benchmarks: PrBenchmarkDecision[];
  passed: string[];
  maxSpeedup: number | null;
  maxSpeedupLowerBound: number | null;
}

const fx = (x: number) => `${x.toFixed(2)}x`;

/**
 * The PR's decision: 'faster' when at least one benchmark passes (Holm at
 * `alpha` over the K benchmarks with a p-value, the gate's verdict "faster",
 * lower bound >= minSpeedup); otherwise 'unmeasurable' when no benchmark
 * could be measured, 'slower' when some benchmark is slower, else
 * 'no change'. `alpha` defaults to the gate's level (asv's 0.002).
 */
export function decidePr(benchmarks: readonly PrBenchmarkInput[], opts: { minSpeedup: number; alpha?: number }): PrDecision {
  const alpha = opts.alpha ?? DEFAULT_P_THRESHOLD;
  const tested = benchmarks.filter((b) => !b.unmeasurable && !b.error && b.pFaster !== null && b.verdict !== 'failed');
  const adjusted = holmAdjust(tested.map((b) => b.pFaster as number));
  const adjOf = new Map(tested.map((b, i) => [b.id, adjusted[i]]));
  const k = tested.length;
  const per: PrBenchmarkDecision[] = benchmarks.map((b) => {
    const pAdjusted = adjOf.get(b.id) ?? null;
    if (pAdjusted === null || b.verdict !== 'faster') return { id: b.id, pAdjusted, passed: false, why: null };
    if (!(pAdjusted < alpha)) return { id: b.id, pAdjusted, passed: false, why: `not significant after Holm over ${k} (adjusted p ${pAdjusted.toPrecision(2)} >= ${alpha})` };
    if (!(b.lowerBound !== null && b.lowerBound >= opts.minSpeedup)) {
      return { id: b.id, pAdjusted, passed: false, why: `lower bound ${b.lowerBound === null ? '-' : fx(b.lowerBound)} below the minimum ${fx(opts.minSpeedup)}` };
    }
    return { id: b.id, pAdjusted, passed: true, why: null };
  });
  const passedIdx = per.flatMap((p, i) => (p.passed ? [i] : []));
  const passed = passedIdx.map((i) => benchmarks[i]);
  const unmeasurable = benchmarks.filter((b) => b.unmeasurable).length;
  const errored = benchmarks.filter((b) => !b.unmeasurable && (b.error || b.verdict === 'failed' || b.pFaster === null)).length;
  const extra = [unmeasurable ? `${unmeasurable} unmeasurable` : '', errored ? `${errored} failed` : ''].filter(Boolean).join(', ');
  const tail = extra ? ` (${extra})` : '';
  const base = { k, alpha, benchmarks: per, passed: passed.map((b) => b.id) };
  if (passed.length) {
    const speedups = passed.map((b) => b.speedup).filter((x): x is number => x !== null && Number.isFinite(x));
    const bounds = passed.map((b) => b.lowerBound as number);
    const best = passed.reduce((x, y) => ((y.lowerBound as number) > (x.lowerBound as number) ? y : x));
    return {
      ...base, decision: 'faster',
      maxSpeedup: speedups.length ? Math.max(...speedups) : null,
      maxSpeedupLowerBound: Math.max(...bounds),
      reason: `${passed.length} of ${k} benchmarks faster after Holm at ${alpha}; best ${best.id} ${best.speedup === null ? '-' : fx(best.speedup)} (>= ${fx(best.lowerBound as number)})${tail}`,
    };
  }
  const none = { ...base, maxSpeedup: null, maxSpeedupLowerBound: null };
  if (benchmarks.length === 0) return { ...none, decision: 'unmeasurable', reason: 'no benchmarks to measure' };
  if (k === 0) {
    const firstError = benchmarks.find((b) => b.error)?.error;
    return { ...none, decision: 'unmeasurable', reason: `none of ${benchmarks.length} benchmarks could be measured${tail}${firstError ? `; e.g. ${firstError}` : ''}` };
  }
  const gateFaster = per.filter((p) => p.why);
  const adjustedSlower = holmAdjust(tested.map((b) => b.pSlower ?? 0));
  const slower = tested.filter((b, i) => b.verdict === 'slower' && (b.pSlower === undefined || adjustedSlower[i] < alpha));
  const missed = gateFaster.length ? `; ${gateFaster.length} faster by the gate alone (${gateFaster[0].id}: ${gateFaster[0].why})` : '';
  if (slower.length) {
    return { ...none, decision: 'slower', reason: `none of ${k} benchmarks faster after Holm at ${alpha}; ${slower.length} slower, e.g. ${slower[0].id}${missed}${tail}` };
  }
  return { ...none, decision: 'no change', reason: `none of ${k} benchmarks faster after Holm at ${alpha}${missed}${tail}` };
}

// ------------------------------------------------------------ time budget

export interface SamplePlanInput {
  /** Seconds of one sample (one timing of `number` calls), from calibration. */
  sampleSeconds: number;
  /** Seconds a measurement process spends besides its samples (start, setup, warmup). */
  overheadSeconds: number;
  /** The default plan: rounds x samples per round per side. */
  rounds: number;
  samplesPerRound: number;
  /** Seconds allowed per side for every sample of the benchmark. */
  budgetSeconds: number;
  /** The fewest samples per side the test needs (minSamplesPerSide). */
  minSamples: number;
}

export type SamplePlan =
  | { measurable: true; rounds: number; samplesPerRound: number; estimatedSeconds: number }
  | { measurable: false; reason: string; estimatedSeconds: number };

/**
 * asv's `repeat = (min, max, max_time)` for the paired protocol: the default
 * plan (raised to minSamples if it is below) when it fits the budget; otherwise as many samples as fit, in as many
 * rounds as the default (fewer, down to 2, when that keeps more samples);
 * never fewer than minSamples, and a benchmark that cannot reach minSamples
 * within its budget is unmeasurable. One process per side and round costs
 * overheadSeconds plus its samples.
 */
export function planSamples(i: SamplePlanInput): SamplePlan {
  const cost = (rounds: number, spr: number) => rounds * (i.overheadSeconds + spr * i.sampleSeconds);
  // A default plan below the minimum is raised to it (more samples per round).
  const maxSpr = Math.max(i.samplesPerRound, Math.ceil(i.minSamples / i.rounds));
  const full = cost(i.rounds, maxSpr);
  if (full <= i.budgetSeconds) return { measurable: true, rounds: i.rounds, samplesPerRound: maxSpr, estimatedSeconds: full };
  let best: { rounds: number; spr: number } | null = null;
  for (let rounds = i.rounds; rounds >= Math.min(2, i.rounds); rounds--) {
    const perRound = (i.budgetSeconds / rounds - i.overheadSeconds) / i.sampleSeconds;
    const spr = Math.min(maxSpr, Math.floor(perRound));
    if (spr >= 1 && rounds * spr >= i.minSamples && (!best || rounds * spr > best.rounds * best.spr)) best = { rounds, spr };
  }
  if (best) return { measurable: true, rounds: best.rounds, samplesPerRound: best.spr, estimatedSeconds: cost(best.rounds, best.spr) };
  const needed = cost(2, Math.ceil(i.minSamples / 2));
  return {
    measurable: false, estimatedSeconds: needed,
    reason: `unmeasurable: ${i.minSamples} samples per side at ${i.sampleSeconds.toPrecision(3)} s each need about ${needed.toFixed(1)} s, over the budget of ${i.budgetSeconds} s`,
  };
}
