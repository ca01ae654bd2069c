import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql, type Transaction } from 'kysely';
import { PermanentError, ServiceDownError, type HandlerContext, type StageDefinition, type StageResult, type SubjectRow } from '../bus/stage.js';
import { reportServiceOk } from '../bus/attempt-scope.js';
import type { Database } from '../db/schema.js';
import { EnvironmentGoneError, type EnvironmentRef, type ExecSession } from '../adapters/executors/executor.js';
import { abortError } from '../adapters/process/run-process.js';
import { RepoUnavailableError, type RepoRef } from '../adapters/git/repo-store.js';
import { buildLayout, findAsvConfig, isBenchmarkSuitePath } from '../domain/build-layout.js';
import { declaresExtensions } from '../domain/build-script.js';
import { splitPatch } from '../domain/oracle-patch.js';
import {
  compareTests, parsePytest, parseUnittest, selectTests, testCommand, testFilesOf,
  type TestRunner, type TestSelection, type TestsVerdict, type TreeTests,
} from '../domain/oracle-tests.js';
import { runOracle, type OracleOutcome } from '../measure/oracle.js';
import { baseLineRanges } from '../domain/changed-lines.js';
import { RUNNER_PATH } from '../measure/runner.js';
import { ENVIRONMENT_GONE_COST, rebuildsRequested, requestRebuild } from '../store/rebuild-environment.js';
import type { StageDeps } from './deps.js';
import { EXECUTOR_GROUP, executorAvailability } from './executor-availability.js';

export const BENCHMARK_STAGE = 'benchmark';

export type BenchmarkDecision = 'faster' | 'no change' | 'slower' | 'tests failed' | 'unmeasurable' | 'failed';

/** The machine a trial measured on: what makes its timings comparable. */
export interface MachineFacts {
  name: string;
  cpu_model: string | null;
  cores: number | null;
  kernel: string | null;
  python: string | null;
  executor: string;
  cpus: string;
  memory_mb: number | null;
  fingerprint: string;
}

const FACTS_SCRIPT = `import json, os, platform
cpu = None
try:
    with open('/proc/cpuinfo') as fh:
        for line in fh:
            if line.lower().startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
except OSError:
    pass
print(json.dumps({'cpu_model': cpu or platform.processor() or None, 'cores': os.cpu_count(), 'kernel': platform.release(),
                  'python': platform.python_version(), 'pytest': __import__('importlib.util').util.find_spec('pytest') is not None}))
`;

const TEST_FILES_MAX = 2000;
/** Round trips to stage 6 for an environment that was gone, before the PR fails. */
export const MAX_REBUILDS = 2;
const TEST_TEXT_MAX = 256 * 1024;

/**
 * Stage 7, benchmark (the oracle): in the PR's verified environment (the same
 * directory or image id stage 6 verified), one session per trial: the base
 * tree (the environment's checkout, built in place) copied twice, the PR's
 * patch without its benchmark-suite and asv-config hunks applied to the
 * head copy, compiled extensions rebuilt in both, the tests covering the
 * changed files run on both trees, then the measurement core (runOracle)
 * decides for the PR. One benchmark_runs row per trial and one
 * benchmark_results row per benchmark, written fenced; an attempt that is
 * stopped writes nothing (no half run is ever counted).
 */
