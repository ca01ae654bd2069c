/**
 * Statistics of the speedup gate: does the patched side (B, head) run a
 * benchmark significantly faster than the base side (A)?
 *
 * Pure functions, no I/O. Samples are run times in seconds (smaller = faster);
 * speedup = A / B (> 1 means the patch is faster).
 *
 * The significance rule is airspeed velocity's (asv) `is_different`
 * (asv/_stats.py) with the median CI of `compute_stats`/`quantile_ci`
 * (asv_runner/statistics.py), followed exactly where asv defines it:
 *
 * - Mann-Whitney U, two-sided, exact for max(na, nb) <= 20 and a plain normal
 *   approximation above. Ties are broken *conservatively*: of all the ways to
 *   order the tied cross pairs, the least significant one is used (asv's rule).
 *   asv's normal approximation has neither a continuity correction nor a
 *   tie-corrected variance (scipy's `mannwhitneyu` has both); for untied
 *   samples it equals scipy's `use_continuity=False` p. See `mannWhitneyU`.
 * - The U test is only used when it can reach the threshold at all:
 *   1 / C(na + nb, min(na, nb)) < pThreshold. Otherwise the samples differ
 *   when their 99% median CIs do not overlap, and a CI that the order
 *   statistics cannot bound (fewer than 8 samples) is widened by asv's Laplace
 *   posterior.
 * - NaN samples are dropped (asv drops them).
 */

export type MannWhitneyMethod = 'exact' | 'normal';

export interface MannWhitneyResult {
  /**
   * U statistic of `a` in the midrank (scipy) convention:
   * #{(i, j): a_i > b_j} + 0.5 * #{(i, j): a_i == b_j}. U > na*nb/2 means A
   * tends to be larger (slower) than B.
   */
  u: number;
  /**
   * The statistic asv itself returns and the p-value is computed from: the
   * count #{a_i > b_j} with the cross ties counted entirely as ">" or entirely
   * as "<" (whichever is less significant), or moved to na*nb/2 when the tied
   * range straddles it.
   */
  u_tiebroken: number;
  /** Two-sided p-value; NaN when a side is empty. */
  p: number;
  method: MannWhitneyMethod;
}

export interface Comparison {
  n_a: number;
  n_b: number;
  median_a: number;
  median_b: number;
  ci99_a: [number, number];
  ci99_b: [number, number];
  u: number | null;
  p_value: number | null;
  method: 'mann-whitney' | 'ci-overlap';
  significant: boolean;
  /** asv's rule: significant AND median_b < median_a / factor. */
  improved: boolean;
  /** median_a / median_b */
  speedup: number;
  /** pairedLogRatioSpeedup over index-aligned pairs when both sides have the same number of samples, else null. */
  speedup_paired: number | null;
  speedup_lower_bound: number | null;
}

export interface SpeedupSummary {
  max_speedup: number | null;
  max_speedup_lower_bound: number | null;
  geomean_speedup: number | null;
  benchmarks: number;
  significant: number;
}

/** asv's default p threshold (is_different). */
export const DEFAULT_P_THRESHOLD = 0.002;
/** asv compare's default factor. */
export const DEFAULT_FACTOR = 1.1;
/** asv's CI level: 99%. */
export const DEFAULT_CI_ALPHA = 0.01;
/** asv switches from the exact U distribution to the normal approximation above this size. */
export const EXACT_MAX_SAMPLES = 20;

// ---------------------------------------------------------------- basics

/** Drops NaN (and anything that is not a number, e.g. a JSON null) as asv does. */
export function cleanSamples(xs: readonly number[]): number[] {
  return xs.filter((x) => typeof x === 'number' && !Number.isNaN(x));
}

function sortedCopy(xs: readonly number[]): number[] {
  return [...xs].sort((p, q) => p - q);
}

/** asv's `quantile`: linear interpolation between order statistics (numpy's default). NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`invalid quantile ${q}`);
  const y = sortedCopy(cleanSamples(xs));
  return quantileSorted(y, q);
}

function quantileSorted(y: readonly number[], q: number): number {
  const n = y.length;
  if (n === 0) return NaN;
  let z = (n - 1) * q;
  const j = Math.floor(z);
  z -= j;
  if (j === n - 1) return y[n - 1];
  return (1 - z) * y[j] + z * y[j + 1];
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Binomial coefficient C(n, k) as a double (exact while it is below 2^53). */
export function binomial(n: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(k) || k < 0 || k > n) return 0;
  const kk = Math.min(k, n - k);
  let c = 1;
  // c stays C(n - kk + i, i), an integer, after every step
  for (let i = 1; i <= kk; i++) c = (c * (n - kk + i)) / i;
  return c;
}

