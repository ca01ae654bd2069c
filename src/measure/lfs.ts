/**
 * Git LFS content in a checkout, offline. A checkout made without git-lfs (or
 * with its download turned off, as ours are) holds small pointer files in
 * place of the real content; a benchmark reading one would measure the wrong
 * thing, or fail. The content is copied from the source repository's own LFS
 * store when it is there (checked against the pointer's sha256 and size), and
 * the files that stay pointers are reported.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { git, gitSucceeds } from './git.js';

/** The LFS specification caps a pointer file at 1024 bytes. */
const MAX_POINTER_BYTES = 1024;
const POINTER_VERSIONS = ['https://git-lfs.github.com/spec/v1', 'https://hawser.github.com/spec/v1'];
const LISTED = 10;

export interface LfsPointer { oid: string; size: number }

/** The pointer a file's text is, or null when it is ordinary content. */
export function parseLfsPointer(text: string): LfsPointer | null {
  if (!text.startsWith('version ')) return null;
  const fields = new Map(text.split('\n').filter(Boolean).map((line) => {
    const space = line.indexOf(' ');
    return [line.slice(0, space), line.slice(space + 1)] as const;
  }));
  const oid = /^sha256:([0-9a-f]{64})$/.exec(fields.get('oid') ?? '');
  const size = Number(fields.get('size'));
  if (!POINTER_VERSIONS.includes(fields.get('version') ?? '') || !oid || !Number.isSafeInteger(size) || size < 0) return null;
  return { oid: oid[1], size };
}

/**
 * Replaces the LFS pointer files of the checkout at `dir` with their content
 * from `source`'s LFS store. Returns warnings for the files left as pointers
 * (none when there are none).
 */
export async function materializeLfsPointers(source: string, dir: string, signal?: AbortSignal): Promise<string[]> {
  const listing = await git(['-C', dir, 'ls-tree', '-r', '-l', '-z', 'HEAD'], { signal });
  const small = listing.split('\0').filter(Boolean).flatMap((entry) => {
    const tab = entry.indexOf('\t');
    const [mode, type, , size] = entry.slice(0, tab).split(/\s+/);
    return type === 'blob' && mode !== '120000' && Number(size) <= MAX_POINTER_BYTES ? [entry.slice(tab + 1)] : [];
  });
  const pointers: Array<{ file: string; pointer: LfsPointer }> = [];
  for (const file of small) {
    const text = await readFile(path.join(dir, file), 'utf8').catch(() => '');
    const pointer = parseLfsPointer(text);
    if (pointer) pointers.push({ file, pointer });
  }
  if (pointers.length === 0) return [];

  const store = await lfsStore(source, signal);
  const missing: string[] = [];
  for (const { file, pointer } of pointers) {
    const object = store && path.join(store, pointer.oid.slice(0, 2), pointer.oid.slice(2, 4), pointer.oid);
    if (object && (await holds(object, pointer))) await copyFile(object, path.join(dir, file));
    else missing.push(file);
  }
  if (missing.length === 0) return [];
  const lfsInstalled = await gitSucceeds(['lfs', 'version'], { signal });
  const listed = missing.slice(0, LISTED).join(', ') + (missing.length > LISTED ? `, and ${missing.length - LISTED} more` : '');
  return [`Git LFS: ${missing.length} file(s) left as pointer files, their content is not in ${source}'s local LFS store` +
    `${lfsInstalled ? ' (run `git lfs fetch` there)' : ' (and git-lfs is not installed)'}: ${listed}`];
}

/** Where the source repository keeps LFS objects (lfs.storage, else <git dir>/lfs/objects). */
async function lfsStore(source: string, signal?: AbortSignal): Promise<string | null> {
  const commonDir = await git(['-C', source, 'rev-parse', '--path-format=absolute', '--git-common-dir'], { signal })
    .then((s) => s.trim(), () => null);
  if (!commonDir) return null;
  const configured = await git(['-C', source, 'config', '--get', 'lfs.storage'], { signal }).then((s) => s.trim(), () => '');
  return path.join(configured ? path.resolve(commonDir, configured) : path.join(commonDir, 'lfs'), 'objects');
}

/** Whether `file` is the object the pointer names (size, then sha256). */
async function holds(file: string, pointer: LfsPointer): Promise<boolean> {
  const info = await stat(file).catch(() => null);
  if (!info?.isFile() || info.size !== pointer.size) return false;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex') === pointer.oid;
}