export function benchmark(deps: StageDeps): StageDefinition {
  /**
   * The PR's verified environment is gone (an image or build directory was
   * removed): the PR goes back to stage 6 for a new one and this stage moves
   * on. After MAX_REBUILDS such round trips it fails instead, saying so:
   * something keeps removing environments.
   */
  const rebuild = async (pr: SubjectRow, ctx: HandlerContext, envRef: string | null, why: string): Promise<StageResult> => {
    const earlier = await rebuildsRequested(ctx.db, BENCHMARK_STAGE, pr.id);
    if (earlier >= MAX_REBUILDS) {
      throw new PermanentError(`the verified environment was gone again (${why}), after ${earlier} rebuilds: something removes environments before they are benchmarked`);
    }
    ctx.log.warn({ pr: pr.id, env: envRef }, `environment gone, sent back to synthesize_images: ${why}`);
    const reason = `rebuild ${earlier + 1} of ${MAX_REBUILDS} requested by benchmark: ${why}`;
    return { cost: { [ENVIRONMENT_GONE_COST]: why }, write: (trx) => requestRebuild(trx, pr.id, envRef, reason) };
  };

  const { config, executor } = deps;
  const cpus = config.PERFMINE_BENCHMARK_CPUS ?? String(Math.max(0, os.cpus().length - 1));
  const testTimeoutMs = config.PERFMINE_TEST_TIMEOUT_S * 1000;
  const runner = readFileSync(RUNNER_PATH);
  const ensureAvailable = executorAvailability(executor, 'run benchmarks');

  return {
    name: BENCHMARK_STAGE, ordinal: 7, subjectTable: 'pull_requests',
    description: 'the oracle: base and patched trees in the verified environment, tests on both, the PR-level decision',
    pending: 's.container_name IS NOT NULL AND s.benchmarked_at IS NULL',
    done: 's.benchmarked_at IS NOT NULL',
    since: 'coalesce(s.env_built_at, s.created_at)',
    wakeOn: ['pull_requests.container_name'],
    writes: ['benchmark_decision', 'benchmark_reason', 'max_speedup', 'max_speedup_lower_bound', 'benchmark_run_id', 'benchmarked_at', 'updated_at'],
    outputs: ['benchmarked_at'],
    concurrency: 1,
    leaseSeconds: 300,
    deadlineSeconds: config.PERFMINE_BENCHMARK_TIMEOUT_S,
    // Nothing else that holds the CPUs (a build, another benchmark) runs beside a measurement on this host.
    resources: [{ name: 'cpu', mode: 'exclusive' }],
    maxAttempts: 3, backoff: { baseMs: 60_000, maxMs: 3_600_000 },
    rateLimitGroups: [EXECUTOR_GROUP],

    async handle(pr: SubjectRow, ctx: HandlerContext): Promise<StageResult> {
      const { signal } = ctx;
      const startedAt = new Date();
      const began = performance.now();
      const wall = () => Math.round((performance.now() - began) / 100) / 10;
      await ensureAvailable(signal);
      if (pr.executor && pr.executor !== executor.kind) {
        throw new ServiceDownError(EXECUTOR_GROUP, `PR ${pr.id}'s environment was built by the ${pr.executor} executor; this daemon runs ${executor.kind} `
          + `(PERFMINE_EXECUTOR). Run a daemon with PERFMINE_EXECUTOR=${pr.executor}, or have stage 6 rebuild them with ${executor.kind}: `
          + `UPDATE pull_requests SET container_name = NULL, env_built_at = NULL WHERE executor = '${pr.executor}' AND benchmarked_at IS NULL`);
      }
      const envRow = (await sql<{ environment: EnvironmentRef | null }>`
        SELECT environment FROM candidate_containers
        WHERE pull_request_id = ${pr.id} AND succeeded AND env_ref = ${pr.container_name}
        ORDER BY id DESC LIMIT 1`.execute(ctx.db)).rows[0];
      const env = envRow?.environment ?? null;
      if (!env) return rebuild(pr, ctx, null, `no verified candidate_containers row names ${pr.container_name}`);

      // What to apply: the patch without the benchmark suite and the asv config (as stage 6 checked it applies).
      const repoRow = await ctx.db.selectFrom('repositories')
        .select(['id', 'owner', 'name', 'source', 'git_path', 'clone_url', 'asv_config_path'])
        .where('id', '=', pr.repository_id).executeTakeFirstOrThrow();
      const repo: RepoRef = {
        id: Number(repoRow.id), owner: repoRow.owner, name: repoRow.name, source: repoRow.source, gitPath: repoRow.git_path, cloneUrl: repoRow.clone_url,
      };
      const record = (r: TrialRecord) => finishTrial(ctx, pr, env, startedAt, wall(), r);
      if (!pr.base_sha) return record({ decision: 'failed', reason: 'the PR has no base commit' });
      const tree = await deps.repos.commit(repo, pr.base_sha, signal).catch((err: Error) => {
        if (err instanceof RepoUnavailableError) return err;
        throw err;
      });
      if (tree instanceof RepoUnavailableError || !tree) {
        return record({ decision: 'failed', reason: tree ? `the repository could not be read: ${tree.message}` : `the repository has no base commit ${pr.base_sha}` });
      }
      const read = (f: string) => tree.read(f, { maxBytes: TEST_TEXT_MAX, signal }).catch(() => null);
      const configPath = findAsvConfig(tree.files, repoRow.asv_config_path);
      const configText = configPath ? await read(configPath) : null;
      const layout = buildLayout(tree.files, repoRow.asv_config_path, () => configText);
      const split = splitPatch(pr.patch ?? '', (p) => isBenchmarkSuitePath(layout, p));
      if (!split.kept) return record({ decision: 'failed', reason: 'the patch changes only the benchmark suite or the asv config: nothing to apply' });
      const sub = (f: string) => (layout.repoSubdir ? path.posix.join(layout.repoSubdir, f) : f);
      const extensions = declaresExtensions({ setupPy: await read(sub('setup.py')), pyproject: await read(sub('pyproject.toml')) });

      let session: ExecSession;
      try {
        session = await executor.openSession(env, {
          cpus, memoryMb: config.PERFMINE_BENCHMARK_MEMORY_MB, timeoutMs: Math.max(1000, ctx.deadline.getTime() - Date.now()), signal,
        });
      } catch (err) {
        if (signal.aborted) throw err;
        if (err instanceof EnvironmentGoneError) return rebuild(pr, ctx, env.ref, err.message);
        throw new ServiceDownError(EXECUTOR_GROUP, `PR ${pr.id}'s environment ${env.ref} cannot be run: ${(err as Error).message.slice(0, 300)}`);
      }
      reportServiceOk(EXECUTOR_GROUP); // an environment runs: the executor's breaker, if open, closes
      try {
        const at = (rel: string) => `${session.scratch}/${rel}`;
        const must = async (what: string, argv: string[], o: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {}) => {
          const r = await session.run(argv, { timeoutMs: o.timeoutMs ?? 600_000, signal, cwd: o.cwd, env: o.env });
          if (r.aborted || signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error(`${what}: aborted`);
          return r;
        };
        const lastLines = (text: string, n = 6) => text.trim().split('\n').slice(-n).join('\n');

        // The machine (as the runs see it).
        const factsRun = await must('machine facts', [env.python, '-c', FACTS_SCRIPT], { timeoutMs: 60_000 });
        const facts = parseJson(factsRun.stdout) ?? {};
        const machine = machineFacts(facts, executor.kind, cpus, executor.kind === 'docker' ? config.PERFMINE_BENCHMARK_MEMORY_MB : null);

        // Trees: the verified checkout copied as base and head; the environment itself is never written.
        for (const side of ['base', 'head']) {
          const copied = await must(`copy ${side}`, ['cp', '-a', env.workdir, at(side)]);
          if (copied.code !== 0) throw new Error(`copying the environment's tree failed: ${lastLines(copied.stderr)}`);
        }
        const patchDir = await session.put({ 'oracle.patch': split.kept });
        const applied = await must('git apply', ['git', 'apply', '--whitespace=nowarn', `${patchDir}/oracle.patch`], { cwd: at('head') });
        if (applied.code !== 0) {
          return record({ decision: 'failed', reason: `the patch does not apply to the base tree: ${lastLines(applied.stderr) || `git apply exited ${applied.code}`}`, machine, split });
        }
        // Compiled extensions rebuilt after the patch (the reference skips this: its C speedups all measure about 1.0x).
        if (extensions) {
          for (const side of ['base', 'head'] as const) {
            const built = await must(`build ${side}`, [env.python, 'setup.py', 'build_ext', '--inplace', ...(side === 'head' ? ['--force'] : [])], {
              cwd: at(layout.repoSubdir ? `${side}/${layout.repoSubdir}` : side), timeoutMs: config.PERFMINE_BUILD_TIMEOUT_S * 1000,
            });
            if (built.code !== 0) {
              const why = built.timedOut ? `timed out after ${config.PERFMINE_BUILD_TIMEOUT_S} s` : buildError(`${built.stdout}\n${built.stderr}`);
              return record({
                decision: 'failed', machine, split,
                reason: side === 'head' ? `the patch does not build: ${why}` : `the base tree does not build again in the copy: ${why}`,
              });
            }
          }
        }

        // Tests covering the changed files, on both trees.
        const testFiles = testFilesOf(tree.files, layout.benchmarkDir).slice(0, TEST_FILES_MAX);
        const tests = await Promise.all(testFiles.map(async (f) => ({ path: f, text: await read(f) })));
        const selection = selectTests(split.keptFiles, tests);
        const testRunner: TestRunner = facts.pytest === true ? 'pytest' : 'unittest';
        let verdict: TestsVerdict = { ok: null, broken: [], reason: selection.reason };
        const perTree: Partial<Record<'base' | 'head', TreeTests>> = {};
        if (selection.method !== 'none') {
          for (const side of ['base', 'head'] as const) {
            const root = at(side);
            const r = await must(`tests ${side}`, testCommand(testRunner, env.python, selection.files), {
              cwd: root, timeoutMs: testTimeoutMs,
              env: { PYTHONPATH: layout.repoSubdir ? `${root}/${layout.repoSubdir}` : root, PERFMINE_TEST_TIMEOUT_S: String(config.PERFMINE_TEST_TIMEOUT_S), PYTHONDONTWRITEBYTECODE: '1' },
            });
            const output = `${r.stdout}\n${r.stderr}`;
            perTree[side] = {
              runner: testRunner, exitCode: r.code, timedOut: r.timedOut, seconds: r.durationMs / 1000,
              outcomes: testRunner === 'pytest' ? parsePytest(output) : parseUnittest(output),
            };
          }
          verdict = compareTests(perTree.base!, perTree.head!);
        }
        ctx.addCost({ tests_seconds: Math.round(((perTree.base?.seconds ?? 0) + (perTree.head?.seconds ?? 0)) * 10) / 10 });
        const testsSummary = summarizeTests(selection, testRunner, perTree, verdict);
        if (verdict.ok === false) {
          return record({ decision: 'tests failed', reason: verdict.reason, machine, split, testsOk: false, testsSummary });
        }

        // The measurement: the core decides for the PR.
        const runnerDir = await session.put({ 'perfmine_asv_runner.py': runner });
        const outcome = await runOracle({
          run: (argv, o) => session.run(argv, { timeoutMs: o.timeoutMs, signal: o.signal ?? signal, stdin: o.stdin, maxOutputBytes: 256 * 1024 * 1024 }),
          python: env.python, runnerPath: `${runnerDir}/perfmine_asv_runner.py`, base: at('base'), head: at('head'), build: 'never',
          config: layout.asvConfigPath ?? undefined, changedFiles: split.keptFiles, changedLines: baseLineRanges(split.kept),
          cpus, minSpeedup: config.PERFMINE_MIN_SPEEDUP,
          budgetSeconds: config.PERFMINE_BENCHMARK_BUDGET_S, signal,
        });
        if (signal.aborted) throw abortError(signal);
        ctx.addCost({ benchmarks: outcome.k, benchmark_seconds: outcome.wallSeconds });
        return record({ decision: outcome.decision, reason: outcome.reason, machine, split, testsOk: verdict.ok, testsSummary, outcome });
      } finally {
        await session.close();
      }
    },
  };
}

interface TrialRecord {
  decision: BenchmarkDecision;
  reason: string;
  machine?: MachineFacts;
  split?: { keptFiles: string[]; setAside: string[] };
  testsOk?: boolean | null;
  testsSummary?: Record<string, unknown>;
  outcome?: OracleOutcome;
}

/** Writes the trial (fenced) and returns the PR's spine outputs. */
async function finishTrial(ctx: HandlerContext, pr: SubjectRow, env: EnvironmentRef, startedAt: Date, wallSeconds: number, r: TrialRecord): Promise<StageResult> {
  const o = r.outcome;
  const measured = r.decision === 'faster' || r.decision === 'no change' || r.decision === 'slower';
  const maxSpeedup = r.decision === 'faster' ? o?.maxSpeedup ?? null : null;
  const maxLower = r.decision === 'faster' ? o?.maxSpeedupLowerBound ?? null : null;
  const finishedAt = new Date();
  const m = r.machine;
  const runId = await ctx.checkpoint(async (trx: Transaction<Database>) => {
    const id = (await sql<{ id: string }>`
      INSERT INTO benchmark_runs (pull_request_id, container_name, succeeded, reason, max_speedup, max_speedup_lower_bound, tests_ok,
        started_at, finished_at, machine, machine_fingerprint, cpu_model, cores, kernel, python, executor, environment_digest, cpus,
        k, selection_method, selection_reason, selected, tests_summary, decision, wall_seconds)
      VALUES (${pr.id}, ${pr.container_name}, ${measured}, ${r.reason}, ${maxSpeedup}, ${maxLower}, ${r.testsOk ?? null},
        ${startedAt}, ${finishedAt}, ${m ? JSON.stringify(m) : null}::jsonb, ${m?.fingerprint ?? null}, ${m?.cpu_model ?? null}, ${m?.cores ?? null},
        ${m?.kernel ?? null}, ${m?.python ?? null}, ${env.executor}, ${env.digest}, ${m?.cpus ?? null},
        ${o?.k ?? 0}, ${o?.selection.method ?? null}, ${o?.selection.reason ?? null}, ${o ? sql`${o.selection.selected}::text[]` : null},
        ${JSON.stringify({ ...(r.testsSummary ?? {}), patch: r.split ? { kept_files: r.split.keptFiles, set_aside: r.split.setAside } : null })}::jsonb,
        ${r.decision}, ${wallSeconds})
      RETURNING id`.execute(trx)).rows[0].id;
    for (const b of o?.benchmarks ?? []) {
      await sql`
        INSERT INTO benchmark_results (run_id, benchmark, params, samples_base, samples_head, p_value, p_adjusted, significant, speedup,
          speedup_lower_bound, error, verdict, unmeasurable, passed, samples_per_side, seconds)
        VALUES (${id}, ${b.name}, ${JSON.stringify(b.params)}::jsonb, ${sql`${b.base_samples}::double precision[]`}, ${sql`${b.head_samples}::double precision[]`},
          ${finite(b.p_value)}, ${finite(b.p_adjusted)}, ${b.verdict === 'faster' || b.verdict === 'slower'}, ${finite(b.speedup)},
          ${finite(b.lower_bound)}, ${b.error}, ${b.verdict}, ${b.unmeasurable}, ${b.passed}, ${b.samples_per_side}, ${finite(b.seconds)})`.execute(trx);
    }
    return Number(id);
  });
  const at = finishedAt.toISOString();
  ctx.addCost({ wall_seconds: wallSeconds });
  return {
    set: {
      benchmark_decision: r.decision, benchmark_reason: r.reason, max_speedup: maxSpeedup, max_speedup_lower_bound: maxLower,
      benchmark_run_id: runId, benchmarked_at: at, updated_at: at,
    },
  };
}

/** What a failed build says: the compiler's `error:` lines (not its command lines, whose flags say -Werror), else the end of the output. */
export function buildError(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /\berror:|^error\b|Error:/.test(l));
  return (errors.length ? errors.slice(0, 4) : lines.slice(-4)).join('\n').slice(0, 2000);
}

