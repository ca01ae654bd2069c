import { readFileSync } from 'node:fs';
import type { Audit } from './audit.js';
import { lastLines, type DaemonRecord } from './fleet.js';
import type { Monitor } from './monitor.js';
import type { Timeline } from './timeline.js';

export interface ChaosResult {
  bench: 'chaos';
  kills: number;
  pg_restarts: number;
  faults_injected: number;
  prs_expected: number;
  prs_lost: number;
  duplicate_effects: number;
  failed_rows: number;
  max_stall_s: number;
  leaked_connections: number;
  seconds: number;
  // Beyond the issue's fields: what helps to read them.
  settle_seconds: number | null;
  prs_unjudged: number;
  outstanding_at_end: number;
  daemon_exits: number;
  max_lease_silence_s: number;
  peak_connections_over_budget: number;
  faults_by_kind: Record<string, number>;
  goals_failed: string[];
  seed: number;
}

const GOALS: Array<[keyof Omit<ChaosResult, 'goals_failed'>, (v: number) => boolean, string]> = [
  ['prs_lost', (v) => v === 0, '0'],
  ['duplicate_effects', (v) => v === 0, '0'],
  ['failed_rows', (v) => v === 0, '0'],
  ['leaked_connections', (v) => v === 0, '0'],
  ['max_stall_s', (v) => v <= 5, '<= 5'],
  ['seconds', (v) => v < 600, '< 600'],
];

export function goalsFailed(r: Omit<ChaosResult, 'goals_failed'>): string[] {
  return GOALS.filter(([k, ok]) => !ok(r[k] as number)).map(([k]) => k);
}

/** The evidence behind each missed goal, for people (stderr); the JSON line stays short. */
export function printEvidence(
  r: ChaosResult, a: Audit, monitor: Monitor, timeline: Timeline, exits: DaemonRecord[], logFiles: string[],
): void {
  const out = (line = '') => console.error(line);
  const json = (v: unknown) => JSON.stringify(v);
  out('\n=== bench chaos: evidence ===');
  for (const [k, ok, goal] of GOALS) out(`  ${ok(r[k] as number) ? 'ok  ' : 'MISS'} ${k} = ${r[k]} (goal ${goal})`);

  if (a.prs_lost) {
    out('\nPRs lost, by repository (with its row and leases):');
    for (const l of a.evidence.lost_by_repository) out(`  ${json(l)}`);
  }
  if (a.duplicate_effects) {
    out('\nResults written twice:');
    for (const d of a.evidence.duplicates) out(`  ${json(d)}`);
  }
  if (a.failed_rows) {
    out('\nFailed rows by stage and last_error (digits folded to N):');
    for (const f of a.evidence.failed_by_error) out(`  ${f.rows} x ${f.stage}: ${f.error}  (e.g. subjects ${f.example_subjects.join(', ')})`);
  }
  out('\nUnsuccessful attempts recorded (stage_runs), most frequent first:');
  for (const e of a.evidence.attempt_errors) out(`  ${e.n} x ${e.stage} ${e.outcome}: ${e.error}`);
  out('Attempts spent on errors per row (a row fails at max_attempts):');
  for (const b of a.evidence.attempts_burned) out(`  ${json(b)}`);
  if (a.evidence.outstanding.length) {
    out('\nWork still outstanding at the end:');
    for (const o of a.evidence.outstanding) out(`  ${json(o)}`);
  }
  if (a.leaked_connections || monitor.connectionPeak) {
    out('\nConnections over budget at the end (application_name = daemon label; budget = pool + 4 bus + 1 LISTEN):');
    for (const c of a.evidence.connections.detail) out(`  ${json(c)}`);
    out('  all sessions at the end:');
    for (const c of a.evidence.connections_all) out(`    ${json(c)}`);
    if (monitor.connectionPeak) out(`  peak during the run: ${json(monitor.connectionPeak)}`);
  }
  const stalls = [...monitor.stalls].sort((x, y) => y.seconds - x.seconds).slice(0, 3);
  if (stalls.length) {
    out('\nLongest stalls (ready work, no progress), with what happened from 10 s before:');
    for (const s of stalls) {
      out(`  ${s.seconds}s from t=${s.from} to t=${s.to}${s.afterRestart ? ' (from PostgreSQL\'s return)' : ''}, ready: ${json(s.ready)}`);
      for (const e of timeline.between(s.from - 10, s.to)) out(`      t=${e.t} ${e.what}`);
    }
  }
  if (monitor.maxLeaseSilence) {
    out(`\nLongest a held lease went without a heartbeat (healthy: <= 20 s): ${json(monitor.maxLeaseSilence)}`);
  }
  if (exits.length) {
    out('\nDaemons that exited by themselves:');
    for (const d of exits) {
      const last = lastLines(d.logFile, 1);
      out(`  ${d.label} pid ${d.pid} up from t=${d.startedAt.toFixed(1)} to t=${d.endedAt?.toFixed(1)}, code ${d.exit?.code}${d.exitedWhileDatabaseDown ? ' (PostgreSQL down or just back)' : ''}: ${last}`);
      // A refused start prints one line; anything else is a crash, whose stack matters.
      if (!last.startsWith('perfmine: ')) for (const l of lastLines(d.logFile, 14).split('\n')) out(`      | ${l}`);
    }
  }
  out('\nDaemon log digest (warnings and errors, all daemons; digits folded to N):');
  for (const [line, n] of logDigest(logFiles)) out(`  ${n} x ${line}`);
  out(`\nfaults: ${json(r.faults_by_kind)}`);
}

/** The most frequent warning and error messages across the daemons' JSON logs. */
function logDigest(files: string[], top = 15): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const file of files) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      let key: string;
      try {
        const j = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
        if ((j.level ?? 0) < 40) continue;
        key = `${j.level === 40 ? 'warn' : 'error'}: ${j.msg ?? ''}${j.err ? ` (${String(j.err).slice(0, 120)})` : ''}`;
      } catch {
        key = `not JSON: ${line.slice(0, 160)}`;
      }
      key = key.replace(/\d+/g, 'N');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, top);
}
