/**
 * The cutoff proxy: a loopback HTTP server between pip and the package index
 * that serves the index's PEP 691 JSON pages with every file uploaded at or
 * after the cutoff removed (PEP 700 `upload-time`), so a pip without a cutoff
 * flag (Debian's 23.0.1) resolves against the index as it was at the commit.
 *
 * Each resolution opens a session (its own URL prefix, its own cutoff) and
 * learns from it what pip cannot tell apart in its output: the index gave no
 * upload times (a cutoff is impossible), or the index itself failed (5xx,
 * timeouts, refused connections: the service is down, not the row).
 * Without a cutoff a session passes pages through unchanged (HTML gets a
 * <base> so its relative links still lead to the index). File links are made
 * absolute: pip downloads files from the index directly.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { closeNow, listenOnLoopback } from '../../standins/loopback.js';

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
const ACCEPT = `${JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.1, text/html;q=0.01`;

export interface ProxySession {
  /** The `--index-url` pip takes for this session. */
  readonly indexUrl: string;
  readonly cutoff: Date | null;
  /** Projects whose pages carried no upload times (with a cutoff: the cutoff is impossible). */
  readonly missingUploadTimes: Set<string>;
  /** What went wrong with the index itself (status or network error), per request. */
  readonly upstreamFailures: string[];
  /** Project pages pip asked for. */
  readonly projects: Set<string>;
  /**
   * Upload times around the cutoff over every page served: the newest file
   * still visible and the oldest one hidden. The same pages, and so the same
   * resolution, hold for any cutoff in (visibleMax, hiddenMin].
   */
  visibleMax: number | null;
  hiddenMin: number | null;
  close(): void;
}

interface SessionState extends ProxySession {
  id: string;
}

export interface CutoffProxyOptions {
  /** The index's simple API base, e.g. https://pypi.org/simple */
  upstream: string;
  /** Per upstream request. */
  timeoutMs?: number;
}

export class CutoffProxy {
  private readonly sessions = new Map<string, SessionState>();
  private readonly upstream: string;

  private constructor(private readonly server: http.Server, readonly url: string, private readonly opts: CutoffProxyOptions) {
    this.upstream = opts.upstream.replace(/\/+$/, '');
  }

  static async start(opts: CutoffProxyOptions): Promise<CutoffProxy> {
    const { server, port } = await listenOnLoopback(0);
    server.unref(); // a proxy waiting for work never keeps the process alive
    const proxy = new CutoffProxy(server, `http://127.0.0.1:${port}`, opts);
    server.on('request', (req, res) => {
      proxy.handle(req, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`cutoff proxy error: ${err.message}\n`);
      });
    });
    return proxy;
  }

  open(cutoff: Date | null): ProxySession {
    const id = randomBytes(9).toString('base64url');
    const session: SessionState = {
      id, indexUrl: `${this.url}/s/${id}`, cutoff, missingUploadTimes: new Set(), upstreamFailures: [], projects: new Set(),
      visibleMax: null, hiddenMin: null,
      close: () => { this.sessions.delete(id); },
    };
    this.sessions.set(id, session);
    return session;
  }

  close(): Promise<void> {
    return closeNow(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const m = /^\/s\/([^/]+)\/([^/?]+)\/?(?:\?.*)?$/.exec(req.url ?? '');
    const session = m ? this.sessions.get(m[1]) : undefined;
    if (!m || !session || req.method !== 'GET') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
    const project = decodeURIComponent(m[2]);
    session.projects.add(project);
    const pageUrl = `${this.upstream}/${encodeURIComponent(project)}/`;
    let upstream: Response;
    let body: string;
    try {
      upstream = await fetch(pageUrl, { headers: { accept: ACCEPT }, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000) });
      body = await upstream.text();
    } catch (err) {
      session.upstreamFailures.push(`${pageUrl}: ${describeFetchError(err)}`);
      return void res.writeHead(503, { 'content-type': 'text/plain' }).end('the index did not answer\n');
    }
    if (upstream.status === 404 || upstream.status === 410) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
    if (!upstream.ok) {
      // 5xx, and 4xx other than "no such project", are the index's failure, not the requirement's.
      session.upstreamFailures.push(`${pageUrl}: HTTP ${upstream.status}`);
      return void res.writeHead(503, { 'content-type': 'text/plain' }).end(`the index answered HTTP ${upstream.status}\n`);
    }
    const base = upstream.url || pageUrl;
    const isJson = (upstream.headers.get('content-type') ?? '').includes(JSON_TYPE);
    if (session.cutoff === null) {
      if (isJson) return this.sendJson(res, absolutize(JSON.parse(body), base));
      return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        .end(withBase(body, base));
    }
    const page = isJson ? JSON.parse(body) as SimplePage : null;
    if (!page || !Array.isArray(page.files) || page.files.some((f) => typeof f['upload-time'] !== 'string')) {
      session.missingUploadTimes.add(project);
      return void res.writeHead(404, { 'content-type': 'text/plain' })
        .end(`the index gives no upload times for ${project}: a cutoff is impossible\n`);
    }
    const cutoff = session.cutoff.getTime();
    const kept = page.files.filter((f) => {
      const at = Date.parse(f['upload-time'] as string);
      if (at < cutoff) session.visibleMax = Math.max(session.visibleMax ?? at, at);
      else session.hiddenMin = Math.min(session.hiddenMin ?? at, at);
      return at < cutoff;
    });
    const versions = Array.isArray(page.versions) ? page.versions.filter((v) => kept.some((f) => fileVersion(f.filename) === v)) : undefined;
    return this.sendJson(res, absolutize({ ...page, files: kept, ...(versions ? { versions } : {}) }, base));
  }

  private sendJson(res: http.ServerResponse, page: unknown): void {
    res.writeHead(200, { 'content-type': JSON_TYPE, 'cache-control': 'no-store' }).end(JSON.stringify(page));
  }
}

interface SimplePage {
  files: Array<{ filename: string; url: string; 'upload-time'?: unknown; [k: string]: unknown }>;
  versions?: string[];
  [k: string]: unknown;
}

function absolutize(page: SimplePage, base: string): SimplePage {
  return { ...page, files: (page.files ?? []).map((f) => ({ ...f, url: new URL(f.url, base).href })) };
}

/** HTML pages keep working from another address when they name their own base. */
function withBase(html: string, base: string): string {
  const tag = `<base href="${base.replace(/"/g, '&quot;')}">`;
  return /<head[^>]*>/i.test(html) ? html.replace(/<head[^>]*>/i, (h) => `${h}${tag}`) : `${tag}\n${html}`;
}

/** The version part of a wheel or sdist file name (to keep PEP 700's `versions` consistent). */
function fileVersion(filename: string): string | null {
  const wheel = /^[^-]+-([^-]+)-.*\.whl$/.exec(filename);
  if (wheel) return wheel[1];
  const sdist = /^.+-([^-]+)\.(?:tar\.gz|zip|tar\.bz2)$/.exec(filename);
  return sdist ? sdist[1] : null;
}

function describeFetchError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'timed out';
  return e.cause?.code ?? e.cause?.message ?? e.message;
}