const finite = (x: number | null | undefined) => (typeof x === 'number' && Number.isFinite(x) ? x : null);

function parseJson(text: string): Record<string, any> | null {
  try {
    const v = JSON.parse(text.trim().split('\n').at(-1) ?? '');
    return v && typeof v === 'object' ? v as Record<string, any> : null;
  } catch {
    return null;
  }
}

export function machineFacts(f: Record<string, any>, executor: string, cpus: string, memoryMb: number | null): MachineFacts {
  const core = {
    cpu_model: typeof f.cpu_model === 'string' ? f.cpu_model : null,
    cores: typeof f.cores === 'number' ? f.cores : null,
    kernel: typeof f.kernel === 'string' ? f.kernel : null,
    python: typeof f.python === 'string' ? f.python : null,
    executor, cpus, memory_mb: memoryMb,
  };
  const fingerprint = createHash('sha256').update(JSON.stringify(core)).digest('hex').slice(0, 16);
  return { name: os.hostname(), ...core, fingerprint };
}

function summarizeTests(selection: TestSelection, runner: TestRunner, perTree: Partial<Record<'base' | 'head', TreeTests>>, verdict: TestsVerdict): Record<string, unknown> {
  const side = (t?: TreeTests) => t && {
    exit_code: t.exitCode, timed_out: t.timedOut, seconds: Math.round(t.seconds * 10) / 10, ran: t.outcomes.size,
    passed: [...t.outcomes.values()].filter((s) => s === 'passed').length,
    failed: [...t.outcomes].filter(([, s]) => s === 'failed' || s === 'error').map(([id]) => id).slice(0, 50),
  };
  return {
    selection: selection.method, selection_reason: selection.reason, files: selection.files.slice(0, 200), runner,
    base: side(perTree.base) ?? null, head: side(perTree.head) ?? null,
    ok: verdict.ok, broken: verdict.broken, reason: selection.method === 'none' ? 'no tests found' : verdict.reason,
  };
}
