import { sql, type Transaction } from 'kysely';
import type { Database } from '../../db/schema.js';
import { jsonb } from '../../domain/clean.js';
import { scrubSecrets } from '../../log.js';
import type { BreakerSettings, Completion } from '../driver.js';
import { closeBreakers, openBreakers, pauseGroups } from './pauses.js';

type Trx = Transaction<Database>;

interface Fenced { stage: string; subject_id: number; run_id: number; attempts: number; failed_at?: Date | null; rerun_requested: boolean }

const key = (stage: string, runId: number) => `${stage}:${runId}`;
const errorOf = (c: Completion) => (c.outcome.kind === 'succeeded' ? null : scrubSecrets(c.outcome.error).slice(0, 4000));

/**
 * Writes a batch of handler outcomes in the caller's transaction. Each item is
 * applied only if its lease still carries its run id and this worker (the
 * fence); the others are returned as stale. One statement per kind of change,
 * so a batch of hundreds costs a handful of round trips.
 *
 * A success whose row was re-requested while it ran (a person set an output
 * back to NULL) is recorded as `superseded` and not written, so the row runs
 * once more. Rate-limited and service-down attempts are not counted.
 */
export async function complete(trx: Trx, batch: Completion[], workerId: string): Promise<number[]> {
  const successes = batch.filter((c) => c.outcome.kind === 'succeeded');
  const others = batch.filter((c) => c.outcome.kind !== 'succeeded');
  const accepted = new Map<string, Fenced>();
  const failedForGood = new Set<string>();
  const superseded = new Set<string>();

  if (successes.length) {
    // Subject rows first, in id order: a re-request (an UPDATE of the row whose
    // trigger flags the lease) then either happens entirely before this write
    // or after it, never deadlocked against it.
    await lockSubjects(trx, successes);
    const items = successes.map((c) => ({ stage: c.stage.name, subject_id: c.claim.row.id, run_id: c.claim.runId }));
    const { rows } = await sql<Fenced>`
      DELETE FROM leases l USING jsonb_to_recordset(${JSON.stringify(items)}::jsonb)
        AS r(stage text, subject_id bigint, run_id bigint)
      WHERE l.stage = r.stage AND l.subject_id = r.subject_id AND l.run_id = r.run_id AND l.worker_id = ${workerId}
      RETURNING l.stage, l.subject_id, l.run_id, l.attempts, l.rerun_requested`.execute(trx);
    for (const r of rows) {
      accepted.set(key(r.stage, Number(r.run_id)), r);
      if (r.rerun_requested) superseded.add(key(r.stage, Number(r.run_id)));
    }
    const fenced = successes.filter((c) => accepted.has(key(c.stage.name, c.claim.runId)) && !superseded.has(key(c.stage.name, c.claim.runId)));
    await applySets(trx, fenced);
    for (const c of fenced) if (c.outcome.kind === 'succeeded' && c.outcome.write) await c.outcome.write(trx);
  }
  await closeBreakers(trx, [...new Set(batch.filter((c) => accepted.has(key(c.stage.name, c.claim.runId))).flatMap((c) => c.servicesOk ?? []))]);

  if (others.length) {
    const items = others.map((c) => {
      const o = c.outcome;
      return {
        stage: c.stage.name, subject_id: c.claim.row.id, run_id: c.claim.runId,
        error: errorOf(c),
        retry_ms: o.kind === 'error' ? o.retryInMs : 0,
        permanent: o.kind === 'error' && !!o.permanent,
        uncounted: o.kind === 'rate_limited' || o.kind === 'service_down',
        until: o.kind === 'rate_limited' ? o.until.toISOString() : null,
      };
    });
    // An uncounted attempt: the service refused or is down, the row did nothing wrong.
    // A re-requested row is retried now with a fresh budget, never failed.
    const { rows } = await sql<Fenced>`
      UPDATE leases l SET
        worker_id = NULL, expires_at = NULL, last_error = r.error, rerun_requested = false,
        attempts = CASE WHEN l.rerun_requested THEN 0 WHEN r.uncounted THEN l.attempts - 1 ELSE l.attempts END,
        failed_at = CASE WHEN NOT r.uncounted AND NOT l.rerun_requested AND (r.permanent OR l.attempts >= l.max_attempts)
                         THEN now() END,
        retry_at = CASE
          WHEN l.rerun_requested THEN now()
          WHEN r.until IS NOT NULL THEN r.until
          WHEN r.uncounted THEN NULL
          WHEN r.permanent OR l.attempts >= l.max_attempts THEN NULL
          ELSE now() + make_interval(secs => r.retry_ms / 1000.0) END
      FROM jsonb_to_recordset(${jsonb(items)}::jsonb)
        AS r(stage text, subject_id bigint, run_id bigint, error text, retry_ms double precision,
             permanent boolean, uncounted boolean, until timestamptz)
      WHERE l.stage = r.stage AND l.subject_id = r.subject_id AND l.run_id = r.run_id AND l.worker_id = ${workerId}
      RETURNING l.stage, l.subject_id, l.run_id, l.attempts, l.failed_at, false AS rerun_requested`.execute(trx);
    for (const r of rows) accepted.set(key(r.stage, Number(r.run_id)), r);
    for (const r of rows) if (r.failed_at) failedForGood.add(key(r.stage, Number(r.run_id)));
    const mine = others.filter((c) => accepted.has(key(c.stage.name, c.claim.runId)));
    await pauseGroups(trx, rateLimits(mine), workerId);
    await openBreakers(trx, serviceDowns(mine), workerId);
  }

  const runs = batch
    .filter((c) => accepted.has(key(c.stage.name, c.claim.runId)))
    .map((c) => {
      const k = key(c.stage.name, c.claim.runId);
      const outcome = superseded.has(k) ? 'superseded'
        : c.outcome.kind === 'error' && failedForGood.has(k) ? 'failed'
        : c.outcome.kind;
      return {
        id: c.claim.runId,
        stage: c.stage.name,
        subject_table: c.stage.subjectTable,
        subject_id: c.claim.row.id,
        attempt: c.claim.attempt,
        started_at: c.claim.claimedAt,
        outcome,
        error: superseded.has(k) ? 're-requested while running: result not written, the row runs again' : errorOf(c),
        cost: c.cost ?? null,
      };
    });
  if (runs.length) {
    await sql`
      INSERT INTO stage_runs (id, stage, subject_table, subject_id, attempt, worker_id, started_at, outcome, error, cost)
      SELECT r.id, r.stage, r.subject_table, r.subject_id, r.attempt, ${workerId}, r.started_at, r.outcome, r.error, r.cost
      FROM jsonb_to_recordset(${jsonb(runs)}::jsonb)
        AS r(id bigint, stage text, subject_table text, subject_id bigint, attempt int,
             started_at timestamptz, outcome text, error text, cost jsonb)
      ON CONFLICT (id) DO NOTHING`.execute(trx);
  }
  return batch.filter((c) => !accepted.has(key(c.stage.name, c.claim.runId))).map((c) => c.claim.runId);
}

