/**
 * The oracle's tests (stage 7): which tests cover a patch, how they are run
 * (pytest when the environment has it, else unittest), what their output
 * says per test, and the verdict "a test that passed on the base fails on
 * the head". Pure: the stage runs the commands and hands the output here.
 */
import path from 'node:path';
import { isInside, isTestPath } from './build-layout.js';

export type TestStatus = 'passed' | 'failed' | 'error' | 'skipped';
export type TestRunner = 'pytest' | 'unittest';

export interface TestSelection {
  /** covering: tests whose name or imports match the changed modules; all: the whole suite; none: no test files. */
  method: 'covering' | 'all' | 'none';
  files: string[];
  reason: string;
}

/** Test modules of the tree (Python files by pytest's and unittest's conventions), outside the benchmark suite. */
export function testFilesOf(files: readonly string[], benchmarkDir: string | null): string[] {
  return files.filter((f) => f.endsWith('.py') && isTestPath(f) && /^(test_.*|.*_test)\.py$/.test(path.posix.basename(f))
    && !(benchmarkDir && isInside(f, benchmarkDir))
    && !f.split('/').some((s) => s.startsWith('.') || s === 'site-packages' || s === 'node_modules' || s === 'build'))
    .sort();
}

/** The module names a changed file may be imported or named by: `pkg/sub/mod.py` → pkg.sub.mod, mod; `_native.c` → _native, native. */
export function changedModules(file: string): { dotted: string | null; stems: string[] } {
  const base = path.posix.basename(file);
  const ext = path.posix.extname(base);
  const stem = base.slice(0, base.length - ext.length);
  if (!stem || stem === '__init__' || stem === 'setup' || stem === 'conftest') {
    const pkg = path.posix.dirname(file);
    const name = path.posix.basename(pkg);
    return { dotted: pkg && pkg !== '.' ? pkg.split('/').join('.') : null, stems: name && name !== '.' ? [name] : [] };
  }
  const dotted = ext === '.py' || ext === '.pyx' || ext === '.c' || ext === '.cpp' ? file.slice(0, file.length - ext.length).split('/').join('.') : null;
  const stems = [stem];
  if (stem.startsWith('_') && stem.replace(/^_+/, '')) stems.push(stem.replace(/^_+/, ''));
  return { dotted, stems };
}

/**
 * The tests covering `changed`: test files named after a changed module
 * (test_mod.py, mod_test.py) or importing it (`import pkg.mod`, `from pkg
 * import mod`, `from pkg.mod import ...`). None found: the whole suite.
 */
export function selectTests(changed: readonly string[], tests: ReadonlyArray<{ path: string; text: string | null }>): TestSelection {
  if (tests.length === 0) return { method: 'none', files: [], reason: 'no tests found' };
  const code = changed.filter((f) => !isTestPath(f) && /\.(py|pyx|pxd|c|cc|cpp|h|hpp)$/.test(f));
  const picked = new Set<string>();
  for (const f of code) {
    const { dotted, stems } = changedModules(f);
    for (const t of tests) {
      const name = path.posix.basename(t.path, '.py');
      if (stems.some((s) => name === `test_${s}` || name === `${s}_test` || name === `test${s}`)) picked.add(t.path);
      else if (t.text && importsModule(t.text, dotted, stems)) picked.add(t.path);
    }
  }
  // Test files the patch itself changes run too (they are the PR's own tests of its change).
  for (const f of changed) if (tests.some((t) => t.path === f)) picked.add(f);
  if (picked.size === 0) {
    return { method: 'all', files: tests.map((t) => t.path), reason: code.length ? 'no test names or imports the changed modules: the whole suite' : 'the patch changes no module: the whole suite' };
  }
  return { method: 'covering', files: [...picked].sort(), reason: `tests naming or importing ${code.map((f) => path.posix.basename(f)).join(', ') || 'the changed files'}` };
}

function importsModule(text: string, dotted: string | null, stems: string[]): boolean {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (dotted) {
    const d = esc(dotted);
    if (new RegExp(`^\\s*(?:import|from)\\s+${d}\\b`, 'm').test(text)) return true;
    const parent = dotted.includes('.') ? esc(dotted.slice(0, dotted.lastIndexOf('.'))) : null;
    const leaf = esc(dotted.slice(dotted.lastIndexOf('.') + 1));
    if (parent && new RegExp(`^\\s*from\\s+${parent}\\s+import\\s+(?:\\([^)]*\\b${leaf}\\b|[^\\n]*\\b${leaf}\\b)`, 'm').test(text)) return true;
  }
  void stems;
  return false;
}

/** The command that runs `files` with `runner` (paths relative to the tree, which is the working directory). */
export function testCommand(runner: TestRunner, python: string, files: readonly string[]): string[] {
  if (runner === 'pytest') return [python, '-m', 'pytest', '-q', '-rA', '-p', 'no:cacheprovider', '--color=no', '-o', 'addopts=', ...files];
  return [python, '-m', 'unittest', '-v', ...files.map((f) => f.replace(/\.py$/, '').split('/').join('.'))];
}

