import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { GitHubClient, GitHubRequestError } from '../src/adapters/github/client.js';
import { ServiceDownError } from '../src/bus/stage.js';
import { silentLogger } from '../src/log.js';
import { GitHubStandin, type StandinOptions } from '../src/standins/github/server.js';
import { hourlyPRs } from './helpers/discover.js';

/** The real client (real octokit, throttling and retry plugins) against the stand-in. */
function client(url: string, tokens: string[], timeoutMs = 30_000): GitHubClient {
  return new GitHubClient({
    baseUrl: url, tokens, log: silentLogger, graphqlMinIntervalMs: 0, searchMinIntervalMs: 0, maxInlineWaitSeconds: 1, timeoutMs,
  });
}

let standin: GitHubStandin | undefined;
afterEach(async () => {
  await standin?.close();
  standin = undefined;
});

async function startStandin(opts: StandinOptions = {}): Promise<GitHubStandin> {
  standin = await GitHubStandin.start(opts);
  standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
  standin.addPRs(hourlyPRs('acme/lib', 3, '2024-01-01T00:00:00Z'));
  return standin;
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (err: unknown) => err as Error);

describe('GitHubClient: a service-wide failure is ServiceDownError, never the row\'s', () => {
  it('a refused token stops the service at once, and no message carries the token', async () => {
    const s = await startStandin({ tokens: { 'ghp_good_token_1234': 100 } });
    const bad = client(s.url, ['ghp_revoked_secret_5678']);
    const err = await failure(bad.repository('acme', 'lib'));
    expect(err).toBeInstanceOf(ServiceDownError);
    expect(err).toMatchObject({ group: 'github' });
    expect(err.message).toMatch(/GitHub rejected the credentials \(401 Bad credentials/);
    expect(err.message).not.toContain('ghp_revoked_secret_5678');

    const check = await bad.checkCredentials();
    expect(check).toMatchObject({ ok: false, reason: expect.stringMatching(/^GitHub rejected the credentials \(401 Bad credentials.*\) on GET \/rate_limit$/) });
    expect(JSON.stringify(check)).not.toContain('ghp_revoked_secret_5678');

    const good = client(s.url, ['ghp_good_token_1234']);
    expect(await good.checkCredentials()).toEqual({ ok: true });
    expect(await good.repository('acme', 'lib')).toMatchObject({ owner: 'acme', name: 'lib', stars: 900 });
  });

  it('a pool goes on with its other tokens when one is refused; the start-up check names the bad one', async () => {
    const s = await startStandin({ tokens: { 'ghp_good_token_1234': 100 } });
    const pool = client(s.url, ['ghp_revoked_secret_5678', 'ghp_good_token_1234']);
    for (let i = 0; i < 3; i++) expect(await pool.repository('acme', 'lib')).toMatchObject({ name: 'lib' });
    const check = await pool.checkCredentials();
    expect(check).toMatchObject({ ok: false, reason: expect.stringMatching(/^GitHub rejected the credentials \(401 .*\) on GET \/rate_limit with token#1 of 2$/) });
    expect(JSON.stringify(check)).not.toContain('ghp_');
  });

  it('an endpoint that refuses connections stops the service at once, without retries in place', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const c = client(url, ['ghp_token_abcd']);
    const t0 = Date.now();
    const err = await failure(c.mergedPRsPage('acme', 'lib', new Date('2024-01-01'), new Date('2024-02-01'), null));
    expect(err).toBeInstanceOf(ServiceDownError);
    expect(err.message).toMatch(/no answer from GitHub .*ECONNREFUSED/);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(await c.checkCredentials()).toEqual({ ok: false, reason: `GitHub API at ${new URL(url).host} cannot be reached (ECONNREFUSED)` });
  });

  it('a request that hangs times out; three in a row without a success mean the service is down', async () => {
    const s = await startStandin({ latencyMs: 3_000 });
    const c = client(s.url, [], 200);
    for (let i = 1; i <= 2; i++) {
      const t0 = Date.now();
      const err = await failure(c.repository('acme', 'lib'));
      expect(err).toBeInstanceOf(GitHubRequestError);
      expect(err.message).toBe('GitHub did not answer GET /repos/acme/lib within 200 ms');
      expect(Date.now() - t0).toBeLessThan(1_500);
    }
    const third = await failure(c.fileText('acme', 'lib', 'asv.conf.json'));
    expect(third).toBeInstanceOf(ServiceDownError);
    expect(third.message).toMatch(/did not answer .* \(3 failures in a row\)/);
  });

  it("a row's own errors (404) stay the row's, however many", async () => {
    const s = await startStandin();
    const c = client(s.url, []);
    for (let i = 0; i < 5; i++) {
      const err = await failure(c.pullFiles('acme', 'lib', 999));
      expect(err).toBeInstanceOf(GitHubRequestError);
      expect(err).toMatchObject({ status: 404 });
    }
    expect(await c.fileText('acme', 'lib', 'missing.json')).toBeNull();
    expect(await c.repository('nobody', 'nothing')).toBeNull();
  });
});

describe('GitHubClient honours the AbortSignal', () => {
  it('an abort stops a request promptly, with the abort reason', async () => {
    const s = await startStandin({ latencyMs: 5_000 });
    const c = client(s.url, []);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('deadline exceeded')), 150);
    const t0 = Date.now();
    const err = await failure(c.mergedPRsPage('acme', 'lib', new Date('2024-01-01'), new Date('2024-02-01'), null, controller.signal));
    expect(err.message).toBe('deadline exceeded');
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('an already aborted signal sends nothing', async () => {
    const s = await startStandin();
    const c = client(s.url, []);
    const signal = AbortSignal.abort(new Error('shutting down'));
    await expect(c.pullFiles('acme', 'lib', 1, signal)).rejects.toThrow('shutting down');
    await expect(c.codeSearch('filename:asv.conf.json', 1, signal)).rejects.toThrow('shutting down');
    expect(s.stats.total).toBe(0);
  });

  it('pages of files follow the signal too, past the first page', async () => {
    const s = await startStandin();
    const files = Array.from({ length: 250 }, (_, i) => ({ path: `pkg/f${i}.py`, additions: 1, deletions: 0 }));
    s.addPRs([{ ...hourlyPRs('acme/lib', 1, '2024-01-01T00:00:00Z', 50)[0], changed_files: 250, files }]);
    const c = client(s.url, []);
    expect(await c.pullFiles('acme', 'lib', 50)).toHaveLength(250);
    const controller = new AbortController();
    const pending = c.pullFiles('acme', 'lib', 50, controller.signal);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });
});
