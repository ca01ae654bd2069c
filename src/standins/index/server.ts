/**
 * The package-index stand-in: a real HTTP server on 127.0.0.1 speaking the
 * simple repository API (PEP 503 HTML, PEP 691 JSON with PEP 700 upload
 * times) over wheels on disk, serving the files with their sha256, with
 * fault injection. pip resolves against it exactly as against PyPI.
 *
 * Routes: /simple/ and /simple/NAME/ (non-canonical names redirect), /files/FILE,
 * and the control API under /_standin/ (faults, upload times, stats).
 */
import { createReadStream } from 'node:fs';
import type http from 'node:http';
import { canonicalName } from '../../domain/python-requirements.js';
import { closeNow, listenOnLoopback } from '../loopback.js';
import { Catalog, type ManifestEntry } from './catalog.js';
import { IndexFaults, type IndexFault } from './faults.js';
import { HTML_TYPE, JSON_TYPE, negotiate, projectListHtml, projectListJson, projectPageHtml, projectPageJson, type RenderOptions } from './protocol.js';

export interface IndexStandinOptions {
  port?: number;
  /** A directory of wheels (and an index-manifest.json) to serve. */
  wheelsDir?: string;
  /** false: HTML only, as a static PEP 503 tree (default true). */
  json?: boolean;
  /** false: JSON pages carry no upload-time (default true). */
  uploadTimes?: boolean;
}

export interface IndexStandinStats {
  total: number;
  byRoute: Record<string, number>;
  /** Project pages served, by canonical name. */
  byProject: Record<string, number>;
  /** Files served, by file name. */
  byFile: Record<string, number>;
}

export class IndexStandin {
  readonly url: string;
  /** The index URL pip takes (`--index-url`). */
  readonly simpleUrl: string;
  readonly catalog = new Catalog();
  private readonly faults = new IndexFaults();
  private readonly render: RenderOptions;
  private counts: IndexStandinStats = { total: 0, byRoute: {}, byProject: {}, byFile: {} };

  private constructor(private readonly server: http.Server, port: number, opts: IndexStandinOptions) {
    this.url = `http://127.0.0.1:${port}`;
    this.simpleUrl = `${this.url}/simple`;
    this.render = { json: opts.json ?? true, uploadTimes: opts.uploadTimes ?? true };
  }

  static async start(opts: IndexStandinOptions = {}): Promise<IndexStandin> {
    const { server, port } = await listenOnLoopback(opts.port);
    const standin = new IndexStandin(server, port, opts);
    if (opts.wheelsDir) standin.catalog.loadDir(opts.wheelsDir);
    server.on('request', (req, res) => {
      standin.dispatch(req, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`stand-in error: ${err.message}\n`);
      });
    });
    return standin;
  }

  /** Serves one more file (a wheel or sdist on disk). */
  addFile(file: string, entry: ManifestEntry = {}): void {
    this.catalog.addFile(file, entry);
  }

  loadDir(dir: string): number {
    return this.catalog.loadDir(dir);
  }

  setUploadTime(filename: string, at: Date): void {
    this.catalog.setUploadTime(filename, at);
  }

  inject(fault: IndexFault): void {
    this.faults.inject(fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  get faultHits() {
    return this.faults.hitsByKind();
  }

  get stats(): IndexStandinStats {
    return structuredClone(this.counts);
  }

  resetStats(): void {
    this.counts = { total: 0, byRoute: {}, byProject: {}, byFile: {} };
  }

  async close(): Promise<void> {
    this.faults.clear();
    await closeNow(this.server);
  }

  private count(route: string, key?: { project?: string; file?: string }): void {
    this.counts.total++;
    this.counts.byRoute[route] = (this.counts.byRoute[route] ?? 0) + 1;
    if (key?.project) this.counts.byProject[key.project] = (this.counts.byProject[key.project] ?? 0) + 1;
    if (key?.file) this.counts.byFile[key.file] = (this.counts.byFile[key.file] ?? 0) + 1;
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === '_standin') return this.control(req, res, parts.slice(1));
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405).end();
    const category = parts[0] === 'simple' ? 'simple' : parts[0] === 'files' ? 'files' : 'other';
    const fault = this.faults.take(category);
    if (fault && !(await this.faults.apply(fault, res))) return;

    if (parts[0] === 'simple' && parts.length === 1) {
      this.count('simple-index');
      return this.page(req, res, url, () => projectListHtml(this.catalog.projects()), () => projectListJson(this.catalog.projects()));
    }
    if (parts[0] === 'simple' && parts.length === 2) {
      const canonical = canonicalName(parts[1]);
      if (canonical !== parts[1] || !url.pathname.endsWith('/')) {
        return void res.writeHead(301, { location: `/simple/${canonical}/${url.search}` }).end();
      }
      const files = this.catalog.projectFiles(canonical);
      this.count('simple-project', { project: canonical });
      if (files.length === 0) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
      return this.page(req, res, url, () => projectPageHtml(canonical, files), () => projectPageJson(canonical, files, this.render));
    }
    if (parts[0] === 'files' && parts.length === 2) {
      const file = this.catalog.file(parts[1]);
      this.count('file', { file: parts[1] });
      if (!file) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(file.size) });
      if (req.method === 'HEAD') return void res.end();
      createReadStream(file.path).pipe(res);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
  }

  private page(req: http.IncomingMessage, res: http.ServerResponse, url: URL, html: () => string, json: () => unknown): void {
    const format = negotiate(req.headers.accept, url.searchParams.get('format'), this.render);
    const body = format === 'json' ? JSON.stringify(json()) : html();
    res.writeHead(200, {
      'content-type': format === 'json' ? JSON_TYPE : (this.render.json ? HTML_TYPE : 'text/html; charset=utf-8'),
      vary: 'Accept', 'cache-control': 'max-age=0, must-revalidate',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** POST /_standin/faults, POST /_standin/faults/clear, POST /_standin/upload-time, GET /_standin/stats. */
  private async control(req: http.IncomingMessage, res: http.ServerResponse, parts: string[]): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const read = async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    };
    try {
      const route = `${req.method} ${parts.join('/')}`;
      if (route === 'GET stats') return reply(200, { ...this.counts, faults: this.faults.hitsByKind() });
      if (route === 'POST faults') {
        this.inject(await read() as unknown as IndexFault);
        return reply(201, { ok: true });
      }
      if (route === 'POST faults/clear') {
        this.clearFaults();
        return reply(200, { ok: true });
      }
      if (route === 'POST upload-time') {
        const body = await read();
        this.setUploadTime(String(body.filename), new Date(String(body.upload_time)));
        return reply(200, { ok: true });
      }
      return reply(404, { message: 'Not Found' });
    } catch (err) {
      return reply(400, { message: (err as Error).message });
    }
  }
}
