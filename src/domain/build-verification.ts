/**
 * Verification verdicts: what the probe saw inside a built environment (on the
 * base commit), judged. An environment is verified only when every check
 * passes; what failed decides whether another build script could do better
 * (retryable) or whether the cascade ends (no suite, a patch that does not
 * apply, a secret).
 *
 * Checks, in the order a failure is reported:
 *   secrets     no token-shaped string in what the build wrote, no configured
 *               secret anywhere, none in the environment's variables;
 *   drift       HEAD is still the base commit, tracked files unchanged, nothing
 *               new in the benchmark suite or asv's result directories;
 *   patch       the PR's patch, benchmark suite and asv config set aside, applies
 *               cleanly (no fuzz) to the tree;
 *   benchmarks  the asv suite is discovered with at least one benchmark;
 *   imports     the package imports;
 *   tests       where the repository has a test suite, it collects (pytest when
 *               the environment has it, else unittest discovery).
 */
import { isInside, type BuildLayout } from './build-layout.js';

/** What perfmine_probe.py reports (JSON). */
export interface ProbeFacts {
  python: { version: string; executable: string; prefix: string } | null;
  git: { head: string | null; status: Array<{ code: string; path: string }>; error: string | null };
  /** null: no patch was given. */
  patch: { ok: boolean; output: string } | null;
  imports: { candidates: Array<{ name: string; ok: boolean; error: string | null }>; project_names: string[] };
  benchmarks: { count: number; names: string[]; errors: Array<{ module?: string; error: string }>; fatal: string | null };
  tests: {
    suite: boolean;
    runner: 'pytest' | 'unittest' | null;
    collected: number | null;
    exit_code: number | null;
    errors: string[];
    note: string | null;
  };
  secrets: {
    files: Array<{ path: string; kind: 'shape' | 'configured'; what: string }>;
    env: Array<{ name: string; kind: 'name' | 'shape' | 'configured'; what: string }>;
    scanned_files: number;
    scanned_bytes: number;
    skipped: number;
  };
  errors: string[];
  seconds: number;
}

export type CheckName = 'secrets' | 'drift' | 'patch' | 'benchmarks' | 'imports' | 'tests';
export const CHECK_ORDER: readonly CheckName[] = ['secrets', 'drift', 'patch', 'benchmarks', 'imports', 'tests'];

export interface CheckVerdict {
  ok: boolean;
  detail: string;
  /** When not ok: could another build script pass it? */
  retryable: boolean;
}

export interface Verification {
  ok: boolean;
  /** The first failed check, as one line (null when ok). */
  reason: string | null;
  retryable: boolean;
  checks: Record<CheckName, CheckVerdict>;
  /** Import names that had to import. */
  imported: string[];
}

export interface VerificationContext {
  baseSha: string;
  layout: BuildLayout;
  /** The patch the oracle applies was empty (every file was benchmark suite or asv config). */
  patchEmpty: boolean;
}

const pass = (detail: string): CheckVerdict => ({ ok: true, detail, retryable: true });
const fail = (detail: string, retryable: boolean): CheckVerdict => ({ ok: false, detail, retryable });

/** Modules the base environment owns (stage 4 leaves them out of the pins): a test module that needs them is excused. */
const BASE_TOOLING_MODULE = /No module named '(?:pytest|_pytest|pytest_[\w]+|hypothesis|asv|versioneer)(?:[.'])/;

const normal = (s: string) => s.trim().toLowerCase().replace(/[-.]+/g, '_');

/** The import names that must import: those named like the project, else every top-level package found. */
export function chooseImportNames(candidates: readonly string[], projectNames: readonly string[]): string[] {
  const wanted = new Set(projectNames.map(normal));
  const named = candidates.filter((c) => wanted.has(normal(c)));
  return named.length ? named : [...candidates];
}

export function judgeDrift(git: ProbeFacts['git'], ctx: VerificationContext): CheckVerdict {
  if (git.error) return fail(`git could not be read in the checkout: ${git.error}`, true);
  const head = git.head?.trim().toLowerCase() ?? '';
  const base = ctx.baseSha.toLowerCase();
  if (!head || !(head.startsWith(base) || base.startsWith(head))) {
    return fail(`HEAD is ${git.head ?? '(none)'}, not the base commit ${ctx.baseSha}`, true);
  }
  const tracked = git.status.filter((e) => e.code !== '??' && e.code !== '!!').map((e) => e.path);
  if (tracked.length) return fail(`tracked files changed: ${tracked.slice(0, 5).join(', ')}${tracked.length > 5 ? ` and ${tracked.length - 5} more` : ''}`, true);
  const protectedDirs = [...(ctx.layout.benchmarkDir && ctx.layout.benchmarkDir !== '.' ? [ctx.layout.benchmarkDir] : []), ...ctx.layout.asvOutputDirs];
  const planted = git.status.filter((e) => {
    if (/(^|\/)__pycache__(\/|$)|\.py[co]$/.test(e.path)) return false;
    return protectedDirs.some((d) => isInside(e.path, d)) || (ctx.layout.asvConfigPath !== null && e.path === ctx.layout.asvConfigPath);
  }).map((e) => e.path);
  if (planted.length) return fail(`files appeared in the benchmark suite or asv's results: ${planted.slice(0, 5).join(', ')}`, true);
  const products = git.status.length;
  return pass(`HEAD at the base commit, tracked files unchanged${products ? ` (${products} untracked or ignored build product${products === 1 ? '' : 's'})` : ''}`);
}

