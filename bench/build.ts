import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { silentLogger } from '../src/log.js';
import { buildStageDeps } from '../src/stages/index.js';
import { synthesizeImages } from '../src/stages/synthesize-images.js';
import { IndexStandin } from '../src/standins/index/server.js';
import { buildWheels } from '../src/standins/index/wheels.js';
import { LlmStandin } from '../src/standins/llm/server.js';
import { writeRepo, type PackageKind } from '../test/helpers/build-repos.js';
import { createThrowawayDatabase, providePostgres } from '../test/helpers/pg-provider.js';

const PRS_PER_REPO = Number(process.env.BENCH_PRS_PER_REPO ?? 10);
const DAY = 86_400_000;

/** Four repositories: two pure Python, two with a C extension, one of which needs a generated header (the LLM's job, once). */
const REPOS: Array<{ name: string; kind: PackageKind; dependency: string; start: string }> = [
  { name: 'benchpure', kind: 'pure', dependency: 'bench_dep_a', start: '2023-01-05T10:00:00Z' },
  { name: 'benchnative', kind: 'cext', dependency: 'bench_dep_a', start: '2023-02-01T10:00:00Z' },
  { name: 'benchgen', kind: 'generated', dependency: 'bench_dep_b', start: '2023-03-01T10:00:00Z' },
  { name: 'benchtools', kind: 'pure', dependency: 'bench_dep_b', start: '2023-04-01T10:00:00Z' },
];

/**
 * Stage 6 over 40 PRs of 4 generated repositories (10 each, one every 9 days),
 * pins from the index stand-in, LLM scripts from the LLM stand-in, with the
 * executor PERFMINE_EXECUTOR names, at the stage's default concurrency; timed
 * from the daemon's start to idle (shared environments and checkouts included).
 */
