/**
 * Stage 4 in a daemon: PRs judged performance changes get their environment
 * pinned as of their commit's day, from a repository cloned from a local
 * "remote" and an index stand-in serving wheels the test built. Nothing
 * resolves from this machine's pip configuration or wheel mirrors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { buildStageDeps } from '../src/stages/index.js';
import { resolvePackages } from '../src/stages/resolve-packages.js';
import type { IndexStandin } from '../src/standins/index/server.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { startIndex, SYSTEM_PYTHON, WORLD } from './helpers/python-index.js';
import { PythonRepo } from './helpers/python-repo.js';

let t: TestDb;
let index: IndexStandin;
let daemon: Daemon | undefined;
let remote: PythonRepo;
let repoId: number;
let prNumber = 0;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'perfmine-resolve-data-'));

beforeAll(async () => {
  t = await createTestDb();
  ({ index } = await startIndex(WORLD));
  remote = new PythonRepo();
  repoId = (await sql<{ id: number }>`
    INSERT INTO repositories (owner, name, clone_url, metadata_fetched_at, last_scraped_at)
    VALUES ('acme', 'lib', ${remote.bare}, now(), now()) RETURNING id`.execute(t.db)).rows[0].id;
});
afterEach(async () => {
  await daemon?.stop(5000);
  daemon = undefined;
});
afterAll(async () => {
  await index.close();
  await t.destroy();
});

async function runStage(env: Record<string, string> = {}): Promise<void> {
  const config = loadConfig({
    PERFMINE_SCHEDULE: 'false', PERFMINE_DATA_DIR: dataDir, PERFMINE_PYTHON_INDEX_URL: index.simpleUrl,
    PERFMINE_RESOLVER: 'pip', PERFMINE_RESOLVER_PYTHON: SYSTEM_PYTHON, PERFMINE_RESOLVE_TIMEOUT_S: '120', ...env,
  });
  const stage = { ...resolvePackages(buildStageDeps(config, silentLogger)), backoff: { baseMs: 100, maxMs: 400 } };
  daemon = new Daemon({ db: t.db, connectionString: t.url, stages: [stage], pollIntervalMs: 200, breaker: { baseSeconds: 1, maxSeconds: 2 } });
  await daemon.start();
  await daemon.whenIdle();
  await daemon.stop(5000);
  daemon = undefined;
}

/** A merged PR judged a performance change, on the commit `sha` made at `when`. */
async function perfPr(sha: string, when: string): Promise<number> {
  const number = ++prNumber;
  return (await sql<{ id: number }>`
    INSERT INTO pull_requests (repository_id, number, title, merged_at, merge_commit_sha, is_performance_commit_symbolic, is_performance_commit)
    VALUES (${repoId}, ${number}, ${`Speed up #${number}`}, ${when}, ${sha}, true, true) RETURNING id`.execute(t.db)).rows[0].id;
}

async function outcome(prId: number) {
  return (await sql<any>`
    SELECT p.can_install AS pr_can_install, p.env_resolved_at, k.*
    FROM pull_requests p LEFT JOIN packages k ON k.id = p.package_id WHERE p.id = ${prId}`.execute(t.db)).rows[0];
}

const pyproject = (deps: string[], extra = '') => `[project]\nname = "acme-lib"\ndependencies = ${JSON.stringify(deps)}\n${extra}`;

describe('resolve_packages', () => {
  it('pins the environment as of the commit day: the cutoff picks the older version, a later commit the newer; a re-run is one UPDATE', async () => {
    const old = remote.commit({ 'pyproject.toml': pyproject(['alpha', 'pytest>=6']), 'acme_lib/__init__.py': '' }, 'old', '2021-03-01T10:00:00Z');
    const newer = remote.commit({ 'README.md': 'later\n' }, 'newer', '2023-01-10T10:00:00Z');
    const a = await perfPr(old, '2021-03-01T10:00:00Z');
    const b = await perfPr(newer, '2023-01-10T10:00:00Z');
    await runStage();

    const ra = await outcome(a);
    expect(ra.pr_can_install).toBe(true);
    expect(ra.env_resolved_at).not.toBeNull();
    expect(ra.env_payload).toEqual([expect.stringMatching(/^alpha==1\.0 --hash=sha256:[0-9a-f]{64}$/)]);
    expect(ra).toMatchObject({
      python_version: '3.9', python_version_rung: 'date', resolver: 'pip', cutoff_used: true, resolved_without_cutoff: false,
      packaging_root: '', packaging_root_rule: 'single', index_url: index.simpleUrl, memo_hit: false,
    });
    expect(ra.resolver_version).toMatch(/^\d+\.\d+/);
    expect(new Date(ra.cutoff_at).toISOString()).toBe('2021-03-01T00:00:00.000Z');
    expect(ra.declared_requirements).toEqual([
      { requirement: 'alpha', source: 'pyproject.toml [project].dependencies' },
      { requirement: 'pytest>=6', source: 'pyproject.toml [project].dependencies' },
    ]);
    expect(ra.dropped_requirements).toEqual([expect.objectContaining({ requirement: 'pytest>=6', reason: expect.stringMatching(/base tooling/) })]);

    const rb = await outcome(b);
    expect(rb.python_version).toBe('3.11');
    expect(rb.env_payload.map((l: string) => l.split(' ')[0])).toEqual(['alpha==2.0', 'beta==2.0']);

    // No cutoff: the 2021 commit gets today's index too. Re-running is one UPDATE.
    await sql`UPDATE pull_requests SET env_resolved_at = NULL WHERE id = ${a}`.execute(t.db);
    await runStage({ PERFMINE_RESOLVE_CUTOFF: 'false' });
    const again = await outcome(a);
    expect(again.env_payload.map((l: string) => l.split(' ')[0])).toEqual(['alpha==2.0', 'beta==2.0']);
    expect(again.cutoff_used).toBe(false);
    expect(again.id).toBe(ra.id);
    const runs = (await sql<any>`SELECT count(*)::int AS n FROM stage_runs WHERE stage = 'resolve_packages' AND subject_id = ${a} AND outcome = 'succeeded'`.execute(t.db)).rows[0];
    expect(runs.n).toBe(2);
  }, 120_000);

  it('adjacent commits with the same requirements share one resolution (the memo); PRs of one commit share the package row', async () => {
    const c1 = remote.commit({ 'pyproject.toml': pyproject(['alpha<2']) }, 'c1', '2022-02-02T08:00:00Z');
    const c2 = remote.commit({ 'acme_lib/x.py': 'X = 1\n' }, 'c2', '2022-02-02T18:00:00Z');
    const p1 = await perfPr(c1, '2022-02-02T08:00:00Z');
    await runStage();
    const p2 = await perfPr(c2, '2022-02-02T18:00:00Z');
    const p3 = await perfPr(c2, '2022-02-02T18:00:00Z');
    await runStage();
    const [r1, r2, r3] = [await outcome(p1), await outcome(p2), await outcome(p3)];
    expect(r1.memo_hit).toBe(false);
    expect(r2.memo_hit || r3.memo_hit).toBe(true);
    expect(r2.memo_key).toBe(r1.memo_key);
    expect(r2.env_payload).toEqual(r1.env_payload);
    expect(r3.id).toBe(r2.id);
    const memo = (await sql<any>`SELECT hits, can_install FROM package_resolutions WHERE memo_key = ${r1.memo_key}`.execute(t.db)).rows[0];
    expect(memo.hits).toBeGreaterThanOrEqual(2);
    const costs = (await sql<any>`SELECT sum((cost->>'memo_hits')::int)::int AS hits FROM stage_runs WHERE subject_id IN (${p2}, ${p3})`.execute(t.db)).rows[0];
    expect(costs.hits).toBe(2);
  }, 120_000);

  it('the memo holds across days while no file the resolver read was uploaded in between', async () => {
    const base = (await sql<any>`SELECT memo_key FROM packages WHERE memo_key IS NOT NULL AND env_payload::text LIKE '%alpha==1.0%' AND python_version = '3.10'`.execute(t.db)).rows[0].memo_key;
    // alpha<2 at 2022-02-02 read alpha's page: 1.0 (2020-01-10) visible, 2.0 (2022-06-01) hidden.
    const weeksLater = remote.commit({ 'acme_lib/y.py': 'Y = 1\n' }, 'later', '2022-03-15T09:00:00Z');
    const afterUpload = remote.commit({ 'acme_lib/z.py': 'Z = 1\n' }, 'after upload', '2022-07-01T09:00:00Z');
    const [p1, p2] = [await perfPr(weeksLater, '2022-03-15T09:00:00Z'), await perfPr(afterUpload, '2022-07-01T09:00:00Z')];
    await runStage();
    const [r1, r2] = [await outcome(p1), await outcome(p2)];
    expect(r1).toMatchObject({ memo_hit: true, memo_key: base, python_version: '3.10' });
    expect(new Date(r1.cutoff_at).toISOString()).toBe('2022-03-15T00:00:00.000Z');
    // A newer alpha appeared before this cutoff: the old answer may no longer hold, so it is resolved again.
    expect(r2).toMatchObject({ memo_hit: false, python_version: '3.10' });
    expect(r2.memo_key).not.toBe(base);
    const window = (await sql<any>`SELECT valid_after, valid_until FROM package_resolutions WHERE memo_key = ${base}`.execute(t.db)).rows[0];
    expect([window.valid_after.toISOString(), window.valid_until.toISOString()]).toEqual(['2020-01-10T00:00:00.000Z', '2022-06-01T00:00:00.000Z']);
  }, 120_000);

  it('a conflict is can_install = false with pip\'s own reason (after the retry without the cutoff)', async () => {
    const sha = remote.commit({ 'pyproject.toml': pyproject(['gamma', 'alpha>=2']) }, 'conflict', '2023-02-01T00:00:00Z');
    const pr = await perfPr(sha, '2023-02-01T00:00:00Z');
    await runStage();
    const r = await outcome(pr);
    expect(r.pr_can_install).toBe(false);
    expect(r.install_reason).toMatch(/^pip could not resolve \(without the cutoff either\): /);
    expect(r.install_reason).toMatch(/Cannot install .*alpha.* because these package versions have conflicting dependencies/s);
    expect(r.cutoff_note).toMatch(/^resolution at the cutoff failed: /);
    expect(r.resolved_without_cutoff).toBe(true);
  }, 120_000);

  it('setup.cfg and setup.py are read, never run; computed values are recorded as unreadable', async () => {
    const marker = path.join(mkdtempSync(path.join(os.tmpdir(), 'perfmine-marker-')), 'setup-py-ran');
    const cfg = remote.commit({
      'pyproject.toml': null,
      'setup.cfg': '[metadata]\nname = acme-lib\n[options]\npython_requires = >=3.8, <3.10\ninstall_requires =\n    alpha\n',
    }, 'cfg', '2023-03-01T00:00:00Z');
    const py = remote.commit({
      'setup.cfg': null,
      'setup.py': `import os\nfrom setuptools import setup\nopen(${JSON.stringify(marker)}, "w").write("ran")\nDEPS = ["alpha<2", "numpy-lite"]\n` +
        `def extras():\n    return {"test": ["pytest"]}\nsetup(name="acme-lib", install_requires=DEPS, extras_require=extras(),\n` +
        `      classifiers=["Programming Language :: Python :: 3.10"])\n`,
    }, 'py', '2023-03-02T00:00:00Z');
    const [pCfg, pPy] = [await perfPr(cfg, '2023-03-01T00:00:00Z'), await perfPr(py, '2023-03-02T00:00:00Z')];
    await runStage();
    const rc = await outcome(pCfg);
    expect(rc).toMatchObject({ can_install: true, python_version: '3.9', python_version_rung: 'requires-python' });
    expect(rc.declared_requirements).toEqual([{ requirement: 'alpha', source: 'setup.cfg [options].install_requires' }]);
    const rp = await outcome(pPy);
    expect(existsSync(marker)).toBe(false);
    expect(rp).toMatchObject({ can_install: true, python_version: '3.10', python_version_rung: 'classifiers' });
    expect(rp.env_payload.map((l: string) => l.split(' ')[0])).toEqual(['alpha==1.0', 'numpy-lite==1.5']);
    expect(rp.dropped_requirements).toEqual([
      expect.objectContaining({ source: 'setup.py setup(extras_require=...)', reason: 'computed value extras(); setup.py is never run' }),
    ]);
  }, 120_000);

  it('bad input is a recorded outcome, and the daemon stays up', async () => {
    const cases: Array<[Record<string, string | Buffer | null>, RegExp]> = [
      [{ 'setup.py': null, 'pyproject.toml': '[project\nname = "x"\n' }, /^pyproject\.toml is not valid TOML: /],
      [{ 'pyproject.toml': null, 'setup.py': 'from setuptools import setup\nsetup(name="x",\n' }, /^setup\.py has a syntax error \(line \d+\)/],
      [{ 'setup.py': null, 'pyproject.toml': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 1, 2, 3]) }, /^pyproject\.toml is a binary file, not text$/],
      [{ 'pyproject.toml': pyproject(['alpha==9.9']) }, /No matching distribution found for alpha==9\.9/],
      [{ 'pyproject.toml': null, 'acme_lib/__init__.py': null, 'README.md': 'no package here\n' }, /^no packaging root/],
    ];
    const prs: number[] = [];
    let day = 10;
    for (const [files] of cases) {
      const when = `2023-04-${day++}T00:00:00Z`;
      prs.push(await perfPr(remote.commit(files, 'bad', when), when));
    }
    await runStage();
    for (const [i, [, reason]] of cases.entries()) {
      const r = await outcome(prs[i]);
      expect(r.pr_can_install, String(reason)).toBe(false);
      expect(r.install_reason).toMatch(reason);
    }
    const failed = (await sql<any>`SELECT count(*)::int AS n FROM leases WHERE stage = 'resolve_packages' AND failed_at IS NOT NULL`.execute(t.db)).rows[0];
    expect(failed.n).toBe(0);
    const noRoot = await outcome(prs[4]);
    expect(noRoot.packaging_root).toBeNull();
  }, 120_000);

  it('a remote that cannot be cloned is a recorded outcome, not hours of retries', async () => {
    const gone = (await sql<{ id: number }>`
      INSERT INTO repositories (owner, name, clone_url, metadata_fetched_at, last_scraped_at)
      VALUES ('acme', 'gone', '/nonexistent/perfmine/gone.git', now(), now()) RETURNING id`.execute(t.db)).rows[0].id;
    const ids = [];
    for (const n of [1, 2]) {
      ids.push((await sql<{ id: number }>`
        INSERT INTO pull_requests (repository_id, number, merged_at, merge_commit_sha, is_performance_commit_symbolic, is_performance_commit)
        VALUES (${gone}, ${n}, '2023-01-01', ${'ab'.repeat(20)}, true, true) RETURNING id`.execute(t.db)).rows[0].id);
    }
    await runStage();
    for (const id of ids) {
      const r = await outcome(id);
      expect(r.pr_can_install).toBe(false);
      expect(r.install_reason).toMatch(/^the repository could not be fetched: git clone .*gone\.git/);
    }
  }, 120_000);

  it('an index that is down pauses the stage (nothing failed) and the rows resolve when it is back', async () => {
    const sha = remote.commit({ 'pyproject.toml': pyproject(['alpha', 'numpy-lite']) }, 'down', '2023-05-01T00:00:00Z');
    const pr = await perfPr(sha, '2023-05-01T00:00:00Z');
    index.inject({ kind: 'http-503', durationMs: 2500, match: 'simple' });
    await runStage();
    const r = await outcome(pr);
    expect(r.can_install).toBe(true);
    const pauses = (await sql<any>`SELECT count(*)::int AS n FROM stage_runs WHERE stage = 'resolve_packages' AND subject_id = ${pr} AND outcome <> 'succeeded'`.execute(t.db)).rows[0];
    expect(pauses.n).toBeGreaterThanOrEqual(1);
    // The index answered again: its breaker closed (the next outage starts from the shortest pause).
    expect((await sql<any>`SELECT trips FROM rate_limit_pauses WHERE group_name = 'python-index'`.execute(t.db)).rows[0].trips).toBe(0);
  }, 120_000);

  it('a running daemon picks a PR up when the judge sets is_performance_commit', async () => {
    const sha = remote.commit({ 'pyproject.toml': pyproject(['numpy-lite']) }, 'woken', '2023-06-01T00:00:00Z');
    const pr = await perfPr(sha, '2023-06-01T00:00:00Z');
    await sql`UPDATE pull_requests SET is_performance_commit = NULL WHERE id = ${pr}`.execute(t.db);
    const config = loadConfig({
      PERFMINE_SCHEDULE: 'false', PERFMINE_DATA_DIR: dataDir, PERFMINE_PYTHON_INDEX_URL: index.simpleUrl,
      PERFMINE_RESOLVER: 'pip', PERFMINE_RESOLVER_PYTHON: SYSTEM_PYTHON,
    });
    // A slow poll: only the doorbell of the judge's UPDATE can wake the stage in time.
    daemon = new Daemon({ db: t.db, connectionString: t.url, stages: [resolvePackages(buildStageDeps(config, silentLogger))], pollIntervalMs: 60_000 });
    await daemon.start();
    await daemon.whenIdle();
    expect((await outcome(pr)).env_resolved_at).toBeNull();
    await sql`UPDATE pull_requests SET is_performance_commit = true WHERE id = ${pr}`.execute(t.db);
    const deadline = Date.now() + 30_000;
    while (!(await outcome(pr)).env_resolved_at && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await outcome(pr)).toMatchObject({ pr_can_install: true, env_payload: [expect.stringMatching(/^numpy-lite==1\.5 /)] });
  }, 120_000);

  it('the documented SQL re-resolves what an older resolver produced', async () => {
    await sql`UPDATE packages SET resolver_version = '0.0-old' WHERE id = (SELECT package_id FROM pull_requests WHERE number = 1 AND repository_id = ${repoId})`.execute(t.db);
    const touched = await sql`
      UPDATE pull_requests p SET env_resolved_at = NULL FROM packages k, resolvers_in_use r
      WHERE p.package_id = k.id AND r.stage = 'resolve_packages'
        AND (k.resolver, k.resolver_version) IS DISTINCT FROM (r.resolver, r.resolver_version)`.execute(t.db);
    expect(Number(touched.numAffectedRows)).toBe(1);
    await runStage();
    const r = (await sql<any>`SELECT k.resolver_version, p.env_resolved_at FROM pull_requests p JOIN packages k ON k.id = p.package_id WHERE p.number = 1`.execute(t.db)).rows[0];
    expect(r.resolver_version).not.toBe('0.0-old');
    expect(r.env_resolved_at).not.toBeNull();
  }, 120_000);
});
