import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkoutTree } from '../src/measure/trees.js';
import { measure, measureTrees } from '../src/measure/measure.js';
import { scratchRepo } from './helpers/asv-repo.js';

// perfmine measure's trees are real checkouts of the user's repository, made
// without touching it, and a stopped measurement leaves no process running.

const scratch = mkdtempSync(path.join(os.tmpdir(), 'perfmine-trees-test-'));
const envFile = path.join(scratch, 'env.json');
const pidsFile = path.join(scratch, 'pids.txt');
const SLEEPY_CHILD = `perfmine-sleepy-child-${process.pid}`;

const BENCH = `
import json, os, subprocess, sys, time
from ._support import VALUE  # a file git archive would drop (export-ignore)

def time_support():
    VALUE + 1

def time_env():
    with open(${JSON.stringify(envFile)}, "w") as fh:
        json.dump(dict(os.environ), fh)

def time_sleepy():
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)", ${JSON.stringify(SLEEPY_CHILD)}])
    with open(${JSON.stringify(pidsFile)}, "a") as fh:
        fh.write("%d %d %s\\n" % (os.getpid(), child.pid, os.getcwd()))
    time.sleep(300)
time_sleepy.timeout = 600
`;

const lfsPointer = (content: string) =>
  `version https://git-lfs.github.com/spec/v1\noid sha256:${createHash('sha256').update(content).digest('hex')}\nsize ${Buffer.byteLength(content)}\n`;

let repo: { dir: string; base: string; head: string };

/** The user's repository: export-ignore'd helper, two submodules (one cloned, one not), two LFS pointers (one stored). */
function makeRepo() {
  const lib = scratchRepo('perfmine-trees-lib-');
  lib.git('init', '-q');
  lib.write('lib.py', 'NAME = "lib"\n');
  lib.git('add', '.');
  lib.git('commit', '-qm', 'lib');
  const gone = scratchRepo('perfmine-trees-gone-');
  gone.git('init', '-q');
  gone.write('gone.py', 'X = 1\n');
  gone.git('add', '.');
  gone.git('commit', '-qm', 'gone');

  const r = scratchRepo('perfmine-trees-repo-');
  r.git('init', '-q');
  r.write('asv.conf.json', '{"version": 1, "benchmark_dir": "benchmarks"}\n');
  r.write('.gitattributes', 'benchmarks/_support.py export-ignore\n');
  r.write('benchmarks/__init__.py', '');
  r.write('benchmarks/_support.py', 'VALUE = 1\n');
  r.write('benchmarks/bench_tree.py', BENCH);
  r.write('data/big.bin', lfsPointer('hello lfs\n'));
  r.write('data/missing.bin', lfsPointer('never fetched\n'));
  const oid = createHash('sha256').update('hello lfs\n').digest('hex');
  r.write(`.git/lfs/objects/${oid.slice(0, 2)}/${oid.slice(2, 4)}/${oid}`, 'hello lfs\n');
  r.git('-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', lib.dir, 'vendor/lib');
  r.git('-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', gone.dir, 'vendor/gone');
  r.git('add', '-A');
  r.git('commit', '-qm', 'base');
  const base = r.git('rev-parse', 'HEAD');
  r.write('README', 'head\n');
  r.git('add', '-A');
  r.git('commit', '-qm', 'head');
  const head = r.git('rev-parse', 'HEAD');
  // vendor/gone was never initialised here; and no network: the submodules' own repositories are gone.
  r.git('submodule', '--quiet', 'deinit', '-f', '--', 'vendor/gone');
  rmSync(path.join(r.dir, '.git', 'modules', 'vendor', 'gone'), { recursive: true, force: true });
  rmSync(lib.dir, { recursive: true, force: true });
  rmSync(gone.dir, { recursive: true, force: true });
  return { dir: r.dir, base, head };
}

/** Every file under .git with its size and modification time, to prove nothing was written there. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out.push(`${path.relative(dir, p)} ${s.size} ${s.mtimeMs}`);
    }
  };
  walk(path.join(dir, '.git'));
  return out.sort();
}

/** Pids of the live processes descended from `root`. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const n of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const fields = readFileSync(`/proc/${n}/stat`, 'latin1').split(') ')[1].split(' ');
      if (fields[0] !== 'Z') parent.set(Number(n), Number(fields[1]));
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const visit = (pid: number) => {
    for (const [child, ppid] of parent) {
      if (ppid === pid) {
        out.push(child);
        visit(child);
      }
    }
  };
  visit(root);
  return out;
}

const alive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1][0] !== 'Z';
  } catch {
    return false;
  }
};

async function until<T>(probe: () => T, ok: (v: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The benchmark process, its child and its tree, once time_sleepy runs. */
async function sleepyStarted(): Promise<{ benchmark: number; child: number; tree: string }> {
  const line = await until(() => (existsSync(pidsFile) ? readFileSync(pidsFile, 'utf8').split('\n')[0] : ''), (l) => l.split(' ').length === 3);
  const [benchmark, child, tree] = line.split(' ');
  return { benchmark: Number(benchmark), child: Number(child), tree };
}

