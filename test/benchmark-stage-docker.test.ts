/**
 * Stage 7 with the docker executor: the demo's C-extension optimization (#5)
 * and the PR that breaks a test (#14) get their images from stage 6, then are
 * decided in a container of exactly that image (no network, the benchmark's
 * cpuset and memory limit), the extension rebuilt inside after the patch and
 * the tests run with the image's pytest. Skipped saying why without an engine
 * or its base image; PERFMINE_REQUIRE_DOCKER=1 makes that a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { generateDemoRepo, type GeneratedRepo } from '../src/demo/generated-repo/index.js';
import { buildStageDeps } from '../src/stages/index.js';
import { benchmark } from '../src/stages/benchmark.js';
import { synthesizeImages } from '../src/stages/synthesize-images.js';
import { IndexStandin } from '../src/standins/index/server.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { generatedResolvedPrs, insertResolvedPrs } from './helpers/resolved-prs.js';
import { dockerTestSetup, ownContainers, removeImagesWithPrefix } from './helpers/docker.js';

const PREFIX = `perfmine-t${process.pid}b`;
const PINS = ['demo-helpers==1.1.0', 'demo-units==0.9.0'];
const NUMBERS = [5, 14];
const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-bench-docker-'));
let t: TestDb;
let index: IndexStandin | undefined;
let repo: GeneratedRepo;
let docker: Docker;
let skipReason: string | null = null;
let prIds = new Map<number, number>();

const settings = () => loadConfig({
  PERFMINE_SCHEDULE: 'false', PERFMINE_DATA_DIR: path.join(root, 'data'), PERFMINE_PYTHON_INDEX_URL: index!.simpleUrl,
  PERFMINE_EXECUTOR: 'docker', PERFMINE_DOCKER_IMAGE_PREFIX: PREFIX, PERFMINE_BUILD_TIMEOUT_S: '300', PERFMINE_VERIFY_TIMEOUT_S: '120',
  PERFMINE_BUILD_LLM_ATTEMPTS: '0', PERFMINE_TEST_TIMEOUT_S: '120', PERFMINE_BENCHMARK_BUDGET_S: '2', PERFMINE_BENCHMARK_MEMORY_MB: '1024',
  ...(process.env.PERFMINE_DOCKER_BASE_IMAGE ? { PERFMINE_DOCKER_BASE_IMAGE: process.env.PERFMINE_DOCKER_BASE_IMAGE } : {}),
});

async function runStages(names: Array<'synthesize_images' | 'benchmark'>): Promise<void> {
  const deps = buildStageDeps(settings(), silentLogger);
  const all = { synthesize_images: synthesizeImages(deps), benchmark: benchmark(deps) };
  const daemon = new Daemon({
    db: t.db, connectionString: t.url, stages: names.map((n) => ({ ...all[n], backoff: { baseMs: 100, maxMs: 400 } })),
    pollIntervalMs: 200, breaker: { baseSeconds: 1, maxSeconds: 2 },
  });
  await daemon.start();
  try {
    await daemon.whenIdle();
  } finally {
    await daemon.stop(5000);
  }
}

beforeAll(async () => {
  ({ docker, skipReason } = await dockerTestSetup());
  if (skipReason) return;
  t = await createTestDb();
  repo = await generateDemoRepo(path.join(root, 'gen'));
  index = await IndexStandin.start({ wheelsDir: repo.wheelDir });
  ({ prIds } = await insertResolvedPrs(t.db, ...generatedResolvedPrs(repo, NUMBERS), { pins: PINS }));
  await runStages(['synthesize_images']);
}, 900_000);

afterAll(async () => {
  await index?.close();
  await t?.destroy();
  if (!skipReason) await removeImagesWithPrefix(docker, PREFIX);
  rmSync(root, { recursive: true, force: true });
});

describe('benchmark (stage 7) with the docker executor', () => {
  it('decides in a container of the verified image: the C speedup measured after the rebuild, the broken test named; no container left', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    for (const number of NUMBERS) {
      const s = (await sql<any>`SELECT container_name, environment_digest, build_reason FROM pull_requests WHERE id = ${prIds.get(number)!}`.execute(t.db)).rows[0];
      expect(s.container_name, `#${number}: ${s.build_reason}`).toMatch(/@sha256:[0-9a-f]{64}$/);
    }
    await runStages(['benchmark']);
    const pr = async (number: number) => (await sql<any>`
      SELECT p.benchmark_decision, p.benchmark_reason, p.max_speedup, p.environment_digest, to_jsonb(r) AS run
      FROM pull_requests p LEFT JOIN benchmark_runs r ON r.id = p.benchmark_run_id WHERE p.id = ${prIds.get(number)!}`.execute(t.db)).rows[0];

    const fast = await pr(5);
    expect(fast.benchmark_decision, fast.benchmark_reason).toBe('faster');
    expect(fast.run).toMatchObject({ executor: 'docker', environment_digest: fast.environment_digest, decision: 'faster', tests_ok: true, succeeded: true });
    expect(fast.run.machine).toMatchObject({ executor: 'docker', memory_mb: 1024, python: expect.stringMatching(/^3\.11\./) });
    expect(fast.run.tests_summary.runner).toBe('pytest');
    const passed = (await sql<any>`SELECT benchmark, speedup_lower_bound FROM benchmark_results WHERE run_id = ${fast.run.id} AND passed`.execute(t.db)).rows;
    expect(passed.map((r: any) => r.benchmark)).toContain('bench_native.time_rolling_sum');
    expect(Math.max(...passed.map((r: any) => r.speedup_lower_bound))).toBeGreaterThanOrEqual(1.5);

    const broken = await pr(14);
    expect(broken.benchmark_decision).toBe('tests failed');
    expect(broken.benchmark_reason).toMatch(/tests\/test_stats\.py::\w+::test_rejects_inverted_bounds/);

    expect(await ownContainers(docker)).toEqual([]);
  }, 600_000);
});
