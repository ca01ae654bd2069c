import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Octokit } from '@octokit/rest';
import { GitHubStandin, loadPRsFromJsonl, type StandinPR } from '../src/standins/github/server.js';

/** perfmine's PR search query, verbatim in shape. */
const SEARCH = `
query($q: String!, $first: Int!, $after: String) {
  search(query: $q, type: ISSUE, first: $first, after: $after) {
    issueCount
    pageInfo { hasNextPage endCursor }
    nodes { ... on PullRequest {
      number title body createdAt mergedAt closedAt
      author { login } mergeCommit { oid } baseRefOid headRefOid
      additions deletions changedFiles
      labels(first: 20) { nodes { name } }
      files(first: 100) { totalCount nodes { path additions deletions } }
    } }
  }
  rateLimit { remaining resetAt cost }
}`;

interface Node {
  number: number;
  title: string;
  body: string | null;
  createdAt: string;
  mergedAt: string;
  closedAt: string;
  author: { login: string } | null;
  mergeCommit: { oid: string } | null;
  baseRefOid: string | null;
  additions: number;
  deletions: number;
  changedFiles: number;
  files: { totalCount: number; nodes: { path: string; additions: number; deletions: number }[] };
}
interface SearchResult {
  search: { issueCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: Node[] };
  rateLimit: { remaining: number; resetAt: string; cost: number };
}

const DATA = 'data/xarray-prs.jsonl';
const XARRAY = 'repo:pydata/xarray is:pr is:merged';
const ASV_CONF = '{\n  "version": 1,\n  "project": "xarray",\n  "benchmark_dir": "."\n}\n';

let gh: GitHubStandin;
let octokit: Octokit;
let prs: StandinPR[];

/** Octokit logs every failed request; several tests fail requests on purpose. */
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** Follows cursors like perfmine does; returns every node and the page count. */
async function searchAll(q: string, first = 100) {
  const nodes: Node[] = [];
  let after: string | null = null;
  let pages = 0;
  let issueCount = -1;
  for (;;) {
    const r: SearchResult = await octokit.graphql<SearchResult>(SEARCH, { q, first, after });
    pages++;
    issueCount = r.search.issueCount;
    nodes.push(...r.search.nodes);
    if (!r.search.pageInfo.hasNextPage) break;
    after = r.search.pageInfo.endCursor;
  }
  return { nodes, pages, issueCount };
}

/** The error shapes GitHub answers with (REST message, GraphQL errors). */
function errorBody(res: Response) {
  return res.json() as Promise<{ message?: string; errors?: { type?: string; message: string }[] }>;
}

function rawFetch(path: string, init: RequestInit = {}) {
  return fetch(`${gh.url}${path}`, init);
}