const FAST = { rounds: 1, sampleTime: 0.002, warmupTime: 0.005, confirm: false } as const;

beforeAll(() => { repo = makeRepo(); });
afterAll(() => {
  if (repo) rmSync(repo.dir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe('checkoutTree', () => {
  it('is a real checkout: export-ignore files, submodules from the repository\'s own clones, LFS content; what is missing is said', async () => {
    const before = snapshot(repo.dir);
    const tree = await checkoutTree(repo.dir, repo.base, 'base');
    try {
      expect(readFileSync(path.join(tree.dir, 'benchmarks/_support.py'), 'utf8')).toBe('VALUE = 1\n');
      expect(readFileSync(path.join(tree.dir, 'vendor/lib/lib.py'), 'utf8')).toBe('NAME = "lib"\n');
      expect(readdirSync(path.join(tree.dir, 'vendor/gone'))).toEqual([]);
      expect(readFileSync(path.join(tree.dir, 'data/big.bin'), 'utf8')).toBe('hello lfs\n');
      expect(readFileSync(path.join(tree.dir, 'data/missing.bin'), 'utf8')).toMatch(/^version https:\/\/git-lfs/);
      expect(tree.warnings).toHaveLength(2);
      expect(tree.warnings[0]).toMatch(/^submodule vendor\/gone \([0-9a-f]{12}\): not available offline/);
      expect(tree.warnings[1]).toMatch(/^Git LFS: 1 file\(s\) left as pointer files.*: data\/missing\.bin$/);
    } finally {
      await tree.cleanup();
    }
    expect(existsSync(tree.dir)).toBe(false);
    expect(snapshot(repo.dir)).toEqual(before); // not one file of the user's .git written
  });
});

describe('perfmine measure on real checkouts', () => {
  it('runs in runner mode by default, reports what the trees lack, and no secret reaches a benchmark', async () => {
    const secrets = { GITHUB_TOKEN: 'ghp_benchleak0000000000', OPENAI_API_KEY: 'sk-benchleak000000', DATABASE_URL: 'postgres://u:benchleakpw@h/db' };
    const saved = { ...process.env };
    Object.assign(process.env, secrets);
    try {
      const report = await measure({ repo: repo.dir, base: repo.base, head: repo.head, bench: 'time_(support|env)$', ...FAST });
      expect(report.mode).toBe('runner');
      expect(report.benchmarks.map((b) => [b.name, b.verdict === 'failed' ? b.error : 'measured']).sort()).toEqual([
        ['bench_tree.time_env', 'measured'], ['bench_tree.time_support', 'measured'],
      ]);
      expect(report.warnings.filter((w) => /vendor\/gone/.test(w)).map((w) => w.slice(0, 5))).toEqual(['base:', 'head:']);
      const seen = readFileSync(envFile, 'utf8');
      for (const value of Object.values(secrets)) expect(seen).not.toContain(value);
      expect(JSON.parse(seen)).toHaveProperty('PATH');
    } finally {
      for (const name of Object.keys(secrets)) delete process.env[name];
      Object.assign(process.env, saved);
    }
  }, 120_000);

  it('asv mode only on git checkouts', async () => {
    const plain = mkdtempSync(path.join(scratch, 'plain-'));
    writeFileSync(path.join(plain, 'asv.conf.json'), '{}');
    mkdirSync(path.join(plain, 'benchmarks'));
    await expect(measureTrees({ base: plain, head: plain, mode: 'asv' })).rejects.toThrow(/--mode asv needs git checkouts; the base tree .* is not one/);
  });

  it('an aborted measurement stops the runner, its benchmark and the benchmark\'s child, and removes the trees', async () => {
    rmSync(pidsFile, { force: true });
    const stop = new AbortController();
    const run = measure({ repo: repo.dir, base: repo.base, head: repo.head, bench: 'time_sleepy$', ...FAST, signal: stop.signal });
    const caught = run.catch((e: Error) => e);
    const { benchmark, child, tree } = await sleepyStarted();
    expect([alive(benchmark), alive(child)]).toEqual([true, true]);
    const began = Date.now();
    stop.abort();
    const err = await caught;
    expect((err as Error).name).toBe('AbortError');
    expect(Date.now() - began).toBeLessThan(5000);
    expect([alive(benchmark), alive(child)]).toEqual([false, false]);
    expect(existsSync(tree)).toBe(false);
  }, 120_000);

  it('perfmine measure interrupted with SIGINT leaves no process running', async () => {
    rmSync(pidsFile, { force: true });
    const cli = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'measure', '--repo', repo.dir, '--base', repo.base, '--head', repo.head,
      '--bench', 'time_sleepy$', '--rounds', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    cli.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    const { benchmark, child, tree } = await sleepyStarted();
    const family = descendants(cli.pid!);
    expect(family).toEqual(expect.arrayContaining([benchmark, child]));
    expect(family.length).toBeGreaterThanOrEqual(4); // runner, fork server, benchmark, its child
    cli.kill('SIGINT');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(code).toBe(130);
    expect(stderr).toMatch(/measurement stopped/);
    expect(family.filter(alive)).toEqual([]);
    expect(existsSync(tree)).toBe(false);
  }, 120_000);
});
