/**
 * What stage 8 publishes for one PR (one Parquet row), where it goes (the
 * month file of its merge date), and its task id. Pure: the stage gathers the
 * facts, this shapes them. The record is stored as published
 * (published_tasks.record), so a month file rebuilt later holds exactly what
 * was published then.
 */
import type { PassingBenchmark, PrEvidence, RunEvidence } from './publish-gate.js';
import type { EnvironmentLock } from './environment-lock.js';

export interface BenchmarkSpeedup {
  /** asv's name, e.g. `benchmarks.TimeSuite.time_sum`. */
  name: string;
  /** The parameter combination as JSON text (null: unparameterized). */
  params: string | null;
  speedup: number;
  speedup_lower_bound: number | null;
  p_value: number | null;
}

export interface PublishedRecord {
  task_id: string;
  owner: string;
  repo: string;
  number: number;
  merge_commit_sha: string;
  base_commit_sha: string;
  /** ISO 8601, UTC. */
  merged_at: string;
  rendered_problem: string;
  classification: string | null;
  difficulty: string | null;
  patch: string;
  /** local | docker */
  executor: string;
  /** What stage 6 verified and stage 7 measured: the image id (docker) or the environment's identity hash (local). */
  environment_digest: string;
  /** docker: the pushed image, `registry/name:tag`. */
  image_name: string | null;
  /** docker: the registry's manifest digest (pull with `image_name@image_digest`); its config is environment_digest. */
  image_digest: string | null;
  /** How to rebuild the environment: Python, pinned requirements, build script, base commit. */
  environment_lock: EnvironmentLock;
  /** Directory of the Dockerfile and lock beside the Parquet files (relative to the dataset root). */
  environment_path: string;
  max_speedup: number;
  max_speedup_lower_bound: number;
  /** The benchmarks that passed the PR-level gate, fastest first. */
  benchmarks: BenchmarkSpeedup[];
  /** The machine the run measured on (stage 7's facts). */
  machine: Record<string, unknown>;
  machine_fingerprint: string | null;
  perfmine_version: string;
  /** ISO 8601: when this row was published. */
  published_at: string;
}

/** `owner__repo-number`, as SWE-bench-style datasets name tasks (safe as a path segment). */
export function taskId(owner: string, repo: string, number: number): string {
  return `${owner}__${repo}-${number}`;
}

/** The month of a merge date, in UTC: `YYYY-MM`. */
export function monthOf(mergedAt: Date | string): string {
  const d = new Date(mergedAt);
  if (Number.isNaN(d.getTime())) throw new Error(`not a date: ${String(mergedAt)}`);
  return d.toISOString().slice(0, 7);
}

/** `data/<dataset>@YYYY-MM.parquet`: one file per month of merge dates. */
export function monthFilePath(dataset: string, month: string): string {
  if (!/^\d{4}-\d{2}$/.test(month)) throw new Error(`not a month: ${month}`);
  return `data/${dataset}@${month}.parquet`;
}

export function environmentDir(task: string): string {
  return `environments/${task}`;
}

export interface RecordInputs {
  pr: PrEvidence & { number: number; classification: string | null; difficulty: string | null };
  repository: { owner: string; name: string };
  run: RunEvidence;
  passing: PassingBenchmark[];
  lock: EnvironmentLock;
  image: { name: string; digest: string } | null;
  version: string;
  publishedAt: Date;
}

export function buildRecord(i: RecordInputs): PublishedRecord {
  const { pr, run } = i;
  const id = taskId(i.repository.owner, i.repository.name, pr.number);
  const benchmarks = i.passing
    .map((b) => ({
      name: b.name,
      params: b.params === null || b.params === undefined ? null : JSON.stringify(b.params),
      speedup: b.speedup, speedup_lower_bound: b.speedupLowerBound, p_value: b.pValue,
    }))
    .sort((a, b) => b.speedup - a.speedup || a.name.localeCompare(b.name) || (a.params ?? '').localeCompare(b.params ?? ''));
  return {
    task_id: id,
    owner: i.repository.owner,
    repo: i.repository.name,
    number: pr.number,
    merge_commit_sha: pr.mergeCommitSha!,
    base_commit_sha: pr.baseSha!,
    merged_at: new Date(pr.mergedAt!).toISOString(),
    rendered_problem: pr.renderedProblem!,
    classification: pr.classification,
    difficulty: pr.difficulty,
    patch: pr.patch!,
    executor: pr.executor!,
    environment_digest: pr.environmentDigest!,
    image_name: i.image?.name ?? null,
    image_digest: i.image?.digest ?? null,
    environment_lock: i.lock,
    environment_path: environmentDir(id),
    max_speedup: run.maxSpeedup!,
    max_speedup_lower_bound: run.maxSpeedupLowerBound!,
    benchmarks,
    machine: run.machine ?? {},
    machine_fingerprint: run.machineFingerprint,
    perfmine_version: i.version,
    published_at: i.publishedAt.toISOString(),
  };
}

/**
 * The rows of a month file: every row published before in that month (from
 * the database) with the new one in place of any earlier row of the same
 * task, in a stable order (merge date, then task id).
 */
export function monthRows(published: readonly PublishedRecord[], added: PublishedRecord): PublishedRecord[] {
  const month = monthOf(added.merged_at);
  const others = published.filter((r) => r.task_id !== added.task_id && monthOf(r.merged_at) === month);
  return orderRows([...others, added]);
}

/** A month file's row order: merge date, then task id (the same rows always make the same file). */
export function orderRows(rows: readonly PublishedRecord[]): PublishedRecord[] {
  return [...rows].sort((a, b) => a.merged_at.localeCompare(b.merged_at) || a.task_id.localeCompare(b.task_id));
}
