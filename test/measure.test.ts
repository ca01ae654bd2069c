import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { measure, formatReport, type MeasureReport } from '../src/measure/measure.js';
import { makeAsvRepo } from './helpers/asv-repo.js';

const run = promisify(execFile);
let repo: ReturnType<typeof makeAsvRepo>;
let report: MeasureReport;

beforeAll(async () => {
  repo = makeAsvRepo();
  report = await measure({ repo: repo.dir, base: repo.slow, head: repo.fast, sampleTime: 0.005, warmupTime: 0.01 });
}, 120_000);
afterAll(() => rmSync(repo.dir, { recursive: true, force: true }));

const bench = (name: string) => report.benchmarks.filter((b) => b.name.endsWith(name));

describe('perfmine measure on a real ASV suite', () => {
  it('finds the quadratic loop made linear significantly faster, by far more than 1.05', () => {
    const [b] = bench('time_dedupe');
    expect(b.verdict).toBe('faster');
    expect(b.comparison!.significant).toBe(true);
    expect(b.comparison!.speedup).toBeGreaterThan(5);
    expect(b.comparison!.speedup_lower_bound!).toBeGreaterThan(1.05);
    expect(b.gate!.faster_lower_bound!).toBeGreaterThan(1.05);
    expect(b.confirmation!.verdict).toBe('faster'); // a possible change is measured again
    expect(b.base_samples.length).toBe(80); // defaults: 4 rounds x 10 samples per side, and as many again
    expect(b.head_samples.length).toBe(80);
    expect(report.max_speedup!).toBeGreaterThan(5);
    expect(report.max_speedup_lower_bound!).toBeGreaterThan(1.05);
    expect(report.order).toBe('ABBA');
    expect(report.launch_method).toBe('forkserver');
  });

  it('expands params as a cartesian product', () => {
    const sized = bench('time_dedupe_sized');
    expect(sized.map((b) => b.params)).toEqual([['10', "'list'"], ['10', "'tuple'"], ['50', "'list'"], ['50', "'tuple'"]]);
    expect(sized.every((b) => b.verdict !== 'failed')).toBe(true);
    expect(sized[0].param_names).toEqual(['n', 'kind']);
  });

  it('records a benchmark that raises and one that times out, without stopping the run', () => {
    const [boom] = bench('time_boom');
    expect(boom.verdict).toBe('failed');
    expect(boom.error).toMatch(/ValueError: boom/);
    const [hang] = bench('time_hang');
    expect(hang.verdict).toBe('failed');
    expect(hang.error).toMatch(/timeout after 1(\.0)?s/);
    expect(formatReport(report)).toMatch(/time_dedupe .* faster/);
  });

  it('the same commit against itself (A/A) is not significant', async () => {
    const aa = await measure({ repo: repo.dir, base: repo.fast, head: repo.fast, bench: 'time_dedupe$', rounds: 6, sampleTime: 0.005, warmupTime: 0.01 });
    expect(aa.benchmarks).toHaveLength(1);
    expect(aa.benchmarks[0].verdict).toBe('no change');
    expect(aa.benchmarks[0].gate!.faster_lower_bound!).toBeLessThan(1.05);
    expect(aa.benchmarks[0].gate!.slower_lower_bound!).toBeLessThan(1.05);
    expect(aa.faster).toBe(0);
  }, 60_000);

  it('perfmine measure --json and perfmine stats compare from the command line', async () => {
    const { stdout } = await run('npx', ['tsx', 'src/cli.ts', 'measure', '--repo', repo.dir, '--base', repo.slow, '--head', repo.fast,
      '--bench', 'time_dedupe$', '--rounds', '2', '--launch-method', 'spawn', '--no-confirm', '--json'], { env: { ...process.env, PERFMINE_LOG_LEVEL: 'warn' } });
    const out = JSON.parse(stdout);
    expect(out.benchmarks[0].base_samples.length).toBe(20);
    expect(out.launch_method).toBe('spawn');
    expect(out.benchmarks[0].confirmation).toBeNull();
    expect(out.max_speedup).toBeGreaterThan(5);
    expect(Object.keys(out)).toEqual(expect.arrayContaining(['benchmarks', 'max_speedup', 'max_speedup_lower_bound', 'geomean_speedup']));

    const dir = mkdtempSync(path.join(os.tmpdir(), 'perfmine-stats-'));
    try {
      writeFileSync(path.join(dir, 'a.json'), JSON.stringify(out.benchmarks[0].base_samples));
      writeFileSync(path.join(dir, 'b.json'), JSON.stringify(out.benchmarks[0].head_samples));
      const cmp = JSON.parse((await run('npx', ['tsx', 'src/cli.ts', 'stats', 'compare', path.join(dir, 'a.json'), path.join(dir, 'b.json')])).stdout);
      for (const k of ['u', 'p_value', 'significant', 'speedup', 'speedup_lower_bound', 'ci99_a', 'ci99_b', 'n_a', 'n_b']) expect(cmp).toHaveProperty(k);
      expect(cmp.significant).toBe(true);
      expect(cmp.n_a).toBe(20);
      expect(cmp.gate.verdict).toBe('faster');
      const bad = await run('npx', ['tsx', 'src/cli.ts', 'stats', 'compare', path.join(dir, 'a.json'), '/nonexistent.json']).then(() => null, (e) => e);
      expect(bad.code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