export async function run(): Promise<void> {
  // With docker, the bench's images carry a prefix of their own and are removed at the end (the base image stays).
  const imagePrefix = process.env.PERFMINE_DOCKER_IMAGE_PREFIX ?? `perfmine-bench${process.pid}`;
  process.env.PERFMINE_DOCKER_IMAGE_PREFIX = imagePrefix;
  const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-bench-build-'));
  const server = await providePostgres();
  const throwaway = await createThrowawayDatabase(server.adminUrl, 'perfmine_bench');
  const conn = connect(throwaway.url, 8);
  let index: IndexStandin | undefined;
  let llm: LlmStandin | undefined;
  try {
    await migrate(conn.pool);
    const wheels = path.join(root, 'wheels');
    await buildWheels(wheels, [
      { name: 'bench-dep-a', version: '1.0', uploadTime: '2022-01-01T00:00:00Z' },
      { name: 'bench-dep-b', version: '2.0', uploadTime: '2022-01-01T00:00:00Z' },
    ], { python: '/usr/bin/python3' });
    const pinOf = (dist: string) => {
      const file = readdirSync(wheels).find((f) => f.startsWith(`${dist}-`))!;
      const version = file.split('-')[1];
      return `${dist.replace(/_/g, '-')}==${version} --hash=sha256:${createHash('sha256').update(readFileSync(path.join(wheels, file))).digest('hex')}`;
    };
    index = await IndexStandin.start({ wheelsDir: wheels });
    llm = await LlmStandin.start();

    let prs = 0;
    for (const spec of REPOS) {
      const repo = await writeRepo(path.join(root, spec.name), {
        name: spec.name, kind: spec.kind, dependency: spec.dependency,
        prs: Array.from({ length: PRS_PER_REPO }, (_, i) => ({ number: i + 1, mergedAt: new Date(Date.parse(spec.start) + 9 * i * DAY).toISOString() })),
      });
      const repoId = (await sql<{ id: number }>`
        INSERT INTO repositories (owner, name, clone_url, asv_config_path, metadata_fetched_at, last_scraped_at)
        VALUES ('bench', ${spec.name}, ${repo.bare}, 'asv.conf.json', now(), now()) RETURNING id`.execute(conn.db)).rows[0].id;
      for (const pr of repo.prs) {
        const pkg = (await sql<{ id: number }>`
          INSERT INTO packages (repository_id, merge_commit_sha, python_version, env_payload, can_install)
          VALUES (${repoId}, ${pr.mergeSha}, '3.11', ${JSON.stringify([pinOf(spec.dependency)])}::jsonb, true) RETURNING id`.execute(conn.db)).rows[0].id;
        await sql`
          INSERT INTO pull_requests (repository_id, number, title, merged_at, merge_commit_sha, base_sha, patch, is_performance_commit,
            package_id, can_install, env_resolved_at, rendered_problem, problem_rendered_at)
          VALUES (${repoId}, ${pr.number}, ${pr.title}, ${pr.mergedAt}, ${pr.mergeSha}, ${pr.baseSha}, ${pr.patch}, true,
            ${pkg}, true, now(), 'Make value() faster.', now())`.execute(conn.db);
        prs++;
      }
    }

    const config = loadConfig({
      PERFMINE_SCHEDULE: 'false', PERFMINE_DATA_DIR: path.join(root, 'data'), PERFMINE_PYTHON_INDEX_URL: index.simpleUrl,
      OPENAI_BASE_URL: llm.url, PERFMINE_LLM_MODEL: 'standin-small',
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k === 'PERFMINE_EXECUTOR' || k.startsWith('PERFMINE_DOCKER_') || k === 'DOCKER_HOST' || k.startsWith('PERFMINE_BUILD_'))),
    });
    const deps = buildStageDeps(config, silentLogger);
    const stage = synthesizeImages(deps);
    const daemon = new Daemon({ db: conn.db, connectionString: throwaway.url, stages: [stage] });
    console.error(`bench build: ${prs} PRs over ${REPOS.length} repositories, ${config.PERFMINE_EXECUTOR} executor, concurrency ${stage.concurrency}`);
    const t0 = performance.now();
    await daemon.start();
    await daemon.whenIdle();
    const seconds = (performance.now() - t0) / 1000;
    await daemon.stop();

    const r = (await sql<any>`
      SELECT count(*)::int AS prs,
             count(*) FILTER (WHERE container_name IS NOT NULL)::int AS built,
             count(*) FILTER (WHERE container_name IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM candidate_containers c WHERE c.pull_request_id = p.id AND c.strategy = 'llm'))::int AS built_without_llm
      FROM pull_requests p`.execute(conn.db)).rows[0];
    const strategies = Object.fromEntries((await sql<any>`
      SELECT strategy || ':' || outcome AS k, count(*)::int AS n FROM candidate_containers GROUP BY 1 ORDER BY 1`.execute(conn.db)).rows.map((x) => [x.k, x.n]));
    const durations = (await sql<{ s: number }>`
      SELECT extract(epoch FROM finished_at - started_at)::float8 AS s FROM stage_runs
      WHERE stage = 'synthesize_images' AND outcome = 'succeeded' ORDER BY 1`.execute(conn.db)).rows.map((x) => x.s);
    const failed = (await sql<any>`SELECT p.number, r.name, p.build_reason FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
      WHERE p.container_name IS NULL`.execute(conn.db)).rows;
    for (const f of failed) console.error(`not built: ${f.name}#${f.number}: ${f.build_reason}`);
    console.error(`attempts: ${JSON.stringify(strategies)}`);
    const llmAttempts = llm.stats.byTask.synthesize ?? 0;
    const round = (x: number, d = 100) => Math.round(x * d) / d;
    const median = durations.length ? durations[Math.floor((durations.length - 1) / 2)] : 0;
    const out = {
      bench: 'build',
      prs: r.prs,
      built: r.built,
      llm_attempts: llmAttempts,
      reuse_rate: r.built ? round(r.built_without_llm / r.built, 1000) : 0,
      median_build_s: round(median),
      seconds: round(seconds),
      executor: config.PERFMINE_EXECUTOR,
      concurrency: stage.concurrency,
      attempts: strategies,
      postgres: server.kind,
    };
    const goals = [
      out.built === out.prs ? null : `every buildable PR built (${out.built} of ${out.prs})`,
      out.reuse_rate >= 0.9 ? null : `reuse_rate >= 0.9 (${out.reuse_rate})`,
      out.llm_attempts <= 2 ? null : `LLM called at most twice (${out.llm_attempts})`,
    ].filter(Boolean);
    if (goals.length) console.error(`goals missed: ${goals.join('; ')}`);
    console.log(JSON.stringify(out));
  } finally {
    await index?.close();
    await llm?.close();
    await conn.close();
    await throwaway.drop();
    await server.stop();
    rmSync(root, { recursive: true, force: true });
    if (process.env.PERFMINE_EXECUTOR === 'docker') await removeImages(imagePrefix);
  }
}

async function removeImages(prefix: string): Promise<void> {
  const { default: Docker } = await import('dockerode');
  const docker = new Docker();
  for (const image of await docker.listImages().catch(() => [])) {
    for (const tag of image.RepoTags ?? []) {
      if (tag.startsWith(`${prefix}-`)) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
    }
  }
}
