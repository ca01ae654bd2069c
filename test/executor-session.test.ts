/**
 * Executor sessions (stage 7 runs the trees, builds, tests and benchmarks of
 * one PR in one): the same tests for the local executor and, where a Docker
 * engine and its base image answer, the docker executor (skipped saying why
 * otherwise; PERFMINE_REQUIRE_DOCKER=1 makes that a failure).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { EnvironmentGoneError, type EnvironmentRef, type Executor } from '../src/adapters/executors/executor.js';
import { DEFAULT_PYTHON_PATHS } from '../src/adapters/executors/local/interpreters.js';
import { LocalExecutor } from '../src/adapters/executors/local/local-executor.js';
import { GitRepoStore, type RepoRef } from '../src/adapters/git/repo-store.js';
import { writeRepo } from './helpers/build-repos.js';
import { dockerTestSetup, ownContainers, testDockerExecutor } from './helpers/docker.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-session-'));
let ref: RepoRef;
let commit: string;

beforeAll(async () => {
  const repo = await writeRepo(path.join(root, 'repo'), { name: 'sesslib', kind: 'pure', prs: [{ number: 1, mergedAt: '2024-01-10T00:00:00Z' }] });
  ref = { id: 1, owner: 'test', name: 'sesslib', source: 'github', gitPath: null, cloneUrl: repo.bare };
  commit = repo.prs[0].baseSha;
}, 60_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function buildEnv(executor: Executor, dataDir: string): Promise<EnvironmentRef> {
  void dataDir;
  const built = await executor.build({
    key: 'session-test', repo: ref, commit, python: '3.11', requirements: [], indexUrl: 'http://127.0.0.1:9/simple/',
    script: 'true\n', timeoutMs: 300_000,
  }, new AbortController().signal);
  expect(built.ok, `${built.reason}\n${built.logTail}`).toBe(true);
  return built.env!;
}

/** Live (not zombie) processes whose command line contains `marker`. */
function liveWith(marker: string): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => {
    try {
      const state = readFileSync(`/proc/${n}/stat`, 'latin1').split(') ')[1][0];
      return state !== 'Z' && readFileSync(`/proc/${n}/cmdline`, 'latin1').includes(marker) ? [Number(n)] : [];
    } catch {
      return [];
    }
  });
}

const sh = (script: string) => ['bash', '-c', script];

