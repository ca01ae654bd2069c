/**
 * A GitHub API stand-in: a real HTTP server on 127.0.0.1 that speaks the
 * subset of the REST and GraphQL APIs perfmine uses, with per-token quotas and
 * injectable faults, so the real octokit clients can be exercised without the
 * network. Data comes from StandinPR/StandinRepo records (e.g. a JSONL dump).
 */
import { closeNow, listenOnLoopback } from '../loopback.js';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { resolve as resolvePath } from 'node:path';
import { checkPR, epochSeconds, gitBlobSha, githubTime, loadPRsFromJsonl } from './data.js';
import {
  graphqlNode,
  listedFiles,
  MAX_DIFF_FILES,
  restFile,
  restPR,
  unifiedDiff,
} from './render.js';
import {
  codeMatches,
  inRange,
  isIndexed,
  parseCodeQuery,
  parsePRQuery,
  SearchQueryError,
  servedResults,
  type PRQuery,
} from './search.js';
import { encodePayload, TextCorruptor } from './corrupt-text.js';
import { FaultQueue, faultReply, isReplyFault, PRIMARY_LIMIT_MESSAGE } from './faults.js';
import type {
  Corruption,
  Fault,
  FaultStats,
  StandinIssue,
  StandinOptions,
  StandinPR,
  StandinRepo,
  StandinStats,
} from './types.js';

export type {
  Corruption,
  CorruptionKind,
  Fault,
  FaultKind,
  FaultStats,
  StandinFile,
  StandinIssue,
  StandinOptions,
  StandinPR,
  StandinRepo,
  StandinStats,
} from './types.js';
export { loadPRsFromJsonl } from './data.js';

/** GitHub search never returns more than the first 1000 results. */
const SEARCH_CAP = 1000;
const DOCS = 'https://docs.github.com/rest';
const WEB = 'https://github.com';
/** What an unconfigured (no `tokens`) stand-in reports: plenty, never spent. */
const UNLIMITED = 5000;

type Category = 'graphql' | 'search' | 'rest';
type Resource = 'core' | 'search' | 'graphql';

/** A handler's answer: an object is sent as JSON, a string as text. */
interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface Quota {
  limit: number;
  used: number;
  /** Window end, epoch ms. */
  resetAt: number;
}

interface Ctx {
  url: URL;
  body: unknown;
  /** Items a `truncate` fault removes from this list page. */
  drop: number;
  quota: Quota;
}

interface Route {
  /** Stats key, e.g. `rest:pulls/files`. */
  key: string;
  category: Category;
  resource: Resource;
  /** A list page that a `truncate` fault can shorten. */
  truncatable?: boolean;
  /** Not charged against the quota (GitHub does not charge /rate_limit). */
  free?: boolean;
  handle: (ctx: Ctx) => Reply;
}

interface RepoRecord {
  id: number;
  repo: StandinRepo;
  prs: Map<number, StandinPR>;
  issues: Map<number, StandinIssue>;
  diffStatus: Map<number, number>;
  /** Issue numbers GitHub refuses (404 deleted, 410 gone or issues turned off, 451 withheld), with their comments and timeline. */
  issueStatus: Map<number, number>;
}

/** A PR with what search sorts and filters on, precomputed. */
interface IndexedPR {
  pr: StandinPR;
  repoKey: string;
  merged: number;
  created: number;
}

const notFound = (): Reply => ({ status: 404, body: { message: 'Not Found', documentation_url: DOCS } });

export class GitHubStandin {
  readonly url: string;
  private readonly repos = new Map<string, RepoRecord>();
  private readonly quotas = new Map<string, Quota>();
  private readonly faults = new FaultQueue();
  private readonly corruptor = new TextCorruptor();
  private counts: StandinStats = { total: 0, byRoute: {}, byToken: {} };
  /** All PRs sorted as search returns them; rebuilt lazily after addPRs. */
  private index: IndexedPR[] | null = null;
  private nextRepoId = 1;
  private requestSeq = 0;
  private closed = false;
  private readonly resetSeconds: number;
  /** Former "owner/name" (lower case) -> current; GitHub answers the former name too. */
  private readonly formerNames = new Map<string, string>();
  /** See StandinOptions.searchVisibilityDelayS; tests change it to let time pass. */
  searchVisibilityDelayS: number;

  private constructor(
    private readonly server: http.Server,
    port: number,
    private readonly opts: StandinOptions,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.resetSeconds = opts.resetSeconds ?? 3600;
    this.searchVisibilityDelayS = opts.searchVisibilityDelayS ?? 0;
  }

  static async start(opts: StandinOptions = {}): Promise<GitHubStandin> {
    const { server, port } = await listenOnLoopback(opts.port);
    const standin = new GitHubStandin(server, port, opts);
    server.on('request', (req, res) => void standin.dispatch(req, res));
    return standin;
  }

  // ---------------------------------------------------------------- data