function graphqlFetch(q: string, first = 100, headers: Record<string, string> = {}) {
  return fetch(`${gh.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: SEARCH, variables: { q, first } }),
  });
}

beforeAll(async () => {
  gh = await GitHubStandin.start();
  prs = loadPRsFromJsonl(DATA);
  expect(gh.loadJsonl(DATA)).toBe(4581);
  gh.addRepo({
    owner: 'pydata',
    name: 'xarray',
    stars: 3900,
    topics: ['python', 'netcdf'],
    description: 'N-D labeled arrays and datasets in Python',
    files: { 'asv_bench/asv.conf.json': ASV_CONF, 'asv_bench/benchmarks/__init__.py': '' },
  });
  gh.addRepo({ owner: 'acme', name: 'fastlib', stars: 10, files: { 'asv.conf.json': '{}', 'x/asv.conf.json': '{}' } });
  gh.addRepo({ owner: 'acme', name: 'forked', fork: true, files: { 'benchmarks/asv.conf.json': '{}' } });
  gh.addRepo({ owner: 'acme', name: 'nobench', files: { 'README.md': 'hi' } });
  octokit = new Octokit({ baseUrl: gh.url, log: quiet });
});

afterAll(async () => {
  await gh?.close();
});

describe('GraphQL PR search', () => {
  it('pages through a window of < 1000 results with cursors', async () => {
    const lo = '2020-01-01T00:00:00Z';
    const hi = '2020-12-31T23:59:59Z';
    const expected = prs.filter((p) => seconds(p.merged_at) >= seconds(lo) && seconds(p.merged_at) <= seconds(hi));
    expect(expected.length).toBeGreaterThan(100);
    expect(expected.length).toBeLessThan(1000);

    const { nodes, pages, issueCount } = await searchAll(`${XARRAY} merged:${lo}..${hi}`);
    expect(issueCount).toBe(expected.length);
    expect(nodes).toHaveLength(expected.length);
    expect(pages).toBe(Math.ceil(expected.length / 100));
    expect(new Set(nodes.map((n) => n.number))).toEqual(new Set(expected.map((p) => p.number)));
    // Newest merge first, all in UTC.
    const merged = nodes.map((n) => Date.parse(n.mergedAt));
    expect(merged).toEqual([...merged].sort((a, b) => b - a));
    expect(nodes.every((n) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(n.mergedAt))).toBe(true);
  });

  it('reports the true issueCount of a > 1000 window but yields only 1000', async () => {
    const { nodes, issueCount } = await searchAll(XARRAY);
    expect(issueCount).toBe(4581);
    expect(nodes).toHaveLength(1000);
    expect(new Set(nodes.map((n) => n.number)).size).toBe(1000);

    // A cursor past the cap gives nothing.
    const beyond = Buffer.from('cursor:1000').toString('base64');
    const r = await octokit.graphql<SearchResult>(SEARCH, { q: XARRAY, first: 100, after: beyond });
    expect(r.search.nodes).toEqual([]);
    expect(r.search.pageInfo.hasNextPage).toBe(false);
  });

  it('treats merged: range ends as inclusive, to the second', async () => {
    const pr = prs.find((p) => p.number === 11348)!; // merged 2026-08-19T14:46:44-06:00
    const at = new Date(pr.merged_at).toISOString().slice(0, 19) + 'Z';
    const next = new Date(Date.parse(pr.merged_at) + 1000).toISOString().slice(0, 19) + 'Z';
    const prev = new Date(Date.parse(pr.merged_at) - 1000).toISOString().slice(0, 19) + 'Z';
    const numbers = async (range: string) =>
      (await searchAll(`${XARRAY} merged:${range}`)).nodes.map((n) => n.number);

    expect(await numbers(`${at}..${at}`)).toEqual([11348]);
    expect(await numbers(`${prev}..${at}`)).toContain(11348);
    expect(await numbers(`${at}..${next}`)).toContain(11348);
    expect(await numbers(`${next}..2030-01-01T00:00:00Z`)).not.toContain(11348);
    expect(await numbers(`2000-01-01T00:00:00Z..${prev}`)).not.toContain(11348);

    // Plain dates mean whole UTC days.
    const day = prs.filter((p) => new Date(p.merged_at).toISOString().startsWith('2026-08-19'));
    expect(day.length).toBeGreaterThan(1);
    expect((await numbers('2026-08-19..2026-08-19')).sort()).toEqual(day.map((p) => p.number).sort());
  });

  it('renders the node fields and rateLimit', async () => {
    const r = await octokit.graphql<SearchResult>(SEARCH, {
      q: `${XARRAY} merged:2026-08-19T20:48:31Z..2026-08-19T20:48:31Z`,
      first: 10,
      after: null,
    });
    expect(r.search.issueCount).toBe(1);
    const n = r.search.nodes[0];
    expect(n).toMatchObject({
      number: 11524,
      body: null,
      author: null,
      createdAt: '2026-08-19T20:48:31Z', // authored_at 2026-08-20T02:18:31+05:30
      mergedAt: '2026-08-19T20:48:31Z',
      closedAt: '2026-08-19T20:48:31Z',
      mergeCommit: { oid: 'b1c1dc549b62bdfc8de0bdded24f56464cf0db1a' },
      baseRefOid: '63b61d37ab4f77b7804f076c025480dbc791e678',
      additions: 31,
      deletions: 0,
      changedFiles: 4,
    });
    expect(n.files.totalCount).toBe(4);
    expect(n.files.nodes[2]).toEqual({ path: 'xarray/coding/variables.py', additions: 4, deletions: 0 });
    expect(r.rateLimit.cost).toBe(1);
    expect(r.rateLimit.remaining).toBeGreaterThan(0);

    // A big PR lists only its first 100 files but counts them all.
    const big = await octokit.graphql<SearchResult>(SEARCH, { q: `${XARRAY} merged:${prs.find((p) => p.number === 3142)!.merged_at.slice(0, 10)}`, first: 100 });
    const node3142 = big.search.nodes.find((x) => x.number === 3142)!;
    expect(node3142.files.nodes).toHaveLength(100);
    expect(node3142.files.totalCount).toBe(138);
  });

  it('answers a rateLimit-only query and rejects other queries', async () => {
    const rate = await octokit.graphql<{ rateLimit: { remaining: number; cost: number } }>(
      'query { rateLimit { remaining resetAt cost } }',
    );
    expect(rate).toEqual({ rateLimit: expect.objectContaining({ cost: 1, remaining: expect.any(Number) }) });

    const res = await rawFetch('/graphql', { method: 'POST', body: JSON.stringify({ query: '{ viewer { login } }' }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ errors: [{ message: 'query not supported by the stand-in' }] });
  });
});

describe('REST', () => {
  it('paginates the files of a PR with > 100 files', async () => {
    const before = gh.stats.byRoute['rest:pulls/files'] ?? 0;
    const files = await octokit.paginate(octokit.rest.pulls.listFiles, {
      owner: 'pydata',
      repo: 'xarray',
      pull_number: 3142,
      per_page: 100,
    });
    const expected = prs.find((p) => p.number === 3142)!.files;
    expect(files.map((f) => f.filename)).toEqual(expected.map((f) => f.path));
    expect((gh.stats.byRoute['rest:pulls/files'] ?? 0) - before).toBe(2);
    const first = files[0];
    expect(first.changes).toBe(first.additions + first.deletions);
  });

  it('lists binary files with zero counts and no patch', async () => {
    const pr = prs.find((p) => p.files.length < 30 && p.files.some((f) => f.additions === null))!;
    const binary = pr.files.find((f) => f.additions === null)!;
    const { data } = await octokit.rest.pulls.listFiles({ owner: 'pydata', repo: 'xarray', pull_number: pr.number });
    const item = data.find((f) => f.filename === binary.path)!;
    expect(item).toMatchObject({ additions: 0, deletions: 0, changes: 0 });
    expect(item.patch).toBeUndefined();
  });

  it('searches code for asv.conf.json, one item per repository', async () => {
    const { data } = await octokit.rest.search.code({ q: 'filename:asv.conf.json', per_page: 100 });
    expect(data.total_count).toBe(3);
    expect(data.incomplete_results).toBe(false);
    expect(data.items.map((i) => i.repository.full_name)).toEqual(['pydata/xarray', 'acme/fastlib', 'acme/forked']);
    expect(data.items[0]).toMatchObject({ name: 'asv.conf.json', path: 'asv_bench/asv.conf.json' });
    expect(data.items[1].path).toBe('asv.conf.json');
    expect(data.items[2].repository.fork).toBe(true);
  });

  it('answers repository metadata and 404 for unknown repos', async () => {
    const { data } = await octokit.rest.repos.get({ owner: 'pydata', repo: 'xarray' });
    expect(data).toMatchObject({
      full_name: 'pydata/xarray',
      owner: { login: 'pydata' },
      stargazers_count: 3900,
      topics: ['python', 'netcdf'],
      default_branch: 'main',
      fork: false,
      archived: false,
      private: false,
    });
    expect(data.pushed_at).toBe('2026-08-19T20:48:31Z');
    await expect(octokit.rest.repos.get({ owner: 'nobody', repo: 'nothing' })).rejects.toMatchObject({ status: 404 });
  });

  it('serves contents as base64 JSON and as raw text', async () => {
    const { data } = await octokit.rest.repos.getContent({ owner: 'pydata', repo: 'xarray', path: 'asv_bench/asv.conf.json' });
    if (Array.isArray(data) || data.type !== 'file') throw new Error('expected a file');
    expect(data.encoding).toBe('base64');
    expect(Buffer.from(data.content, 'base64').toString('utf8')).toBe(ASV_CONF);

    const raw = await octokit.rest.repos.getContent({
      owner: 'pydata',
      repo: 'xarray',
      path: 'asv_bench/asv.conf.json',
      mediaType: { format: 'raw' },
    });
    expect(raw.data).toBe(ASV_CONF);

    await expect(
      octokit.rest.repos.getContent({ owner: 'pydata', repo: 'xarray', path: 'missing.json' }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it('answers the diff media type with a well-formed unified diff', async () => {
    const { data } = await octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', {
      owner: 'pydata',
      repo: 'xarray',
      pull_number: 11476,
      mediaType: { format: 'diff' },
    });
    const diff = data as unknown as string;
    expect(typeof diff).toBe('string');
    expect(diff).toContain('diff --git a/xarray/plot/utils.py b/xarray/plot/utils.py\n');
    expect(diff).toContain('--- a/xarray/plot/utils.py\n+++ b/xarray/plot/utils.py\n@@ -1,3 +1,6 @@\n');
    expect(diff).toContain('LaTeX labels');
    // Every hunk header agrees with the lines under it.
    for (const chunk of diff.split(/^(?=@@ )/m).slice(1)) {
      const [, d, a] = /^@@ -\d+,(\d+) \+\d+,(\d+) @@/.exec(chunk)!;
      const lines = chunk.split('\n').slice(1).filter((l) => !l.startsWith('diff --git') && !l.startsWith('index ') && !l.startsWith('---') && !l.startsWith('+++'));
      expect(lines.filter((l) => l.startsWith('-'))).toHaveLength(Number(d));
      expect(lines.filter((l) => l.startsWith('+'))).toHaveLength(Number(a));
    }

    const pr = prs.find((p) => p.files.some((f) => f.additions === null))!;
    const binary = pr.files.find((f) => f.additions === null)!;
    const { data: bin } = await octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', {
      owner: 'pydata',
      repo: 'xarray',
      pull_number: pr.number,
      mediaType: { format: 'diff' },
    });
    expect(bin as unknown as string).toContain(`Binary files a/${binary.path} and b/${binary.path} differ`);

    // Without the media type: the PR JSON.
    const json = await octokit.rest.pulls.get({ owner: 'pydata', repo: 'xarray', pull_number: 11476 });
    expect(json.data).toMatchObject({ number: 11476, state: 'closed', merged: true, changed_files: 3, additions: 22, deletions: 3 });
  });

  it('answers a status set with setDiffStatus', async () => {
    gh.setDiffStatus('pydata/xarray', 11348, 451);
    await expect(
      octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', {
        owner: 'pydata',
        repo: 'xarray',
        pull_number: 11348,
        mediaType: { format: 'diff' },
      }),
    ).rejects.toMatchObject({ status: 451 });
    // The JSON representation is unaffected.
    const { status } = await octokit.rest.pulls.get({ owner: 'pydata', repo: 'xarray', pull_number: 11348 });
    expect(status).toBe(200);
  });

  it('serves issues, comments and cross-reference timelines', async () => {
    gh.addIssue('pydata/xarray', { number: 90001, title: 'slow groupby', body: 'groupby is slow', comments: ['+1', 'see below'] });
    gh.addIssue('pydata/xarray', { number: 90002, title: 'speed up', body: 'Fixes #90001 by caching', isPullRequest: true });

    const issue = await octokit.rest.issues.get({ owner: 'pydata', repo: 'xarray', issue_number: 90001 });
    expect(issue.data).toMatchObject({ number: 90001, title: 'slow groupby', body: 'groupby is slow' });
    expect(issue.data.pull_request).toBeUndefined();

    const pr = await octokit.rest.issues.get({ owner: 'pydata', repo: 'xarray', issue_number: 11524 });
    expect(pr.data.pull_request).toBeDefined();

    const comments = await octokit.rest.issues.listComments({ owner: 'pydata', repo: 'xarray', issue_number: 90001 });
    expect(comments.data.map((c) => c.body)).toEqual(['+1', 'see below']);

    const timeline = await octokit.rest.issues.listEventsForTimeline({ owner: 'pydata', repo: 'xarray', issue_number: 90001 });
    expect(timeline.data).toHaveLength(1);
    expect(timeline.data[0]).toMatchObject({ event: 'cross-referenced', source: { issue: { number: 90002 } } });

    await expect(octokit.rest.issues.get({ owner: 'pydata', repo: 'xarray', issue_number: 99999 })).rejects.toMatchObject({
      status: 404,
    });
  });

  it('pages comments and timelines with Link headers; refuses withheld issues; faults can target one route', async () => {
    gh.addIssue('pydata/xarray', { number: 90010, title: 'long thread', body: 'slow', comments: Array.from({ length: 75 }, (_, i) => `c${i + 1}`) });
    for (let n = 90011; n < 90046; n++) gh.addIssue('pydata/xarray', { number: n, title: `m${n}`, body: `me too, see pydata/xarray#90010` });

    const first = await octokit.rest.issues.listComments({ owner: 'pydata', repo: 'xarray', issue_number: 90010 });
    expect(first.data).toHaveLength(30); // GitHub's default page size
    expect(first.headers.link).toMatch(/page=2>; rel="next"/);
    const all = await octokit.paginate(octokit.rest.issues.listComments, { owner: 'pydata', repo: 'xarray', issue_number: 90010, per_page: 50 });
    expect(all.map((c) => c.body)).toEqual(Array.from({ length: 75 }, (_, i) => `c${i + 1}`));
    const events = await octokit.paginate(octokit.rest.issues.listEventsForTimeline, { owner: 'pydata', repo: 'xarray', issue_number: 90010, per_page: 20 });
    expect(events.map((e: any) => e.source.issue.number)).toEqual(Array.from({ length: 35 }, (_, i) => 90011 + i));

    gh.setIssueStatus('pydata/xarray', 90010, 410);
    for (const call of [
      octokit.rest.issues.get({ owner: 'pydata', repo: 'xarray', issue_number: 90010 }),
      octokit.rest.issues.listComments({ owner: 'pydata', repo: 'xarray', issue_number: 90010 }),
    ]) await expect(call).rejects.toMatchObject({ status: 410 });
    gh.setIssueStatus('pydata/xarray', 90010, null);

    gh.inject({ kind: 'truncate', route: 'rest:issues/comments', drop: 5 });
    const short = await octokit.rest.issues.get({ owner: 'pydata', repo: 'xarray', issue_number: 90010 });
    expect(short.status).toBe(200); // the fault waits for its route
    const cut = await octokit.rest.issues.listComments({ owner: 'pydata', repo: 'xarray', issue_number: 90010, per_page: 100 });
    expect(cut.data).toHaveLength(70);
  });

  it('answers /rate_limit and 404 for unknown routes', async () => {
    const { data } = await octokit.rest.rateLimit.get();
    expect(data.resources.core.remaining).toBeGreaterThan(0);
    expect(data.resources.graphql).toBeDefined();
    expect(data.resources.search).toBeDefined();

    const res = await rawFetch('/no/such/route');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ message: 'Not Found' });
    expect(res.headers.get('x-ratelimit-remaining')).not.toBeNull();
    expect(res.headers.get('x-github-request-id')).toBeTruthy();
  });
});