/**
 * asv's p_min, 1 / C(na + nb, min(na, nb)): the probability of the most
 * extreme arrangement, which is_different compares with the threshold to
 * decide whether to run the U test at all (6 vs 6: 1/924 < 0.002, so yes;
 * 5 vs 5: 1/252, so the CI rule). Note that the smallest *two-sided* p the
 * current asv exact test returns is twice that (both tails), so 6 vs 6 runs
 * the U test but can never reach p < 0.002 (2/924); 7 vs 7 can (2/3432).
 */
export function minAttainableP(na: number, nb: number): number {
  return 1 / binomial(na + nb, Math.min(na, nb));
}

// ------------------------------------------------------ quantile CI (asv)

const LOG_FACTORIAL: number[] = [0];
function logFactorial(n: number): number {
  for (let i = LOG_FACTORIAL.length; i <= n; i++) LOG_FACTORIAL[i] = LOG_FACTORIAL[i - 1] + Math.log(i);
  return LOG_FACTORIAL[n];
}

function binomPmf(n: number, k: number, p: number): number {
  if (k < 0 || k > n) return 0;
  if (p === 0) return k === 0 ? 1 : 0;
  if (p === 1) return k === n ? 1 : 0;
  return Math.exp(
    logFactorial(n) - logFactorial(n - k) - logFactorial(k) + k * Math.log(p) + (n - k) * Math.log(1 - p),
  );
}

/**
 * asv's `quantile_ci`: the q-quantile and a distribution-free CI of coverage
 * >= 1 - alpha from order statistics. With K ~ Bin(n, q) and F(k) = P[K <= k],
 * lo = y[k] for the largest k with F(k) <= alpha/2 and hi = y[k] for the
 * smallest k with F(k) >= 1 - alpha/2 (0-based sorted samples); a bound with
 * no such k is -Infinity / +Infinity (for the median at 99%: fewer than 8
 * samples). `alpha` is folded like asv's alpha_min (0.99 means 0.01).
 */
export function quantileCI(
  xs: readonly number[],
  q: number,
  alpha: number = DEFAULT_CI_ALPHA,
): { estimate: number; lo: number; hi: number } {
  const y = sortedCopy(cleanSamples(xs));
  const n = y.length;
  const a = Math.min(alpha, 1 - alpha);
  const pa = a / 2;
  const pb = 1 - pa;
  let lo = -Infinity;
  let hi = Infinity;
  let F = 0;
  for (let k = 0; k < n; k++) {
    F += binomPmf(n, k, q); // F = P[K <= k]
    if (F <= pa) lo = y[k];
    if (F >= pb) {
      hi = y[k];
      break;
    }
  }
  return { estimate: quantileSorted(y, q), lo, hi };
}

/**
 * asv's Laplace posterior for a location parameter,
 * p(beta | y) ∝ (sum_j |y_j - beta|)^-(nu + 1) with nu = n - 1, in closed
 * form (asv_runner/statistics.py `LaplacePosterior`). asv uses its 0.5% and
 * 99.5% quantiles where the order-statistic CI is unbounded.
 */
class LaplacePosterior {
  private readonly nu: number;
  private readonly mle: number;
  private readonly scale: number;
  private readonly y: number[];
  /** cdfAt[k] = unnormalised CDF at y[k] (k < n); cdfAt[n] = total mass. */
  private readonly cdfAt: number[] = [];

  constructor(samples: readonly number[]) {
    const y = sortedCopy(samples);
    const n = y.length;
    this.nu = n - 1;
    this.mle = quantileSorted(y, 0.5);
    // Centre on the MLE and scale so the unnormalised PDF at the MLE is ~1/nu
    // (avoids overflow in the integrals below), as asv does.
    let s = 0;
    for (const v of y) s += Math.abs(v - this.mle);
    this.scale = s * this.nu ** (1 / (this.nu + 1));
    this.y = this.scale !== 0 ? y.map((v) => (v - this.mle) / this.scale) : y.map(() => 0);
    if (this.scale !== 0) this.integrate();
  }

