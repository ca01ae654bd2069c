/**
 * A Hugging Face Hub stand-in: a real HTTP server on 127.0.0.1 speaking the
 * endpoints @huggingface/hub (2.17) calls to create a repository, commit
 * files (preupload, LFS batch + PUT, ndjson commit) and read them back
 * (resolve with Range, tree), so stage 8's hub target runs through the real
 * client with no network. Writes need `Authorization: Bearer <token>` with a
 * token the stand-in was given. Faults (an HTTP status or a dropped
 * connection, on one route or all, for the next N requests) let tests make a
 * push fail.
 *
 * Jobs: this file routes and authenticates; lfs.ts (batch, uploads),
 * commits.ts (preupload, commit), storage.ts (repositories and bytes).
 */
import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeNow, listenOnLoopback } from '../loopback.js';
import { commit, preupload } from './commits.js';
import { LfsEndpoints, type Answer } from './lfs.js';
import { HubStorage, type Repo, type RepoType } from './storage.js';

export { HubStorage, type Repo, type RepoType, type StoredFile } from './storage.js';

export type HubRoute = 'repo-info' | 'create-repo' | 'preupload' | 'lfs-batch' | 'lfs-upload' | 'commit' | 'resolve' | 'tree' | 'whoami';

export interface HubFault {
  /** Which route it hits ('any': every one). */
  route: HubRoute | 'any';
  /** An HTTP status to answer, or 'reset' to drop the connection without an answer. */
  reply: number | 'reset';
  /** How many requests it hits (default 1). */
  times?: number;
}

export interface HubStandinOptions {
  port?: number;
  /** Tokens that may write (each must start with hf_, as the client insists). */
  tokens: string[];
}

export interface HubRequest { method: string; route: HubRoute | null; path: string; status: number; authorized: boolean }

const TYPES: Record<string, RepoType> = { datasets: 'dataset', spaces: 'space', models: 'model' };

export class HubStandin {
  readonly url: string;
  readonly storage = new HubStorage();
  /** Every request, in order (no header values: tokens never land here). */
  readonly requests: HubRequest[] = [];
  private readonly faults: (HubFault & { left: number })[] = [];
  private readonly lfs: LfsEndpoints;

  private constructor(private readonly server: http.Server, port: number, private readonly tokens: Set<string>) {
    this.url = `http://127.0.0.1:${port}`;
    this.lfs = new LfsEndpoints(this.storage, () => this.url);
  }

  static async start(o: HubStandinOptions): Promise<HubStandin> {
    const { server, port } = await listenOnLoopback(o.port ?? 0);
    const standin = new HubStandin(server, port, new Set(o.tokens));
    server.on('request', (req, res) => {
      standin.handle(req, res).catch((err: Error) => {
        if (!res.headersSent) send(res, { status: 500, body: { error: err.message } });
        else res.destroy();
      });
    });
    return standin;
  }

