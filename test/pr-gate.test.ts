import { describe, expect, it } from 'vitest';
import { decidePr, fasterPValue, holmAdjust, minOneSidedP, minSamplesPerSide, planSamples, type PrBenchmarkInput } from '../src/domain/pr-gate.js';
import { mannWhitneyU } from '../src/domain/stats.js';

const bench = (id: string, p: number, o: Partial<PrBenchmarkInput> = {}): PrBenchmarkInput => ({
  id, pFaster: p, speedup: 1.3, lowerBound: 1.2, verdict: 'faster', unmeasurable: false, error: null, ...o,
});

describe('minimum samples the U test needs', () => {
  it('is the smallest n whose most extreme arrangement is below the level', () => {
    expect(minOneSidedP(7, 7)).toBeCloseTo(1 / 3432, 12);
    // fastest halves: 11 samples -> 6 per side; 1/924 < 0.002 and 1/252 (5 per side) is not
    expect(minSamplesPerSide(0.002)).toBe(11);
    // asv's two-sided p: 13 samples -> 7 per side; 2/3432 < 0.002 and 2/924 is not
    expect(minSamplesPerSide(0.002, { twoSided: true })).toBe(13);
    expect(minSamplesPerSide(0.002 / 20)).toBe(15); // 1/C(16,8) = 1/12870
    expect(minSamplesPerSide(0.05, { fastestHalf: false })).toBe(4); // 1/C(6,3) = 0.05 is not below 0.05; 1/C(8,4) is
  });
  it('really cannot reach the level with one sample fewer', () => {
    for (const alpha of [0.05, 0.01, 0.002, 1e-4, 1e-6]) {
      const n = minSamplesPerSide(alpha, { fastestHalf: false });
      const sep = (k: number) => mannWhitneyU(Array.from({ length: k }, (_, i) => 1000 + i), Array.from({ length: k }, (_, i) => i)).p / 2;
      expect(sep(n)).toBeLessThan(alpha);
      expect(sep(n - 1)).toBeGreaterThanOrEqual(alpha);
    }
  });
});

describe('the one-sided p of "faster by the margin"', () => {
  const base = Array.from({ length: 40 }, (_, i) => 1 + 0.001 * i);
  it('is tiny for a clear 1.3x speedup and large for no change or a slowdown', () => {
    expect(fasterPValue(base, base.map((x) => x / 1.3))!).toBeLessThan(1e-6);
    expect(fasterPValue(base, base)!).toBeGreaterThan(0.5);
    expect(fasterPValue(base, base.map((x) => x * 1.3))!).toBeGreaterThan(0.99);
    // 1.03x is real but below the 1.05 margin
    expect(fasterPValue(base, base.map((x) => x / 1.03))!).toBeGreaterThan(0.5);
    expect(fasterPValue([], base)).toBeNull();
  });
});

describe('Holm', () => {
  it('adjusts step-down and keeps monotonicity', () => {
    expect(holmAdjust([0.01, 0.04, 0.03])).toEqual([0.03, 0.06, 0.06]);
    expect(holmAdjust([0.5, 0.5])).toEqual([1, 1]);
  });
});