  /** On the k-th piece, sum_j |y_j - beta| = c*beta + d. */
  private piece(k: number): { c: number; d: number } {
    let d = 0;
    for (let j = 0; j < this.y.length; j++) d += j < k ? -this.y[j] : this.y[j];
    return { c: 2 * k - this.y.length, d };
  }

  private integrate(): void {
    const n = this.y.length;
    const nu = this.nu;
    let cdf = 0;
    for (let k = 0; k <= n; k++) {
      const { c, d } = this.piece(k);
      const a = k === 0 ? -Infinity : this.y[k - 1];
      const b = k === n ? Infinity : this.y[k];
      const term = c === 0 ? (b - a) / d ** (nu + 1) : (1 / (nu * c)) * ((a * c + d) ** -nu - (b * c + d) ** -nu);
      cdf += Math.max(0, term); // rounding can make an empty piece slightly negative
      this.cdfAt[k] = cdf;
    }
  }

  ppf(p: number): number {
    if (!(p >= 0 && p <= 1)) return NaN;
    if (this.scale === 0) return this.mle;
    const n = this.y.length;
    const nu = this.nu;
    const norm = this.cdfAt[n];
    const cdfx = Math.min(p * norm, norm);
    let k = 0;
    while (k < n && !(cdfx <= this.cdfAt[k])) k++;
    const { c, d } = this.piece(k);
    let beta: number;
    if (k === 0) {
      const z = -nu * c * cdfx;
      beta = z > 0 ? (z ** (-1 / nu) - d) / c : -Infinity;
    } else {
      const a = this.y[k - 1];
      const term = cdfx - this.cdfAt[k - 1];
      if (c === 0) {
        beta = a + term * d ** (nu + 1);
      } else {
        const z = (a * c + d) ** -nu - nu * c * term;
        beta = z > 0 ? (z ** (-1 / nu) - d) / c : Infinity;
      }
    }
    if (k < n) beta = Math.min(beta, this.y[k]);
    return beta * this.scale + this.mle;
  }
}

/**
 * The 99% CI of the median exactly as asv records it (compute_stats'
 * ci_99_a / ci_99_b): the order-statistic CI, with an unbounded end replaced
 * by the Laplace posterior's 0.5% / 99.5% quantile, widened to the sample
 * range. One sample gives (-Infinity, Infinity); no samples (NaN, NaN).
 */
export function medianCI99(xs: readonly number[]): [number, number] {
  const y = cleanSamples(xs);
  if (y.length === 0) return [NaN, NaN];
  const ci = quantileCI(y, 0.5, DEFAULT_CI_ALPHA);
  let { lo, hi } = ci;
  if ((!Number.isFinite(lo) || !Number.isFinite(hi)) && y.length > 1) {
    const post = new LaplacePosterior(y);
    if (!Number.isFinite(lo)) lo = Math.min(post.ppf(DEFAULT_CI_ALPHA / 2), Math.min(...y));
    if (!Number.isFinite(hi)) hi = Math.max(post.ppf(1 - DEFAULT_CI_ALPHA / 2), Math.max(...y));
  }
  return [lo, hi];
}

// ------------------------------------------------------- Mann-Whitney U

/**
 * erfc to ~1e-14 relative: a positive-term series for erf below 2.5 and a
 * continued fraction (modified Lentz) above; exp(-x^2) is split so that x^2
 * is not rounded before exponentiation.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x > 27.3) return 0; // below the smallest subnormal
  const xh = Math.round(x * 64) / 64;
  const expMinusX2 = Math.exp(-xh * xh) * Math.exp(-(x - xh) * (x + xh));
  if (x < 2.5) {
    // erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
    let term = x;
    let sum = x;
    for (let n = 1; n < 500; n++) {
      term *= (2 * x * x) / (2 * n + 1);
      sum += term;
      if (term <= sum * 1e-17) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * expMinusX2 * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  const tiny = 1e-300;
  let f = x;
  let C = x;
  let D = 0;
  for (let k = 1; k < 5000; k++) {
    const ak = k / 2;
    D = x + ak * D;
    D = D === 0 ? 1 / tiny : 1 / D;
    C = x + ak / C;
    if (C === 0) C = tiny;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return expMinusX2 / Math.sqrt(Math.PI) / f;
}

/**
 * Cumulative counts of the null distribution of U for sizes (m, n):
 * cum[u] = #{arrangements with U <= u}, total = C(m + n, m). The frequencies
 * are the coefficients of the Gaussian binomial [m+n choose m]_q, built by
 * f(i, j) = f(i, j-1) + q^j f(i-1, j) (Mann & Whitney 1947, the recurrence asv
 * memoises). Integer-exact while the counts stay below 2^53 (m + n <= 55).
 */
