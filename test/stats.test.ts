import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  compare,
  erfc,
  isImprovement,
  isSignificant,
  mannWhitneyU,
  median,
  medianCI99,
  minAttainableP,
  pairedLogRatioSpeedup,
  quantile,
  quantileCI,
  speedupLowerBound,
  summarize,
  gate,
  pairedRoundRatio,
} from '../src/domain/stats.js';

// Reference table written by test/fixtures/make_stats_reference.py (scipy
// 1.10, Debian); the tests only read the JSON.
interface PU {
  u: number;
  p: number | null;
}
interface RefCase {
  name: string;
  a: number[];
  b: number[];
  cross_ties: number;
  any_ties: boolean;
  asv_method: 'exact' | 'normal';
  asv_rule: { u: number; p: number; method: 'exact' | 'normal' };
  asv_rule_exact: { u: number; p: number } | null;
  asv_rule_normal: { u: number; p: number };
  scipy_exact: PU | null;
  scipy_asymptotic_cc: PU;
  scipy_asymptotic_nocc: PU;
}
interface Reference {
  scipy_version: string;
  cases: RefCase[];
  order_statistics: Array<{ n: number; q: number; lo: number | null; hi: number | null }>;
  laplace: Array<{ y: number[]; ppf_005: number; ppf_995: number; ci99: [number, number] }>;
  erfc: Array<[number, number]>;
}
const REF = JSON.parse(readFileSync(new URL('./fixtures/stats_reference.json', import.meta.url), 'utf8')) as Reference;

const relErr = (got: number, want: number) => (want === 0 ? Math.abs(got) : Math.abs(got - want) / Math.abs(want));

/** Deterministic normal draws (mulberry32 + Box-Muller). */
function normals(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}
/** n run times around `center` seconds with multiplicative noise `sigma`. */
function times(seed: number, n: number, center: number, sigma = 0.01): number[] {
  const z = normals(seed);
  return Array.from({ length: n }, () => center * Math.exp(sigma * z()));
}
/** The predicate speedupLowerBound maximises: b scaled by s is faster than a, significantly. */
function fasterBy(a: number[], b: number[], s: number): boolean {
  const sb = b.map((v) => v * s);
  return median(sb) < median(a) && isSignificant(a, sb).significant;
}

describe('reference table', () => {
  it('covers the promised shapes', () => {
    expect(REF.cases.length).toBeGreaterThanOrEqual(40);
    expect(REF.cases.some((c) => c.asv_method === 'exact' && c.cross_ties > 0)).toBe(true);
    expect(REF.cases.some((c) => c.asv_method === 'normal' && c.cross_ties > 0)).toBe(true);
    expect(REF.cases.some((c) => c.a.length !== c.b.length)).toBe(true);
  });
});