  addRepo(repo: StandinRepo): void {
    const key = `${repo.owner}/${repo.name}`.toLowerCase();
    const existing = this.repos.get(key);
    if (existing) existing.repo = { ...repo };
    else this.repos.set(key, this.newRecord({ ...repo }));
  }

  /** Renames a repository as GitHub does: same id, and the former name still answers (GitHub redirects it). */
  renameRepo(from: string, to: string): void {
    const rec = this.repos.get(from.toLowerCase());
    const [owner, name] = to.split('/');
    if (!rec || !owner || !name) throw new Error(`renameRepo: no repository ${from}, or ${to} is not "owner/name"`);
    this.repos.delete(from.toLowerCase());
    rec.repo = { ...rec.repo, owner, name };
    for (const [n, pr] of rec.prs) rec.prs.set(n, { ...pr, repository: to });
    this.repos.set(to.toLowerCase(), rec);
    this.formerNames.set(from.toLowerCase(), to.toLowerCase());
    this.index = null;
  }

  addPRs(prs: StandinPR[]): void {
    for (const pr of prs) {
      const problem = checkPR(pr);
      if (problem) throw new Error(`addPRs: PR ${pr.repository}#${pr.number}: ${problem}`);
      this.ensureRepo(pr.repository).prs.set(pr.number, { ...pr });
    }
    this.index = null;
  }

  loadJsonl(file: string, opts: { repository?: string; limit?: number; numberOffset?: number } = {}): number {
    let prs = loadPRsFromJsonl(resolvePath(file));
    if (opts.limit !== undefined) prs = prs.slice(0, opts.limit);
    prs = prs.map((pr) => ({
      ...pr,
      repository: opts.repository ?? pr.repository,
      number: pr.number + (opts.numberOffset ?? 0),
    }));
    this.addPRs(prs);
    return prs.length;
  }

  addIssue(repository: string, issue: StandinIssue): void {
    this.ensureRepo(repository).issues.set(issue.number, { ...issue });
  }

  setDiffStatus(repository: string, number: number, status: number): void {
    this.ensureRepo(repository).diffStatus.set(number, status);
  }

  /** Answers this status (404, 410, 451...) for the issue, its comments and its timeline; null serves it again. */
  setIssueStatus(repository: string, number: number, status: number | null): void {
    const rec = this.ensureRepo(repository);
    if (status === null) rec.issueStatus.delete(number);
    else rec.issueStatus.set(number, status);
  }

  /** Queues a fault for the next matching request(s) (see Fault and faults.ts). */
  inject(fault: Fault): void {
    this.faults.inject(fault);
  }

  /** Drops queued faults and ends the requests `timeout` faults are holding (unanswered). */
  clearFaults(): void {
    this.faults.clear();
  }

  /** Corrupts the title and body of the chosen PRs from now on (null: serve them intact again). */
  corrupt(corruption: Corruption | null): void {
    this.corruptor.set(corruption);
  }

  /** What the faults did so far. */
  get faultStats(): FaultStats {
    return { byKind: this.faults.hitsByKind(), corruptedPRs: this.corruptor.servedCount };
  }

  /** A snapshot of the request counters. */
  get stats(): StandinStats {
    return structuredClone(this.counts);
  }

  resetStats(): void {
    this.counts = { total: 0, byRoute: {}, byToken: {} };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.faults.clear();
    await closeNow(this.server);
  }

  private newRecord(repo: StandinRepo): RepoRecord {
    return { id: this.nextRepoId++, repo, prs: new Map(), issues: new Map(), diffStatus: new Map(), issueStatus: new Map() };
  }

  private ensureRepo(fullName: string): RepoRecord {
    const key = fullName.toLowerCase();
    let rec = this.repos.get(key);
    if (!rec) {
      const [owner, name] = fullName.split('/');
      if (!owner || !name) throw new Error(`repository must be "owner/name", got ${JSON.stringify(fullName)}`);
      rec = this.newRecord({ owner, name });
      this.repos.set(key, rec);
    }
    return rec;
  }

  private findRepo(owner: string, name: string): RepoRecord | undefined {
    const key = `${owner}/${name}`.toLowerCase();
    return this.repos.get(key) ?? this.repos.get(this.formerNames.get(key) ?? '');
  }

  private prIndex(): IndexedPR[] {
    if (!this.index) {
      const all: IndexedPR[] = [];
      for (const [repoKey, rec] of this.repos) {
        for (const pr of rec.prs.values()) {
          const merged = epochSeconds(pr.merged_at);
          const created = pr.authored_at ? epochSeconds(pr.authored_at) : merged;
          all.push({ pr, repoKey, merged, created });
        }
      }
      all.sort((a, b) => b.merged - a.merged || b.pr.number - a.pr.number);
      this.index = all;
    }
    return this.index;
  }

