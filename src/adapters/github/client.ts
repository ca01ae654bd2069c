import { Octokit } from '@octokit/rest';
import { throttling } from '@octokit/plugin-throttling';
import { retry } from '@octokit/plugin-retry';
import Bottleneck from 'bottleneck';
import { RateLimitedError, ServiceDownError } from '../../bus/stage.js';
import type { Logger } from '../../log.js';
import { cleanText } from '../../domain/clean.js';
import type { ChangedFile } from '../../domain/pr.js';
import { DECIDED_DIFF_STATUSES } from '../../domain/judge.js';
import type { CrossReference, IssueHead } from '../../domain/linked-issues.js';
import { ServiceHealth } from '../service-health.js';
import { classifyGitHubFailure, describeGitHubFailure, httpStatus } from './failures.js';
import { MERGED_PRS_QUERY, type MergedPRsPage } from './queries.js';
import { GitHubConnectionError, transportPlugin } from './transport.js';

/** Our transport first, so it wraps each single HTTP attempt inside throttling and retry. */
const githubOctokit = (timeoutMs: number) => Octokit.plugin(transportPlugin(timeoutMs), throttling, retry);
type Kit = InstanceType<ReturnType<typeof githubOctokit>>;
/** Per-request options every call passes to octokit. */
interface RequestOptions { signal?: AbortSignal }

/** How long a token GitHub refused (401) is left out of a pool before it is tried again. */
const REJECTED_TOKEN_PAUSE_MS = 10 * 60_000;

export interface GitHubOptions {
  baseUrl: string;
  tokens: string[];
  log: Logger;
  /** Waits up to this long are done in place by octokit's throttling plugin; longer ones rotate the token or pause the bus. */
  maxInlineWaitSeconds?: number;
  /** Minimum spacing of GraphQL requests per token (GitHub asks for >= 1 s between mutative/GraphQL calls). */
  graphqlMinIntervalMs?: number;
  searchMinIntervalMs?: number;
  /** Each HTTP request (each retry too) is abandoned after this long; default 30 s. */
  timeoutMs?: number;
}

export interface RepoMetadata {
  /** GitHub's numeric repository id: survives renames and is the same for every spelling of the name. */
  id: number;
  owner: string; name: string; stars: number; description: string | null; topics: string[];
  defaultBranch: string | null; fork: boolean; archived: boolean; disabled: boolean;
}

export interface CodeSearchHit { id: number | null; owner: string; name: string; path: string; fork: boolean }

/** Whether GitHub can be used at all with the configured tokens (see checkCredentials). */
export type CredentialCheck = { ok: true } | { ok: false; reason: string };

interface PoolEntry {
  label: string;
  kit: Kit;
  /** Rate limited until then (set by the throttling plugin's callbacks). */
  blockedUntil: number;
  /** Refused with 401 until then: left out of the pool while others work. */
  rejectedUntil: number;
  /** x-ratelimit-remaining of the token's last answer (undefined until one came). */
  remaining?: number;
}

/**
 * GitHub over the real octokit clients, with the throttling and retry
 * plugins. One octokit per token; when a token must wait longer than
 * `maxInlineWaitSeconds`, the next one is used, and when all must wait a
 * RateLimitedError tells the bus to pause the `github` group until the
 * earliest reset.
 *
 * Every method takes the handler's AbortSignal, and each HTTP request has its
 * own timeout (see transport.ts). Failures go through ServiceHealth: a
 * refused credential or an unreachable endpoint, or a run of 5xx answers and
 * timeouts, throws ServiceDownError('github') so the bus pauses the group
 * instead of charging the outage to row after row; a 404 or 422 stays the
 * row's own error. No message ever carries a token.
 */
export class GitHubClient {
  private pool: PoolEntry[];
  private turn = 0;
  private readonly health = new ServiceHealth('github');

  constructor(private opts: GitHubOptions) {
    const tokens: Array<string | undefined> = opts.tokens.length ? opts.tokens : [undefined];
    this.pool = tokens.map((token, i) => this.entry(token, `token#${i + 1}`));
  }

