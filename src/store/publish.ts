/**
 * SQL of stage 8 (publish): the evidence a publication is judged on (the PR,
 * its stage-7 run and the benchmarks that passed the PR-level gate, what its
 * environment was built from), the published rows of a month, the record of
 * a publication, and the lock that serializes publications of one dataset.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { jsonb } from '../domain/clean.js';
import type { PassingBenchmark, PrEvidence, RunEvidence } from '../domain/publish-gate.js';
import type { PublishedRecord } from '../domain/publish-record.js';

type Q = Kysely<Database> | Transaction<Database>;

export interface PrFacts extends PrEvidence {
  number: number;
  classification: string | null;
  difficulty: string | null;
  owner: string;
  repo: string;
  packageId: number | null;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));

export async function loadPrFacts(db: Q, prId: number): Promise<PrFacts | null> {
  const row = (await sql<any>`
    SELECT p.id, p.number, p.benchmark_decision, p.benchmark_run_id, p.container_name, p.environment_digest, p.executor,
           p.merged_at, p.merge_commit_sha, p.base_sha, p.rendered_problem, p.patch, p.classification, p.difficulty,
           p.package_id, r.owner, r.name
    FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
    WHERE p.id = ${prId}`.execute(db)).rows[0];
  if (!row) return null;
  return {
    id: Number(row.id), number: row.number, benchmarkDecision: row.benchmark_decision, benchmarkRunId: num(row.benchmark_run_id),
    containerName: row.container_name, environmentDigest: row.environment_digest, executor: row.executor,
    mergedAt: date(row.merged_at), mergeCommitSha: row.merge_commit_sha, baseSha: row.base_sha,
    renderedProblem: row.rendered_problem, patch: row.patch, classification: row.classification, difficulty: row.difficulty,
    owner: row.owner, repo: row.name, packageId: num(row.package_id),
  };
}

/**
 * Stage 7's run (benchmark_runs, with sql/016's machine, decision and the
 * environment it measured). Read as one JSON object, so a column a given
 * schema lacks (environment_digest before stage 7's migration) is simply absent.
 */
export async function loadRun(db: Q, runId: number): Promise<RunEvidence | null> {
  const row = (await sql<{ run: Record<string, any> }>`SELECT to_jsonb(b) AS run FROM benchmark_runs b WHERE id = ${runId}`.execute(db)).rows[0]?.run;
  if (!row) return null;
  return {
    id: Number(row.id), pullRequestId: Number(row.pull_request_id), succeeded: row.succeeded ?? null, decision: row.decision ?? null,
    reason: row.reason ?? null, testsOk: row.tests_ok ?? null, maxSpeedup: num(row.max_speedup), maxSpeedupLowerBound: num(row.max_speedup_lower_bound),
    containerName: row.container_name ?? null, environmentDigest: row.environment_digest ?? null,
    machine: row.machine ?? null, machineFingerprint: row.machine_fingerprint ?? null, finishedAt: date(row.finished_at),
  };
}

/** The run's benchmarks that passed the PR-level gate, with their speedups. */
export async function loadPassingBenchmarks(db: Q, runId: number): Promise<PassingBenchmark[]> {
  const { rows } = await sql<any>`
    SELECT benchmark, params, speedup, speedup_lower_bound, p_value FROM benchmark_results
    WHERE run_id = ${runId} AND passed IS TRUE AND speedup IS NOT NULL AND error IS NULL
    ORDER BY id`.execute(db);
  return rows.map((r) => ({
    name: r.benchmark, params: r.params, speedup: Number(r.speedup), speedupLowerBound: num(r.speedup_lower_bound), pValue: num(r.p_value),
  }));
}

export interface BuildInputs {
  python: string | null;
  requirements: string[];
  /** The script of the verified build attempt that made this environment (NULL: none recorded). */
  buildScript: string | null;
}

/** What the PR's verified environment was built from: stage 4's package and stage 6's verified attempt of that digest. */
export async function loadBuildInputs(db: Q, pr: { id: number; packageId: number | null; environmentDigest: string }): Promise<BuildInputs> {
  const pkg = pr.packageId === null ? undefined : (await sql<{ python_version: string | null; env_payload: string[] | null }>`
    SELECT python_version, env_payload FROM packages WHERE id = ${pr.packageId}`.execute(db)).rows[0];
  const attempt = (await sql<{ build_script: string | null }>`
    SELECT build_script FROM candidate_containers
    WHERE pull_request_id = ${pr.id} AND succeeded AND env_digest = ${pr.environmentDigest}
    ORDER BY id DESC LIMIT 1`.execute(db)).rows[0];
  return { python: pkg?.python_version ?? null, requirements: pkg?.env_payload ?? [], buildScript: attempt?.build_script ?? null };
}

/** Every row published in a month of a dataset, but the one of `exceptPr` (about to be replaced). */
export async function publishedRecordsOfMonth(db: Q, dataset: string, month: string, exceptPr: number): Promise<PublishedRecord[]> {
  const { rows } = await sql<{ record: PublishedRecord }>`
    SELECT record FROM published_tasks
    WHERE dataset = ${dataset} AND month = ${month} AND pull_request_id <> ${exceptPr}
    ORDER BY pull_request_id`.execute(db);
  return rows.map((r) => r.record);
}

export async function savePublishedTask(db: Q, t: {
  dataset: string; pullRequestId: number; month: string; record: PublishedRecord; targets: unknown; publishedAt: Date;
}): Promise<void> {
  await sql`
    INSERT INTO published_tasks (dataset, pull_request_id, month, task_id, record, targets, published_at)
    VALUES (${t.dataset}, ${t.pullRequestId}, ${t.month}, ${t.record.task_id}, ${jsonb(t.record)}::jsonb, ${jsonb(t.targets)}::jsonb,
            ${t.publishedAt.toISOString()})
    ON CONFLICT (dataset, pull_request_id) DO UPDATE
      SET month = EXCLUDED.month, task_id = EXCLUDED.task_id, record = EXCLUDED.record, targets = EXCLUDED.targets,
          published_at = EXCLUDED.published_at`.execute(db);
}

/**
 * Runs `fn` holding a session advisory lock named `key` (on one connection of
 * the pool, for the whole call): publications of one dataset, in any number of
 * daemons, happen one at a time, so a month file never loses a row another
 * publication wrote meanwhile. Waits by polling, so no statement runs longer
 * than a poll and the wait follows `signal`.
 */
export async function withAdvisoryLock<T>(db: Kysely<Database>, key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    for (;;) {
      const { rows } = await sql<{ got: boolean }>`SELECT pg_try_advisory_lock(hashtextextended(${key}, 0)) AS got`.execute(conn);
      if (rows[0].got) break;
      await delay(250, undefined, { signal });
    }
    try {
      return await fn();
    } finally {
      await sql`SELECT pg_advisory_unlock(hashtextextended(${key}, 0))`.execute(conn).catch(() => undefined);
    }
  });
}
