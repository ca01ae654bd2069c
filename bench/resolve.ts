import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { buildStageDeps } from '../src/stages/index.js';
import { resolvePackages } from '../src/stages/resolve-packages.js';
import { IndexStandin } from '../src/standins/index/server.js';
import { buildWheels, type WheelSpec } from '../src/standins/index/wheels.js';
import { createThrowawayDatabase, providePostgres } from '../test/helpers/pg-provider.js';

const REPOS = Number(process.env.BENCH_REPOS ?? 10);
const COMMITS = Number(process.env.BENCH_COMMITS_PER_REPO ?? 30);
const PROJECTS = 20;
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const DAY = 86_400_000;

const project = (j: number) => `dep-${String(j % PROJECTS).padStart(2, '0')}`;
const at = (iso: string, days: number) => new Date(Date.parse(iso) + days * DAY).toISOString();

/**
 * 20 projects, three releases each between 2018 and 2023: ten libraries whose
 * newer releases depend on one of ten leaf projects (a dependency closure of a
 * handful of projects, as for a small scientific package).
 */
function universe(): WheelSpec[] {
  const specs: WheelSpec[] = [];
  for (let j = 0; j < PROJECTS; j++) {
    const leaf = j >= PROJECTS / 2;
    const dep = (v: string) => (leaf ? [] : [`${project(PROJECTS / 2 + ((j + 3) % (PROJECTS / 2)))}>=${v}`]);
    specs.push({ name: project(j), version: '1.0', uploadTime: at('2018-06-01T00:00:00Z', 11 * j) });
    specs.push({ name: project(j), version: '2.0', uploadTime: at('2020-03-01T00:00:00Z', 47 * j), requiresDist: dep('1.0') });
    specs.push({ name: project(j), version: '3.0', uploadTime: at('2022-09-01T00:00:00Z', 23 * j), requiresDist: dep('2.0'), requiresPython: '>=3.9' });
  }
  return specs;
}

/** What commit i of repository r declares: it changes twice in 30 commits (a dependency added, then a floor raised). */
function requirementsOf(r: number, i: number): string[] {
  const reqs = [project(r), `${project(PROJECTS / 2 + r)}>=1.0`];
  if (i >= COMMITS * 0.4) reqs.push(project((r + 1) % (PROJECTS / 2)));
  if (i >= COMMITS * 0.8) reqs[0] = `${project(r)}>=2.0`;
  return reqs;
}

/** A repository of COMMITS commits (one every two days), pushed to a bare "remote"; returns the remote and the commits. */
function generateRepo(root: string, r: number): { bare: string; commits: Array<{ sha: string; when: string }> } {
  const work = path.join(root, `repo-${r}`);
  const bare = path.join(root, `repo-${r}.git`);
  mkdirSync(work, { recursive: true });
  execFileSync('git', ['init', '-q', '--bare', bare]);
  execFileSync('git', ['-C', bare, 'config', 'uploadpack.allowFilter', 'true']);
  const git = (when: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=Bench', '-c', 'user.email=bench@example.com', ...args], {
    cwd: work, env: { ...process.env, GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when }, encoding: 'utf8',
  }).trim();
  const start = at('2021-02-01T10:00:00Z', 25 * r);
  git(start, 'init', '-q', '-b', 'main');
  writeFileSync(path.join(work, 'asv.conf.json'), '{"version": 1, "benchmark_dir": "benchmarks", "pythons": ["3.9"]}\n');
  mkdirSync(path.join(work, `pkg${r}`), { recursive: true });
  const commits: Array<{ sha: string; when: string }> = [];
  for (let i = 0; i < COMMITS; i++) {
    const when = at(start, 2 * i);
    writeFileSync(path.join(work, 'pyproject.toml'),
      `[build-system]\nrequires = ["setuptools>=61", "wheel"]\n[project]\nname = "pkg${r}"\ndependencies = ${JSON.stringify(requirementsOf(r, i))}\n`);
    writeFileSync(path.join(work, `pkg${r}`, 'core.py'), `# change ${i}\nVALUE = ${i}\n`);
    git(when, 'add', '-A');
    git(when, 'commit', '-q', '-m', `Speed up core (#${i + 1})`);
    commits.push({ sha: git(when, 'rev-parse', 'HEAD'), when });
  }
  git(start, 'remote', 'add', 'origin', bare);
  git(start, 'push', '-q', 'origin', 'main');
  return { bare, commits };
}