describe('faults', () => {
  it('secondary-403 and secondary-429 carry retry-after, then the route recovers', async () => {
    gh.inject({ kind: 'secondary-403', retryAfterSeconds: 7, match: 'rest' });
    gh.inject({ kind: 'secondary-429', match: 'search' });

    const a = await rawFetch('/repos/pydata/xarray');
    expect(a.status).toBe(403);
    expect(a.headers.get('retry-after')).toBe('7');
    expect((await errorBody(a)).message).toMatch(/secondary rate limit/);
    expect((await rawFetch('/repos/pydata/xarray')).status).toBe(200);

    const b = await rawFetch('/search/code?q=filename:asv.conf.json');
    expect(b.status).toBe(429);
    expect(b.headers.get('retry-after')).toBe('1');
    expect((await rawFetch('/search/code?q=filename:asv.conf.json')).status).toBe(200);
  });

  it('primary-403 drains the headers; http-502 answers Server Error', async () => {
    gh.inject({ kind: 'primary-403', retryAfterSeconds: 30 });
    const res = await rawFetch('/repos/pydata/xarray');
    expect(res.status).toBe(403);
    expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(res.headers.get('x-ratelimit-reset'));
    expect(reset - Date.now() / 1000).toBeGreaterThan(28);
    expect(reset - Date.now() / 1000).toBeLessThan(32);
    expect((await errorBody(res)).message).toBe('API rate limit exceeded for user ID 1.');

    gh.inject({ kind: 'http-502', times: 2 });
    expect((await rawFetch('/rate_limit')).status).toBe(502);
    const second = await rawFetch('/repos/pydata/xarray');
    expect(second.status).toBe(502);
    expect(await second.json()).toEqual({ message: 'Server Error' });
    expect((await rawFetch('/repos/pydata/xarray')).status).toBe(200);
  });

  it('graphql-rate-limited hits only GraphQL and surfaces through octokit.graphql', async () => {
    // Injected through the control route, like an out-of-process test would.
    const queued = await rawFetch('/_standin/faults', {
      method: 'POST',
      body: JSON.stringify({ kind: 'graphql-rate-limited', match: 'any' }),
    });
    expect(queued.status).toBe(201);
    expect((await rawFetch('/repos/pydata/xarray')).status).toBe(200); // not consumed by REST

    const res = await graphqlFetch(XARRAY);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
    const body = await errorBody(res);
    expect(body.errors?.[0].type).toBe('RATE_LIMITED');

    gh.inject({ kind: 'graphql-rate-limited' });
    await expect(octokit.graphql(SEARCH, { q: XARRAY, first: 1 })).rejects.toMatchObject({
      errors: [expect.objectContaining({ type: 'RATE_LIMITED' })],
    });
    const ok = await octokit.graphql<SearchResult>(SEARCH, { q: XARRAY, first: 1 });
    expect(ok.search.nodes).toHaveLength(1);
  });

  it('truncate shortens a search page without changing pageInfo, and a files page', async () => {
    const whole = await octokit.graphql<SearchResult>(SEARCH, { q: XARRAY, first: 100 });
    gh.inject({ kind: 'truncate', match: 'graphql' });
    const short = await octokit.graphql<SearchResult>(SEARCH, { q: XARRAY, first: 100 });
    expect(short.search.nodes).toHaveLength(99);
    expect(short.search.issueCount).toBe(whole.search.issueCount);
    expect(short.search.pageInfo).toEqual(whole.search.pageInfo);

    gh.inject({ kind: 'truncate', match: 'rest', drop: 3 });
    const files = await octokit.paginate(octokit.rest.pulls.listFiles, {
      owner: 'pydata',
      repo: 'xarray',
      pull_number: 3142,
      per_page: 100,
    });
    expect(files).toHaveLength(138 - 3);
  });
});

