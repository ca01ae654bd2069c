/**
 * Stage 8 (publish) in a daemon, against the real PostgreSQL, with the local
 * directory target and the Hugging Face hub stand-in driven by the real
 * client. Stage 7's results are inserted as a real stage 7 writes them
 * (test/helpers/publish-fixtures.ts). Each test uses a dataset name of its
 * own, so their month files and published rows never meet.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { createLogger, silentLogger, type Logger } from '../src/log.js';
import { PARQUET_COLUMNS } from '../src/domain/publish-parquet.js';
import { buildStageDeps } from '../src/stages/index.js';
import { publish } from '../src/stages/publish.js';
import { HubStandin } from '../src/standins/hub/server.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { attemptsOf, insertPublishablePr, spineOf } from './helpers/publish-fixtures.js';

const TOKEN = `hf_${randomBytes(20).toString('hex')}`;
const HF_REPO = 'perfmine/tasks';
const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string;
let t: TestDb;
let hub: HubStandin;
let daemon: Daemon | undefined;
const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-publish-'));

beforeAll(async () => {
  t = await createTestDb();
  hub = await HubStandin.start({ tokens: [TOKEN] });
});

afterEach(async () => {
  await daemon?.stop(5000);
  daemon = undefined;
  hub.clearFaults();
});

afterAll(async () => {
  await hub?.close();
  await t?.destroy();
  rmSync(root, { recursive: true, force: true });
});

function settings(env: Record<string, string>) {
  return loadConfig({
    PERFMINE_SCHEDULE: 'false', PERFMINE_DATA_DIR: path.join(root, 'data'), PERFMINE_HF_HUB_URL: hub.url, PERFMINE_HF_REPO: HF_REPO,
    PERFMINE_HF_TOKEN: TOKEN, ...env,
  });
}

interface RunOptions { log?: Logger; backoffMs?: number }

function startDaemon(env: Record<string, string>, o: RunOptions = {}): Daemon {
  const log = o.log ?? silentLogger;
  const stage = { ...publish(buildStageDeps(settings(env), log)), backoff: { baseMs: o.backoffMs ?? 100, maxMs: (o.backoffMs ?? 100) * 4 } };
  daemon = new Daemon({ db: t.db, connectionString: t.url, stages: [stage], pollIntervalMs: 200, breaker: { baseSeconds: 1, maxSeconds: 2 }, log });
  return daemon;
}

async function runStage(env: Record<string, string>, o: RunOptions = {}): Promise<void> {
  const d = startDaemon(env, o);
  await d.start();
  await d.whenIdle();
  await d.stop(5000);
  daemon = undefined;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function readParquet(bytes: Uint8Array | Buffer) {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const meta = parquetMetadata(file);
  return { meta, schema: parquetSchema(meta), rows: await parquetReadObjects({ file }) };
}

const publishDir = (name: string) => path.join(root, name);
const localSettings = (dataset: string, env: Record<string, string> = {}) =>
  ({ PERFMINE_PUBLISH_DATASET: dataset, PERFMINE_PUBLISH_DIR: publishDir(dataset), PERFMINE_PUBLISH_TARGETS: 'local', ...env });

describe('publish', () => {
  it('publishes a PR whose run passed the gate: its row in the month file (read back with its schema), its Dockerfile and lock beside it', async () => {
    const pr = await insertPublishablePr(t.db, { number: 101, mergedAt: '2024-03-05T12:00:00Z' });
    await runStage(localSettings('ds1'));

    const spine = await spineOf(t.db, pr.id);
    expect(spine.published_at).not.toBeNull();
    expect(spine.publish_decided_at).not.toBeNull();
    expect(spine.publish_reason).toMatch(/^published acme__fastlib-101 in data\/ds1@2024-03\.parquet \(1 row\): local /);

    const file = path.join(publishDir('ds1'), 'data', 'ds1@2024-03.parquet');
    const { meta, schema, rows } = await readParquet(readFileSync(file));
    expect(schema.children.map((c) => c.element.name)).toEqual(PARQUET_COLUMNS);
    expect(meta.key_value_metadata).toEqual(expect.arrayContaining([{ key: 'perfmine.month', value: '2024-03' }]));
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toMatchObject({
      task_id: 'acme__fastlib-101', owner: 'acme', repo: 'fastlib', number: 101, rendered_problem: pr.renderedProblem, patch: pr.patch,
      classification: 'use_better_algorithm', difficulty: 'easy', executor: 'local', environment_digest: pr.environmentDigest,
      image_name: null, image_digest: null, max_speedup: 4.5, max_speedup_lower_bound: 3.9, perfmine_version: VERSION,
      environment_path: 'environments/acme__fastlib-101',
    });
    expect((row.merged_at as Date).toISOString()).toBe('2024-03-05T12:00:00.000Z');
    // Only the benchmarks that passed the PR-level gate, fastest first.
    expect((row.benchmarks as { name: string; speedup: number }[]).map((b) => [b.name, b.speedup]))
      .toEqual([['benchmarks.TimeValue.time_value', 4.5], ['benchmarks.TimeValue.time_many', 1.8]]);
    expect(row.machine).toMatchObject({ name: 'bench-1', cpu_model: 'Test CPU' });
    expect(row.machine_fingerprint).toBe('fp-bench-1');

    const env = path.join(publishDir('ds1'), 'environments', 'acme__fastlib-101');
    expect(readdirSync(env).sort()).toEqual(['Dockerfile', 'build.sh', 'perfmine-lock.json', 'requirements.txt']);
    const lock = JSON.parse(readFileSync(path.join(env, 'perfmine-lock.json'), 'utf8'));
    expect(lock).toMatchObject({ python: '3.11', requirements: pr.pins, build_script: pr.buildScript, executor: 'local', environment_digest: pr.environmentDigest });
    expect(row.environment_lock).toEqual(lock);
    expect(readFileSync(path.join(env, 'Dockerfile'), 'utf8')).toContain(`checkout --detach ${lock.base_commit}`);
    expect(readFileSync(path.join(env, 'build.sh'), 'utf8')).toBe(pr.buildScript);

    const stored = (await sql<any>`SELECT dataset, month, task_id, record FROM published_tasks WHERE pull_request_id = ${pr.id}`.execute(t.db)).rows;
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ dataset: 'ds1', month: '2024-03', task_id: 'acme__fastlib-101' });
    // No temporary file is left beside the month file.
    expect(readdirSync(path.dirname(file))).toEqual(['ds1@2024-03.parquet']);
  });

  it('a second publish of the same month keeps the earlier rows; concurrent publications of one month lose none', async () => {
    const first = await insertPublishablePr(t.db, { number: 201, mergedAt: '2024-03-05T12:00:00Z' });
    await runStage(localSettings('ds2'));
    const march = path.join(publishDir('ds2'), 'data', 'ds2@2024-03.parquet');
    const before = (await readParquet(readFileSync(march))).rows;
    expect(before.map((r) => r.task_id)).toEqual(['acme__fastlib-201']);

    // Two more in March, published at the same time, and one in April.
    await insertPublishablePr(t.db, { number: 202, mergedAt: '2024-03-28T08:00:00Z' });
    await insertPublishablePr(t.db, { number: 203, mergedAt: '2024-03-01T00:00:00Z' });
    await insertPublishablePr(t.db, { number: 204, mergedAt: '2024-04-02T00:00:00Z' });
    await runStage(localSettings('ds2', { PERFMINE_PUBLISH_CONCURRENCY: '3' }));
    const after = (await readParquet(readFileSync(march))).rows;
    expect(after.map((r) => r.task_id)).toEqual(['acme__fastlib-203', 'acme__fastlib-201', 'acme__fastlib-202']);
    // The earlier row is the one published then, unchanged.
    expect(after.find((r) => r.task_id === 'acme__fastlib-201')).toEqual(before[0]);
    const april = (await readParquet(readFileSync(path.join(publishDir('ds2'), 'data', 'ds2@2024-04.parquet')))).rows;
    expect(april.map((r) => r.task_id)).toEqual(['acme__fastlib-204']);

    // Re-publishing one PR (the README's UPDATE) keeps the month whole and the PR once.
    await sql`UPDATE pull_requests SET publish_decided_at = NULL WHERE id = ${first.id}`.execute(t.db);
    await runStage(localSettings('ds2'));
    const again = (await readParquet(readFileSync(march))).rows;
    expect(again.map((r) => r.task_id)).toEqual(['acme__fastlib-203', 'acme__fastlib-201', 'acme__fastlib-202']);
    expect((await spineOf(t.db, first.id)).published_at).not.toBeNull();
  });

  it('a failing hub push leaves published_at NULL, writes nothing locally, and is retried until it succeeds', async () => {
    const env = { ...localSettings('ds3'), PERFMINE_PUBLISH_TARGETS: 'hub,local' };
    const pr = await insertPublishablePr(t.db, { number: 301, mergedAt: '2024-05-10T00:00:00Z' });
    hub.fail({ route: 'commit', reply: 503, times: 1000 });
    const d = startDaemon(env);
    await d.start();
    const faulted = () => hub.requests.filter((r) => r.route === 'commit' && r.status === 503).length;
    await until('two refused hub commits', () => faulted() >= 2);
    const during = await spineOf(t.db, pr.id);
    expect(during.published_at).toBeNull();
    expect(during.publish_decided_at).toBeNull();
    expect(existsSync(path.join(publishDir('ds3'), 'data'))).toBe(false);
    expect(hub.file('dataset', HF_REPO, 'data/ds3@2024-05.parquet')).toBeNull();
    expect((await sql`SELECT 1 FROM published_tasks WHERE pull_request_id = ${pr.id}`.execute(t.db)).rows).toHaveLength(0);
    // The hub is down, not the row: attempts are uncounted and the stage waits (breaker), the row never fails.
    const attempts = await attemptsOf(t.db, pr.id);
    expect(attempts.length).toBeGreaterThan(0);
    expect(attempts.every((a) => a.outcome === 'service_down')).toBe(true);
    expect(attempts[0].error).toMatch(/the hub \(commit\) answered HTTP 503/);

    hub.clearFaults();
    await d.whenIdle();
    const spine = await spineOf(t.db, pr.id);
    expect(spine.published_at).not.toBeNull();
    expect(spine.publish_reason).toMatch(/hub .*\/datasets\/perfmine\/tasks @ [0-9a-f]{40}/);
    const local = readFileSync(path.join(publishDir('ds3'), 'data', 'ds3@2024-05.parquet'));
    expect(hub.file('dataset', HF_REPO, 'data/ds3@2024-05.parquet')!.equals(local)).toBe(true);
    expect(hub.file('dataset', HF_REPO, 'environments/acme__fastlib-301/perfmine-lock.json')).not.toBeNull();
    expect((await readParquet(local)).rows.map((r) => r.task_id)).toEqual(['acme__fastlib-301']);
  });

  it('a push the hub refuses for the change itself is an ordinary error: retried with backoff, then published', async () => {
    const env = { ...localSettings('ds3b'), PERFMINE_PUBLISH_TARGETS: 'hub,local' };
    const pr = await insertPublishablePr(t.db, { number: 311, mergedAt: '2024-05-11T00:00:00Z' });
    hub.fail({ route: 'commit', reply: 422, times: 1 });
    await runStage(env);
    expect((await attemptsOf(t.db, pr.id)).map((a) => a.outcome)).toEqual(['error', 'succeeded']);
    expect((await spineOf(t.db, pr.id)).published_at).not.toBeNull();
  });

  it('when a later target fails, the hub gets the month back as it was: never half-published', async () => {
    const blocked = publishDir('ds4');
    writeFileSync(blocked, 'a file where the directory should be'); // the local target cannot write under it
    const env = { ...localSettings('ds4'), PERFMINE_PUBLISH_TARGETS: 'hub,local' };
    const pr = await insertPublishablePr(t.db, { number: 401, mergedAt: '2024-06-01T00:00:00Z' });
    const d = startDaemon(env, { backoffMs: 60_000 });
    await d.start();
    await until('a failed attempt', async () => (await attemptsOf(t.db, pr.id)).length > 0);
    await d.stop(5000);
    daemon = undefined;
    expect((await attemptsOf(t.db, pr.id))[0]).toMatchObject({ outcome: 'error' });
    expect((await spineOf(t.db, pr.id)).published_at).toBeNull();
    // The hub took the month file, then gave it back: two commits, and no month file at the head.
    const repo = hub.repo('dataset', HF_REPO)!;
    const commits = repo.branches.get('main')!;
    expect(commits.slice(-2).map((c) => c.summary)).toEqual([
      'perfmine: publish acme__fastlib-401 (data/ds4@2024-06.parquet, 1 row)', 'perfmine: take back acme__fastlib-401 (a later target failed)',
    ]);
    expect(hub.file('dataset', HF_REPO, 'data/ds4@2024-06.parquet')).toBeNull();

    rmSync(blocked);
    await sql`UPDATE leases SET retry_at = now() WHERE stage = 'publish' AND subject_id = ${pr.id}`.execute(t.db);
    await runStage(env);
    expect((await spineOf(t.db, pr.id)).published_at).not.toBeNull();
    const local = readFileSync(path.join(blocked, 'data', 'ds4@2024-06.parquet'));
    expect(hub.file('dataset', HF_REPO, 'data/ds4@2024-06.parquet')!.equals(local)).toBe(true);
  });

  it('a run from a machine PERFMINE_PUBLISH_MACHINES does not allow is decided, not published, with the reason; allowed and re-requested, it is', async () => {
    const env = localSettings('ds5', { PERFMINE_PUBLISH_MACHINES: 'clean-cloud-1' });
    const pr = await insertPublishablePr(t.db, { number: 501, mergedAt: '2024-07-01T00:00:00Z', machine: { name: 'dev-laptop', cores: 8 } });
    const weak = await insertPublishablePr(t.db, { number: 502, mergedAt: '2024-07-02T00:00:00Z', machine: { name: 'clean-cloud-1' }, lowerBound: 1.02, maxSpeedup: 1.2 });
    await runStage(env);
    const spine = await spineOf(t.db, pr.id);
    expect(spine.published_at).toBeNull();
    expect(spine.publish_decided_at).not.toBeNull();
    expect(spine.publish_reason).toMatch(/not published: benchmark run \d+ ran on fp-dev-laptop \/ dev-laptop, not a machine PERFMINE_PUBLISH_MACHINES allows \(clean-cloud-1\)/);
    const weakSpine = await spineOf(t.db, weak.id);
    expect(weakSpine.published_at).toBeNull();
    expect(weakSpine.publish_reason).toMatch(/lower-bound speedup 1\.02x .* below PERFMINE_MIN_SPEEDUP \(1\.05x\)/);
    expect(existsSync(publishDir('ds5'))).toBe(false);
    expect((await sql`SELECT 1 FROM published_tasks WHERE dataset = 'ds5'`.execute(t.db)).rows).toHaveLength(0);

    // Decided means stopped: running again changes nothing.
    await runStage(env);
    expect((await spineOf(t.db, pr.id)).publish_decided_at).toEqual(spine.publish_decided_at);

    // The README's re-run: allow the machine, then re-request the PR.
    await sql`UPDATE pull_requests SET publish_decided_at = NULL WHERE id = ${pr.id}`.execute(t.db);
    await runStage(localSettings('ds5', { PERFMINE_PUBLISH_MACHINES: 'clean-cloud-1,dev-laptop' }));
    expect((await spineOf(t.db, pr.id)).published_at).not.toBeNull();
    const rows = (await readParquet(readFileSync(path.join(publishDir('ds5'), 'data', 'ds5@2024-07.parquet')))).rows;
    expect(rows.map((r) => r.task_id)).toEqual(['acme__fastlib-501']);
  });

  it('a docker environment with no registry to push it to waits (service down), never published without its image', async () => {
    const pr = await insertPublishablePr(t.db, { number: 701, mergedAt: '2024-07-15T00:00:00Z', executor: 'docker' });
    const d = startDaemon(localSettings('ds7'));
    await d.start();
    await until('an attempt', async () => (await attemptsOf(t.db, pr.id)).length > 0);
    await d.stop(5000);
    daemon = undefined;
    const [attempt] = await attemptsOf(t.db, pr.id);
    expect(attempt).toMatchObject({ outcome: 'service_down' });
    expect(attempt.error).toMatch(/PERFMINE_PUBLISH_REGISTRY is not set/);
    const spine = await spineOf(t.db, pr.id);
    expect(spine.published_at).toBeNull();
    expect(spine.publish_decided_at).toBeNull();
    expect(existsSync(publishDir('ds7'))).toBe(false);
    // Out of the way of the next tests: this PR stays pending, and so would the registry's breaker.
    await sql`UPDATE pull_requests SET benchmark_decision = 'failed' WHERE id = ${pr.id}`.execute(t.db);
    await sql`DELETE FROM rate_limit_pauses`.execute(t.db);
  });

  it('no token in the database, the logs or the published data; a record carrying a configured secret is refused', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    const log = createLogger('trace', false, sink);
    const wrongToken = `hf_${randomBytes(20).toString('hex')}`; // well-formed, but the hub does not know it
    const githubToken = `ghp_${randomBytes(18).toString('hex')}`;
    const env = { ...localSettings('ds6'), PERFMINE_PUBLISH_TARGETS: 'hub,local', GITHUB_TOKEN: githubToken };
    const pr = await insertPublishablePr(t.db, { number: 601, mergedAt: '2024-08-01T00:00:00Z' });

    // First with a token the hub refuses: the service is "down" for us (401), the PR waits.
    const d = startDaemon({ ...env, PERFMINE_HF_TOKEN: wrongToken }, { log });
    await d.start();
    await until('a refused attempt', async () => (await attemptsOf(t.db, pr.id)).length > 0);
    await d.stop(5000);
    daemon = undefined;
    expect((await attemptsOf(t.db, pr.id))[0].error).toMatch(/refused the token \(HTTP 401\)/);
    expect((await spineOf(t.db, pr.id)).published_at).toBeNull();
    await sql`DELETE FROM rate_limit_pauses`.execute(t.db);

    await runStage(env, { log });
    expect((await spineOf(t.db, pr.id)).published_at).not.toBeNull();

    // A record that would carry one of perfmine's credentials never leaves.
    const leaky = await insertPublishablePr(t.db, { number: 602, mergedAt: '2024-08-02T00:00:00Z', patch: `+TOKEN = "${githubToken}"\n` });
    await runStage(env, { log });
    const leakySpine = await spineOf(t.db, leaky.id);
    expect(leakySpine.published_at).toBeNull();
    expect(leakySpine.publish_reason).toMatch(/would carry 1 of perfmine's configured secrets/);
    expect((await readParquet(readFileSync(path.join(publishDir('ds6'), 'data', 'ds6@2024-08.parquet')))).rows.map((r) => r.task_id)).toEqual(['acme__fastlib-601']);

    // Everything the database holds, as text.
    const tables = (await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`.execute(t.db)).rows;
    let database = '';
    for (const { table_name } of tables) {
      const rows = (await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(table_name)} t`.execute(t.db)).rows;
      database += rows.map((r) => r.row).join('\n');
    }
    expect(database).toContain('acme__fastlib-601'); // the dump does hold what was published
    // What was published, as bytes and, for Parquet files (compressed), as their decoded rows.
    const published: string[] = [];
    for (const bytes of [...walk(publishDir('ds6')).map((f) => readFileSync(f)), ...hub.repo('dataset', HF_REPO)!.objects.values()]) {
      published.push(bytes.toString('latin1'));
      if (bytes.subarray(0, 4).toString() === 'PAR1') published.push(JSON.stringify((await readParquet(bytes)).rows));
    }
    expect(published.some((text) => text.includes('acme__fastlib-601'))).toBe(true);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).toContain('publish: published');
    for (const token of [TOKEN, wrongToken]) {
      expect(database).not.toContain(token);
      expect(lines.join('')).not.toContain(token);
      for (const text of published) expect(text.includes(token)).toBe(false);
    }
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