/**
 * Stage 4 over 300 PR commits of 10 generated repositories (30 each, one
 * every two days, requirements changing twice), resolved by Debian's pip
 * against the index stand-in through the cutoff proxy, at the stage's
 * default concurrency. Timed from the daemon's start to idle (clones included).
 */
export async function run(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-bench-resolve-'));
  const server = await providePostgres();
  const throwaway = await createThrowawayDatabase(server.adminUrl, 'perfmine_bench');
  const conn = connect(throwaway.url, 8);
  let index: IndexStandin | undefined;
  try {
    await migrate(conn.pool);
    const wheels = path.join(root, 'wheels');
    const tw = performance.now();
    await buildWheels(wheels, universe(), { python: PYTHON });
    index = await IndexStandin.start({ wheelsDir: wheels });
    console.error(`bench resolve: ${PROJECTS * 3} wheels in ${Math.round(performance.now() - tw)} ms; generating ${REPOS} repositories x ${COMMITS} commits`);
    for (let r = 0; r < REPOS; r++) {
      const { bare, commits } = generateRepo(root, r);
      const repoId = (await sql<{ id: number }>`
        INSERT INTO repositories (owner, name, clone_url, metadata_fetched_at, last_scraped_at)
        VALUES ('bench', ${`lib${r}`}, ${bare}, now(), now()) RETURNING id`.execute(conn.db)).rows[0].id;
      for (const [i, c] of commits.entries()) {
        await sql`INSERT INTO pull_requests (repository_id, number, title, merged_at, merge_commit_sha, is_performance_commit_symbolic, is_performance_commit)
          VALUES (${repoId}, ${i + 1}, 'Speed up core', ${c.when}, ${c.sha}, true, true)`.execute(conn.db);
      }
    }
    const config = loadConfig({
      PERFMINE_SCHEDULE: 'false', PERFMINE_DATA_DIR: path.join(root, 'data'), PERFMINE_PYTHON_INDEX_URL: index.simpleUrl,
      PERFMINE_RESOLVER: 'pip', PERFMINE_RESOLVER_PYTHON: PYTHON,
    });
    const stage = resolvePackages(buildStageDeps(config, silentLogger));
    const daemon = new Daemon({ db: conn.db, connectionString: throwaway.url, stages: [stage] });
    console.error(`bench resolve: resolving ${REPOS * COMMITS} PR commits (concurrency ${stage.concurrency})`);
    const t0 = performance.now();
    await daemon.start();
    await daemon.whenIdle();
    const seconds = (performance.now() - t0) / 1000;
    await daemon.stop();

    const r = (await sql<any>`
      SELECT count(*)::int AS commits,
             count(*) FILTER (WHERE k.memo_hit)::int AS hits,
             count(*) FILTER (WHERE k.can_install)::int AS installable,
             count(*) FILTER (WHERE k.cutoff_used)::int AS at_cutoff
      FROM pull_requests p JOIN packages k ON k.id = p.package_id`.execute(conn.db)).rows[0];
    const resolutions = (await sql<any>`SELECT count(*)::int AS n FROM package_resolutions`.execute(conn.db)).rows[0].n;
    if (process.env.BENCH_DEBUG) console.error((await sql<any>`SELECT family_key, cutoff_day, valid_after, valid_until, cutoff_used, requirements FROM package_resolutions ORDER BY created_at`.execute(conn.db)).rows);
    const failed = (await sql<any>`SELECT count(*)::int AS n FROM leases WHERE failed_at IS NOT NULL`.execute(conn.db)).rows[0].n;
    const round = (x: number, d = 100) => Math.round(x * d) / d;
    console.log(JSON.stringify({
      bench: 'resolve',
      commits: r.commits,
      resolutions,
      memo_hit_rate: round(r.hits / r.commits, 1000),
      resolutions_per_s: round(resolutions / seconds),
      commits_per_s: round(r.commits / seconds),
      seconds: round(seconds),
      installable: r.installable,
      resolved_at_cutoff: r.at_cutoff,
      failed_rows: failed,
      concurrency: stage.concurrency,
      postgres: server.kind,
    }));
  } finally {
    await index?.close();
    await conn.close();
    await throwaway.drop();
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
