/**
 * Stage 6 in a daemon, on repositories the tests generate (test/helpers/build-repos.ts),
 * their pins served by the index stand-in and their LLM scripts written by the LLM
 * stand-in. Runs with the executor PERFMINE_EXECUTOR names (default local):
 *
 *   PERFMINE_EXECUTOR=docker npx vitest run test/synthesize-images.test.ts
 *
 * Every test reads what a user would: the PR's spine columns, its
 * candidate_containers rows, and what runs inside the environment it got.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import type { EnvironmentRef } from '../src/adapters/executors/executor.js';
import { buildStageDeps, type StageDeps } from '../src/stages/index.js';
import { synthesizeImages } from '../src/stages/synthesize-images.js';
import type { IndexStandin } from '../src/standins/index/server.js';
import { LlmStandin } from '../src/standins/llm/server.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { insertResolvedPrs } from './helpers/resolved-prs.js';
import { writeRepo, type RepoSpec, type WrittenRepo } from './helpers/build-repos.js';
import { executorSettings, TEST_EXECUTOR, unavailableReason } from './helpers/executors.js';
import { startIndex } from './helpers/python-index.js';

const CONFIGURED_SECRET = 'sk-configured-test-secret-Qx81Zp';
let t: TestDb;
let index: IndexStandin;
let llm: LlmStandin;
let daemon: Daemon | undefined;
let skipReason: string | null = null;
let pins: string[];
const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-synth-'));
const dataDir = path.join(root, 'data');

function settings(env: Record<string, string> = {}) {
  return loadConfig({
    PERFMINE_SCHEDULE: 'false', PERFMINE_DATA_DIR: dataDir, PERFMINE_PYTHON_INDEX_URL: index.simpleUrl,
    OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: CONFIGURED_SECRET, PERFMINE_LLM_MODEL: 'standin-small',
    PERFMINE_BUILD_TIMEOUT_S: '120', PERFMINE_VERIFY_TIMEOUT_S: '120', PERFMINE_BUILD_LLM_ATTEMPTS: '2',
    ...executorSettings(), ...env,
  });
}

let deps: StageDeps;

beforeAll(async () => {
  t = await createTestDb();
  const started = await startIndex([{ name: 'perfmine-testdep', version: '1.0', uploadTime: '2020-01-01T00:00:00Z' }]);
  index = started.index;
  const wheel = readdirSync(started.dir).find((f) => f.endsWith('.whl'))!;
  pins = [`perfmine-testdep==1.0 --hash=sha256:${createHash('sha256').update(readFileSync(path.join(started.dir, wheel))).digest('hex')}`];
  llm = await LlmStandin.start();
  deps = buildStageDeps(settings(), silentLogger);
  skipReason = await unavailableReason(deps.executor);
  if (skipReason) return;
  // The shared environment of these pins is made once, before the timed tests.
  const warm = await writeRepo(path.join(root, 'warm'), { name: 'warmlib', kind: 'pure', prs: [{ number: 1, mergedAt: '2024-01-10T00:00:00Z' }] });
  const built = await deps.executor.build({
    key: 'warm-up', repo: { id: 0, owner: 'test', name: 'warmlib', source: 'github', gitPath: null, cloneUrl: warm.bare },
    commit: warm.prs[0].baseSha, python: '3.11', requirements: pins, indexUrl: index.simpleUrl, script: 'true\n', timeoutMs: 300_000,
  }, new AbortController().signal);
  expect(built.ok, `${built.reason}\n${built.logTail}`).toBe(true);
  await deps.executor.discard(built.env!);
}, 600_000);

afterEach(async () => {
  await daemon?.stop(5000);
  daemon = undefined;
});

afterAll(async () => {
  await index?.close();
  await llm?.close();
  await t?.destroy();
  rmSync(root, { recursive: true, force: true });
});

async function runStage(env: Record<string, string> = {}): Promise<void> {
  const stage = { ...synthesizeImages(buildStageDeps(settings(env), silentLogger)), backoff: { baseMs: 100, maxMs: 400 } };
  daemon = new Daemon({ db: t.db, connectionString: t.url, stages: [stage], pollIntervalMs: 200, breaker: { baseSeconds: 1, maxSeconds: 2 } });
  await daemon.start();
  await daemon.whenIdle();
  await daemon.stop(5000);
  daemon = undefined;
}

interface Inserted { repo: WrittenRepo; repoId: number; prIds: number[] }

/** The repository's row, one package per base commit (Python 3.11, the pins) and its PRs, ready for stage 6. */
async function insertRepo(spec: RepoSpec, o: { python?: string } = {}): Promise<Inserted> {
  const repo = await writeRepo(path.join(root, spec.name), spec);
  const { repoId, prIds } = await insertResolvedPrs(t.db, { owner: 'test', name: spec.name, cloneUrl: repo.bare }, repo.prs,
    { pins, python: o.python, problem: 'Make value() faster.' });
  return { repo, repoId, prIds: repo.prs.map((pr) => prIds.get(pr.number)!) };
}