interface UDistribution {
  cum: Float64Array;
  total: number;
}
const U_DIST_CACHE = new Map<string, UDistribution>();

function uDistribution(m: number, n: number): UDistribution {
  const key = m <= n ? `${m},${n}` : `${n},${m}`; // symmetric in (m, n)
  const hit = U_DIST_CACHE.get(key);
  if (hit) return hit;
  const [mm, nn] = m <= n ? [m, n] : [n, m];
  // prev[j] = frequencies for sizes (i - 1, j); row[j] for (i, j)
  let prev: Float64Array[] = Array.from({ length: nn + 1 }, () => Float64Array.of(1));
  for (let i = 1; i <= mm; i++) {
    const row: Float64Array[] = [Float64Array.of(1)];
    for (let j = 1; j <= nn; j++) {
      const left = row[j - 1];
      const up = prev[j];
      const out = new Float64Array(i * j + 1);
      out.set(left);
      for (let k = 0; k < up.length; k++) out[k + j] += up[k];
      row.push(out);
    }
    prev = row;
  }
  const freq = prev[nn];
  const cum = new Float64Array(freq.length);
  let acc = 0;
  for (let k = 0; k < freq.length; k++) {
    acc += freq[k];
    cum[k] = acc;
  }
  const dist = { cum, total: acc };
  if (U_DIST_CACHE.size > 2000) U_DIST_CACHE.clear();
  U_DIST_CACHE.set(key, dist);
  return dist;
}

/** #{a_i > b_j} and #{a_i == b_j}, in O((m + n) log n). */
function countPairs(a: readonly number[], bSorted: readonly number[]): { greater: number; ties: number } {
  let greater = 0;
  let ties = 0;
  for (const x of a) {
    const below = lowerBound(bSorted, x); // b_j < x
    const upTo = upperBound(bSorted, x); // b_j <= x
    greater += below;
    ties += upTo - below;
  }
  return { greater, ties };
}