  /** GitHub requests left in the current window, summed over the tokens that answered (undefined before any answer). */
  quotaRemaining(): number | undefined {
    const known = this.pool.filter((e) => e.remaining !== undefined);
    return known.length ? known.reduce((sum, e) => sum + (e.remaining ?? 0), 0) : undefined;
  }

  private entry(token: string | undefined, label: string): PoolEntry {
    const maxWait = this.opts.maxInlineWaitSeconds ?? 10;
    const log = this.opts.log.child({ github: label });
    const entry = { label, blockedUntil: 0, rejectedUntil: 0 } as PoolEntry;
    const onLimit = (kind: string) => (retryAfter: number, options: { method?: string; url?: string }, _kit: unknown, retryCount: number) => {
      const wait = this.pool.length > 1 ? 0 : maxWait; // with other tokens at hand, rotate instead of waiting
      if (retryAfter <= wait && retryCount < 3) {
        log.warn({ kind, retryAfter, url: options.url }, 'GitHub asked us to wait; waiting in place');
        return true;
      }
      entry.blockedUntil = Date.now() + retryAfter * 1000;
      log.warn({ kind, retryAfter, url: options.url }, 'GitHub asked us to wait; token set aside');
      return false;
    };
    entry.kit = new (githubOctokit(this.opts.timeoutMs ?? 30_000))({
      auth: token,
      baseUrl: this.opts.baseUrl.replace(/\/$/, ''),
      userAgent: 'perfmine',
      log: { debug: () => undefined, info: () => undefined, warn: (m: string) => log.debug(m), error: (m: string) => log.debug(m) },
      throttle: {
        onRateLimit: onLimit('primary'),
        onSecondaryRateLimit: onLimit('secondary'),
        // Our own limiter groups, so the spacing is a setting (and the stand-in can go full speed).
        write: new Bottleneck.Group({ maxConcurrent: 1, minTime: this.opts.graphqlMinIntervalMs ?? 1000 }),
        search: new Bottleneck.Group({ maxConcurrent: 1, minTime: this.opts.searchMinIntervalMs ?? 2000 }),
      },
      retry: { doNotRetry: [400, 401, 403, 404, 406, 410, 422, 451] },
    });
    // The quota left, from every answer (errors included), for /metrics.
    const note = (headers: Record<string, unknown> | undefined) => {
      const left = Number(headers?.['x-ratelimit-remaining']);
      if (headers?.['x-ratelimit-remaining'] !== undefined && Number.isFinite(left)) entry.remaining = left;
    };
    entry.kit.hook.after('request', (response) => note(response.headers as Record<string, unknown>));
    entry.kit.hook.error('request', (err) => {
      note((err as { response?: { headers?: Record<string, unknown> } }).response?.headers);
      throw err;
    });
    return entry;
  }

  /**
   * One GitHub operation: `fn` with a usable token, bounded by the caller's
   * signal, its failure classified (see the class comment). `what` names the
   * operation in errors.
   */
  private async call<T>(what: string, signal: AbortSignal | undefined, fn: (kit: Kit, request: RequestOptions) => Promise<T>): Promise<T> {
    signal?.throwIfAborted();
    try {
      const result = await untilAborted(this.withToken((kit) => fn(kit, { signal })), signal);
      this.health.ok();
      return result;
    } catch (err) {
      if (signal?.aborted) throw signal.reason; // the caller gave up: says nothing about GitHub
      if (err instanceof RateLimitedError) throw err;
      const message = this.redact(describeGitHubFailure(err, what));
      const verdict = this.health.failed(err, classifyGitHubFailure(err), message);
      if (verdict instanceof ServiceDownError) throw verdict;
      throw new GitHubRequestError(message, httpStatus(err), err);
    }
  }

