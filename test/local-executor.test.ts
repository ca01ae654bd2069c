/**
 * The local executor itself (stage 6's tests run it through the stage): which
 * interpreter it finds, the shared environment made once for builds asking at
 * the same time, each build's own layer over it, and what a command run in
 * an environment sees.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BuildRequest, BuildResult } from '../src/adapters/executors/executor.js';
import { DEFAULT_PYTHON_PATHS, expandPattern, globFiles, InterpreterFinder } from '../src/adapters/executors/local/interpreters.js';
import { LocalExecutor } from '../src/adapters/executors/local/local-executor.js';
import { GitRepoStore, type RepoRef } from '../src/adapters/git/repo-store.js';
import type { IndexStandin } from '../src/standins/index/server.js';
import { writeRepo, type WrittenRepo } from './helpers/build-repos.js';
import { startIndex } from './helpers/python-index.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-local-exec-'));
const dataDir = path.join(root, 'data');
let index: IndexStandin;
let wheels: string;
let repo: WrittenRepo;
let ref: RepoRef;
let executor: LocalExecutor;
const signal = new AbortController().signal;

const hashOf = (file: string) => createHash('sha256').update(readFileSync(path.join(wheels, file))).digest('hex');
const pin = (name: string) => {
  const file = readdirSync(wheels).find((f) => f.startsWith(`${name.replace(/-/g, '_')}-`))!;
  return `${name}==1.0 --hash=sha256:${hashOf(file)}`;
};

function request(o: Partial<BuildRequest> = {}): BuildRequest {
  return {
    key: 'test', repo: ref, commit: repo.prs[0].baseSha, python: '3.11', requirements: [pin('perfmine-localdep')],
    indexUrl: index.simpleUrl, script: 'set -e\npython -c "import perfmine_localdep"\n', timeoutMs: 300_000, ...o,
  };
}

beforeAll(async () => {
  ({ index, dir: wheels } = await startIndex([
    { name: 'perfmine-localdep', version: '1.0', uploadTime: '2020-01-01T00:00:00Z' },
    { name: 'perfmine-extra', version: '1.0', uploadTime: '2020-01-01T00:00:00Z' },
  ]));
  repo = await writeRepo(path.join(root, 'repo'), { name: 'locallib', kind: 'pure', prs: [{ number: 1, mergedAt: '2024-01-10T00:00:00Z' }] });
  ref = { id: 1, owner: 'test', name: 'locallib', source: 'github', gitPath: null, cloneUrl: repo.bare };
  executor = new LocalExecutor({ dataDir, repos: new GitRepoStore({ dataDir }), pythonPaths: DEFAULT_PYTHON_PATHS });
});

afterAll(async () => {
  await index?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('interpreters', () => {
  it('looks where PERFMINE_PYTHON_PATHS says ({v}, ~, $VAR, *): the first that runs as that minor version wins; none found says where it looked', async () => {
    expect(expandPattern('~/.pyenv/versions/{v}.*/bin/python{v}', '3.9', { HOME: '/home/u' })).toBe('/home/u/.pyenv/versions/3.9.*/bin/python3.9');
    expect(expandPattern('$PYENV_ROOT/versions/{v}.*/bin/python{v}', '3.9', {})).toBeNull();
    const dir = path.join(root, 'pythons');
    for (const v of ['3.11.1', '3.11.10', '3.9.0']) mkdirSync(path.join(dir, v, 'bin'), { recursive: true });
    // A "3.9" that is really 3.11 is rejected; the real 3.11 wrappers are found, newest first.
    writeFileSync(path.join(dir, '3.9.0', 'bin', 'python3.9'), '#!/bin/sh\nexec /usr/bin/python3.11 "$@"\n');
    writeFileSync(path.join(dir, '3.11.10', 'bin', 'python3.11'), '#!/bin/sh\nexec /usr/bin/python3.11 "$@"\n');
    writeFileSync(path.join(dir, '3.11.1', 'bin', 'python3.11'), '#!/bin/sh\nexit 3\n');
    for (const v of ['3.11.1', '3.11.10', '3.9.0']) chmodSync(path.join(dir, v, 'bin', `python${v.split('.').slice(0, 2).join('.')}`), 0o755);
    expect(globFiles(path.join(dir, '3.11.*/bin/python3.11'))).toEqual([path.join(dir, '3.11.10/bin/python3.11'), path.join(dir, '3.11.1/bin/python3.11')]);
    const finder = new InterpreterFinder([`${dir}/{v}.*/bin/python{v}`]);
    const found = await finder.find('3.11');
    expect(found.found).toMatchObject({ path: path.join(dir, '3.11.10/bin/python3.11'), realPath: path.join(dir, '3.11.10/bin/python3.11') });
    expect(found.found!.version).toMatch(/^3\.11\.\d+$/);
    const wrong = await finder.find('3.9');
    expect(wrong).toMatchObject({ found: null, looked: [`${dir}/3.9.*/bin/python3.9`] });
    expect((wrong as { rejected: string[] }).rejected[0]).toMatch(/python3\.9: is Python 3\.11\.\d+$/);

    const none = await executor.build(request({ python: '3.4' }), signal);
    expect(none).toMatchObject({ ok: false, failedStep: 'interpreter', env: null });
    expect(none.reason).toMatch(/^no interpreter for Python 3\.4 \(looked in \/usr\/bin\/python3\.4, \/usr\/local\/bin\/python3\.4, .*PERFMINE_PYTHON_PATHS says where to look\)$/);
  });
});

