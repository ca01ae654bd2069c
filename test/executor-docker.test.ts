import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import type { BuildRequest } from '../src/adapters/executors/executor.js';
import type { DockerBuildResult, DockerExecutor } from '../src/adapters/executors/docker/docker-executor.js';
import { containerName, findImage, reapOrphanContainers } from '../src/adapters/executors/docker/engine.js';
import { PgImageRecorder } from '../src/adapters/executors/docker/records.js';
import type { RepoRef } from '../src/adapters/git/repo-store.js';
import { generateDemoRepo, type GeneratedRepo } from '../src/demo/generated-repo/index.js';
import { IndexStandin } from '../src/standins/index/server.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { BASE_TEMPLATE, dockerTestSetup, ownContainers, testDockerExecutor, TEST_PYTHON } from './helpers/docker.js';
import { PythonRepo } from './helpers/python-repo.js';

// The docker executor against a real engine: images built from generated
// repositories, code run in them with no network and with limits. Where no
// engine answers (or the base image is missing) every test here is skipped,
// and the reason is printed and in the suite's name.

const { docker, skipReason } = await dockerTestSetup();
const run = promisify(execFile);

const FAKE_TOKEN = 'ghp_perfmineFakeToken0123456789abcdefXYZ';
const FAKE_KEY = 'sk-perfmineFakeOpenAiKey0123456789';

let root: string;
let demo: GeneratedRepo;
let index: IndexStandin;
let pure: PythonRepo;
let pureSha: string;
let t: ReturnType<typeof testDockerExecutor>;
let ex: DockerExecutor;
let cBuild: DockerBuildResult;

const demoRepo = (id = 1): RepoRef => ({ id, owner: 'perfmine-demo', name: 'fastlib', source: 'github', gitPath: null, cloneUrl: demo.bare });
const helpersPin = () => {
  const w = demo.wheels.find((x) => x.name === 'demo-helpers' && x.version === '1.1.0')!;
  return `demo-helpers==1.1.0 --hash=sha256:${w.sha256}`;
};
const cRequest = (over: Partial<BuildRequest> = {}): BuildRequest => ({
  key: 'fastlib-c', repo: demoRepo(), commit: demo.initialSha, python: TEST_PYTHON, requirements: [helpersPin()],
  indexUrl: index.simpleUrl, script: 'set -e\npython setup.py build_ext --inplace\n', timeoutMs: 240_000, ...over,
});
const never = () => new AbortController().signal;