describe('mannWhitneyU against scipy and asv', () => {
  const untied = REF.cases.filter((c) => !c.any_ties);
  const tied = REF.cases.filter((c) => c.cross_ties > 0);

  it.each(REF.cases.map((c) => [c.name, c] as const))('%s: U is the midrank U of a (scipy convention), method is asv’s', (_, c) => {
    const r = mannWhitneyU(c.a, c.b);
    expect(r.u).toBe(c.scipy_asymptotic_cc.u);
    expect(r.method).toBe(c.asv_method);
  });

  // Without ties asv and scipy agree: exact tail sums are the same number, and
  // asv's normal approximation is scipy's without continuity correction.
  it.each(untied.filter((c) => c.asv_method === 'exact').map((c) => [c.name, c] as const))(
    '%s: exact p equals scipy exact within 1e-9 relative',
    (_, c) => {
      const r = mannWhitneyU(c.a, c.b);
      expect(relErr(r.p, c.scipy_exact!.p!)).toBeLessThan(1e-9);
    },
  );
  it.each(untied.filter((c) => c.asv_method === 'normal').map((c) => [c.name, c] as const))(
    '%s: normal p equals scipy asymptotic(use_continuity=False) within 1e-6 relative',
    (_, c) => {
      const r = mannWhitneyU(c.a, c.b);
      expect(relErr(r.p, c.scipy_asymptotic_nocc.p!)).toBeLessThan(1e-6);
      // scipy's default continuity correction moves U half a step toward the
      // centre, so its p is larger; on this table by less than 10%.
      expect(r.p).toBeLessThanOrEqual(c.scipy_asymptotic_cc.p!);
      expect(c.scipy_asymptotic_cc.p! / r.p).toBeLessThan(1.1);
    },
  );

  // With ties scipy is not asv: the reference is asv's rule as re-derived in
  // the fixture script with integer arithmetic (same numbers to rounding).
  it.each(REF.cases.map((c) => [c.name, c] as const))('%s: p and tie-broken U equal asv’s rule (1e-12 relative)', (_, c) => {
    const r = mannWhitneyU(c.a, c.b);
    expect(relErr(r.p, c.asv_rule.p)).toBeLessThan(1e-12);
    expect(r.u_tiebroken).toBe(c.asv_rule.u);
    const n = mannWhitneyU(c.a, c.b, 'normal');
    expect(relErr(n.p, c.asv_rule_normal.p)).toBeLessThan(1e-12);
    expect(n.method).toBe('normal');
    if (c.asv_rule_exact) {
      const e = mannWhitneyU(c.a, c.b, 'exact');
      expect(relErr(e.p, c.asv_rule_exact.p)).toBeLessThan(1e-12);
      expect(e.method).toBe('exact');
    }
  });

  it.each(tied.map((c) => [c.name, c] as const))('%s: conservative tie breaking never gives a smaller p than scipy', (_, c) => {
    const r = mannWhitneyU(c.a, c.b);
    if (c.asv_method === 'exact') {
      // Provable: scipy's exact test rounds the midrank U toward the centre by
      // at most 1/2, asv moves it to the least significant tie-breaking.
      expect(r.p).toBeGreaterThanOrEqual(c.scipy_exact!.p! * (1 - 1e-12));
    } else {
      // Observed on this table (not a theorem): the tie-corrected variance
      // makes scipy's p smaller still.
      expect(r.p).toBeGreaterThanOrEqual(c.scipy_asymptotic_cc.p!);
    }
  });

  it('breaks ties toward the centre: a straddling tie range gives p = 1', () => {
    // u = 0 pairs a > b strictly, 9 cross ties out of mn = 9: [0, 9] holds 4
    const r = mannWhitneyU([1, 1, 1], [1, 1, 1]);
    expect(r.u).toBe(4.5);
    expect(r.u_tiebroken).toBe(4);
    expect(r.p).toBe(1);
    // all of a above b except one tie: the tie counts against significance
    const t = mannWhitneyU([2, 3, 4, 5, 6, 7, 8], [1, 1, 1, 1, 1, 1, 2]);
    expect(t.u).toBe(48.5);
    expect(t.u_tiebroken).toBe(48);
    expect(t.p).toBeCloseTo(mannWhitneyU([2, 3, 4, 5, 6, 7, 8], [1, 1, 1, 1, 1, 1, 2.5]).p, 15);
  });

  it('switches from exact to normal above 20 samples per side (asv’s auto)', () => {
    const x = times(1, 21, 1e-3);
    const y = times(2, 21, 1e-3);
    expect(mannWhitneyU(x.slice(0, 20), y.slice(0, 20)).method).toBe('exact');
    expect(mannWhitneyU(x.slice(0, 20), y.slice(0, 3)).method).toBe('exact');
    expect(mannWhitneyU(x, y.slice(0, 20)).method).toBe('normal');
    expect(mannWhitneyU(x.slice(0, 20), y).method).toBe('normal');
    expect(mannWhitneyU(x, y).method).toBe('normal');
    // near the switch the two agree to a few per cent in the body of the distribution
    const e = mannWhitneyU(x.slice(0, 20), y.slice(0, 20), 'exact');
    const n = mannWhitneyU(x.slice(0, 20), y.slice(0, 20), 'normal');
    expect(Math.abs(e.p - n.p)).toBeLessThan(0.03);
  });

  it('is two-sided and antisymmetric in its U', () => {
    const x = times(3, 9, 1.1e-3);
    const y = times(4, 11, 1e-3);
    const xy = mannWhitneyU(x, y);
    const yx = mannWhitneyU(y, x);
    expect(xy.u + yx.u).toBe(99);
    expect(relErr(xy.p, yx.p)).toBeLessThan(1e-12);
  });

  it('handles empty, NaN and all-equal samples without throwing', () => {
    expect(Number.isNaN(mannWhitneyU([], [1, 2]).p)).toBe(true);
    expect(Number.isNaN(mannWhitneyU([1], []).u)).toBe(true);
    expect(mannWhitneyU([1, NaN, 2, 3], [4, 5, NaN]).u).toBe(mannWhitneyU([1, 2, 3], [4, 5]).u);
    expect(mannWhitneyU([5, 5, 5, 5], [5, 5, 5]).p).toBe(1);
    expect(mannWhitneyU(Array(30).fill(0), Array(30).fill(0)).p).toBe(1);
  });

  it('erfc matches Python’s math.erfc to 1e-12 relative', () => {
    for (const [x, want] of REF.erfc) expect(relErr(erfc(x), want)).toBeLessThan(1e-12);
  });
});

