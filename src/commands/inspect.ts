import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

type Row = Record<string, unknown>;

export interface Inspection {
  repository: string;
  number: number;
  pull_request: Row;
  leases: Row[];
  stage_runs: Row[];
  /** Side-table rows by table name (tables this schema does not have are left out). */
  side: Record<string, Row[]>;
}

/** Spine columns shown only by length: they are long texts. */
const LONG_TEXT = new Set(['body', 'patch', 'rendered_problem', 'problem_description', 'files']);

/** Side tables of a PR: [table, the SQL that selects its rows for PR $id]. Build logs are shown by their tail. */
const SIDE_TABLES: Array<[string, (id: number) => ReturnType<typeof sql<Row>>]> = [
  ['packages', (id) => sql<Row>`SELECT k.* FROM packages k JOIN pull_requests p ON p.package_id = k.id WHERE p.id = ${id}`],
  ['candidate_prs', (id) => sql<Row>`SELECT * FROM candidate_prs WHERE pull_request_id = ${id}`],
  ['candidate_containers', (id) => sql<Row>`
    SELECT c.id, c.attempt_no, c.strategy, c.outcome, c.succeeded, c.reason, c.executor, c.python_version, c.env_ref,
           c.duration_ms, c.llm_prompt_tokens, c.llm_completion_tokens, c.created_at,
           length(c.build_log) AS build_log_chars, right(c.build_log, 400) AS build_log_tail
    FROM candidate_containers c WHERE c.pull_request_id = ${id} ORDER BY c.id`],
  ['benchmark_runs', (id) => sql<Row>`
    SELECT r.*, (SELECT count(*)::int FROM benchmark_results b WHERE b.run_id = r.id) AS results
    FROM benchmark_runs r WHERE r.pull_request_id = ${id} ORDER BY r.id`],
  ['published_tasks', (id) => sql<Row>`SELECT dataset, month, task_id, targets, published_at FROM published_tasks WHERE pull_request_id = ${id}`],
];

/** Everything the bus did to one PR: its spine columns, leases, attempts and side-table rows; null when there is no such PR. */
export async function inspectPr(db: Db, repositoryId: number, number: number): Promise<Inspection | null> {
  const { rows } = await sql<Row>`
    SELECT p.*, r.full_name AS repository FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
    WHERE p.repository_id = ${repositoryId} AND p.number = ${number}`.execute(db);
  const pr = rows[0];
  if (!pr) return null;
  const id = Number(pr.id);
  for (const col of LONG_TEXT) {
    if (pr[col] === null || pr[col] === undefined) continue;
    const text = typeof pr[col] === 'string' ? (pr[col] as string) : JSON.stringify(pr[col]);
    pr[col] = `(${text.length} chars)`;
  }
  const leases = await sql<Row>`
    SELECT stage, run_id, worker_id, claimed_at, expires_at, attempts, max_attempts, retry_at, failed_at, last_error
    FROM leases WHERE subject_table = 'pull_requests' AND subject_id = ${id} ORDER BY stage`.execute(db);
  const runs = await sql<Row>`
    SELECT r.id AS run_id, r.stage, r.attempt, r.outcome, r.worker_id, r.started_at, r.finished_at,
           round(extract(epoch FROM r.finished_at - r.started_at)::numeric, 3)::float8 AS seconds, r.error, r.cost
    FROM stage_runs r
    WHERE r.subject_table = 'pull_requests' AND r.subject_id = ${id} ORDER BY r.started_at, r.id`.execute(db);
  const side: Record<string, Row[]> = {};
  for (const [table, query] of SIDE_TABLES) {
    const exists = await sql<{ ok: boolean }>`SELECT to_regclass(${table}) IS NOT NULL AS ok`.execute(db);
    if (!exists.rows[0]?.ok) continue;
    try {
      side[table] = (await query(id).execute(db)).rows;
    } catch {
      // A schema older or newer than this query (a column renamed): show the rows as they are.
      side[table] = (await sql<Row>`SELECT * FROM ${sql.id(table)} WHERE pull_request_id = ${id}`.execute(db).catch(() => ({ rows: [] }))).rows;
    }
  }
  const repository = String(pr.repository);
  delete pr.repository;
  return { repository, number, pull_request: pr, leases: leases.rows, stage_runs: runs.rows, side };
}

function show(v: unknown, max = 160): string {
  if (v === null || v === undefined) return '-';
  const s = v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const one = s.replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max)}… (${one.length} chars)` : one;
}

/** Readable text: the spine's set columns, then leases, attempts and side tables. */
export function formatInspection(i: Inspection): string {
  const out = [`${i.repository}#${i.number} (pull_requests.id = ${show(i.pull_request.id)})`, '', 'spine:'];
  const set = Object.entries(i.pull_request).filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0));
  const width = Math.max(...set.map(([k]) => k.length));
  for (const [k, v] of set) out.push(`  ${k.padEnd(width)}  ${show(v)}`);
  out.push('', `leases (${i.leases.length}):`);
  if (!i.leases.length) out.push('  none (no stage holds, retries or gave up on this PR)');
  for (const l of i.leases) {
    const state = l.worker_id ? `held by ${show(l.worker_id)} since ${show(l.claimed_at)}` : l.failed_at ? `FAILED at ${show(l.failed_at)}` : `retry at ${show(l.retry_at)}`;
    out.push(`  ${show(l.stage)}: ${state}, attempt ${show(l.attempts)}/${show(l.max_attempts)}${l.last_error ? `; last error: ${show(l.last_error)}` : ''}`);
  }
  out.push('', `attempts (${i.stage_runs.length}):`);
  for (const r of i.stage_runs) {
    out.push(`  ${show(r.started_at)}  ${show(r.stage)} #${show(r.attempt)} ${show(r.outcome)} in ${show(r.seconds)}s on ${show(r.worker_id)}` +
      `${r.error ? `: ${show(r.error)}` : ''}${r.cost ? `  cost ${show(r.cost, 120)}` : ''}`);
  }
  for (const [table, rows] of Object.entries(i.side)) {
    out.push('', `${table} (${rows.length}):`);
    for (const row of rows) {
      const cells = Object.entries(row).filter(([k, v]) => v !== null && k !== 'build_log_tail');
      out.push(`  ${cells.map(([k, v]) => `${k}=${show(v, 80)}`).join('  ')}`);
      // A build log's end is where the error is.
      if (typeof row.build_log_tail === 'string') out.push(`    log tail: …${show(row.build_log_tail.slice(-200), 200)}`);
    }
  }
  return out.join('\n');
}
