/**
 * Tar streams for the engine's archive endpoint (PUT /containers/ID/archive),
 * the only way files enter a container here: nothing on the host is ever
 * mounted into one. Small in-memory sets (exec files, directory skeletons)
 * are written directly; directories (a clone, a wheelhouse) are streamed by
 * the host's `tar`. Everything is owned by the unprivileged user that builds
 * and runs code in the images.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { childEnv } from '../../process/child-env.js';

export interface TarEntry {
  /** Relative path, '/'-separated; a directory ends with '/'. */
  path: string;
  content?: string | Buffer;
  mode?: number;
}

/** A POSIX ustar archive of the entries (parents first is the caller's business), owned by uid:gid. */
export function tarArchive(entries: readonly TarEntry[], owner: { uid: number; gid: number }): Buffer {
  const blocks: Buffer[] = [];
  const mtime = Math.floor(Date.now() / 1000);
  for (const e of entries) {
    const isDir = e.path.endsWith('/');
    const body = isDir ? Buffer.alloc(0) : Buffer.from(e.content ?? '');
    blocks.push(header(e.path, body.length, e.mode ?? (isDir ? 0o755 : 0o644), isDir, owner, mtime), body);
    const pad = (512 - (body.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function header(name: string, size: number, mode: number, isDir: boolean, owner: { uid: number; gid: number }, mtime: number): Buffer {
  const h = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    // ustar splits long names at a slash: prefix (155) + name (100).
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(prefix) > 155 || Buffer.byteLength(base) > 100) throw new Error(`path too long for a tar entry: ${name}`);
  }
  const octal = (v: number, width: number) => v.toString(8).padStart(width - 1, '0');
  h.write(base, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 8, 'ascii');
  h.write(octal(owner.uid, 8), 108, 8, 'ascii');
  h.write(octal(owner.gid, 8), 116, 8, 'ascii');
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(mtime, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write(isDir ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\u000000', 257, 8, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${octal(sum, 7)}\u0000 `, 148, 8, 'ascii');
  return h;
}

/** Checks a caller's relative path (exec files): no absolute path, no `..`, nothing empty. */
export function safeRelativePath(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (p.startsWith('/') || parts.length === 0 || parts.some((s) => s === '..')) throw new Error(`not a relative path inside the scratch directory: ${JSON.stringify(p)}`);
  return parts.join('/');
}

/** Entries for `files`, with every parent directory listed once before its files. */
export function filesWithParents(files: Record<string, string | Buffer>): TarEntry[] {
  const dirs = new Set<string>();
  const entries: TarEntry[] = [];
  for (const [name, content] of Object.entries(files)) {
    const rel = safeRelativePath(name);
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ path: dir });
      }
    }
    entries.push({ path: rel, content });
  }
  return entries;
}

export interface DirectoryTar {
  stream: Readable;
  /** Resolves when tar exits 0; rejects with its message otherwise. */
  done: Promise<void>;
  kill(): void;
}

/**
 * Streams `members` of `dir` (default: everything) through the host's tar,
 * every entry owned by uid:gid, so the unprivileged user in the container
 * owns what it gets.
 */
export function tarDirectory(dir: string, owner: { uid: number; gid: number }, members: string[] = ['.']): DirectoryTar {
  const child = spawn('tar', ['-C', dir, '-c', `--owner=${owner.uid}`, `--group=${owner.gid}`, '--numeric-owner', '--', ...members], {
    env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, sig) => (code === 0 ? resolve() : reject(new Error(`tar of ${dir} failed (${code ?? sig}): ${stderr.trim()}`))));
  });
  done.catch(() => undefined); // awaited by the caller; never an unhandled rejection
  return { stream: child.stdout, done, kill: () => child.kill('SIGKILL') };
}