describe('minAttainableP and the choice of test', () => {
  it('is 1 / C(na + nb, min(na, nb))', () => {
    expect(minAttainableP(6, 6)).toBe(1 / 924);
    expect(minAttainableP(6, 6)).toBeLessThan(0.002);
    expect(minAttainableP(5, 5)).toBe(1 / 252);
    expect(minAttainableP(5, 5)).toBeGreaterThan(0.002);
    expect(minAttainableP(3, 20)).toBe(1 / 1771);
    expect(minAttainableP(20, 3)).toBe(1 / 1771);
    expect(minAttainableP(0, 7)).toBe(1);
  });

  it('uses the U test exactly when it can reach the threshold', () => {
    const x = times(5, 40, 2e-3);
    const y = times(6, 40, 1e-3);
    expect(isSignificant(x.slice(0, 6), y.slice(0, 6)).method).toBe('mann-whitney');
    expect(isSignificant(x.slice(0, 5), y.slice(0, 5)).method).toBe('ci-overlap');
    // 1/C(32, 2) = 1/496 > 0.002, 1/C(33, 2) = 1/528 < 0.002
    expect(isSignificant(x.slice(0, 2), y.slice(0, 30)).method).toBe('ci-overlap');
    expect(isSignificant(x.slice(0, 2), y.slice(0, 31)).method).toBe('mann-whitney');
  });

  it('follows asv’s two-sided exact p: 6 vs 6 fully separated is p = 2/924, not significant; 7 vs 7 is', () => {
    const six = isSignificant(times(7, 6, 2e-3), times(8, 6, 1e-3));
    expect(six.method).toBe('mann-whitney');
    expect(six.p).toBeCloseTo(2 / 924, 15);
    expect(six.significant).toBe(false);
    const seven = isSignificant(times(7, 7, 2e-3), times(8, 7, 1e-3));
    expect(seven.p).toBeCloseTo(2 / 3432, 15);
    expect(seven.significant).toBe(true);
  });
});