  // ---------------------------------------------------------------- HTTP plumbing

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', this.url);
      const raw = await readBody(req);
      if (url.pathname.startsWith('/_standin/')) {
        this.send(res, this.control(req.method ?? 'GET', url.pathname, raw));
      } else {
        await this.api(req, res, url, raw);
      }
    } catch (err) {
      if (!res.headersSent) {
        this.send(res, { status: 500, body: { message: `stand-in error: ${(err as Error).message}` } });
      }
    }
  }

  private control(method: string, pathname: string, raw: string): Reply {
    if (method === 'GET' && pathname === '/_standin/stats') return { status: 200, body: this.stats };
    if (method === 'POST' && pathname === '/_standin/reset-stats') {
      this.resetStats();
      return { status: 200, body: { ok: true } };
    }
    if (method === 'POST' && pathname === '/_standin/faults') {
      try {
        this.inject(JSON.parse(raw) as Fault);
      } catch (err) {
        return { status: 400, body: { message: (err as Error).message } };
      }
      return { status: 201, body: { queued: this.faults.length } };
    }
    if (method === 'POST' && pathname === '/_standin/faults/clear') {
      this.clearFaults();
      return { status: 200, body: { ok: true } };
    }
    if (method === 'POST' && pathname === '/_standin/corrupt') {
      try {
        this.corrupt(JSON.parse(raw || 'null') as Corruption | null);
      } catch (err) {
        return { status: 400, body: { message: (err as Error).message } };
      }
      return { status: 200, body: { ok: true } };
    }
    if (method === 'GET' && pathname === '/_standin/faults') return { status: 200, body: this.faultStats };
    return notFound();
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL, raw: string): Promise<void> {
    const token = bearerToken(req.headers.authorization);
    let body: unknown = undefined;
    let bodyOk = true;
    if (raw.length) {
      try {
        body = JSON.parse(raw);
      } catch {
        bodyOk = false;
      }
    }
    const route = this.route(req.method ?? 'GET', url.pathname, String(req.headers.accept ?? ''), body);

    const who = token ?? 'anonymous';
    this.counts.total++;
    this.counts.byRoute[route.key] = (this.counts.byRoute[route.key] ?? 0) + 1;
    this.counts.byToken[who] = (this.counts.byToken[who] ?? 0) + 1;

    if (this.opts.latencyMs) await sleep(this.opts.latencyMs);

    const requestId = { 'x-github-request-id': `5TND:${(++this.requestSeq).toString(16).toUpperCase()}` };
    const tokens = this.opts.tokens;
    if (tokens && (token === undefined || !(token in tokens))) {
      const anon: Quota = { limit: 60, used: 0, resetAt: Date.now() + this.resetSeconds * 1000 };
      this.send(
        res,
        { status: 401, body: { message: 'Bad credentials', documentation_url: DOCS, status: '401' } },
        { ...requestId, ...rateHeaders(route.resource, anon) },
      );
      return;
    }

    const quota = this.quota(token);
    const fault = this.faults.take(route);
    if (fault && isReplyFault(fault)) {
      this.send(res, faultReply(fault), { ...requestId, ...rateHeaders(route.resource, quota) });
      return;
    }
    if (fault?.kind === 'timeout' && !(await this.faults.hold(fault, res))) return;

    if (tokens && !route.free) {
      if (quota.used >= quota.limit) {
        this.send(res, exhaustedReply(route), { ...requestId, ...rateHeaders(route.resource, quota) });
        return;
      }
      quota.used++;
    }

    const reply = bodyOk
      ? route.handle({ url, body, drop: fault?.kind === 'truncate' ? fault.drop : 0, quota })
      : { status: 400, body: { message: 'Problems parsing JSON', documentation_url: DOCS } };
    this.send(res, reply, { ...requestId, ...rateHeaders(route.resource, quota) });
  }

  private send(res: ServerResponse, reply: Reply, headers: Record<string, string> = {}): void {
    const text = typeof reply.body === 'string';
    const payload = encodePayload(text ? (reply.body as string) : JSON.stringify(reply.body));
    res.writeHead(reply.status, {
      'content-type': text ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
      'content-length': String(payload.length),
      ...headers,
      ...reply.headers,
    });
    res.end(payload);
  }

  /** The token's current window, refilled once its reset time has passed. */
  private quota(token: string | undefined): Quota {
    const now = Date.now();
    const limit = token !== undefined ? this.opts.tokens?.[token] : undefined;
    if (!this.opts.tokens || token === undefined || limit === undefined) {
      return { limit: UNLIMITED, used: 0, resetAt: now + this.resetSeconds * 1000 };
    }
    let q = this.quotas.get(token);
    if (!q || now >= q.resetAt) {
      q = { limit, used: 0, resetAt: now + this.resetSeconds * 1000 };
      this.quotas.set(token, q);
    }
    return q;
  }

  // ---------------------------------------------------------------- routing

  private route(method: string, rawPath: string, accept: string, body: unknown): Route {
    const path = rawPath.length > 1 ? rawPath.replace(/\/+$/, '') : rawPath;
    const rest = (key: string, handle: Route['handle'], extra: Partial<Route> = {}): Route => ({
      key: `rest:${key}`,
      category: 'rest',
      resource: 'core',
      handle,
      ...extra,
    });

    if (path === '/graphql' && method === 'POST') {
      const query = queryText(body);
      const isSearch = SEARCH_FIELD_RE.test(query);
      return {
        key: isSearch ? 'graphql:search' : 'graphql:other',
        category: 'graphql',
        resource: 'graphql',
        truncatable: isSearch,
        handle: (ctx) => this.graphql(ctx),
      };
    }
    if (method !== 'GET') return rest('unknown', notFound);
    if (path === '/rate_limit') return rest('rate_limit', (ctx) => this.rateLimit(ctx), { free: true });
    if (path === '/search/code') {
      return {
        key: 'rest:search/code',
        category: 'search',
        resource: 'search',
        truncatable: true,
        handle: (ctx) => this.searchCode(ctx),
      };
    }
    if (path.startsWith('/search/')) {
      return { key: 'rest:search/other', category: 'search', resource: 'search', handle: notFound };
    }

    const m = /^\/repos\/([^/]+)\/([^/]+)(?:\/(.*))?$/.exec(path);
    if (!m) return rest('unknown', notFound);
    const [owner, name] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
    const sub = m[3] ?? '';
    let s: RegExpExecArray | null;

    if (sub === '') return rest('repo', () => this.repoInfo(owner, name));
    if ((s = /^contents(?:\/(.*))?$/.exec(sub))) {
      const filePath = decodeURIComponent(s[1] ?? '');
      const raw = accept.includes('raw');
      return rest('contents', () => this.contents(owner, name, filePath, raw));
    }
    if ((s = /^pulls\/(\d+)\/files$/.exec(sub))) {
      const n = Number(s[1]);
      return rest('pulls/files', (ctx) => this.pullFiles(owner, name, n, ctx), { truncatable: true });
    }
    if ((s = /^pulls\/(\d+)$/.exec(sub))) {
      const n = Number(s[1]);
      if (accept.includes('diff')) return rest('pulls/diff', () => this.pullDiff(owner, name, n));
      return rest('pulls', () => this.pull(owner, name, n));
    }
    if ((s = /^issues\/(\d+)(?:\/(comments|timeline))?$/.exec(sub))) {
      const n = Number(s[1]);
      if (s[2] === 'comments') return rest('issues/comments', (ctx) => this.issueComments(owner, name, n, ctx), { truncatable: true });
      if (s[2] === 'timeline') return rest('issues/timeline', (ctx) => this.issueTimeline(owner, name, n, ctx), { truncatable: true });
      return rest('issues', () => this.issue(owner, name, n));
    }
    return rest('unknown', notFound);
  }

  // ---------------------------------------------------------------- GraphQL

  private graphql(ctx: Ctx): Reply {
    const query = queryText(ctx.body);
    const variables = (ctx.body as { variables?: Record<string, unknown> } | undefined)?.variables ?? {};
    const search = SEARCH_FIELD_RE.exec(query);
    const rate = RATE_FIELD_RE.exec(query);
    if (!search && !rate) {
      return { status: 200, body: { errors: [{ message: 'query not supported by the stand-in' }] } };
    }
    const data: Record<string, unknown> = {};
    if (search) {
      // The response key is the alias when the query gives one (`prs: search(...)`).
      const key = search[1] ?? 'search';
      try {
        data[key] = this.searchPRs(searchArgs(query, search.index + search[0].length, variables), query, ctx.drop);
      } catch (err) {
        if (!(err instanceof SearchQueryError)) throw err;
        return {
          status: 200,
          body: { data: null, errors: [{ type: 'INVALID_QUERY', path: [key], message: err.message }] },
        };
      }
    }
    if (rate) {
      const q = ctx.quota;
      data[rate[1] ?? 'rateLimit'] = {
        limit: q.limit,
        cost: 1,
        remaining: q.limit - q.used,
        used: q.used,
        resetAt: githubTime(q.resetAt),
      };
    }
    return { status: 200, body: { data } };
  }

  private searchPRs(args: SearchArgs, query: string, drop: number) {
    if (typeof args.query !== 'string') throw new SearchQueryError('search requires a `query` string');
    const q = parsePRQuery(args.query);
    const nowS = Date.now() / 1000;
    const matches = this.prIndex().filter((e) => prMatches(q, e) && isIndexed(e.merged, nowS, this.searchVisibilityDelayS));
    const served = servedResults(matches, (e) => e.pr.search_duplicate);
    const reachable = Math.min(served.length, SEARCH_CAP);
    const start = args.after ? decodeCursor(args.after) : 0;
    const first = Math.max(0, Math.min(args.first ?? 100, 100));
    const end = Math.min(start + first, reachable);
    const page = start < end ? served.slice(start, end) : [];
    // A `truncate` fault: fewer nodes, but pageInfo as if the page were whole (a "short leaf").
    const shown = page.slice(0, Math.max(0, page.length - drop));
    const typename = query.includes('__typename');
    return {
      issueCount: matches.length,
      pageInfo: {
        hasNextPage: end < reachable,
        endCursor: page.length ? encodeCursor(end) : null,
        hasPreviousPage: start > 0,
        startCursor: page.length ? encodeCursor(start + 1) : null,
      },
      nodes: shown.map((e) => graphqlNode(this.corruptor.apply(e.pr), typename)),
    };
  }

  // ---------------------------------------------------------------- REST

  private rateLimit(ctx: Ctx): Reply {
    const q = ctx.quota;
    const one = { limit: q.limit, remaining: q.limit - q.used, reset: Math.ceil(q.resetAt / 1000), used: q.used };
    return { status: 200, body: { resources: { core: one, search: one, graphql: one }, rate: one } };
  }

  private searchCode(ctx: Ctx): Reply {
    const text = ctx.url.searchParams.get('q');
    if (!text) {
      return {
        status: 422,
        body: {
          message: 'Validation Failed',
          errors: [{ resource: 'Search', field: 'q', code: 'missing' }],
          documentation_url: DOCS,
        },
      };
    }
    const q = parseCodeQuery(text);
    // Deterministic order: most starred first, then by name.
    const recs = [...this.repos.values()].sort(
      (a, b) => (b.repo.stars ?? 0) - (a.repo.stars ?? 0) || fullName(a).localeCompare(fullName(b)),
    );
    const items = [];
    for (const rec of recs) {
      if (q.repos.length && !q.repos.includes(fullName(rec).toLowerCase())) continue;
      if (q.owners.length && !q.owners.includes(rec.repo.owner.toLowerCase())) continue;
      const files = rec.repo.files ?? {};
      // One item per repo: its shallowest matching file.
      const path = Object.keys(files)
        .filter((p) => codeMatches(q, p, files[p]))
        .sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))[0];
      if (path !== undefined) items.push(this.codeItem(rec, path, files[path]));
    }

    const { perPage, page } = pageParams(ctx.url, 30);
    const start = (page - 1) * perPage;
    if (start >= SEARCH_CAP) {
      return {
        status: 422,
        body: {
          message: 'Cannot access beyond the first 1000 results, or the endpoint may not be available.',
          documentation_url: DOCS,
        },
      };
    }
    const reachable = Math.min(items.length, SEARCH_CAP);
    const pageItems = items.slice(start, Math.min(start + perPage, reachable));
    return {
      status: 200,
      body: {
        total_count: items.length,
        incomplete_results: false,
        items: pageItems.slice(0, Math.max(0, pageItems.length - ctx.drop)),
      },
      headers: this.linkHeader(ctx.url, page, Math.ceil(reachable / perPage)),
    };
  }

  private codeItem(rec: RepoRecord, path: string, content: string) {
    return {
      name: path.slice(path.lastIndexOf('/') + 1),
      path,
      sha: gitBlobSha(content),
      url: `${this.url}/repos/${fullName(rec)}/contents/${path}`,
      html_url: `${WEB}/${fullName(rec)}/blob/${rec.repo.default_branch ?? 'main'}/${path}`,
      repository: this.repoSummary(rec),
      score: 1,
    };
  }

  private repoSummary(rec: RepoRecord) {
    const r = rec.repo;
    return {
      id: rec.id,
      node_id: Buffer.from(`010:Repository${rec.id}`).toString('base64'),
      name: r.name,
      full_name: fullName(rec),
      owner: { login: r.owner },
      private: false,
      fork: r.fork ?? false,
      html_url: `${WEB}/${fullName(rec)}`,
      url: `${this.url}/repos/${fullName(rec)}`,
    };
  }

  private repoInfo(owner: string, name: string): Reply {
    const rec = this.findRepo(owner, name);
    if (!rec) return notFound();
    const r = rec.repo;
    // pushed_at: the newest merge we know of, else a fixed date (keeps answers deterministic).
    let pushed = 0;
    for (const pr of rec.prs.values()) pushed = Math.max(pushed, Date.parse(pr.merged_at));
    return {
      status: 200,
      body: {
        ...this.repoSummary(rec),
        description: r.description ?? null,
        stargazers_count: r.stars ?? 0,
        watchers_count: r.stars ?? 0,
        topics: r.topics ?? [],
        default_branch: r.default_branch ?? 'main',
        archived: r.archived ?? false,
        disabled: r.disabled ?? false,
        visibility: 'public',
        pushed_at: githubTime(pushed || Date.parse('2024-01-01T00:00:00Z')),
      },
    };
  }

  private contents(owner: string, name: string, path: string, raw: boolean): Reply {
    const rec = this.findRepo(owner, name);
    if (!rec) return notFound();
    const files = rec.repo.files ?? {};
    const clean = path.replace(/^\/+|\/+$/g, '');
    const content = files[clean];
    if (content !== undefined) {
      if (raw) return { status: 200, body: content };
      // GitHub wraps base64 content at 60 characters.
      const b64 = Buffer.from(content, 'utf8').toString('base64').replace(/.{60}/g, '$&\n');
      return {
        status: 200,
        body: {
          type: 'file',
          encoding: 'base64',
          size: Buffer.byteLength(content),
          name: clean.slice(clean.lastIndexOf('/') + 1),
          path: clean,
          content: b64,
          sha: gitBlobSha(content),
          url: `${this.url}/repos/${fullName(rec)}/contents/${clean}`,
          html_url: `${WEB}/${fullName(rec)}/blob/${rec.repo.default_branch ?? 'main'}/${clean}`,
        },
      };
    }
    // A directory: list its immediate children, as GitHub does.
    const prefix = clean ? `${clean}/` : '';
    const children = new Map<string, { type: 'file' | 'dir'; size: number; sha: string }>();
    for (const [p, text] of Object.entries(files)) {
      if (!p.startsWith(prefix)) continue;
      const [head, ...tail] = p.slice(prefix.length).split('/');
      if (tail.length) children.set(head, { type: 'dir', size: 0, sha: gitBlobSha(`tree:${prefix}${head}`) });
      else children.set(head, { type: 'file', size: Buffer.byteLength(text), sha: gitBlobSha(text) });
    }
    if (!children.size && clean) return notFound();
    const listing = [...children]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([child, info]) => ({ name: child, path: `${prefix}${child}`, ...info }));
    return { status: 200, body: listing };
  }

  /** The PR as served (corrupted when chosen, see corrupt()). */
  private findPR(owner: string, name: string, n: number): StandinPR | undefined {
    const pr = this.findRepo(owner, name)?.prs.get(n);
    return pr && this.corruptor.apply(pr);
  }

  private pull(owner: string, name: string, n: number): Reply {
    const pr = this.findPR(owner, name, n);
    return pr ? { status: 200, body: restPR(pr, this.url) } : notFound();
  }

  private pullDiff(owner: string, name: string, n: number): Reply {
    const pr = this.findPR(owner, name, n);
    if (!pr) return notFound();
    const forced = this.findRepo(owner, name)?.diffStatus.get(n);
    if (forced !== undefined) {
      const message = DIFF_STATUS_MESSAGES[forced] ?? http.STATUS_CODES[forced] ?? 'Error';
      return { status: forced, body: { message, documentation_url: DOCS } };
    }
    if (pr.files.length > MAX_DIFF_FILES) {
      return {
        status: 406,
        body: {
          message: `Sorry, the diff exceeded the maximum number of files (${MAX_DIFF_FILES}). Consider using 'List pull requests files' API or locally cloning the repository instead.`,
          errors: [{ resource: 'PullRequest', field: 'diff', code: 'too_large' }],
          documentation_url: DOCS,
        },
      };
    }
    return { status: 200, body: unifiedDiff(pr) };
  }

  private pullFiles(owner: string, name: string, n: number, ctx: Ctx): Reply {
    const pr = this.findPR(owner, name, n);
    if (!pr) return notFound();
    const files = listedFiles(pr);
    const { perPage, page } = pageParams(ctx.url, 30);
    const slice = files.slice((page - 1) * perPage, page * perPage);
    return {
      status: 200,
      body: slice.slice(0, Math.max(0, slice.length - ctx.drop)).map((f) => restFile(pr, f)),
      headers: this.linkHeader(ctx.url, page, Math.ceil(files.length / perPage)),
    };
  }

  private issueJson(rec: RepoRecord, n: number) {
    const issue = rec.issues.get(n);
    const stored = rec.prs.get(n);
    const pr = stored && this.corruptor.apply(stored);
    if (!issue && !pr) return undefined;
    const full = fullName(rec);
    const isPR = pr !== undefined || issue?.isPullRequest === true;
    return {
      url: `${this.url}/repos/${full}/issues/${n}`,
      html_url: `${WEB}/${full}/${isPR ? 'pull' : 'issues'}/${n}`,
      number: n,
      title: issue?.title ?? pr!.title,
      body: (issue ? issue.body : pr!.body) ?? null,
      state: pr ? 'closed' : 'open',
      user: { login: pr?.author ?? 'octocat' },
      labels: (pr?.labels ?? []).map((label) => ({ name: label })),
      comments: issue?.comments?.length ?? 0,
      created_at: githubTime(pr?.authored_at ?? pr?.merged_at ?? '2024-01-01T00:00:00Z'),
      ...(isPR
        ? {
            pull_request: {
              url: `${this.url}/repos/${full}/pulls/${n}`,
              html_url: `${WEB}/${full}/pull/${n}`,
              diff_url: `${WEB}/${full}/pull/${n}.diff`,
              merged_at: pr ? githubTime(pr.merged_at) : null,
            },
          }
        : {}),
    };
  }

  /** The issue's record, or the reply GitHub gives when there is none (404) or it is withheld (setIssueStatus). */
  private issueOrRefusal(owner: string, name: string, n: number): { rec: RepoRecord } | { refusal: Reply } {
    const rec = this.findRepo(owner, name);
    const forced = rec?.issueStatus.get(n);
    if (rec && forced !== undefined) {
      const message = ISSUE_STATUS_MESSAGES[forced] ?? http.STATUS_CODES[forced] ?? 'Error';
      return { refusal: { status: forced, body: { message, documentation_url: DOCS } } };
    }
    if (!rec || !this.issueJson(rec, n)) return { refusal: notFound() };
    return { rec };
  }

  private issue(owner: string, name: string, n: number): Reply {
    const found = this.issueOrRefusal(owner, name, n);
    return 'refusal' in found ? found.refusal : { status: 200, body: this.issueJson(found.rec, n) };
  }

  /** Comments in pages (30 by default, `per_page` up to 100) with GitHub's Link header. */
  private issueComments(owner: string, name: string, n: number, ctx: Ctx): Reply {
    const found = this.issueOrRefusal(owner, name, n);
    if ('refusal' in found) return found.refusal;
    const rec = found.rec;
    const comments = rec.issues.get(n)?.comments ?? [];
    const all = comments.map((body, i) => ({
      id: rec.id * 1e9 + n * 1000 + i + 1,
      body,
      user: { login: 'commenter' },
      html_url: `${WEB}/${fullName(rec)}/issues/${n}#issuecomment-${rec.id * 1e9 + n * 1000 + i + 1}`,
    }));
    return this.listPage(ctx, all);
  }

  /**
   * Cross-references, in pages with a Link header: every issue or PR whose
   * body or comments mention this one (`#n` or `owner/name#n` or its URL from
   * the same repository; `owner/name#n` or the URL from another).
   */
  private issueTimeline(owner: string, name: string, n: number, ctx: Ctx): Reply {
    const found = this.issueOrRefusal(owner, name, n);
    if ('refusal' in found) return found.refusal;
    const rec = found.rec;
    const full = escapeRegExp(fullName(rec));
    const url = `https?://(?:www\\.)?github\\.com/${full}/(?:issues|pull)/${n}(?!\\d)`;
    const local = new RegExp(`(?:(?:^|[^\\w/])(?:${full})?#${n}(?!\\d))|${url}`, 'i');
    const remote = new RegExp(`(?:(?:^|[^\\w/])${full}#${n}(?!\\d))|${url}`, 'i');
    const events = [];
    for (const other of [...this.repos.values()].sort((a, b) => a.id - b.id)) {
      const mention = other === rec ? local : remote;
      const numbers = new Set([...other.issues.keys(), ...other.prs.keys()]);
      for (const number of [...numbers].sort((a, b) => a - b)) {
        if (other === rec && number === n) continue;
        const source = this.issueJson(other, number)!;
        const texts = [source.body ?? '', ...(other.issues.get(number)?.comments ?? [])];
        if (!texts.some((t) => mention.test(t))) continue;
        events.push({
          event: 'cross-referenced',
          created_at: source.created_at,
          updated_at: source.created_at,
          source: { type: 'issue', issue: { ...source, repository: this.repoSummary(other) } },
        });
      }
    }
    return this.listPage(ctx, events);
  }

  /** One page of a REST list (`page`, `per_page` as GitHub reads them, default 30), a `truncate` fault applied, with the Link header. */
  private listPage(ctx: Ctx, all: unknown[]): Reply {
    const { perPage, page } = pageParams(ctx.url, 30);
    const slice = all.slice((page - 1) * perPage, page * perPage);
    return {
      status: 200,
      body: slice.slice(0, Math.max(0, slice.length - ctx.drop)),
      headers: this.linkHeader(ctx.url, page, Math.ceil(all.length / perPage)),
    };
  }

  /** RFC 5988 links on the stand-in's own url, so octokit.paginate can follow them. */
  private linkHeader(url: URL, page: number, lastPage: number): Record<string, string> {
    if (lastPage <= 1 && page <= 1) return {};
    const at = (p: number) => {
      const u = new URL(url.pathname + url.search, this.url);
      u.searchParams.set('page', String(p));
      return `<${u.href}>`;
    };
    const links: string[] = [];
    if (page > 1) links.push(`${at(page - 1)}; rel="prev"`);
    if (page < lastPage) links.push(`${at(page + 1)}; rel="next"`, `${at(lastPage)}; rel="last"`);
    if (page > 1) links.push(`${at(1)}; rel="first"`);
    return { link: links.join(', ') };
  }
}

