/**
 * The resolvers against the index stand-in, through the real pip of a fresh
 * machine (Debian's 23.0.1, which has no cutoff flag: the cutoff proxy gives it one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServiceDownError } from '../src/bus/stage.js';
import { CutoffProxy } from '../src/adapters/python/cutoff-proxy.js';
import { PipResolver, UvResolver, pinsFromCompiled } from '../src/adapters/python/resolver.js';
import { createResolver } from '../src/adapters/python/index.js';
import type { IndexStandin } from '../src/standins/index/server.js';
import { startIndex, SYSTEM_PYTHON, WORLD } from './helpers/python-index.js';

let index: IndexStandin;
let proxy: CutoffProxy;
let pip: PipResolver;

beforeAll(async () => {
  ({ index } = await startIndex(WORLD));
  proxy = await CutoffProxy.start({ upstream: index.simpleUrl, timeoutMs: 5000 });
  pip = new PipResolver({ python: SYSTEM_PYTHON, indexUrl: index.simpleUrl, timeoutMs: 120_000, proxy, cacheDir: null });
});
afterAll(async () => {
  await proxy.close();
  await index.close();
});

const versions = (pins: Array<{ name: string; version: string }>) => Object.fromEntries(pins.map((p) => [p.name, p.version]));

describe('pip resolver (Debian pip 23.0.1) through the cutoff proxy', () => {
  it('reports its version', async () => {
    expect(await pip.version()).toMatch(/^\d+\.\d+/);
  });

  it('the cutoff picks the older version; no cutoff picks the newer', async () => {
    const past = await pip.resolve({ requirements: ['alpha'], pythonVersion: '3.9', cutoff: new Date('2021-01-01T00:00:00Z') });
    expect(past.ok && versions(past.pins)).toEqual({ alpha: '1.0' });
    const now = await pip.resolve({ requirements: ['alpha'], pythonVersion: '3.9', cutoff: null });
    expect(now.ok && versions(now.pins)).toEqual({ alpha: '2.0', beta: '2.0' });
    // Hashes come from the index.
    expect(now.ok && now.pins.every((p) => /^[0-9a-f]{64}$/.test(p.sha256 ?? ''))).toBe(true);
    // The index itself served the newer file's page but pip never downloaded a file the cutoff hides.
    expect(index.stats.byFile['alpha-2.0-py3-none-any.whl']).toBe(1);
  });

  it('honours requires-python for the target version, not the interpreter running pip', async () => {
    const r = await pip.resolve({ requirements: ['beta'], pythonVersion: '3.8', cutoff: null });
    expect(r.ok && versions(r.pins)).toEqual({ beta: '1.0' });
  });

  it('a conflict is the resolver\'s own reason', async () => {
    const r = await pip.resolve({ requirements: ['gamma', 'alpha>=2'], pythonVersion: '3.11', cutoff: null });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.kind).toBe('unresolvable');
      expect(r.reason).toMatch(/conflict/i);
      expect(r.reason).toMatch(/alpha/);
    }
    const missing = await pip.resolve({ requirements: ['alpha==9.9'], pythonVersion: '3.11', cutoff: null });
    expect(!missing.ok && missing.reason).toMatch(/No matching distribution found for alpha==9\.9/);
  });

  it('an index without upload times makes the cutoff impossible (and says so)', async () => {
    const { index: bare } = await startIndex(WORLD.slice(0, 2), { uploadTimes: false });
    const p = await CutoffProxy.start({ upstream: bare.simpleUrl });
    try {
      const r = new PipResolver({ python: SYSTEM_PYTHON, indexUrl: bare.simpleUrl, timeoutMs: 60_000, proxy: p, cacheDir: null });
      const at = await r.resolve({ requirements: ['alpha==1.0'], pythonVersion: '3.9', cutoff: new Date('2021-01-01') });
      expect(at).toMatchObject({ ok: false, kind: 'cutoff-impossible' });
      expect(!at.ok && at.reason).toMatch(/no upload times \(alpha\)/);
      const without = await r.resolve({ requirements: ['alpha==1.0'], pythonVersion: '3.9', cutoff: null });
      expect(without.ok).toBe(true);
    } finally {
      await p.close();
      await bare.close();
    }
  });

  it('an HTML-only index works without a cutoff (relative links through the proxy)', async () => {
    const { index: html } = await startIndex(WORLD.slice(0, 1), { json: false });
    const p = await CutoffProxy.start({ upstream: html.simpleUrl });
    try {
      const r = new PipResolver({ python: SYSTEM_PYTHON, indexUrl: html.simpleUrl, timeoutMs: 60_000, proxy: p, cacheDir: null });
      const res = await r.resolve({ requirements: ['alpha'], pythonVersion: '3.9', cutoff: null });
      expect(res.ok && versions(res.pins)).toEqual({ alpha: '1.0' });
    } finally {
      await p.close();
      await html.close();
    }
  });

  it('an index answering 5xx is the service being down, not the requirement', async () => {
    index.inject({ kind: 'http-503', durationMs: 60_000, match: 'simple' });
    try {
      await expect(pip.resolve({ requirements: ['alpha'], pythonVersion: '3.9', cutoff: new Date('2021-01-01') }))
        .rejects.toBeInstanceOf(ServiceDownError);
    } finally {
      index.clearFaults();
    }
    const r = await pip.resolve({ requirements: ['alpha'], pythonVersion: '3.9', cutoff: new Date('2021-01-01') });
    expect(r.ok).toBe(true);
  });

  it('never reads this machine\'s pip configuration or PIP_* variables', async () => {
    const prev = process.env.PIP_INDEX_URL;
    process.env.PIP_INDEX_URL = 'http://127.0.0.1:9/never';
    try {
      const r = await pip.resolve({ requirements: ['alpha'], pythonVersion: '3.9', cutoff: null });
      expect(r.ok).toBe(true);
    } finally {
      if (prev === undefined) delete process.env.PIP_INDEX_URL;
      else process.env.PIP_INDEX_URL = prev;
    }
  });
});

describe('uv resolver', () => {
  // No uv can be installed on this machine kind. A small fake `uv` on PATH records the
  // arguments it got and prints a compiled file: this tests our integration (arguments,
  // stdin, parsing, selection on PATH), not uv itself.
  it('is chosen when uv is on PATH, gets the cutoff as --exclude-newer, and its output becomes pins', async () => {
    const bin = mkdtempSync(path.join(os.tmpdir(), 'perfmine-fake-uv-'));
    const log = path.join(bin, 'calls.jsonl');
    writeFileSync(path.join(bin, 'uv'), `#!${SYSTEM_PYTHON}
import json, sys
if sys.argv[1:] == ['--version']:
    print('uv 0.4.30'); sys.exit(0)
with open(${JSON.stringify(log)}, 'a') as f:
    f.write(json.dumps({'args': sys.argv[1:], 'stdin': sys.stdin.read()}) + '\\n')
print('alpha==1.0 \\\\\\n    --hash=sha256:${'a'.repeat(64)}\\nbeta==1.0 \\\\\\n    --hash=sha256:${'b'.repeat(64)}')
`);
    chmodSync(path.join(bin, 'uv'), 0o755);
    const prevPath = process.env.PATH;
    process.env.PATH = `${bin}:${prevPath}`;
    try {
      const resolver = await createResolver({ kind: 'auto', uv: 'uv', python: SYSTEM_PYTHON, indexUrl: 'http://127.0.0.1:9/simple', timeoutMs: 30_000, indexTimeoutMs: 1000, cacheDir: null });
      expect(resolver).toBeInstanceOf(UvResolver);
      expect(await resolver.version()).toBe('0.4.30');
      const r = await resolver.resolve({ requirements: ['alpha', 'beta<2'], pythonVersion: '3.10', cutoff: new Date('2021-03-04T00:00:00Z') });
      expect(r.ok && r.pins).toEqual([
        { name: 'alpha', version: '1.0', sha256: 'a'.repeat(64) },
        { name: 'beta', version: '1.0', sha256: 'b'.repeat(64) },
      ]);
      const call = JSON.parse(readFileSync(log, 'utf8').trim());
      expect(call.stdin).toBe('alpha\nbeta<2\n');
      expect(call.args.slice(0, 3)).toEqual(['pip', 'compile', '-']);
      expect(call.args).toEqual(expect.arrayContaining(['--python-version', '3.10', '--index-url', 'http://127.0.0.1:9/simple', '--generate-hashes', '--exclude-newer', '2021-03-04T00:00:00.000Z']));
      // PERFMINE_RESOLVER=pip keeps pip even with uv on PATH.
      const forced = await createResolver({ kind: 'pip', uv: 'uv', python: SYSTEM_PYTHON, indexUrl: 'http://127.0.0.1:9/simple', timeoutMs: 30_000, indexTimeoutMs: 1000, cacheDir: null });
      expect(forced).toBeInstanceOf(PipResolver);
    } finally {
      process.env.PATH = prevPath;
    }
  });

  it('parses compiled files with extras, markers and comments', () => {
    expect(pinsFromCompiled('# comment\nfoo[bar]==1.2 ; python_version >= "3.8" \\\n    --hash=sha256:' + 'c'.repeat(64) + '\nbaz==3\n')).toEqual([
      { name: 'foo', version: '1.2', sha256: 'c'.repeat(64) },
      { name: 'baz', version: '3', sha256: null },
    ]);
  });
});