async function spine(prId: number) {
  return (await sql<any>`SELECT container_name, environment_digest, executor, build_reason, env_built_at, build_priority
    FROM pull_requests WHERE id = ${prId}`.execute(t.db)).rows[0];
}

async function attempts(prId: number) {
  return (await sql<any>`SELECT * FROM candidate_containers WHERE pull_request_id = ${prId} ORDER BY id`.execute(t.db)).rows;
}

async function environmentOf(prId: number): Promise<EnvironmentRef> {
  const row = (await sql<any>`SELECT environment FROM candidate_containers
    WHERE pull_request_id = ${prId} AND succeeded ORDER BY id DESC LIMIT 1`.execute(t.db)).rows[0];
  return row.environment as EnvironmentRef;
}

async function run(env: EnvironmentRef, script: string, files: Record<string, string> = {}): Promise<string> {
  const r = await deps.executor.exec(env, ['bash', '-c', script], { timeoutMs: 120_000, files });
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

/** Live (not zombie) processes whose command line contains `marker`. */
function liveWith(marker: string): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => {
    try {
      const state = readFileSync(`/proc/${n}/stat`, 'latin1').split(') ')[1][0];
      const args = readFileSync(`/proc/${n}/cmdline`, 'latin1');
      return state !== 'Z' && state !== 'X' && args.includes(marker) && Number(n) !== process.pid ? [Number(n)] : [];
    } catch {
      return [];
    }
  });
}