describe('environments', () => {
  let a: BuildResult;
  let b: BuildResult;

  it('builds asking for the same pins at once share one environment, created once; each build has its own checkout and layer', async () => {
    [a, b] = await Promise.all([executor.build(request({ key: 'a' }), signal), executor.build(request({ key: 'b' }), signal)]);
    expect(a.ok, `${a.reason}\n${a.logTail}`).toBe(true);
    expect(b.ok, `${b.reason}\n${b.logTail}`).toBe(true);
    const shared = readdirSync(path.join(dataDir, 'envs', 'python'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(shared).toEqual([expect.stringMatching(/^py3\.11-[0-9a-f]{20}$/)]);
    const created = [a, b].filter((r) => r.logTail.includes('creating the environment')).length;
    expect(created).toBe(1);
    expect(a.env!.ref).toMatch(/^local:.*\/envs\/builds\/a-[0-9a-f]{8}\/venv#.*\/envs\/builds\/a-[0-9a-f]{8}\/src$/);
    expect(a.env!.workdir).not.toBe(b.env!.workdir);
    expect(a.env!.digest).not.toBe(b.env!.digest); // the key is part of the identity
    expect(existsSync(path.join(a.env!.workdir, 'locallib', 'core.py'))).toBe(true);
  }, 300_000);

  it('what a build installs lands in its own layer, never in the shared environment', async () => {
    const install = await executor.exec(a.env!, ['pip', 'install', '--no-deps', 'perfmine-extra==1.0'], { timeoutMs: 120_000 });
    expect(install.code, install.stderr).toBe(0);
    const imports = (env: BuildResult['env']) => executor.exec(env!, ['python', '-c', 'import perfmine_extra, perfmine_localdep'], { timeoutMs: 60_000 });
    expect((await imports(a.env)).code).toBe(0);
    const inB = await imports(b.env);
    expect(inB.code).not.toBe(0);
    expect(inB.stderr).toMatch(/No module named 'perfmine_extra'/);
  }, 120_000);

  it('a command runs with the layer first on PATH, the checkout as cwd, its own HOME, no pip configuration, no secret, pinned to the CPUs asked for', async () => {
    process.env.GITHUB_TOKEN = 'ghp_localexecutortest0123456789abcdefgh';
    try {
      const script = 'import json, os, sys; print(json.dumps({"prefix": sys.prefix, "cwd": os.getcwd(), "env": dict(os.environ), "cpus": sorted(os.sched_getaffinity(0)), '
        + '"scratch": open(os.path.join(os.environ["PERFMINE_SCRATCH"], "note.txt")).read()}))';
      const r = await executor.exec(a.env!, ['python', '-c', script], {
        timeoutMs: 60_000, cpus: '0', files: { 'note.txt': 'hello' }, env: { EXTRA: 'yes', MY_API_TOKEN: 'dropped' },
      });
      expect(r.code, r.stderr).toBe(0);
      const seen = JSON.parse(r.stdout);
      expect(seen.prefix).toBe(path.dirname(path.dirname(a.env!.python)));
      expect(seen.cwd).toBe(a.env!.workdir);
      expect(seen.cpus).toEqual([0]);
      expect(seen.scratch).toBe('hello');
      expect(seen.env.PATH.split(':')[0]).toBe(path.dirname(a.env!.python));
      expect(seen.env).toMatchObject({ EXTRA: 'yes', PIP_CONFIG_FILE: '/dev/null', PIP_INDEX_URL: index.simpleUrl, VIRTUAL_ENV: path.dirname(path.dirname(a.env!.python)) });
      expect(seen.env.HOME).toBe(path.join(path.dirname(a.env!.workdir), 'home'));
      expect(seen.env.GITHUB_TOKEN).toBeUndefined();
      expect(seen.env.MY_API_TOKEN).toBeUndefined();
      expect(existsSync(seen.env.PERFMINE_SCRATCH)).toBe(false); // removed after the command
    } finally {
      delete process.env.GITHUB_TOKEN;
    }
    const slow = await executor.exec(a.env!, ['sleep', '30'], { timeoutMs: 500 });
    expect(slow).toMatchObject({ timedOut: true, code: null });
    expect(slow.durationMs).toBeLessThan(5000);
  }, 120_000);

  it('pins whose hash does not match fail the build at the dependencies, with pip\'s reason; a discarded environment is gone', async () => {
    const bad = await executor.build(request({ key: 'bad', requirements: [`perfmine-extra==1.0 --hash=sha256:${'0'.repeat(64)}`] }), signal);
    expect(bad).toMatchObject({ ok: false, failedStep: 'dependencies', env: null });
    expect(bad.reason).toMatch(/^installing dependencies failed: .*(DO NOT MATCH THE HASHES|do not match the hashes)/is);
    expect(readdirSync(path.join(dataDir, 'envs', 'builds')).some((n) => n.startsWith('bad-'))).toBe(false);

    await executor.discard(b.env!);
    expect(existsSync(path.dirname(b.env!.workdir))).toBe(false);
    await expect(executor.exec(b.env!, ['true'], { timeoutMs: 1000 })).rejects.toThrow(/is gone/);
    await expect(executor.discard({ ...a.env!, ref: 'local:/etc/venv#/etc/src' })).rejects.toThrow(/not an environment under/);
  }, 300_000);
});