/** Per-test outcomes from pytest's `-rA` summary (PASSED/FAILED/ERROR/SKIPPED/XFAIL/XPASS lines). */
export function parsePytest(output: string): Map<string, TestStatus> {
  const out = new Map<string, TestStatus>();
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const m = /^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\s+(?:\[\d+\]\s+)?(\S+?)(?::\d+)?(?:\s+-\s.*|:\s.*)?$/.exec(line);
    if (!m) continue;
    const status: TestStatus = m[1] === 'PASSED' || m[1] === 'XPASS' ? 'passed' : m[1] === 'FAILED' ? 'failed' : m[1] === 'ERROR' ? 'error' : 'skipped';
    const prev = out.get(m[2]);
    // A test that passed and then errored in teardown is not a pass.
    if (!prev || prev === 'passed' || prev === 'skipped') out.set(m[2], status);
  }
  return out;
}

/** Per-test outcomes from `unittest -v` (`name (module.Class.name) ... ok`; a docstring may sit on the next line). */
export function parseUnittest(output: string): Map<string, TestStatus> {
  const out = new Map<string, TestStatus>();
  let pending: string | null = null;
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const head = /^(\w+) \(([\w.]+)\)/.exec(line);
    if (head) pending = head[2].endsWith(`.${head[1]}`) ? head[2] : `${head[2]}.${head[1]}`;
    const tail = / \.\.\. (ok|FAIL|ERROR|skipped\b.*|expected failure|unexpected success)$/.exec(line);
    if (tail && pending) {
      const s = tail[1];
      out.set(pending, s === 'ok' || s === 'unexpected success' ? 'passed' : s === 'FAIL' ? 'failed' : s === 'ERROR' ? 'error' : 'skipped');
      pending = null;
    }
  }
  // Modules that fail to import are reported only as "ERROR: name (unittest.loader._FailedTest.name)".
  for (const m of output.matchAll(/^ERROR: (\w+) \(unittest\.loader\._FailedTest(?:\.\w+)?\)$/gm)) out.set(`import:${m[1]}`, 'error');
  return out;
}

export interface TreeTests {
  runner: TestRunner;
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
  outcomes: Map<string, TestStatus>;
}

export interface TestsVerdict {
  /** false: the head broke a test; true: nothing broke; null: could not tell (no tests, base timed out or ran none). */
  ok: boolean | null;
  /** Tests that passed on the base and fail (or error) on the head. */
  broken: string[];
  reason: string;
}

/** A test that passed on the base and fails on the head breaks the run; tests already failing on the base do not count. */
export function compareTests(base: TreeTests, head: TreeTests): TestsVerdict {
  const count = (t: TreeTests, s: TestStatus) => [...t.outcomes.values()].filter((v) => v === s).length;
  const passedOnBase = [...base.outcomes].filter(([, s]) => s === 'passed').map(([id]) => id);
  if (base.timedOut) return { ok: null, broken: [], reason: `the tests timed out on the base after ${Math.round(base.seconds)} s: not compared` };
  if (passedOnBase.length === 0) return { ok: null, broken: [], reason: `no test passed on the base (${base.outcomes.size} ran, exit ${base.exitCode}): not compared` };
  const broken = passedOnBase.filter((id) => {
    const h = head.outcomes.get(id);
    return h === 'failed' || h === 'error';
  });
  // A test module that no longer imports on the head: its tests are missing there and an error names the module.
  const headErrors = [...head.outcomes].filter(([, s]) => s === 'error').map(([id]) => id);
  for (const id of passedOnBase) {
    if (head.outcomes.has(id) || broken.includes(id)) continue;
    const file = id.split('::')[0];
    const mod = id.split('.').slice(0, -2).at(-1);
    if (headErrors.some((e) => e === file || (mod && e === `import:${mod}`))) broken.push(id);
  }
  if (broken.length) return { ok: false, broken, reason: `${broken.length} test(s) pass on the base and fail on the head: ${broken.slice(0, 10).join(', ')}${broken.length > 10 ? ', ...' : ''}` };
  if (head.timedOut) return { ok: false, broken: [], reason: `the tests timed out on the head after ${Math.round(head.seconds)} s (the base finished in ${Math.round(base.seconds)} s)` };
  if (head.outcomes.size === 0 && head.exitCode !== 0) return { ok: false, broken: [], reason: `the test run on the head ended with exit ${head.exitCode} and no result (the base passed ${passedOnBase.length})` };
  return { ok: true, broken: [], reason: `${passedOnBase.length} test(s) pass on the base; none fails on the head (${count(head, 'passed')} passed there)` };
}