function sessionSuite(kind: 'local' | 'docker', setup: () => Promise<{ executor: Executor; env: EnvironmentRef; docker?: Docker } | null>) {
  describe(`${kind} executor sessions`, () => {
    let executor: Executor;
    let env: EnvironmentRef;
    let docker: Docker | undefined;
    let skip: string | null = null;
    beforeAll(async () => {
      const s = await setup();
      if (!s) {
        skip = 'no docker engine or base image here';
        return;
      }
      ({ executor, env, docker } = s);
    }, 600_000);

    it('runs share the session\'s files (a tree copied once is seen by later runs); the environment itself is not written', async (ctx) => {
      if (skip) return ctx.skip();
      const s = await executor.openSession(env, { timeoutMs: 120_000 });
      try {
        const copied = await s.run(['cp', '-a', env.workdir, 'base'], { timeoutMs: 60_000 });
        expect(copied.code, copied.stderr).toBe(0);
        expect((await s.run(sh('echo changed > base/marker.txt && pwd'), { timeoutMs: 30_000 })).stdout.trim()).toBe(s.scratch);
        const seen = await s.run(['cat', 'marker.txt'], { timeoutMs: 30_000, cwd: 'base' });
        expect(seen.stdout.trim()).toBe('changed');
        expect((await s.run(sh(`test -e ${env.workdir}/marker.txt && echo yes || echo no`), { timeoutMs: 30_000 })).stdout.trim()).toBe('no');
        const dir = await s.put({ 'a/b.txt': 'from put', 'c.txt': 'second' });
        expect((await s.run(['cat', `${dir}/a/b.txt`, `${dir}/c.txt`], { timeoutMs: 30_000 })).stdout).toBe('from putsecond');
        const py = await s.run(['python', '-c', 'import sys; print(sys.executable); print(sys.stdin.read())'], { timeoutMs: 30_000, stdin: 'hello stdin' });
        expect(py.stdout.split('\n')[0]).toBe(env.python);
        expect(py.stdout.split('\n')[1]).toBe('hello stdin');
        // "No limit" as callers write it (2^31-1 ms): the run is not cut short.
        expect((await s.run(sh('sleep 1; echo slept'), { timeoutMs: 2 ** 31 - 1 })).stdout.trim()).toBe('slept');
        const leak = await s.run(sh('env'), { timeoutMs: 30_000 });
        expect(leak.stdout).not.toMatch(/DATABASE_URL|OPENAI_API_KEY|GITHUB_TOKEN/);
      } finally {
        await s.close();
      }
      if (kind === 'local') expect(existsSync(s.scratch)).toBe(false);
      await s.close(); // idempotent
    }, 120_000);

    it('every run is pinned to the session\'s CPUs', async (ctx) => {
      if (skip) return ctx.skip();
      const cpu = String(os.cpus().length - 1);
      const s = await executor.openSession(env, { timeoutMs: 60_000, cpus: cpu, memoryMb: 512 });
      try {
        const r = await s.run(sh('grep Cpus_allowed_list /proc/self/status'), { timeoutMs: 30_000 });
        expect(r.stdout.trim().split(/\s+/)[1]).toBe(cpu);
        if (kind === 'docker') {
          const net = await s.run(sh('ls /sys/class/net'), { timeoutMs: 30_000 });
          expect(net.stdout.trim().split(/\s+/)).toEqual(['lo']);
          const mem = await s.run(sh('cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'), { timeoutMs: 30_000 });
          expect(Number(mem.stdout.trim())).toBe(512 * 1024 * 1024);
        }
      } finally {
        await s.close();
      }
    }, 120_000);

    it('a run past its time limit is killed with what it started; close() kills what still runs and nothing is left', async (ctx) => {
      if (skip) return ctx.skip();
      const marker = `perfmine-session-marker-${kind}-${process.pid}`;
      const s = await executor.openSession(env, { timeoutMs: 120_000 });
      const t0 = performance.now();
      const timed = await s.run(sh(`(exec -a ${marker}-a sleep 300) & exec -a ${marker}-b sleep 300`), { timeoutMs: 2_000 });
      expect(timed.timedOut).toBe(true);
      expect(timed.code).toBeNull();
      expect(performance.now() - t0).toBeLessThan(20_000);
      if (kind === 'local') expect(liveWith(`${marker}-`)).toEqual([]);
      else expect((await s.run(sh(`ps -eo args | grep -c '^${marker}' || true`), { timeoutMs: 10_000 })).stdout.trim()).toBe('0');

      const pending = s.run(sh(`exec -a ${marker}-c sleep 300`), { timeoutMs: 300_000 });
      await new Promise((r) => setTimeout(r, 1000));
      await s.close();
      const r = await pending;
      expect(r.aborted).toBe(true);
      expect(r.code).toBeNull();
      if (kind === 'local') expect(liveWith(`${marker}-`)).toEqual([]);
      if (docker) expect(await ownContainers(docker)).toEqual([]);
      expect((await s.run(['true'], { timeoutMs: 1000 })).aborted).toBe(true);
    }, 120_000);

    it('aborting the session\'s signal closes it', async (ctx) => {
      if (skip) return ctx.skip();
      const abort = new AbortController();
      const s = await executor.openSession(env, { timeoutMs: 120_000, signal: abort.signal });
      const pending = s.run(['sleep', '300'], { timeoutMs: 300_000 });
      setTimeout(() => abort.abort(new Error('stop')), 500);
      const r = await pending;
      expect(r.aborted).toBe(true);
      await s.close();
      if (docker) expect(await ownContainers(docker)).toEqual([]);
    }, 60_000);

    it('the session closes itself at its deadline, killing what runs; a signal aborted before opening runs nothing', async (ctx) => {
      if (skip) return ctx.skip();
      const s = await executor.openSession(env, { timeoutMs: 4_000 });
      const t0 = performance.now();
      const r = await s.run(['sleep', '300'], { timeoutMs: 300_000 });
      expect(r.aborted).toBe(true);
      expect(performance.now() - t0).toBeLessThan(30_000);
      expect((await s.run(['true'], { timeoutMs: 1000 })).aborted).toBe(true);
      await s.close(); // the close the deadline began: the same promise
      if (kind === 'local') expect(existsSync(s.scratch)).toBe(false);
      if (docker) expect(await ownContainers(docker)).toEqual([]);

      const aborted = new AbortController();
      aborted.abort(new Error('stopped before it began'));
      // local opens a session that is already closed; docker cannot make its scratch in a killed container
      const opened = await executor.openSession(env, { timeoutMs: 120_000, signal: aborted.signal }).catch(() => null);
      if (opened) expect((await opened.run(['true'], { timeoutMs: 10_000 })).aborted).toBe(true);
      await opened?.close();
      if (docker) expect(await ownContainers(docker)).toEqual([]);
    }, 90_000);

    it('an environment that is gone cannot open a session', async (ctx) => {
      if (skip) return ctx.skip();
      const gone: EnvironmentRef = kind === 'local'
        ? { ...env, ref: env.ref.split(path.dirname(env.workdir)).join(path.join(path.dirname(path.dirname(env.workdir)), 'gone-environment')) }
        : { ...env, digest: `sha256:${'0'.repeat(64)}`, ref: `gone@sha256:${'0'.repeat(64)}` };
      // EnvironmentGoneError: stage 7 sends the PR back for a rebuild instead of pausing for the executor
      await expect(executor.openSession(gone, { timeoutMs: 10_000 })).rejects.toBeInstanceOf(EnvironmentGoneError);
    });
  });
}

const localData = path.join(root, 'local-data');
sessionSuite('local', async () => {
  const executor = new LocalExecutor({ dataDir: localData, repos: new GitRepoStore({ dataDir: localData }), pythonPaths: DEFAULT_PYTHON_PATHS });
  return { executor, env: await buildEnv(executor, localData) };
});

let dockerCleanup: (() => Promise<void>) | null = null;
afterAll(async () => { await dockerCleanup?.(); });
sessionSuite('docker', async () => {
  const { docker, skipReason } = await dockerTestSetup();
  if (skipReason) return null;
  const t = testDockerExecutor(docker);
  dockerCleanup = t.cleanup;
  return { executor: t.executor, env: await buildEnv(t.executor, t.dataDir), docker };
});