describe('token quotas', () => {
  it('rejects bad tokens, exhausts a quota, and refills after the window', async () => {
    const limited = await GitHubStandin.start({ tokens: { alpha: 2, beta: 5 }, resetSeconds: 1 });
    try {
      limited.addPRs(prs.slice(0, 5));
      const url = limited.url;
      const get = (token?: string) =>
        fetch(`${url}/repos/pydata/xarray`, { headers: token ? { authorization: `token ${token}` } : {} });

      expect((await get()).status).toBe(401);
      const bad = await get('nope');
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ message: 'Bad credentials' });

      const one = await get('alpha');
      expect(one.status).toBe(200);
      expect(one.headers.get('x-ratelimit-limit')).toBe('2');
      expect(one.headers.get('x-ratelimit-remaining')).toBe('1');
      expect(one.headers.get('x-ratelimit-resource')).toBe('core');
      // Through octokit, with the Bearer form.
      const alpha = new Octokit({ baseUrl: url, auth: 'alpha', log: quiet });
      const two = await alpha.rest.repos.get({ owner: 'pydata', repo: 'xarray' });
      expect(two.headers['x-ratelimit-remaining']).toBe('0');

      const three = await get('alpha');
      expect(three.status).toBe(403);
      expect(three.headers.get('x-ratelimit-remaining')).toBe('0');
      const reset = Number(three.headers.get('x-ratelimit-reset'));
      expect(reset).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
      expect((await errorBody(three)).message).toBe('API rate limit exceeded for user ID 1.');

      const gql = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { authorization: 'bearer alpha' },
        body: JSON.stringify({ query: SEARCH, variables: { q: XARRAY, first: 1 } }),
      });
      expect(gql.status).toBe(200);
      expect(gql.headers.get('x-ratelimit-resource')).toBe('graphql');
      expect(await gql.json()).toEqual({
        data: null,
        errors: [{ type: 'RATE_LIMITED', message: 'API rate limit exceeded for user ID 1.' }],
      });

      // Another token has its own quota.
      expect((await get('beta')).status).toBe(200);

      await new Promise((r) => setTimeout(r, Math.max(0, reset * 1000 - Date.now()) + 50));
      const refilled = await get('alpha');
      expect(refilled.status).toBe(200);
      expect(refilled.headers.get('x-ratelimit-remaining')).toBe('1');

      expect(limited.stats.byToken).toMatchObject({ anonymous: 1, nope: 1, alpha: 5, beta: 1 });
    } finally {
      await limited.close();
    }
  });
});

