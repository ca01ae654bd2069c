import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostRun, oracleRunnerHostPath, runOracle, runnerCpu, type OracleInput } from '../src/measure/oracle.js';
import { writeOracleTree } from './helpers/oracle-trees.js';
import { baseLineRanges } from '../src/domain/changed-lines.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'perfmine-oracle-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Small and quick: 4 rounds x 4 samples per side (16 >= the 13 the U test needs), short samples.
const quick = (base: string, head: string, changedFiles: string[], extra: Partial<OracleInput> = {}): OracleInput => ({
  run: hostRun(), python: 'python3', runnerPath: oracleRunnerHostPath(), base, head, changedFiles,
  minSpeedup: 1.05, rounds: 4, samplesPerRound: 4, sampleTime: 0.002, warmupTime: 0.005, ...extra,
});

describe('runOracle on real trees', () => {
  it('traces the change to the 2 benchmarks that run it and calls a 2x speedup faster', async () => {
    const base = writeOracleTree(path.join(tmp, 'fast-base'), { hotWork: 20000, hotBenchmarks: 2, coldBenchmarks: 4 });
    const head = writeOracleTree(path.join(tmp, 'fast-head'), { hotWork: 10000, hotBenchmarks: 2, coldBenchmarks: 4 });
    const o = await runOracle(quick(base, head, ['pkg/hot.py', 'docs/notes.md']));
    expect(o.selection).toMatchObject({ method: 'traced', discovered: 6, reason: null });
    expect([...o.selection.selected].sort()).toEqual(['bench_pkg.time_hot_0', 'bench_pkg.time_hot_1']);
    expect(o.k).toBe(2);
    expect(o.benchmarks.map((b) => b.name).sort()).toEqual(['bench_pkg.time_hot_0', 'bench_pkg.time_hot_1']);
    expect(o.decision).toBe('faster');
    expect(o.reason).toMatch(/^[12] of 2 benchmarks faster after Holm at 0\.002; best bench_pkg\.time_hot_\d \d\.\d\dx \(>= \d\.\d\dx\); 2 of 6 benchmarks traced/);
    const passed = o.benchmarks.filter((b) => b.passed);
    expect(passed.length).toBeGreaterThan(0);
    for (const b of passed) {
      expect(b.hit_files).toEqual(['pkg/hot.py']);
      expect(b.p_adjusted!).toBeLessThan(0.002);
      expect(b.samples_per_side).toBeGreaterThanOrEqual(16);
      expect(b.seconds).toBeGreaterThan(0);
    }
    expect(o.maxSpeedupLowerBound!).toBeGreaterThanOrEqual(1.05);
    expect(o.maxSpeedup!).toBeGreaterThan(1.5);
    expect(o.maxSpeedup!).toBeLessThan(2.6);
    expect(o.wallSeconds).toBeGreaterThan(0);
  }, 60_000);

  it('an A/A pair (the change is a comment) is no change', async () => {
    const base = writeOracleTree(path.join(tmp, 'aa-base'), { hotWork: 20000, hotBenchmarks: 2, coldBenchmarks: 1 });
    const head = writeOracleTree(path.join(tmp, 'aa-head'), { hotWork: 20000, hotBenchmarks: 2, coldBenchmarks: 1, comment: 'reworded' });
    const o = await runOracle(quick(base, head, ['pkg/hot.py']));
    expect(o.selection.method).toBe('traced');
    expect(o.selection.selected).toHaveLength(2);
    expect(o.decision).toBe('no change');
    expect(o.maxSpeedup).toBeNull();
    expect(o.benchmarks.every((b) => !b.passed && b.samples_per_side >= 16)).toBe(true);
  }, 60_000);

  it('a benchmark too slow for its budget is unmeasurable, not "no change"', async () => {
    const sleepy = { 'pkg/sleepy.py': 'import time\n\ndef nap():\n    time.sleep(0.25)\n', 'benchmarks/bench_sleepy.py': 'from pkg import sleepy\n\ndef time_nap():\n    sleepy.nap()\n' };
    const base = writeOracleTree(path.join(tmp, 'slow-base'), { hotWork: 2000, hotBenchmarks: 1, coldBenchmarks: 1, extra: sleepy });
    const head = writeOracleTree(path.join(tmp, 'slow-head'), { hotWork: 2000, hotBenchmarks: 1, coldBenchmarks: 1, extra: sleepy });
    const o = await runOracle(quick(base, head, ['pkg/sleepy.py'], { budgetSeconds: 2 }));
    expect(o.selection.selected).toEqual(['bench_sleepy.time_nap']);
    expect(o.decision).toBe('unmeasurable');
    expect(o.benchmarks).toHaveLength(1);
    expect(o.benchmarks[0]).toMatchObject({ unmeasurable: true, verdict: 'unmeasurable', samples_per_side: 0, passed: false });
    expect(o.benchmarks[0].error).toMatch(/^unmeasurable: 13 samples per side at 0\.2\d+ s each need about \d+\.\d s, over the budget of 1 s/);
    expect(o.reason).toMatch(/^none of 1 benchmarks could be measured \(1 unmeasurable\)/);
  }, 60_000);

  it('measures all benchmarks, saying why, when tracing cannot tell', async () => {
    const base = writeOracleTree(path.join(tmp, 'all-base'), { hotWork: 2000, hotBenchmarks: 1, coldBenchmarks: 1 });
    const host = hostRun();
    const stdins: Array<string | undefined> = [];
    const run: OracleInput['run'] = (argv, opts) => {
      if (argv.includes('trace')) stdins.push(opts.stdin);
      return host(argv, opts);
    };
    const changedLines = baseLineRanges(['--- a/pkg/hot.py', '+++ b/pkg/hot.py', '@@ -3,1 +3,1 @@', '-    for i in range(2000):', '+    for i in range(1000):', ''].join('\n'));
    const o = await runOracle(quick(base, base, ['pkg/_native.h', 'pkg/hot.py'], { rounds: 2, samplesPerRound: 7, run, changedLines }));
    // the trace got each changed path with its base lines (null: the whole file)
    expect(stdins.map((x) => JSON.parse(x!))).toEqual([{ 'pkg/_native.h': null, 'pkg/hot.py': [[3, 3]] }]);
    expect(o.selection.method).toBe('all');
    expect(o.selection.reason).toBe('changes that tracing cannot see (pkg/_native.h)');
    expect(o.selection.selected.sort()).toEqual(['bench_pkg.time_cold_0', 'bench_pkg.time_hot_0']);
    expect(o.k).toBe(2);
    expect(o.decision).toBe('no change');
  }, 60_000);

  it('a runner that cannot start is a failed decision with its reason', async () => {
    const o = await runOracle(quick(tmp, tmp, ['x.py'], { python: path.join(tmp, 'no-such-python') }));
    expect(o.decision).toBe('failed');
    expect(o.reason).toMatch(/oracle failed: .*no-such-python/);
    expect(o.selection).toMatchObject({ method: 'all' });
    expect(o.selection.reason).toMatch(/^tracing failed/);
  });

  it('an abort rejects and leaves no runner behind', async () => {
    const naps = { 'benchmarks/bench_naps.py': 'import time\n\ndef time_nap():\n    time.sleep(0.05)\n' };
    const base = writeOracleTree(path.join(tmp, 'abort-base'), { hotWork: 2000, hotBenchmarks: 1, coldBenchmarks: 1, extra: naps });
    const ac = new AbortController();
    const started = performance.now();
    const pending = runOracle(quick(base, base, ['benchmarks/bench_naps.py', 'pkg/x.h'], { signal: ac.signal }));
    setTimeout(() => ac.abort(), 2500);
    await expect(pending).rejects.toThrow(/abort/i);
    expect(performance.now() - started).toBeLessThan(20_000);
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    expect(ps.split('\n').filter((l) => l.includes(base))).toEqual([]);
  }, 60_000);

  it('maps a cpuset to the one CPU the runner pins to', () => {
    expect(runnerCpu('3')).toBe('3');
    expect(runnerCpu('2-3')).toBe('3');
    expect(runnerCpu('0,5')).toBe('5');
    expect(runnerCpu(undefined)).toBeUndefined();
  });
});