describe.skipIf(skipReason !== null)(`docker executor${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'perfmine-docker-test-'));
    demo = await generateDemoRepo(path.join(root, 'gen'));
    index = await IndexStandin.start({ wheelsDir: demo.wheelDir });
    pure = new PythonRepo();
    pureSha = pure.commit({
      'pyproject.toml': '[build-system]\nrequires = ["setuptools>=61", "wheel"]\nbuild-backend = "setuptools.build_meta"\n\n' +
        '[project]\nname = "purelib"\nversion = "0.1.0"\ndependencies = ["demo-helpers>=1.0"]\n\n[tool.setuptools]\npackages = ["purelib"]\n',
      'purelib/__init__.py': 'from demo_helpers import ensure_sequence\n\n\ndef total(values):\n    return sum(ensure_sequence(values))\n',
      'docs/index.md': '# purelib\n',
    }, 'purelib');
    t = testDockerExecutor(docker);
    ex = t.executor;
  }, 120_000);

  afterAll(async () => {
    await index?.close();
    await t?.cleanup();
    if (root) await rm(root, { recursive: true, force: true });
    if (pure) await rm(path.dirname(pure.bare), { recursive: true, force: true });
  }, 120_000);

  it('is available: the engine answers and the base image exists', async () => {
    expect(await ex.available()).toEqual({ ok: true });
    expect((await ex.baseImages()).map((b) => b.python)).toEqual([TEST_PYTHON]);
  });

  it('builds a package with a C extension in place: dependency from the index, extension importable from the checkout', async () => {
    cBuild = await ex.build(cRequest(), never());
    expect(cBuild.reason, cBuild.logTail).toBeNull();
    expect(cBuild.ok).toBe(true);
    const env = cBuild.env!;
    expect(env.executor).toBe('docker');
    expect(env.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(env.ref).toBe(`${cBuild.layers.pr!.name}@${env.digest}`);
    expect(cBuild.layers.pr!.name).toMatch(new RegExp(`^${t.prefix}-pr:fastlib-c-[0-9a-f]{16}$`));
    expect(cBuild.layers.repository!.name).toMatch(new RegExp(`^${t.prefix}-repo:1-perfmine-demo-fastlib-py3\\.11-[0-9a-f]{12}$`));
    expect(cBuild.layers.base!.name).toBe(BASE_TEMPLATE.replace('{python}', TEST_PYTHON));
    expect(cBuild.layers.pr!.parentId).toBe(cBuild.layers.repository!.id);
    expect(cBuild.layers.repository!.parentId).toBe(cBuild.layers.base!.id);
    expect(cBuild.logTail).toMatch(/building 'fastlib\._native' extension/);

    const r = await ex.exec(env, ['python', '-c', [
      'import fastlib, fastlib._native as n, demo_helpers, sys',
      'print(fastlib.checksum(b"abc"), n.__file__, demo_helpers.__version__, sys.executable)',
    ].join('; ')], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [checksum, so, helpers, python] = r.stdout.trim().split(' ');
    expect(Number(checksum)).toBe(440920331); // FNV-1a of "abc"
    expect(so).toMatch(/^\/perfmine\/repo\/fastlib\/_native\..*\.so$/);
    expect(helpers).toBe('1.1.0');
    expect(python).toBe(env.python);

    // The checkout is the base commit, untouched but for ignored build products: no patch inside.
    const head = await ex.exec(env, ['sh', '-c', 'git rev-parse HEAD && git status --porcelain'], { timeoutMs: 30_000 });
    expect(head.stdout.trim()).toBe(demo.initialSha);
  }, 300_000);

  it('builds a pure-Python package with pip from offline wheels (build isolation too): installed, importable from anywhere', async () => {
    const b = await ex.build({
      key: 'purelib', repo: { id: 2, owner: 'acme', name: 'purelib', source: 'github', gitPath: null, cloneUrl: pure.bare },
      commit: pureSha, python: TEST_PYTHON, requirements: [helpersPin()], indexUrl: index.simpleUrl,
      script: 'set -e\npip install --no-deps -e .\n', timeoutMs: 240_000,
    }, never());
    expect(b.reason, b.logTail).toBeNull();
    expect(b.logTail).toMatch(/Successfully installed purelib-0\.1\.0/);
    const r = await ex.exec(b.env!, ['python', '-c', 'import purelib; print(purelib.total((1, 2, 3)), purelib.__file__)'], { cwd: 'docs', timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('6 /perfmine/repo/purelib/__init__.py');
  }, 300_000);

  it('makes a new repository layer only for a commit no layer holds: a later commit, a commit on no branch; older requests keep their images', async () => {
    const pureRepo: RepoRef = { id: 2, owner: 'acme', name: 'purelib', source: 'github', gitPath: null, cloneUrl: pure.bare };
    const request = (commit: string, key: string): BuildRequest => ({
      key, repo: pureRepo, commit, python: TEST_PYTHON, requirements: [helpersPin()], indexUrl: index.simpleUrl,
      script: 'set -e\npip install --no-deps -e .\n', timeoutMs: 240_000,
    });
    const first = await ex.build(request(pureSha, 'purelib'), never());
    expect(first.layers.pr!.reused).toBe(true); // built by the test above
    const later = pure.commit({ 'purelib/extra.py': 'VALUE = 2\n' }, 'a later commit');
    const moved = await ex.build(request(later, 'purelib-later'), never());
    expect(moved.reason, moved.logTail).toBeNull();
    expect(moved.layers.repository!.reused).toBe(false);
    expect(moved.layers.repository!.id).not.toBe(first.layers.repository!.id);
    // The repository moved on; the first request still names its images.
    const again = await ex.build(request(pureSha, 'purelib'), never());
    expect(again.env).toEqual(first.env);
    expect(again.layers.repository!.id).toBe(first.layers.repository!.id);

    // A squash-merged PR's head commit is on no branch (only refs/pull/N/head): fetched by itself.
    const squashed = demo.prs.find((p) => p.style === 'squash')!.pr.head_sha!;
    const c = await ex.build(cRequest({ key: 'pr-head', commit: squashed, script: 'git rev-parse HEAD\n' }), never());
    expect(c.reason, c.logTail).toBeNull();
    expect(c.logTail).toContain(squashed);
    expect(c.layers.repository!.id).not.toBe(cBuild.layers.repository!.id);
    await ex.discard(c.env!);
  }, 300_000);

  it('runs exec with no network: a server on the host loopback answers the same image only when given the host network', async () => {
    const server = http.createServer((_req, res) => res.end('hello from the host'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const probe = `import socket, urllib.request
print([n for _, n in socket.if_nameindex()])
print(urllib.request.urlopen("http://127.0.0.1:${port}/", timeout=5).read().decode())`;
    try {
      const isolated = await ex.exec(cBuild.env!, ['python', '-c', probe], { timeoutMs: 60_000 });
      expect(isolated.stdout.trim()).toBe("['lo']");
      expect(isolated.code).not.toBe(0);
      expect(isolated.stderr).toMatch(/Connection refused|Network is unreachable/);

      // The control: the same image and command with the host's network reaches the server.
      const control = await docker.createContainer({
        name: containerName('probe'), Image: cBuild.env!.digest, Cmd: ['python', '-c', probe], HostConfig: { NetworkMode: 'host' },
      });
      try {
        await control.start();
        const waited = await control.wait() as { StatusCode: number };
        const logs = (await control.logs({ stdout: true, stderr: true })).toString();
        expect(logs).toContain('hello from the host');
        expect(waited.StatusCode).toBe(0);
      } finally {
        await control.remove({ force: true });
      }
    } finally {
      server.close();
    }
  }, 120_000);

  it('runs exec with the limits: pinned CPUs, a memory limit that kills, a pids limit; files under $PERFMINE_SCRATCH; nothing persists', async () => {
    const env = cBuild.env!;
    for (const cpus of ['0', '1']) {
      const pinned = await ex.exec(env, ['python', '-c', 'import os; print(sorted(os.sched_getaffinity(0)))'], { cpus, timeoutMs: 30_000 });
      expect(pinned.stdout.trim()).toBe(`[${cpus}]`);
    }
    const hungry = await ex.exec(env, ['python', '-c', 'b = b"x" * (400 << 20); print("allocated", len(b))'], { memoryMb: 128, timeoutMs: 60_000 });
    expect(hungry.stdout).not.toContain('allocated');
    expect(hungry.code).toBe(137);
    expect(hungry.stderr).toContain('out of memory (limit 128 MiB)');
    const roomy = await ex.exec(env, ['python', '-c', 'b = b"x" * (40 << 20); print("allocated", len(b))'], { memoryMb: 256, timeoutMs: 60_000 });
    expect(roomy.stdout.trim()).toBe(`allocated ${40 << 20}`);

    const forks = await ex.exec(env, ['python', '-c', `import subprocess
procs = []
try:
    for _ in range(400):
        procs.append(subprocess.Popen(["sleep", "30"]))
    print("started all", len(procs))
except OSError as e:
    print("stopped at", len(procs))
for p in procs:
    p.kill()`], { timeoutMs: 60_000 });
    const stopped = /stopped at (\d+)/.exec(forks.stdout);
    expect(stopped, forks.stdout + forks.stderr).not.toBeNull();
    expect(Number(stopped![1])).toBeLessThan(256);

    const files = await ex.exec(env, ['sh', '-c', 'cat "$PERFMINE_SCRATCH/runner/args.json" && pwd && touch /perfmine/repo/left-behind && echo "[$GITHUB_TOKEN][$FOO]"'], {
      files: { 'runner/args.json': '{"rounds": 4}\n' }, cwd: 'benchmarks', env: { FOO: 'bar', GITHUB_TOKEN: FAKE_TOKEN }, timeoutMs: 30_000,
    });
    expect(files.stdout).toBe('{"rounds": 4}\n/perfmine/repo/benchmarks\n[][bar]\n');
    const fresh = await ex.exec(env, ['sh', '-c', 'test -e /perfmine/repo/left-behind && echo persisted || echo fresh'], { timeoutMs: 30_000 });
    expect(fresh.stdout.trim()).toBe('fresh');
    await expect(ex.exec(env, ['true'], { files: { '../escape': 'x' }, timeoutMs: 30_000 })).rejects.toThrow(/not a relative path/);
    expect(await ownContainers(docker)).toEqual([]);
  }, 180_000);

  it('kills an exec at its time limit or on abort, and removes its container', async () => {
    const slow = await ex.exec(cBuild.env!, ['sh', '-c', 'trap "" TERM; sleep 120'], { timeoutMs: 1500 });
    expect(slow).toMatchObject({ timedOut: true, aborted: false, code: null });
    expect(slow.durationMs).toBeLessThan(15_000);
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 1500);
    const stopped = await ex.exec(cBuild.env!, ['sleep', '120'], { timeoutMs: 60_000, signal: stop.signal });
    expect(stopped).toMatchObject({ timedOut: false, aborted: true, code: null });
    expect(stopped.durationMs).toBeLessThan(15_000);
    expect(await ownContainers(docker)).toEqual([]);
  }, 60_000);

  it('names the same images for the same request and reuses every layer; another script reuses the repository layer', async () => {
    const again = await ex.build(cRequest(), never());
    expect(again.ok).toBe(true);
    expect(again.env).toEqual(cBuild.env);
    expect(again.layers.pr).toMatchObject({ name: cBuild.layers.pr!.name, id: cBuild.layers.pr!.id, reused: true });
    expect(again.layers.repository).toMatchObject({ name: cBuild.layers.repository!.name, id: cBuild.layers.repository!.id, reused: true });
    expect(again.durationMs).toBeLessThan(5000);

    const other = await ex.build(cRequest({ script: 'set -e\npython setup.py build_ext --inplace\necho built again\n' }), never());
    expect(other.ok, other.logTail).toBe(true);
    expect(other.layers.repository).toMatchObject({ id: cBuild.layers.repository!.id, reused: true });
    expect(other.layers.pr!.reused).toBe(false);
    expect(other.layers.pr!.name).not.toBe(cBuild.layers.pr!.name);
    await ex.discard(other.env!);
    expect(await findImage(docker, other.layers.pr!.name)).toBeNull();
    expect(await findImage(docker, cBuild.layers.repository!.id)).not.toBeNull();
  }, 300_000);

  it('kills a build that hangs at its time limit, leaving no container and no image', async () => {
    const hung = await ex.build(cRequest({ key: 'hangs', script: 'trap "" TERM\n(setsid sleep 600 &)\necho "waiting for a lock that never comes"\nsleep 600\n', timeoutMs: 8000 }), never());
    expect(hung.ok).toBe(false);
    expect(hung.reason).toBe('timed out after 8 s');
    expect(hung.logTail).toContain('waiting for a lock that never comes'); // what the script did before it was killed
    expect(hung.durationMs).toBeLessThan(30_000);
    expect(hung.logTail).toMatch(/killed/);
    expect(hung.layers.pr).toBeNull();
    expect(await ownContainers(docker)).toEqual([]);
    const tags = (await docker.listImages()).flatMap((i) => i.RepoTags ?? []);
    expect(tags.filter((tag) => tag.startsWith(`${t.prefix}-pr:hangs-`))).toEqual([]);
  }, 120_000);

  it('gives a build script none of the host\'s secrets: not in its environment, its output or the image', async () => {
    const saved = { GITHUB_TOKEN: process.env.GITHUB_TOKEN, OPENAI_API_KEY: process.env.OPENAI_API_KEY };
    process.env.GITHUB_TOKEN = FAKE_TOKEN;
    process.env.OPENAI_API_KEY = FAKE_KEY;
    try {
      const b = await ex.build(cRequest({
        key: 'secrets',
        script: 'set -e\nenv\ntr "\\0" "\\n" < /proc/1/environ\nenv > build-env.txt\necho "token=[${GITHUB_TOKEN:-}] key=[${OPENAI_API_KEY:-}]"\npython setup.py build_ext --inplace\n',
      }), never());
      expect(b.reason, b.logTail).toBeNull();
      expect(b.logTail).toContain('HOME=/perfmine/home'); // the environment was printed...
      expect(b.logTail).toContain('token=[] key=[]');
      expect(b.logTail).not.toContain(FAKE_TOKEN); // ...without the host's secrets
      expect(b.logTail).not.toContain(FAKE_KEY);
      const inspect = await docker.getImage(b.env!.digest).inspect();
      expect(JSON.stringify(inspect.Config)).not.toContain(FAKE_TOKEN);
      // Nowhere in the image's files either: grep as root reads every file and exits 1 (no match).
      const grep = await docker.createContainer({
        name: containerName('probe'), Image: b.env!.digest, User: '0', NetworkDisabled: true,
        Cmd: ['grep', '-rlF', '--exclude-dir=proc', '--exclude-dir=sys', '--exclude-dir=dev', '-e', FAKE_TOKEN, '-e', FAKE_KEY, '/'],
      });
      try {
        await grep.start();
        const waited = await grep.wait() as { StatusCode: number };
        const logs = (await grep.logs({ stdout: true, stderr: true })).toString();
        expect(logs).toBe('');
        expect(waited.StatusCode).toBe(1);
      } finally {
        await grep.remove({ force: true });
      }
      const written = await ex.exec(b.env!, ['cat', 'build-env.txt'], { timeoutMs: 30_000 });
      expect(written.stdout).toContain('PATH=/perfmine/venv/bin:');
      await ex.discard(b.env!);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }, 300_000);

  it('says why a build failed: a failing script, a dependency the index lacks, a commit the clone lacks, no base image', async () => {
    const failing = await ex.build(cRequest({ key: 'fails', script: 'echo "compiling the impossible"\nexit 3\n' }), never());
    expect(failing).toMatchObject({ ok: false, reason: 'build script exited 3', env: null });
    expect(failing.logTail).toContain('compiling the impossible');

    const missing = await ex.build(cRequest({ key: 'nodep', requirements: ['demo-helpers==9.9.9'] }), never());
    expect(missing.ok).toBe(false);
    expect(missing.reason).toMatch(/^downloading the dependencies failed: .*demo-helpers==9\.9\.9/);

    const nocommit = await ex.build(cRequest({ key: 'nocommit', commit: 'f'.repeat(40) }), never());
    expect(nocommit.ok).toBe(false);
    expect(nocommit.reason).toBe(`commit ${'f'.repeat(40)} is not in perfmine-demo/fastlib (on no branch or tag, and not served by itself)`);

    const nobase = testDockerExecutor(docker, { baseImageTemplate: 'perfmine-test-nobase:py{python}' });
    try {
      const available = await nobase.executor.available();
      expect(available.ok).toBe(false);
      expect(!available.ok && available.reason).toMatch(/no base image: none of perfmine-test-nobase:py3\.11 exists .*perfmine images base/);
      const b = await nobase.executor.build(cRequest({ key: 'nobase' }), never());
      expect(b).toMatchObject({ ok: false, env: null });
      expect(b.reason).toMatch(/^no base image perfmine-test-nobase:py3\.11 for Python 3\.11 /);
    } finally {
      await nobase.cleanup();
    }
    expect(await ownContainers(docker)).toEqual([]);
  }, 300_000);

  it('records every layer by image id with the layer below (docker_images), and a discard', async () => {
    let db: TestDb | undefined;
    try {
      db = await createTestDb();
      const { rows } = await sql<{ id: number }>`INSERT INTO repositories (owner, name) VALUES ('perfmine-demo', 'fastlib') RETURNING id`.execute(db.db);
      const repoId = Number(rows[0].id);
      const recorded = testDockerExecutor(docker, { imagePrefix: t.prefix, dataDir: t.dataDir, recorder: new PgImageRecorder(db.db, 'test-engine') });
      const b = await recorded.executor.build(cRequest({ key: 'recorded', repo: demoRepo(repoId) }), never());
      expect(b.reason, b.logTail).toBeNull();
      const images = await sql<{ layer: string; image_id: string; parent_image_id: string | null; name: string; repository_id: string | null; commit_sha: string | null; build_key: string | null; discarded_at: Date | null; size_bytes: string }>`
        SELECT layer, image_id, parent_image_id, name, repository_id, commit_sha, build_key, discarded_at, size_bytes
        FROM docker_images WHERE engine = 'test-engine' ORDER BY id`.execute(db.db);
      const byLayer = Object.fromEntries(images.rows.map((r) => [r.layer, r]));
      expect(Object.keys(byLayer).sort()).toEqual(['base', 'pr', 'repository']);
      expect(byLayer.pr).toMatchObject({ image_id: b.env!.digest, parent_image_id: byLayer.repository.image_id, name: b.layers.pr!.name, commit_sha: demo.initialSha, build_key: 'recorded' });
      expect(Number(byLayer.pr.repository_id)).toBe(repoId);
      expect(byLayer.repository.parent_image_id).toBe(byLayer.base.image_id);
      expect(Number(byLayer.pr.size_bytes)).toBeGreaterThan(100e6);
      await recorded.executor.discard(b.env!);
      expect(await findImage(docker, b.env!.digest)).toBeNull();
      const after = await sql<{ discarded_at: Date | null }>`SELECT discarded_at FROM docker_images WHERE image_id = ${b.env!.digest}`.execute(db.db);
      expect(after.rows[0].discarded_at).toBeInstanceOf(Date);
      await expect(recorded.executor.exec(b.env!, ['true'], { timeoutMs: 30_000 })).rejects.toThrow(/No such image/i);
    } finally {
      await db?.destroy();
    }
  }, 300_000);

  it('removes containers whose perfmine process died', async () => {
    const name = containerName('exec').replace(new RegExp(`-${process.pid}-`), '-4194303-');
    await docker.createContainer({ name, Image: cBuild.env!.digest, Cmd: ['sleep', '60'] });
    const reaped = await reapOrphanContainers(docker);
    expect(reaped).toContain(name);
    await expect(docker.getContainer(name).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('perfmine images base reuses the base image, and says plainly which versions cannot be made offline', async () => {
    const cli = (args: string[]) => run('npx', ['tsx', 'src/cli.ts', 'images', 'base', ...args], { env: { ...process.env, PERFMINE_LOG_LEVEL: 'warn' } });
    const reused = await cli(['--python', TEST_PYTHON, '--tag', BASE_TEMPLATE.replace('{python}', TEST_PYTHON)]);
    expect(JSON.parse(reused.stdout)).toMatchObject({ reused: true, python: TEST_PYTHON });
    const other = await cli(['--python', '3.10', '--tag', 'perfmine-test-nobase:py3.10']).then(() => null, (err: { code: number; stderr: string }) => err);
    expect(other?.code).toBe(1);
    expect(other?.stderr).toMatch(/Python 3\.10 cannot be made offline: Debian ships one Python per release/);
  }, 60_000);
});