  /** Runs `fn` with a usable token, rotating past tokens that are rate limited or were refused. */
  private async withToken<T>(fn: (kit: Kit) => Promise<T>): Promise<T> {
    let refusal: unknown = null;
    for (let tried = 0; ; tried++) {
      const now = Date.now();
      const accepted = this.pool.filter((e) => e.rejectedUntil <= now);
      if (!accepted.length) {
        const window = `${REJECTED_TOKEN_PAUSE_MS / 60_000} minutes`;
        throw refusal ?? Object.assign(new Error(`all ${this.pool.length} GitHub tokens were refused (401) within the last ${window}`), { status: 401 });
      }
      const free = accepted.filter((e) => e.blockedUntil <= now);
      if (!free.length || tried > this.pool.length * 2) {
        const until = new Date(Math.min(...accepted.map((e) => e.blockedUntil)));
        throw new RateLimitedError(until > new Date() ? until : new Date(Date.now() + 1000),
          `GitHub rate limit: all ${accepted.length} token(s) must wait`, 'github');
      }
      const entry = free[this.turn++ % free.length];
      try {
        return await fn(entry.kit);
      } catch (err) {
        if (entry.blockedUntil > Date.now()) continue; // this token was set aside by the throttling plugin
        if (httpStatus(err) === 401 && this.pool.length > 1) {
          // One revoked token of a pool should not stop the others.
          entry.rejectedUntil = Date.now() + REJECTED_TOKEN_PAUSE_MS;
          this.opts.log.warn({ github: entry.label }, 'GitHub refused this token (401); using the others');
          refusal = err;
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Whether GitHub answers with the configured credentials: GET /rate_limit
   * (free of quota) with each token. For the daemon's start, so a bad token
   * or a wrong URL is reported once rather than as a failure of every row.
   */
  async checkCredentials(signal?: AbortSignal): Promise<CredentialCheck> {
    for (const entry of this.pool) {
      const what = this.pool.length > 1 ? `GET /rate_limit with ${entry.label} of ${this.pool.length}` : 'GET /rate_limit';
      try {
        await untilAborted(entry.kit.rest.rateLimit.get({ request: { signal } }), signal);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const reason = err instanceof GitHubConnectionError
          ? `GitHub API at ${hostOf(this.opts.baseUrl)} cannot be reached (${err.reason})`
          : describeGitHubFailure(err, what);
        return { ok: false, reason: this.redact(reason) };
      }
    }
    return { ok: true };
  }

  /** Removes every configured token from a text (GitHub never echoes one, but messages end up in the database). */
  private redact(text: string): string {
    let out = text;
    for (const token of this.opts.tokens) if (token) out = out.split(token).join('[token]');
    return out;
  }

  async mergedPRsPage(owner: string, name: string, from: Date, to: Date, after: string | null, signal?: AbortSignal): Promise<MergedPRsPage['search']> {
    const q = `repo:${owner}/${name} is:pr is:merged merged:${isoSeconds(from)}..${isoSeconds(new Date(to.getTime() - 1000))}`;
    const data = await this.call(`search ${q}`, signal,
      (kit, request) => kit.graphql<MergedPRsPage>(MERGED_PRS_QUERY, { q, first: 100, after, request }));
    return data.search;
  }

  /**
   * REST files of a PR, for PRs with more than the 100 files GraphQL returns
   * (GitHub stops at 3000). Pages are followed by their Link header; octokit's
   * paginate would drop the request's signal.
   */
  async pullFiles(owner: string, name: string, number: number, signal?: AbortSignal): Promise<ChangedFile[]> {
    return this.call(`GET /repos/${owner}/${name}/pulls/${number}/files`, signal, async (kit, request) => {
      const files: ChangedFile[] = [];
      for (let page = 1; page <= 30; page++) {
        const { data, headers } = await kit.rest.pulls.listFiles({ owner, repo: name, pull_number: number, per_page: 100, page, request });
        for (const f of data) files.push({ path: f.filename, additions: f.additions ?? null, deletions: f.deletions ?? null });
        if (!/rel="next"/.test(headers.link ?? '')) break;
      }
      return files;
    });
  }

  /**
   * The PR's unified diff (REST, diff media type). 404/406/410/451 come back
   * as a status (the diff is gone, too large, or withheld); others throw.
   */
  async pullDiff(owner: string, name: string, number: number, signal?: AbortSignal): Promise<{ status: number; diff: string | null }> {
    return this.call(`GET /repos/${owner}/${name}/pulls/${number} (diff)`, signal, async (kit, request) => {
      try {
        const { data } = await kit.rest.pulls.get({ owner, repo: name, pull_number: number, mediaType: { format: 'diff' }, request });
        return { status: 200, diff: String(data) };
      } catch (err) {
        const code = httpStatus(err);
        if (code !== undefined && DECIDED_DIFF_STATUSES.has(code)) return { status: code, diff: null };
        throw err;
      }
    });
  }

  /** The repository's metadata (GitHub follows a former name to the renamed repository), or null if it does not exist. */
  async repository(owner: string, name: string, signal?: AbortSignal): Promise<RepoMetadata | null> {
    return this.call(`GET /repos/${owner}/${name}`, signal, async (kit, request) => {
      try {
        const { data } = await kit.rest.repos.get({ owner, repo: name, request });
        return {
          id: data.id, owner: data.owner.login, name: data.name, stars: data.stargazers_count,
          description: cleanText(data.description ?? null), topics: (data.topics ?? []).map((t) => cleanText(t)),
          defaultBranch: cleanText(data.default_branch ?? null), fork: data.fork, archived: data.archived, disabled: data.disabled ?? false,
        };
      } catch (err) {
        if (httpStatus(err) === 404) return null;
        throw err;
      }
    });
  }

  /** A file's text at the default branch, or null if it does not exist. */
  async fileText(owner: string, name: string, path: string, signal?: AbortSignal): Promise<string | null> {
    return this.call(`GET /repos/${owner}/${name}/contents/${path}`, signal, async (kit, request) => {
      try {
        const { data } = await kit.rest.repos.getContent({ owner, repo: name, path, request });
        if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) return null;
        return Buffer.from(data.content, 'base64').toString('utf8');
      } catch (err) {
        if (httpStatus(err) === 404) return null;
        throw err;
      }
    });
  }

  /**
   * An issue's title and body, and whether the number is a pull request
   * (GitHub numbers both alike). 404/410/451 (missing, deleted or issues
   * turned off, withheld) come back as the status: the caller skips the issue.
   */
  async issue(owner: string, name: string, number: number, signal?: AbortSignal): Promise<IssueHead | { status: number }> {
    return this.call(`GET /repos/${owner}/${name}/issues/${number}`, signal, async (kit, request) => {
      try {
        const { data } = await kit.rest.issues.get({ owner, repo: name, issue_number: number, request });
        return { title: cleanText(data.title ?? ''), body: cleanText(data.body ?? null), isPullRequest: !!data.pull_request };
      } catch (err) {
        const code = httpStatus(err);
        if (code !== undefined && SKIPPED_ISSUE_STATUSES.has(code)) return { status: code };
        throw err;
      }
    });
  }

  /** Every comment of an issue (or PR conversation), oldest first, all pages; none when the issue is gone (404/410/451). */
  async issueComments(owner: string, name: string, number: number, signal?: AbortSignal): Promise<{ comments: string[]; pages: number }> {
    return this.call(`GET /repos/${owner}/${name}/issues/${number}/comments`, signal, async (kit, request) => {
      const comments: string[] = [];
      let pages = 0;
      try {
        for (let page = 1; page <= MAX_LIST_PAGES; page++) {
          pages++;
          const { data, headers } = await kit.rest.issues.listComments({ owner, repo: name, issue_number: number, per_page: 100, page, request });
          for (const c of data) if (c.body) comments.push(cleanText(c.body));
          if (!hasNextPage(headers.link)) break;
        }
      } catch (err) {
        const code = httpStatus(err);
        if (code !== undefined && SKIPPED_ISSUE_STATUSES.has(code)) return { comments: [], pages };
        throw err;
      }
      return { comments, pages };
    });
  }

  /**
   * The issues and PRs whose text refers to this issue or PR: the
   * `cross-referenced` events of its timeline, every page. An item of another
   * repository keeps its own owner and name.
   */
  async issueCrossReferences(owner: string, name: string, number: number, signal?: AbortSignal): Promise<{ refs: CrossReference[]; pages: number }> {
    return this.call(`GET /repos/${owner}/${name}/issues/${number}/timeline`, signal, async (kit, request) => {
      const refs: CrossReference[] = [];
      let pages = 0;
      try {
        for (let page = 1; page <= MAX_LIST_PAGES; page++) {
          pages++;
          const { data, headers } = await kit.rest.issues.listEventsForTimeline({ owner, repo: name, issue_number: number, per_page: 100, page, request });
          for (const event of data as TimelineEvent[]) {
            const ref = crossReference(event, owner, name);
            if (ref) refs.push(ref);
          }
          if (!hasNextPage(headers.link)) break;
        }
      } catch (err) {
        const code = httpStatus(err);
        if (code !== undefined && SKIPPED_ISSUE_STATUSES.has(code)) return { refs: [], pages };
        throw err;
      }
      return { refs, pages };
    });
  }

  /** One page of code search results (GitHub serves at most 10 pages of 100). */
  async codeSearch(q: string, page: number, signal?: AbortSignal): Promise<{ total: number; hits: CodeSearchHit[] }> {
    const { data } = await this.call(`code search ${q} (page ${page})`, signal,
      (kit, request) => kit.rest.search.code({ q, per_page: 100, page, request }));
    return {
      total: data.total_count,
      hits: data.items.map((i) => ({
        id: typeof i.repository.id === 'number' ? i.repository.id : null,
        owner: i.repository.owner.login, name: i.repository.name, path: cleanText(i.path), fork: !!i.repository.fork,
      })),
    };
  }
}

/** An issue GitHub will not give: gone (404), deleted or issues turned off (410), withheld for legal reasons (451). */
export const SKIPPED_ISSUE_STATUSES = new Set([404, 410, 451]);
/** Pages of 100 read at most from one list (comments, timeline): 5,000 items. */
const MAX_LIST_PAGES = 50;

function hasNextPage(link: string | undefined): boolean {
  return /rel="next"/.test(link ?? '');
}

/** The fields of a timeline event we read (octokit's union type is wider than useful here). */
interface TimelineEvent {
  event?: string;
  source?: { type?: string; issue?: { number?: number; pull_request?: unknown; repository?: { name?: string; owner?: { login?: string } }; repository_url?: string } };
}

/** A `cross-referenced` event's source as a reference, or null for any other event. */
function crossReference(event: TimelineEvent, owner: string, name: string): CrossReference | null {
  if (event.event !== 'cross-referenced') return null;
  const issue = event.source?.issue;
  if (!issue || typeof issue.number !== 'number') return null;
  const fromUrl = /\/repos\/([^/]+)\/([^/]+)$/.exec(issue.repository_url ?? '');
  const refOwner = issue.repository?.owner?.login ?? fromUrl?.[1] ?? owner;
  const refName = issue.repository?.name ?? fromUrl?.[2] ?? name;
  return { owner: refOwner, name: refName, number: issue.number, isPullRequest: !!issue.pull_request };
}

/** The host of a URL, never its user or password. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}

export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A GitHub request that failed for this row (or not yet often enough to condemn the service); `status` is the HTTP status if any. */
export class GitHubRequestError extends Error {
  constructor(message: string, readonly status: number | undefined, cause: unknown) {
    super(message, { cause });
    this.name = 'GitHubRequestError';
  }
}

/**
 * `work`, or the signal's reason as soon as it aborts. Octokit's waits
 * between retries and throttled requests do not watch the signal; the request
 * left behind fails on its own once its fetch sees the aborted signal.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