// -------------------------------------------------------------------- helpers

/** A `search(` field, optionally aliased: group 1 is the alias. */
const SEARCH_FIELD_RE = /(?:\b(\w+)\s*:\s*)?\bsearch\s*\(/;
const RATE_FIELD_RE = /(?:\b(\w+)\s*:\s*)?\brateLimit\b/;

const ISSUE_STATUS_MESSAGES: Record<number, string> = {
  404: 'Not Found',
  410: 'Issues are disabled for this repo',
  451: 'Repository access blocked',
};

const DIFF_STATUS_MESSAGES: Record<number, string> = {
  404: 'Not Found',
  406: 'Sorry, the diff exceeded the maximum number of lines (20000).',
  410: 'Gone',
  451: 'Repository access blocked',
  500: 'Server Error',
};

interface SearchArgs {
  query?: unknown;
  first?: number;
  after?: string | null;
}

/**
 * Reads `query:`, `first:` and `after:` from the search field's argument list,
 * resolving `$variables`; a tiny scan rather than a GraphQL parser.
 */
function searchArgs(query: string, from: number, variables: Record<string, unknown>): SearchArgs {
  let end = from;
  for (let inString = false; end < query.length; end++) {
    const c = query[end];
    if (c === '\\') end++;
    else if (c === '"') inString = !inString;
    else if (c === ')' && !inString) break;
  }
  const argText = query.slice(from, end);
  const arg = (name: string): unknown => {
    const m = new RegExp(`\\b${name}\\s*:\\s*(\\$\\w+|"(?:[^"\\\\]|\\\\.)*"|-?\\d+|null)`).exec(argText);
    if (!m) return undefined;
    const v = m[1];
    if (v.startsWith('$')) return variables[v.slice(1)];
    return JSON.parse(v);
  };
  const first = arg('first');
  const after = arg('after');
  if (first !== undefined && first !== null && (typeof first !== 'number' || !Number.isInteger(first))) {
    throw new SearchQueryError('`first` must be an integer');
  }
  return {
    query: arg('query'),
    first: typeof first === 'number' ? first : undefined,
    after: typeof after === 'string' ? after : null,
  };
}

function encodeCursor(position: number): string {
  return Buffer.from(`cursor:${position}`).toString('base64');
}

function decodeCursor(cursor: string): number {
  const m = /^cursor:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString('utf8'));
  if (!m) throw new SearchQueryError(`\`${cursor}\` does not appear to be a valid cursor.`);
  return Number(m[1]);
}

