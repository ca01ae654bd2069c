import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import OpenAI from 'openai';
import { GitHubStandin, loadPRsFromJsonl, type StandinPR } from '../src/standins/github/server.js';
import { LlmStandin } from '../src/standins/llm/server.js';

/** The stand-in faults the chaos benchmark uses, through the real octokit and openai clients. */

const DATA = 'data/xarray-prs.jsonl';
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const SEARCH = `query($q: String!) { search(query: $q, type: ISSUE, first: 100) {
  issueCount nodes { ... on PullRequest { number title body } } } }`;
interface SearchResult { search: { issueCount: number; nodes: { number: number; title: string; body: string | null }[] } }

let gh: GitHubStandin;
let octokit: Octokit;
let prs: StandinPR[];

const repo = () => octokit.rest.repos.get({ owner: 'pydata', repo: 'xarray' });
/** The error a promise rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the request to fail');
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  gh = await GitHubStandin.start();
  prs = loadPRsFromJsonl(DATA);
  gh.loadJsonl(DATA);
  gh.addRepo({ owner: 'pydata', name: 'xarray', stars: 3900, files: { 'asv.conf.json': '{}' } });
  octokit = new Octokit({ baseUrl: gh.url, log: quiet });
});
afterAll(async () => {
  await gh?.close();
});

describe('GitHub stand-in: 5xx and 429', () => {
  it('a burst of N 5xx answers, then the route recovers', async () => {
    gh.inject({ kind: 'http-503', times: 2 });
    gh.inject({ kind: 'http-504' });
    gh.inject({ kind: 'http-500' });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await failure(repo())).status);
    expect(statuses.slice(0, 4)).toEqual([503, 503, 504, 500]);
    expect((await repo()).status).toBe(200);
  });

  it('a 5xx span hits every request until it ends', async () => {
    gh.inject({ kind: 'http-502', durationMs: 300, match: 'rest' });
    for (let i = 0; i < 5; i++) expect((await failure(repo())).status).toBe(502);
    // Other categories pass by.
    expect((await octokit.graphql<SearchResult>(SEARCH, { q: 'repo:pydata/xarray is:pr is:merged' })).search.issueCount).toBe(4581);
    await sleep(350);
    expect((await repo()).status).toBe(200);
  });

  it("octokit's retry plugin rides out a short burst", async () => {
    const Retrying = Octokit.plugin(retry);
    const kit = new Retrying({ baseUrl: gh.url, log: quiet, retry: { retryAfterBaseValue: 1 } });
    gh.inject({ kind: 'http-503', times: 2 });
    const before = gh.stats.total;
    const { status } = await kit.rest.repos.get({ owner: 'pydata', repo: 'xarray' });
    expect(status).toBe(200);
    expect(gh.stats.total - before).toBe(3);
  });

  it('429 with retry-after reaches octokit', async () => {
    gh.inject({ kind: 'secondary-429', retryAfterSeconds: 4 });
    const err = await failure(repo());
    expect(err.status).toBe(429);
    expect(err.response.headers['retry-after']).toBe('4');
  });
});

describe('GitHub stand-in: timeouts', () => {
  it('never answers: the client gives up; clearFaults drops requests still held', async () => {
    gh.inject({ kind: 'timeout', times: 2 });
    const started = Date.now();
    const err = await failure(octokit.rest.repos.get({ owner: 'pydata', repo: 'xarray', request: { signal: AbortSignal.timeout(200) } }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    expect(String(err.message)).toMatch(/abort|timeout/i);

    const held = failure(repo());
    await sleep(100);
    gh.clearFaults();
    expect((await held).status).toBe(500); // octokit's status for a request that got no answer
    expect((await repo()).status).toBe(200);
  });

  it('answers after a long delay', async () => {
    gh.inject({ kind: 'timeout', delayMs: 300 });
    const started = Date.now();
    const { data } = await repo();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(data.full_name).toBe('pydata/xarray');
  });

  it('drops the connection unanswered after the delay with after: reset', async () => {
    gh.inject({ kind: 'timeout', delayMs: 100, after: 'reset', match: 'graphql' });
    const err = await failure(octokit.graphql(SEARCH, { q: 'repo:pydata/xarray is:pr is:merged' }));
    expect(String(err.message)).toMatch(/fetch failed|socket|other side closed|terminated/i);
    expect((await repo()).status).toBe(200);
    expect(gh.faultStats.byKind.timeout).toBeGreaterThanOrEqual(4);
  });
});

describe('GitHub stand-in: corrupt text', () => {
  const pick = () => prs.filter((p) => p.title.includes(' ')).slice(0, 3);

  it('NUL, non-UTF-8 bytes and lone surrogates in titles and bodies of chosen PRs', async () => {
    const [nul, bytes, lone] = pick();
    const merged = (p: StandinPR) => new Date(p.merged_at).toISOString().slice(0, 19) + 'Z';
    const search = (p: StandinPR) => `repo:pydata/xarray is:pr is:merged merged:${merged(p)}..${merged(p)}`;
    const node = async (p: StandinPR) =>
      (await octokit.graphql<SearchResult>(SEARCH, { q: search(p) })).search.nodes.find((n) => n.number === p.number)!;

    gh.corrupt({ numbers: [nul.number], kinds: ['nul'] });
    const a = await node(nul);
    expect(a.title).toContain('\u0000');
    expect(a.title.replace('\u0000', '')).toBe(nul.title);
    expect(a.body).toContain('\u0000');

    gh.corrupt({ numbers: [bytes.number], kinds: ['invalid-utf8'] });
    const raw = await fetch(`${gh.url}/graphql`, {
      method: 'POST',
      body: JSON.stringify({ query: SEARCH, variables: { q: search(bytes) } }),
    });
    const body = Buffer.from(await raw.arrayBuffer());
    expect(body.includes(Buffer.from([0xff]))).toBe(true);
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(body)).toThrow();
    const b = await node(bytes); // octokit decodes with replacement characters
    expect(b.title).toContain('\ufffd');

    gh.corrupt({ numbers: [lone.number], kinds: ['lone-surrogate'] });
    const text = await (
      await fetch(`${gh.url}/graphql`, { method: 'POST', body: JSON.stringify({ query: SEARCH, variables: { q: search(lone) } }) })
    ).text();
    expect(text).toContain('\\ud800');
    const c = await node(lone);
    expect(c.title.isWellFormed()).toBe(false);

    // REST and the diff carry the same corruption.
    const pull = await octokit.rest.pulls.get({ owner: 'pydata', repo: 'xarray', pull_number: lone.number });
    expect(pull.data.title.isWellFormed()).toBe(false);
    gh.corrupt({ numbers: [nul.number], kinds: ['nul'] });
    const diff = await octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', {
      owner: 'pydata', repo: 'xarray', pull_number: nul.number, mediaType: { format: 'diff' },
    });
    if (nul.files.some((f) => (f.additions ?? 0) + (f.deletions ?? 0) > 0)) expect(String(diff.data)).toContain('\u0000');

    gh.corrupt(null);
    expect((await node(nul)).title).toBe(nul.title);
  });

  it('a fraction of PRs, chosen the same way on every read', async () => {
    gh.corrupt({ fraction: 0.1 });
    const q = 'repo:pydata/xarray is:pr is:merged merged:2020-01-01..2020-12-31';
    const read = async () => (await octokit.graphql<SearchResult>(SEARCH, { q })).search.nodes;
    const first = await read();
    const bad = (nodes: SearchResult['search']['nodes']) =>
      nodes.filter((n) => !n.title.isWellFormed() || /[\u0000\ufffd]/.test(n.title)).map((n) => n.number);
    const chosen = bad(first);
    expect(chosen.length).toBeGreaterThan(first.length * 0.03);
    expect(chosen.length).toBeLessThan(first.length * 0.2);
    expect(bad(await read())).toEqual(chosen);
    expect(gh.faultStats.corruptedPRs).toBeGreaterThanOrEqual(chosen.length);
    gh.corrupt(null);
  });

  it('rejects unknown kinds and fractions outside 0..1', () => {
    expect(() => gh.corrupt({ kinds: ['zalgo' as never] })).toThrow(/unknown/);
    expect(() => gh.corrupt({ fraction: 2 })).toThrow(/fraction/);
    expect(() => gh.inject({ kind: 'timeout', after: 'later' as never })).toThrow(/after/);
  });
});

describe('LLM stand-in: outages and 5xx', () => {
  let llm: LlmStandin;
  let client: OpenAI;
  const ask = () =>
    client.chat.completions.create({
      model: 'standin-small',
      messages: [{ role: 'user', content: 'Task: classify\nTitle: Speed up groupby' }],
    });

  beforeAll(async () => {
    llm = await LlmStandin.start();
    client = new OpenAI({ baseURL: llm.url, apiKey: 'test', maxRetries: 0 });
  });
  afterAll(async () => {
    await llm?.close();
  });

  it('refuse: connections are refused until the outage ends, then the same port answers', async () => {
    expect((await ask()).choices[0].message.content).toContain('YES'); // a kept-alive connection exists now
    await llm.startOutage('refuse');
    const err = await failure(ask());
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    const refused = await failure(fetch(`${llm.url}/models`));
    expect(refused.cause?.code).toBe('ECONNREFUSED');
    await llm.endOutage();
    expect((await ask()).choices[0].message.content).toContain('YES');
  });

  it('http-503: every request gets 503 for the span, models included', async () => {
    await llm.startOutage('http-503', 300);
    const err = await failure(ask());
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.status).toBe(503);
    expect((await fetch(`${llm.url}/models`)).status).toBe(503);
    await sleep(350);
    expect(llm.stats.completions).toBeGreaterThan(0);
    expect((await ask()).choices[0].message.content).toContain('YES');
    expect(llm.faultStats).toMatchObject({ 'outage-refuse': 1, 'outage-http-503': 1, 'outage-replies': 2 });
  });

  it('a refuse outage with a duration ends by itself', async () => {
    await llm.startOutage('refuse', 200);
    expect(await failure(ask())).toBeInstanceOf(OpenAI.APIConnectionError);
    await sleep(300);
    expect((await ask()).choices[0].message.content).toContain('YES');
  });

  it('5xx kinds and spans', async () => {
    llm.inject({ kind: 'server-502' });
    llm.inject({ kind: 'server-503' });
    expect((await failure(ask())).status).toBe(502);
    expect((await failure(ask())).status).toBe(503);
    llm.inject({ kind: 'server-500', durationMs: 200 });
    for (let i = 0; i < 4; i++) expect((await failure(ask())).status).toBe(500);
    await sleep(250);
    expect((await ask()).choices[0].message.content).toContain('YES');
  });

  it('malformed for a span: prose instead of JSON, then JSON again', async () => {
    llm.inject({ kind: 'malformed', durationMs: 150 });
    for (let i = 0; i < 3; i++) {
      const content = (await ask()).choices[0].message.content ?? '';
      expect(() => JSON.parse(content)).toThrow();
    }
    await sleep(200);
    expect(JSON.parse((await ask()).choices[0].message.content ?? '').answer).toBe('YES');
    llm.inject({ kind: 'malformed', times: 5 });
    llm.clearFaults();
    expect(JSON.parse((await ask()).choices[0].message.content ?? '').answer).toBe('YES');
  });
});