describe('the decision per PR', () => {
  it('20 benchmarks at p=0.02 each pass without correction at 0.05, not with Holm', () => {
    const benches = Array.from({ length: 20 }, (_, i) => bench(`b${i}`, 0.02));
    expect(benches.every((b) => (b.pFaster as number) < 0.05)).toBe(true);
    const d = decidePr(benches, { minSpeedup: 1.05, alpha: 0.05 });
    expect(d.decision).toBe('no change');
    expect(d.passed).toEqual([]);
    expect(d.maxSpeedup).toBeNull();
    expect(d.reason).toMatch(/none of 20 benchmarks faster after Holm at 0\.05/);
  });
  it('one benchmark at p=1e-6 among 20 passes, and the max is over passed benchmarks only', () => {
    const benches = Array.from({ length: 19 }, (_, i) => bench(`b${i}`, 0.3, { verdict: 'no change', speedup: 1.9, lowerBound: 0.9 }));
    benches.push(bench('bench.X', 1e-6, { speedup: 1.31, lowerBound: 1.22 }));
    const d = decidePr(benches, { minSpeedup: 1.05, alpha: 0.05 });
    expect(d.decision).toBe('faster');
    expect(d.passed).toEqual(['bench.X']);
    expect(d.maxSpeedup).toBe(1.31); // not the 1.9 raw ratio of a benchmark that did not pass
    expect(d.maxSpeedupLowerBound).toBe(1.22);
    expect(d.reason).toBe('1 of 20 benchmarks faster after Holm at 0.05; best bench.X 1.31x (>= 1.22x)');
  });
  it('needs the lower bound to reach minSpeedup', () => {
    const d = decidePr([bench('a', 1e-9, { lowerBound: 1.04 })], { minSpeedup: 1.05 });
    expect(d.decision).toBe('no change');
    expect(d.reason).toMatch(/lower bound 1\.04x below the minimum 1\.05x/);
  });
  it('needs the gate verdict too', () => {
    expect(decidePr([bench('a', 1e-9, { verdict: 'no change' })], { minSpeedup: 1.05 }).decision).toBe('no change');
  });
  it('is slower when a benchmark is slower and none faster', () => {
    const d = decidePr([bench('a', 0.99, { verdict: 'slower' }), bench('b', 0.5, { verdict: 'no change' })], { minSpeedup: 1.05 });
    expect(d.decision).toBe('slower');
  });
  it('is slower only when Holm rejects "slower" too, given its p-values', () => {
    // 20 benchmarks, one slower by the gate at p = 0.001: below 0.002 alone, not after Holm over 20.
    const noise = Array.from({ length: 19 }, (_, i) => bench(`n${i}`, 0.5, { verdict: 'no change', pSlower: 0.5 }));
    const weak = decidePr([bench('s', 0.999, { verdict: 'slower', pSlower: 0.001 }), ...noise], { minSpeedup: 1.05 });
    expect(weak.decision).toBe('no change');
    const strong = decidePr([bench('s', 0.999, { verdict: 'slower', pSlower: 1e-6 }), ...noise], { minSpeedup: 1.05 });
    expect(strong.decision).toBe('slower');
  });
  it('is unmeasurable when nothing could be measured, and unmeasurable ones are not in K', () => {
    const u = bench('u', 0, { pFaster: null, unmeasurable: true, verdict: 'failed', error: 'unmeasurable: too slow' });
    const e = bench('e', 0, { pFaster: null, verdict: 'failed', error: 'head: ImportError' });
    const d = decidePr([u, e], { minSpeedup: 1.05 });
    expect(d.decision).toBe('unmeasurable');
    expect(d.k).toBe(0);
    expect(decidePr([], { minSpeedup: 1.05 }).decision).toBe('unmeasurable');
    const mixed = decidePr([u, bench('x', 1e-4)], { minSpeedup: 1.05 });
    expect(mixed.k).toBe(1);
    expect(mixed.decision).toBe('faster');
    expect(mixed.reason).toMatch(/1 unmeasurable/);
  });
});

describe('the time budget', () => {
  const base = { overheadSeconds: 0.1, rounds: 4, samplesPerRound: 10, minSamples: 13 };
  it('keeps the default plan when it fits', () => {
    expect(planSamples({ ...base, sampleSeconds: 0.01, budgetSeconds: 60 })).toMatchObject({ measurable: true, rounds: 4, samplesPerRound: 10 });
  });
  it('takes fewer samples for a slow benchmark, never fewer than the minimum', () => {
    const p = planSamples({ ...base, sampleSeconds: 2, budgetSeconds: 60 });
    expect(p).toMatchObject({ measurable: true });
    if (!p.measurable) throw new Error('unreachable');
    expect(p.rounds * p.samplesPerRound).toBeGreaterThanOrEqual(13);
    expect(p.rounds * p.samplesPerRound).toBeLessThan(40);
    expect(p.estimatedSeconds).toBeLessThanOrEqual(60);
  });
  it('raises a default plan below the minimum to it', () => {
    expect(planSamples({ ...base, rounds: 2, samplesPerRound: 3, sampleSeconds: 0.01, budgetSeconds: 60 })).toMatchObject({ measurable: true, rounds: 2, samplesPerRound: 7 });
  });
  it('calls a benchmark that cannot reach the minimum within its budget unmeasurable', () => {
    const p = planSamples({ ...base, sampleSeconds: 5, budgetSeconds: 60 });
    expect(p.measurable).toBe(false);
    if (p.measurable) throw new Error('unreachable');
    expect(p.reason).toMatch(/^unmeasurable: 13 samples per side/);
  });
});