describe('stats', () => {
  it('counts API requests by route and token, but not control routes', async () => {
    gh.resetStats();
    await octokit.graphql(SEARCH, { q: XARRAY, first: 1 });
    await octokit.graphql('query { rateLimit { remaining } }');
    await octokit.rest.repos.get({ owner: 'pydata', repo: 'xarray' });
    await octokit.rest.repos.getContent({ owner: 'pydata', repo: 'xarray', path: 'asv_bench/asv.conf.json' });
    await octokit.rest.search.code({ q: 'filename:asv.conf.json' });
    await octokit.rest.pulls.get({ owner: 'pydata', repo: 'xarray', pull_number: 11524 });
    await octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', {
      owner: 'pydata',
      repo: 'xarray',
      pull_number: 11524,
      mediaType: { format: 'diff' },
    });
    await octokit.rest.rateLimit.get();
    await rawFetch('/repos/pydata/xarray', { headers: { authorization: 'token t1' } });
    await rawFetch('/_standin/stats');
    await rawFetch('/_standin/reset-stats', { method: 'GET' }); // wrong method: a 404 control answer, still uncounted

    const viaHttp = await (await rawFetch('/_standin/stats')).json();
    expect(viaHttp).toEqual(gh.stats);
    expect(gh.stats).toEqual({
      total: 9,
      byRoute: {
        'graphql:search': 1,
        'graphql:other': 1,
        'rest:repo': 2,
        'rest:contents': 1,
        'rest:search/code': 1,
        'rest:pulls': 1,
        'rest:pulls/diff': 1,
        'rest:rate_limit': 1,
      },
      byToken: { anonymous: 8, t1: 1 },
    });

    await rawFetch('/_standin/reset-stats', { method: 'POST' });
    expect(gh.stats).toEqual({ total: 0, byRoute: {}, byToken: {} });
  });
});

describe('latency', () => {
  it('delays every API response by latencyMs', async () => {
    const slow = await GitHubStandin.start({ latencyMs: 60 });
    try {
      const t0 = performance.now();
      const res = await fetch(`${slow.url}/rate_limit`);
      expect(res.status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    } finally {
      await slow.close();
    }
  });
});
