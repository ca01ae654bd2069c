import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, describeConfig, githubTokens, loadConfig } from '../src/config.js';
import { scrubSecrets } from '../src/log.js';
import { backoffDelayMs } from '../src/bus/backoff.js';
import { parseRepoSlug } from '../src/commands/add-repo.js';

const run = promisify(execFile);

describe('configuration', () => {
  it('applies defaults when nothing is set', () => {
    const c = loadConfig({});
    expect(c.PERFMINE_POLL_INTERVAL_MS).toBe(1000);
    expect(c.PERFMINE_DATA_DIR).toBe(path.resolve('.perfmine')); // absolute: the same directory from any working directory
    expect(loadConfig({ PERFMINE_DATA_DIR: 'x/y' }).PERFMINE_DATA_DIR).toBe(path.join(process.cwd(), 'x/y'));
    expect(c.DATABASE_URL).toBeUndefined();
  });

  it('rejects a bad value with a message naming the variable', () => {
    expect(() => loadConfig({ PERFMINE_POLL_INTERVAL_MS: 'soon' })).toThrow(ConfigError);
    expect(() => loadConfig({ PERFMINE_POLL_INTERVAL_MS: 'soon' })).toThrow(/PERFMINE_POLL_INTERVAL_MS="soon"/);
    expect(() => loadConfig({ PERFMINE_LOG_LEVEL: 'loud' })).toThrow(/PERFMINE_LOG_LEVEL/);
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL=\(hidden\)/);
  });

  it('never shows secrets', () => {
    const c = loadConfig({ GITHUB_TOKENS: 'ghp_aaaaaaaaaaaa,ghp_bbbbbbbbbbbb', OPENAI_API_KEY: 'sk-secretsecret' });
    expect(githubTokens(c)).toEqual(['ghp_aaaaaaaaaaaa', 'ghp_bbbbbbbbbbbb']);
    const shown = JSON.stringify(describeConfig(c));
    expect(shown).not.toMatch(/ghp_|sk-secret/);
    expect(scrubSecrets('GET https://x:ghp_abcdefghijkl@api.github.com with token ghp_abcdefghijkl')).not.toMatch(/ghp_abcdef/);
    expect(scrubSecrets('postgres://u:hunter2@h/db')).toBe('postgres://u:***@h/db');
  });

  it('the daemon refuses to start on a bad value and names it', async () => {
    const err = await run('npx', ['tsx', 'src/cli.ts', 'daemon'], {
      env: { ...process.env, PERFMINE_SHUTDOWN_TIMEOUT_MS: '-5' },
    }).then(() => null, (e) => e);
    expect(err).not.toBeNull();
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/PERFMINE_SHUTDOWN_TIMEOUT_MS="-5"/);
  });
});

describe('backoff', () => {
  it('grows exponentially, is capped, and keeps at least half the delay', () => {
    const b = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelayMs(1, b, () => 0)).toBe(50);
    expect(backoffDelayMs(1, b, () => 1)).toBe(100);
    expect(backoffDelayMs(3, b, () => 1)).toBe(400);
    expect(backoffDelayMs(10, b, () => 1)).toBe(1000);
    expect(backoffDelayMs(10, b, () => 0)).toBe(500);
  });
});

describe('repository names', () => {
  it('accepts OWNER/NAME and GitHub URLs, refuses the rest', () => {
    expect(parseRepoSlug('pydata/xarray')).toEqual({ owner: 'pydata', name: 'xarray' });
    expect(parseRepoSlug('https://github.com/numpy/numpy.git')).toEqual({ owner: 'numpy', name: 'numpy' });
    for (const bad of ['xarray', 'a/b/c', '/x', 'own er/x', 'o/..', "o/x'; DROP TABLE x"]) {
      expect(() => parseRepoSlug(bad)).toThrow(/not a repository name/);
    }
  });
});