function lowerBound(ys: readonly number[], x: number): number {
  let lo = 0;
  let hi = ys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ys[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(ys: readonly number[], x: number): number {
  let lo = 0;
  let hi = ys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ys[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Two-sided Mann-Whitney U test of a vs b, asv's `mann_whitney_u`.
 *
 * method 'auto' (asv's): exact when max(na, nb) <= 20, normal above.
 *
 * Ties (asv's conservative rule, not scipy's): only ties *between* the samples
 * matter. With u = #{a_i > b_j} and t cross ties, every U in [u, u + t] is a
 * possible tie-breaking; if that range holds floor(na*nb/2) the test uses it
 * (p = 1), otherwise the endpoint nearer the centre. So ties can only make p
 * larger. scipy instead uses midranks (U = u + t/2): its exact test ignores
 * ties (rounding U toward the centre by at most 1/2) and its normal
 * approximation uses a tie-corrected variance, so with ties scipy's p is
 * smaller than asv's.
 *
 * Exact: p = P[U <= ux] + P[U >= max(floor(mn/2), mn - ux - 1) + 1], ux =
 * min(U, mn - U) (current asv/_stats.py; equal to scipy's exact p without
 * ties, never above 1; the older asv/statistics.py summed the upper tail from
 * mn - ux + 1, dropping one term, so e.g. 6 vs 6 could reach p = 1/924). Both tails are summed from integer counts, so tiny p-values keep
 * full relative precision (asv's `1 - cdf` loses them; same value otherwise).
 *
 * Normal: z = (ux - mn/2) / sqrt(mn (na + nb + 1) / 12), p = 2 Phi(z), without
 * continuity correction or tie-corrected variance, as asv does; without ties
 * this is scipy's `use_continuity=False` p (scipy's default continuity
 * correction gives a slightly larger p).
 *
 * Empty side: u and p are NaN.
 */
export function mannWhitneyU(
  a: readonly number[],
  b: readonly number[],
  method: 'auto' | MannWhitneyMethod = 'auto',
): MannWhitneyResult {
  const x = cleanSamples(a);
  const y = cleanSamples(b);
  const m = x.length;
  const n = y.length;
  const chosen: MannWhitneyMethod =
    method === 'auto' ? (Math.max(m, n) > EXACT_MAX_SAMPLES ? 'normal' : 'exact') : method;
  if (m === 0 || n === 0) return { u: NaN, u_tiebroken: NaN, p: NaN, method: chosen };

  const mn = m * n;
  const { greater: u, ties: t0 } = countPairs(x, sortedCopy(y));
  const uMid = u + t0 / 2;

  // asv's conservative tie breaking
  const half = Math.floor(mn / 2);
  let t = t0;
  if (u <= half && u + t >= half) t = half - u;
  const ux1 = Math.min(u, mn - u);
  const ux2 = Math.min(u + t, mn - (u + t));
  let uTb = u;
  let ux = ux1;
  if (ux1 < ux2) {
    uTb = u + t;
    ux = ux2;
  }

  let p: number;
  if (chosen === 'exact') {
    const { cum, total } = uDistribution(m, n);
    const upperFrom = Math.max(half, mn - ux - 1) + 1; // upper tail U >= upperFrom
    const mirrored = mn - upperFrom; // P[U >= k] = P[U <= mn - k] by symmetry
    p = (cum[ux] + (mirrored >= 0 ? cum[mirrored] : 0)) / total;
  } else {
    const sd = Math.sqrt((mn * (m + n + 1)) / 12);
    const z = (ux - mn / 2) / sd;
    p = erfc(-z / Math.SQRT2); // 2 * Phi(z)
  }
  return { u: uMid, u_tiebroken: uTb, p, method: chosen };
}

// ------------------------------------------------------ significance rule

export interface SignificanceResult {
  significant: boolean;
  method: 'mann-whitney' | 'ci-overlap';
  /** The U test's p-value; null when the CI rule decided. */
  p: number | null;
}

/**
 * asv's `is_different`: Mann-Whitney U at pThreshold when the sample sizes
 * can reach it (minAttainableP < pThreshold), otherwise "the 99% median CIs
 * do not overlap". Empty sides are never significant.
 */
export function isSignificant(
  a: readonly number[],
  b: readonly number[],
  pThreshold: number = DEFAULT_P_THRESHOLD,
): SignificanceResult {
  const x = cleanSamples(a);
  const y = cleanSamples(b);
  if (x.length > 0 && y.length > 0 && minAttainableP(x.length, y.length) < pThreshold) {
    const { p } = mannWhitneyU(x, y);
    return { significant: p < pThreshold, method: 'mann-whitney', p };
  }
  if (x.length === 0 || y.length === 0) return { significant: false, method: 'ci-overlap', p: null };
  return { significant: !ciOverlap(medianCI99(x), medianCI99(y)), method: 'ci-overlap', p: null };
}

/** asv's overlap test (closed intervals: touching intervals overlap). */
function ciOverlap(ca: readonly [number, number], cb: readonly [number, number]): boolean {
  return ca[1] >= cb[0] && ca[0] <= cb[1];
}

/**
 * Significant AND median(b) < median(a) / factor (asv compare's "improved",
 * `_is_result_better`). Unlike asv, a single sample per side is not waved
 * through on the factor alone: asv skips the statistics when either side has
 * repeat == 1, the gate does not (one sample gives an unbounded CI, so never
 * significant).
 */
export function isImprovement(
  a: readonly number[],
  b: readonly number[],
  factor: number = DEFAULT_FACTOR,
  pThreshold: number = DEFAULT_P_THRESHOLD,
): boolean {
  const x = cleanSamples(a);
  const y = cleanSamples(b);
  if (x.length === 0 || y.length === 0) return false;
  return isSignificant(x, y, pThreshold).significant && median(y) < median(x) / factor;
}

// ------------------------------------------------------------- speedups

/**
 * exp(median(ln(a_i / b_i))) over (base, patched) pairs from the same round.
 * Pairs with a NaN, zero or negative time are skipped (no finite log ratio);
 * NaN when none is left.
 */
export function pairedLogRatioSpeedup(pairs: ReadonlyArray<readonly [number, number]>): number {
  const logs: number[] = [];
  for (const [x, y] of pairs) {
    if (x > 0 && y > 0 && Number.isFinite(x) && Number.isFinite(y)) logs.push(Math.log(x / y));
  }
  return logs.length === 0 ? NaN : Math.exp(median(logs));
}

/**
 * The largest s for which "patched is faster than base by at least s" is
 * still significant:
 *   sup { s > 0 : median(s*b) < median(a) and isSignificant(a, s*b) }.
 * Returned as a value just below that supremum (within 1e-9 relative) at
 * which the test *is* significant; everything above it is not. Values < 1
 * mean "not shown to be faster". null when no s > 0 is significant; Infinity
 * when every s is (e.g. all patched times are 0 and the base ones are not).
 *
 * How it is found exactly (the bisection in log space, done on the finite set
 * where the answer can change):
 * - CI rule: medianCI99(s*b) = s * medianCI99(b), and the CIs can only
 *   separate with s*b below a, so the supremum is ci_a.lo / ci_b.hi.
 * - U test: as s grows, U(a, s*b) can only change at the ratios a_i / b_j and
 *   (for b >= 0) never increases, while the p-value depends on U alone. So
 *   the s where the test rejects with U on the "b faster" side form an
 *   interval (0, s1), bisected over the sorted ratios; and the s where it
 *   rejects on the other side (possible only when the medians disagree with
 *   the U test) form a suffix, cut off at median(a)/median(b). Negative
 *   times break the monotonicity; they fall back to checking every interval.
 */
export function speedupLowerBound(
  a: readonly number[],
  b: readonly number[],
  pThreshold: number = DEFAULT_P_THRESHOLD,
): number | null {
  const x = cleanSamples(a);
  const y = cleanSamples(b);
  if (x.length === 0 || y.length === 0) return null;
  const sig = (s: number): boolean => significantAtFactor(x, y, s, pThreshold);

  if (!(minAttainableP(x.length, y.length) < pThreshold)) {
    const [loA] = medianCI99(x);
    const [, hiB] = medianCI99(y);
    // all-zero patched times (or negative ones, which run times never are)
    if (!(hiB > 0)) return sig(1) ? Infinity : null;
    const sup = loA / hiB;
    if (!(sup > 0) || !Number.isFinite(sup)) return null;
    return pickBelow(sup, 0, sig);
  }

  // Breakpoints: clusters of (nearly) equal ratios a_i / b_j and the median cap.
  const medA = median(x);
  const medB = median(y);
  const raw: number[] = [];
  for (const ai of x) for (const bj of y) if (bj !== 0) raw.push(ai / bj);
  raw.push(medA / medB);
  const points = clusterPositive(raw);
  const K = points.length;
  // interval k is (points[k-1].hi, points[k].lo), with 0 and Infinity at the ends
  const left = (k: number): number => (k === 0 ? 0 : points[k - 1].hi);
  const right = (k: number): number => (k === K ? Infinity : points[k].lo);
  const rep = (k: number): number => {
    const l = left(k);
    const r = right(k);
    if (l === 0 && r === Infinity) return 1;
    if (l === 0) return r / 2;
    if (r === Infinity) return l * 2;
    return Math.sqrt(l) * Math.sqrt(r);
  };
  const nm = x.length * y.length;
  const uAt = (s: number): number => mannWhitneyU(x, y.map((v) => v * s)).u;
  const fasterSide = (k: number): boolean => {
    const s = rep(k);
    return uAt(s) > nm / 2 && sig(s);
  };
  const slowerSide = (k: number): boolean => {
    const s = rep(k);
    return uAt(s) < nm / 2 && sig(s);
  };

  let best = -1; // index of the highest significant interval
  if (y.some((v) => v < 0)) {
    for (let k = K; k >= 0; k--) {
      if (sig(rep(k))) {
        best = k;
        break;
      }
    }
  } else {
    // (0, s1): a prefix of the intervals; bisect for its last one.
    if (fasterSide(0)) {
      let lo = 0;
      let hi = K + 1; // fasterSide(lo) holds; hi is past the end or fails
      while (hi - lo > 1) {
        const mid = (lo + hi) >>> 1;
        if (fasterSide(mid)) lo = mid;
        else hi = mid;
      }
      best = lo;
    }
    // The other side: a suffix in s, so if it is anywhere below the median
    // cap it is in the interval just below the cap.
    if (medB > 0 && medA / medB > 0 && Number.isFinite(medA / medB)) {
      const cap = medA / medB;
      const kCap = points.findIndex((pt) => pt.lo <= cap && cap <= pt.hi);
      if (kCap > best && slowerSide(kCap)) best = kCap;
    }
  }
  if (best < 0) return null;
  if (best === K) return Infinity;
  return pickBelow(right(best), left(best), sig);
}

/** isSignificant(a, s*b) and median(s*b) < median(a): "b is faster by a factor s". */
function significantAtFactor(a: readonly number[], b: readonly number[], s: number, pThreshold: number): boolean {
  const scaled = b.map((v) => v * s);
  return median(scaled) < median(a) && isSignificant(a, scaled, pThreshold).significant;
}

/** Sorted clusters of the positive finite values, merging those within 1e-12 relative. */
function clusterPositive(values: readonly number[]): Array<{ lo: number; hi: number }> {
  const v = values.filter((r) => r > 0 && Number.isFinite(r)).sort((p, q) => p - q);
  const out: Array<{ lo: number; hi: number }> = [];
  for (const r of v) {
    const last = out[out.length - 1];
    if (last && r <= last.hi * (1 + 1e-12)) last.hi = r;
    else out.push({ lo: r, hi: r });
  }
  return out;
}

/**
 * A significant value in (lower, sup) as close to sup as is safe: sup(1 -
 * 1e-9) when that is inside the interval, else the interval's geometric
 * middle; stepped down if rounding in the rescaled samples disagrees.
 */
function pickBelow(sup: number, lower: number, sig: (s: number) => boolean): number {
  const mid = lower > 0 ? Math.sqrt(lower) * Math.sqrt(sup) : sup / 2;
  for (const rel of [1e-9, 1e-7, 1e-5]) {
    const s = Math.max(sup * (1 - rel), mid);
    if (s > lower && s < sup && sig(s)) return s;
  }
  return mid;
}

// ------------------------------------------------------------ comparison

/** Every statistic of the gate for one benchmark: base samples a, patched samples b. */
export function compare(
  a: readonly number[],
  b: readonly number[],
  opts: { pThreshold?: number; factor?: number } = {},
): Comparison {
  const pThreshold = opts.pThreshold ?? DEFAULT_P_THRESHOLD;
  const factor = opts.factor ?? DEFAULT_FACTOR;
  const x = cleanSamples(a);
  const y = cleanSamples(b);
  const medianA = median(x);
  const medianB = median(y);
  const sig = isSignificant(x, y, pThreshold);
  const mw = sig.method === 'mann-whitney' ? mannWhitneyU(x, y) : null;
  // Samples are collected in interleaved rounds: pair them by index (before
  // dropping NaNs, so a failed round does not shift the pairing).
  let paired: number | null = null;
  if (a.length === b.length && a.length > 0) {
    const v = pairedLogRatioSpeedup(a.map((ai, i): [number, number] => [ai, b[i]]));
    paired = Number.isNaN(v) ? null : v;
  }
  return {
    n_a: x.length,
    n_b: y.length,
    median_a: medianA,
    median_b: medianB,
    ci99_a: medianCI99(x),
    ci99_b: medianCI99(y),
    u: mw ? mw.u : null,
    p_value: mw ? mw.p : null,
    method: sig.method,
    significant: sig.significant,
    improved: x.length > 0 && y.length > 0 && sig.significant && medianB < medianA / factor,
    speedup: medianA / medianB,
    speedup_paired: paired,
    speedup_lower_bound: speedupLowerBound(x, y, pThreshold),
  };
}

/**
 * Over the benchmarks of one PR: null entries (failed benchmarks) are skipped;
 * max and geometric mean are over the finite positive speedups, the maximum
 * lower bound over the finite ones (null when there are none).
 */
export function summarize(
  results: ReadonlyArray<Pick<Comparison, 'speedup' | 'speedup_lower_bound' | 'significant'> | null>,
): SpeedupSummary {
  const present = results.filter((r): r is Pick<Comparison, 'speedup' | 'speedup_lower_bound' | 'significant'> => r != null);
  const speedups = present.map((r) => r.speedup).filter((s) => Number.isFinite(s) && s > 0);
  const bounds = present
    .map((r) => r.speedup_lower_bound)
    .filter((s): s is number => s != null && Number.isFinite(s));
  return {
    max_speedup: speedups.length ? Math.max(...speedups) : null,
    max_speedup_lower_bound: bounds.length ? Math.max(...bounds) : null,
    geomean_speedup: speedups.length
      ? Math.exp(speedups.reduce((acc, s) => acc + Math.log(s), 0) / speedups.length)
      : null,
    benchmarks: present.length,
    significant: present.filter((r) => r.significant).length,
  };
}

// ---------------------------------------------------------------------------
// The gate's verdict: robust to interference, and blind to changes too small to matter
// ---------------------------------------------------------------------------

/** The gate's margin: a change counts only if it is significant by at least this factor. */
export const DEFAULT_GATE_MARGIN = 1.05;

/**
 * The fastest half of a side's samples. Interference (other processes, a busy
 * host, CPU frequency) only ever adds time, and on small machines it comes in
 * bursts that can double a sample; the fast half is the benchmark's own cost.
 * Both sides are cut the same way, so under "no change" they stay alike.
 */
export function fastestHalf(xs: number[]): number[] {
  const clean = xs.filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
  return clean.slice(0, Math.ceil(clean.length / 2));
}

export interface GateVerdict {
  verdict: 'faster' | 'slower' | 'no change';
  margin: number;
  /** Largest s such that "head faster by >= s" is significant, on the fastest halves. */
  faster_lower_bound: number | null;
  /** Largest s such that "head slower by >= s" is significant, on the fastest halves. */
  slower_lower_bound: number | null;
  /** Median over rounds of base/head round medians (null without round structure). */
  paired_ratio: number | null;
}

/**
 * The median, over rounds, of the ratio of the two sides' medians in that
 * round. A round's two processes run back to back, so a slow spell of the
 * machine usually hits both; this ratio shrugs off the rounds where it did not.
 * With `by: 'min'`, each process counts with its fastest sample instead: the
 * benchmark's own cost when slow spells come and go within a process.
 */
export function pairedRoundRatio(a: number[], b: number[], samplesPerRound: number, by: 'median' | 'min' = 'median'): number | null {
  if (samplesPerRound < 1 || a.length !== b.length || a.length % samplesPerRound !== 0 || !a.length) return null;
  const of = (xs: number[]) => (xs.length === 0 ? NaN : by === 'min' ? Math.min(...xs) : median(xs));
  const ratios: number[] = [];
  for (let i = 0; i < a.length; i += samplesPerRound) {
    const ma = of(cleanSamples(a.slice(i, i + samplesPerRound)));
    const mb = of(cleanSamples(b.slice(i, i + samplesPerRound)));
    if (ma > 0 && mb > 0) ratios.push(ma / mb);
  }
  return ratios.length ? median(ratios) : null;
}

/**
 * The verdict the speedup gate uses: with asv's test at the same level, on
 * each side's fastest half, a change counts only when it is significant by at
 * least `margin` (1.05 by default, the gate of the funnel). A plain
 * significance test on quiet samples also "detects" the 1-2% that two
 * identical trees differ by (memory layout, paths); the margin keeps those out.
 * With `samplesPerRound` (samples in interleaved rounds), the median paired
 * round ratio must also show the change by the margin: a slow spell that hit
 * one side's processes more than the other's is not a change.
 */
export function gate(a: number[], b: number[], opts: { margin?: number; pThreshold?: number; samplesPerRound?: number } = {}): GateVerdict {
  const margin = opts.margin ?? DEFAULT_GATE_MARGIN;
  const fa = fastestHalf(a);
  const fb = fastestHalf(b);
  const faster = fa.length && fb.length ? speedupLowerBound(fa, fb, opts.pThreshold) : null;
  const slower = fa.length && fb.length ? speedupLowerBound(fb, fa, opts.pThreshold) : null;
  const paired = opts.samplesPerRound ? pairedRoundRatio(a, b, opts.samplesPerRound) : null;
  const pairedAgrees = (dir: 'faster' | 'slower') =>
    paired === null ? opts.samplesPerRound === undefined : dir === 'faster' ? paired >= margin : paired <= 1 / margin;
  const verdict = faster !== null && faster >= margin && pairedAgrees('faster') ? 'faster'
    : slower !== null && slower >= margin && pairedAgrees('slower') ? 'slower' : 'no change';
  return { verdict, margin, faster_lower_bound: faster, slower_lower_bound: slower, paired_ratio: paired };
}
