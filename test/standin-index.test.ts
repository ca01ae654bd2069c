/** The package-index stand-in speaks the simple API as PyPI does: HTML, JSON with upload times, files with hashes, faults. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IndexStandin } from '../src/standins/index/server.js';
import { buildWheels } from '../src/standins/index/wheels.js';
import { SYSTEM_PYTHON } from './helpers/python-index.js';

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
let dir: string;
let index: IndexStandin;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'perfmine-index-'));
  await buildWheels(dir, [
    { name: 'Demo_Lib', version: '1.0', uploadTime: '2020-01-01T00:00:00Z', requiresPython: '>=3.8' },
    { name: 'Demo_Lib', version: '2.0', requiresDist: ['other>=1'], uploadTime: '2022-01-01T00:00:00Z' },
  ], { python: SYSTEM_PYTHON });
  index = await IndexStandin.start({ wheelsDir: dir });
});
afterAll(async () => { await index.close(); });

describe('index stand-in', () => {
  it('serves PEP 691 JSON with PEP 700 upload times to clients that prefer it, PEP 503 HTML otherwise', async () => {
    const json = await fetch(`${index.simpleUrl}/demo-lib/`, { headers: { accept: `${JSON_TYPE}, text/html;q=0.01` } });
    expect(json.headers.get('content-type')).toBe(JSON_TYPE);
    const page = await json.json() as any;
    expect(page.meta['api-version']).toBe('1.1');
    expect(page.versions).toEqual(['1.0', '2.0']);
    const [f1] = page.files;
    expect(f1).toMatchObject({ filename: 'demo_lib-1.0-py3-none-any.whl', 'requires-python': '>=3.8', 'upload-time': '2020-01-01T00:00:00.000Z' });
    // The file behind the link has the advertised hash.
    const bytes = Buffer.from(await (await fetch(new URL(f1.url, `${index.simpleUrl}/demo-lib/`))).arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(f1.hashes.sha256);
    expect(bytes.length).toBe(f1.size);

    const html = await (await fetch(`${index.simpleUrl}/demo-lib/`)).text();
    expect(html).toMatch(/<a href="\.\.\/\.\.\/files\/demo_lib-1\.0-py3-none-any\.whl#sha256=[0-9a-f]{64}" data-requires-python="&gt;=3\.8">/);
    // Names are normalized (PEP 503): other spellings redirect to the canonical page.
    const moved = await fetch(`${index.simpleUrl}/Demo_Lib/`, { redirect: 'manual' });
    expect(moved.status).toBe(301);
    expect(moved.headers.get('location')).toBe('/simple/demo-lib/');
    expect((await fetch(`${index.simpleUrl}/nothing-here/`)).status).toBe(404);
    const list = await (await fetch(`${index.simpleUrl}/`, { headers: { accept: JSON_TYPE } })).json() as any;
    expect(list.projects).toEqual([{ name: 'demo-lib' }]);
  });

  it('upload times can be changed through the API; faults hit the chosen requests', async () => {
    await fetch(`${index.url}/_standin/upload-time`, { method: 'POST', body: JSON.stringify({ filename: 'demo_lib-2.0-py3-none-any.whl', upload_time: '2019-06-01T00:00:00Z' }) });
    const page = await (await fetch(`${index.simpleUrl}/demo-lib/`, { headers: { accept: JSON_TYPE } })).json() as any;
    expect(page.files[1]['upload-time']).toBe('2019-06-01T00:00:00.000Z');

    index.inject({ kind: 'http-503', times: 2, match: 'simple' });
    expect((await fetch(`${index.simpleUrl}/demo-lib/`)).status).toBe(503);
    expect((await fetch(`${index.url}/files/demo_lib-1.0-py3-none-any.whl`)).status).toBe(200);
    expect((await fetch(`${index.simpleUrl}/demo-lib/`)).status).toBe(503);
    expect((await fetch(`${index.simpleUrl}/demo-lib/`)).status).toBe(200);
    index.inject({ kind: 'timeout', times: 1 });
    await expect(fetch(`${index.simpleUrl}/demo-lib/`, { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    index.clearFaults();
    index.inject({ kind: 'reset', times: 1 });
    await expect(fetch(`${index.simpleUrl}/demo-lib/`)).rejects.toThrow();
    expect(index.faultHits).toMatchObject({ 'http-503': 2, timeout: 1, reset: 1 });
  });

  it('the wheel helper records upload times in the manifest beside the wheels', () => {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'index-manifest.json'), 'utf8'));
    expect(Object.keys(manifest.files).sort()).toEqual(['demo_lib-1.0-py3-none-any.whl', 'demo_lib-2.0-py3-none-any.whl']);
  });

  it('`perfmine standin index --wheels DIR` serves a directory on its own', async () => {
    // One process (node with tsx's loader), so the SIGTERM below ends the stand-in itself.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'standin', 'index', '--wheels', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += String(d);
          const m = /PERFMINE_PYTHON_INDEX_URL=(\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
        setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 30_000);
      });
      const page = await (await fetch(`${url}/demo-lib/`, { headers: { accept: JSON_TYPE } })).json() as any;
      expect(page.files.map((f: any) => f['upload-time'])).toEqual(['2020-01-01T00:00:00.000Z', '2022-01-01T00:00:00.000Z']);
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);
});
