import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { createThrowawayDatabase } from './helpers/pg-provider.js';

// `perfmine demo` with DATABASE_URL set must leave that database alone and
// print no secret.

const run = promisify(execFile);
const role = `perfmine_demo_tester_${randomBytes(3).toString('hex')}`;
const password = `Demo-Secret-${randomBytes(6).toString('hex')}`;
let throwaway: Awaited<ReturnType<typeof createThrowawayDatabase>>;

async function onAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('adminUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const demoDatabases = () => onAdmin(async (c) => (await c.query<{ datname: string }>(
  `SELECT datname FROM pg_database WHERE datname LIKE 'perfmine\\_demo\\_%' ORDER BY 1`)).rows.map((r) => r.datname));

beforeAll(async () => {
  throwaway = await createThrowawayDatabase(inject('adminUrl'));
  const conn = connect(throwaway.url, 2);
  try {
    await migrate(conn.pool);
    await conn.pool.query(`INSERT INTO repositories (owner, name) VALUES ('keep', 'me')`);
  } finally {
    await conn.close();
  }
  await onAdmin((c) => c.query(`CREATE ROLE ${role} LOGIN CREATEDB PASSWORD '${password}'`));
});

afterAll(async () => {
  await throwaway.drop();
  await onAdmin(async (c) => {
    for (const { datname } of (await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = $1`, [role])).rows) {
      await c.query(`DROP DATABASE ${datname} WITH (FORCE)`);
    }
    await c.query(`DROP ROLE IF EXISTS ${role}`);
  });
});

describe('perfmine demo with DATABASE_URL', () => {
  it('works in a new database of its own, drops it, leaves the existing data alone and prints no password', async () => {
    const url = new URL(throwaway.url);
    url.username = role;
    url.password = password;
    const before = await demoDatabases();
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'demo', '--exit-when-idle', '--json', '--prs', '30'], {
      env: { ...process.env, DATABASE_URL: url.toString(), PERFMINE_LOG_LEVEL: 'info' }, maxBuffer: 64 * 1024 * 1024,
    });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(summary.database).toMatch(/^perfmine_demo_[0-9a-f]{8}$/);
    expect(summary.kept).toBe(false);
    expect(summary.pull_requests).toBe(30);
    expect(summary.judged).toBeGreaterThan(0);

    expect(stdout + stderr).not.toContain(password);
    const conn = connect(throwaway.url, 2);
    try {
      const { rows } = await conn.pool.query('SELECT owner, name FROM repositories');
      expect(rows).toEqual([{ owner: 'keep', name: 'me' }]); // not truncated, nothing added
      expect((await conn.pool.query('SELECT count(*)::int AS n FROM pull_requests')).rows[0].n).toBe(0);
    } finally {
      await conn.close();
    }
    // Its own database is gone again (other demo databases may come and go: the server is shared).
    expect(await demoDatabases()).not.toContain(summary.database);
    expect(before).not.toContain(summary.database);
  }, 180_000);
});
