/** SQL of stage 6's records: `candidate_containers` (one row per build attempt) and the build queue's priorities. */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { jsonb } from '../domain/clean.js';
import type { AttemptOutcome, BuildStrategy, ScriptSource } from '../domain/build-cascade.js';

type Q = Kysely<Database> | Transaction<Database>;

export interface AttemptRecord {
  pullRequestId: number;
  repositoryId: number;
  commitSha: string;
  attemptNo: number;
  strategy: BuildStrategy;
  script: string | null;
  scriptHash: string | null;
  sourcePullRequestId: number | null;
  outcome: AttemptOutcome;
  reason: string | null;
  logTail: string | null;
  durationMs: number;
  llmPromptTokens: number | null;
  llmCompletionTokens: number | null;
  promptHash: string | null;
  model: string | null;
  verification: unknown | null;
  executor: string;
  pythonVersion: string | null;
  envKey: string | null;
  envRef: string | null;
  envDigest: string | null;
  /** The executor's EnvironmentRef (python and workdir included), for reuse and for stage 7. */
  environment: unknown | null;
  imageName: string | null;
  /** A verified environment other PRs of this commit may reuse. */
  reusable: boolean;
}

export async function saveAttempt(db: Q, r: AttemptRecord): Promise<number> {
  const { rows } = await sql<{ id: number }>`
    INSERT INTO candidate_containers (pull_request_id, repository_id, commit_sha, attempt_no, strategy, build_script, script_hash,
      source_pull_request_id, outcome, succeeded, reason, build_log, duration_ms, llm_prompt_tokens, llm_completion_tokens,
      prompt_hash, model, verification, executor, python_version, env_key, env_ref, env_digest, environment, image_name, reusable)
    VALUES (${r.pullRequestId}, ${r.repositoryId}, ${r.commitSha}, ${r.attemptNo}, ${r.strategy}, ${r.script}, ${r.scriptHash},
      ${r.sourcePullRequestId}, ${r.outcome}, ${r.outcome === 'verified'}, ${r.reason}, ${r.logTail}, ${r.durationMs},
      ${r.llmPromptTokens}, ${r.llmCompletionTokens}, ${r.promptHash}, ${r.model},
      ${r.verification === null ? null : jsonb(r.verification)}::jsonb, ${r.executor}, ${r.pythonVersion}, ${r.envKey},
      ${r.envRef}, ${r.envDigest}, ${r.environment === null ? null : jsonb(r.environment)}::jsonb, ${r.imageName}, ${r.reusable})
    RETURNING id`.execute(db);
  return Number(rows[0].id);
}

export interface CachedEnvironment {
  attemptId: number;
  pullRequestId: number;
  environment: unknown;
  script: string | null;
  imageName: string | null;
}

/** CHECK_CACHE: the newest verified, still reusable environment of this repository and commit, made with the same executor and pins. */
export async function findCachedEnvironment(db: Q, k: { repositoryId: number; commitSha: string; executor: string; envKey: string }): Promise<CachedEnvironment | null> {
  const { rows } = await sql<any>`
    SELECT id, pull_request_id, environment, build_script, image_name FROM candidate_containers
    WHERE repository_id = ${k.repositoryId} AND commit_sha = ${k.commitSha} AND succeeded AND reusable
      AND executor = ${k.executor} AND env_key = ${k.envKey} AND environment IS NOT NULL
    ORDER BY id DESC LIMIT 1`.execute(db);
  const r = rows[0];
  return r ? { attemptId: Number(r.id), pullRequestId: Number(r.pull_request_id), environment: r.environment, script: r.build_script, imageName: r.image_name } : null;
}

/** An environment that is gone or no longer verifies: never offered by CHECK_CACHE again. */
export async function markUnreusable(db: Q, envRef: string): Promise<void> {
  await sql`UPDATE candidate_containers SET reusable = false WHERE env_ref = ${envRef} AND reusable`.execute(db);
}

/** SIMILAR's candidates: verified scripts of the repository's PRs (other than `exceptPr`), nearest by merge date first. */
export async function verifiedScripts(db: Q, repositoryId: number, around: Date | null, exceptPr: number, limit = 100): Promise<ScriptSource[]> {
  const { rows } = await sql<any>`
    SELECT c.pull_request_id, p.merged_at, c.build_script FROM candidate_containers c
    JOIN pull_requests p ON p.id = c.pull_request_id
    WHERE c.repository_id = ${repositoryId} AND c.succeeded AND c.build_script IS NOT NULL AND c.pull_request_id <> ${exceptPr}
    ORDER BY abs(extract(epoch FROM (p.merged_at - coalesce(${around}::timestamptz, p.merged_at)))) NULLS LAST, c.id DESC
    LIMIT ${limit}`.execute(db);
  return rows.map((r) => ({ pullRequestId: Number(r.pull_request_id), mergedAt: r.merged_at, script: r.build_script }));
}

/** Whether each of the repository's most recent default attempts succeeded, newest first. */
export async function recentDefaultOutcomes(db: Q, repositoryId: number, n: number): Promise<boolean[]> {
  if (n <= 0) return [];
  const { rows } = await sql<{ succeeded: boolean }>`
    SELECT coalesce(succeeded, false) AS succeeded FROM candidate_containers
    WHERE repository_id = ${repositoryId} AND strategy = 'default' AND outcome IN ('verified', 'build_failed', 'verification_failed')
    ORDER BY id DESC LIMIT ${n}`.execute(db);
  return rows.map((r) => r.succeeded);
}

/**
 * After a success: the repository's PRs waiting for a build and merged within
 * the window (nearest first, at most `max`) move to the front of the stage's
 * queue. Rows being claimed at this moment are passed by (SKIP LOCKED).
 */
export async function prioritizeNeighbours(db: Q, k: { repositoryId: number; exceptPr: number; mergedAt: Date; from: Date; to: Date; max: number }): Promise<number> {
  if (k.max <= 0) return 0;
  const { rows } = await sql<{ id: number }>`
    UPDATE pull_requests SET build_priority = now()
    WHERE id IN (
      SELECT id FROM pull_requests
      WHERE repository_id = ${k.repositoryId} AND id <> ${k.exceptPr} AND rendered_problem IS NOT NULL AND env_built_at IS NULL
        AND merged_at BETWEEN ${k.from} AND ${k.to}
      ORDER BY abs(extract(epoch FROM (merged_at - ${k.mergedAt}::timestamptz))), id
      LIMIT ${k.max}
      FOR UPDATE SKIP LOCKED)
    RETURNING id`.execute(db);
  return rows.length;
}