function prMatches(q: PRQuery, e: IndexedPR): boolean {
  if (q.nothing) return false;
  if (q.repos.length && !q.repos.includes(e.repoKey)) return false;
  if (q.owners.length && !q.owners.includes(e.repoKey.split('/')[0])) return false;
  if (!inRange(q.merged, e.merged) || !inRange(q.created, e.created)) return false;
  if (q.labels.length) {
    const labels = (e.pr.labels ?? []).map((l) => l.toLowerCase());
    if (!q.labels.every((l) => labels.includes(l))) return false;
  }
  if (q.authors.some((a) => a !== (e.pr.author ?? '').toLowerCase())) return false;
  if (q.words.length) {
    const text = `${e.pr.title}\n${e.pr.body ?? ''}`.toLowerCase();
    if (!q.words.every((w) => text.includes(w))) return false;
  }
  return true;
}

/** The answer once a token's quota is spent: 403 for REST/search, a RATE_LIMITED error for GraphQL. */
function exhaustedReply(route: Route): Reply {
  if (route.category === 'graphql') {
    return { status: 200, body: { data: null, errors: [{ type: 'RATE_LIMITED', message: PRIMARY_LIMIT_MESSAGE }] } };
  }
  return {
    status: 403,
    body: { message: PRIMARY_LIMIT_MESSAGE, documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api` },
  };
}

function rateHeaders(resource: Resource, q: Quota): Record<string, string> {
  return {
    'x-ratelimit-limit': String(q.limit),
    'x-ratelimit-remaining': String(Math.max(0, q.limit - q.used)),
    'x-ratelimit-reset': String(Math.ceil(q.resetAt / 1000)),
    'x-ratelimit-used': String(q.used),
    'x-ratelimit-resource': resource,
  };
}

function pageParams(url: URL, defaultPerPage: number): { perPage: number; page: number } {
  const int = (name: string) => Number.parseInt(url.searchParams.get(name) ?? '', 10);
  const perPage = int('per_page');
  const page = int('page');
  return {
    perPage: Number.isFinite(perPage) && perPage > 0 ? Math.min(perPage, 100) : defaultPerPage,
    page: Number.isFinite(page) && page > 0 ? page : 1,
  };
}

function bearerToken(header: string | undefined): string | undefined {
  const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1] : undefined;
}

function queryText(body: unknown): string {
  const q = (body as { query?: unknown } | undefined)?.query;
  return typeof q === 'string' ? q : '';
}

function fullName(rec: RepoRecord): string {
  return `${rec.repo.owner}/${rec.repo.name}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