describe('quantileCI (asv’s order-statistic CI)', () => {
  const shuffled = (n: number) => Array.from({ length: n }, (_, i) => ((i * 7) % n) + 1); // a permutation of 1..n for n coprime to 7

  it('picks the hand-computed order statistics', () => {
    // n = 10, K ~ Bin(10, 1/2): P[K <= 0] = 1/1024 <= 0.005 < P[K <= 1] = 11/1024,
    // P[K <= 8] = 1013/1024 < 0.995 <= P[K <= 9]  =>  (y(1), y(10))
    expect(quantileCI(shuffled(10), 0.5)).toEqual({ estimate: 5.5, lo: 1, hi: 10 });
    // n = 20: P[K <= 3] = 1351/2^20 <= 0.005 < P[K <= 4] = 6196/2^20  =>  (y(4), y(17))
    expect(quantileCI(shuffled(20), 0.5)).toEqual({ estimate: 10.5, lo: 4, hi: 17 });
    // 95%: P[K <= 1] = 11/1024 <= 0.025 < P[K <= 2] = 56/1024  =>  (y(2), y(9)); 0.95 folds to 0.05 like asv's alpha_min
    expect(quantileCI(shuffled(10), 0.5, 0.05)).toEqual({ estimate: 5.5, lo: 2, hi: 9 });
    expect(quantileCI(shuffled(10), 0.5, 0.95)).toEqual({ estimate: 5.5, lo: 2, hi: 9 });
  });

  it('is unbounded below 8 samples (99%) and matches scipy’s binomial for n = 1..60', () => {
    expect(quantileCI([3, 1, 2, 5, 4, 6, 7], 0.5)).toEqual({ estimate: 4, lo: -Infinity, hi: Infinity });
    expect(quantileCI([3, 1, 2, 5, 4, 6, 7, 8], 0.5)).toEqual({ estimate: 4.5, lo: 1, hi: 8 });
    for (const o of REF.order_statistics) {
      const y = Array.from({ length: o.n }, (_, i) => i);
      const ci = quantileCI(y, o.q);
      expect(ci.lo).toBe(o.lo ?? -Infinity);
      expect(ci.hi).toBe(o.hi ?? Infinity);
    }
  });

  it('interpolates quantiles like asv (numpy linear) and drops NaN', () => {
    expect(quantile([4, 1, 3, 2], 0.25)).toBe(1.75);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([3, NaN, 1, 2])).toBe(2);
    expect(Number.isNaN(median([]))).toBe(true);
  });

  it('medianCI99 widens an unbounded CI with asv’s Laplace posterior (vs numerical integration, 1e-9)', () => {
    for (const l of REF.laplace) {
      const [lo, hi] = medianCI99(l.y);
      expect(relErr(lo, l.ci99[0])).toBeLessThan(1e-9);
      expect(relErr(hi, l.ci99[1])).toBeLessThan(1e-9);
    }
    const ten = shuffled(10);
    expect(medianCI99(ten)).toEqual([1, 10]); // bounded: order statistics only
    expect(medianCI99([2])).toEqual([-Infinity, Infinity]);
    expect(medianCI99([2, 2, 2])).toEqual([2, 2]);
    expect(medianCI99([]).every(Number.isNaN)).toBe(true);
  });
});

describe('isSignificant (asv’s is_different)', () => {
  it('falls back to CI overlap when the samples are too few', () => {
    const r = isSignificant(times(9, 5, 2e-3), times(10, 5, 1e-3));
    expect(r).toEqual({ significant: true, method: 'ci-overlap', p: null });
    expect(isSignificant(times(11, 5, 1e-3, 0.05), times(12, 5, 1e-3, 0.05)).significant).toBe(false);
    expect(isSignificant([1, 2, 3], [1, 2, 3]).significant).toBe(false);
    expect(isSignificant([2e-3], [1e-3]).significant).toBe(false); // one sample: unbounded CI
  });

  it('uses the U test with enough samples', () => {
    const r = isSignificant(times(13, 20, 1.2e-3), times(14, 20, 1e-3));
    expect(r.method).toBe('mann-whitney');
    expect(r.significant).toBe(true);
    expect(r.p).toBeLessThan(1e-10);
    const same = isSignificant(times(15, 20, 1e-3), times(16, 20, 1e-3));
    expect(same.significant).toBe(false);
  });

  it('drops NaN and never throws on degenerate input', () => {
    const x = times(17, 10, 2e-3);
    const y = times(18, 10, 1e-3);
    expect(isSignificant([...x, NaN], [NaN, ...y])).toEqual(isSignificant(x, y));
    expect(isSignificant([], y)).toEqual({ significant: false, method: 'ci-overlap', p: null });
    expect(isSignificant([NaN, NaN], y).significant).toBe(false);
    expect(isSignificant(Array(10).fill(1e-3), Array(10).fill(1e-3)).significant).toBe(false);
    expect(isSignificant(Array(10).fill(0), Array(10).fill(0)).significant).toBe(false);
  });
});

