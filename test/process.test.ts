import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childEnv, isSecretName } from '../src/adapters/process/child-env.js';
import { pdeathsigWrapper, runProcess } from '../src/adapters/process/run-process.js';
import { reapOrphans } from '../src/adapters/process/registry.js';

// Every test here checks the process table itself (/proc), as `ps` would.
const scratch = mkdtempSync(path.join(os.tmpdir(), 'perfmine-process-test-'));
/** Owner processes the tests start; killed (and their families reaped) even when a test fails. */
const owners: Array<{ pid: number; dir: string }> = [];
afterAll(async () => {
  for (const { pid, dir } of owners.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch { /* gone */ }
    await new Promise((r) => setTimeout(r, 100));
    await reapOrphans(dir, { graceMs: 100 });
  }
  rmSync(scratch, { recursive: true, force: true });
});

const marker = () => `perfmine-marker-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

/** Live (not zombie) processes whose last command-line argument is `tag`. */
function liveWith(tag: string): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => {
    try {
      const state = readFileSync(`/proc/${n}/stat`, 'latin1').split(') ')[1][0];
      const args = readFileSync(`/proc/${n}/cmdline`, 'latin1').split('\0').filter(Boolean);
      return state !== 'Z' && state !== 'X' && args.at(-1) === tag ? [Number(n)] : [];
    } catch {
      return [];
    }
  });
}

/** Live processes in a process group. */
function liveInGroup(pgid: number): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => {
    try {
      const fields = readFileSync(`/proc/${n}/stat`, 'latin1').split(') ')[1].split(' ');
      return fields[0] !== 'Z' && Number(fields[2]) === pgid ? [Number(n)] : [];
    } catch {
      return [];
    }
  });
}

async function until<T>(probe: () => T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A Python program that ignores SIGTERM and sleeps, named by `tag` on its command line. */
const stubborn = (tag: string) => ['python3', '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)', tag];

describe('childEnv', () => {
  it('passes the allow-list and extras, never a secret-looking name unless allowed by name', () => {
    const from = {
      PATH: '/usr/bin', HOME: '/home/u', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'UTC', TMPDIR: '/tmp', TERM: 'xterm',
      GITHUB_TOKEN: 'ghp_x', GITHUB_TOKENS: 'a,b', OPENAI_API_KEY: 'sk-x', DATABASE_URL: 'postgres://u:p@h/d',
      PGPASSWORD: 'p', PGHOST: 'h', AWS_SECRET_ACCESS_KEY: 'x', GIT_DIR: '/elsewhere/.git', PYTHONPATH: '/evil', LD_PRELOAD: '/evil.so',
    };
    const env = childEnv({ PYTHONHASHSEED: '0', MY_API_TOKEN: 't', DB_PASSWORD: 'p', GIT_WORK_TREE: '/x', HOME: undefined }, { from });
    expect(env).toEqual({ PATH: '/usr/bin', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'UTC', TMPDIR: '/tmp', TERM: 'xterm', PYTHONHASHSEED: '0' });
    expect(childEnv({ HF_TOKEN: 'hf_x' }, { from, allow: ['HF_TOKEN'] }).HF_TOKEN).toBe('hf_x');
    for (const name of ['GITHUB_TOKEN', 'OPENAI_API_KEY', 'DATABASE_URL', 'PGPASSFILE', 'PGUSER', 'X_SECRET', 'SOME_PASSWORD', 'ssh_auth_sock']) {
      expect(isSecretName(name), name).toBe(true);
    }
    for (const name of ['PATH', 'GIT_AUTHOR_NAME', 'PYTHONHASHSEED', 'LANG']) expect(isSecretName(name), name).toBe(false);
  });

  it('a secret in our environment never reaches a child process (env, python)', async () => {
    const secrets = { GITHUB_TOKEN: 'ghp_leaktest000000000000', OPENAI_API_KEY: 'sk-leaktest00000000', DATABASE_URL: 'postgres://u:leakpw@h/db', PGPASSWORD: 'leakpw2', CUSTOM_SECRET: 'leak3' };
    const saved = { ...process.env };
    Object.assign(process.env, secrets);
    try {
      const viaEnv = await runProcess('env', [], { registryDir: null });
      expect(viaEnv.code).toBe(0);
      expect(viaEnv.stdoutTail).toMatch(/^PATH=/m); // the allow-list did pass
      const viaPython = await runProcess('python3', ['-c', 'import json, os; print(json.dumps(dict(os.environ)))'], { registryDir: null });
      const seen = JSON.parse(viaPython.stdoutTail) as Record<string, string>;
      for (const [name, value] of Object.entries(secrets)) {
        expect(viaEnv.stdoutTail).not.toContain(value);
        expect(seen[name], name).toBeUndefined();
        expect(JSON.stringify(seen)).not.toContain(value);
      }
    } finally {
      for (const name of Object.keys(secrets)) if (saved[name] === undefined) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });
});

describe('runProcess', () => {
  it('at the time limit, kills the child and every grandchild, also ones that ignore SIGTERM or left the session', async () => {
    const tag = marker();
    const script = [
      'import signal, subprocess, sys, time',
      'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
      `cmd = ${JSON.stringify(stubborn(tag))}`,
      'subprocess.Popen(cmd)',
      'subprocess.Popen(cmd, start_new_session=True)',
      'print("started", flush=True)',
      'time.sleep(300)',
    ].join('\n');
    let running: number[] = [];
    const r = await runProcess('python3', ['-c', script, tag], {
      timeoutMs: 2500, killGraceMs: 300, registryDir: path.join(scratch, 'procs-timeout'),
      onLine: (line) => { if (line === 'started') setTimeout(() => { running = liveWith(tag); }, 300); },
    });
    expect(running.length).toBe(3); // the child and both grandchildren were alive before the limit
    expect(r.timedOut).toBe(true);
    expect(r.code).toBeNull();
    expect(r.signal).toBe('SIGKILL'); // it ignored SIGTERM
    expect(r.durationMs).toBeLessThan(2500 + 300 + 1500);
    expect(liveWith(tag)).toEqual([]);
    expect(liveInGroup(r.pid!)).toEqual([]);
    expect(readdirSync(path.join(scratch, 'procs-timeout'))).toEqual([]); // its record is gone with it
  });

  it('an abort kills the family promptly', async () => {
    const tag = marker();
    const stop = new AbortController();
    const began = Date.now();
    setTimeout(() => stop.abort(), 500);
    const r = await runProcess('sh', ['-c', `${stubborn(tag).map((a) => `'${a}'`).join(' ')} & sleep 300`], { signal: stop.signal, killGraceMs: 500, registryDir: null });
    expect(r.aborted).toBe(true);
    expect(Date.now() - began).toBeLessThan(500 + 500 + 1000);
    expect(liveWith(tag)).toEqual([]);
    expect(liveInGroup(r.pid!)).toEqual([]);
  });

  it('a child that exits normally leaves nothing running behind it', async () => {
    const tag = marker();
    const r = await runProcess('sh', ['-c', `${stubborn(tag).map((a) => `'${a}'`).join(' ')} > /dev/null 2>&1 & echo done`], { killGraceMs: 200, registryDir: null });
    expect(r.code).toBe(0);
    expect(r.stdoutTail).toBe('done\n');
    expect(liveWith(tag)).toEqual([]);
  });

  it('keeps only the tail of a large output', async () => {
    const lines: string[] = [];
    const r = await runProcess('python3', ['-c', 'import sys\nfor i in range(200000): sys.stdout.write("line %d\\n" % i)'], {
      maxOutputBytes: 1000, registryDir: null, onLine: (line, stream) => { if (stream === 'stdout') lines.push(line); },
    });
    expect(r.stdoutTail.length).toBe(1000);
    expect(r.stdoutTail.endsWith('line 199999\n')).toBe(true);
    expect(r.truncated.stdout).toBe(true);
    expect(lines.length).toBe(200000); // onLine saw every line
  });

  it('refuses a program that does not exist', async () => {
    await expect(runProcess('no-such-program-perfmine', [], { registryDir: null })).rejects.toThrow(/could not run no-such-program-perfmine/);
  });
});

describe('our own exit', () => {
  it('kills every family we run and removes their records', async () => {
    const dir = path.join(scratch, 'procs-exit');
    const name = marker();
    const tag = `${name}-child`; // the owner's grandchildren
    const owner = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/process-owner.ts', dir, name, '3000'], { stdio: 'ignore' });
    owners.push({ pid: owner.pid!, dir });
    expect((await until(() => liveWith(tag), (p) => p.length === 2)).length).toBe(2);
    expect(readdirSync(dir)).toHaveLength(1);
    expect(await new Promise((r) => owner.once('exit', r))).toBe(0); // process.exit: the 'exit' hook ran
    expect(liveWith(tag)).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  }, 30_000);
});

describe('reapOrphans', () => {

  it('kills the family of an owner that was SIGKILLed, and leaves live owners\' families alone', async () => {
    const dir = path.join(scratch, 'procs-reap');
    const name = marker();
    const tag = `${name}-child`; // the owner's grandchildren
    const owner = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/process-owner.ts', dir, name], { stdio: 'ignore' });
    owners.push({ pid: owner.pid!, dir });
    expect((await until(() => liveWith(tag), (p) => p.length === 2)).length).toBe(2);
    const [file] = readdirSync(dir);
    expect(file).toMatch(new RegExp(`^${owner.pid}-\\d+\\.json$`)); // named with the owner's pid
    const leader = JSON.parse(readFileSync(path.join(dir, file), 'utf8')).leader as number;

    // A family of our own, running: its owner (this process) is alive.
    const stop = new AbortController();
    const mine = runProcess('sleep', ['300'], { registryDir: dir, signal: stop.signal });

    owner.kill('SIGKILL');
    await new Promise((r) => owner.once('exit', r));
    if (pdeathsigWrapper()) {
      // the kernel killed the direct child with its owner ...
      expect(await until(() => liveInGroup(leader).includes(leader), (alive) => !alive, 3000)).toBe(false);
    }
    // ... but its children live on, until the reaper comes
    await new Promise((r) => setTimeout(r, 300));
    expect(liveWith(tag).length).toBe(2);

    const reaped = await reapOrphans(dir, { graceMs: 500 });
    expect(reaped).toEqual([expect.objectContaining({ ownerPid: owner.pid, leader, killed: 2 })]);
    expect(liveWith(tag)).toEqual([]);
    expect(liveInGroup(leader)).toEqual([]);
    expect(existsSync(path.join(dir, file))).toBe(false);

    expect(readdirSync(dir)).toHaveLength(1); // ours, untouched
    stop.abort();
    expect((await mine).aborted).toBe(true);
    expect(readdirSync(dir)).toHaveLength(0);
  }, 30_000);
});
