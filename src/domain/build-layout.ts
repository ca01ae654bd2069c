/**
 * Where a repository's benchmark suite, asv config and tests are at a commit:
 * what a build must never touch (the cheat check), what the oracle sets aside
 * from the patch, and what counts as drift. Read from the file list and the
 * asv config text; nothing is run.
 */
import path from 'node:path';
import { benchmarkDir, confinedConfigPath, parseAsvConfig, repoSubdir } from './asv-config.js';

export interface BuildLayout {
  /** The asv config, relative to the repository root (null: none at this commit). */
  asvConfigPath: string | null;
  /** The benchmark suite's directory (null: no readable config). */
  benchmarkDir: string | null;
  /** Where the package lives ('' = the root). */
  repoSubdir: string;
  /** asv's own output directories (results, html): a build that writes there fakes results. */
  asvOutputDirs: string[];
  /** Why the config could not be used, when it could not. */
  problem: string | null;
}

/** asv.conf.json at `preferred` when the commit has it, else the shallowest one (ties by path), as the runner finds it. */
export function findAsvConfig(files: readonly string[], preferred: string | null): string | null {
  if (preferred && files.includes(preferred)) return preferred;
  const configs = files.filter((f) => f === 'asv.conf.json' || f.endsWith('/asv.conf.json'))
    .filter((f) => !f.split('/').some((seg) => seg.startsWith('.')));
  configs.sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
  return configs[0] ?? null;
}

export function buildLayout(files: readonly string[], preferredConfig: string | null, readConfig: (p: string) => string | null): BuildLayout {
  const asvConfigPath = findAsvConfig(files, preferredConfig);
  const none = { asvConfigPath, benchmarkDir: null, repoSubdir: '', asvOutputDirs: [] };
  if (!asvConfigPath) return { ...none, problem: 'no asv.conf.json at this commit' };
  const text = readConfig(asvConfigPath);
  if (text === null) return { ...none, problem: `${asvConfigPath} could not be read` };
  try {
    const config = parseAsvConfig(text);
    const base = path.posix.dirname(asvConfigPath);
    const outputs = (['results_dir', 'html_dir'] as const).map((key) => {
      const fallback = key.replace('_dir', '');
      const value = typeof config[key] === 'string' && config[key] ? (config[key] as string) : fallback;
      return confinedConfigPath(key, base, value);
    });
    return { asvConfigPath, benchmarkDir: benchmarkDir(asvConfigPath, config), repoSubdir: repoSubdir(config), asvOutputDirs: outputs, problem: null };
  } catch (err) {
    return { ...none, problem: `${asvConfigPath}: ${(err as Error).message}` };
  }
}

/** `p` is `dir` or below it (paths relative to the root, '/'-separated). */
export function isInside(p: string, dir: string): boolean {
  const clean = (s: string) => s.replace(/^\.\//, '').replace(/\/+$/, '');
  const [a, d] = [clean(p), clean(dir)];
  return d === '' || d === '.' || a === d || a.startsWith(`${d}/`);
}

/** Test files by pytest's and unittest's conventions: a tests/ or test/ directory, test_*.py, *_test.py, conftest.py. */
export function isTestPath(p: string): boolean {
  const segments = p.replace(/^\.\//, '').split('/');
  const base = segments.at(-1) ?? '';
  return segments.slice(0, -1).some((s) => s === 'tests' || s === 'test' || s === 'testing')
    || /^(test_.*|.*_test|conftest)\.py$/.test(base) || base === 'tests' || base === 'test';
}

/** The paths of the benchmark suite the oracle keeps as the base has them: the suite and the asv config. */
export function isBenchmarkSuitePath(layout: BuildLayout, p: string): boolean {
  return (layout.benchmarkDir !== null && isInside(p, layout.benchmarkDir)) || (layout.asvConfigPath !== null && p === layout.asvConfigPath);
}