describe('isImprovement', () => {
  const base = times(19, 20, 1e-3);
  it('needs significance and the 1.1 factor', () => {
    expect(isImprovement(base, times(20, 20, 1e-3 / 1.2))).toBe(true);
    const small = times(21, 20, 1e-3 / 1.05);
    expect(isSignificant(base, small).significant).toBe(true);
    expect(isImprovement(base, small)).toBe(false);
    expect(isImprovement(base, small, 1.02)).toBe(true);
    expect(isImprovement(base, times(22, 20, 1.2e-3))).toBe(false); // slower
    expect(isImprovement(base, times(23, 20, 1e-3))).toBe(false); // same
    expect(isImprovement(base.slice(0, 1), [1e-6])).toBe(false); // one sample: never significant
    expect(isImprovement([], [])).toBe(false);
  });
});

describe('pairedLogRatioSpeedup', () => {
  it('is exp(median(ln(a/b)))', () => {
    expect(pairedLogRatioSpeedup([[2, 1], [4, 2], [3, 1]])).toBeCloseTo(2, 14);
    expect(pairedLogRatioSpeedup([[2, 1], [8, 1]])).toBeCloseTo(4, 14); // even: geometric mean of the middle two
    expect(pairedLogRatioSpeedup([[1, 2], [1, 2], [1, 4]])).toBeCloseTo(0.5, 14);
  });
  it('skips pairs without a finite log ratio', () => {
    expect(pairedLogRatioSpeedup([[2, 1], [NaN, 1], [3, 0], [0, 3], [6, 2]])).toBeCloseTo(Math.sqrt(6), 14);
    expect(Number.isNaN(pairedLogRatioSpeedup([]))).toBe(true);
    expect(Number.isNaN(pairedLogRatioSpeedup([[0, 0]]))).toBe(true);
  });
});

describe('speedupLowerBound', () => {
  /**
   * Every s above the bound fails: checked just above it, between every two
   * consecutive ratios a_i/b_j above it (where U can change) and at those
   * ratios. Not at the supremum itself: there s*b_j = a_i is a tie in exact
   * arithmetic (not significant), but the rounded product can land either side.
   */
  function expectSupremum(a: number[], b: number[], lb: number) {
    expect(fasterBy(a, b, lb)).toBe(true);
    expect(fasterBy(a, b, lb * (1 + 1e-6))).toBe(false);
    const ratios = [...new Set(a.flatMap((x) => b.map((y) => x / y)))].filter((r) => r > lb).sort((p, q) => p - q);
    for (let i = 0; i < ratios.length; i++) {
      if (ratios[i] > lb * (1 + 1e-6)) expect(fasterBy(a, b, ratios[i])).toBe(false);
      if (i + 1 < ratios.length) expect(fasterBy(a, b, Math.sqrt(ratios[i] * ratios[i + 1]))).toBe(false);
    }
    expect(fasterBy(a, b, 2 * (ratios.at(-1) ?? lb))).toBe(false);
  }

  it('is a bit below 2 for b = a/2 with little noise', () => {
    const a = times(31, 20, 1e-3);
    const z = normals(32);
    const b = a.map((v) => (v / 2) * Math.exp(0.005 * z()));
    const lb = speedupLowerBound(a, b)!;
    expect(lb).toBeGreaterThan(1.5);
    expect(lb).toBeLessThan(2);
    expectSupremum(a, b, lb);
  });

  it('is below 1 for identical distributions', () => {
    const a = times(33, 20, 1e-3);
    const lb = speedupLowerBound(a, times(34, 20, 1e-3))!;
    expect(lb).toBeLessThan(1);
    expect(lb).toBeGreaterThan(0.9);
    expect(speedupLowerBound(a, a)!).toBeLessThan(1);
  });

  it('is the exact supremum (bisection boundary) in every regime', () => {
    const cases: Array<[number[], number[]]> = [
      [times(35, 12, 1.3e-3, 0.05), times(36, 9, 1e-3, 0.05)], // exact U, unequal sizes
      [times(37, 30, 1.1e-3, 0.03), times(38, 25, 1e-3, 0.03)], // normal approximation
      [times(39, 20, 1e-3, 0.02).map((v) => Math.round(v * 1e5) / 1e5), times(40, 20, 0.8e-3, 0.02).map((v) => Math.round(v * 1e5) / 1e5)], // ties
      [[5, 4, 6, 5, 5], [1, 1.1, 0.9, 1, 1.05]], // CI rule (5 vs 5)
    ];
    for (const [a, b] of cases) {
      const lb = speedupLowerBound(a, b);
      expect(lb).not.toBeNull();
      expectSupremum(a, b, lb!);
    }
  });

  it('uses the CI rule when the U test cannot reach the threshold: sup = ci_a.lo / ci_b.hi', () => {
    const a = times(41, 5, 2e-3);
    const b = times(42, 5, 1e-3);
    const lb = speedupLowerBound(a, b)!;
    expect(relErr(lb, medianCI99(a)[0] / medianCI99(b)[1])).toBeLessThan(1e-8);
  });

  it('scales with b and is null when nothing can be significant', () => {
    const a = times(43, 15, 1e-3, 0.03);
    const b = times(44, 15, 0.6e-3, 0.03);
    const lb = speedupLowerBound(a, b)!;
    expect(relErr(speedupLowerBound(a, b.map((v) => v * 4))!, lb / 4)).toBeLessThan(1e-8);
    expect(speedupLowerBound([1e-3], [1e-3])).toBeNull(); // unbounded CIs always overlap
    expect(speedupLowerBound([1e-3], times(45, 10, 1e-3))).toBeNull();
    expect(speedupLowerBound([], [1])).toBeNull();
    expect(speedupLowerBound(Array(6).fill(1), Array(6).fill(0.5))).toBeNull(); // 6 vs 6: p >= 2/924
    expect(speedupLowerBound(times(46, 20, 1e-3), Array(20).fill(0))).toBe(Infinity); // zero times: every s
  });
});

