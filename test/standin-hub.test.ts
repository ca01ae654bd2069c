/**
 * The Hugging Face Hub stand-in driven by the real @huggingface/hub client:
 * what it stores is exactly what was sent (binary files through LFS, text
 * files in the commit), a commit lands whole or not at all, and it refuses
 * what the hub refuses (a wrong token, bytes that do not match their oid, a
 * stale parent commit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { commit, createRepo, downloadFile, listFiles, repoExists } from '@huggingface/hub';
import { HubStandin } from '../src/standins/hub/server.js';

const TOKEN = `hf_${randomBytes(16).toString('hex')}`;
const repo = { type: 'dataset' as const, name: 'perfmine/standin-test' };
let hub: HubStandin;

beforeAll(async () => {
  hub = await HubStandin.start({ tokens: [TOKEN] });
});

afterAll(async () => {
  await hub?.close();
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const routes = (from: number) => hub.requests.slice(from).map((r) => `${r.method} ${r.route} ${r.status}`);

describe('hub stand-in with the real client', () => {
  it('creates a dataset repository the client then finds', async () => {
    expect(await repoExists({ repo, hubUrl: hub.url, accessToken: TOKEN })).toBe(false);
    const made = await createRepo({ repo, hubUrl: hub.url, accessToken: TOKEN });
    expect(made.repoUrl).toBe(`${hub.url}/datasets/${repo.name}`);
    expect(await repoExists({ repo, hubUrl: hub.url, accessToken: TOKEN })).toBe(true);
    await expect(createRepo({ repo, hubUrl: hub.url, accessToken: TOKEN })).rejects.toMatchObject({ statusCode: 409 });
  });

  it('stores exactly the bytes that were sent: a binary file through LFS, a text file in the commit', async () => {
    const binary = randomBytes(300_000);
    binary[5] = 0; // a NUL in the sample: the hub would call it binary whatever its name
    const text = Buffer.from('# perfmine\n\nthe published tasks, one Parquet file per month of merge dates\n');
    const from = hub.requests.length;
    const out = await commit({
      repo, hubUrl: hub.url, accessToken: TOKEN, title: 'add two files', useXet: false,
      operations: [
        { operation: 'addOrUpdate', path: 'data/blob.bin', content: new Blob([binary]) },
        { operation: 'addOrUpdate', path: 'README.md', content: new Blob([text]) },
      ],
    });
    expect(out?.commit.oid).toMatch(/^[0-9a-f]{40}$/);
    // The protocol the client spoke: preupload, LFS batch, one PUT of the binary file, the commit.
    expect(routes(from)).toEqual(['POST preupload 200', 'POST lfs-batch 200', 'PUT lfs-upload 200', 'POST commit 200']);

    const stored = hub.repo('dataset', repo.name)!;
    const head = hub.storage.head(stored)!;
    expect(head.oid).toBe(out!.commit.oid);
    expect(head.files.get('data/blob.bin')).toMatchObject({ lfs: true, size: binary.length, sha256: sha256(binary) });
    expect(head.files.get('README.md')).toMatchObject({ lfs: false, size: text.length });
    expect(hub.file('dataset', repo.name, 'data/blob.bin')!.equals(binary)).toBe(true);
    expect(hub.file('dataset', repo.name, 'README.md')!.equals(text)).toBe(true);

    // And the client reads the same bytes back (size probe and ranged reads).
    const blob = await downloadFile({ repo, path: 'data/blob.bin', hubUrl: hub.url, accessToken: TOKEN });
    expect(Buffer.from(await blob!.arrayBuffer()).equals(binary)).toBe(true);
    const listed: { path: string; size: number; lfs?: unknown }[] = [];
    for await (const f of listFiles({ repo, hubUrl: hub.url, accessToken: TOKEN, recursive: true })) listed.push(f);
    expect(listed.map((f) => [f.path, f.size, !!f.lfs]).sort()).toEqual([['README.md', text.length, false], ['data/blob.bin', binary.length, true]]);
  });

  it('does not upload an LFS object it already holds, and deletes files in a commit', async () => {
    const binary = hub.file('dataset', repo.name, 'data/blob.bin')!;
    const from = hub.requests.length;
    await commit({
      repo, hubUrl: hub.url, accessToken: TOKEN, title: 'same bytes elsewhere, README gone', useXet: false,
      operations: [
        { operation: 'addOrUpdate', path: 'data/copy.bin', content: new Blob([binary]) },
        { operation: 'delete', path: 'README.md' },
      ],
    });
    expect(routes(from)).toEqual(['POST preupload 200', 'POST lfs-batch 200', 'POST commit 200']);
    expect(hub.file('dataset', repo.name, 'data/copy.bin')!.equals(binary)).toBe(true);
    expect(hub.file('dataset', repo.name, 'README.md')).toBeNull();
  });

  it('refuses a wrong token (and the client refuses one that does not start with hf_ before sending)', async () => {
    const before = hub.file('dataset', repo.name, 'data/copy.bin');
    await expect(commit({
      repo, hubUrl: hub.url, accessToken: `hf_${'0'.repeat(32)}`, title: 'not allowed', useXet: false,
      operations: [{ operation: 'addOrUpdate', path: 'x.txt', content: new Blob(['x']) }],
    })).rejects.toMatchObject({ statusCode: 401 });
    const from = hub.requests.length;
    await expect(commit({
      repo, hubUrl: hub.url, accessToken: 'not-a-hub-token', title: 'never sent', useXet: false,
      operations: [{ operation: 'addOrUpdate', path: 'x.txt', content: new Blob(['x']) }],
    })).rejects.toThrow(/hf_/);
    expect(hub.requests.length).toBe(from);
    expect(hub.file('dataset', repo.name, 'x.txt')).toBeNull();
    expect(hub.file('dataset', repo.name, 'data/copy.bin')).toEqual(before);
  });

  it('refuses an upload whose bytes do not match the announced object', async () => {
    const good = randomBytes(1000);
    const oid = sha256(good);
    const batch = await fetch(`${hub.url}/datasets/${repo.name}.git/info/lfs/objects/batch`, {
      method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/vnd.git-lfs+json' },
      body: JSON.stringify({ operation: 'upload', transfers: ['basic'], objects: [{ oid, size: good.length }] }),
    });
    const answer = await batch.json() as { transfer: string; objects: { actions?: { upload?: { href: string } } }[] };
    expect(answer.transfer).toBe('basic');
    const href = answer.objects[0].actions!.upload!.href;
    const tampered = Buffer.from(good);
    tampered[0] ^= 1;
    expect((await fetch(href, { method: 'PUT', body: tampered })).status).toBe(400);
    expect(hub.storage.hasObject(hub.repo('dataset', repo.name)!, oid)).toBe(false);
    expect((await fetch(href, { method: 'PUT', body: good })).status).toBe(200);
    expect(hub.storage.hasObject(hub.repo('dataset', repo.name)!, oid)).toBe(true);
  });

  it('refuses a commit on a stale parent, and a commit whose LFS object never arrived, as a whole', async () => {
    const stored = hub.repo('dataset', repo.name)!;
    const head = hub.storage.head(stored)!.oid;
    await commit({
      repo, hubUrl: hub.url, accessToken: TOKEN, title: 'moves head', useXet: false,
      operations: [{ operation: 'addOrUpdate', path: 'notes.txt', content: new Blob(['one']) }],
    });
    await expect(commit({
      repo, hubUrl: hub.url, accessToken: TOKEN, title: 'stale', useXet: false, parentCommit: head,
      operations: [{ operation: 'addOrUpdate', path: 'notes.txt', content: new Blob(['two']) }],
    })).rejects.toMatchObject({ statusCode: 412 });
    expect(hub.file('dataset', repo.name, 'notes.txt')!.toString()).toBe('one');

    const ndjson = [
      { key: 'header', value: { summary: 'half a commit' } },
      { key: 'file', value: { path: 'half.txt', content: Buffer.from('half').toString('base64'), encoding: 'base64' } },
      { key: 'lfsFile', value: { path: 'missing.bin', algo: 'sha256', size: 3, oid: 'f'.repeat(64) } },
    ].map((l) => JSON.stringify(l)).join('\n');
    const res = await fetch(`${hub.url}/api/datasets/${repo.name}/commit/main`, {
      method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/x-ndjson' }, body: ndjson,
    });
    expect(res.status).toBe(422);
    expect(hub.file('dataset', repo.name, 'half.txt')).toBeNull();
  });

  it('injected faults fail the client\'s requests, then it works again', async () => {
    hub.fail({ route: 'commit', reply: 503, times: 1 });
    const push = () => commit({
      repo, hubUrl: hub.url, accessToken: TOKEN, title: 'after a fault', useXet: false,
      operations: [{ operation: 'addOrUpdate', path: 'after.txt', content: new Blob(['after']) }],
    });
    await expect(push()).rejects.toMatchObject({ statusCode: 503 });
    expect(hub.file('dataset', repo.name, 'after.txt')).toBeNull();
    hub.fail({ route: 'preupload', reply: 'reset', times: 1 });
    await expect(push()).rejects.toThrow(/fetch failed/);
    await push();
    expect(hub.file('dataset', repo.name, 'after.txt')!.toString()).toBe('after');
  });
});