describe(`synthesize_images with the ${TEST_EXECUTOR} executor`, () => {
  it('a pure-Python package: DEFAULT builds it, the environment verifies and runs the PR\'s code; neighbours go first; a re-run reuses it', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    // #3 is inserted before #2 but merged months later: once #1 succeeds, #2 (51 days away) goes first.
    const { prIds: [p1, p2, p3] } = await insertRepo({
      name: 'purelib', kind: 'pure', dependency: 'perfmine_testdep',
      prs: [{ number: 1, mergedAt: '2024-01-10T12:00:00Z' }, { number: 2, mergedAt: '2024-03-01T12:00:00Z', alsoEditsBenchmarks: true },
        { number: 3, mergedAt: '2024-09-01T12:00:00Z' }],
    });
    await sql`UPDATE pull_requests SET id = id + 1000 WHERE id = ${p2}`.execute(t.db); // claimed by id: #2 comes last unless prioritized
    const second = p2 + 1000;
    await runStage({ PERFMINE_BUILD_CONCURRENCY: '1' });

    const [s1, s2, s3] = [await spine(p1), await spine(second), await spine(p3)];
    for (const s of [s1, s2, s3]) {
      expect(s).toMatchObject({ executor: TEST_EXECUTOR, build_reason: null });
      expect(s.container_name).toBeTruthy();
      expect(s.environment_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
    expect(s2.build_priority).not.toBeNull();
    expect(s3.build_priority).toBeNull();
    expect(s2.env_built_at.getTime()).toBeLessThan(s3.env_built_at.getTime());

    const [a1] = await attempts(p1);
    expect(a1).toMatchObject({ strategy: 'default', outcome: 'verified', succeeded: true, attempt_no: 1, executor: TEST_EXECUTOR, reusable: true });
    expect(a1.env_ref).toBe(s1.container_name);
    expect(a1.env_digest).toBe(s1.environment_digest);
    expect(a1.verification.checks.benchmarks.detail).toBe('2 benchmarks discovered');
    expect(a1.verification.checks.imports.detail).toBe('imports purelib');
    expect(a1.verification.checks.tests).toMatchObject({ ok: true });
    expect(a1.duration_ms).toBeGreaterThan(0);
    // #2's script came from its verified neighbour; its benchmark edit is set aside for the oracle.
    const a2 = await attempts(second);
    expect(a2.map((a: any) => [a.strategy, a.outcome, a.source_pull_request_id])).toEqual([['similar', 'verified', p1]]);
    expect(a2[0].verification.patch).toMatchObject({ kept_files: ['purelib/core.py'], set_aside: ['benchmarks/bench_core.py'], applies: true });

    // The environments are the base commits, built, with the pinned dependency: stage 7 runs exactly these.
    const probe = 'python -c "import purelib, perfmine_testdep; print(purelib.value(), perfmine_testdep.__version__)"';
    expect(await run(await environmentOf(p1), probe)).toBe('0 1.0');
    expect(await run(await environmentOf(second), probe)).toBe('1 1.0');

    // Re-running the stage for #1 reuses its verified environment (CHECK_CACHE): checked again, nothing rebuilt.
    await sql`UPDATE pull_requests SET env_built_at = NULL WHERE id = ${p1}`.execute(t.db);
    await runStage();
    expect((await spine(p1)).container_name).toBe(s1.container_name);
    const again = (await attempts(p1)).at(-1);
    expect(again).toMatchObject({ strategy: 'cache', outcome: 'verified', source_pull_request_id: p1, env_ref: s1.container_name });
    const cost = (await sql<any>`SELECT cost FROM stage_runs WHERE stage = 'synthesize_images' AND subject_id = ${p1} ORDER BY id DESC LIMIT 1`.execute(t.db)).rows[0].cost;
    expect(cost).toMatchObject({ cache_hits: 1 });
    expect(cost.builds).toBeUndefined();
  }, 300_000);

  it('a C extension is built in place at each base commit: each environment imports its own compiled code, and rebuilding after the patch changes it', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const { repo, prIds: [p1, p2] } = await insertRepo({
      name: 'cext', kind: 'cext', prs: [{ number: 1, mergedAt: '2024-02-01T12:00:00Z' }, { number: 2, mergedAt: '2024-02-05T12:00:00Z' }],
    });
    await runStage();
    const [e1, e2] = [await environmentOf(p1), await environmentOf(p2)];
    expect(e1.ref).not.toBe(e2.ref);
    const value = 'python -c "import cext, cext._native as m, os; print(cext.value(), os.path.relpath(m.__file__))"';
    expect(await run(e1, value)).toMatch(/^0 cext\/_native\..*\.so$/);
    expect(await run(e2, value)).toMatch(/^1 cext\/_native\..*\.so$/);
    // What stage 7 will do, on a copy: apply the PR's patch, rebuild in place, import the new code.
    const patched = await run(e1, [
      'set -e', 'cp -a . "$PERFMINE_SCRATCH/tree"', 'cd "$PERFMINE_SCRATCH/tree"', 'git apply "$PERFMINE_SCRATCH/pr.patch"',
      'python setup.py -q build_ext --inplace > /dev/null 2>&1', 'python -c "import cext; print(cext.value())"',
    ].join('\n'), { 'pr.patch': repo.prs[0].patch });
    expect(patched).toBe('1');
    expect(await run(e1, value)).toMatch(/^0 /); // the verified environment itself is untouched
  }, 300_000);

  it('a package whose default build fails gets a script from the LLM (from its failure log); its neighbour then builds through SIMILAR with no LLM call', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    llm.resetStats();
    const { prIds } = await insertRepo({
      name: 'genlib', kind: 'generated', prs: [{ number: 1, mergedAt: '2024-04-01T12:00:00Z' }, { number: 2, mergedAt: '2024-04-03T12:00:00Z' }],
    });
    await runStage({ PERFMINE_BUILD_CONCURRENCY: '2' });
    expect(llm.stats.byTask.synthesize).toBe(1);
    const byPr = await Promise.all(prIds.map(attempts));
    const withLlm = byPr.find((as) => as.some((a: any) => a.strategy === 'llm'))!;
    const other = byPr.find((as) => as !== withLlm)!;
    expect(withLlm.map((a: any) => [a.strategy, a.outcome])).toEqual([['default', 'build_failed'], ['llm', 'verified']]);
    expect(withLlm[0].build_log).toMatch(/_config\.h: No such file or directory/);
    expect(withLlm[1].build_script).toMatch(/^python tools\/generate_config\.py$/m);
    expect(withLlm[1]).toMatchObject({ prompt_hash: expect.stringMatching(/^[0-9a-f]{16}$/), model: 'standin-small' });
    expect(withLlm[1].llm_prompt_tokens).toBeGreaterThan(100);
    expect(other.at(-1)).toMatchObject({ strategy: 'similar', outcome: 'verified', source_pull_request_id: withLlm[0].pull_request_id });
    expect(other.some((a: any) => a.strategy === 'llm')).toBe(false);
    for (const id of prIds) expect((await spine(id)).container_name).toBeTruthy();
  }, 300_000);

  it('a package no script builds ends in FAIL with every attempt recorded', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const { prIds: [p1] } = await insertRepo({ name: 'brokenlib', kind: 'broken', prs: [{ number: 1, mergedAt: '2024-05-01T12:00:00Z' }] });
    await runStage();
    const s = await spine(p1);
    expect(s.container_name).toBeNull();
    expect(s.env_built_at).not.toBeNull();
    const rows = await attempts(p1);
    expect(rows.map((a: any) => [a.attempt_no, a.strategy, a.outcome])).toEqual([[1, 'default', 'build_failed'], [2, 'llm', 'build_failed'], [3, 'llm', 'duplicate']]);
    expect(rows[0].build_log).toMatch(/run `python tools\/prepare\.py` first/);
    expect(rows[1].build_script).toMatch(/^python tools\/prepare\.py$/m);
    expect(rows[1].build_log).toMatch(/this C code does not compile/);
    for (const a of rows) {
      expect(a.build_script).toBeTruthy();
      expect(a.reason).toBeTruthy();
      expect(a.succeeded).toBe(false);
      expect(a.env_ref).toBeNull();
    }
    expect(rows[0].duration_ms).toBeGreaterThan(0);
    expect(s.build_reason).toMatch(/^no attempt gave a verified environment \(3 attempts\)\n1\. default: build_failed \(build script exited 1\)\n2\. llm: build_failed/);
  }, 300_000);

  it('an LLM script that tries to fake success is refused before it runs, and the cascade ends there', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const { prIds: [p1] } = await insertRepo({ name: 'cheatlib', kind: 'cheat', prs: [{ number: 1, mergedAt: '2024-05-10T12:00:00Z' }] });
    await runStage({ PERFMINE_BUILD_LLM_ATTEMPTS: '3' });
    const rows = await attempts(p1);
    expect(rows.map((a: any) => [a.strategy, a.outcome])).toEqual([['default', 'build_failed'], ['llm', 'cheat']]);
    expect(rows[1].reason).toMatch(/^the script tries to fake success: writes-protected at line \d+: writes asv's output directory \.asv/);
    expect(rows[1].verification.cheats.map((c: any) => c.rule)).toEqual(expect.arrayContaining(['writes-protected', 'early-exit']));
    expect(rows[1].build_log).toBeNull(); // never ran
    const s = await spine(p1);
    expect(s.container_name).toBeNull();
    expect(s.build_reason).toMatch(/^the LLM's script was refused before it ran: the script tries to fake success/);
    const cost = (await sql<any>`SELECT cost FROM stage_runs WHERE stage = 'synthesize_images' AND subject_id = ${p1}`.execute(t.db)).rows[0].cost;
    expect(cost).toMatchObject({ builds: 1, cheats: 1, llm_calls: 1 });
  }, 300_000);

  it('a build that hangs is killed at its time limit with no process left behind', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const marker = `perfmine-hang-${process.pid}-${Date.now()}`;
    const { prIds: [p1] } = await insertRepo({ name: 'hanglib', kind: 'hang', hangMarker: marker, prs: [{ number: 1, mergedAt: '2024-06-01T12:00:00Z' }] });
    const t0 = Date.now();
    await runStage({ PERFMINE_BUILD_TIMEOUT_S: '4', PERFMINE_BUILD_LLM_ATTEMPTS: '0' });
    const [a] = await attempts(p1);
    expect(a).toMatchObject({ strategy: 'default', outcome: 'build_failed' });
    expect(a.reason).toMatch(/^timed out after 4 s/);
    expect(a.build_log).toMatch(/started a helper that ignores SIGTERM/);
    expect(a.duration_ms).toBeGreaterThanOrEqual(4000);
    expect(a.duration_ms).toBeLessThan(15_000); // the limit, the 2 s grace before SIGKILL, and a loaded machine
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(liveWith(marker)).toEqual([]);
    expect((await spine(p1)).build_reason).toMatch(/timed out after 4 s/);
  }, 300_000);

  it('a secret inside the environment fails verification and ends the cascade: a configured secret, a token-shaped string', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const token = `ghp_${'A1b2C3d4E5'.repeat(4)}`;
    const configured = await insertRepo({ name: 'leakylib', kind: 'leaky', leakedValue: CONFIGURED_SECRET, prs: [{ number: 1, mergedAt: '2024-07-01T12:00:00Z' }] });
    const shaped = await insertRepo({ name: 'tokenlib', kind: 'leaky', leakedValue: token, prs: [{ number: 1, mergedAt: '2024-07-01T12:00:00Z' }] });
    await runStage();
    for (const [inserted, what] of [[configured, /secret found: a configured secret in build_info\.txt/], [shaped, /secret found: ghp_\.\.\. \(token-shaped\) in build_info\.txt/]] as const) {
      const rows = await attempts(inserted.prIds[0]);
      expect(rows.map((a: any) => [a.strategy, a.outcome])).toEqual([['default', 'verification_failed']]);
      expect(rows[0].reason).toMatch(what);
      expect(rows[0].verification.checks.secrets.ok).toBe(false);
      expect(JSON.stringify(rows[0])).not.toContain(CONFIGURED_SECRET);
      expect(JSON.stringify(rows[0])).not.toContain(token);
      expect((await spine(inserted.prIds[0])).container_name).toBeNull();
    }
  }, 300_000);
});