describe('compare', () => {
  it('fills every field for a clear 2x speedup', () => {
    const a = times(51, 20, 1e-3);
    const b = times(52, 20, 0.5e-3);
    const c = compare(a, b);
    expect(c.n_a).toBe(20);
    expect(c.n_b).toBe(20);
    expect(c.median_a).toBe(median(a));
    expect(c.median_b).toBe(median(b));
    expect(c.ci99_a).toEqual(medianCI99(a));
    expect(c.ci99_b).toEqual(medianCI99(b));
    expect(c.ci99_a[0]).toBeLessThanOrEqual(c.median_a);
    expect(c.ci99_a[1]).toBeGreaterThanOrEqual(c.median_a);
    expect(c.method).toBe('mann-whitney');
    expect(c.u).toBe(400);
    expect(c.p_value).toBeCloseTo(2 / 137846528820, 20);
    expect(c.significant).toBe(true);
    expect(c.improved).toBe(true);
    expect(c.speedup).toBeCloseTo(c.median_a / c.median_b, 14);
    expect(c.speedup_paired).toBeCloseTo(pairedLogRatioSpeedup(a.map((x, i) => [x, b[i]])), 14);
    expect(c.speedup_lower_bound).toBe(speedupLowerBound(a, b));
    expect(c.speedup_lower_bound!).toBeGreaterThan(1.8);
    expect(c.speedup_lower_bound!).toBeLessThan(c.speedup);
  });

  it('reports the CI rule, unequal sizes, NaN and empty sides', () => {
    const few = compare(times(53, 4, 2e-3), times(54, 4, 1e-3));
    expect(few.method).toBe('ci-overlap');
    expect(few.u).toBeNull();
    expect(few.p_value).toBeNull();

    const uneven = compare(times(55, 10, 1e-3), times(56, 12, 1e-3));
    expect(uneven.speedup_paired).toBeNull();
    expect(uneven.improved).toBe(false);

    // NaNs are dropped from the counts, the pairing stays by round
    const nan = compare([2, NaN, 2, 2], [1, 1, NaN, 1]);
    expect(nan.n_a).toBe(3);
    expect(nan.n_b).toBe(3);
    expect(nan.speedup_paired).toBeCloseTo(2, 14);

    const empty = compare([], []);
    expect(empty.significant).toBe(false);
    expect(empty.improved).toBe(false);
    expect(empty.p_value).toBeNull();
    expect(empty.u).toBeNull();
    expect(empty.speedup_lower_bound).toBeNull();
    expect(empty.speedup_paired).toBeNull();
    expect(Number.isNaN(empty.speedup)).toBe(true);

    const zeros = compare(Array(8).fill(0), Array(8).fill(0));
    expect(zeros.significant).toBe(false);
    expect(zeros.improved).toBe(false);

    const opts = compare(times(57, 20, 1e-3), times(58, 20, 1e-3 / 1.05), { factor: 1.02, pThreshold: 0.01 });
    expect(opts.improved).toBe(true);
    expect(compare(times(57, 20, 1e-3), times(58, 20, 1e-3 / 1.05)).improved).toBe(false);
  });
});