  /** Make the next matching requests fail. */
  fail(fault: HubFault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** A repository as stored (undefined: none). */
  repo(type: RepoType, id: string): Repo | undefined {
    return this.storage.get(type, id);
  }

  /** A file's bytes on a branch of a repository, or null. */
  file(type: RepoType, id: string, path: string, revision = 'main'): Buffer | null {
    const repo = this.storage.get(type, id);
    return repo ? this.storage.read(repo, revision, path)?.bytes ?? null : null;
  }

  async close(): Promise<void> {
    await closeNow(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const authorized = !!bearer && this.tokens.has(bearer);
    const match = route(method, url.pathname);
    const log = (status: number) => this.requests.push({ method, route: match?.route ?? null, path: url.pathname, status, authorized });
    const body = await readBody(req);

    const fault = this.faults.find((f) => f.left > 0 && (f.route === 'any' || f.route === match?.route));
    if (fault) {
      fault.left--;
      log(fault.reply === 'reset' ? 0 : fault.reply);
      if (fault.reply === 'reset') return void res.destroy();
      return send(res, { status: fault.reply, body: { error: `stand-in fault: HTTP ${fault.reply}` } });
    }
    if (!match) {
      log(404);
      return send(res, { status: 404, body: { error: `no route for ${method} ${url.pathname}` } });
    }
    const answer = this.answer(match, { url, body, authorized, method, range: req.headers.range });
    log(answer.status);
    send(res, answer, method === 'HEAD');
  }

  private answer(m: Match, r: { url: URL; body: Buffer; authorized: boolean; method: string; range?: string }): Answer & { bytes?: Buffer } {
    const unauthorized: Answer = { status: 401, body: { error: 'Invalid credentials in Authorization header' } };
    if (m.route === 'whoami') return r.authorized ? { status: 200, body: { type: 'user', name: 'perfmine-standin', auth: { accessToken: { role: 'write' } } } } : unauthorized;
    if (m.route === 'create-repo') {
      if (!r.authorized) return unauthorized;
      const b = parseJson(r.body) as { name?: string; organization?: string; type?: string; visibility?: string; private?: boolean } | null;
      if (!b?.name || !b.organization) return { status: 400, body: { error: 'name and organization are required' } };
      const type = (b.type ?? 'model') as RepoType;
      if (!['model', 'dataset', 'space'].includes(type)) return { status: 400, body: { error: `unknown type ${type}` } };
      const id = `${b.organization}/${b.name}`;
      const repo = this.storage.create(type, id, { private: b.visibility === 'private' || b.private === true });
      if (!repo) return { status: 409, body: { error: `You already created this ${type} repo`, url: this.repoUrl(type, id) } };
      return { status: 200, body: { url: this.repoUrl(type, id), name: id, id } };
    }
    const repo = this.storage.get(m.type!, m.id!);
    const notFound: Answer = { status: 404, body: { error: 'Repository not found' }, headers: { 'X-Error-Code': 'RepoNotFound' } };
    const writes = m.route === 'preupload' || m.route === 'commit' || m.route === 'lfs-batch';
    if (writes && !r.authorized) return unauthorized;
    if (!repo || (repo.private && !r.authorized && m.route !== 'lfs-upload')) return notFound;
    switch (m.route) {
      case 'repo-info': {
        const head = this.storage.head(repo)!;
        return {
          status: 200,
          body: {
            _id: repo.id, id: repo.id, private: repo.private, sha: head.oid, lastModified: head.at.toISOString(), likes: 0,
            siblings: [...head.files.keys()].sort().map((rfilename) => ({ rfilename })),
          },
        };
      }
      case 'preupload':
        return preupload(this.storage, repo, m.rest!, parseJson(r.body));
      case 'commit':
        return commit(this.storage, repo, m.rest!, r.body.toString('utf8'), this.url);
      case 'lfs-batch': {
        const b = parseJson(r.body);
        return b ? this.lfs.batch(repo, b as object) : { status: 400, body: { message: 'the body is not JSON' } };
      }
      case 'lfs-upload':
        return r.method === 'PUT' ? this.lfs.upload(repo, m.rest!, r.url.searchParams.get('sig'), r.body) : this.lfs.download(repo, m.rest!, r.url.searchParams.get('sig'));
      case 'tree': {
        const [rev, ...dir] = m.rest!.split('/');
        const commitAt = this.storage.resolve(repo, decodeURIComponent(rev));
        if (!commitAt) return { status: 404, body: { error: `Invalid rev id: ${rev}` }, headers: { 'X-Error-Code': 'RevisionNotFound' } };
        const prefix = dir.length ? `${dir.join('/')}/` : '';
        const entries = [...commitAt.files.values()].filter((f) => f.path.startsWith(prefix)).sort((a, b) => a.path.localeCompare(b.path));
        return {
          status: 200,
          body: entries.map((f) => ({
            type: 'file', path: f.path, size: f.size, oid: f.sha256, ...(f.lfs ? { lfs: { oid: f.sha256, size: f.size, pointerSize: 134 } } : {}),
          })),
        };
      }
      case 'resolve': {
        const slash = m.rest!.indexOf('/');
        const rev = decodeURIComponent(m.rest!.slice(0, slash));
        const path = decodeURIComponent(m.rest!.slice(slash + 1));
        const found = this.storage.read(repo, rev, path);
        if (!found) return { status: 404, body: { error: 'Entry not found' }, headers: { 'X-Error-Code': 'EntryNotFound' } };
        return ranged(found.bytes, found.file.sha256, found.commit.oid, r.range);
      }
      default:
        return { status: 404, body: { error: 'not found' } };
    }
  }

  private repoUrl(type: RepoType, id: string): string {
    return `${this.url}/${type === 'model' ? '' : `${type}s/`}${id}`;
  }
}

interface Match { route: HubRoute; type?: RepoType; id?: string; rest?: string }

/** Which endpoint a request is for. Model repositories have no type prefix outside /api, as on the hub. */
function route(method: string, pathname: string): Match | null {
  let m: RegExpExecArray | null;
  if (method === 'GET' && pathname === '/api/whoami-v2') return { route: 'whoami' };
  if (method === 'POST' && pathname === '/api/repos/create') return { route: 'create-repo' };
  if ((m = /^\/api\/(models|datasets|spaces)\/([^/]+\/[^/]+)(?:\/(preupload|commit|tree)\/(.+))?$/.exec(pathname))) {
    const [, plural, id, action, rest] = m;
    const base = { type: TYPES[plural], id: decodeURIComponent(id), rest };
    if (!action) return method === 'GET' ? { route: 'repo-info', ...base } : null;
    if (action === 'tree') return method === 'GET' ? { route: 'tree', ...base } : null;
    if (method !== 'POST') return null;
    return { route: action as 'preupload' | 'commit', ...base, rest: decodeURIComponent(rest) };
  }
  if ((m = /^\/_standin\/lfs\/(models|datasets|spaces)\/([^/]+\/[^/]+)\/([0-9a-f]{64})$/.exec(pathname))) {
    return method === 'PUT' || method === 'GET' ? { route: 'lfs-upload', type: TYPES[m[1]], id: m[2], rest: m[3] } : null;
  }
  if ((m = /^\/(?:(datasets|spaces)\/)?([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/.exec(pathname))) {
    return method === 'POST' ? { route: 'lfs-batch', type: m[1] ? TYPES[m[1]] : 'model', id: m[2] } : null;
  }
  if ((m = /^\/(?:(datasets|spaces)\/)?([^/]+\/[^/]+)\/resolve\/(.+)$/.exec(pathname))) {
    return method === 'GET' || method === 'HEAD' ? { route: 'resolve', type: m[1] ? TYPES[m[1]] : 'model', id: m[2], rest: m[3] } : null;
  }
  return null;
}

/** A file's bytes, honouring `Range: bytes=a-b` (the client probes size and reads with ranges). */
function ranged(bytes: Buffer, etag: string, commitOid: string, rangeHeader: string | undefined): Answer & { bytes: Buffer } {
  const headers: Record<string, string> = {
    ETag: `"${etag}"`, 'X-Repo-Commit': commitOid, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream',
  };
  const range = rangeHeader ? /^bytes=(\d*)-(\d*)$/.exec(rangeHeader) : null;
  if (!range) return { status: 200, body: null, bytes, headers };
  const size = bytes.length;
  let start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1]);
  let end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
  if (size === 0) { start = 0; end = -1; }
  if (start > end && size > 0) return { status: 416, body: null, bytes: Buffer.alloc(0), headers: { ...headers, 'Content-Range': `bytes */${size}` } };
  return { status: 206, body: null, bytes: bytes.subarray(start, end + 1), headers: { ...headers, 'Content-Range': `bytes ${start}-${Math.max(end, 0)}/${size}` } };
}

function send(res: ServerResponse, a: Answer & { bytes?: Buffer }, headOnly = false): void {
  const headers: Record<string, string> = { ...(a.headers ?? {}) };
  let payload: Buffer;
  if (a.bytes) payload = a.bytes;
  else {
    headers['Content-Type'] ??= 'application/json';
    payload = Buffer.from(a.body === null || a.body === undefined ? '' : JSON.stringify(a.body));
  }
  headers['Content-Length'] = String(payload.length);
  res.writeHead(a.status, headers);
  res.end(headOnly ? undefined : payload);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
