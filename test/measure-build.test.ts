import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { measure, formatReport, type MeasureReport } from '../src/measure/measure.js';
import { makeExtensionRepo } from './helpers/asv-repo.js';

// Needs a C compiler and the interpreter's headers (both are on the project's machines).
const include = execFileSync('python3', ['-c', 'import sysconfig; print(sysconfig.get_paths()["include"])'], { encoding: 'utf8' }).trim();
const canBuild = existsSync(`${include}/Python.h`);

describe.runIf(canBuild)('perfmine measure on a repository with a C extension', () => {
  let repo: ReturnType<typeof makeExtensionRepo>;
  let report: MeasureReport;
  beforeAll(async () => {
    repo = makeExtensionRepo();
    report = await measure({ repo: repo.dir, base: repo.slow, head: repo.fast, rounds: 2, sampleTime: 0.005, warmupTime: 0.01 });
  }, 120_000);
  afterAll(() => rmSync(repo.dir, { recursive: true, force: true }));

  it('builds each exported tree in place and measures the compiled change', () => {
    expect(report.builds).toEqual({ base: { command: 'setup.py build_ext --inplace', error: null }, head: { command: 'setup.py build_ext --inplace', error: null } });
    const [b] = report.benchmarks;
    expect(b.name).toBe('bench_work.time_work');
    expect(b.verdict).toBe('faster');
    expect(b.comparison!.speedup).toBeGreaterThan(10);
    expect(formatReport(report)).toMatch(/base: built in place \(setup\.py build_ext --inplace\)/);
  });

  it('with --build never the trees cannot import their package, and the report says why', async () => {
    const r = await measure({ repo: repo.dir, base: repo.slow, head: repo.fast, rounds: 1, build: 'never' });
    expect(r.builds).toEqual({ base: null, head: null });
    expect(r.benchmarks).toHaveLength(0);
    expect(r.errors.map((e) => e.error).join('\n')).toMatch(/cwork\._core|_core/);
  }, 60_000);
});