describe('summarize', () => {
  it('skips failed benchmarks and aggregates the rest', () => {
    const s = summarize([
      { speedup: 2, speedup_lower_bound: 1.8, significant: true },
      null,
      { speedup: 0.5, speedup_lower_bound: 0.4, significant: true },
      { speedup: 1, speedup_lower_bound: null, significant: false },
      { speedup: 4, speedup_lower_bound: 0.9, significant: false },
    ]);
    expect(s.benchmarks).toBe(4);
    expect(s.significant).toBe(2);
    expect(s.max_speedup).toBe(4);
    expect(s.max_speedup_lower_bound).toBe(1.8);
    expect(s.geomean_speedup).toBeCloseTo(Math.pow(2 * 0.5 * 1 * 4, 1 / 4), 14);
  });
  it('is empty-safe', () => {
    expect(summarize([])).toEqual({ max_speedup: null, max_speedup_lower_bound: null, geomean_speedup: null, benchmarks: 0, significant: 0 });
    expect(summarize([null, { speedup: NaN, speedup_lower_bound: null, significant: false }])).toEqual({
      max_speedup: null, max_speedup_lower_bound: null, geomean_speedup: null, benchmarks: 1, significant: 0,
    });
  });
});

describe('gate with interleaved rounds', () => {
  // 4 rounds x 10 samples; jitter is deterministic so the test cannot flake.
  const side = (levels: number[]) => levels.flatMap((level, r) => Array.from({ length: 10 }, (_, i) => level * (1 + ((i * 7 + r * 3) % 10) / 1000)));

  it('a fast spell in some of one side\'s rounds is not a change once rounds are paired', () => {
    // The head was lucky in two rounds (0.9) and unlucky in two (1.2): its fastest half looks 10% faster.
    const base = side([1, 1, 1, 1]);
    const head = side([1.2, 1.2, 0.9, 0.9]);
    expect(gate(base, head).verdict).toBe('faster'); // the fastest halves alone are fooled
    const paired = gate(base, head, { samplesPerRound: 10 });
    expect(paired.paired_ratio).toBeLessThan(1.05);
    expect(paired.verdict).toBe('no change');
  });

  it('a change seen in every round passes both tests, in either direction', () => {
    expect(gate(side([1.3, 1.3, 2.6, 1.3]), side([1, 1, 1, 2]), { samplesPerRound: 10 }).verdict).toBe('faster');
    expect(gate(side([1, 1, 1, 1]), side([1.3, 1.3, 1.3, 1.3]), { samplesPerRound: 10 }).verdict).toBe('slower');
    expect(gate(side([1, 1, 1, 1]), side([1.3, 1.3, 1.3, 1.3]), { samplesPerRound: 10 }).paired_ratio).toBeCloseTo(1 / 1.3, 2);
  });

  it('by each process\'s fastest sample, slow spells inside a process do not move the ratio', () => {
    // base round 2: mostly slow, with two samples at its own cost
    const base = [...side([1.3]), ...[1.3, 1.3, 2, 2, 2, 2, 2, 2, 2, 2]];
    const head = side([1, 1]);
    expect(pairedRoundRatio(base, head, 10, 'min')).toBeCloseTo(1.3, 2);
    expect(pairedRoundRatio(base, head, 10)).toBeCloseTo((1.3 + 2) / 2, 1); // by medians, the spell counts
  });

  it('without round structure the paired check cannot pass', () => {
    expect(pairedRoundRatio([1, 2, 3], [1, 2], 1)).toBeNull();
    expect(gate(side([1.3, 1.3, 1.3, 1.3]), side([1, 1, 1, 1]).slice(1), { samplesPerRound: 10 }).verdict).toBe('no change');
  });
});