function judgePatch(patch: ProbeFacts['patch'], ctx: VerificationContext): CheckVerdict {
  if (ctx.patchEmpty) return fail('the patch changes only the benchmark suite or the asv config: nothing for the oracle to apply', false);
  if (patch === null) return fail('no patch to check', false);
  if (!patch.ok) return fail(`the patch does not apply cleanly to the base tree: ${lastLines(patch.output, 2)}`, false);
  return pass('applies cleanly (benchmark suite and asv config set aside)');
}

function judgeBenchmarks(b: ProbeFacts['benchmarks']): CheckVerdict {
  if (b.count > 0) return pass(`${b.count} benchmark${b.count === 1 ? '' : 's'} discovered`);
  // A suite that is not there (or points outside the tree) is no build's to fix.
  if (b.fatal && /no asv\.conf\.json|does not exist|outside the repository|through a symlink|not found in/.test(b.fatal)) {
    return fail(b.fatal, false);
  }
  const why = b.fatal ?? b.errors.map((e) => `${e.module ? `${e.module}: ` : ''}${e.error}`).slice(0, 2).join('; ');
  return fail(`no benchmark discovered${why ? `: ${oneLine(why)}` : ''}`, true);
}

function judgeImports(i: ProbeFacts['imports']): { verdict: CheckVerdict; names: string[] } {
  const names = chooseImportNames(i.candidates.map((c) => c.name), i.project_names);
  if (!names.length) return { verdict: fail('no package found at the package root to import', true), names };
  const failed = i.candidates.filter((c) => names.includes(c.name) && !c.ok);
  if (failed.length) return { verdict: fail(`import ${failed[0].name} failed: ${oneLine(failed[0].error ?? 'unknown error')}`, true), names };
  return { verdict: pass(`imports ${names.join(', ')}`), names };
}

function judgeTests(t: ProbeFacts['tests']): CheckVerdict {
  if (!t.suite) return pass('no test suite');
  if (!t.runner) return fail(`the tests could not be collected: ${t.note ?? 'no runner'}`, true);
  const real = t.errors.filter((e) => !BASE_TOOLING_MODULE.test(e));
  const excused = t.errors.length - real.length;
  const note = [t.note, excused ? `${excused} test module${excused === 1 ? '' : 's'} need base tooling the environment does not have` : null].filter(Boolean).join('; ');
  if (real.length) return fail(`the tests do not collect (${t.runner}): ${oneLine(real[0])}`, true);
  if (t.runner === 'pytest' && t.exit_code !== null && t.exit_code !== 0 && t.exit_code !== 5 && !excused) {
    return fail(`pytest --collect-only exited ${t.exit_code}`, true);
  }
  return pass(`${t.collected ?? 0} test${t.collected === 1 ? '' : 's'} collected with ${t.runner}${note ? ` (${note})` : ''}`);
}

function judgeSecrets(s: ProbeFacts['secrets']): CheckVerdict {
  const found = [
    ...s.env.map((e) => `environment variable ${e.name} (${e.what})`),
    ...s.files.map((f) => `${f.what} in ${f.path}`),
  ];
  if (found.length) return fail(`secret found: ${found.slice(0, 3).join('; ')}${found.length > 3 ? ` and ${found.length - 3} more` : ''}`, false);
  return pass(`none in ${s.scanned_files} files (${Math.round(s.scanned_bytes / 1024)} KiB) and the environment${s.skipped ? `; ${s.skipped} large files skipped` : ''}`);
}

export function judgeVerification(facts: ProbeFacts, ctx: VerificationContext): Verification {
  const imports = judgeImports(facts.imports);
  const checks: Record<CheckName, CheckVerdict> = {
    secrets: judgeSecrets(facts.secrets),
    drift: judgeDrift(facts.git, ctx),
    patch: judgePatch(facts.patch, ctx),
    benchmarks: judgeBenchmarks(facts.benchmarks),
    imports: imports.verdict,
    tests: judgeTests(facts.tests),
  };
  const failed = CHECK_ORDER.find((c) => !checks[c].ok);
  if (!failed) return { ok: true, reason: null, retryable: true, checks, imported: imports.names };
  // Another script cannot help when any failed check is one no build can change.
  const retryable = CHECK_ORDER.every((c) => checks[c].ok || checks[c].retryable);
  return { ok: false, reason: `${failed}: ${checks[failed].detail}`, retryable, checks, imported: imports.names };
}

/** A verification that could not run at all (the probe crashed or timed out): another script may do better. */
export function unverifiable(why: string): Verification {
  const none = fail(why, true);
  const checks = Object.fromEntries(CHECK_ORDER.map((c) => [c, none])) as Record<CheckName, CheckVerdict>;
  return { ok: false, reason: `verification could not run: ${why}`, retryable: true, checks, imported: [] };
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 300);
}

function lastLines(s: string, n: number): string {
  return oneLine(s.trim().split('\n').filter((l) => l.trim()).slice(-n).join(' | ') || '(no output)');
}
