import { describe, expect, it } from 'vitest';
import { exactBenchmarkRegex, judge, screen } from '../src/measure/measure.js';
import type { RunnerBenchmark, RunnerOutput } from '../src/measure/runner.js';
import { gate } from '../src/domain/stats.js';

// Pure: the confirmation rule over runner outputs written by hand.
const ROUNDS = 4;
const PER_ROUND = 10;

/** Samples of `rounds` rounds around `center`, with a little deterministic spread. */
function samples(center: number, seed: number): number[] {
  return Array.from({ length: ROUNDS * PER_ROUND }, (_, i) => center * (1 + (((i * 7919 + seed * 104729) % 97) / 97 - 0.5) * 0.02));
}

function bench(name: string, base: number, head: number, seed: number, params: string[] = []): RunnerBenchmark {
  return { name, params, param_names: params.length ? ['n'] : [], number: 10,
    base: { samples: samples(base, seed), error: null }, head: { samples: samples(head, seed + 1), error: null } };
}

function output(benchmarks: RunnerBenchmark[]): RunnerOutput {
  return { mode: 'runner', python: '3.11', config: 'asv.conf.json', benchmark_dir: 'benchmarks', rounds: ROUNDS,
    samples_per_round: PER_ROUND, order: 'ABBA', launch_method: 'forkserver', benchmarks, errors: [] };
}

describe('the second stage', () => {
  const first = output([bench('b.time_fast', 2e-3, 1e-3, 1), bench('b.time_same', 1e-3, 1e-3, 3), bench('b.time_fluke', 1.3e-3, 1e-3, 5, ['10'])]);

  it('screens more loosely than the gate decides', () => {
    expect(screen(samples(1.3e-3, 1), samples(1e-3, 2), PER_ROUND)).toBe('faster');
    expect(screen(samples(1e-3, 1), samples(1.3e-3, 2), PER_ROUND)).toBe('slower');
    expect(screen(samples(1e-3, 1), samples(1e-3, 2), PER_ROUND)).toBe('no change');
    // significant, but a 2% paired ratio is below the screen's 3%
    expect(screen(samples(1.02e-3, 1), samples(1e-3, 2), PER_ROUND)).toBe('no change');
  });

  it('still screens in a change when slow spells inside processes hide it from the samples', () => {
    // every process: two samples at its own cost, eight during a slow spell of the machine
    const spells = (cost: number) => Array.from({ length: ROUNDS }, () => [cost, cost, ...Array(8).fill(2.2e-3)]).flat();
    const [base, head] = [spells(1.3e-3), spells(1e-3)];
    expect(gate(base, head, { samplesPerRound: PER_ROUND, margin: 1.0, pThreshold: 0.01 }).verdict).toBe('no change');
    expect(screen(base, head, PER_ROUND)).toBe('faster');
    expect(screen(head, base, PER_ROUND)).toBe('slower');
    expect(screen(base, base.map((x) => x * 1.02), PER_ROUND)).toBe('no change'); // 2%: below both thresholds
  });

  it('without a second stage the first rounds decide', () => {
    const r = judge(first);
    expect(r.benchmarks.map((b) => b.verdict)).toEqual(['faster', 'no change', 'faster']);
    expect(r.confirmation_rounds).toBeNull();
    expect(r.benchmarks.every((b) => b.confirmation === null)).toBe(true);
  });

  it('decides screened benchmarks on all rounds: a real change stays, a fluke goes', () => {
    const again = output([bench('b.time_fast', 2e-3, 1e-3, 11), bench('b.time_fluke', 1e-3, 1e-3, 15, ['10'])]);
    const r = judge(first, {}, again);
    const [fast, same, fluke] = r.benchmarks;
    expect(fast.verdict).toBe('faster');
    expect(fast.confirmation!.verdict).toBe('faster');
    expect(fast.confirmation!.fresh_paired_ratio!).toBeGreaterThan(1.9);
    expect(fast.base_samples).toHaveLength(2 * ROUNDS * PER_ROUND); // both runs reported
    expect(fast.faster_lower_bound).toBe(fast.confirmation!.gate.faster_lower_bound);
    expect(same.verdict).toBe('no change');
    expect(same.confirmation).toBeNull();
    expect(same.base_samples).toHaveLength(ROUNDS * PER_ROUND);
    expect(fluke.gate!.verdict).toBe('faster'); // the first rounds alone would have said so
    expect(fluke.verdict).toBe('no change');
    expect(fluke.faster_lower_bound!).toBeLessThan(1.05); // and it no longer counts
    expect(r.confirmed_benchmarks).toBe(1);
    expect(r.faster).toBe(1);
    expect(r.max_speedup_lower_bound!).toBe(fast.faster_lower_bound);
  });

  it('a benchmark that fails in the second stage is failed, with the reason', () => {
    const again = output([{ ...bench('b.time_fast', 2e-3, 1e-3, 11), head: { samples: [], error: 'timeout after 60s' } }]);
    const r = judge(first, {}, again);
    expect(r.benchmarks[0].verdict).toBe('failed');
    expect(r.benchmarks[0].error).toBe('second stage: timeout after 60s');
    expect(r.benchmarks[2].verdict).toBe('failed');
    expect(r.benchmarks[2].error).toBe('second stage: not measured');
  });
});

describe('exactBenchmarkRegex', () => {
  it('selects exactly the given benchmarks, parameter combinations included', () => {
    const re = new RegExp(exactBenchmarkRegex([{ name: 'b.T.time_x', params: ['10', "'list'"] }, { name: 'b.time_y', params: [] }]));
    expect(re.test("b.T.time_x(10, 'list')")).toBe(true);
    expect(re.test("b.T.time_x(10, 'tuple')")).toBe(false);
    expect(re.test('b.time_y')).toBe(true);
    expect(re.test('b.time_y2')).toBe(false);
    expect(re.test('bxtime_y')).toBe(false); // the dot is literal
  });
});
