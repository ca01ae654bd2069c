import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

export interface StatusReport {
  stages: Array<{
    ordinal: number; stage: string; pending: number; running: number; retrying: number; failed: number;
    done: number; oldest_pending_age_s: number | null; paused: boolean; rate_limited_until: string | null;
    /** Successful attempts in the last hour. */
    throughput_per_hour: number;
    /** Seconds until pending and retrying rows are done at that pace (null when nothing moved in the last hour or nothing is left). */
    eta_s: number | null;
  }>;
  /** The attempt running longest, on any worker. */
  oldest_running: { stage: string; subject_table: string; subject_id: number; worker_id: string; attempt: number; age_s: number } | null;
  /** Service groups whose circuit breaker is open (their service is down). */
  breakers: Array<{ group_name: string; until: string; reason: string | null; trips: number }>;
  rate_limits: Array<{ group_name: string; until: string; reason: string | null }>;
  workers: Array<{ id: string; stages: string[] | null; last_seen_s: number }>;
}

/** The funnel, active rate-limit pauses and live workers, as one object. */
export async function readStatus(db: Db): Promise<StatusReport> {
  const stages = await sql<any>`
    SELECT ordinal, stage, pending, running, retrying, failed, done,
           extract(epoch FROM oldest_pending_age)::float8 AS oldest_pending_age_s, paused, rate_limited_until
    FROM funnel ORDER BY ordinal, stage`.execute(db);
  const limits = await sql<any>`SELECT group_name, until, reason FROM rate_limit_pauses WHERE until > now() ORDER BY group_name`.execute(db);
  const workers = await sql<any>`
    SELECT id, stages, extract(epoch FROM now() - last_seen_at)::float8 AS last_seen_s FROM workers
    WHERE stopped_at IS NULL AND last_seen_at > now() - interval '5 minutes' ORDER BY id`.execute(db);
  // Per stage, so each count is a range of the (stage, finished_at) index.
  const done = await sql<{ stage: string; n: number }>`
    SELECT s.name AS stage, (SELECT count(*)::int FROM stage_runs r
      WHERE r.stage = s.name AND r.finished_at > now() - interval '1 hour' AND r.outcome = 'succeeded') AS n
    FROM stages s`.execute(db);
  const running = await sql<any>`
    SELECT stage, subject_table, subject_id, worker_id, attempts AS attempt, extract(epoch FROM now() - claimed_at)::float8 AS age_s
    FROM leases WHERE worker_id IS NOT NULL ORDER BY claimed_at LIMIT 1`.execute(db);
  const breakers = await sql<any>`
    SELECT group_name, until, reason, trips FROM rate_limit_pauses WHERE kind = 'breaker' AND until > now() ORDER BY group_name`.execute(db);
  const perHour = new Map(done.rows.map((r) => [r.stage, r.n]));
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  const oldest = running.rows[0];
  return {
    stages: stages.rows.map((r) => {
      const throughput = perHour.get(r.stage) ?? 0;
      const left = Number(r.pending) + Number(r.retrying);
      return {
        ...r,
        oldest_pending_age_s: r.oldest_pending_age_s === null ? null : Math.round(r.oldest_pending_age_s),
        rate_limited_until: iso(r.rate_limited_until),
        throughput_per_hour: throughput,
        eta_s: throughput > 0 && left > 0 ? Math.round((left / throughput) * 3600) : null,
      };
    }),
    oldest_running: oldest ? { ...oldest, age_s: Math.round(oldest.age_s) } : null,
    breakers: breakers.rows.map((b) => ({ ...b, until: iso(b.until)! })),
    rate_limits: limits.rows.map((r) => ({ ...r, until: iso(r.until)! })),
    workers: workers.rows.map((r) => ({ ...r, last_seen_s: Math.round(r.last_seen_s) })),
  };
}

function age(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

/** A fixed-width table for terminals. */
export function formatStatus(s: StatusReport): string {
  const header = ['#', 'stage', 'pending', 'running', 'retrying', 'failed', 'done', '/hour', 'eta', 'oldest', 'state'];
  const rows = s.stages.map((r) => [
    String(r.ordinal), r.stage, String(r.pending), String(r.running), String(r.retrying), String(r.failed),
    String(r.done), String(r.throughput_per_hour), age(r.eta_s), age(r.oldest_pending_age_s),
    r.paused ? 'paused' : r.rate_limited_until ? `rate-limited until ${r.rate_limited_until.slice(11, 19)}Z` : 'active',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 8 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  if (!s.stages.length) out.push('(no stages registered yet: start `perfmine daemon`)');
  if (s.oldest_running) {
    const o = s.oldest_running;
    out.push(`oldest running attempt: ${o.stage} on ${o.subject_table}.id = ${o.subject_id} (attempt ${o.attempt}), ${age(o.age_s)} on ${o.worker_id}`);
  }
  for (const b of s.breakers) out.push(`breaker open: ${b.group_name} (service down) until ${b.until}, opened ${b.trips} time(s) in a row${b.reason ? `: ${b.reason}` : ''}`);
  for (const p of s.rate_limits) out.push(`rate limit: ${p.group_name} waits until ${p.until}${p.reason ? ` (${p.reason})` : ''}`);
  out.push(`workers: ${s.workers.length ? s.workers.map((w) => `${w.id} (seen ${w.last_seen_s}s ago)`).join(', ') : 'none running'}`);
  return out.join('\n');
}