/** Locks the subject rows of a batch, per table in id order (the order every flusher uses). */
async function lockSubjects(trx: Trx, batch: Completion[]): Promise<void> {
  const byTable = new Map<string, number[]>();
  for (const c of batch) byTable.set(c.stage.subjectTable, [...(byTable.get(c.stage.subjectTable) ?? []), c.claim.row.id]);
  for (const [table, ids] of byTable) {
    await sql`SELECT 1 FROM ${sql.id(table)} WHERE id = ANY(${ids}::bigint[]) ORDER BY id FOR NO KEY UPDATE`.execute(trx);
  }
}

/**
 * Sets subject columns for many rows at once: rows are grouped by table and
 * column set, and jsonb_populate_record converts each JSON value to the
 * column's own type.
 */
async function applySets(trx: Trx, batch: Completion[]): Promise<void> {
  const groups = new Map<string, { table: string; columns: string[]; items: { id: number; patch: unknown }[] }>();
  for (const c of batch) {
    if (c.outcome.kind !== 'succeeded' || !c.outcome.set) continue;
    const columns = Object.keys(c.outcome.set).sort();
    if (!columns.length) continue;
    const bad = columns.filter((col) => !c.stage.writes.includes(col));
    if (bad.length) throw new Error(`stage ${c.stage.name} may not write ${bad.join(', ')}`);
    const k = `${c.stage.subjectTable}|${columns.join(',')}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { table: c.stage.subjectTable, columns, items: [] }));
    g.items.push({ id: c.claim.row.id, patch: c.outcome.set });
  }
  for (const g of groups.values()) {
    g.items.sort((a, b) => a.id - b.id); // a fixed lock order avoids deadlocks between flushers
    const cols = sql.join(g.columns.map((c) => sql.id(c)));
    const picks = sql.join(g.columns.map((c) => sql`(p).${sql.id(c)}`));
    await sql`
      UPDATE ${sql.id(g.table)} s SET (${cols}) = (SELECT ${picks})
      FROM (SELECT r.id, jsonb_populate_record(NULL::${sql.id(g.table)}, r.patch) AS p
            FROM jsonb_to_recordset(${jsonb(g.items)}::jsonb) AS r(id bigint, patch jsonb)) q
      WHERE s.id = q.id`.execute(trx);
  }
}

/** Rate-limited outcomes by group; the latest "until" wins. */
function rateLimits(batch: Completion[]): Map<string, { until: Date; reason: string }> {
  const pauses = new Map<string, { until: Date; reason: string }>();
  for (const c of batch) {
    if (c.outcome.kind !== 'rate_limited') continue;
    const group = c.outcome.group ?? c.stage.rateLimitGroups?.[0];
    if (!group) continue;
    const prev = pauses.get(group);
    if (!prev || prev.until < c.outcome.until) pauses.set(group, { until: c.outcome.until, reason: errorOf(c) ?? 'rate limited' });
  }
  return pauses;
}

/** Service-down outcomes by group. */
function serviceDowns(batch: Completion[]): Map<string, { reason: string; breaker: BreakerSettings }> {
  const downs = new Map<string, { reason: string; breaker: BreakerSettings }>();
  for (const c of batch) {
    if (c.outcome.kind === 'service_down') downs.set(c.outcome.group, { reason: errorOf(c) ?? 'service down', breaker: c.outcome.breaker });
  }
  return downs;
}
